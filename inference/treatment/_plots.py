"""Figures of treatment predictions: dose-response with bands, ranking, FC-change maps, the
simulated FCD and the checks against observed on-drug sessions.

Same conventions as :mod:`inference._plots`: matplotlib's object-oriented API (no pyplot
state), each PNG written under a temporary name and moved into place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vbt_jax.jobs import figure, region_ticks

from ..plots import _save
from ._observed import ObservedCheck
from ._simulated import SimulatedPredictions


def _colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_dose_response(pred, summ, p_imp, path: str | Path) -> Path:
    """Mean FC change against dose (posterior mean, interval band), and P(improves)."""
    doses = np.asarray(pred.doses, float)
    ncol = 2 if p_imp is not None else 1
    fig = figure(5.0 * ncol, 3.8)
    axes = fig.subplots(1, ncol, squeeze=False)[0]
    x = np.where(doses > 0, doses, np.nan)
    log = doses.size > 2 and np.nanmin(x) > 0 and np.nanmax(x) / np.nanmin(x) >= 8
    xs = doses.copy()
    if log and doses[0] == 0:
        xs[0] = doses[doses > 0].min() / 2.0  # show dose 0 at half the lowest dose
    for i, (name, c) in enumerate(zip(pred.names, _colours(len(pred.names)), strict=True)):
        style = "-" if pred.kinds[i] == "drug" else "--"
        m = summ["mean_fc_change_mean"][i]
        axes[0].plot(xs, m, style, color=c, marker="o", ms=3, label=f"{name} ({pred.kinds[i]})")
        axes[0].fill_between(
            xs, summ["mean_fc_change_lo"][i], summ["mean_fc_change_hi"][i], color=c, alpha=0.2
        )
        if p_imp is not None:
            axes[1].plot(xs, p_imp[i], style, color=c, marker="o", ms=3)
    axes[0].axhline(0.0, color="0.5", lw=0.8)
    axes[0].set_ylabel("change of mean FC")
    axes[0].set_title("dose-response (band: credible interval)", fontsize=9)
    axes[0].legend(fontsize=7, loc="best")
    if p_imp is not None:
        axes[1].set_ylim(-0.02, 1.02)
        axes[1].axhline(0.5, color="0.5", lw=0.8, ls=":")
        axes[1].set_ylabel("P(closer to the target FC)")
        axes[1].set_title("probability of improving", fontsize=9)
    for ax in axes:
        ax.set_xlabel("dose (EC50 units)")
        if log:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{d:g}" for d in doses], fontsize=7)
    return _save(fig, path)


def plot_ranking(pred, rank, k: int, path: str | Path) -> Path:
    """P(best) of each intervention at one dose, as a horizontal bar chart."""
    order = np.argsort(rank)
    fig = figure(5.5, 0.5 + 0.45 * len(pred.names))
    ax = fig.add_subplot()
    cols = _colours(len(pred.names))
    ax.barh([pred.names[i] for i in order], rank[order], color=[cols[i] for i in order], alpha=0.85)
    for y, i in enumerate(order):
        ax.text(min(rank[i] + 0.01, 0.9), y, f"{rank[i]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("posterior probability of being closest to the target FC")
    ax.set_title(f"ranking at dose {pred.doses[k]:g}", fontsize=9)
    return _save(fig, path)


def plot_fc_change(pred, k: int, path: str | Path) -> Path:
    """Posterior-mean FC change matrix of every intervention at one dose (own scale each)."""
    mats = pred.fc_change_mean[:, k]
    n_i = len(pred.names)
    ncol = min(n_i, 3)
    nrow = -(-n_i // ncol)
    fig = figure(4.4 * ncol + 0.8, 4.4 * nrow)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= n_i:
            ax.axis("off")
            continue
        m = mats[i]
        vmax = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 0.0
        vmax = vmax if vmax > 0 else 1.0
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(pred.names[i], fontsize=8)
        region_ticks(ax, pred.labels, axes="xy" if i % ncol == 0 else "x", hemispheres="xy")
        if i % ncol:
            ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(
        f"predicted FC change at dose {pred.doses[k]:g} (posterior mean; own colour scale "
        "per panel)",
        fontsize=9,
    )
    return _save(fig, path)


def plot_gbc_change(pred, summ, k: int, path: str | Path) -> Path:
    """Regional GBC change (posterior mean and interval) of every intervention at one dose."""
    n_i, n = len(pred.names), len(pred.labels)
    fig = figure(max(8.0, 0.11 * n), 1.0 + 1.6 * n_i)
    axes = np.atleast_1d(fig.subplots(n_i, 1, sharex=True, squeeze=False)).ravel()
    x = np.arange(n)
    for i, (ax, c) in enumerate(zip(axes, _colours(n_i), strict=True)):
        m = summ["gbc_change_mean"][i, k]
        lo, hi = summ["gbc_change_lo"][i, k], summ["gbc_change_hi"][i, k]
        ax.bar(x, m, color=c, alpha=0.8, width=0.8)
        ax.vlines(x, lo, hi, color="k", lw=0.6)
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_ylabel("GBC change", fontsize=7)
        ax.set_title(pred.names[i], fontsize=8, loc="left")
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels(pred.labels, rotation=90, fontsize=5)
    fig.suptitle(f"regional GBC change at dose {pred.doses[k]:g} (bars: interval)", fontsize=9)
    return _save(fig, path)


def plot_band_power_change(pred, summ, k: int, path: str | Path) -> Path:
    """Posterior-mean change of each region's relative band power, per intervention and band."""
    bp = summ["band_power_change_mean"][:, k]  # (I, B, N)
    n_i, n_b, n = bp.shape
    rows = bp.reshape(n_i * n_b, n)
    fig = figure(max(8.0, 0.11 * n), 1.2 + 0.3 * n_i * n_b)
    ax = fig.add_subplot()
    vmax = float(np.nanmax(np.abs(rows))) if np.isfinite(rows).any() else 1.0
    im = ax.imshow(rows, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_yticks(np.arange(n_i * n_b))
    ax.set_yticklabels([f"{p} | {b}" for p in pred.names for b in pred.band_names], fontsize=6)
    region_ticks(ax, pred.labels, axes="x")
    fig.colorbar(im, ax=ax, label="relative band power change")
    ax.set_title(f"band power change at dose {pred.doses[k]:g}", fontsize=9)
    return _save(fig, path)


def prediction_figures(folder: Path, pred, summ, p_imp, rank, k: int) -> list[Path]:
    """Every figure of a ``vbt predict`` run folder; returns their paths."""
    folder = Path(folder)
    out = [
        plot_dose_response(pred, summ, p_imp, folder / "dose_response.png"),
        plot_fc_change(pred, k, folder / "fc_change.png"),
        plot_gbc_change(pred, summ, k, folder / "gbc_change.png"),
    ]
    if rank is not None:
        out.insert(1, plot_ranking(pred, rank, k, folder / "ranking.png"))
    if pred.band_power is not None:
        out.append(plot_band_power_change(pred, summ, k, folder / "band_power_change.png"))
    return out


def plot_observed_check(chk: ObservedCheck, name: str, path) -> Any:
    """Two panels: the replicated mean FC change with the observed one, and the efficacy's
    posterior against its prior."""

    fig = figure(9.0, 3.4)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(chk.predicted_mean_fc_change, bins=40, density=True, color="0.6", label="predicted")
    ax1.axvline(chk.observed_mean_fc_change, color="C3", lw=2, label="observed")
    ax1.set_xlabel("change of mean FC")
    ax1.set_title(f"{name}: posterior predictive p = {chk.p_mean_fc:.2f}", fontsize=9)
    ax1.legend(fontsize=7)
    loc, sd = chk.efficacy_prior
    ef = chk.efficacy_grid
    prior = np.exp(-0.5 * ((ef - loc) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    ax2.plot(ef, prior, color="0.5", ls="--", label="prior")
    ax2.plot(ef, chk.efficacy_posterior, color="C0", label="posterior")
    lo, hi = chk.efficacy_interval
    ax2.axvspan(lo, hi, color="C0", alpha=0.15, label=f"{round(100 * chk.prob)}% interval")
    ax2.set_xlabel("drug efficacy e (relative change of a at full occupancy)")
    ax2.set_title(f"efficacy {chk.efficacy_mean:+.3f} +/- {chk.efficacy_sd:.3f}", fontsize=9)
    ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_fcd_predictions(sp: SimulatedPredictions, path) -> Any:
    """FCD histograms (pooled over the simulated draws) of the baseline and each intervention."""

    n_v = len(sp.names)
    fig = figure(4.6, 3.6)
    ax = fig.add_subplot()
    bins = np.linspace(-0.2, 1.0, 49)
    cols = ["k", *_colours(n_v - 1)]
    for v, (name, c) in enumerate(zip(sp.names, cols, strict=True)):
        vals = sp.fcd[:, v].ravel()
        lbl = name if v == 0 else f"{name} (KS {sp.fcd_ks[:, v].mean():.2f})"
        ax.hist(
            vals,
            bins=bins,
            density=True,
            histtype="step",
            color=c,
            lw=1.6 if v == 0 else 1,
            label=lbl,
        )
    ax.set_xlabel("FCD value (r between window FCs)")
    ax.set_ylabel("density")
    ax.set_title(
        f"simulated FCD at dose {sp.dose:g}, {sp.draws.size} draw(s) x {sp.duration_s:.0f} s",
        fontsize=9,
    )
    ax.legend(fontsize=6)
    return _save(fig, path)
