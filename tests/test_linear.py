"""Linearised stationary covariance: Lyapunov solver vs SciPy, Hopf Jacobian vs the model,
covariance vs long simulations, gradients vs finite differences."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg as sla

import vbt_jax as vbt
from vbt_jax import (
    ArgumentError,
    ShapeError,
    hopf_band_power,
    hopf_covariance_symmetric,
    hopf_fc,
    hopf_fc_symmetric,
    hopf_jacobian,
    hopf_spectrum,
    is_stable,
    linear_fc,
    solve_lyapunov,
    stationary_covariance,
)
from vbt_jax.features import band_powers, welch_psd
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
        # forward mode: the tangent solves A dX + dX A^T + dA X + X dA^T + dQ = 0
        _, jv = jax.jvp(loss, (A, Q), (dA, dQ))
        assert abs(float(jv) - ad) <= 1e-10 * max(1.0, abs(ad)), (float(jv), ad)


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
    with pytest.raises(ShapeError, match="A must be"):
        solve_lyapunov(jnp.zeros((3, 4)), jnp.zeros((3, 4)))
    with pytest.raises(ShapeError, match="Q must have"):
        solve_lyapunov(jnp.eye(3), jnp.eye(4))
    with pytest.raises(ShapeError, match="W must be"):
        hopf_jacobian(-0.1, 1.0, jnp.zeros((3, 2)), 0.1)
    with pytest.raises(ShapeError, match="omega must be"):
        hopf_jacobian(-0.1, jnp.ones(4), jnp.zeros((3, 3)), 0.1)
    with pytest.raises(ShapeError, match="noise_diag"):
        stationary_covariance(-jnp.eye(4), jnp.ones(3))
    with pytest.raises(ArgumentError, match="var_index"):
        linear_fc(jnp.eye(6), 3, 2)
    with pytest.raises(ShapeError, match="nsig"):
        hopf_fc(-0.1, 1.0, jnp.zeros((3, 3)), 0.1, jnp.ones(3))


# ---- symmetric Stuart-Landau network: closed forms -------------------------------------------


def test_neg_inverse_value_and_derivatives_match_numpy(x64):
    """The Hopf block's inverse (the one LAPACK workaround): value vs NumPy's inverse, JVP vs
    central differences, vmapped VJP vs the closed form ``X R X``, NaN where ``-B`` is not
    positive definite."""
    from vbt_jax._linear._lapack import neg_inverse

    rng = np.random.default_rng(21)
    n = 6
    Bs = np.stack([-_random_spd(rng, n) - 0.1 * np.eye(n) for _ in range(3)])
    X = np.asarray(neg_inverse(Bs[0]))
    np.testing.assert_allclose(X, np.linalg.inv(-Bs[0]), rtol=1e-12, atol=1e-12)
    dB = rng.standard_normal((n, n))
    dB = dB + dB.T
    _, dX = jax.jvp(neg_inverse, (jnp.asarray(Bs[0]),), (jnp.asarray(dB),))
    h = 1e-6
    fd = (np.linalg.inv(-(Bs[0] + h * dB)) - np.linalg.inv(-(Bs[0] - h * dB))) / (2 * h)
    np.testing.assert_allclose(np.asarray(dX), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    R = rng.standard_normal((n, n))
    g = jax.vmap(jax.grad(lambda B: jnp.sum(neg_inverse(B) * R)))(jnp.asarray(Bs))
    for k in range(3):
        Xk = np.linalg.inv(-Bs[k])
        np.testing.assert_allclose(np.asarray(g[k]), Xk.T @ R @ Xk.T, rtol=1e-10, atol=1e-12)
    assert np.all(np.isnan(np.asarray(neg_inverse(jnp.asarray(-Bs[0])))))


def _dk84_weights():
    return np.asarray(vbt.dk84().normalised("max").weights, np.float64)


def _hetero_a(n, seed=8):
    return np.random.default_rng(seed).uniform(-0.3, -0.02, n)


@pytest.mark.parametrize("per_region_noise", [False, True])
def test_symmetric_covariance_matches_lyapunov(x64, per_region_noise):
    """Closed form vs the general 168 x 168 Lyapunov solve on DK-84, heterogeneous a."""
    W = _dk84_weights()
    n = W.shape[0]
    rng = np.random.default_rng(9)
    a, G, omega = _hetero_a(n), 0.4, 0.07
    nsig = rng.uniform(1e-4, 1e-3, n) if per_region_noise else 3e-4
    X = np.asarray(hopf_covariance_symmetric(a, W, G, nsig))
    P = np.asarray(
        stationary_covariance(hopf_jacobian(a, omega, W, G), np.tile(np.broadcast_to(nsig, n), 2))
    )
    # both are direct solves of a well-conditioned equation (|Re l| >= 0.02, |l| <= ~5):
    # 1e-8 leaves ~1e7 x eps for round-off
    scale = np.abs(P).max()
    np.testing.assert_allclose(X, P[:n, :n], rtol=1e-8, atol=1e-8 * scale)
    np.testing.assert_allclose(X, P[n:, n:], rtol=1e-8, atol=1e-8 * scale)  # y block = x block
    np.testing.assert_allclose(P[:n, n:], 0.0, atol=1e-8 * scale)  # x, y uncorrelated
    fc = np.asarray(hopf_fc_symmetric(a, W, G, nsig))
    np.testing.assert_allclose(fc, linear_fc(P, n, 0), rtol=1e-8, atol=1e-8)
    assert np.abs(fc - np.eye(n)).max() > 0.1  # coupling correlates regions here


def _fisher_z_loss(fc_fn, target):
    iu = np.triu_indices(target.shape[0], 1)
    zt = np.arctanh(target[iu])

    def loss(a, G):
        return jnp.mean((jnp.arctanh(fc_fn(a, G)[iu]) - zt) ** 2)

    return loss


@pytest.mark.parametrize("per_region_noise", [False, True])
def test_symmetric_fc_gradient(x64, per_region_noise):
    """Reverse-mode gradient of a Fisher-z FC loss vs central differences and vs the gradient of
    the general hopf_fc (a different computation: autodiff through the Smith iteration)."""
    W = _dk84_weights()
    n = W.shape[0]
    rng = np.random.default_rng(10)
    nsig = rng.uniform(1e-4, 1e-3, n) if per_region_noise else 1.0
    target = np.asarray(hopf_fc_symmetric(_hetero_a(n, 11), W, 0.2, nsig))
    loss = jax.jit(_fisher_z_loss(lambda a, G: hopf_fc_symmetric(a, W, G, nsig), target))
    a, G = _hetero_a(n), 0.3
    ga, gG = jax.jit(jax.grad(loss, argnums=(0, 1)))(a, G)
    assert np.all(np.isfinite(ga)) and abs(float(gG)) > 1e-6
    # central differences with h = 1e-6: truncation ~h^2 |f'''| ~ 1e-12, rounding ~eps / h ~
    # 1e-10 relative to the loss; 1e-6 relative leaves a wide margin for both
    h = 1e-6
    for _ in range(3):
        da, dG = rng.standard_normal(n) * 0.01, rng.standard_normal()
        fd = (float(loss(a + h * da, G + h * dG)) - float(loss(a - h * da, G - h * dG))) / (2 * h)
        ad = float(jnp.dot(ga, da) + gG * dG)
        assert abs(fd - ad) <= 1e-6 * max(abs(ad), 1e-3 * float(loss(a, G))), (fd, ad)
    if not per_region_noise:
        return  # the costly general-path gradient is compared once, on the custom-JVP path
    general = _fisher_z_loss(
        lambda a, G: hopf_fc(a, 0.05, W, G, jnp.broadcast_to(nsig, (2, n))), target
    )
    ga_ref, gG_ref = jax.jit(jax.grad(general, argnums=(0, 1)))(a, G)
    np.testing.assert_allclose(ga, ga_ref, rtol=1e-7, atol=1e-9 * np.abs(ga_ref).max())
    np.testing.assert_allclose(gG, gG_ref, rtol=1e-7)


def test_eigh_path_gradient_at_repeated_eigenvalues(x64):
    """A ring's Laplacian has double eigenvalues, and G = 0 with a common a makes B = aI: the
    per-region-noise path still has finite gradients, equal to finite differences."""
    n = 6
    W = np.zeros((n, n))
    for i in range(n):
        W[i, (i + 1) % n] = W[(i + 1) % n, i] = 1.0
    nsig = np.linspace(1e-4, 6e-4, n)
    R = np.random.default_rng(12).standard_normal((n, n))

    @jax.jit
    def loss(a, G):
        return jnp.sum(hopf_covariance_symmetric(a, W, G, nsig) * R)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    h = 1e-6
    for G in (0.0, 0.2):
        ga, gG = grad(-0.1, G)
        assert np.isfinite(ga) and np.isfinite(gG)
        fd_a = (float(loss(-0.1 + h, G)) - float(loss(-0.1 - h, G))) / (2 * h)
        fd_G = (float(loss(-0.1, G + h)) - float(loss(-0.1, G - h))) / (2 * h)
        # same finite-difference error budget as above
        np.testing.assert_allclose(ga, fd_a, rtol=1e-6)
        np.testing.assert_allclose(gG, fd_G, rtol=1e-6)


def test_symmetric_under_jit_vmap_float32():
    W = _dk84_weights()
    n = W.shape[0]
    a, Gs = _hetero_a(n), np.array([0.0, 0.1, 0.3])
    batched = jax.jit(jax.vmap(lambda G: hopf_fc_symmetric(a, W, G)))(jnp.asarray(Gs, jnp.float32))
    assert batched.dtype == jnp.float32
    with jax.enable_x64(True):
        for k, G in enumerate(Gs):
            ref = np.asarray(hopf_fc_symmetric(a, W, G))
            # float32 Cholesky of -B (condition number |lam|max / |lam|min ~ 1e2): ~1e2 x eps
            np.testing.assert_allclose(batched[k], ref, atol=1e-4)


def _single_region_psd(a, omega, nsig, f_hz):
    """One-sided PSD [1/Hz] of x for one oscillator, from its autocovariance
    C(tau) = (nsig / -a) exp(a |tau|) cos(omega tau) by numerical Fourier integration."""
    from scipy.integrate import quad

    out = []
    for f in f_hz:
        w = 2 * np.pi * f / 1000.0
        # int_0^inf e^(a t) cos(omega t) cos(w t) dt, with cos cos = (cos((w - omega) t) +
        # cos((w + omega) t)) / 2
        val = 0.0
        for v in (w - omega, w + omega):
            if v == 0:
                val += quad(lambda t: np.exp(a * t), 0, np.inf)[0]
            else:
                val += quad(lambda t: np.exp(a * t), 0, np.inf, weight="cos", wvar=abs(v))[0]
        val *= 0.5
        # two-sided density per (cycles / ms) = 2 int_0^inf C cos; one-sided x2; per Hz / 1000
        out.append(2 * 2 * (nsig / -a) * val / 1000.0)
    return np.array(out)


def test_single_region_is_lorentzian_pair(x64):
    a, omega, nsig = -0.05, 2 * np.pi * 10 / 1000, 2e-4
    f = np.array([0.0, 3.0, 9.0, 10.0, 11.5, 25.0, 80.0])
    ref = _single_region_psd(a, omega, nsig, f)
    W = np.zeros((1, 1))
    fast = np.asarray(hopf_spectrum(a, omega, W, 0.3, nsig, f))[:, 0]
    general = np.asarray(hopf_spectrum(a, omega, W, 0.3, nsig, f, symmetric=False))[:, 0]
    # quad's error estimates are < 1e-12 relative here
    np.testing.assert_allclose(fast, ref, rtol=1e-9)
    np.testing.assert_allclose(general, ref, rtol=1e-9)
    assert np.argmax(fast) == 3  # peaked at 10 Hz


@pytest.mark.parametrize("per_region_noise", [False, True])
def test_fast_spectrum_matches_general(x64, per_region_noise):
    W = _dk84_weights()
    n = W.shape[0]
    rng = np.random.default_rng(13)
    a, G, omega = _hetero_a(n), 0.4, 2 * np.pi * 10 / 1000
    nsig = np.tile(rng.uniform(1e-4, 1e-3, n), (2, 1)) if per_region_noise else 5e-4
    f = np.linspace(0.0, 60.0, 13)
    fast = np.asarray(hopf_spectrum(a, omega, W, G, nsig, f))
    general = np.asarray(hopf_spectrum(a, omega, W, G, nsig, f, symmetric=False))
    # two direct O(N^3) evaluations of the same rational function of w: 1e-8 relative
    np.testing.assert_allclose(fast, general, rtol=1e-8, atol=1e-8 * general.max())


@pytest.mark.parametrize("per_region_noise", [False, True])
def test_band_power_closed_form_vs_trapezoid(x64, per_region_noise):
    """Closed-form band powers (fast path) vs the general path's trapezoid rule, on 12 DK-84
    regions (the general path costs a 2N x 2N complex solve per frequency)."""
    idx = np.arange(0, 84, 7)
    W = _dk84_weights()[np.ix_(idx, idx)]
    n = len(idx)
    rng = np.random.default_rng(15)
    a, G, omega = rng.uniform(-0.1, -0.02, n), 0.3, 2 * np.pi * 10 / 1000
    nsig = np.tile(rng.uniform(1e-4, 1e-3, n), (2, 1)) if per_region_noise else 5e-4
    bands = {"delta": (1.0, 4.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0)}
    exact = np.asarray(hopf_band_power(a, omega, W, G, nsig, bands, relative=False))
    errs = []
    for m in (33, 65):
        trap = hopf_band_power(
            a, omega, W, G, nsig, bands, relative=False, n_points=m, symmetric=False
        )
        errs.append(np.abs(np.asarray(trap) - exact).max() / exact.max())
    # the trapezoid rule's error is O(h^2): halving h divides it by ~4 (3.5-4.5 allows for the
    # next O(h^4) term); a wrong closed form would not converge like this
    assert 3.5 < errs[0] / errs[1] < 4.5, errs
    assert errs[1] < 1e-3, errs
    rel = np.asarray(hopf_band_power(a, omega, W, G, nsig, bands))
    np.testing.assert_allclose(rel, exact / exact.sum(0), rtol=1e-12)
    np.testing.assert_allclose(rel.sum(0), 1.0, rtol=1e-12)


def test_spectrum_integrates_to_variance(x64):
    """int_0^inf S_i df = Var(x_i): general path (directed W, per-region omega, unequal x/y
    noise) against the Lyapunov solve, and the fast path's closed-form band power."""
    rng = np.random.default_rng(14)
    n = 5
    W = rng.uniform(0, 1, (n, n))
    np.fill_diagonal(W, 0.0)
    a, omega, G = rng.uniform(-0.1, -0.03, n), rng.uniform(0.03, 0.1, n), 0.05
    nsig = np.stack([rng.uniform(1e-4, 1e-3, n), rng.uniform(1e-4, 1e-3, n)])
    P = np.asarray(stationary_covariance(hopf_jacobian(a, omega, W, G), nsig.reshape(-1)))
    # f = f0 tan(theta) maps [0, inf) to [0, pi/2); S ~ 1/f^2 keeps the integrand finite at
    # pi/2, where its value is extrapolated linearly from the last two nodes
    f0, m = 20.0, 4001
    theta = np.linspace(0.0, np.pi / 2, m)[:-1]
    S = np.asarray(hopf_spectrum(a, omega, W, G, nsig, f0 * np.tan(theta)))
    g = S * (f0 / np.cos(theta) ** 2)[:, None]
    end = 2 * g[-1] - g[-2]
    h = theta[1]
    var = h * (g.sum(0) - 0.5 * g[0] + 0.5 * end)
    # trapezoid error ~h^2 / 12 max|g''| with h = 4e-4 rad and peaks ~0.1 rad wide in theta:
    # ~1e-6 relative
    np.testing.assert_allclose(var, np.diag(P)[:n], rtol=1e-5)
    # fast path: the closed-form integral over [0, 1e9] Hz misses the tail
    # int_F^inf ~ 2 c / (pi w_F) relative = 3e-8 for c <= 0.3
    Ws = W + W.T
    ns = np.stack([nsig[0], nsig[0]])
    bp = np.asarray(hopf_band_power(a, 0.06, Ws, G, ns, [(0.0, 1e9)], relative=False))[0]
    X = np.asarray(hopf_covariance_symmetric(a, Ws, G, nsig[0]))
    np.testing.assert_allclose(bp, np.diag(X), rtol=1e-7)


@pytest.mark.slow
def test_spectrum_matches_welch_of_simulation():
    """Analytic band powers vs Welch band powers of 16 simulations of 15 s each.

    Six strongly connected DK-84 regions, a in [-0.08, -0.04]/ms, 10 Hz, G = 0.05, dt = 0.1 ms
    (omega dt = 0.006), sampled at 1 kHz, Welch segments of 1 s. Biases, all below the
    statistical error (~1-2 % per entry): cubic term ~0.2 % (variance 2e-5 next to |a| = 0.04),
    aliasing of the 1/f^2 tail at <= 40 Hz ~0.4 %, Heun's O((w dt)^2) and the Hann window's 1 Hz
    smoothing of peaks >= 6 Hz wide < 0.1 %. Criterion: |mean - analytic| <= 5 SE per entry
    (Student t, 15 dof: ~1.6e-4 per entry, ~5e-3 for all 30; fixed seeds). The uncoupled
    network's band powers fail the same criterion by far (power).
    """
    idx = np.array([2, 22, 25, 26, 35, 75])
    W = _dk84_weights()[np.ix_(idx, idx)]
    n = len(idx)
    conn = vbt.Connectome(W, np.zeros((n, n)))
    a, omega, G, nsig = jnp.linspace(-0.08, -0.04, n), 2 * np.pi * 10 / 1000, 0.05, 1e-6
    model = StuartLandau(a=a, omega=omega)
    bands = {"a": (2.0, 6.0), "b": (6.0, 10.0), "c": (10.0, 14.0), "d": (14.0, 20.0)}
    bands["e"] = (20.0, 40.0)

    def run(key):
        sol = vbt.simulate(
            model,
            conn,
            dt=0.1,
            duration=15_000.0,
            key=key,
            coupling=vbt.Difference(G=G),
            noise=vbt.Additive(nsig=nsig),
            monitors=(Raw(period=1.0, variables=("x",)),),
            initial_state=jnp.zeros(2),
        )
        f, psd = welch_psd(sol["raw"][200:, 0], 1000.0, 1000)
        return jnp.stack(list(band_powers(f, psd, bands).values()))

    n_runs = 16
    emp = np.asarray(jax.jit(jax.vmap(run))(jr.split(jr.key(0), n_runs)), np.float64)
    mean, se = emp.mean(0), emp.std(0, ddof=1) / np.sqrt(n_runs)
    with jax.enable_x64(True):
        a64 = np.asarray(a, np.float64)
        ref = np.asarray(hopf_band_power(a64, omega, W, G, nsig, bands, relative=False))
        ref0 = np.asarray(hopf_band_power(a64, omega, W, 0.0, nsig, bands, relative=False))
    z = np.abs(mean - ref) / se
    assert z.max() < 5.0, np.round(z, 1)
    assert (np.abs(mean - ref0) / se).max() > 5.0


def test_symmetric_validation_errors():
    W = np.array([[0.0, 1.0], [0.5, 0.0]])
    with pytest.raises(ArgumentError, match=r"max \|W - W.T\| = 0.5"):
        hopf_covariance_symmetric(-0.1, W, 0.1, 1e-3)
    with pytest.raises(ArgumentError, match="symmetric"):
        hopf_fc_symmetric(-0.1, W, 0.1)
    Ws = W + W.T
    with pytest.raises(ShapeError, match="W must be"):
        hopf_fc_symmetric(-0.1, np.ones((2, 3)), 0.1)
    with pytest.raises(ShapeError, match="a must be"):
        hopf_fc_symmetric(-np.ones(3), Ws, 0.1)
    with pytest.raises(ShapeError, match="nsig must be"):
        hopf_covariance_symmetric(-0.1, Ws, 0.1, np.ones(3))
    with pytest.raises(ShapeError, match="G must be"):
        hopf_fc_symmetric(-0.1, Ws, np.ones(2))
    # a traced W is not checked (documented): no error under jit
    out = jax.jit(lambda W: hopf_fc_symmetric(-0.1, W, 0.1))(W)
    assert np.all(np.isfinite(out))
    # above the bifurcation the closed form is NaN, not a wrong number
    assert np.all(np.isnan(hopf_covariance_symmetric(0.1, Ws, 0.1, 1e-3)))
    assert np.all(np.isnan(hopf_covariance_symmetric(0.1, Ws, 0.1, np.array([1e-3, 2e-3]))))
    with pytest.raises(ArgumentError, match="omega must be a scalar"):
        hopf_spectrum(-0.1, np.ones(2), Ws, 0.1, 1e-3, [10.0], symmetric=True)
    with pytest.raises(ArgumentError, match="W must be symmetric"):
        hopf_spectrum(-0.1, 1.0, W, 0.1, 1e-3, [10.0], symmetric=True)
    with pytest.raises(ArgumentError, match="same for x and y"):
        hopf_spectrum(-0.1, 1.0, Ws, 0.1, [1e-3, 2e-3], [10.0], symmetric=True)
    with pytest.raises(ShapeError, match="freqs_hz"):
        hopf_spectrum(-0.1, 1.0, Ws, 0.1, 1e-3, np.ones((2, 2)))
    with pytest.raises(ArgumentError, match="bands_hz"):
        hopf_band_power(-0.1, 1.0, Ws, 0.1, 1e-3, [(8.0, 4.0)])
    with pytest.raises(ArgumentError, match="n_points"):
        hopf_band_power(-0.1, 1.0, Ws, 0.1, 1e-3, [(4.0, 8.0)], n_points=1)
