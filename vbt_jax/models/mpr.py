"""Montbrio-Pazo-Roxin next-generation neural mass (firing rate r, mean membrane potential V)."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jax import Array

from ._base import AbstractModel


def _is_static_zero(x) -> bool:
    return isinstance(x, int | float) and x == 0


class MontbrioPazoRoxin(AbstractModel):
    r"""Exact mean field of quadratic integrate-and-fire neurons (Montbrio, Pazo & Roxin 2015).

    .. math::
        \tau \dot r = \Delta/(\pi\tau) + 2 r V

        \tau \dot V = V^2 - \pi^2\tau^2 r^2 + \eta + J\tau r + I + c_r C_r + c_v C_V

    Dimensionless time in units of the membrane time constant; like TVB we read one time unit as
    1 ms. The equations and defaults match The Virtual Brain's ``MontbrioPazoRoxin`` so that
    trajectories can be compared. The firing rate is clamped at ``r >= 0``.

    Parameters (each a scalar or an ``(n_regions,)`` array):
        tau: membrane time constant [ms]. Default 1.
        I: external current [dimensionless]. Default 0.
        Delta: half-width of the Lorentzian distribution of excitabilities. Default 1.
        J: mean synaptic weight. Default 15.
        eta: mean neuronal excitability (the usual regional parameter). Default -5.
        cr: weight of the coupling through r. Default 1.
        cv: weight of the coupling through V. Default 0 (then V is not sent through the
            connectome at all, which halves the coupling work).

    Step size: the high-activity state is a weakly damped focus that turns faster the higher
    ``r`` is (about ``sqrt(2 r (2 pi^2 r - J))`` rad/ms), and a Heun step amplifies such an
    oscillation by about ``1 + (omega dt)^4 / 8``, which soon beats the weak damping. A single
    node with ``eta=-4.6, J=14.5, Delta=0.7`` and a constant input of 5 (e.g. ``G = 2`` times a
    row sum of 2.5 times ``r = 1``) diverges at ``dt = 0.1`` ms and is stable at 0.05; an input
    of 20 needs ``dt <= 0.02`` (tests/test_models_analytic.py checks these against the linear
    theory). Runs that keep every region in the low state are fine at 0.1 ms; runs that switch
    regions up need a smaller ``dt`` (TVB studies use 0.01 ms) or weaker coupling. ``simulate``
    reports a divergence (``on_divergence``); it never returns NaNs silently.

    Reference: E. Montbrio, D. Pazo, A. Roxin (2015) Phys. Rev. X 5, 021028; whole-brain use as in
    Rabuffo et al. (2021) eNeuro 8(5).
    """

    tau: float | Array = 1.0
    I: float | Array = 0.0  # noqa: E741
    Delta: float | Array = 1.0
    J: float | Array = 15.0
    eta: float | Array = -5.0
    cr: float | Array = 1.0
    cv: float | Array = 0.0

    state_names: ClassVar[tuple[str, ...]] = ("r", "V")
    state_ranges: ClassVar[dict[str, tuple[float, float]]] = {"r": (0.0, 2.0), "V": (-2.0, 1.5)}
    state_bounds: ClassVar[dict[int, tuple[float | None, float | None]]] = {0: (0.0, None)}
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "eta": (-10.0, 0.0),
        "J": (0.0, 25.0),
        "Delta": (0.1, 5.0),
        "tau": (0.5, 5.0),
        "I": (-5.0, 5.0),
    }
    bold_var: ClassVar[str] = "r"
    eeg_var: ClassVar[str] = "V"
    region_local: ClassVar[bool] = True
    # external current of the QIF population
    stimulus_parameter: ClassVar[str | None] = "I"

    def coupling_vars(self) -> tuple[int, ...]:
        return (0,) if _is_static_zero(self.cv) else (0, 1)

    def fixed_point_guess(self, n_regions: int) -> Array:
        # the isolated region's low-activity (down) state for eta < 0: V ~ -sqrt(-eta),
        # r = Delta / (2 pi tau |V|) from dr/dt = 0
        V = -jnp.sqrt(jnp.maximum(-jnp.asarray(self.eta, float), 0.25))
        r = self.Delta / (2.0 * jnp.pi * self.tau * -V)
        return jnp.stack(
            jnp.broadcast_arrays(r * jnp.ones((n_regions,)), V * jnp.ones((n_regions,)))
        )

    def dfun(self, state: Array, coupling: Array) -> Array:
        r, V = state[0], state[1]
        tau = self.tau
        c = self.cr * coupling[0]
        if coupling.shape[0] > 1:
            c = c + self.cv * coupling[1]
        dr = (self.Delta / (jnp.pi * tau) + 2.0 * V * r) / tau
        dV = (V * V - (jnp.pi * tau * r) ** 2 + self.eta + self.J * tau * r + self.I + c) / tau
        return jnp.stack([dr, dV])
