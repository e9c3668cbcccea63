"""Linearised stationary covariance: Lyapunov solver vs SciPy, Hopf Jacobian vs the model,
covariance vs long simulations, gradients vs finite differences."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg as sla

import vbt_jax as vbt
from vbt_jax._errors import ConfigError
from vbt_jax._linear import (
    hopf_fc,
    hopf_jacobian,
    is_stable,
    linear_fc,
    solve_lyapunov,
    stationary_covariance,
)
from vbt_jax.models import StuartLandau
from vbt_jax.monitors import Raw


def _random_stable(rng, n, margin=0.1):
    """A dense non-normal matrix shifted so its rightmost eigenvalue has real part -margin."""
    M = rng.standard_normal((n, n)) / np.sqrt(n)
    return M - (np.linalg.eigvals(M).real.max() + margin) * np.eye(n)


def _random_spd(rng, n):
    B = rng.standard_normal((n, n))
    return B @ B.T / n


@pytest.mark.parametrize("n", [10, 168])
def test_lyapunov_matches_scipy(x64, n):
    rng = np.random.default_rng(n)
    A, Q = _random_stable(rng, n), _random_spd(rng, n)
    X = np.asarray(jax.jit(solve_lyapunov)(A, Q))
    ref = sla.solve_continuous_lyapunov(A, -Q)  # SciPy solves A X + X A^H = Q
    # both solvers are backward stable; rtol 1e-8 leaves ~1e6 x float64 eps for conditioning
    np.testing.assert_allclose(X, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


def test_lyapunov_hard_spectra(x64):
    """Eigenvalue moduli spread over six decades, half of them nearly on the imaginary axis
    (damping ratio 1e-3, as in weakly damped Hopf networks). Checks the documented
    convergence."""
    rng = np.random.default_rng(1)
    n = 12
    re = -np.logspace(-3, 1, n // 2)
    im = np.where(np.arange(n // 2) % 2 == 0, 1000.0 * np.abs(re), 0.3 * np.abs(re))
    D = np.zeros((n, n))
    for k in range(n // 2):
        D[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = [[re[k], -im[k]], [im[k], re[k]]]
    V = np.eye(n) + 0.3 * rng.standard_normal((n, n))
    A = V @ D @ np.linalg.inv(V)
    Q = _random_spd(rng, n)
    ref = sla.solve_continuous_lyapunov(A, -Q)
    X = np.asarray(solve_lyapunov(A, Q))
    # the equation's condition number is ~1e6 here (|Re l| = 1e-3 next to |l| = 1600); the
    # iteration converges in ~25 of its 50 steps and agrees with SciPy to ~6e-12, so the same
    # 1e-8 bound as for well-conditioned matrices applies
    np.testing.assert_allclose(X, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


def test_lyapunov_gradient(x64):
    """Reverse-mode gradient vs the implicit-function adjoint (solved by SciPy) and vs central
    finite differences."""
    rng = np.random.default_rng(2)
    n = 6
    A, Q, R = _random_stable(rng, n, 0.3), _random_spd(rng, n), rng.standard_normal((n, n))

    @jax.jit
    def loss(A, Q):
        return jnp.sum(solve_lyapunov(A, Q) * R)

    gA, gQ = jax.jit(jax.grad(loss, argnums=(0, 1)))(A, Q)
    # adjoint: A^T L + L A + R = 0, dloss/dQ = L, dloss/dA = L X^T + L^T X
    X = sla.solve_continuous_lyapunov(A, -Q)
    Lam = sla.solve_continuous_lyapunov(A.T, -R)
    np.testing.assert_allclose(gQ, Lam, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gA, Lam @ X.T + Lam.T @ X, rtol=1e-8, atol=1e-10)
    # finite differences along random directions; central differences with h = 1e-5 have
    # truncation error ~h^2 * |third derivative| ~ 1e-10 and rounding ~eps/h ~ 1e-11
    h = 1e-5
    for _ in range(3):
        dA, dQ = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        fd = (float(loss(A + h * dA, Q + h * dQ)) - float(loss(A - h * dA, Q - h * dQ))) / (2 * h)
        ad = float(jnp.sum(gA * dA) + jnp.sum(gQ * dQ))
        assert abs(fd - ad) <= 1e-7 * max(1.0, abs(ad)), (fd, ad)


def test_lyapunov_batched(x64):
    rng = np.random.default_rng(3)
    As = np.stack([_random_stable(rng, 5) for _ in range(3)])
    Q = _random_spd(rng, 5)
    X = np.asarray(solve_lyapunov(As, Q))
    for k in range(3):
        ref = sla.solve_continuous_lyapunov(As[k], -Q)
        np.testing.assert_allclose(X[k], ref, rtol=1e-8, atol=1e-10)


def test_is_stable(x64):
    rng = np.random.default_rng(4)
    A = _random_stable(rng, 8, margin=1e-3)
    assert bool(is_stable(A))
    assert not bool(is_stable(A + 2e-3 * np.eye(8)))  # rightmost eigenvalue now +1e-3
    assert not bool(is_stable(-A))
    # the default tolerance also accepts a converged float32 iteration
    assert bool(is_stable(jnp.asarray(A, jnp.float32)))
    assert not bool(is_stable(jnp.asarray(A + 2e-3 * np.eye(8), jnp.float32)))


def _network_drift(model, W, G):
    """The simulator's zero-delay drift (model dfun + Difference coupling), flattened."""
    coupling = vbt.Difference(G=G)
    rowsum = W.sum(axis=1)

    def f(z):
        state = z.reshape(2, -1)
        xc = state[jnp.array(model.coupling_vars())]
        c = coupling.post(coupling.pre(xc) @ W.T, xc, rowsum)
        return model.dfun(state, c).reshape(-1)

    return f


def test_hopf_jacobian_matches_model_dfun(x64):
    rng = np.random.default_rng(5)
    n = 5
    W = rng.uniform(0, 1, (n, n))
    a, omega, G = rng.uniform(-1, 0, n), rng.uniform(0.1, 1, n), 0.37
    f = _network_drift(StuartLandau(a=jnp.asarray(a), omega=jnp.asarray(omega)), W, G)
    J_model = jax.jacfwd(f)(jnp.zeros(2 * n))
    J = hopf_jacobian(a, omega, W, G)
    np.testing.assert_allclose(J, J_model, rtol=0, atol=1e-14)
    # scalar parameters broadcast to every region
    J_model = jax.jacfwd(_network_drift(StuartLandau(a=-0.2, omega=0.5), W, G))(jnp.zeros(2 * n))
    np.testing.assert_allclose(hopf_jacobian(-0.2, 0.5, W, G), J_model, rtol=0, atol=1e-14)


def test_covariance_matches_simulation():
    """Analytic covariance vs the empirical covariance of 16 independent long simulations.

    Setting: 3 regions, a ~ -0.06/ms, omega ~ 0.2 rad/ms, zero lengths, dt = 0.1 ms. Bias
    sources are far below the statistical error: the cubic term shifts the effective ``a`` by
    ~<x^2 + y^2> ~ 2e-4 (0.4 % of |a|) and Heun's discretisation error is O((|l| dt)^2) ~ 1e-4.
    Each run gives ~12 000 ms / 20 ms ~ 600 correlation times, so each entry's standard error of
    the mean over 16 runs is ~1 % of the variance. The criterion is |mean - P| <= 5 standard
    errors (SE from the spread across runs, Student t with 15 dof: P(|t| > 5) ~ 1.6e-4 per
    entry, ~3e-3 for all 21 entries; the seeds are fixed so the test is deterministic). The
    same criterion rejects the covariance of the uncoupled network, so it has power.
    """
    W = np.array([[0.0, 1.0, 0.3], [0.5, 0.0, 0.8], [0.2, 0.6, 0.0]])
    conn = vbt.Connectome(W, np.zeros((3, 3)))
    a, omega = jnp.array([-0.05, -0.08, -0.06]), jnp.array([0.2, 0.25, 0.15])
    G, nsig, n_runs = 0.05, 1e-5, 16
    model = StuartLandau(a=a, omega=omega)

    def run(key):
        sol = vbt.simulate(
            model,
            conn,
            dt=0.1,
            duration=12_000.0,
            key=key,
            coupling=vbt.Difference(G=G),
            noise=vbt.Additive(nsig=nsig),
            monitors=(Raw(period=1.0),),
            initial_state=jnp.zeros(2),
        )
        x = sol["raw"].reshape(sol["raw"].shape[0], -1)[200:]  # drop 200 ms transient
        return jnp.cov(x.T)

    C = np.asarray(jax.jit(jax.vmap(run))(jr.split(jr.key(0), n_runs)), np.float64)
    mean, se = C.mean(0), C.std(0, ddof=1) / np.sqrt(n_runs)

    with jax.enable_x64(True):
        P = np.asarray(stationary_covariance(hopf_jacobian(a, omega, W, G), nsig))
        P0 = np.asarray(stationary_covariance(hopf_jacobian(a, omega, W, 0.0), nsig))
    z = np.abs(mean - P) / se
    assert z.max() < 5.0, np.round(z, 1)
    assert (np.abs(mean - P0) / se).max() > 5.0  # the uncoupled answer fails the same test


def test_linear_fc_is_correlation(x64):
    rng = np.random.default_rng(6)
    n = 4
    P = _random_spd(rng, 2 * n)
    for v in (0, 1):
        B = P[v * n : (v + 1) * n, v * n : (v + 1) * n]
        d = np.sqrt(np.diag(B))
        np.testing.assert_allclose(linear_fc(P, n, v), B / np.outer(d, d), rtol=1e-13)


def test_hopf_fc_matches_scipy_and_is_differentiable_in_G(x64):
    rng = np.random.default_rng(7)
    n = 6
    W = rng.uniform(0, 1, (n, n))
    np.fill_diagonal(W, 0.0)
    a, omega = rng.uniform(-0.3, -0.05, n), rng.uniform(0.05, 0.3, n)
    nsig = np.array([1e-4, 2e-4])

    def fc_ref(G):
        J = np.asarray(hopf_jacobian(a, omega, W, G))
        P = sla.solve_continuous_lyapunov(J, -np.diag(np.repeat(2 * nsig, n)))
        d = np.sqrt(np.diag(P)[:n])
        return P[:n, :n] / np.outer(d, d)

    @jax.jit
    def loss(G):
        return jnp.sum(jnp.triu(hopf_fc(a, omega, W, G, nsig), 1) ** 2)

    G = 0.2
    g = float(jax.jit(jax.grad(loss))(G))
    h = 1e-5
    fd = (float(loss(G + h)) - float(loss(G - h))) / (2 * h)
    # central differences: truncation ~h^2 ~ 1e-10 relative, rounding ~eps / h ~ 1e-11
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    assert abs(g) > 1e-3  # FC does depend on G here
    # forward mode, jit and vmap agree with the reverse-mode gradient and the loop
    np.testing.assert_allclose(jax.jit(jax.jacfwd(loss))(G), g, rtol=1e-9)
    Gs = jnp.array([0.0, 0.1, G])
    batched = jax.jit(jax.vmap(lambda G: hopf_fc(a, omega, W, G, nsig)))(Gs)
    for k, Gk in enumerate([0.0, 0.1, G]):
        np.testing.assert_allclose(batched[k], fc_ref(Gk), rtol=1e-9, atol=1e-12)


def test_validation_errors():
    with pytest.raises(ConfigError, match="A must be"):
        solve_lyapunov(jnp.zeros((3, 4)), jnp.zeros((3, 4)))
    with pytest.raises(ConfigError, match="Q must have"):
        solve_lyapunov(jnp.eye(3), jnp.eye(4))
    with pytest.raises(ConfigError, match="W must be"):
        hopf_jacobian(-0.1, 1.0, jnp.zeros((3, 2)), 0.1)
    with pytest.raises(ConfigError, match="omega must be"):
        hopf_jacobian(-0.1, jnp.ones(4), jnp.zeros((3, 3)), 0.1)
    with pytest.raises(ConfigError, match="noise_diag"):
        stationary_covariance(-jnp.eye(4), jnp.ones(3))
    with pytest.raises(ConfigError, match="var_index"):
        linear_fc(jnp.eye(6), 3, 2)
    with pytest.raises(ConfigError, match="nsig"):
        hopf_fc(-0.1, 1.0, jnp.zeros((3, 3)), 0.1, jnp.ones(3))
