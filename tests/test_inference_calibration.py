"""Calibration of the Bayesian fitting: recovery, simulation-based calibration, SVI vs NUTS.

Every data set here is simulated from the twin's own generative model (the analytic Hopf FC
plus Fisher-z noise of known sd), so the posterior is exactly calibrated up to MCMC error and
each check below has a known expected value; thresholds are set from that expectation and
its sampling spread, never from the observed result.

Reference for SBC: Talts et al. 2018, arXiv:1804.06788.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import inference as inf
import vbt_jax as vbt
from inference._calibration import coverage, run_sbc, sbc_ranks, uniformity_pvalue

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "svi_reference.json"
HYPER = ("a_mu", "a_beta", "a_tau", "sigma_fc")
GLOBAL = ("G", "a_mu", "a_beta[strength]", "a_tau", "sigma_fc", "sigma_amplitude")


def _subnetwork(n: int):
    """The n left-hemisphere cortical DK regions with the largest strength (connected), with
    their weights (a block of the max-normalised dk84 matrix) and labels."""
    conn = vbt.dk84().normalised("max")
    w = np.asarray(conn.weights, float)
    left = np.arange(34)
    idx = np.sort(left[np.argsort(-w[np.ix_(left, left)].sum(axis=1))[:n]])
    sub = w[np.ix_(idx, idx)]
    labels = tuple(conn.labels[i] for i in idx)
    strength = vbt.node_strength_map(conn).values[idx]
    strength = (strength - strength.mean()) / strength.std()
    return sub, labels, strength


# --------------------------------------------------------------------------- recovery


def _recovery_problem(n: int = 20, centred: bool = True):
    """An n-region twin and synthetic single-subject data from known parameters.

    The data are what one person's scan gives: FC of a 1200-volume series (Fisher-z sampling
    sd 1/sqrt(1197)) plus a model-discrepancy term, and each region's BOLD amplitude (log sd).
    The amplitude depends on the noise level over |a|, so with the noise known it fixes the
    absolute scale that FC alone cannot see (FC depends on a / G only): every global
    parameter, G included, is identified.
    """
    w, labels, strength = _subnetwork(n)
    twin = inf.Twin(
        priors=[
            inf.Global("G", "lognormal", loc=8e-4, scale=0.3),
            inf.Regional(
                "a",
                n,
                "neglog",
                loc=-0.5,
                scale=1.0,
                maps=strength[:, None],
                map_names=("strength",),
                tau_scale=1.0,
                beta_scale=1.0,
                labels=labels,
                scale_by="G",
                centred=centred,
            ),
        ],
        forward=inf.HopfLinear(jnp.asarray(w, jnp.float32), features=("fc", "amplitude")),
        likelihoods=[
            inf.FCLikelihood(n, n_timepoints=1200, sigma_scale=0.5),
            inf.amplitude_likelihood(n, sigma_scale=0.5),
        ],
        labels=labels,
    )
    rng = np.random.default_rng(20261125)
    truth = {
        "G": 8e-4,
        "a_mu": -0.3,
        "a_beta": np.array([0.4]),
        "a_tau": 0.3,
        "sigma_fc": 0.05,
        "sigma_amplitude": 0.1,
    }
    eta = truth["a_mu"] + truth["a_beta"][0] * strength + truth["a_tau"] * rng.normal(size=n)
    truth["a_eta"] = eta
    truth["a"] = -truth["G"] * np.exp(eta)
    pred = twin.forward({"a": jnp.asarray(truth["a"]), "G": truth["G"]})
    fc = np.asarray(pred["fc"], float)
    amp = np.asarray(pred["amplitude"], float)
    data = twin.observe({"fc": fc, "amplitude": amp})
    sd_fc = np.sqrt(truth["sigma_fc"] ** 2 + 1.0 / 1197)
    data["fc"] = data["fc"] + sd_fc * rng.normal(size=data["fc"].shape)
    data["amplitude"] = data["amplitude"] + truth["sigma_amplitude"] * rng.normal(size=n)
    return twin, data, truth


@pytest.fixture(scope="module")
def recovery():
    """The 20-region problem and its NUTS posterior and summary."""
    twin, data, truth = _recovery_problem(20)
    res = inf.run_nuts(
        twin,
        data,
        key=jax.random.key(0),
        num_warmup=300,
        num_samples=300,
        num_chains=2,
        progress=False,
    )
    prior = inf.prior_draws(twin, key=jax.random.key(1), num=2000)
    idata = inf.to_inference_data(twin, res, data, prior=prior)
    table, msgs = inf.summarize(idata, twin, hdi_prob=0.9, truth=truth)
    return dict(twin=twin, data=data, truth=truth, res=res, table=table, msgs=msgs)


def test_recovery_hyper_parameters(recovery):
    """Known global/hyper parameters are recovered from a synthetic dk84 FC.

    Thresholds: with a calibrated posterior the truth falls in the 90% HDI with probability
    0.9 and |z| < 2 with probability ~0.95 per parameter (the seeds are fixed, so the test is
    deterministic). Shrinkage > 0.7 (posterior sd below 55% of the prior sd) is far from the
    ~0.99 expected with 190 edges and 20 regions but far above what an unidentified
    parameter gets (~0; G from FC alone, tests/test_inference_core.py), so it tests that the data,
    not the prior, decide.
    """
    table, res = recovery["table"], recovery["res"]
    print(table.loc[list(GLOBAL)].to_string())
    for name in GLOBAL:
        row = table.loc[name]
        assert row["truth_in_hdi"], (name, row.to_dict())
        assert abs(row["z"]) < 2.0, (name, row["z"])
        assert row["shrinkage"] > 0.7, (name, row["shrinkage"])
    # a healthy sampler: few divergent transitions (< 1% of 600)
    assert res.sample_stats["diverging"].sum() < 6


def test_recovery_no_identifiability_warning(recovery):
    """With FC and amplitude every global parameter is identified: no warning names one."""
    msgs = recovery["msgs"]
    assert not any("not identified" in m and m.split(" ", 1)[0] in GLOBAL for m in msgs), msgs


def test_recovery_regional(recovery):
    """At least 80% of the 20 regional ``a`` truths lie in their 90% intervals.

    With calibrated intervals the count is ~Binomial(20, 0.9) (regions are not independent,
    but nearly so given the hyper-parameters): P(count < 16) ~ 4%.
    """
    res, truth = recovery["res"], recovery["truth"]
    a = res.flat()["a"]
    lo, hi = np.quantile(a, [0.05, 0.95], axis=0)
    inside = (lo <= truth["a"]) & (truth["a"] <= hi)
    assert inside.mean() >= 0.8, inside


# --------------------------------------------------------------------------- SVI vs NUTS


@pytest.fixture(
    scope="module", params=[("lowrank", 0.25), ("normal", 0.5)], ids=["lowrank", "normal"]
)
def svi_vs_nuts(recovery, request):
    """SVI on the recovery problem, with the mean tolerance of its guide.

    Tolerances (fixed before running): the NUTS means carry Monte Carlo error ~sd/sqrt(ESS)
    ~0.05 sd and the 1000 SVI draws ~0.03 sd; the low-rank Gaussian (in the unconstrained
    space) is then allowed a bias of ~0.2 sd, hence 0.25 sd. The mean-field guide ignores the
    correlations between the group mean and the regional values, a known source of bias, so
    it gets 0.5 sd. Sds within a factor of 2: a Gaussian approximation of a well-identified
    posterior is not expected to be exact, but a factor of 2 is what fails when the guide
    collapses or has not converged.
    """
    guide, mean_tol = request.param
    twin, data = recovery["twin"], recovery["data"]
    svi = inf.run_svi(
        twin,
        data,
        key=jax.random.key(3),
        guide=guide,
        steps=3000,
        learning_rate=0.01,
        progress=False,
    )
    assert np.isfinite(svi.info["loss"][-1])
    return guide, mean_tol, svi.flat(), recovery["res"].flat()


def _compare(svi_vs_nuts, names):
    guide, mean_tol, flat, nuts = svi_vs_nuts
    for name in names:
        m_n, s_n = nuts[name].mean(0), nuts[name].std(0)
        m_s, s_s = flat[name].mean(0), flat[name].std(0)
        print(guide, name, (m_s - m_n) / s_n, s_s / s_n)
        assert np.all(np.abs(m_s - m_n) < mean_tol * s_n), (name, m_s, m_n, s_n)
        assert np.all((s_s > 0.5 * s_n) & (s_s < 2.0 * s_n)), (name, s_s, s_n)


def test_svi_agrees_with_nuts(svi_vs_nuts):
    """SVI's posterior means and sds of the group mean, map coefficient and discrepancy sd
    match NUTS's (tolerances in the fixture's docstring)."""
    _compare(svi_vs_nuts, ("a_mu", "a_beta", "sigma_fc", "sigma_amplitude"))


@pytest.fixture(scope="module")
def nuts_reference():
    """The long NUTS run of ``tests/fixtures/make_svi_reference.py`` on the recovery problem
    (4 x 5000 draws; effective sample size 3700 for a_tau, 4900-24000 for the others, R-hat
    < 1.001): parameter -> mean, sd. The short run of the ``recovery`` fixture has an effective
    sample size of ~30 for a_tau, too few to check a posterior against to 0.25 sd. The data
    are checked to be those the reference was made from."""
    ref = json.loads(REFERENCE.read_text())
    _, data, _ = _recovery_problem(20)
    for k, (total, squares) in ref["data"].items():
        v = np.asarray(data[k], np.float64)
        np.testing.assert_allclose([v.sum(), (v * v).sum()], [total, squares], rtol=1e-5)
    return ref["params"]


@pytest.fixture(scope="module")
def svi_flow():
    """SVI with the flow guide on the recovery problem, importance-resampled (a fixed seed)."""
    twin, data, _ = _recovery_problem(20)
    return inf.run_svi(
        twin,
        data,
        key=jax.random.key(3),
        guide="flow",
        steps=3000,
        learning_rate=0.01,
        num_particles=4,
        resample=True,
        progress=False,
    )


def _compare_reference(flat, reference, name, mean_tol, sd_range):
    m_n, s_n = reference[name]["mean"], reference[name]["sd"]
    m_s, s_s = float(flat[name].mean()), float(flat[name].std())
    z, ratio = (m_s - m_n) / s_n, s_s / s_n
    print(name, f"mean {m_s:.4g} vs {m_n:.4g} ({z:+.3f} sd), sd ratio {ratio:.3f}")
    assert abs(z) < mean_tol, (name, m_s, m_n, s_n)
    assert sd_range[0] < ratio < sd_range[1], (name, s_s, s_n)


def test_svi_agrees_with_nuts_on_regional_spread(svi_flow, nuts_reference):
    """With the flow guide and importance resampling, SVI's posterior of the regional spread
    a_tau (and of the other hyper-parameters) matches NUTS's.

    Tolerances, fixed before any run: the a_tau mean within 0.25 NUTS posterior sd of the NUTS
    mean, and its sd within a factor [0.67, 1.5] of the NUTS sd; the other parameters keep the
    tolerances of ``svi_vs_nuts`` (0.25 sd, factor 2). Noise budget: the reference mean of
    a_tau carries a Monte Carlo error of ~0.02 sd (ESS 3700), and the 1000 resampled SVI draws
    (from an importance sample of effective size ~1150 of 4000 here) ~0.04 sd, so 0.25 sd is
    ~5 standard errors: what is left is the approximation error. The Pareto k of the
    importance weights must be below 0.7, the threshold for trusting them (Vehtari et al.
    2024). The Gaussian guides fail this (the strict xfail below).
    """
    info = svi_flow.info
    print("psis khat", info["psis_khat"], "ess", info["psis_ess"], "s", info["seconds"])
    assert info["psis_khat"] < 0.7
    flat = svi_flow.flat()
    for name in ("G", "a_mu", "a_beta", "sigma_fc", "sigma_amplitude"):
        _compare_reference(flat, nuts_reference, name, 0.25, (0.5, 2.0))
    _compare_reference(flat, nuts_reference, "a_tau", 0.25, (0.67, 1.5))


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: Gaussian guides shrink the posterior of the hierarchical scale "
    "a_tau (its sd falls outside 0.67-1.5x NUTS's); use guide='flow' with "
    "resample=True, or NUTS",
)
def test_gaussian_guides_on_regional_spread(svi_vs_nuts, nuts_reference):
    """The Gaussian guides, with the tolerances of the flow guide's test above, fail on a_tau."""
    _compare_reference(svi_vs_nuts[2], nuts_reference, "a_tau", 0.25, (0.67, 1.5))


# --------------------------------------------------------------------------- SBC


@pytest.fixture(scope="module")
def sbc():
    """SBC of NUTS on an 8-region twin: 64 datasets from the prior predictive."""
    n = 8
    w, labels, _ = _subnetwork(n)
    twin = inf.Twin(
        priors=[inf.Regional("a", n, "neglog", loc=0.0, scale=0.5, tau_scale=0.5)],
        forward=inf.HopfLinear(jnp.asarray(w / w.max(), jnp.float32)),
        # a single 200-volume scan: the Fisher-z sampling sd 1/sqrt(197) bounds how sharp a
        # posterior gets when the prior draws a tiny sigma_fc
        likelihoods=[inf.FCLikelihood(n, n_timepoints=200, sigma_scale=0.1)],
        fixed={"G": 1.0},
        labels=labels,
    )
    return run_sbc(
        twin,
        key=jax.random.key(0),
        num_datasets=64,
        params=("a_mu", "a_tau", "sigma_fc", "a_z"),
        num_warmup=200,
        num_samples=200,
        thin=2,
        target_accept=0.9,
    )


def test_sbc_ranks_uniform(sbc):
    """The rank of the truth among 100 thinned draws is uniform for every parameter.

    Pearson chi-square on 6 bins (~10.7 expected per bin), one test per scalar (11 of them):
    at p > 0.001 each, a calibrated sampler fails somewhere with probability ~1%. Divergent
    transitions must stay below 0.5% of the 12,800 post-warm-up iterations.
    """
    truth, ranks, L = sbc["truth"], sbc["ranks"], sbc["n_draws"]
    assert L == 100
    assert sbc["divergences"].sum() < 64
    cols = {}
    for k, r in ranks.items():
        r = np.asarray(r).reshape(r.shape[0], -1)
        for j in range(r.shape[1]):
            cols[f"{k}[{j}]" if r.shape[1] > 1 else k] = r[:, j]
    assert len(cols) == 11 and set(truth) == {"a_mu", "a_tau", "sigma_fc", "a_z"}
    p = {k: uniformity_pvalue(r, L) for k, r in cols.items()}
    print("SBC chi2 p:", {k: round(v, 4) for k, v in p.items()}, "div", sbc["divergences"].sum())
    assert min(p.values()) > 1e-3, p


def test_sbc_coverage(sbc):
    """The 90% central intervals cover the truth in 80-97% of (dataset, parameter) pairs.

    Expected 0.90; 64 x 11 pairs, correlated within a dataset, give a spread of a few
    percent, and autocorrelated draws make empirical intervals slightly too narrow, hence
    the asymmetric band [0.80, 0.97] (the same band as a per-parameter check at D = 64
    would need at ~2.5 binomial sd).
    """
    cov = np.concatenate(
        [np.ravel(coverage(sbc["truth"][k], sbc["draws"][k], 0.9)) for k in sbc["truth"]]
    )
    assert cov.size == 11
    print("SBC coverage:", cov.round(3), cov.mean())
    assert 0.8 <= cov.mean() <= 0.97, cov
    # and no single parameter is badly off (binomial sd at D = 64 is 0.0375: 0.75 is 4 sd)
    assert cov.min() >= 0.75, cov


def test_sbc_detects_miscalibration(sbc):
    """The same statistics reject deliberately wrong posteriors (the tests have power).

    A posterior shifted by one posterior sd, or with its sd halved, must give chi-square
    p < 1e-3 on the ranks pooled over parameters and a coverage outside [0.8, 0.97]
    (expected ~0.74 for the shift and ~0.59 for the halved sd).
    """
    cov_shift, cov_narrow, r_shift, r_narrow = [], [], [], []
    for k, d in sbc["draws"].items():
        t = sbc["truth"][k]
        m, s = d.mean(axis=1, keepdims=True), d.std(axis=1, keepdims=True)
        shifted, narrow = d + s, m + 0.5 * (d - m)
        cov_shift.append(np.ravel(coverage(t, shifted)))
        cov_narrow.append(np.ravel(coverage(t, narrow)))
        r_shift.append(np.ravel(sbc_ranks(t, shifted)))
        r_narrow.append(np.ravel(sbc_ranks(t, narrow)))
    L = sbc["n_draws"]
    for cov, r in ((cov_shift, r_shift), (cov_narrow, r_narrow)):
        cov = np.concatenate(cov)
        p = uniformity_pvalue(np.concatenate(r), L)
        print("wrong posterior: coverage", cov.mean(), "p", p)
        assert not 0.8 <= cov.mean() <= 0.97, cov.mean()
        assert p < 1e-3


# --------------------------------------------------------------------------- demo config


def test_demo_config_nuts_converges():
    """NUTS on configs/fit_hopf_dk84.toml (84 regions, its own chain settings): R-hat < 1.01 for the
    global and hyper parameters and no divergent transitions.

    1.01 is the current recommendation (Vehtari et al. 2021) for trusting the chains.
    """
    import arviz as az

    from inference.fit import load_fit_config, run_engine, setup_fit

    setup = setup_fit(load_fit_config(ROOT / "configs" / "fit_hopf_dk84.toml"))
    assert setup.twin.forward.n_regions == 84
    res = run_engine(setup, None, False)
    n = setup.config.nuts["samples"]
    assert res.num_chains == 2 and res.num_draws == n
    assert int(res.sample_stats["diverging"].sum()) == 0
    for name in ("G", *HYPER):
        draws = res.posterior[name].reshape(2, n, -1)
        for j in range(draws.shape[-1]):
            rhat = float(az.rhat(draws[..., j]))
            print(name, j, rhat)
            assert rhat < 1.01, (name, j, rhat)
