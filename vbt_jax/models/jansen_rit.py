"""Jansen-Rit cortical column: pyramidal cells with excitatory and inhibitory interneurons."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jax import Array

from ._base import AbstractModel


class JansenRit(AbstractModel):
    r"""Jansen & Rit (1995) neural mass: three populations, six state variables.

    .. math::
        \dot y_0 = y_3, \quad \dot y_1 = y_4, \quad \dot y_2 = y_5

        \dot y_3 = A a\, S(y_1 - y_2) - 2 a y_3 - a^2 y_0

        \dot y_4 = A a\,[\mu + \alpha_2 J\, S(\alpha_1 J y_0) + c] - 2 a y_4 - a^2 y_1

        \dot y_5 = B b\,\alpha_4 J\, S(\alpha_3 J y_0) - 2 b y_5 - b^2 y_2

        S(v) = 2\nu_{max} / (1 + e^{r (v_0 - v)})

    ``y0``, ``y1``, ``y2`` are the post-synaptic potentials [mV] of the pyramidal population's
    output, of the excitatory input to the pyramidal cells and of the inhibitory input to them;
    ``y3``, ``y4``, ``y5`` are their time derivatives [mV/ms]. ``y1 - y2`` is the pyramidal
    membrane potential, the usual EEG source.

    Equations, state order and defaults are those of The Virtual Brain's ``JansenRit`` (so
    trajectories can be compared). Relative to the 1995 paper: time is in ms (rates in 1/ms), the
    paper's constants C1..C4 are written ``J * a_1`` .. ``J * a_4`` with C = J = 135, and the
    stochastic pulse density p(t) (120-320 Hz) is replaced by its constant mean ``mu``; the
    ``- a^2 y_0`` term of the y3 equation is the paper's (some TVB docstrings print ``2 a^2``,
    the code and this model use ``a^2``). Long-range input enters the excitatory-interneuron
    equation. With the default :class:`~vbt_jax.Sigmoidal` coupling (TVB's ``SigmoidalJansenRit``)
    each source sends its firing rate ``cmin + (cmax - cmin) / (1 + exp(r (6 - (y1 - y2))))``:
    note that TVB's coupling sigmoid is centred at 6.0 mV, not at the model's ``v0 = 5.52``.
    With a :class:`~vbt_jax.Linear` coupling, the (linearly coupled) ``y1 - y2`` is used instead.

    Parameters (each a scalar or an ``(n_regions,)`` array):
        A: maximal excitatory PSP amplitude [mV]. Default 3.25.
        B: maximal inhibitory PSP amplitude [mV]. Default 22.
        a: inverse excitatory time constant [1/ms]. Default 0.1.
        b: inverse inhibitory time constant [1/ms]. Default 0.05.
        v0: sigmoid midpoint (firing threshold) [mV]. Default 5.52.
        nu_max: half the maximal firing rate [1/ms]. Default 0.0025.
        r: sigmoid steepness [1/mV]. Default 0.56.
        J: average number of synapses between populations. Default 135.
        a_1, a_2, a_3, a_4: connection probabilities (pyramidal -> excitatory interneurons,
            excitatory interneurons -> pyramidal, pyramidal -> inhibitory interneurons,
            inhibitory interneurons -> pyramidal). Defaults 1.0, 0.8, 0.25, 0.25.
        mu: mean external input pulse density [1/ms]. Default 0.22 (220 Hz, TVB's default).
            An isolated column started at rest sits at a fixed point for mu below about 0.11,
            oscillates at 2.5-7 Hz (large, spike-like cycles) for mu in [0.12, 0.22] and in the
            alpha band (9-11 Hz) for mu in [0.23, 0.35].

    Observation drives: EEG ``y1 - y2`` [mV] (the pyramidal membrane potential); BOLD the
    pyramidal firing rate ``S(y1 - y2)`` [1/ms, between 0 and ``2 nu_max`` = 0.005], a bounded,
    positive activity measure (multiply with the Bold monitor's ``scale``, e.g. 1000 to express
    it in Hz).

    Reference: B. H. Jansen, V. G. Rit (1995) Biol. Cybern. 73, 357-366; TVB implementation as in
    Sanz-Leon et al. (2015) NeuroImage 111, 385-430.
    """

    A: float | Array = 3.25
    B: float | Array = 22.0
    a: float | Array = 0.1
    b: float | Array = 0.05
    v0: float | Array = 5.52
    nu_max: float | Array = 0.0025
    r: float | Array = 0.56
    J: float | Array = 135.0
    a_1: float | Array = 1.0
    a_2: float | Array = 0.8
    a_3: float | Array = 0.25
    a_4: float | Array = 0.25
    mu: float | Array = 0.22

    state_names: ClassVar[tuple[str, ...]] = ("y0", "y1", "y2", "y3", "y4", "y5")
    # ranges covering the limit cycles for mu in [0.12, 0.32] (TVB's own ranges, e.g. y1 in
    # [-500, 500] mV, start most columns far from any attractor)
    state_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "y0": (0.0, 0.15),
        "y1": (5.0, 28.0),
        "y2": (4.0, 24.0),
        "y3": (-0.005, 0.005),
        "y4": (-0.4, 0.4),
        "y5": (-0.3, 0.4),
    }
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "A": (2.6, 9.75),
        "B": (17.6, 110.0),
        "a": (0.05, 0.15),
        "b": (0.025, 0.075),
        "v0": (3.12, 6.0),
        "r": (0.28, 0.84),
        "J": (65.0, 1350.0),
        "mu": (0.0, 0.32),
    }
    # both drives are functions of y1 - y2; see eeg_drive and bold_drive
    bold_var: ClassVar[str] = "y1"
    eeg_var: ClassVar[str] = "y1"
    region_local: ClassVar[bool] = True
    # mean input firing rate to the pyramidal population [1/ms]
    stimulus_parameter: ClassVar[str | None] = "mu"

    def coupling_vars(self) -> tuple[int, ...]:
        return (1, 2)

    def default_coupling(self):
        from .._coupling import Sigmoidal

        return Sigmoidal()

    def sigmoid(self, v: Array) -> Array:
        """The population firing rate ``S(v)`` [1/ms] at mean membrane potential ``v`` [mV]."""
        return 2.0 * self.nu_max / (1.0 + jnp.exp(self.r * (self.v0 - v)))

    def fixed_point_guess(self, n_regions: int) -> Array:
        # the isolated column's rest state: damped fixed-point iteration of its equations
        # (y3 = y4 = y5 = 0; y0, y1, y2 the steady responses to the sigmoids), one loop in the
        # trace however many iterations
        dtype = jnp.result_type(self.A, self.B, self.mu, self.J, float)

        def step(_, y):
            y0, y1, y2 = y
            t0 = self.A / self.a * self.sigmoid(y1 - y2)
            s_exc = self.sigmoid(self.a_1 * self.J * y0)
            t1 = self.A / self.a * (self.mu + self.a_2 * self.J * s_exc)
            t2 = self.B / self.b * self.a_4 * self.J * self.sigmoid(self.a_3 * self.J * y0)
            return tuple((0.5 * (u + t)).astype(dtype) for u, t in ((y0, t0), (y1, t1), (y2, t2)))

        zero = jnp.zeros((n_regions,), dtype)
        y0, y1, y2 = jax.lax.fori_loop(0, 200, step, (zero, zero, zero))
        return jnp.stack(jnp.broadcast_arrays(y0, y1, y2, zero, zero, zero))

    def dfun(self, state: Array, coupling: Array) -> Array:
        y0, y1, y2, y3, y4, y5 = state
        c = coupling[0] if coupling.shape[0] == 1 else coupling[0] - coupling[1]
        Aa = self.A * self.a
        Bb = self.B * self.b
        s_pyr = self.sigmoid(y1 - y2)
        s_exc = self.sigmoid(self.a_1 * self.J * y0)
        s_inh = self.sigmoid(self.a_3 * self.J * y0)
        dy3 = Aa * s_pyr - 2.0 * self.a * y3 - self.a**2 * y0
        dy4 = Aa * (self.mu + self.a_2 * self.J * s_exc + c) - 2.0 * self.a * y4 - self.a**2 * y1
        dy5 = Bb * (self.a_4 * self.J * s_inh) - 2.0 * self.b * y5 - self.b**2 * y2
        return jnp.stack([y3, y4, y5, dy3, dy4, dy5])

    def eeg_drive(self, state: Array) -> Array:
        """The pyramidal membrane potential ``y1 - y2`` [mV], shape (N,)."""
        return state[1] - state[2]

    def bold_drive(self, state: Array) -> Array:
        """The pyramidal firing rate ``S(y1 - y2)`` [1/ms], shape (N,)."""
        return self.sigmoid(state[1] - state[2])
