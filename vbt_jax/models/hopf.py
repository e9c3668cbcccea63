"""Stuart-Landau oscillator: the normal form of a supercritical Hopf bifurcation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import jax.numpy as jnp
from jax import Array

from ._base import AbstractModel, Mechanism

_A_NOTE = (
    "On the Stuart-Landau (Hopf) model every effect is a relative change of the bifurcation "
    "parameter a (< 0 below the bifurcation): a negative efficacy moves a towards 0 (larger, "
    "slower fluctuations: more excitable), a positive one away from 0; with efficacy > -1 "
    "a never crosses 0."
)


class StuartLandau(AbstractModel):
    r"""Hopf normal form in Cartesian coordinates, one oscillator per region (Deco et al. 2017).

    .. math::
        \dot x = (a - x^2 - y^2)\, x - \omega\, y + c_x

        \dot y = (a - x^2 - y^2)\, y + \omega\, x + c_y

    For ``a < 0`` the origin is a stable focus and noise produces damped oscillations at angular
    frequency ``omega``; for ``a > 0`` a limit cycle of radius ``sqrt(a)`` appears. The
    long-range input ``(c_x, c_y)`` couples ``x`` and ``y`` separately; the default is the
    diffusive :class:`~vbt_jax.Difference` coupling ``G * sum_j W_ij (x_j - x_i)`` of Deco et al.
    (2017).

    Time is in ms, so ``a`` is in 1/ms and ``omega`` in rad/ms. The equations, units and defaults
    are those of The Virtual Brain's ``SupHopf`` (default ``omega = 1 rad/ms``, i.e. 159 Hz);
    build a model from frequencies in Hz with :meth:`from_frequency` (e.g. 10 Hz alpha, or the
    0.04-0.07 Hz BOLD band of Deco et al. 2017) and read them back with :attr:`frequency`.

    Parameters (each a scalar or an ``(n_regions,)`` array):
        a: bifurcation parameter [1/ms]. Default -0.5.
        omega: angular frequency [rad/ms]. Default 1.0.

    Both observation drives are ``x``.

    Reference: G. Deco, M. L. Kringelbach, V. K. Jirsa, P. Ritter (2017) Sci. Rep. 7, 3095;
    Y. A. Kuznetsov (2013) Elements of Applied Bifurcation Theory, Springer.
    """

    a: float | Array = -0.5
    omega: float | Array = 1.0

    state_names: ClassVar[tuple[str, ...]] = ("x", "y")
    # TVB draws from [-5, 5]; there the cubic term makes Heun at dt = 0.1 ms unstable
    state_ranges: ClassVar[dict[str, tuple[float, float]]] = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "a": (-1.0, 1.0),
        "omega": (0.0, 1.0),
    }
    bold_var: ClassVar[str] = "x"
    eeg_var: ClassVar[str] = "x"
    region_local: ClassVar[bool] = True
    # no input term: excitability (the bifurcation parameter) [1/ms]
    stimulus_parameter: ClassVar[str | None] = "a"
    # more excitatory gain moves a towards 0 (more excitable), more inhibition away from it
    mechanisms: ClassVar[Mapping[str, Mechanism]] = {
        "excitatory_gain": Mechanism(("a",), -0.5, _A_NOTE),
        "feedback_inhibition": Mechanism(("a",), 0.5, _A_NOTE),
    }

    @classmethod
    def from_frequency(cls, f_hz: float | Array, a: float | Array = -0.5) -> StuartLandau:
        """A model oscillating at ``f_hz`` [Hz]: ``omega = 2 pi f / 1000`` rad/ms.

        Args:
            f_hz: intrinsic frequency per region [Hz].
            a: bifurcation parameter [1/ms].
        """
        return cls(a=a, omega=2.0 * math.pi * f_hz / 1000.0)

    @property
    def frequency(self) -> Array:
        """The intrinsic frequency ``omega / 2 pi`` in Hz (scalar or per region)."""
        return jnp.asarray(self.omega) * 1000.0 / (2.0 * math.pi)

    def coupling_vars(self) -> tuple[int, ...]:
        return (0, 1)

    def default_coupling(self):
        from .._coupling import Difference

        return Difference()

    def fixed_point_guess(self, n_regions: int) -> Array:
        # the origin is a fixed point for every a; it is stable for a < 0
        return jnp.zeros((2, n_regions))

    def dfun(self, state: Array, coupling: Array) -> Array:
        x, y = state[0], state[1]
        g = self.a - x * x - y * y
        dx = g * x - self.omega * y + coupling[0]
        dy = g * y + self.omega * x + coupling[1]
        return jnp.stack([dx, dy])
