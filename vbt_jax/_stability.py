"""Whether an explicit step is stable for a network's linearisation.

Near a fixed point one step of the simulator is a linear map ``x -> M(dt) x``. When the network
itself is stable there (every eigenvalue of its Jacobian has a negative real part) but the
spectral radius of ``M(dt)`` exceeds 1, the integrator, not the model, diverges: only a smaller
step, or parameters with slower modes, fix it. ``M`` is the Jacobian of the solver's own step
(for Heun the coupling input is held over the step, as in the simulator), with the coupling a
step sees at once: edges whose delay rounds to zero steps and the coupling's dependence on the
receiving region's current state (as in ``Difference``). Input over delayed edges comes from the
history buffer and drives the step from outside.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ArgumentError
from ._solvers import get_solver

# a spectral radius above 1 by less than this is round-off, not growth
_GROWTH_TOL = 1e-9


@dataclasses.dataclass(frozen=True)
class StepStability:
    """The explicit-step stability of one parameter set (see :func:`step_stability`).

    Attributes:
        stable: the step does not amplify a mode that the network damps (always ``True`` when
            the network itself is unstable at the point: then growth is the model's).
        growth: spectral radius of the one-step map ``M(dt)`` (per step).
        decay: the largest real part of the network Jacobian's eigenvalues (1/time unit;
            negative: a stable fixed point).
        dt_max: when unstable, the largest step below ``dt`` found stable (bisection to 0.1%);
            ``None`` when stable.
    """

    stable: bool
    growth: float
    decay: float
    dt_max: float | None


def delay_steps(connectome, *, speed: float, dt: float) -> np.ndarray:
    """(N, N) delays in steps as :func:`vbt_jax.simulate` rounds them (zeros without lengths)."""
    w = np.asarray(connectome.weights)
    if connectome.lengths is None or not np.isfinite(speed):
        return np.zeros(w.shape, int)
    return np.rint(np.asarray(connectome.lengths, float) / speed / dt).astype(int)


def _setup(model, weights, coupling, state, delays, fname):
    W = jnp.asarray(weights, jnp.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ArgumentError(f"{fname}: weights must be (N, N), got shape {W.shape}")
    n, s = W.shape[0], model.n_states
    x0 = jnp.zeros((s, n)) if state is None else jnp.asarray(state, jnp.float64)
    if x0.shape == (s,):
        x0 = jnp.broadcast_to(x0[:, None], (s, n))
    if x0.shape != (s, n):
        raise ArgumentError(
            f"{fname}: state must be ({s},) or ({s}, {n}) for {type(model).__name__} on {n} "
            f"regions, got shape {x0.shape}"
        )
    rowsum = W.sum(axis=1)
    if delays is not None:
        d = np.asarray(delays)
        if d.shape != (n, n):
            raise ArgumentError(f"{fname}: delays must be ({n}, {n}) like weights, got {d.shape}")
        W = jnp.where(jnp.asarray(d) == 0, W, 0.0)
    coupling = model.default_coupling() if coupling is None else coupling
    cvars = np.asarray(model.coupling_vars())

    def coupling_input(x):
        xc = x[cvars]
        return coupling.post(coupling.pre(xc) @ W.T, xc, rowsum)

    return x0, coupling_input


def network_jacobian(model, weights, coupling=None, state=None, *, delays=None) -> np.ndarray:
    """Jacobian of the network dynamics at ``state`` (float64 NumPy array).

    Args:
        model: a neural mass model (:class:`vbt_jax.models.AbstractModel`).
        weights: (N, N) coupling weights (``weights[i, j]`` from region ``j`` to ``i``).
        coupling: the coupling function (the model's default when ``None``).
        state: (n_states, N) or (n_states,) state to linearise at; zeros when ``None``.
        delays: (N, N) delays in steps (:func:`delay_steps`); edges with a non-zero delay are
            left out. ``None``: every edge counts as instantaneous.

    Returns:
        ``(n_states * N, n_states * N)`` matrix for the state flattened row-major (all regions
        of the first state variable first).
    """
    with jax.enable_x64(True):
        x0, cin = _setup(model, weights, coupling, state, delays, "network_jacobian")
        shape = x0.shape

        def rhs(flat):
            x = flat.reshape(shape)
            return model.dfun(x, cin(x)).reshape(-1)

        return np.asarray(jax.jacfwd(rhs)(x0.reshape(-1)), np.float64)


def _step_matrix(model, solver, x0, cin, dt) -> np.ndarray:
    shape = x0.shape

    def step(flat):
        x = flat.reshape(shape)
        return solver.step(model, x, cin(x), None, dt).reshape(-1)

    return np.asarray(jax.jacfwd(step)(x0.reshape(-1)), np.float64)


def _radius(m: np.ndarray) -> float:
    return float(np.abs(np.linalg.eigvals(m)).max())


def step_stability(
    model,
    connectome,
    *,
    dt: float,
    coupling=None,
    solver="heun",
    speed: float = 3.0,
    state=None,
) -> StepStability:
    """Whether the explicit ``solver`` step ``dt`` is stable for ``model`` on ``connectome``
    near ``state`` (see the module docstring).

    Args:
        model: a neural mass model.
        connectome: a :class:`vbt_jax.Connectome` (weights as given to :func:`simulate`).
        dt: the integration step (the model's time unit).
        coupling: the coupling function (the model's default when ``None``).
        solver: ``"heun"``, ``"euler"`` or a solver object.
        speed: conduction speed (mm per time unit), for which edges are delayed.
        state: the state to linearise at (a fixed point; zeros when ``None``).

    Raises:
        ArgumentError: ``dt <= 0``, or weights/state of the wrong shape.
    """
    if not dt > 0:
        raise ArgumentError(f"step_stability: dt must be positive, got {dt}")
    solver = get_solver(solver)
    with jax.enable_x64(True):
        weights = connectome.weights

        def parts(h):
            return _setup(
                model,
                weights,
                coupling,
                state,
                delay_steps(connectome, speed=speed, dt=h),
                "step_stability",
            )

        x0, cin = parts(dt)
        shape = x0.shape

        def rhs(flat):
            x = flat.reshape(shape)
            return model.dfun(x, cin(x)).reshape(-1)

        decay = float(np.linalg.eigvals(np.asarray(jax.jacfwd(rhs)(x0.reshape(-1)))).real.max())
        growth = _radius(_step_matrix(model, solver, x0, cin, dt))
        if decay >= 0 or growth <= 1 + _GROWTH_TOL:
            return StepStability(True, growth, decay, None)
        lo, hi = 0.0, dt
        while hi - lo > 1e-3 * hi:
            mid = 0.5 * (lo + hi)
            x0, cin = parts(mid)
            if _radius(_step_matrix(model, solver, x0, cin, mid)) <= 1 + _GROWTH_TOL:
                lo = mid
            else:
                hi = mid
        return StepStability(False, growth, decay, lo)


__all__ = ["StepStability", "delay_steps", "network_jacobian", "step_stability"]
