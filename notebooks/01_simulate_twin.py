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
# # 01 · Simulating a brain twin on the DK-84 connectome
#
# A *virtual brain twin* starts as a forward model: neural masses placed on the regions of a
# structural connectome, coupled through its weights with delays set by tract length and
# conduction speed, and observed through a measurement model (here: slow activity sampled at
# the fMRI repetition time, or BOLD). This notebook builds two such twins on the shipped
# Human Connectome Project group connectome (Desikan-Killiany atlas, 84 regions) and asks how
# close their functional connectivity (FC) and its dynamics (FCD) come to the empirical data
# shipped with it.
#
# 1. the structural connectome: weights and tract lengths;
# 2. a Stuart-Landau (Hopf normal form) network near its bifurcation, as in
#    `configs/hopf_dk84.toml`, with FC against the empirical FC and against the analytic FC of
#    the linearised network;
# 3. FCD (sliding-window FC) against the empirical reference distribution;
# 4. a reduced Wong-Wang network observed through the Balloon-Windkessel BOLD model, as in
#    `configs/rww_bold_dk84.toml`.
#
# **Units.** The simulator works in milliseconds: `dt`, `duration`, monitor periods and the
# TR are in ms, rates in 1/ms, conduction speed in mm/ms. The haemodynamic (BOLD) model
# integrates internally in seconds; its output is still sampled every TR given in ms. Figures
# label time in seconds.
#
# **Quick mode.** With the environment variable `VBT_NOTEBOOK_QUICK=1` (set by
# `tests/test_notebooks.py`) the simulated durations shrink so the notebook runs in CI within
# about a minute; the numbers are then noisier but must still pass the checks in the last
# cell.

# %%
import json
import os
import time

import jax.numpy as jnp
import jax.random as jr
import matplotlib.pyplot as plt
import numpy as np

import vbt_jax as vbt
from vbt_jax.config import build_experiment, find_config, load_config
from vbt_jax.features import ks_to_histogram as _ks_to_histogram

QUICK = os.environ.get("VBT_NOTEBOOK_QUICK") == "1"


CONFIGS = find_config("hopf_dk84.toml").parent
IU = np.triu_indices(84, 1)  # upper-triangle edges: every FC comparison uses these


edge_r = vbt.features.upper_r  # Pearson r between the upper triangles of two (N, N) matrices


print(f"quick mode: {QUICK}; configs from {CONFIGS}")

# %% [markdown]
# ## 1. The structural connectome
#
# `vbt.dk84()` returns streamline counts (arbitrary units, up to ~2e5) and mean tract lengths
# in mm. The experiments normalise the weights by their maximum (`normalise = "max"`), so the
# global coupling `G` carries the scale. `W[i, j]` is the weight from region j to region i;
# this connectome is symmetric. At the default conduction speed of 3 mm/ms the tract lengths
# become delays of a few to ~60 ms: negligible against the 20 s period of the 0.05 Hz Hopf
# oscillators, but they matter for faster models.

# %%
conn = vbt.dk84().normalised("max")
W = np.asarray(conn.weights)
L = np.asarray(conn.lengths)
n = conn.n_regions
print(f"{n} regions, {int((W[IU] > 0).sum())} of {IU[0].size} edges non-zero")
print(f"symmetric: {np.allclose(W, W.T)}; lengths {L[IU][W[IU] > 0].min():.1f} to {L.max():.1f} mm")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
im = axes[0].imshow(np.log10(np.where(W > 0, W, np.nan)), cmap="viridis")
axes[0].set_title("log10 weight (max-normalised)")
fig.colorbar(im, ax=axes[0], shrink=0.8)
im = axes[1].imshow(L, cmap="magma")
axes[1].set_title("tract length (mm)")
fig.colorbar(im, ax=axes[1], shrink=0.8)
for ax in axes[:2]:
    ax.set_xlabel("source region j")
    ax.set_ylabel("target region i")
nz = W[IU] > 0
axes[2].scatter(L[IU][nz], W[IU][nz], s=4, alpha=0.4)
axes[2].set_yscale("log")
axes[2].set_xlabel("tract length (mm)")
axes[2].set_ylabel("weight (max-normalised)")
axes[2].set_title("longer tracts carry fewer streamlines")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. A Stuart-Landau network near the Hopf bifurcation
#
# Each region is a Stuart-Landau oscillator `dz/dt = (a + i omega) z - |z|^2 z + coupling +
# noise` with `a = -2e-5 /ms` (just below the bifurcation: noise-driven, damped oscillations)
# and `omega = 2 pi 0.05 Hz = 3.1416e-4 rad/ms`, coupled by differences
# `G sum_j W_ij (x_j - x_i)`. Following Deco et al. (2017) the slow variable `x` itself plays
# the BOLD signal: the `tavg` monitor averages it over each TR of 720 ms. The first 20 s are a
# transient and are left out of every statistic.
#
# The experiment file is read with `load_config` (validated, frozen) and turned into simulator
# objects with `build_experiment`; quick mode only shortens `[simulation] duration`.

# %%
hopf_cfg = load_config(CONFIGS / "hopf_dk84.toml")
if QUICK:
    hopf_cfg = hopf_cfg.with_simulation(duration=320_000.0)  # 20 s transient + 300 s
hopf = build_experiment(hopf_cfg)
sim = hopf_cfg.simulation
print(hopf.model, hopf.coupling, sep="\n")
print(
    f"dt {sim.dt} ms, duration {sim.duration / 1000:.0f} s, transient {sim.transient / 1000:.0f} s"
)

t0 = time.perf_counter()
sol = vbt.simulate(
    hopf.model,
    hopf.connectome,
    key=jr.key(sim.seed),
    initial_state=jnp.asarray(hopf.initial_state),
    **hopf.simulate_kwargs(),
)
t_ms = np.asarray(sol.ts["tavg"])
x_hopf = np.asarray(sol["tavg"], dtype=np.float64)[t_ms > sim.transient, 0, :]  # (T, N)
hopf_seconds = time.perf_counter() - t0
print(f"simulated {sim.duration / 1000:.0f} s in {hopf_seconds:.1f} s wall; x: {x_hopf.shape}")

# %%
fig, ax = plt.subplots(figsize=(12, 3.2))
t_s = t_ms[t_ms > sim.transient] / 1000.0
for i in range(0, n, 12):
    ax.plot(t_s, x_hopf[:, i] / x_hopf[:, i].std() + 0.6 * i, lw=0.8, label=conn.labels[i])
ax.set_xlabel("time (s)")
ax.set_ylabel("x / sd (offset per region)")
ax.set_title("Stuart-Landau x, averaged over each 720 ms TR (every 12th region)")
ax.set_xlim(t_s[0], min(t_s[-1], t_s[0] + 200))
ax.legend(fontsize=7, ncols=7, loc="upper right")
plt.show()

# %% [markdown]
# ### FC: simulated, empirical and analytic
#
# Below the bifurcation the network is well described by its linearisation around zero,
# an Ornstein-Uhlenbeck process whose stationary covariance solves a Lyapunov equation. With a
# symmetric `W`, one `omega` for all regions and equal noise on `x` and `y`, the FC of `x` is
# `corr((-B)^-1)` with `B = diag(a) + G (W - diag(rowsum W))`, independent of `omega` and of the
# noise level (`vbt.hopf_fc_symmetric`). The simulated FC should approach it as the run gets
# longer (finite-sample error ~ 1/sqrt(samples)), and both should resemble the empirical FC.

# %%
fc_hopf = np.corrcoef(x_hopf, rowvar=False)
fc_emp = np.array(vbt.dk84_empirical_fc())
np.fill_diagonal(fc_emp, 1.0)  # the shipped file stores a zero diagonal
fc_lin = np.asarray(
    vbt.hopf_fc_symmetric(float(hopf.model.a), jnp.asarray(W), float(hopf.coupling.G)),
    dtype=np.float64,
)
r_hopf_emp = edge_r(fc_hopf, fc_emp)
r_hopf_lin = edge_r(fc_hopf, fc_lin)
r_lin_emp = edge_r(fc_lin, fc_emp)
print(f"simulated vs empirical FC:  r = {r_hopf_emp:.3f}")
print(f"simulated vs analytic FC:   r = {r_hopf_lin:.3f}")
print(f"analytic  vs empirical FC:  r = {r_lin_emp:.3f}")

fig, axes = plt.subplots(1, 4, figsize=(18, 4.2), width_ratios=[1, 1, 1, 1.1])
for ax, m, title in (
    (axes[0], fc_emp, "empirical FC"),
    (axes[1], fc_hopf, "simulated FC (Hopf)"),
    (axes[2], fc_lin, "analytic linearised FC"),
):
    m = m.copy()
    np.fill_diagonal(m, np.nan)
    im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(title)
fig.colorbar(im, ax=axes[:3], shrink=0.8, label="Pearson r")
axes[3].scatter(fc_emp[IU], fc_hopf[IU], s=3, alpha=0.4, label=f"simulated (r={r_hopf_emp:.2f})")
axes[3].scatter(fc_emp[IU], fc_lin[IU], s=3, alpha=0.4, label=f"analytic (r={r_lin_emp:.2f})")
axes[3].set_xlabel("empirical FC")
axes[3].set_ylabel("model FC")
axes[3].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. FCD: how FC changes over time
#
# FCD is the matrix of correlations between the FC patterns of sliding windows: here windows of
# 83 samples (60 s at TR 720 ms) shifted by 3 samples, as in `configs/fit_hopf_dk84.toml`. Only
# pairs of windows that do not overlap are kept (overlap correlates them by construction). The
# shipped reference histogram (`vbt.dk84_fcd_reference()`) is a typical empirical FCD
# distribution for this atlas whose windowing was not recorded, so it is a qualitative
# target; the distance is the Kolmogorov-Smirnov statistic between the simulated values and
# the histogram's CDF (the same measure `vbt fit` reports).

# %%
FCD_WINDOW, FCD_STEP = 83, 3


def fcd_values(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FCD matrix of a (T, N) series and its entries for non-overlapping window pairs."""
    m = vbt.features.fcd(jnp.asarray(x), FCD_WINDOW, FCD_STEP)
    sep = -(-FCD_WINDOW // FCD_STEP)  # ceil: windows this far apart share no sample
    return np.asarray(m), np.asarray(vbt.features.fcd_values(m, min_separation=sep))


ref_edges, ref_hist = vbt.dk84_fcd_reference()
fcd_hopf, v_hopf = fcd_values(x_hopf)
ks_hopf = _ks_to_histogram(v_hopf, ref_edges, ref_hist)
print(f"FCD: {fcd_hopf.shape[0]} windows, {v_hopf.size} values, median {np.median(v_hopf):.3f}")
print(f"KS distance to the reference histogram: {ks_hopf:.3f}")

ref_density = ref_hist / np.sum(ref_hist * np.diff(ref_edges))
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
im = axes[0].imshow(fcd_hopf, cmap="viridis", vmin=0, vmax=1)
axes[0].set_xlabel("window")
axes[0].set_ylabel("window")
axes[0].set_title(f"FCD matrix (windows of 60 s, step {FCD_STEP * 0.72:.2f} s)")
fig.colorbar(im, ax=axes[0], shrink=0.85)
axes[1].hist(v_hopf, bins=ref_edges, density=True, alpha=0.6, label="Hopf, simulated")
axes[1].stairs(ref_density, ref_edges, color="k", lw=1.5, label="reference")
axes[1].set_xlabel("FCD entry (r between window FCs)")
axes[1].set_ylabel("density")
axes[1].set_title(f"KS = {ks_hopf:.3f}")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. A neural-mass twin observed through BOLD
#
# The reduced Wong-Wang model (excitatory and inhibitory synaptic gating `S_E`, `S_I`) is a
# mean-field of spiking networks; with feedback inhibition control (`fic = true`) each region's
# inhibitory weight `J_i` is tuned so its excitatory pool fires at 3 Hz at the chosen coupling
# `G = 0.4`. Deterministically the network rests at a fixed point; noise drives the
# fluctuations. The BOLD monitor feeds `S_E` into the Balloon-Windkessel model (integrated in
# seconds) and samples it every TR = 720 ms. Its kinetics (tau_E = 100 ms) allow `dt = 0.5 ms`.
#
# The config's 200 volumes are enough for FC but not for FCD with 60 s windows; the full run
# below is lengthened to 10 min of BOLD, and quick mode only computes FC (from few volumes,
# hence noisy).

# %%
rww_cfg = load_config(CONFIGS / "rww_bold_dk84.toml")
rww_cfg = rww_cfg.with_simulation(duration=60_000.0 if QUICK else 620_000.0)
rww = build_experiment(rww_cfg)
rsim = rww_cfg.simulation
print(f"dt {rsim.dt} ms, duration {rsim.duration / 1000:.0f} s, G = {rww.coupling.G}")
t0 = time.perf_counter()
rsol = vbt.simulate(rww.model, rww.connectome, key=jr.key(rsim.seed), **rww.simulate_kwargs())
tb = np.asarray(rsol.ts["bold"])
bold = np.asarray(rsol["bold"], dtype=np.float64)[tb > rsim.transient]  # (T, N)
ta = np.asarray(rsol.ts["tavg"])
s_e = np.asarray(rsol["tavg"], dtype=np.float64)[ta > rsim.transient, 0, :]
rww_seconds = time.perf_counter() - t0
print(f"simulated in {rww_seconds:.1f} s wall; BOLD {bold.shape}, mean S_E {s_e.mean():.3f}")

# %%
fc_rww = np.corrcoef(bold, rowvar=False)
r_rww_emp = edge_r(fc_rww, fc_emp)
print(f"RWW BOLD FC vs empirical FC: r = {r_rww_emp:.3f} ({bold.shape[0]} volumes)")
ks_rww = float("nan")
sep = -(-FCD_WINDOW // FCD_STEP)
if bold.shape[0] >= FCD_WINDOW + 2 * sep * FCD_STEP:  # enough for some non-overlapping pairs
    _, v_rww = fcd_values(bold)
    ks_rww = _ks_to_histogram(v_rww, ref_edges, ref_hist)
    print(f"RWW FCD: {v_rww.size} values, KS to the reference = {ks_rww:.3f}")
else:
    print("too few volumes for FCD with 60 s windows (quick mode): skipped")

fig, axes = plt.subplots(1, 3, figsize=(17, 3.8), width_ratios=[1.4, 1.4, 1])
ts_a = ta[ta > rsim.transient] / 1000.0
ts_b = tb[tb > rsim.transient] / 1000.0
for i in (0, 20, 42, 70):
    axes[0].plot(ts_a, s_e[:, i], lw=0.6, label=conn.labels[i])
    axes[1].plot(ts_b, bold[:, i], lw=0.9, label=conn.labels[i])
axes[0].set_title("S_E (10 ms averages)")
axes[0].set_ylabel("S_E (gating, 0-1)")
axes[1].set_title("BOLD (TR 720 ms)")
axes[1].set_ylabel("BOLD (fractional signal change)")
for ax in axes[:2]:
    ax.set_xlabel("time (s)")
    ax.set_xlim(ts_a[0], min(ts_a[-1], ts_a[0] + 120))
    ax.legend(fontsize=7)
m = fc_rww.copy()
np.fill_diagonal(m, np.nan)
im = axes[2].imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
axes[2].set_title(f"BOLD FC, r vs empirical = {r_rww_emp:.2f}")
fig.colorbar(im, ax=axes[2], shrink=0.8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# The Hopf twin reproduces the large-scale FC pattern (r ~0.6 with the full 12 min, a bit
# lower in quick mode), and its simulated FC converges to the analytic linearised FC: that
# agreement is what lets `02_fit_twin.py` fit the twin with the analytic FC instead of
# simulations. The last cell records the key numbers; `tests/test_notebooks.py` parses the
# line starting with `RESULTS` and checks them.

# %%
results = {
    "quick": QUICK,
    "hopf_seconds_simulated": sim.duration / 1000.0,
    "hopf_fc_r_empirical": round(r_hopf_emp, 4),
    "hopf_fc_r_analytic": round(r_hopf_lin, 4),
    "analytic_fc_r_empirical": round(r_lin_emp, 4),
    "hopf_fcd_ks": round(ks_hopf, 4),
    "hopf_fcd_median": round(float(np.median(v_hopf)), 4),
    "rww_fc_r_empirical": round(r_rww_emp, 4),
    "rww_fcd_ks": None if np.isnan(ks_rww) else round(ks_rww, 4),
    "rww_mean_S_E": round(float(s_e.mean()), 4),
    "rww_bold_finite": bool(np.isfinite(bold).all()),
}
print("RESULTS " + json.dumps(results))
