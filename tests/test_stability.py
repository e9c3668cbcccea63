"""Explicit-step stability of a linearised network against closed forms and against simulation."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax.models import StuartLandau


def test_network_jacobian_equals_the_analytic_hopf_jacobian():
    conn = vbt.dk84().normalised("max")
    model = StuartLandau(a=jnp.linspace(-0.3, -0.01, 84), omega=0.2)
    J = vbt.network_jacobian(model, conn.weights, vbt.Difference(G=0.07))
    ref = np.asarray(
        vbt.hopf_jacobian(np.linspace(-0.3, -0.01, 84), 0.2, np.asarray(conn.weights), 0.07),
        np.float64,
    )
    np.testing.assert_allclose(J, ref, rtol=1e-6, atol=1e-7)


def _uncoupled(a, omega):
    w = np.zeros((3, 3))
    return StuartLandau(a=a, omega=omega), vbt.Connectome(w, np.zeros_like(w))


@pytest.mark.parametrize("a,omega", [(-0.5, 0.0), (-0.5, 0.3), (-2.0, 5.0)])
def test_step_limit_matches_closed_forms(a, omega):
    model, conn = _uncoupled(a, omega)
    lam = complex(a, omega)
    # Euler: |1 + h lam| = 1 at h = -2 Re(lam) / |lam|^2
    s = vbt.step_stability(model, conn, dt=10.0, solver="euler")
    assert not s.stable and s.decay == pytest.approx(a)
    assert s.growth == pytest.approx(abs(1 + 10.0 * lam), rel=1e-9)
    assert s.dt_max == pytest.approx(-2 * a / abs(lam) ** 2, rel=2e-3)
    # Heun without coupling: R(z) = 1 + z + z^2 / 2; on the real axis |R| = 1 at z = -2
    h = vbt.step_stability(model, conn, dt=10.0, solver="heun")
    z = h.dt_max * lam
    assert abs(1 + z + z * z / 2) == pytest.approx(1.0, abs=5e-3)
    if omega == 0.0:
        assert h.dt_max == pytest.approx(2 / abs(a), rel=2e-3)
    assert vbt.step_stability(model, conn, dt=0.99 * h.dt_max).stable
    assert not vbt.step_stability(model, conn, dt=1.01 * h.dt_max).stable


def test_growth_of_an_unstable_network_is_not_the_integrators():
    model, conn = _uncoupled(0.1, 1.0)
    s = vbt.step_stability(model, conn, dt=1.0)
    assert s.stable and s.decay == pytest.approx(0.1) and s.growth > 1


@pytest.mark.parametrize("delayed", [False, True])
@pytest.mark.parametrize("solver", ["heun", "euler"])
def test_flagged_step_diverges_in_the_simulator_and_the_limit_does_not(solver, delayed):
    conn = vbt.dk84().normalised("max")
    if not delayed:
        conn = vbt.Connectome(conn.weights, np.zeros_like(conn.weights), labels=conn.labels)
    model = StuartLandau(a=-0.8, omega=0.5)
    coupling = vbt.Difference(G=0.3)
    limit = vbt.step_stability(model, conn, dt=5.0, coupling=coupling, solver=solver).dt_max
    x0 = 1e-3 * jr.normal(jr.key(0), (2, 84))
    amp = {}
    for factor in (0.9, 1.1):
        dt = factor * limit
        sol = vbt.simulate(
            model,
            conn,
            dt=dt,
            duration=400 * dt,
            key=jr.key(1),
            coupling=coupling,
            initial_state=x0,
            monitors=vbt.monitors.Raw(period=dt),
            solver=solver,
            on_divergence="flag",
        )
        st = vbt.step_stability(model, conn, dt=dt, coupling=coupling, solver=solver)
        assert st.stable == (factor < 1)
        x = np.asarray(sol["raw"])
        amp[factor] = np.inf if bool(sol.diverged) else float(np.abs(x[-1]).max())
    start = float(np.abs(x0).max())
    assert amp[0.9] < 0.1 * start  # decays
    assert amp[1.1] > 10 * start  # grows until the nonlinearity bounds it, or overflows


def test_bad_arguments_are_named():
    model, conn = _uncoupled(-1.0, 0.0)
    with pytest.raises(vbt.ArgumentError, match="dt must be positive"):
        vbt.step_stability(model, conn, dt=0.0)
    with pytest.raises(vbt.ArgumentError, match=r"weights must be \(N, N\)"):
        vbt.network_jacobian(model, np.ones((3, 2)))
    with pytest.raises(vbt.ArgumentError, match=r"state must be \(2,\) or \(2, 3\)"):
        vbt.step_stability(model, conn, dt=1.0, state=np.zeros(5))
