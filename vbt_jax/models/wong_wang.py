"""Reduced Wong-Wang dynamic mean field with excitatory and inhibitory pools (Deco et al. 2014)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from ._base import AbstractModel, Mechanism


def _transfer(x: Array, d: float | Array) -> Array:
    """``x / (1 - exp(-d x))`` with its removable singularity at ``x = 0`` filled in (``1/d``).

    Uses ``expm1`` for accuracy near 0 and a series where ``|d x|`` is tiny, so values and
    gradients stay finite everywhere (the plain formula gives 0/0 at x = 0).
    """
    dx = d * x
    small = jnp.abs(dx) < 1e-4
    dx_safe = jnp.where(small, 1.0, dx)
    x_safe = jnp.where(small, 1.0 / d, x)
    # exp(-dx) overflows for dx < -88 (float32); there the rate is ~0 anyway
    full = x_safe / -jnp.expm1(-jnp.maximum(dx_safe, -80.0))
    series = (1.0 + dx / 2.0 + dx * dx / 12.0) / d
    return jnp.where(small, series, full)


class ReducedWongWangExcInh(AbstractModel):
    r"""Dynamic mean field of NMDA-gated excitatory and GABA-gated inhibitory pools per region.

    .. math::
        I_E = W_E I_0 + w_+ J_N S_E - J_i S_I + J_N C + I_{ext}, \qquad
        r_E = H_E(I_E) = \frac{a_E I_E - b_E}{1 - e^{-d_E (a_E I_E - b_E)}}

        I_I = W_I I_0 + J_N S_E - S_I + \lambda J_N C, \qquad
        r_I = H_I(I_I) = \frac{a_I I_I - b_I}{1 - e^{-d_I (a_I I_I - b_I)}}

        \dot S_E = -S_E / \tau_E + (1 - S_E)\, \gamma_E\, r_E, \qquad
        \dot S_I = -S_I / \tau_I + \gamma_I\, r_I

    where ``C`` is the long-range input from the coupling function: with the default
    :class:`~vbt_jax.Linear` coupling ``C_k = G * sum_j W_kj S_E,j(t - d_kj)``.

    Equations and defaults are The Virtual Brain's ``ReducedWongWangExcInh``, with one change of
    bookkeeping: TVB keeps the global coupling ``G`` as a model parameter (and multiplies the
    output of its coupling function by ``G J_N``); here ``G`` lives only in the coupling function
    (``Linear(G=...)``), so a TVB model with ``G = g`` and ``Linear(a=1)`` coupling equals this
    model with ``Linear(G=g)``; the default here is ``Linear(G=0.05)``, suited to connectomes
    normalised to a maximum weight of 1 (see :func:`with_fic`). Rates ``r_E, r_I`` are in Hz,
    currents in nA, time in ms (so the kinetic constants are the paper's gamma / 1000).
    ``S_E`` and ``S_I`` are clamped to [0, 1].
    Without noise the network settles to a fixed point; its BOLD dynamics come from noise.

    Use :func:`with_fic` to set the per-region inhibitory weights ``J_i`` by feedback
    inhibition control, so that every excitatory pool fires at about 3 Hz.

    Parameters (each a scalar or an ``(n_regions,)`` array):
        a_e: excitatory gain [1/nC]. Default 310.
        b_e: excitatory threshold [Hz]. Default 125.
        d_e: excitatory curvature [s]. Default 0.16.
        gamma_e: excitatory kinetic constant [1/ms per Hz]. Default 0.641e-3.
        tau_e: NMDA decay time [ms]. Default 100.
        w_p: local excitatory recurrence. Default 1.4.
        J_N: NMDA coupling [nA]. Default 0.15.
        W_e: scale of the external input to the excitatory pool. Default 1.
        a_i: inhibitory gain [1/nC]. Default 615.
        b_i: inhibitory threshold [Hz]. Default 177.
        d_i: inhibitory curvature [s]. Default 0.087.
        gamma_i: inhibitory kinetic constant [1/ms per Hz]. Default 1e-3.
        tau_i: GABA decay time [ms]. Default 10.
        J_i: inhibitory-to-excitatory weight [nA] (set per region by FIC). Default 1.
        W_i: scale of the external input to the inhibitory pool. Default 0.7.
        I_o: effective external input [nA]. Default 0.382.
        I_ext: external stimulus current to the excitatory pool [nA]. Default 0.
        lamda: fraction of the long-range input that also reaches the inhibitory pool. Default 0.

    Reference: G. Deco, A. Ponce-Alvarez, P. Hagmann, G. L. Romani, D. Mantini, M. Corbetta (2014)
    J. Neurosci. 34(23), 7886-7898; K.-F. Wong, X.-J. Wang (2006) J. Neurosci. 26(4), 1314-1328.
    """

    a_e: float | Array = 310.0
    b_e: float | Array = 125.0
    d_e: float | Array = 0.160
    gamma_e: float | Array = 0.641 / 1000.0
    tau_e: float | Array = 100.0
    w_p: float | Array = 1.4
    J_N: float | Array = 0.15
    W_e: float | Array = 1.0
    a_i: float | Array = 615.0
    b_i: float | Array = 177.0
    d_i: float | Array = 0.087
    gamma_i: float | Array = 1.0 / 1000.0
    tau_i: float | Array = 10.0
    J_i: float | Array = 1.0
    W_i: float | Array = 0.7
    I_o: float | Array = 0.382
    I_ext: float | Array = 0.0
    lamda: float | Array = 0.0

    state_names: ClassVar[tuple[str, ...]] = ("S_E", "S_I")
    state_ranges: ClassVar[dict[str, tuple[float, float]]] = {"S_E": (0.0, 1.0), "S_I": (0.0, 1.0)}
    state_bounds: ClassVar[dict[int, tuple[float | None, float | None]]] = {
        0: (0.0, 1.0),
        1: (0.0, 1.0),
    }
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "w_p": (0.5, 2.0),
        "J_N": (0.05, 0.5),
        "J_i": (0.001, 2.0),
        "I_o": (0.2, 0.5),
        "W_e": (0.5, 1.5),
        "W_i": (0.4, 1.0),
        "lamda": (0.0, 1.0),
    }
    bold_var: ClassVar[str] = "S_E"
    eeg_var: ClassVar[str] = "S_E"
    region_local: ClassVar[bool] = True
    # external stimulus current to the excitatory pool [nA]
    stimulus_parameter: ClassVar[str | None] = "I_ext"
    mechanisms: ClassVar[Mapping[str, Mechanism]] = {
        # a_e and b_e scaled together multiply the transfer function's argument a_e I_E - b_e:
        # the neuromodulated gain of Deco et al. (2018)
        "excitatory_gain": Mechanism(
            ("a_e", "b_e"),
            0.2,
            "Excitatory gain: a_e and b_e scaled together (the argument a_e I_E - b_e of the "
            "excitatory transfer function times the gain).",
        ),
        "feedback_inhibition": Mechanism(
            ("J_i",), 0.2, "Feedback inhibition: the inhibitory-to-excitatory weight J_i scaled."
        ),
    }

    def default_coupling(self):
        from .._coupling import Linear

        # TVB's model default G = 2 (with unit Linear coupling) saturates a connectome
        # normalised to max weight 1; 0.05 keeps connectivity_76 / max in the regime where the
        # FIC fixed point is stable. Re-run with_fic for every G.
        return Linear(G=0.05)

    def fixed_point_guess(self, n_regions: int) -> Array:
        # the feedback-inhibition-controlled state: S_E where r_E = 3 Hz, S_I near its value there
        g_t_r = jnp.asarray(self.gamma_e * self.tau_e * 3.0)
        s_e = jnp.broadcast_to(g_t_r / (1.0 + g_t_r), (n_regions,))
        return jnp.stack([s_e, jnp.full((n_regions,), 0.04)])

    def currents(self, state: Array, coupling: Array) -> tuple[Array, Array]:
        """Total input currents ``(I_E, I_I)`` [nA] of the two pools, each (N,)."""
        S_E, S_I = state[0], state[1]
        cc = self.J_N * coupling[0]
        jn_se = self.J_N * S_E
        I_E = self.W_e * self.I_o + self.w_p * jn_se - self.J_i * S_I + cc + self.I_ext
        I_I = self.W_i * self.I_o + jn_se - S_I + self.lamda * cc
        return I_E, I_I

    def firing_rates(self, state: Array, coupling: Array) -> tuple[Array, Array]:
        """Excitatory and inhibitory firing rates ``(r_E, r_I)`` [Hz], each (N,).

        Args:
            state: ``(2, N)`` state ``(S_E, S_I)``.
            coupling: ``(1, N)`` long-range input after the coupling function (zeros for
                isolated regions).
        """
        I_E, I_I = self.currents(state, coupling)
        r_E = _transfer(self.a_e * I_E - self.b_e, self.d_e)
        r_I = _transfer(self.a_i * I_I - self.b_i, self.d_i)
        return r_E, r_I

    def dfun(self, state: Array, coupling: Array) -> Array:
        S_E, S_I = state[0], state[1]
        r_E, r_I = self.firing_rates(state, coupling)
        dS_E = -S_E / self.tau_e + (1.0 - S_E) * self.gamma_e * r_E
        dS_I = -S_I / self.tau_i + self.gamma_i * r_I
        return jnp.stack([dS_E, dS_I])


# ------------------------------------------------------------------ feedback inhibition control


def _np_transfer(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    dy = d * y
    out = np.empty_like(y)
    small = np.abs(dy) < 1e-8
    out[small] = 1.0 / d[small]
    out[~small] = y[~small] / -np.expm1(-dy[~small])
    return out


def _bisect(f, lo: np.ndarray, hi: np.ndarray, iters: int = 200) -> np.ndarray:
    """Vectorised bisection for increasing ``f`` with ``f(lo) <= 0 <= f(hi)`` (float64)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        neg = f(mid) < 0
        lo = np.where(neg, mid, lo)
        hi = np.where(neg, hi, mid)
    return 0.5 * (lo + hi)


def with_fic(
    model: ReducedWongWangExcInh,
    connectome_weights,
    G: float,
    *,
    target_rate: float = 3.0,
    b: float = 0.0,
) -> ReducedWongWangExcInh:
    """Feedback inhibition control: per-region ``J_i`` putting every excitatory pool at
    ``target_rate``.

    Deco et al. (2014) tuned each ``J_i`` by a slow iteration of simulations until the
    excitatory rate was 3 Hz everywhere. The iteration's limit is the fixed point at which every
    region fires at the target, and that point can be solved for directly (exactly, in float64
    NumPy; no linearisation):

    1. ``dS_E/dt = 0`` at ``r_E = target`` gives ``S_E* = g t r / (1 + g t r)`` with
       ``g = gamma_e``, ``t = tau_e``;
    2. the long-range input at that point is ``C = G W S_E* + b``;
    3. ``dS_I/dt = 0`` is a monotone scalar equation for ``S_I*`` per region (bisection);
    4. inverting ``H_E`` gives the current ``I_E*`` with ``H_E(I_E*) = target`` (bisection), and
       ``J_i = (W_e I_0 + w_+ J_N S_E* + J_N C + I_ext - I_E*) / S_I*``.

    The fixed point is exact (delays do not move fixed points), but its stability is not
    guaranteed: it is lost when ``G`` times the connectome's spectral radius grows. Measured for
    tvb-data's connectivity_76 normalised to a maximum weight of 1 (spectral radius 14.9) with
    the default parameters and no delays: stable for ``G`` below about 0.09, unstable above
    (the network then drifts away from 3 Hz). Check it for a new connectome, e.g. by a
    deterministic simulation from a random state.

    Args:
        model: the model whose other parameters are kept (scalars or ``(N,)`` arrays).
        connectome_weights: ``(N, N)`` weights ``W[i, j]`` from ``j`` to ``i``, as given to
            :func:`vbt_jax.simulate` (e.g. ``connectome.weights``).
        G: global coupling of the :class:`~vbt_jax.Linear` coupling used in the simulation.
        target_rate: the excitatory rate to reach [Hz]. Default 3.
        b: the Linear coupling's offset (default 0).

    Returns:
        A copy of ``model`` with ``J_i`` an ``(N,)`` float64 NumPy array.

    Raises:
        ArgumentError: non-square weights, a non-positive target, or a region whose inhibitory
            gating at the target would leave [0, 1] or whose required ``J_i`` is negative.
    """
    W = np.asarray(connectome_weights, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ShapeError(f"with_fic: connectome_weights must be (N, N), got shape {W.shape}")
    if not target_rate > 0:
        raise ArgumentError(f"with_fic: target_rate must be > 0 Hz, got {target_rate}")
    n = W.shape[0]

    def p(name):
        return np.broadcast_to(np.asarray(getattr(model, name), dtype=np.float64), (n,)).copy()

    g_e, t_e, J_N = p("gamma_e"), p("tau_e"), p("J_N")
    a_e, b_e, d_e = p("a_e"), p("b_e"), p("d_e")
    a_i, b_i, d_i = p("a_i"), p("b_i"), p("d_i")
    g_i, t_i = p("gamma_i"), p("tau_i")
    r = float(target_rate)

    S_E = g_e * t_e * r / (1.0 + g_e * t_e * r)
    C = float(G) * (W @ S_E) + float(b)
    cc = J_N * C
    base_i = p("W_i") * p("I_o") + J_N * S_E + p("lamda") * cc

    def f_inh(S_I):  # increasing in S_I; zero at the inhibitory steady state
        return S_I / t_i - g_i * _np_transfer(a_i * (base_i - S_I) - b_i, d_i)

    hi_i = t_i * g_i * _np_transfer(a_i * base_i - b_i, d_i) + 1.0
    S_I = _bisect(f_inh, np.zeros(n), hi_i)
    if np.any(S_I > 1.0) or np.any(S_I <= 0.0):
        k = int(np.argmax((S_I > 1.0) | (S_I <= 0.0)))
        raise ArgumentError(
            f"with_fic: region {k} needs S_I = {S_I[k]:.4g} outside (0, 1] to fire at "
            f"{r} Hz (G={G}); lower G or renormalise the weights"
        )

    # invert H_E (increasing) for the required excitatory current
    def f_exc(y):
        return _np_transfer(y, d_e) - r

    y = _bisect(f_exc, np.full(n, -1e3), np.full(n, 1e3))
    I_E = (y + b_e) / a_e
    J_i = (p("W_e") * p("I_o") + p("w_p") * J_N * S_E + cc + p("I_ext") - I_E) / S_I
    if np.any(J_i < 0):
        k = int(np.argmin(J_i))
        raise ArgumentError(
            f"with_fic: region {k} would need a negative J_i = {J_i[k]:.4g} to fire at {r} Hz "
            f"(its excitatory input is too weak; raise G or I_o)"
        )
    return eqx.tree_at(lambda m: m.J_i, model, J_i)


def _monotone_root(f, x0, steps):
    """Root of a scalar-per-region monotone ``f`` by Newton's method from ``x0`` (a point from
    which the iteration is monotone), with the implicit gradient of the root."""

    def newton(g, x):
        def body(_, x):
            v, dv = jax.jvp(g, (x,), (jnp.ones_like(x),))
            return x - v / dv

        return jax.lax.fori_loop(0, steps, body, x)

    def tangent_solve(g, y):
        # g is elementwise (one equation per region): its Jacobian is diagonal
        return y / jax.jvp(g, (jnp.zeros_like(y),), (jnp.ones_like(y),))[1]

    return jax.lax.custom_root(f, jax.lax.stop_gradient(x0), newton, tangent_solve)


def feedback_inhibition(
    model: ReducedWongWangExcInh,
    connectome_weights,
    G,
    *,
    target_rate: float = 3.0,
    b=0.0,
    newton_steps: int = 40,
) -> tuple[ReducedWongWangExcInh, Array]:
    """:func:`with_fic` in JAX: traceable and differentiable in every parameter and in ``G``.

    Solves the same fixed point (steps 1-4 of :func:`with_fic`) with Newton's method instead of
    bisection: from ``S_I = 0`` for the inhibitory steady state (a concave increasing equation:
    Newton approaches the root from below) and from above the target for the inverse of the
    excitatory transfer function (convex increasing: from above). Gradients are implicit.

    Args:
        model: the model whose other parameters are kept (scalars, ``(N,)`` arrays or tracers).
        connectome_weights: ``(N, N)`` weights.
        G: global coupling of the :class:`~vbt_jax.Linear` coupling.
        target_rate: the excitatory rate to reach [Hz].
        b: the Linear coupling's offset.
        newton_steps: iterations of each Newton solve (static).

    Returns:
        ``(model with J_i (N,), fixed point (2, N))``: the fixed point is exact, so
        :func:`vbt_jax.linearise` can start (and stay) there.

    Raises:
        ShapeError: non-square weights.
    """
    W = jnp.asarray(connectome_weights)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ShapeError(f"feedback_inhibition: weights must be (N, N), got shape {W.shape}")
    n = W.shape[0]
    m = model
    r = target_rate
    ones = jnp.ones((n,), W.dtype)
    S_E = ones * (m.gamma_e * m.tau_e * r / (1.0 + m.gamma_e * m.tau_e * r))
    cc = m.J_N * (G * (W @ S_E) + b)
    base_i = ones * (m.W_i * m.I_o + m.J_N * S_E + m.lamda * cc)

    def f_inh(S_I):
        return S_I / m.tau_i - m.gamma_i * _transfer(m.a_i * (base_i - S_I) - m.b_i, m.d_i)

    S_I = _monotone_root(f_inh, jnp.zeros((n,), W.dtype), newton_steps)

    def f_exc(y):
        return _transfer(y, m.d_e) - r

    y = _monotone_root(f_exc, ones * (r + 1.0 / m.d_e + 1.0), newton_steps)
    I_E = (y + m.b_e) / m.a_e
    J_i = (m.W_e * m.I_o + m.w_p * m.J_N * S_E + cc + m.I_ext - I_E) / S_I
    return eqx.tree_at(lambda mm: mm.J_i, model, J_i), jnp.stack([S_E, S_I])
