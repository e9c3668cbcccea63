"""Figures for run folders: PNG files drawn with matplotlib's Agg canvas.

matplotlib is imported inside the functions only, and through its object-oriented API
(``Figure`` + ``FigureCanvasAgg``), so no global backend or pyplot state is touched.
All inputs are NumPy arrays; times are in ms (axes switch to seconds for long records).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .jobs import figure, region_ticks


def _time_axis(times_ms: np.ndarray) -> tuple[np.ndarray, str]:
    if times_ms.size and times_ms[-1] > 5000.0:
        return times_ms / 1000.0, "time (s)"
    return times_ms, "time (ms)"


def _mark_transient(axes, transient_ms: float, times_ms: np.ndarray) -> None:
    """A dashed line at the end of the transient (in the axes' time unit)."""
    if transient_ms <= 0 or not times_ms.size or transient_ms >= times_ms[-1]:
        return
    x = transient_ms / 1000.0 if times_ms[-1] > 5000.0 else transient_ms
    for ax in axes:
        ax.axvline(x, color="0.3", ls="--", lw=0.8)
    axes[-1].annotate(
        "end of transient",
        (x, 0.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, 3),
        textcoords="offset points",
        fontsize=7,
        color="0.3",
    )


def _pick(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)``."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int))


def plot_timeseries(
    path: str | Path,
    times_ms: np.ndarray,
    data: np.ndarray,
    region_labels: Sequence[str],
    *,
    variable: str,
    title: str,
    n_regions: int = 6,
) -> None:
    """A few regions' traces of one state variable, one row each, sharing the time axis.

    Args:
        path: the PNG to write.
        times_ms: ``(T,)`` sample times [ms].
        data: ``(T, N)`` values of ``variable``.
        region_labels: the N region names.
        variable: the state variable's name (shown in the title; rows are labelled by region).
        title: figure title.
        n_regions: how many regions to show (spread over the index range).
    """
    t, xlabel = _time_axis(np.asarray(times_ms))
    idx = _pick(data.shape[1], n_regions)
    fig = figure(9.0, 1.2 + 1.0 * len(idx))
    axes = fig.subplots(len(idx), 1, sharex=True, squeeze=False)[:, 0]
    for ax, i in zip(axes, idx):
        ax.plot(t, data[:, i], lw=0.8, color="C0")
        ax.set_ylabel(region_labels[i], fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
        ax.margins(x=0)
    axes[-1].set_xlabel(xlabel)
    fig.suptitle(f"{title}\n{variable} in {len(idx)} of {data.shape[1]} regions", fontsize=11)
    fig.savefig(path)


def plot_bold(
    path: str | Path,
    times_ms: np.ndarray,
    bold: np.ndarray,
    region_labels: Sequence[str],
    *,
    title: str = "Simulated BOLD",
    transient_ms: float = 0.0,
) -> None:
    """Carpet plot of BOLD (each region z-scored over time) above its regional mean trace.

    Args:
        path: the PNG to write.
        times_ms: ``(T,)`` sample times [ms] (one per TR).
        bold: ``(T, N)`` BOLD signal (fractional change).
        region_labels: the N region names (only their count is shown).
        title: figure title.
        transient_ms: initial time [ms] left out of the z-scoring and marked with a line.
    """
    times_ms = np.asarray(times_ms)
    t, xlabel = _time_axis(times_ms)
    x = np.asarray(bold, dtype=np.float64)
    keep = times_ms > transient_ms
    ref = x[keep] if keep.sum() >= 2 else x
    sd = ref.std(axis=0)
    z = (x - ref.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    fig = figure(9.0, 5.5)
    ax_c, ax_m = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    half = 0.5 * (t[1] - t[0]) if t.size > 1 else 0.5
    im = ax_c.imshow(
        z.T,
        aspect="auto",
        origin="lower",
        cmap="RdBu_r",
        vmin=-3,
        vmax=3,
        extent=(t[0] - half, t[-1] + half, -0.5, x.shape[1] - 0.5),
        interpolation="nearest",
    )
    ax_c.set_ylabel(f"region (of {len(region_labels)})")
    fig.colorbar(im, ax=ax_c, label="z-score", shrink=0.9)
    ax_m.plot(t, 100.0 * x.mean(axis=1), color="k", lw=1.0)
    ax_m.set_ylabel("mean BOLD (%)")
    ax_m.set_xlabel(xlabel)
    _mark_transient((ax_c, ax_m), transient_ms, times_ms)
    fig.suptitle(title)
    fig.savefig(path)


def plot_eeg(
    path: str | Path,
    times_ms: np.ndarray,
    eeg: np.ndarray,
    channels: Sequence[str],
    *,
    title: str = "Simulated EEG",
    n_channels: int = 5,
    transient_ms: float = 0.0,
) -> None:
    """A few EEG channels (offset traces) beside the Welch power spectrum of every channel.

    Args:
        path: the PNG to write.
        times_ms: ``(T,)`` sample times [ms], evenly spaced.
        eeg: ``(T, M)`` sensor signals (units of the gain times the model's EEG variable).
        channels: the M sensor names.
        title: figure title.
        n_channels: how many channels to draw in the time panel.
        transient_ms: initial time [ms] left out of the spectrum and marked with a line.
    """
    import scipy.signal

    times_ms = np.asarray(times_ms)
    t, xlabel = _time_axis(times_ms)
    x = np.asarray(eeg, dtype=np.float64)
    keep = times_ms > transient_ms
    if keep.sum() < 8:
        keep = np.ones_like(keep)
    fig = figure(11.0, 4.5)
    ax_t, ax_f = fig.subplots(1, 2, width_ratios=[3, 2])
    idx = _pick(x.shape[1], n_channels)
    steady = x[keep][:, idx]
    spread = np.nanmax(steady.std(axis=0)) if steady.shape[0] > 1 else 1.0
    step = 4.0 * spread if spread > 0 else 1.0
    for k, i in enumerate(idx):
        ax_t.plot(t, x[:, i] - steady[:, k].mean() - k * step, lw=0.7)
    ax_t.set_ylim(-(len(idx) - 0.5) * step, 0.5 * step)
    _mark_transient((ax_t,), transient_ms, times_ms)
    ax_t.set_yticks([-k * step for k in range(len(idx))], [channels[i] for i in idx])
    ax_t.set_xlabel(xlabel)
    ax_t.set_title(f"{len(idx)} of {x.shape[1]} channels (mean removed, offset)", fontsize=9)

    fs = 1000.0 / (times_ms[1] - times_ms[0]) if times_ms.size > 1 else 1.0
    xs = x[keep]
    nperseg = int(min(xs.shape[0], max(8, round(2.0 * fs))))  # ~2 s windows: 0.5 Hz resolution
    if xs.shape[0] >= 8:
        f, p = scipy.signal.welch(xs, fs=fs, nperseg=nperseg, axis=0)
        keep = (f > 0) & (f <= min(80.0, fs / 2))
        for i in range(x.shape[1]):
            ax_f.semilogy(f[keep], p[keep, i], color="0.75", lw=0.5)
        ax_f.semilogy(f[keep], p[keep].mean(axis=1), color="k", lw=1.5, label="channel mean")
        ax_f.legend(fontsize=8)
    ax_f.set_xlabel("frequency (Hz)")
    ax_f.set_ylabel("PSD (unit² / Hz)")
    ax_f.set_title("Welch power spectrum", fontsize=9)
    fig.suptitle(title)
    fig.savefig(path)


def plot_fc(
    path: str | Path,
    fc_sim: np.ndarray,
    fc_emp: np.ndarray | None = None,
    *,
    source: str,
    r: float | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """Simulated FC matrix, and beside it the empirical one when given.

    Args:
        path: the PNG to write.
        fc_sim: ``(N, N)`` simulated correlation matrix.
        fc_emp: ``(N, N)`` empirical correlation matrix, or None.
        source: what the simulated FC was computed from (e.g. ``"BOLD"``), for the title.
        r: correlation between the two matrices' upper triangles, shown in the title.
        labels: the N region names for the axes (indices when ``None``).
    """
    mats = [(np.asarray(fc_sim, dtype=np.float64), f"simulated FC ({source})")]
    if fc_emp is not None:
        mats.append((np.asarray(fc_emp, dtype=np.float64), "empirical FC"))
    fig = figure(5.2 * len(mats) + 0.8, 5.0)
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    im = None
    for ax, (m, name) in zip(axes, mats):
        m = m.copy()
        np.fill_diagonal(m, np.nan)  # the diagonal (1 or 0 by convention) carries no information
        im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("region")
        ax.set_ylabel("region")
        if labels is not None:
            region_ticks(ax, labels)
    fig.colorbar(im, ax=list(axes), label="Pearson r", shrink=0.85)
    if r is not None:
        fig.suptitle(f"FC agreement: r = {r:.3f} (upper triangles)")
    fig.savefig(path)


__all__ = ["plot_bold", "plot_eeg", "plot_fc", "plot_timeseries"]
