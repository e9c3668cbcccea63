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
# # 02 · Fitting the Hopf twin to empirical FC, and checking the fit
#
# `01_simulate_twin.py` showed that a Stuart-Landau network on the DK-84 connectome, with one
# bifurcation parameter for all regions, already reproduces the broad FC pattern, and that its
# simulated FC matches the analytic FC of the linearised network. Here the twin gets one
# bifurcation parameter per region, `a_i = -G exp(eta_i)` with
# `eta_i ~ Normal(mu + beta * strength_i, tau)`: partially pooled towards a linear function of
# the (z-scored log) structural node strength. The parameters are fitted with NUTS to the
# empirical FC, through the analytic FC (no simulation inside the likelihood), and the fit is
# then checked in ways the likelihood never saw:
#
# - **held-out edges**: half of the 3486 FC edges are left out of the likelihood; the posterior
#   must predict them (Pearson r) and cover them with its predictive intervals at the nominal
#   rate;
# - **simulation**: the nonlinear, noisy network at a posterior draw is simulated, and its FC
#   and FCD are compared with the data and the FCD reference;
# - **identifiability**: the summary reports how much each parameter's posterior shrank from
#   its prior. The FC depends on `a / G` only, so `G` is *not* identified by FC: its posterior
#   is its prior, and the summary says so.
#
# Everything is built from `configs/fit_hopf_dk84.toml`, the same file `vbt fit` runs.
#
# **Quick mode** (`VBT_NOTEBOOK_QUICK=1`, set by `tests/test_notebooks.py`): one short chain
# with a shallower tree and a shorter check simulation, so that CI runs this notebook in about
# a minute; R-hat then cannot be computed (one chain) and the numbers are rougher.

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, display

import inference as inf
import vbt_jax as vbt
from inference.fit import load_fit_config, setup_fit
from vbt_jax.config import build_experiment, find_config

QUICK = os.environ.get("VBT_NOTEBOOK_QUICK") == "1"


OUT = Path(tempfile.mkdtemp(prefix="vbt_nb02_"))  # figures and the NetCDF file go here
print(f"quick mode: {QUICK}; outputs in {OUT}")

# %% [markdown]
# ## 1. The twin from the fit config
#
# `load_fit_config` validates the experiment sections and `[fit]`; `setup_fit` loads the
# connectome, the empirical FC (diagonal set to 1) and the strength map, draws the held-out
# edge mask from `[fit] seed`, and builds the `Twin`: priors, the analytic forward map
# (`HopfLinear`: `FC = corr((-B)^-1)`, `B = diag(a) + G (W - diag(rowsum W))`) and the FC
# likelihood on the Fisher-z of the training edges, `z_obs ~ Normal(artanh(FC_pred), sigma_fc)`.
# Nothing is compiled yet.

# %%
cfg = load_fit_config(find_config("fit_hopf_dk84.toml"))
setup = setup_fit(cfg)
twin, fc_obs, train = setup.twin, setup.fc, setup.train_edges
n = fc_obs.shape[0]
iu = np.triu_indices(n, 1)
print(f"{n} regions; {int(train.sum())} training and {int((~train).sum())} held-out edges")
for p in twin.priors:
    kind = f"regional, {p.link} link, maps {p.map_names}" if p.regional else f"global {p.dist}"
    print(f"  prior on {p.name}: {kind}, loc {p.loc}, scale {p.scale}")

# %% [markdown]
# ## 2. NUTS
#
# The config asks for 2 chains of 500 warm-up and 500 kept draws. Each gradient of the
# log-density costs one Cholesky factorisation of an 84 x 84 matrix. The chains start from the
# median of a short mean-field SVI fit (`init_steps`), which spares warm-up the long
# trajectories far from the posterior.

# %%
nuts = dict(cfg.nuts)
if QUICK:
    nuts.update(warmup=60, samples=100, chains=1, max_tree_depth=4)
print({k: nuts[k] for k in ("warmup", "samples", "chains", "target_accept", "max_tree_depth")})
# one key per purpose: the sampler, the prior draws, the predictive noise
k_nuts, k_prior, k_pp = jr.split(jr.key(cfg.seed), 3)
t0 = time.perf_counter()
res = inf.run_nuts(
    twin,
    setup.data,
    key=k_nuts,
    num_warmup=nuts["warmup"],
    num_samples=nuts["samples"],
    num_chains=nuts["chains"],
    target_accept=nuts["target_accept"],
    max_tree_depth=nuts["max_tree_depth"],
    dense_mass=nuts["dense_mass"],
    init_steps=300,
    progress=False,
)
nuts_seconds = time.perf_counter() - t0
n_div = int(np.asarray(res.sample_stats["diverging"]).sum())
print(f"NUTS: {nuts_seconds:.1f} s, {n_div} divergent transitions")
print(f"mean leapfrog steps per draw: {np.asarray(res.sample_stats['n_steps']).mean():.1f}")

# %% [markdown]
# ## 3. Posterior summary, shrinkage and identifiability
#
# Prior draws and posterior-predictive draws go into one ArviZ `InferenceData` with named
# dimensions (`region`, `edge`). `summarize` adds to ArviZ's table the prior sd and the
# shrinkage `1 - var_post / var_prior`: near 1 the data pinned the parameter down, near 0 (or
# negative, from Monte Carlo noise) the posterior is the prior. Its warnings must flag `G`.

# %%
flat = res.flat()
prior = inf.prior_draws(twin, key=k_prior, num=500)
pp = inf.predictive_draws(twin, flat, key=k_pp, record=("fc",))
idata = inf.to_inference_data(
    twin,
    res,
    setup.data,
    prior=prior,
    posterior_predictive={k: v for k, v in pp.items() if k != "pred_fc"},
    constant_data={"train_edges": train.astype(np.int8), "map_strength": setup.maps["strength"]},
    attrs={"config": cfg.experiment.path.name, "quick": int(QUICK)},
)
table, warnings = inf.summarize(idata, twin, hdi_prob=0.9)
cols = ["mean", "sd", "hdi_5%", "hdi_95%", "r_hat", "ess_bulk", "prior_sd", "shrinkage"]
glob = table.loc[[r for r in table.index if "[" not in r], cols]
with pd.option_context("display.float_format", "{:.4g}".format):
    display(glob)
print("warnings:")
for w in warnings:
    print(" -", w)
g_flagged = any(w.startswith("G ") for w in warnings)
print(f"G flagged as not identified: {g_flagged}")

# %% [markdown]
# The regional `a_i` are summarised by their shrinkage distribution and the figure below;
# the hyper-parameters `a_mu`, `a_beta` (slope on the strength map) and `a_tau` show how much
# of the regional variation the map explains.

# %%
reg = table.loc[[r for r in table.index if r.startswith("a[")]]
print(
    f"a_i shrinkage: median {reg['shrinkage'].median():.3f}, "
    f"range {reg['shrinkage'].min():.3f} to {reg['shrinkage'].max():.3f}"
)
scalars = ["G", "a_mu", "a_beta", "a_tau", "sigma_fc"]
display(Image(inf.plots.plot_prior_posterior(idata, scalars, OUT / "prior_posterior.png")))
display(
    Image(
        inf.plots.plot_regional(
            idata,
            "a",
            OUT / "regional_a.png",
            labels=twin.labels,
            maps=setup.maps["strength"],
            map_names=("strength",),
        )
    )
)
if nuts["chains"] > 1:
    display(Image(inf.plots.plot_trace_rank(idata, scalars, OUT / "trace_rank.png")))

# %% [markdown]
# ## 4. Observed vs predicted FC, on training and held-out edges
#
# The predicted FC is the posterior mean in Fisher-z space of the analytic FC, mapped back to
# r. The held-out edges never entered the likelihood: their r measures prediction, not fit.

# %%
pred_fc = pp["pred_fc"]  # (draws, N, N), analytic FC at each posterior draw
fc_pred = np.tanh(inf.fisher_z(pred_fc[:, iu[0], iu[1]]).mean(axis=0))
fc_pred_mat = np.eye(n)
fc_pred_mat[iu] = fc_pred
fc_pred_mat = fc_pred_mat + np.triu(fc_pred_mat, 1).T
r_train, r_heldout = inf.metrics.fc_r(fc_obs, fc_pred_mat, train)
print(f"FC r: training {r_train:.3f}, held-out {r_heldout:.3f}")
display(
    Image(
        inf.plots.plot_fc_fit(
            fc_obs, fc_pred_mat, train, OUT / "fc_fit.png", title="analytic FC at the posterior"
        )
    )
)

# %% [markdown]
# ## 5. Posterior predictive coverage of held-out edges
#
# A replicated observation of an edge is `artanh(FC_pred) + sigma_fc * noise` at a posterior
# draw. If the model's error model is right, the central 90 % interval of the replicates
# should contain about 90 % of the held-out observed edges (in Fisher z). Much less means
# over-confidence, much more an inflated `sigma_fc`.

# %%
rng = np.random.default_rng(cfg.seed + 7)
z_pred = inf.fisher_z(pred_fc[:, iu[0], iu[1]])  # (draws, edges)
z_rep = z_pred + rng.normal(size=z_pred.shape) * flat["sigma_fc"][:, None]
lo, hi = np.quantile(z_rep, [0.05, 0.95], axis=0)
z_obs = inf.fisher_z(fc_obs[iu])
inside = (z_obs >= lo) & (z_obs <= hi)
cov_heldout = float(inside[~train].mean())
cov_train = float(inside[train].mean())
print(f"90 % predictive coverage: held-out {cov_heldout:.3f}, training {cov_train:.3f}")

held = np.flatnonzero(~train)
order = held[np.argsort(z_pred.mean(axis=0)[held])]
fig, ax = plt.subplots(figsize=(11, 3.6))
x = np.arange(order.size)
ax.fill_between(x, lo[order], hi[order], color="C0", alpha=0.3, label="90 % predictive interval")
ax.plot(x, z_obs[order], ".", ms=2, color="k", label="observed (held-out)")
ax.set_xlabel("held-out edge, sorted by predicted Fisher z")
ax.set_ylabel("Fisher z of FC")
ax.set_title(f"held-out coverage {cov_heldout:.1%} (nominal 90 %)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 6. Simulating the fitted twin
#
# The analytic FC is exact only for the linearised network and infinite data. The real check
# is to put one posterior draw (`G`, `a_i`) into the nonlinear stochastic simulation of the
# config (`tavg` of `x` per TR of 720 ms, 20 s transient) and compare its FC with the data and
# its FCD (60 s windows, step 3 TR, non-overlapping pairs) with the reference histogram
# (KS). `G` now matters: it sets the time scale (`a_i / G` is fixed by FC), so with a
# fixed TR it changes how many effectively independent samples the FC rests on and the
# shape of the FCD distribution.

# %%
exp_cfg = cfg.experiment
if QUICK:
    exp_cfg = exp_cfg.with_simulation(duration=240_000.0)  # 20 s transient + 220 s
exp = build_experiment(exp_cfg)
draw = flat["G"].size // 2  # one draw from the middle of the chain
G_draw, a_draw = float(flat["G"][draw]), np.asarray(flat["a"][draw], np.float64)
model = eqx.tree_at(lambda m: m.a, exp.model, jnp.asarray(a_draw))
coupling = eqx.tree_at(lambda c: c.G, exp.coupling, G_draw)
kw = {**exp.simulate_kwargs(), "coupling": coupling}
t0 = time.perf_counter()
sol = vbt.simulate(
    model,
    exp.connectome,
    key=jr.key(cfg.seed + 1),
    initial_state=jnp.asarray(exp.initial_state),
    **kw,
)
ts = np.asarray(sol.ts["tavg"])
x_sim = np.asarray(sol["tavg"], np.float64)[ts > exp_cfg.simulation.transient, 0, :]
sim_seconds = time.perf_counter() - t0
fc_sim = np.corrcoef(x_sim, rowvar=False)
r_sim_train, r_sim_heldout = inf.metrics.fc_r(fc_obs, fc_sim, train)
r_sim_analytic = inf.metrics.pearson(fc_sim[iu], fc_pred_mat[iu])
print(f"draw {draw}: G = {G_draw:.3g} /ms, a from {a_draw.min():.3g} to {a_draw.max():.3g} /ms")
print(f"simulated {exp_cfg.simulation.duration / 1000:.0f} s in {sim_seconds:.1f} s wall")
print(
    f"simulated FC r: training {r_sim_train:.3f}, held-out {r_sim_heldout:.3f}; "
    f"vs analytic posterior FC {r_sim_analytic:.3f}"
)

window, step = cfg.fcd_window, cfg.fcd_step
m = vbt.features.fcd(jnp.asarray(x_sim), window, step)
fcd_vals = np.asarray(vbt.features.fcd_values(m, min_separation=-(-window // step)))
ref_edges, ref_hist = vbt.dk84_fcd_reference()
ks = inf.metrics.ks_to_histogram(fcd_vals, ref_edges, ref_hist)
print(f"FCD: {fcd_vals.size} values, KS to the reference {ks:.3f}")
display(
    Image(
        inf.plots.plot_fc_fit(
            fc_obs, fc_sim, train, OUT / "fc_sim.png", title="simulated FC at one posterior draw"
        )
    )
)
display(Image(inf.plots.plot_fcd(fcd_vals, ref_edges, ref_hist, OUT / "fcd.png", ks=ks)))

# %% [markdown]
# ## 7. Saving and reloading the posterior
#
# `save_netcdf` writes the `InferenceData` (posterior, prior, sample stats, predictive
# draws, observed and constant data) atomically; `load_netcdf` reads it back with ArviZ. The
# reloaded draws must equal the in-memory ones exactly.

# %%
path = inf.save_netcdf(idata, OUT / "fit_hopf_dk84.nc")
back = inf.load_netcdf(path)
same = all(
    np.array_equal(np.asarray(back.posterior[v].values), np.asarray(idata.posterior[v].values))
    for v in idata.posterior.data_vars
)
print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB; groups {inf.group_names(back)}")
print(f"reloaded posterior identical: {same}")

# %% [markdown]
# ## Summary
#
# The last cell records the key numbers; `tests/test_notebooks.py` parses the line starting
# with `RESULTS` and checks them (held-out FC r, coverage, the `G` warning, the NetCDF round
# trip, the simulated FC).

# %%
results = {
    "quick": QUICK,
    "nuts_seconds": round(nuts_seconds, 1),
    "draws": int(flat["G"].size),
    "divergences": n_div,
    "fc_r_train": round(r_train, 4),
    "fc_r_heldout": round(r_heldout, 4),
    "heldout_coverage_90": round(cov_heldout, 4),
    "train_coverage_90": round(cov_train, 4),
    "shrinkage_G": round(float(table.loc["G", "shrinkage"]), 4),
    "shrinkage_a_tau": round(float(table.loc["a_tau", "shrinkage"]), 4),
    "G_flagged": g_flagged,
    "sim_fc_r_heldout": round(r_sim_heldout, 4),
    "sim_fc_r_analytic": round(r_sim_analytic, 4),
    "sim_fcd_ks": round(ks, 4),
    "netcdf_roundtrip": same,
}
print("RESULTS " + json.dumps(results))
