"""Virtual drug trial with known ground truth (inference.validation.virtual_trial)."""

import jax
import numpy as np
import pytest
import scipy.stats as st

import vbt_jax as vbt
from inference.validation.virtual_trial import (
    TrialDesign,
    _lowrank_loglik,
    _upper_z,
    _z_and_jac,
    auc,
    change_spread,
    efficacy_grid_z,
    fit_baseline,
    gbc_from_z,
    run_virtual_trial,
    simulate_cohort,
)
from vbt_jax import ArgumentError
from vbt_jax.interventions import psychedelic_5ht2a


@pytest.fixture(scope="module")
def dk():
    conn = vbt.dk84().normalised("max")
    W = np.asarray(conn.weights, np.float32)
    strength = np.asarray(vbt.node_strength_map(conn).zscore().fill_missing(0.0).values)
    rho = np.asarray(psychedelic_5ht2a("hopf").regional_density(conn.labels), np.float32)
    return W, strength, rho


def test_auc_matches_scipy_mann_whitney():
    rng = np.random.default_rng(0)
    y = rng.random(50) < 0.4
    s = np.round(rng.normal(size=50) + y, 1)  # rounding makes ties
    u = st.mannwhitneyu(s[y], s[~y]).statistic
    assert auc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()), abs=1e-12)
    assert auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0


def test_gbc_from_z_matches_matrix_mean():
    rng = np.random.default_rng(1)
    fc = np.corrcoef(rng.normal(size=(6, 40)))
    iu = np.triu_indices(6, 1)
    g = np.asarray(gbc_from_z(np.arctanh(fc[iu]), 6))
    np.testing.assert_allclose(g, (fc.sum(1) - 1) / 5, atol=1e-6)


def test_cohort_noise_and_grid_interpolation(dk):
    import jax.random as jr

    W, strength, rho = dk
    d = TrialDesign()
    c = simulate_cohort(jr.key(3), 3, W, strength, rho, d)
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    fc = np.stack([np.asarray(vbt.hopf_fc_symmetric(-d.G * np.exp(e), W, d.G)) for e in c.eta])
    resid = c.z_pre - np.arctanh(fc[:, iu[0], iu[1]])
    # 3 x 3486 draws: the sd estimate has relative standard error ~0.7 %; 3 % is > 4 SE
    assert np.std(resid) == pytest.approx(d.noise_sd, rel=0.03)
    # linear interpolation on the 0.05 efficacy grid vs the exact FC at grid midpoints
    eg, zg = efficacy_grid_z(c.eta[:1], c.occupancy[:1], W, rho, d)
    mid = 0.5 * (eg[10] + eg[11])
    a1 = -d.G * np.exp(c.eta[0]) * (1 + mid * c.occupancy[0] * rho)
    exact = np.arctanh(np.asarray(vbt.hopf_fc_symmetric(a1, W, d.G))[iu])
    err = np.abs(0.5 * (zg[0, 10] + zg[0, 11]) - exact).max()
    assert err < 0.05 * d.noise_sd  # far below the scan noise (0.029)
    # the change grid is z(e) - z(0): zero at e = 0, the same differences elsewhere
    _, dz = efficacy_grid_z(c.eta[:1], c.occupancy[:1], W, rho, d, change=True)
    i0 = int(np.argmin(np.abs(eg)))
    assert eg[i0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(dz[0], zg[0] - zg[0, i0], atol=1e-5)


def _population_prior(strength, d):
    n = strength.size
    return d.mu_loc + d.beta * strength, d.mu_sd**2 * np.ones((n, n)) + d.tau**2 * np.eye(n)


def test_analytic_jacobian_matches_finite_differences(dk):
    import jax.numpy as jnp

    W, strength, _ = dk
    d = TrialDesign()
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    eta = d.mu_loc + d.beta * strength + d.tau * np.random.default_rng(2).normal(size=n)
    lap = W.astype(np.float64) - np.diag(W.sum(1))

    def ref(e):  # float64 NumPy: X = (-B)^-1, its correlation, Fisher z
        X = np.linalg.inv(-(np.diag(-d.G * np.exp(e)) + d.G * lap))
        sd = np.sqrt(np.diag(X))
        return np.arctanh((X / np.outer(sd, sd))[iu])

    z, J = _z_and_jac(jnp.asarray(eta, jnp.float32), jnp.asarray(W), d.G, iu)
    np.testing.assert_allclose(z, ref(eta), atol=1e-5)
    np.testing.assert_allclose(
        z, _upper_z(vbt.hopf_fc_symmetric(-d.G * np.exp(eta), W, d.G), iu), atol=1e-5
    )
    h = 1e-4
    J_fd = np.stack([(ref(eta + h * u) - ref(eta - h * u)) / (2 * h) for u in np.eye(n)], 1)
    assert np.abs(np.asarray(J) - J_fd).max() < 1e-3 * np.abs(J_fd).max()


def test_lowrank_loglik_matches_dense_gaussian():
    rng = np.random.default_rng(3)
    E, K, var = 30, 4, 0.3
    Q = np.linalg.qr(rng.normal(size=(E, K)))[0]
    lam = rng.uniform(0.1, 2.0, K)
    r = rng.normal(size=E)
    cov = var * np.eye(E) + Q @ np.diag(lam) @ Q.T
    ref = st.multivariate_normal(np.zeros(E), cov).logpdf(r)
    got = _lowrank_loglik(r @ r, Q.T @ r, lam, var, E)
    assert float(got) == pytest.approx(ref, rel=1e-5)


def test_baseline_fit_and_laplace_calibrated(dk):
    import jax.random as jr

    W, strength, rho = dk
    d = TrialDesign()
    c = simulate_cohort(jr.key(4), 16, W, strength, rho, d)
    m, C = _population_prior(strength, d)
    eta_hat, cov = fit_baseline(c.z_pre, W, d, prior_mean=m, prior_cov=C, laplace=True)
    z = (eta_hat - c.eta) / np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    # one scan identifies the regional values only weakly: the posterior sd is not much below
    # the prior sd, so the check is calibration (of 16 x 84 z-scores, correlated within a
    # patient), not precision
    assert 0.85 <= np.mean(np.abs(z) < 1.645) <= 0.95
    assert np.sqrt(np.mean((eta_hat - c.eta) ** 2)) < 0.5


def test_change_spread_matches_monte_carlo(dk):
    import jax.numpy as jnp
    import jax.random as jr

    from inference.validation.virtual_trial import _fc_batch

    W, strength, rho = dk
    d = TrialDesign()
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    c = simulate_cohort(jr.key(5), 2, W, strength, rho, d)
    m, C = _population_prior(strength, d)
    eta_hat, cov = fit_baseline(c.z_pre, W, d, prior_mean=m, prior_cov=C, laplace=True)
    e_ref = -0.5
    Q, S = change_spread(eta_hat, cov, c.occupancy, W, rho, e_ref, d)
    for p in range(2):
        # the change D(eta) = z(eta + log f) - z(eta) for eta ~ N(eta_hat, cov), by Monte
        # Carlo (one batched FC call, see _fc_batch)
        x = np.random.default_rng(p).normal(size=(400, n))
        etas = jnp.asarray(eta_hat[p] + x @ np.linalg.cholesky(cov[p]).T, jnp.float32)
        f = 1.0 + e_ref * c.occupancy[p] * rho
        factor = np.concatenate([np.tile(f, (400, 1)), np.ones((400, n))])
        zz = np.asarray(_upper_z(_fc_batch(jnp.concatenate([etas, etas]), factor, W, d.G), iu))
        D = zz[:400] - zz[400:]
        mc = np.var(D @ Q[p][:, -1])  # variance along the dominant direction
        # linearised e^2 S^2; 400 draws give a relative SE of 7 %, so 30 % is > 4 SE
        assert mc == pytest.approx(e_ref**2 * S[p, -1] ** 2, rel=0.3)


def test_run_virtual_trial_rejects_bad_options():
    with pytest.raises(ArgumentError, match="baseline"):
        run_virtual_trial(key=jax.random.key(0), baseline="truth")
    with pytest.raises(ArgumentError, match="likelihood"):
        run_virtual_trial(key=jax.random.key(0), likelihood="pre")
    with pytest.raises(ArgumentError, match="propagate"):
        run_virtual_trial(key=jax.random.key(0), likelihood="post", propagate=True)


@pytest.fixture(scope="module")
def trial():
    # defaults: baseline fitted from each pre-treatment scan (MAP + Laplace), change
    # likelihood with the baseline uncertainty propagated
    return run_virtual_trial(
        key=jax.random.key(0), n_train=16, n_test=40, num_warmup=300, num_samples=300
    )


@pytest.mark.slow
def test_predictive_coverage(trial):
    # 40 patients x 84 regions, correlated within a patient: [0.8, 0.97] around the nominal 0.9
    assert 0.8 <= trial["true"]["coverage"] <= 0.97


@pytest.mark.slow
def test_posterior_predictive_p_values(trial):
    # p-values of each held-out patient's observed mean change under its predictive
    # distribution: calibrated -> 90 % of them in the central 90 % range and centred on 0.5.
    # They are not independent (all 40 share the population posterior from 16 training
    # patients, whose e_pop / e_sd errors shift or narrow all of them together), so a KS test
    # of uniformity over-rejects; the two checks below are what calibration implies for them.
    pv = trial["true"]["p_values"]
    assert 0.75 <= trial["true"]["ppc_coverage"] <= 1.0
    assert 0.25 <= np.mean(pv) <= 0.75


@pytest.mark.slow
def test_per_patient_efficacy_calibrated(trial):
    # the training patients' true efficacies inside their 90 % posterior intervals; band
    # [0.75, 1.0] for 16 patients (Binomial(16, 0.9): P(< 12) = 2 %)
    assert 0.75 <= trial["true"]["efficacy_coverage"] <= 1.0
    # and informative: posterior sd far below the population sd 0.1
    assert np.mean(trial["true"]["posterior"]["e"].std(0)) < 0.03


@pytest.mark.slow
def test_responder_auc(trial):
    # well above chance (0.5): dose and baseline are known and explain most of the response
    # variance (e_sd = 0.1 vs dose occupancy 0.2-0.8), so the ranking must be informative
    t = trial["true"]
    assert 10 <= t["responder"].sum() <= 30  # both classes present (threshold = train median)
    assert t["auc"] > 0.75


@pytest.mark.slow
def test_shuffled_map_control_predicts_worse(trial):
    # pre-declared metric: held-out log predictive density of the observed Fisher-z change
    # (nats per patient). The RMSE of the predicted regional GBC change does not separate
    # the two maps reliably across seeds, so it is reported, not asserted.
    lt, ls = trial["true"]["lpd"], trial["shuffled"]["lpd"]
    assert lt.mean() - ls.mean() > 2.0
    assert np.mean(lt > ls) >= 0.75


@pytest.mark.slow
def test_population_efficacy_recovered(trial):
    d = TrialDesign()
    post = trial["true"]["posterior"]
    lo, hi = np.quantile(post["e_pop"], [0.05, 0.95])
    assert lo <= d.e_pop <= hi
    lo, hi = np.quantile(post["e_sd"], [0.05, 0.95])
    assert lo <= d.e_sd <= hi
