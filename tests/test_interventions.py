"""Interventions: occupancy, drugs on receptor maps, stimulation segments, lesions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.optimize
from scipy.stats import spearmanr

import vbt_jax as vbt
from vbt_jax.interventions import (
    AbstractIntervention,
    Drug,
    Lesion,
    Occupancy,
    Stimulation,
    antipsychotic_d2,
    benzodiazepine_gabaa,
    ketamine_nmda,
    normalise_density,
    psychedelic_5ht2a,
)
from vbt_jax.models import ReducedWongWangExcInh, StuartLandau, with_fic
from vbt_jax.monitors import Raw, TemporalAverage


@pytest.fixture(scope="module")
def dk():
    return vbt.dk84().normalised("log")


def _minmax(values):
    """Independent reference for the map scaling: NumPy float64, NaN -> 0."""
    v = np.asarray(values, dtype=np.float64)
    out = (v - np.nanmin(v)) / (np.nanmax(v) - np.nanmin(v))
    return np.where(np.isnan(v), 0.0, out)


# ------------------------------------------------------------------ occupancy


def test_occupancy_closed_form_half_at_ec50_monotone_and_inverse(x64):
    occ = Occupancy(ec50=2.5, hill=1.7, emax=0.9)
    d = np.geomspace(1e-3, 1e3, 200)
    ref = 0.9 * d**1.7 / (d**1.7 + 2.5**1.7)  # the textbook form, not the code's r / (1 + r)
    got = np.asarray(occ(jnp.asarray(d)))
    np.testing.assert_allclose(got, ref, rtol=1e-13)  # float64 round-off only
    assert np.all(np.diff(got) > 0)
    assert float(Occupancy(ec50=2.5)(2.5)) == pytest.approx(0.5, abs=1e-15)
    assert float(occ(0.0)) == 0.0
    o = np.array([0.0, 0.1, 0.45, 0.8, 0.89])
    np.testing.assert_allclose(np.asarray(occ(occ.inverse(o))), o, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(occ.inverse(occ(d))), d, rtol=1e-9)


def test_occupancy_is_a_log_dose_sigmoid_and_matches_kapur_window(x64):
    occ = Occupancy(ec50=3.0)
    k = np.array([1.5, 2.0, 10.0, 100.0])
    # hill 1: symmetric about log EC50
    np.testing.assert_allclose(np.asarray(occ(3.0 * k) + occ(3.0 / k)), 1.0, rtol=1e-14)
    # Kapur & Seeman's 65-80 % window: 13/7 and 4 EC50
    np.testing.assert_allclose(np.asarray(occ.inverse(jnp.array([0.65, 0.8]))) / 3.0, [13 / 7, 4.0])


@pytest.mark.parametrize(
    "kwargs", [dict(ec50=0.0), dict(ec50=-1.0), dict(ec50=1.0, hill=0.0), dict(ec50=1.0, emax=1.2)]
)
def test_occupancy_rejects_bad_constants(kwargs):
    with pytest.raises(vbt.ArgumentError, match="Occupancy"):
        Occupancy(**kwargs)


def test_occupancy_rejects_bad_dose_and_occupancy():
    occ = Occupancy(ec50=1.0, emax=0.8)
    with pytest.raises(vbt.ArgumentError, match="dose"):
        occ(-1.0)
    with pytest.raises(vbt.ArgumentError, match="emax"):
        occ.inverse(0.8)


# ------------------------------------------------------------------ drugs


def test_rww_psychedelic_changes_gain_exactly_by_map(dk, x64):
    drug = psychedelic_5ht2a("wong_wang", occupancy=Occupancy(ec50=2.0))
    model = ReducedWongWangExcInh()
    dose = 3.0
    out = drug.apply(model, dose, labels=dk)
    rho = _minmax(vbt.receptor_map("5HT2a", dk.labels, allow_missing=True).values)
    occ = dose / (dose + 2.0)
    rel = 0.2 * occ * rho
    for name, base in (("a_e", 310.0), ("b_e", 125.0)):
        new = np.asarray(getattr(out, name))
        assert new.shape == (84,)
        np.testing.assert_allclose(new / base - 1.0, rel, rtol=1e-12, atol=1e-15)
    # cerebellum has no PET value: weight 0, parameter untouched
    cer = [dk.labels.index("L.CER"), dk.labels.index("R.CER")]
    assert np.all(np.asarray(out.a_e)[cer] == 310.0)
    assert model.a_e == 310.0  # pure: the input model is unchanged
    assert float(np.max(rel)) == pytest.approx(0.2 * occ)  # densest region gets e * occ


def test_d2_antagonist_acts_most_in_striatum(dk, x64):
    out = antipsychotic_d2("wong_wang").apply(ReducedWongWangExcInh(), 4.0, labels=dk)
    change = np.abs(np.asarray(out.a_e) - 310.0)
    top4 = {dk.labels[i] for i in np.argsort(-change)[:4]}
    assert top4 == {"L.PU", "R.PU", "L.CA", "R.CA"}
    assert np.all(np.asarray(out.a_e) <= 310.0)  # antagonist lowers the gain everywhere


def test_drug_traces_under_jit_vmap_grad(dk, x64):
    rho = jnp.asarray(psychedelic_5ht2a().regional_density(dk))
    model = ReducedWongWangExcInh()

    def total_gain(dose, eff):
        drug = psychedelic_5ht2a("wong_wang", efficacy=eff, occupancy=Occupancy(ec50=2.0))
        return jnp.sum(drug.apply(model, dose, density=rho).a_e)

    doses = jnp.array([0.5, 2.0, 8.0])
    eager = np.array([float(total_gain(d, 0.3)) for d in doses])
    np.testing.assert_allclose(np.asarray(jax.jit(total_gain)(2.0, 0.3)), eager[1], rtol=1e-14)
    np.testing.assert_allclose(np.asarray(jax.vmap(total_gain, (0, None))(doses, 0.3)), eager)
    g_dose, g_eff = jax.grad(total_gain, argnums=(0, 1))(2.0, 0.3)
    s = float(jnp.sum(rho))
    # d/dd [d / (d + 2)] = 2 / (d + 2)^2 ; at d = 2: 1/8
    assert float(g_dose) == pytest.approx(310.0 * 0.3 * s / 8.0, rel=1e-12)
    assert float(g_eff) == pytest.approx(310.0 * 0.5 * s, rel=1e-12)


def test_half_effect_at_ec50(dk, x64):
    drug = psychedelic_5ht2a("hopf", occupancy=Occupancy(ec50=0.7))
    rho = np.asarray(drug.regional_density(dk))
    base = StuartLandau(a=-0.05)
    delta = np.asarray(drug.apply(base, 0.7, density=rho).a) + 0.05
    full = -0.05 * -0.5 * rho  # the change at full occupancy
    np.testing.assert_allclose(delta, 0.5 * full, rtol=1e-12, atol=1e-18)


def _hopf_stats(a, W, G):
    X = np.asarray(vbt.hopf_covariance_symmetric(a, W, G, 1e-3))
    sd = np.sqrt(np.diag(X))
    return np.diag(X), X / np.outer(sd, sd)


def test_hopf_psychedelic_dose_response_and_topography(dk, x64):
    # weak coupling (G * mean row sum = 0.11 against |a| = 0.05): regional effects stay regional
    W, G, a0 = np.asarray(dk.weights), 0.003, -0.05
    drug = psychedelic_5ht2a("hopf")
    rho = np.asarray(drug.regional_density(dk))
    v0, fc0 = _hopf_stats(a0, W, G)
    doses = [0.0, 0.3, 1.0, 3.0, 10.0]
    means = []
    for d in doses:
        v, fc = _hopf_stats(drug.apply(StuartLandau(a=a0), d, density=rho).a, W, G)
        means.append(v.mean())
    assert np.all(np.diff(means) > 0)  # a towards 0: larger fluctuations, monotone in dose
    assert means[0] == pytest.approx(v0.mean(), rel=1e-12)
    # at the highest dose the variance rises with the density and FC changes most where it is high
    assert spearmanr(v / v0, rho)[0] > 0.8
    dfc = np.abs(fc - fc0)
    np.fill_diagonal(dfc, 0.0)
    per_region = dfc.sum(axis=1) / (len(rho) - 1)
    hi, lo = rho >= np.quantile(rho, 0.75), rho <= np.quantile(rho, 0.25)
    assert per_region[hi].mean() > 1.1 * per_region[lo].mean()
    assert spearmanr(per_region, rho)[0] > 0.3


def test_hopf_benzodiazepine_and_antipsychotic_damp(dk, x64):
    W, G, a0 = np.asarray(dk.weights), 0.003, -0.05
    v0 = _hopf_stats(a0, W, G)[0].mean()
    for drug in (benzodiazepine_gabaa("hopf"), antipsychotic_d2("hopf")):
        means = [_hopf_stats(drug.apply(StuartLandau(a=a0), d, labels=dk).a, W, G)[0].mean()
                 for d in (0.5, 2.0, 8.0)]  # fmt: skip
        assert means[0] < v0 and np.all(np.diff(means) < 0)
    k = ketamine_nmda("hopf").apply(StuartLandau(a=a0), 2.0, labels=dk)
    assert _hopf_stats(k.a, W, G)[0].mean() > v0
    assert np.all(np.asarray(k.a) < 0)  # efficacy > -1: never crosses the bifurcation


def _rww_fixed_point(model, W, G, guess):
    """Steady state of the zero-delay network by Newton (SciPy), float64."""
    n = W.shape[0]
    Wj = jnp.asarray(W)

    def f(x):
        s = x.reshape(2, n)
        return model.dfun(s, (G * (Wj @ s[0]))[None]).reshape(-1)

    jac = jax.jit(jax.jacfwd(f))
    sol = scipy.optimize.root(
        lambda x: np.asarray(f(jnp.asarray(x))), guess, jac=lambda x: np.asarray(jac(x))
    )
    # the drift's terms are ~1e-3 /ms (S / tau); 1e-10 is round-off level for the Newton solve
    assert sol.success and np.max(np.abs(sol.fun)) < 1e-10
    s = sol.x.reshape(2, n)
    r_e, _ = model.firing_rates(jnp.asarray(s), (G * (Wj @ s[0]))[None])
    return sol.x, np.asarray(r_e)


def test_rww_ketamine_disinhibits_benzodiazepine_inhibits(dk, x64):
    W, G = np.asarray(dk.weights), 0.01
    base = with_fic(ReducedWongWangExcInh(), W, G)
    s_e = 0.641e-3 * 100 * 3.0 / (1 + 0.641e-3 * 100 * 3.0)
    guess = np.concatenate([np.full(84, s_e), np.full(84, 0.03)])
    x0, r0 = _rww_fixed_point(base, W, G, guess)
    np.testing.assert_allclose(r0, 3.0, rtol=1e-6)  # FIC puts every region at 3 Hz
    keta = ketamine_nmda("wong_wang")
    rho = np.asarray(keta.regional_density(dk))
    _, r_k = _rww_fixed_point(keta.apply(base, 4.0, density=rho), W, G, x0)
    hi = rho > 0.5
    assert np.all(r_k[hi] > 3.0)  # disinhibition raises the excitatory rate
    # scaling the shared NMDA conductance J_N instead lowers it (why the factory uses J_i)
    hypo = Drug("NMDA J_N", "NMDA", "J_N", -0.2, Occupancy(1.0), mode="scale")
    _, r_h = _rww_fixed_point(hypo.apply(base, 4.0, density=rho), W, G, x0)
    assert np.all(r_h[hi] < 3.0)
    _, r_b = _rww_fixed_point(benzodiazepine_gabaa().apply(base, 4.0, labels=dk), W, G, x0)
    assert np.mean(r_b) < 3.0


def test_custom_map_and_transforms(x64):
    vals = np.array([2.0, np.nan, 4.0, 6.0])
    np.testing.assert_array_equal(np.asarray(normalise_density(vals)), [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(np.asarray(normalise_density(vals, "max")), [1 / 3, 0, 2 / 3, 1])
    drug = Drug("x", vals, "a", 0.1, Occupancy(1.0), mode="add")
    out = drug.apply(StuartLandau(a=-0.5), 1.0)
    np.testing.assert_allclose(np.asarray(out.a), -0.5 + 0.1 * 0.5 * np.array([0, 0, 0.5, 1]))
    with pytest.raises(vbt.ArgumentError, match="constant"):
        normalise_density(np.array([1.0, 1.0, np.nan]))


def test_drug_errors(dk):
    drug = psychedelic_5ht2a("wong_wang")
    with pytest.raises(vbt.ArgumentError, match="no parameter 'a_e'"):
        drug.apply(StuartLandau(), 1.0, labels=dk)
    with pytest.raises(vbt.ArgumentError, match="labels"):
        drug.apply(ReducedWongWangExcInh(), 1.0)
    with pytest.raises(vbt.ShapeError, match="scalar"):
        drug.apply(ReducedWongWangExcInh(), jnp.ones(3), labels=dk)
    with pytest.raises(vbt.ArgumentError, match="model_name"):
        ketamine_nmda("mpr")
    with pytest.raises(vbt.ArgumentError, match="mode"):
        Drug("x", "D2", "a", 0.1, Occupancy(1.0), mode="mul")
    d = benzodiazepine_gabaa()
    assert isinstance(d, AbstractIntervention) and d.kind == "drug"
    assert "GABAa" in d.describe() and "J_i" in d.describe() and "Rudolph" in d.describe()


# ------------------------------------------------------------------ stimulation

_DT, _ONSET, _LEN, _T = 0.1, 20.0, 40.0, 100.0
_DELAYS_MS = (10.0, 20.0)  # 30 mm and 60 mm at 3 mm/ms


@pytest.fixture(scope="module")
def chain_runs():
    """A 3-region chain A -> B -> C with 10 and 20 ms delays, noisy reduced Wong-Wang.

    One uninterrupted run, and the stimulated run (three resumed segments) for amplitudes 0
    and 0.05 nA at once under ``jit(vmap)``: this also shows ``run`` is traceable in the
    amplitude. Everything is jitted to compile each program once (fast tests).
    """
    W = np.zeros((3, 3))
    W[1, 0] = W[2, 1] = 1.0
    L = np.zeros((3, 3))
    L[1, 0], L[2, 1] = 3.0 * _DELAYS_MS[0], 3.0 * _DELAYS_MS[1]
    conn = vbt.Connectome(W, L, ["A", "B", "C"])
    kw = dict(
        dt=_DT,
        noise=vbt.Additive(nsig=1e-5),
        monitors=(Raw(period=1.0), TemporalAverage(period=2.0)),
        coupling=vbt.Linear(G=0.5),
        speed=3.0,
        unroll=1,
        checkpoint=False,
    )
    model = ReducedWongWangExcInh()

    def plain(key):
        sol = vbt.simulate(model, conn, duration=_T, key=key, **kw)
        return sol.ys, sol.ts, sol.final_state, sol.final.step

    def stimulated(amp, key):
        sol = Stimulation(["A"], amp, _ONSET, _LEN).run(model, conn, duration=_T, key=key, **kw)
        return sol.ys, sol.ts, sol.final_state, sol.final.step

    full = jax.jit(plain)(jr.key(7))
    both = jax.jit(jax.vmap(stimulated, (0, None)))(jnp.array([0.0, 0.05]), jr.key(7))
    zero = jax.tree_util.tree_map(lambda x: x[0], both)
    on = jax.tree_util.tree_map(lambda x: x[1], both)
    return full, zero, on


def test_zero_amplitude_stimulation_equals_one_run_bitwise(chain_runs):
    (ys_f, ts_f, xf_f, step_f), (ys_z, ts_z, xf_z, step_z), _ = chain_runs
    for name in ("raw", "tavg"):
        np.testing.assert_array_equal(np.asarray(ys_z[name]), np.asarray(ys_f[name]))
        np.testing.assert_array_equal(np.asarray(ts_z[name]), np.asarray(ts_f[name]))
    np.testing.assert_array_equal(np.asarray(xf_z), np.asarray(xf_f))
    assert int(step_z) == int(step_f) == round(_T / _DT)


def test_stimulation_direction_and_causality(chain_runs):
    (ys_f, *_), _, (ys_on, *_) = chain_runs
    x0 = np.asarray(ys_f["raw"])[:, 0, :]  # S_E, samples every 1 ms (end of each ms)
    x1 = np.asarray(ys_on["raw"])[:, 0, :]
    n_on, n_off = round(_ONSET), round(_ONSET + _LEN)

    def first_change(i):
        return int(np.flatnonzero(x0[:, i] != x1[:, i])[0])

    # nothing changes before the onset; the target responds in the first sample after it
    assert first_change(0) == n_on
    # B hears A no earlier than onset + 10 ms, C no earlier than onset + 30 ms; the +1 sample
    # bound on B shows the delay is met, not exceeded (the first differing state of A at
    # onset + dt reaches B's input at onset + 10 ms + dt)
    assert n_on + _DELAYS_MS[0] <= first_change(1) <= n_on + _DELAYS_MS[0] + 1
    assert first_change(2) >= n_on + sum(_DELAYS_MS)
    # more input current, more NMDA gating in the target during the window
    during = slice(n_on + 5, n_off)
    assert x1[during, 0].mean() > x0[during, 0].mean() + 0.01
    assert x1[during, 1].mean() > x0[during, 1].mean()  # B is driven by A


def test_stimulation_apply_is_pure_and_differentiable():
    conn = vbt.Connectome(np.ones((3, 3)), None, ["A", "B", "C"])
    m = ReducedWongWangExcInh()

    def f(amp):
        return jnp.sum(Stimulation(["B", 2], amp, 0.0, 1.0).apply(m, conn).I_ext * jnp.arange(3))

    assert float(jax.grad(f)(0.3)) == pytest.approx(1.0 + 2.0)
    hopf = Stimulation([0], jnp.array([0.2]), 0.0, 1.0).apply(StuartLandau(a=-0.5), conn)
    np.testing.assert_allclose(np.asarray(hopf.a), [-0.3, -0.5, -0.5], rtol=1e-6)
    assert m.I_ext == 0.0


def test_stimulation_errors():
    conn = vbt.Connectome(np.ones((3, 3)), None, ["A", "B", "C"])
    m = ReducedWongWangExcInh()
    with pytest.raises(vbt.ArgumentError, match="multiple"):
        Stimulation([0], 0.1, 0.5, 1.0).run(m, conn, duration=10.0, monitors=(Raw(period=1.0),))
    with pytest.raises(vbt.ArgumentError, match="onset"):
        Stimulation([0], 0.1, 20.0, 1.0).run(m, conn, duration=10.0)
    with pytest.raises(vbt.ArgumentError, match="'Z'"):
        Stimulation(["Z"], 0.1, 0.0, 1.0).apply(m, conn)
    with pytest.raises(vbt.ShapeError, match="one per target"):
        Stimulation([0, 1], jnp.ones(3), 0.0, 1.0)
    with pytest.raises(vbt.ArgumentError, match="duration"):
        Stimulation([0], 0.1, 0.0, 0.0)
    s = Stimulation("A", 0.1, 5.0, 2.0)
    assert s.kind == "stimulation" and "['A']" in s.describe()


# ------------------------------------------------------------------ lesions


def test_lesion_weights_exact():
    rng = np.random.default_rng(0)
    W = rng.uniform(0.1, 1.0, (5, 5))
    L = rng.uniform(10.0, 50.0, (5, 5))
    conn = vbt.Connectome(W, L, list("abcde"))
    out = Lesion(regions=["b"], edges=[(3, 4)], factor=0.25).apply(conn)
    ref = W.copy()
    ref[1, :] *= 0.25
    ref[[0, 2, 3, 4], 1] *= 0.25  # W[1, 1] is scaled once, with row 1
    ref[3, 4] *= 0.25
    ref[4, 3] *= 0.25
    np.testing.assert_array_equal(out.weights, ref)
    np.testing.assert_array_equal(out.lengths, L)
    assert isinstance(out.weights, np.ndarray) and out.labels == conn.labels
    directed = Lesion(edges=[("d", "e")], factor=0.0, directed=True).apply(conn)
    assert directed.weights[3, 4] == 0.0 and directed.weights[4, 3] == W[4, 3]
    np.testing.assert_array_equal(conn.weights, W)  # pure


def test_lesion_disconnects_region_in_hopf_fc(dk, x64):
    k = dk.labels.index("L.PCU")
    out = Lesion(regions=k).apply(dk)
    fc_before = np.asarray(vbt.hopf_fc_symmetric(-0.05, dk.weights, 0.01))
    fc = np.asarray(vbt.hopf_fc_symmetric(-0.05, out.weights, 0.01))
    others = np.arange(84) != k
    # B is block diagonal once k is cut: the covariance of k with the rest is exactly zero
    assert np.all(fc[k, others] == 0.0) and np.all(fc[others, k] == 0.0)
    assert np.abs(fc_before[k, others]).max() > 0.05


def test_lesion_factor_is_differentiable_and_validated():
    W = np.arange(1.0, 10.0).reshape(3, 3)
    conn = vbt.Connectome(W, None, list("abc"))
    g = jax.grad(lambda f: jnp.sum(Lesion(regions=[0], factor=f).apply(conn).weights))(0.5)
    assert float(g) == pytest.approx(W[0].sum() + W[1:, 0].sum())
    with pytest.raises(vbt.ArgumentError, match="regions"):
        Lesion()
    with pytest.raises(vbt.ArgumentError, match=">= 0"):
        Lesion(regions=[0], factor=-1.0)
    with pytest.raises(vbt.ArgumentError, match="outside"):
        Lesion(regions=[5]).apply(conn)
    assert Lesion(regions=[0]).kind == "lesion" and "scaled by 0" in Lesion(regions=[0]).describe()
