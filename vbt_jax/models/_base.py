"""The interface every neural mass model implements."""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jax import Array


class AbstractModel(eqx.Module):
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
    - ``time_unit``: the unit of the model's time axis (``"ms"`` for every model here).

    and implement :meth:`dfun` and :meth:`coupling_vars`.

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

    def parameters(self) -> dict[str, Array]:
        """The model's parameters (its dataclass fields) as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
