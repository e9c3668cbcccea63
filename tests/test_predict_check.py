"""Checking predictions against observed on-drug data, and a patient's drug efficacy
(inference.treatment): calibration on synthetic patients with a known efficacy."""

import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
from inference.treatment import check_observed
from vbt_jax import ArgumentError, ShapeError
from vbt_jax.interventions import antipsychotic_d2, psychedelic_5ht2a

G0 = 8e-4
T = 1200
E0, E_SD = -0.5, 0.3  # the efficacy prior, and the population the patients are drawn from


@pytest.fixture(scope="module")
def twin():
    """A twin posterior: 16 draws of a on DK-84 (regional spread 0.3 on log(-a/G))."""
    conn = vbt.dk84().normalised("max")
    rng = np.random.default_rng(0)
    base = -3.7 + 0.8 * rng.normal(size=conn.n_regions)
    eta = base + 0.3 * rng.normal(size=(16, conn.n_regions))
    a = -G0 * np.exp(eta)
    return conn, a, np.full(16, G0)


def _scan(fc, rng, n):
    """An observed FC: Fisher-z sampling noise of sd 1/sqrt(T - 3) on every edge."""
    iu = np.triu_indices(n, 1)
    z = np.arctanh(fc[iu]) + rng.normal(size=iu[0].size) / np.sqrt(T - 3)
    m = np.eye(n)
    m[iu] = np.tanh(z)
    m.T[iu] = np.tanh(z)
    return m


def _patient(twin, drug, e, dose, rng):
    """Pre and on-drug scans of a patient whose a is one posterior draw, at efficacy e."""
    conn, a, G = twin
    W = np.asarray(conn.weights, np.float64)
    d = rng.integers(a.shape[0])
    rho = np.asarray(drug.regional_density(conn.labels), np.float64)
    occ = dose / (dose + 1.0)
    fc0 = np.asarray(vbt.hopf_fc_symmetric(a[d], W, G0))
    fc1 = np.asarray(vbt.hopf_fc_symmetric(a[d] * (1 + e * occ * rho), W, G0))
    n = W.shape[0]
    return _scan(fc0, rng, n), _scan(fc1, rng, n)


def _check(twin, drug, pre, post, dose, seed):
    conn, a, G = twin
    return check_observed(
        a, G, conn.weights, conn.labels, drug, dose, pre, post, T,
        key=jr.key(seed), prior_sd=E_SD, grid=(-1.7, 0.7, 49),
    )  # fmt: skip


@pytest.mark.slow
def test_efficacy_posterior_calibrated_and_predictive_check_uniform(twin):
    """Patients drawn from the prior (efficacy ~ N(E0, E_SD), a ~ the twin's posterior, scan
    noise as assumed): the 90% efficacy intervals cover the truth at about the nominal rate,
    and the predictive p-values of the observed mean FC change are not concentrated near 0."""
    drug = psychedelic_5ht2a("hopf")
    rng = np.random.default_rng(1)
    hits, pvals, cov, z = [], [], [], []
    for i in range(16):
        e = float(np.clip(rng.normal(E0, E_SD), -1.6, 0.6))
        dose = float(rng.choice([1.0, 2.0, 4.0]))
        pre, post = _patient(twin, drug, e, dose, rng)
        c = _check(twin, drug, pre, post, dose, i)
        lo, hi = c.efficacy_interval
        hits.append(lo <= e <= hi)
        z.append((c.efficacy_mean - e) / c.efficacy_sd)
        pvals.append(c.p_mean_fc)
        cov.append(c.gbc_coverage)
    # 16 patients at nominal 0.9: P(fewer than 12 hits) = 0.017
    assert np.mean(hits) >= 0.75, (hits, z)
    # ... and the intervals are not so wide that they cover trivially: |z| has spread
    assert 0.3 < np.std(z) < 1.6, z
    # the replicated sessions draw their efficacy from the same prior the patients come
    # from: the p-values are about uniform (16 x U(0,1): P(more than 5 below 0.1) = 0.017)
    assert np.sum(np.asarray(pvals) < 0.1) <= 5, pvals
    assert 0.25 < np.median(pvals) < 0.75, pvals
    assert np.median(cov) > 0.8, cov


def test_wrong_drug_is_flagged(twin):
    """Data from a D2 antagonist checked as a 5-HT2A agonist: the mean FC falls instead of
    rising, the regional pattern is the wrong one, and the inferred efficacy has the opposite
    sign of the configured one."""
    rng = np.random.default_rng(5)
    pre, post = _patient(twin, antipsychotic_d2("hopf"), 0.5, 2.0, rng)
    c = _check(twin, psychedelic_5ht2a("hopf"), pre, post, 2.0, 0)
    assert c.observed_mean_fc_change < 0 < np.median(c.predicted_mean_fc_change)
    # the mean FC alone: a fall needs a positive efficacy, 5 % of the N(-0.5, 0.3) prior that
    # the replicated sessions draw from, so it sits in the predictive's tail
    assert c.p_mean_fc < 0.15
    # the regional pattern is the D2 map's (striatum), not the 5-HT2A map's (cortex)
    assert c.gbc_coverage < 0.5
    assert c.efficacy_interval[0] > 0


def test_same_data_as_predicted_is_not_flagged(twin):
    """Data generated at exactly the drug's configured efficacy from the twin's posterior."""
    rng = np.random.default_rng(7)
    drug = psychedelic_5ht2a("hopf")
    pre, post = _patient(twin, drug, E0, 2.0, rng)
    c = _check(twin, drug, pre, post, 2.0, 1)
    assert c.p_mean_fc > 0.05
    assert c.gbc_coverage > 0.7
    lo, hi = c.efficacy_interval
    assert lo <= E0 <= hi
    # the posterior density integrates to one on its grid
    h = c.efficacy_grid[1] - c.efficacy_grid[0]
    assert c.efficacy_posterior.sum() * h == pytest.approx(1.0, rel=1e-6)


def test_errors(twin):
    conn, a, G = twin
    drug = psychedelic_5ht2a("hopf")
    fc = np.eye(conn.n_regions)
    with pytest.raises(ShapeError, match="fc_post must be"):
        check_observed(a, G, conn.weights, conn.labels, drug, 1.0, fc, fc[:3, :3], T, key=jr.key(0))
    with pytest.raises(ArgumentError, match="n_timepoints"):
        check_observed(a, G, conn.weights, conn.labels, drug, 1.0, fc, fc, 3, key=jr.key(0))
    bad = fc.copy()
    bad[0, 1] = bad[1, 0] = 1.5
    with pytest.raises(ArgumentError, match="fc_pre needs finite correlations"):
        check_observed(a, G, conn.weights, conn.labels, drug, 1.0, bad, fc, T, key=jr.key(0))
    with pytest.raises(ArgumentError, match="Hopf drug scaling"):
        check_observed(
            a, G, conn.weights, conn.labels, psychedelic_5ht2a("wong_wang"), 1.0, fc, fc, T,
            key=jr.key(0),
        )  # fmt: skip
