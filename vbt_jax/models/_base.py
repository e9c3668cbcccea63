"""The interface every neural mass model implements."""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jax import Array

from .._capabilities import RegionLocal


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """How a model expresses one drug mechanism (see :attr:`AbstractModel.mechanisms`).

    A drug preset acting through the mechanism scales every one of ``parameters`` by
    ``1 + e * occ * rho`` (:class:`~vbt_jax.interventions.Drug`, mode ``"scale"``); its default
    ``e`` is ``efficacy`` for a drug that strengthens the mechanism and ``-efficacy`` for one
    that weakens it.

    Attributes:
        parameters: the model fields scaled (a name or a tuple of names), all by the same factor.
        efficacy: relative change of the parameters at full occupancy in the densest region when
            the mechanism is strengthened; its sign is the direction the parameters move in (a
            placeholder to be fitted, like every preset efficacy).
        note: how the parameter change realises the mechanism, shown by ``Drug.describe``.

    Raises:
        ValueError: no parameters, a parameter that is not a string, or a non-finite efficacy.
    """

    parameters: tuple[str, ...]
    efficacy: float
    note: str = ""

    def __post_init__(self):
        params = (self.parameters,) if isinstance(self.parameters, str) else self.parameters
        params = tuple(params)
        if not params or not all(isinstance(p, str) and p for p in params):
            raise ValueError(
                f"Mechanism.parameters must be a field name or a tuple of them, got "
                f"{self.parameters!r}"
            )
        try:
            efficacy = float(self.efficacy)
        except (TypeError, ValueError):
            efficacy = math.nan
        if not math.isfinite(efficacy):
            raise ValueError(f"Mechanism.efficacy must be a finite number, got {self.efficacy!r}")
        object.__setattr__(self, "parameters", params)
        object.__setattr__(self, "efficacy", efficacy)


class AbstractModel(RegionLocal, eqx.Module):
    """A neural mass model: parameters as fields (scalar or one value per region), pure dynamics.

    Subclasses declare, as class variables:

    - ``state_names``: names of the state variables, in the order of the state array's first axis;
    - ``state_ranges``: plausible range of each state variable, used for random initial states;
    - ``state_bounds``: hard bounds ``{index: (lo, hi)}`` the integrator clamps to
      (``None`` = open);
    - ``parameter_ranges``: plausible range of each inferable parameter (the inference layer turns
      these into priors);
    - ``bold_var`` / ``eeg_var``: the state variable that drives the haemodynamic (BOLD) and the
      electrical (EEG/MEG) observation models;
    - ``time_unit``: the unit of the model's time axis (``"ms"`` for every model here);
    - ``region_local``: ``True`` when :meth:`dfun` computes each region's derivative from that
      region's own state and coupling input only (no sum, mean or other mixing over the region
      axis). :func:`vbt_jax.simulate`'s custom adjoint then uses per-region Jacobians; the
      default ``False`` keeps the general reverse step, correct for any model. Not inherited:
      a subclass is ``False`` unless its own body declares it, since overriding :meth:`dfun`
      can break the property;
    - ``stimulus_parameter``: the field a :class:`~vbt_jax.interventions.Stimulation` offsets
      when given no ``parameter`` (the model's external input), or ``None``;
    - ``mechanisms``: mechanism name -> :class:`Mechanism`, the parameters through which the
      drug presets of :mod:`vbt_jax.interventions` act on this model. The presets use
      ``"excitatory_gain"`` (gain of the excitatory populations) and ``"feedback_inhibition"``
      (strength of the inhibition onto them).

    and implement :meth:`dfun` and :meth:`coupling_vars`. A model with a stable fixed point
    may override :meth:`fixed_point_guess`, where :func:`vbt_jax.linearise` starts looking for
    it (the linearisation protocol: Jacobian, noise and observation at the fixed point).

    The state array has shape ``(n_states, n_regions)``; the coupling input ``c`` handed to
    :meth:`dfun` has shape ``(n_coupling_inputs, n_regions)``: one row per coupled variable, after
    the coupling function.
    """

    state_names: ClassVar[tuple[str, ...]]
    state_ranges: ClassVar[dict[str, tuple[float, float]]]
    state_bounds: ClassVar[dict[int, tuple[float | None, float | None]]] = {}
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]]
    bold_var: ClassVar[str]
    eeg_var: ClassVar[str]
    time_unit: ClassVar[str] = "ms"
    stimulus_parameter: ClassVar[str | None] = None
    mechanisms: ClassVar[Mapping[str, Mechanism]] = {}

    @abc.abstractmethod
    def dfun(self, state: Array, coupling: Array) -> Array:
        """Time derivative of ``state`` (n_states, N) given the coupling input (n_coupling, N)."""

    def coupling_vars(self) -> tuple[int, ...]:
        """Indices of the state variables sent to other regions through the connectome."""
        return (0,)

    def default_coupling(self):
        """The coupling function used when :func:`vbt_jax.simulate` is given none."""
        from .._coupling import Linear

        return Linear()

    # ---- conveniences shared by all models --------------------------------------------------
    @property
    def n_states(self) -> int:
        return len(self.state_names)

    def state_index(self, name: str) -> int:
        try:
            return self.state_names.index(name)
        except ValueError:
            raise ValueError(
                f"{type(self).__name__} has no state variable {name!r}; it has {self.state_names}"
            ) from None

    def bold_drive(self, state: Array) -> Array:
        """The (N,) signal that drives the BOLD observation model."""
        return state[self.state_index(self.bold_var)]

    def eeg_drive(self, state: Array) -> Array:
        """The (N,) signal that the EEG lead field projects to sensors."""
        return state[self.state_index(self.eeg_var)]

    def bound(self, state: Array) -> Array:
        """Clamp the state variables that have hard bounds (e.g. a firing rate >= 0)."""
        for i, (lo, hi) in self.state_bounds.items():
            v = state[i]
            if lo is not None:
                v = jnp.maximum(v, lo)
            if hi is not None:
                v = jnp.minimum(v, hi)
            state = state.at[i].set(v)
        return state

    def random_state(self, key: Array, n_regions: int, dtype=jnp.float32) -> Array:
        """A state drawn uniformly from ``state_ranges`` (one independent draw per region)."""
        lo = jnp.asarray([self.state_ranges[s][0] for s in self.state_names], dtype)[:, None]
        hi = jnp.asarray([self.state_ranges[s][1] for s in self.state_names], dtype)[:, None]
        u = jr.uniform(key, (self.n_states, n_regions), dtype)
        return lo + (hi - lo) * u

    def fixed_point_guess(self, n_regions: int) -> Array:
        """A ``(n_states, n_regions)`` state near the network's stable fixed point: where
        :func:`vbt_jax.linearise` starts Newton's method (the linearisation protocol).

        The default is the middle of ``state_ranges``; a model with a known rest state
        overrides it.
        """
        mid = jnp.asarray([0.5 * sum(self.state_ranges[s]) for s in self.state_names])
        return jnp.broadcast_to(mid[:, None], (self.n_states, n_regions))

    def parameters(self) -> dict[str, Array]:
        """The model's parameters (its dataclass fields) as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
