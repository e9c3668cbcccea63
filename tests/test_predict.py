"""Predicted drug effects on a fitted Hopf twin (inference.treatment)."""

import numpy as np
import pytest

import vbt_jax as vbt
from inference._output import load_netcdf, save_netcdf
from inference.treatment import (
    change_summary,
    predict_interventions,
    predictions_to_inference_data,
    prob_improves,
    ranking,
)
from vbt_jax import ArgumentError, ShapeError
from vbt_jax.interventions import antipsychotic_d2, psychedelic_5ht2a

G0 = 8e-4
DOSES = np.array([0.0, 1.0, 3.0], np.float32)


@pytest.fixture(scope="module")
def setup():
    conn = vbt.dk84().normalised("max")
    n = conn.n_regions
    rng = np.random.default_rng(0)
    a = (-G0 * np.exp(-3.7 + 0.3 * rng.normal(size=(4, n)))).astype(np.float32)
    G = np.full(4, G0, np.float32)
    drugs = {
        "psychedelic": psychedelic_5ht2a("hopf"),
        "antipsychotic": antipsychotic_d2("hopf"),
        "placebo": psychedelic_5ht2a("hopf", efficacy=0.0, name="placebo"),
    }
    return conn, a, G, drugs


@pytest.fixture(scope="module")
def pred(setup):
    conn, a, G, drugs = setup
    return predict_interventions(a, G, conn.weights, conn.labels, drugs, DOSES)


def _gbc(fc):
    n = fc.shape[0]
    return (fc.sum(1) - 1.0) / (n - 1)


def test_zero_efficacy_and_zero_dose_change_nothing(pred):
    # same batched FC computation for baseline and drug: a zero change is exactly zero
    assert np.all(pred.gbc_change[:, 2] == 0.0)
    assert np.all(pred.mean_fc_change[:, 2] == 0.0)
    assert np.all(pred.gbc_change[:, :, 0] == 0.0)
    # and a real drug at a real dose does change FC (the assertions above can fail)
    assert np.abs(pred.mean_fc_change[:, 0, 2]).min() > 1e-3


def test_gbc_change_matches_direct_computation(setup, pred):
    conn, a, G, drugs = setup
    W = np.asarray(conn.weights, np.float64)
    rho = np.asarray(drugs["psychedelic"].regional_density(conn.labels), np.float64)
    a0 = a[1].astype(np.float64)
    a1 = a0 * (1.0 + (-0.5) * (3.0 / (1.0 + 3.0)) * rho)  # e occ(d) rho, Hill 1, ec50 1
    fc0 = np.asarray(vbt.hopf_fc_symmetric(a0, W, float(G0)))
    fc1 = np.asarray(vbt.hopf_fc_symmetric(a1, W, float(G0)))
    # an unbatched direct computation (float32 without x64: batching and rounding differ;
    # GBC changes are O(1e-2)): 1e-6 as the brief asks
    np.testing.assert_allclose(pred.gbc_change[1, 0, 2], _gbc(fc1) - _gbc(fc0), atol=1e-6)
    iu = np.triu_indices(W.shape[0], 1)
    np.testing.assert_allclose(
        pred.mean_fc_change[1, 0, 2], fc1[iu].mean() - fc0[iu].mean(), atol=1e-6
    )


def test_prob_improves_and_ranking_with_known_target(setup):
    conn, a, G, drugs = setup
    # every draw identical, target = that draw's FC under the psychedelic at dose 3
    a_same = np.repeat(a[:1], 3, axis=0)
    W = np.asarray(conn.weights, np.float64)
    rho = np.asarray(drugs["psychedelic"].regional_density(conn.labels), np.float64)
    target = np.asarray(vbt.hopf_fc_symmetric(a_same[0] * (1.0 - 0.5 * 0.75 * rho), W, float(G0)))
    pred = predict_interventions(
        a_same, G[:3], conn.weights, conn.labels, drugs, DOSES, target_fc=target
    )
    p = prob_improves(pred)
    assert p.shape == (3, 3)
    assert np.all(p[0, 1:] == 1.0)  # towards the target
    assert np.all(p[1, 1:] == 0.0)  # the opposite drug moves away from it
    assert np.all(p[:, 0] == 0.0)  # dose 0: no change, not an improvement
    assert pred.distance[0, 0, 2] < 1e-5  # 1 - r at the target itself (float32)
    r = ranking(pred, 2)
    assert r.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(r, [1.0, 0.0, 0.0])


def test_ranking_mixed_draws_sums_to_one(setup, pred):
    conn, a, G, drugs = setup
    target = np.corrcoef(np.random.default_rng(3).normal(size=(conn.n_regions, 400)))
    p2 = predict_interventions(
        a, G, conn.weights, conn.labels, drugs, DOSES[1:], target_fc=target, distance="fisher_z"
    )
    r = ranking(p2, 0)
    assert r.sum() == pytest.approx(1.0)
    best = np.argmin(p2.distance[:, :, 0], axis=1)
    np.testing.assert_allclose(r, np.bincount(best, minlength=3) / 4)


def test_change_summary_and_netcdf(pred, tmp_path):
    s = change_summary(pred, prob=0.9)
    g = pred.gbc_change
    np.testing.assert_allclose(s["gbc_change_mean"], g.mean(0))
    np.testing.assert_allclose(s["mean_fc_change_lo"], np.quantile(pred.mean_fc_change, 0.05, 0))
    assert np.all(s["mean_fc_change_lo"] <= s["mean_fc_change_hi"])
    # the psychedelic (a towards 0) raises mean FC, monotonically in dose
    m = s["mean_fc_change_mean"][0]
    assert m[0] == 0.0 and 0 < m[1] < m[2]
    assert np.all(s["mean_fc_change_mean"][1, 1:] < 0)  # the antipsychotic lowers it
    idata = predictions_to_inference_data(pred)
    path = save_netcdf(idata, tmp_path / "pred.nc")
    back = load_netcdf(path)
    ds = back.predictions
    assert ds["gbc_change"].dims == ("draw", "intervention", "dose", "region")
    assert list(ds["intervention"].values) == list(pred.names)
    np.testing.assert_allclose(ds["gbc_change"].values, g)
    np.testing.assert_allclose(ds["dose"].values, DOSES)


def test_errors(setup):
    conn, a, G, drugs = setup
    with pytest.raises(ShapeError, match="G_draws"):
        predict_interventions(a, G[:2], conn.weights, conn.labels, drugs, DOSES)
    with pytest.raises(ArgumentError, match="doses"):
        predict_interventions(a, G, conn.weights, conn.labels, drugs, [-1.0])
    with pytest.raises(ShapeError, match="target_fc"):
        predict_interventions(a, G, conn.weights, conn.labels, drugs, DOSES, target_fc=np.eye(3))
    with pytest.raises(ArgumentError, match="Drug acting on"):
        predict_interventions(a, G, conn.weights, conn.labels, {"x": 1.0}, DOSES)


def _band_power_ref(a, W, G, omega, bands):
    """Relative band power (B, N) of the linearised Hopf network, float64 NumPy: the eigenmodes
    of ``B = diag(a) + G (W - diag(W 1))``, each a Lorentzian pair at +-omega integrated over
    the band by arctangents."""
    lam, U = np.linalg.eigh(np.diag(a) + G * (W - np.diag(W.sum(1))))
    c = -lam
    w = np.asarray(bands, np.float64) * (2.0 * np.pi / 1000.0)
    d = sum(np.arctan((w[:, 1:] + s) / c) - np.arctan((w[:, :1] + s) / c) for s in (-omega, omega))
    P = (d / c) @ (U * U).T
    return P / P.sum(0)


@pytest.mark.parametrize("distance", ["corr", "fisher_z"])
def test_band_power_and_distance_match_float64_references(setup, distance):
    conn, a, G, drugs = setup
    W = np.asarray(conn.weights, np.float64)
    iu = np.triu_indices(W.shape[0], 1)
    bands = {"slow5": (0.01, 0.027), "slow4": (0.027, 0.073)}
    omega = 2.0 * np.pi * 0.05e-3
    target = np.asarray(vbt.dk84_empirical_fc(), np.float64)
    one = {"psychedelic": drugs["psychedelic"]}
    p = predict_interventions(
        a[:2], G[:2], conn.weights, conn.labels, one, DOSES, target_fc=target,
        distance=distance, bands_hz=bands, omega=omega,
    )  # fmt: skip
    rho = np.asarray(drugs["psychedelic"].regional_density(conn.labels), np.float64)
    for d in range(2):
        a0 = a[d].astype(np.float64)
        a1 = a0 * (1.0 + (-0.5) * (3.0 / (1.0 + 3.0)) * rho)  # e occ(d) rho at dose 3
        for got, ad in ((p.band_power_base[d], a0), (p.band_power[d, 0, 2], a1)):
            want = _band_power_ref(ad, W, float(G[d]), omega, list(bands.values()))
            np.testing.assert_allclose(got, want, atol=1e-5)  # float32 vs float64
        X = np.linalg.inv(-(np.diag(a1) + float(G[d]) * (W - np.diag(W.sum(1)))))
        sd = np.sqrt(np.diag(X))
        fc = (X / np.outer(sd, sd))[iu]
        if distance == "corr":
            want = 1.0 - np.corrcoef(fc, target[iu])[0, 1]
        else:
            want = np.linalg.norm(np.arctanh(fc) - np.arctanh(target[iu]))
        assert p.distance[d, 0, 2] == pytest.approx(want, rel=1e-4)
