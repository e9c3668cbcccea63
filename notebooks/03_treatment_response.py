# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Treatment response: drugs at several doses on a fitted twin, and checks of the predictions
#
# `02_fit_twin.py` fitted a Stuart-Landau (Hopf) twin with one bifurcation parameter per region
# to the empirical DK-84 FC. Here the fitted twin is treated:
#
# 1. **fit** the twin with `vbt fit`'s own code path (`fit_run_folder`, the config
#    `configs/fit_hopf_dk84.toml`) and read its posterior back as `vbt predict` does
#    (`inference.load_twin`);
# 2. **apply drugs at several doses**: four receptor-mediated drugs (5-HT2A agonist, D2
#    antagonist, NMDA antagonist, GABA-A positive modulator), each a relative change of the
#    regional bifurcation parameter weighted by a PET receptor map (Hansen et al. 2022) and
#    scaled by a Hill occupancy curve of the dose;
# 3. **read the predictions**: dose-response of the mean FC with credible bands, regional
#    changes, the probability of moving the FC towards a reference, and a ranking;
# 4. **check the predictions**: (a) the analytic prediction against nonlinear, noisy
#    simulations of the same twin with and without the drug (common random numbers), (b) one
#    observed on-drug session (synthetic, with a known efficacy): the posterior predictive check
#    and the patient's efficacy, and (c) a virtual trial with a known drug efficacy: learn it
#    on training patients, predict held-out patients' post-treatment change, and test
#    coverage, responder AUC and a negative control with a shuffled receptor map.
#
# The default drug efficacies are placeholders (see `vbt_jax.interventions`): the predictions
# show what the model implies for a given mechanism, not a clinical claim; step 4b shows how
# an efficacy is learned from on-drug data.
#
# **Quick mode** (`VBT_NOTEBOOK_QUICK=1`, set by `tests/test_notebooks.py`): a short NUTS
# chain, fewer draws, a shorter simulation and a small trial.
#
# **Your own twin**: set `VBT_TWIN` to a run folder written by `vbt fit` (with the
# `hopf_linear` forward map) and step 1 reads that twin instead of fitting one.

# %%
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from IPython.display import Image, display

import inference as inf
import vbt_jax as vbt
from inference import validation
from inference.fit import fit_run_folder, load_fit_config
from inference.treatment import (
    plot_dose_response,
    plot_fc_change,
    plot_observed_check,
    plot_ranking,
)
from vbt_jax.config import build_experiment, find_config
from vbt_jax.interventions import (
    antipsychotic_d2,
    benzodiazepine_gabaa,
    ketamine_nmda,
    psychedelic_5ht2a,
)

QUICK = os.environ.get("VBT_NOTEBOOK_QUICK") == "1"


OUT = Path(tempfile.mkdtemp(prefix="vbt_nb03_"))
print(f"quick mode: {QUICK}; outputs in {OUT}")

# %% [markdown]
# ## 1. Fit the twin
#
# The same function `vbt fit` runs, writing a run folder (`posterior.nc`, summary, config).
# The simulated check of notebook 02 is skipped here (`check_draws = 0`): step 4a below
# simulates the twin itself.

# %%
TWIN = os.environ.get("VBT_TWIN")
if TWIN:
    fit_dir = Path(TWIN)
    print(f"the twin of {fit_dir}")
else:
    cfg = load_fit_config(find_config("fit_hopf_dk84.toml"))
    cfg = dataclasses.replace(cfg.quick() if QUICK else cfg, check_draws=0)
    t0 = time.perf_counter()
    fit_dir = fit_run_folder(cfg, OUT / "twin", progress=False, figures=False)
    print(f"fitted in {time.perf_counter() - t0:.0f} s")
quality = json.loads((fit_dir / "fit_quality.json").read_text())
print(f"FC r training {quality['fc_r_train']:.3f}, held-out {quality['fc_r_heldout']:.3f}")
twin = inf.treatment.load_twin(fit_dir, draws=None if QUICK else 500)
print(f"{twin.a.shape[0]} of {twin.n_posterior} posterior draws, {len(twin.labels)} regions")

# %% [markdown]
# ## 2. Drugs and doses
#
# Each drug multiplies `a_i` by `1 + e * occ(d) * rho_i`: `rho` the receptor map min-max scaled
# to [0, 1] (0 where a region has no PET value), `occ(d) = d / (d + EC50)` the occupancy (dose
# in multiples of the EC50) and `e` the efficacy (negative: towards the bifurcation, slower and
# larger fluctuations). `describe()` states the mechanism and reference of each.

# %%
drugs = {
    "psychedelic": psychedelic_5ht2a("hopf"),
    "antipsychotic": antipsychotic_d2("hopf"),
    "ketamine": ketamine_nmda("hopf"),
    "benzodiazepine": benzodiazepine_gabaa("hopf"),
}
for name, d in drugs.items():
    print(f"- {name}: {d.describe()[:160]}...")
doses = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
target = np.asarray(vbt.dk84_empirical_fc())

t0 = time.perf_counter()
pred = inf.treatment.predict_interventions(
    twin.a,
    twin.G,
    twin.weights,
    twin.labels,
    drugs,
    doses,
    target_fc=target,
    omega=twin.omega,
    bands_hz={"slow5": (0.01, 0.027), "slow4": (0.027, 0.073)},
)
print(
    f"{len(drugs)} drugs x {doses.size} doses x {twin.a.shape[0]} draws in "
    f"{time.perf_counter() - t0:.1f} s"
)

# %% [markdown]
# ## 3. Reading the predictions
#
# The dose-response of the mean FC (posterior mean, 90% band), the probability of bringing
# the twin's FC closer to the empirical FC it was fitted to (for this healthy group twin: of
# disturbing it least), the ranking at twice the EC50, and the predicted FC-change maps.

# %%
summ = inf.treatment.change_summary(pred, 0.9)
p_imp = inf.treatment.prob_improves(pred)
k2 = inf.treatment.dose_index(pred, 2.0)
rank = inf.treatment.ranking(pred, k2)
print("mean FC change (90% interval) at dose 2 x EC50:")
for i, name in enumerate(pred.names):
    print(
        f"  {name:15s} {summ['mean_fc_change_mean'][i, k2]:+.4f} "
        f"({summ['mean_fc_change_lo'][i, k2]:+.4f}, {summ['mean_fc_change_hi'][i, k2]:+.4f}); "
        f"P(improves) {p_imp[i, k2]:.2f}; P(best) {rank[i]:.2f}"
    )
mono = all(
    np.all(
        np.diff(np.sign(summ["mean_fc_change_mean"][i, 1]) * summ["mean_fc_change_mean"][i])
        >= -1e-6
    )
    for i in range(len(pred.names))
)
print(f"every dose-response monotone in the dose: {mono}")
display(Image(plot_dose_response(pred, summ, p_imp, OUT / "dose_response.png")))
display(Image(plot_ranking(pred, rank, k2, OUT / "ranking.png")))
display(Image(plot_fc_change(pred, k2, OUT / "fc_change.png")))

# %% [markdown]
# The D2 map is densest in the striatum, so the antipsychotic's largest regional changes sit in
# the caudate and putamen; the 5-HT2A map is cortical. The predictions are saved in the same
# NetCDF layout `vbt predict` writes.

# %%
g = summ["gbc_change_mean"]
for i, name in enumerate(pred.names):
    top = np.argsort(-np.abs(g[i, k2]))[:4]
    print(f"  {name:15s} " + ", ".join(f"{pred.labels[r]} {g[i, k2, r]:+.4f}" for r in top))
path = inf.save_netcdf(inf.treatment.predictions_to_inference_data(pred), OUT / "predictions.nc")
back = inf.load_netcdf(path).predictions
nc_same = bool(np.array_equal(back["gbc_change"].values, pred.gbc_change, equal_nan=True))
print(f"{path.name}: reloaded identical: {nc_same}")

# %% [markdown]
# ## 4a. Check: the analytic prediction against nonlinear simulations
#
# The predictions use the FC of the network linearised below its bifurcation. The same twin
# (the posterior median of `a` and `G`) is simulated with the full nonlinear Stuart-Landau
# equations and noise, without and with ketamine at 4 x EC50 (the largest effect), with the
# same noise (common random numbers), and the simulated FC change is compared with the
# predicted one. A finite scan underestimates correlations carried by slow modes, and the drug
# slows them, so the simulated change is expected to be smaller than the stationary one; its
# sign and spatial pattern must agree.

# %%
exp_cfg = twin.experiment_config  # the [fit] experiment the twin was fitted with
if QUICK:
    exp_cfg = exp_cfg.with_simulation(duration=380_000.0)  # 20 s transient + 500 volumes
exp = build_experiment(exp_cfg)
a_med, G_med = np.median(twin.a, 0), float(np.median(twin.G))
drug, dose = drugs["ketamine"], 4.0
one = inf.treatment.predict_interventions(
    a_med[None], np.array([G_med]), twin.weights, twin.labels, {"ketamine": drug}, [dose]
)
model0 = eqx.tree_at(lambda m: m.a, exp.model, jnp.asarray(a_med))
model1 = drug.apply(model0, dose, labels=twin.labels)
coupling = eqx.tree_at(lambda c: c.G, exp.coupling, G_med)
kw = {**exp.simulate_kwargs(), "coupling": coupling}
fcs = {}
t0 = time.perf_counter()
for name, m in (("baseline", model0), ("ketamine", model1)):
    sol = vbt.simulate(
        m, exp.connectome, key=jr.key(11), initial_state=jnp.asarray(exp.initial_state), **kw
    )
    ts = np.asarray(sol.ts["tavg"])
    x = np.asarray(sol["tavg"], np.float64)[ts > exp_cfg.simulation.transient, 0, :]
    fcs[name] = np.corrcoef(x, rowvar=False)
sim_seconds = time.perf_counter() - t0
n = len(twin.labels)
iu = np.triu_indices(n, 1)


def gbc(fc):
    return (fc.sum(1) - 1.0) / (n - 1)


d_sim = fcs["ketamine"] - fcs["baseline"]
sim_change = float(d_sim[iu].mean())
pred_change = float(one.mean_fc_change[0, 0, 0])
r_gbc = vbt.features.pearson(gbc(fcs["ketamine"]) - gbc(fcs["baseline"]), one.gbc_change[0, 0, 0])
r_edges = vbt.features.upper_r(d_sim, one.fc_change_mean[0, 0])
print(f"2 simulations of {exp_cfg.simulation.duration / 1000:.0f} s in {sim_seconds:.0f} s")
print(f"mean FC change: simulated {sim_change:+.4f}, predicted {pred_change:+.4f}")
print(f"pattern agreement: regional GBC change r = {r_gbc:.2f}, edge FC change r = {r_edges:.2f}")

# %% [markdown]
# ## 4b. Check: one observed on-drug session, and this patient's efficacy
#
# `vbt predict` takes observed on-drug FC (`[[predict.observed]]`) and asks two questions:
# does the observed change lie inside the predicted distribution (a posterior predictive
# p-value, with the patient's efficacy unknown before the session: drawn from its prior), and
# what is this patient's efficacy (its posterior given the change of every edge)? Here the
# session is synthetic, so the answer is known: the twin at one posterior draw, the
# psychedelic at 4 x EC50 with an efficacy of -1.1 (stronger than the configured -0.5), and
# pre/post scans of 1200 volumes with sampling noise.

# %%
rng = np.random.default_rng(3)
n = len(twin.labels)
iu = np.triu_indices(n, 1)


def scan(fc, rng, T=1200):
    z = vbt.features.fisher_z(fc[iu]) + rng.normal(size=iu[0].size) / np.sqrt(T - 3)
    m = np.eye(n)
    m[iu] = m.T[iu] = np.tanh(z)
    return m


psy = drugs["psychedelic"]
rho = np.asarray(psy.regional_density(twin.labels), np.float64)
e_true, dose_obs = -1.1, 4.0
a_p, G_p = twin.a[len(twin.a) // 3], float(twin.G[len(twin.a) // 3])
fc_pre = scan(np.asarray(vbt.hopf_fc_symmetric(a_p, twin.weights, G_p)), rng)
fc_post = scan(
    np.asarray(
        vbt.hopf_fc_symmetric(
            a_p * (1 + e_true * dose_obs / (dose_obs + 1) * rho), twin.weights, G_p
        )
    ),
    rng,
)
t0 = time.perf_counter()
chk = inf.treatment.check_observed(
    twin.a,
    twin.G,
    twin.weights,
    twin.labels,
    psy,
    dose_obs,
    fc_pre,
    fc_post,
    1200,
    key=jr.key(0),
)
print(f"check in {time.perf_counter() - t0:.0f} s")
print(
    f"observed mean FC change {chk.observed_mean_fc_change:+.4f}; predictive p = "
    f"{chk.p_mean_fc:.2f}; regions inside their 90% interval: {100 * chk.gbc_coverage:.0f}%"
)
lo_e, hi_e = chk.efficacy_interval
print(
    f"efficacy: prior {chk.efficacy_prior[0]:+.2f} +/- {chk.efficacy_prior[1]:.2f} -> "
    f"posterior {chk.efficacy_mean:+.3f} ({lo_e:+.3f}, {hi_e:+.3f}); true {e_true}"
)
display(Image(plot_observed_check(chk, "psychedelic", OUT / "observed.png")))

# %% [markdown]
# One session says little about calibration: a 90% interval misses the truth one time in ten.
# Eight sessions, each from another posterior draw of the twin with its own scan noise, give
# a rate: a calibrated interval covers the truth in at least 5 of 8 sessions with probability
# 0.995. Coverage alone would also reward the prior itself, so the intervals must be
# informative too: each much narrower than the prior's 90% interval. Whether one excludes the
# configured -0.5 depends on how far the twin's draws disagree about the regions' sensitivity
# to the drug; the count is printed.


# %%
def session(d, seed):
    """check_observed on a synthetic session: posterior draw d as the truth, its own noise."""
    r = np.random.default_rng(seed)
    a_d, G_d = twin.a[d], float(twin.G[d])
    e_scale = 1 + e_true * dose_obs / (dose_obs + 1) * rho
    pre = scan(np.asarray(vbt.hopf_fc_symmetric(a_d, twin.weights, G_d)), r)
    post = scan(np.asarray(vbt.hopf_fc_symmetric(a_d * e_scale, twin.weights, G_d)), r)
    args = (twin.a, twin.G, twin.weights, twin.labels, psy, dose_obs, pre, post, 1200)
    return inf.treatment.check_observed(*args, key=jr.key(seed))


D = len(twin.a)
sessions = [chk] + [session(d, 10 + i) for i, d in enumerate(np.linspace(0, D - 1, 7).astype(int))]
intervals = np.array([c.efficacy_interval for c in sessions])
covered = int(np.sum((intervals[:, 0] <= e_true) & (e_true <= intervals[:, 1])))
prior_out = int(np.sum(~((intervals[:, 0] <= -0.5) & (-0.5 <= intervals[:, 1]))))
print(f"true efficacy inside the 90% interval in {covered} of {len(sessions)} sessions")
print(f"the configured efficacy -0.5 outside it in {prior_out} of {len(sessions)}")
prior_width = 2 * 1.6449 * chk.efficacy_prior[1]
width_ratio = float(np.max(intervals[:, 1] - intervals[:, 0]) / prior_width)
print(f"widest 90% interval: {width_ratio:.2f} of the prior's")

# %% [markdown]
# ## 4c. Check: a virtual trial with a known efficacy
#
# A cohort of virtual patients on the DK-84 connectome (each with their own regional `a`,
# drawn from a stated population), a 5-HT2A drug with a known population efficacy, pre- and
# post-treatment scans with sampling noise. The efficacy is learned (hierarchical NUTS) on a
# training half; the held-out half's post-treatment GBC change is predicted and scored. The
# negative control repeats the pipeline with a shuffled receptor map.
#
# In quick mode the cohort is 6 + 6 patients with a short chain: enough to run every step,
# too few to judge calibration (`tests/test_virtual_trial.py` checks that on 16 + 40).

# %%
t0 = time.perf_counter()
trial = validation.run_virtual_trial(
    key=jr.key(0),
    n_train=6 if QUICK else 16,
    n_test=6 if QUICK else 40,
    num_warmup=100 if QUICK else 300,
    num_samples=100 if QUICK else 300,
)
trial_seconds = time.perf_counter() - t0
t, s = trial["true"], trial["shuffled"]
post = t["posterior"]
lo, hi = np.quantile(post["e_pop"], [0.05, 0.95])
print(f"trial in {trial_seconds:.0f} s")
e_true = validation.TrialDesign().e_pop
print(f"population efficacy: true {e_true}, 90% interval ({lo:.3f}, {hi:.3f})")
print(f"90% predictive coverage of held-out regional changes: {t['coverage']:.3f}")
print(f"responder AUC: {t['auc']:.3f}")
print(
    f"held-out log predictive density per patient: true map {t['lpd'].mean():.1f}, "
    f"shuffled map {s['lpd'].mean():.1f}"
)

# %% [markdown]
# ## Summary
#
# `tests/test_notebooks.py` parses the `RESULTS` line and checks the numbers.

# %%
results = {
    "quick": QUICK,
    "twin_from": str(fit_dir) if TWIN else None,
    "draws": int(twin.a.shape[0]),
    "fc_r_heldout": round(float(quality["fc_r_heldout"]), 4),
    "dose_response_monotone": bool(mono),
    "antipsychotic_mean_fc_change_2ec50": round(float(summ["mean_fc_change_mean"][1, k2]), 5),
    "psychedelic_mean_fc_change_2ec50": round(float(summ["mean_fc_change_mean"][0, k2]), 5),
    "ranking_sum": round(float(rank.sum()), 6),
    "netcdf_roundtrip": nc_same,
    "sim_mean_fc_change": round(sim_change, 5),
    "pred_mean_fc_change": round(pred_change, 5),
    "sim_pred_gbc_r": round(r_gbc, 4),
    "observed_p": round(float(chk.p_mean_fc), 4),
    "observed_sessions": len(sessions),
    "observed_efficacy_covered": covered,
    "observed_efficacy_prior_excluded": prior_out,
    "observed_efficacy_width_ratio": round(width_ratio, 4),
    "trial_patients": int(len(trial["true"]["cohort"].eta)),
    "trial_e_pop_covered": bool(lo <= validation.TrialDesign().e_pop <= hi),
    "trial_coverage": round(float(t["coverage"]), 4),
    "trial_auc": round(float(t["auc"]), 4),
    "trial_lpd_gain": round(float(t["lpd"].mean() - s["lpd"].mean()), 3),
}
print("RESULTS " + json.dumps(results))
