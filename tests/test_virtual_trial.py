"""Virtual drug trial with known ground truth (inference._trial)."""

import numpy as np
import pytest
import scipy.stats as st

import vbt_jax as vbt
from inference._trial import (
    TrialDesign,
    auc,
    efficacy_grid_z,
    gbc_from_z,
    run_virtual_trial,
    simulate_cohort,
)
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


@pytest.fixture(scope="module")
def trial():
    return run_virtual_trial(0, n_train=16, n_test=40, num_warmup=300, num_samples=300)


@pytest.mark.slow
def test_predictive_coverage(trial):
    # 40 patients x 84 regions, correlated within a patient: [0.8, 0.97] around the nominal 0.9
    assert 0.8 <= trial["true"]["coverage"] <= 0.97
    # posterior predictive p-values of each held-out patient's mean change ~ uniform
    assert 0.75 <= trial["true"]["ppc_coverage"] <= 1.0
    assert st.kstest(trial["true"]["p_values"], "uniform").pvalue > 0.01


@pytest.mark.slow
def test_responder_auc(trial):
    # well above chance (0.5): dose and baseline are known and explain most of the response
    # variance (e_sd = 0.1 vs dose occupancy 0.2-0.8), so the ranking must be informative
    t = trial["true"]
    assert 10 <= t["responder"].sum() <= 30  # both classes present (threshold = train median)
    assert t["auc"] > 0.75


@pytest.mark.slow
def test_shuffled_map_control_predicts_worse(trial):
    # metric: held-out log predictive density of the post-treatment scans (nats per patient)
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
