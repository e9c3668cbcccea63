"""Figures of a fit: prior vs posterior, traces and ranks, FC/FCD/band-power fits, regional
posteriors, the SVI loss and simulation-based-calibration ranks.

Each function draws one PNG with matplotlib's object-oriented API (``Figure`` +
``FigureCanvasAgg``, from :func:`vbt_jax.jobs.figure`), so no global
backend or pyplot state is touched and it runs headless. The file is written under a temporary
name and moved into place with :func:`os.replace`, so a reader never sees a half-written PNG.
Inputs are NumPy arrays or an ``arviz.InferenceData`` (only its ``posterior``/``prior`` groups
are read, each variable with dims ``(chain, draw, ...)``). The numbers shown in titles and
legends come from :mod:`inference.metrics` (tested there against SciPy).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vbt_jax.jobs import figure, region_ticks

from .metrics import fc_r, ks_to_histogram, pearson, sbc_band, sbc_bins, shrinkage

_DPI = 120
_MAX_ELEMENTS = 4  # a vector variable is drawn element by element up to this length


def _running_median(x: np.ndarray, width: int) -> np.ndarray:
    """Centred running median over ``width`` points (odd), edges padded with the end values."""
    import scipy.ndimage

    return scipy.ndimage.median_filter(np.asarray(x, np.float64), size=width, mode="nearest")


# ----------------------------------------------------------------------------- helpers


def _save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG next to ``path`` under a temporary name, then move it in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=_DPI)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _grid(fig, n: int, ncols: int = 4):
    """``n`` axes in a grid of at most ``ncols`` columns; unused cells switched off."""
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    return axes[:n]


def _fmt(x: float, spec: str = ".3f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _group(idata, name: str):
    return getattr(idata, name, None)


def _panels(idata, var_names: Sequence[str] | None, fn: str):
    """Expand variables into panels ``(label, posterior (chain, draw), prior flat | None)``.

    Scalars give one panel; a vector with at most ``_MAX_ELEMENTS`` entries one per entry
    (labelled by its coordinate); larger variables are skipped and listed in the second return.

    Raises:
        ValueError: if ``idata`` has no posterior or a named variable is not in it.
    """
    post = _group(idata, "posterior")
    if post is None:
        raise ValueError(f"{fn}: idata has no 'posterior' group")
    prior = _group(idata, "prior")
    names = list(post.data_vars) if var_names is None else list(var_names)
    missing = [v for v in names if v not in post.data_vars]
    if missing:
        raise ValueError(
            f"{fn}: var_names {missing} are not in idata.posterior "
            f"(it holds {sorted(post.data_vars)})"
        )
    panels, skipped = [], []
    for v in names:
        da = post[v]
        draws = np.asarray(da.values, dtype=np.float64)
        extra = draws.shape[2:]
        size = int(np.prod(extra)) if extra else 1
        pr = None
        if prior is not None and v in prior.data_vars:
            p = np.asarray(prior[v].values, dtype=np.float64)
            if p.shape[2:] == extra:
                pr = p.reshape(-1, size)
        if size > _MAX_ELEMENTS:
            skipped.append(f"{v} {extra}")
            continue
        flat = draws.reshape(draws.shape[0], draws.shape[1], size)
        if not extra:
            panels.append((v, flat[..., 0], None if pr is None else pr[:, 0]))
            continue
        if len(extra) == 1:
            coord = da.coords[da.dims[-1]].values
            labels = [f"{v}[{c}]" for c in coord]
        else:
            labels = [f"{v}{list(np.unravel_index(k, extra))}" for k in range(size)]
        for k, lab in enumerate(labels):
            panels.append((lab, flat[..., k], None if pr is None else pr[:, k]))
    return panels, skipped


def _skipped_note(skipped: list[str]) -> str:
    if not skipped:
        return ""
    return (
        f"\nnot drawn (more than {_MAX_ELEMENTS} values): "
        + ", ".join(skipped[:6])
        + (" ..." if len(skipped) > 6 else "")
    )


# ----------------------------------------------------------------------------- figures


def plot_prior_posterior(idata, var_names: Sequence[str] | None, path: str | Path) -> Path:
    """Prior and posterior densities of scalar parameters, with the shrinkage of each.

    One panel per scalar variable and per entry of a small vector (at most 4 entries, e.g.
    the map coefficients ``a_beta``): histograms (density) of ``idata.prior[var]`` (grey) and
    ``idata.posterior[var]`` (blue) on shared bins spanning the central 99 % of both, the
    posterior mean, and ``shrinkage = 1 - var_post / var_prior``. A variable missing from the
    prior group is drawn posterior-only (shrinkage "n/a"); larger vectors are skipped and
    listed in the figure title (use :func:`plot_regional` for them).

    Args:
        idata: ``arviz.InferenceData`` with a ``posterior`` (and optionally ``prior``) group;
            variables have dims ``(chain, draw, ...)``.
        var_names: variables to draw (None: every posterior variable small enough).
        path: the PNG to write.

    Returns:
        The path of the PNG.

    Raises:
        ValueError: no posterior group, or a name not in the posterior.
    """
    panels, skipped = _panels(idata, var_names, "plot_prior_posterior")
    n = max(1, len(panels))
    ncols = min(n, 4)
    fig = figure(3.2 * ncols + 0.4, 2.6 * math.ceil(n / ncols) + 0.8)
    axes = _grid(fig, n, ncols)
    for ax, (label, post, prior) in zip(axes, panels):
        post = post.ravel()
        both = post if prior is None else np.concatenate([post, prior])
        both = both[np.isfinite(both)]
        lo, hi = np.quantile(both, [0.005, 0.995]) if both.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 41)
        if prior is not None:
            ax.hist(
                prior,
                bins,
                density=True,
                histtype="stepfilled",
                color="0.6",
                alpha=0.6,
                label="prior",
            )
        ax.hist(
            post,
            bins,
            density=True,
            histtype="stepfilled",
            color="C0",
            alpha=0.6,
            label="posterior",
        )
        mean, sd = float(np.mean(post)), float(np.std(post))
        ax.axvline(mean, color="C3", lw=1.0)
        s = shrinkage(prior, post)
        ax.set_title(label, fontsize=9)
        ax.text(
            0.02,
            0.97,
            f"post {mean:.3g} ± {sd:.2g}\nshrinkage {_fmt(s, '.2f')}",
            transform=ax.transAxes,
            va="top",
            fontsize=7,
        )
        ax.set_xlabel("value (parameter units)", fontsize=8)
        ax.set_ylabel("density (1/unit)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
    if not panels:
        axes[0].set_axis_off()
    fig.suptitle(
        "Prior vs posterior (shrinkage = 1 − var_post / var_prior)" + _skipped_note(skipped),
        fontsize=10,
    )
    return _save(fig, path)


def plot_fc_fit(
    fc_obs: np.ndarray,
    fc_pred: np.ndarray,
    train_edges: np.ndarray | None,
    path: str | Path,
    *,
    title: str = "",
    labels: Sequence[str] | None = None,
) -> Path:
    """Observed and predicted FC side by side, and predicted vs observed upper-triangle edges.

    The two matrices share one colour scale (-1..1 when both lie in it, else symmetric about 0
    over the data range); the diagonal is blanked. The scatter shows training and held-out
    edges in two colours, with each set's size and Pearson r in the legend.

    Args:
        fc_obs: ``(N, N)`` observed FC (Pearson r).
        fc_pred: ``(N, N)`` predicted FC (Pearson r).
        train_edges: boolean mask of length ``N (N - 1) / 2`` over ``np.triu_indices(N, 1)``
            order, True for edges used in the fit; None means all edges are training edges.
        path: the PNG to write.
        title: first line of the figure title.
        labels: the N region names for the matrix axes (indices when ``None``).

    Returns:
        The path of the PNG.

    Raises:
        ValueError: the matrices are not square and equal in shape, the mask has the wrong
            length, or ``labels`` is not N names.
    """
    fc_obs = np.asarray(fc_obs, dtype=np.float64)
    fc_pred = np.asarray(fc_pred, dtype=np.float64)
    if fc_obs.ndim != 2 or fc_obs.shape[0] != fc_obs.shape[1] or fc_pred.shape != fc_obs.shape:
        raise ValueError(
            "plot_fc_fit: fc_obs and fc_pred must be square (N, N) arrays of the same shape, "
            f"got {fc_obs.shape} and {fc_pred.shape}"
        )
    n = fc_obs.shape[0]
    n_edges = n * (n - 1) // 2
    if train_edges is not None:
        train_edges = np.asarray(train_edges)
        if train_edges.shape != (n_edges,):
            raise ValueError(
                f"plot_fc_fit: train_edges must be a boolean mask of shape ({n_edges},) over "
                f"np.triu_indices({n}, 1), got shape {train_edges.shape}"
            )
        train_edges = train_edges.astype(bool)
    if labels is not None and len(labels) != n:
        raise ValueError(f"plot_fc_fit: labels has {len(labels)} names, the FC is {n} x {n}")
    r_train, r_test = fc_r(fc_obs, fc_pred, train_edges)

    off = ~np.eye(n, dtype=bool)
    vals = np.concatenate([fc_obs[off], fc_pred[off]])
    vals = vals[np.isfinite(vals)]
    vmax = 1.0 if vals.size == 0 or np.abs(vals).max() <= 1.0 else float(np.abs(vals).max())

    fig = figure(15.5, 5.2)
    ax_o, ax_p, ax_s = fig.subplots(1, 3, width_ratios=[1, 1, 1.1])
    im = None
    for ax, m, name in ((ax_o, fc_obs, "observed FC"), (ax_p, fc_pred, "predicted FC")):
        m = m.copy()
        np.fill_diagonal(m, np.nan)
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("region")
        ax.set_ylabel("region")
        if labels is not None:
            region_ticks(ax, labels)
    fig.colorbar(im, ax=[ax_o, ax_p], label="Pearson r", shrink=0.85)

    iu = np.triu_indices(n, 1)
    obs, pred = fc_obs[iu], fc_pred[iu]
    train = np.ones(n_edges, bool) if train_edges is None else train_edges
    ax_s.scatter(
        obs[train],
        pred[train],
        s=5,
        alpha=0.5,
        color="C0",
        label=f"training edges (n={int(train.sum())}, r={_fmt(r_train)})",
    )
    if (~train).any():
        ax_s.scatter(
            obs[~train],
            pred[~train],
            s=7,
            alpha=0.7,
            color="C1",
            label=f"held-out edges (n={int((~train).sum())}, r={_fmt(r_test)})",
        )
    finite = np.concatenate([obs, pred])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        a, b = float(finite.min()), float(finite.max())
        ax_s.plot([a, b], [a, b], color="0.3", lw=0.8, ls="--", label="identity")
    ax_s.set_xlabel("observed FC (Pearson r)")
    ax_s.set_ylabel("predicted FC (Pearson r)")
    ax_s.legend(fontsize=8, loc="upper left")
    ax_s.set_title("upper-triangle edges", fontsize=10)
    head = f"{title}\n" if title else ""
    held = f", held-out r = {_fmt(r_test)}" if (~train).any() else ""
    fig.suptitle(f"{head}FC fit, N = {n}: training r = {_fmt(r_train)}{held}", fontsize=11)
    return _save(fig, path)


def plot_band_power_fit(
    obs: np.ndarray,
    pred_mean: np.ndarray,
    pred_lo: np.ndarray,
    pred_hi: np.ndarray,
    band_names: Sequence[str],
    path: str | Path,
) -> Path:
    """Relative band powers: predicted vs observed per band, and the mean spectral profile.

    Per band, one scatter of the predicted mean against the observed value across regions with
    the predictive interval as vertical bars, the identity line, and Pearson r across regions.
    A last panel shows the region-averaged profile over bands (observed vs predicted, with the
    averaged interval; log y). Entries where ``obs`` is NaN (e.g. regions without a
    measurement) are left out of every panel and average.

    Args:
        obs: ``(N, B)`` observed relative band power (fraction of total power).
        pred_mean: ``(N, B)`` predictive mean.
        pred_lo: ``(N, B)`` lower end of the predictive interval (e.g. 5 %).
        pred_hi: ``(N, B)`` upper end of the predictive interval (e.g. 95 %).
        band_names: the B band names (e.g. ``("delta", "theta", "alpha", "beta", "gamma")``).
        path: the PNG to write.

    Returns:
        The path of the PNG.

    Raises:
        ValueError: shapes disagree or ``band_names`` does not have B entries.
    """
    arrs = [np.asarray(a, dtype=np.float64) for a in (obs, pred_mean, pred_lo, pred_hi)]
    obs, mean, lo, hi = arrs
    if obs.ndim != 2 or any(a.shape != obs.shape for a in arrs):
        raise ValueError(
            "plot_band_power_fit: obs, pred_mean, pred_lo and pred_hi must all be (N, B), got "
            + ", ".join(str(a.shape) for a in arrs)
        )
    b = obs.shape[1]
    if len(band_names) != b:
        raise ValueError(
            f"plot_band_power_fit: band_names has {len(band_names)} entries, obs has {b} bands"
        )
    ok = np.isfinite(obs) & np.isfinite(mean)
    n_regions = int(np.any(ok, axis=1).sum())
    ncols = min(b + 1, 4)
    fig = figure(3.3 * ncols + 0.3, 3.0 * math.ceil((b + 1) / ncols) + 0.7)
    axes = _grid(fig, b + 1, ncols)
    rs = []
    for k in range(b):
        ax, m = axes[k], ok[:, k]
        r = pearson(mean[m, k], obs[m, k])
        rs.append(r)
        yerr = np.vstack([mean[m, k] - lo[m, k], hi[m, k] - mean[m, k]]).clip(min=0)
        ax.errorbar(
            obs[m, k],
            mean[m, k],
            yerr=yerr,
            fmt="o",
            ms=3,
            lw=0.6,
            color="C0",
            ecolor="0.6",
            alpha=0.8,
        )
        if m.any():
            pts = np.concatenate([obs[m, k], lo[m, k], hi[m, k]])
            pts = pts[np.isfinite(pts)]
            a, z = float(pts.min()), float(pts.max())
            ax.plot([a, z], [a, z], color="0.3", lw=0.8, ls="--")
        ax.set_title(f"{band_names[k]}: r = {_fmt(r)} ({int(m.sum())} regions)", fontsize=9)
        ax.set_xlabel("observed (fraction of power)", fontsize=8)
        ax.set_ylabel("predicted (fraction of power)", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes[b]
    x = np.arange(b)

    def avg(a):
        return np.array([np.mean(a[ok[:, k], k]) if ok[:, k].any() else np.nan for k in range(b)])

    ax.plot(x, avg(obs), "o-", color="k", label="observed")
    ax.plot(x, avg(mean), "s-", color="C0", label="predicted")
    ax.fill_between(x, avg(lo), avg(hi), color="C0", alpha=0.2, label="predictive interval")
    ax.set_yscale("log")
    ax.set_xticks(x, list(band_names), fontsize=8, rotation=30)
    ax.set_ylabel("mean relative power (fraction)", fontsize=8)
    ax.set_title("regional mean profile", fontsize=9)
    ax.legend(fontsize=7)
    rtxt = ", ".join(f"{nm} {_fmt(r, '.2f')}" for nm, r in zip(band_names, rs))
    fig.suptitle(
        f"Relative band power fit over {n_regions} regions (r across regions: {rtxt})",
        fontsize=10,
    )
    return _save(fig, path)


def plot_trace_rank(idata, var_names: Sequence[str] | None, path: str | Path) -> Path:
    """Trace plots and rank plots, one row per scalar (or small-vector entry).

    Left: the draws of each chain against the draw index. Right: the ranks of all draws
    (pooled over chains) histogrammed per chain, chains stacked vertically with the uniform
    expectation dashed; a well-mixed sampler gives flat histograms. Titles give the
    rank-normalised split R-hat and bulk ESS (``arviz.rhat``/``arviz.ess``; R-hat is "n/a" for
    one chain). Vectors with more than 4 entries are skipped and listed in the title.

    Args:
        idata: ``arviz.InferenceData`` with a ``posterior`` group (dims ``(chain, draw, ...)``).
        var_names: variables to draw (None: every posterior variable small enough).
        path: the PNG to write.

    Returns:
        The path of the PNG.

    Raises:
        ValueError: no posterior group, or a name not in the posterior.
    """
    import warnings

    import arviz as az
    import scipy.stats

    panels, skipped = _panels(idata, var_names, "plot_trace_rank")
    n = max(1, len(panels))
    fig = figure(11.0, 1.9 * n + 0.9)
    axes = fig.subplots(n, 2, squeeze=False, width_ratios=[2.2, 1])
    for (ax_t, ax_r), (label, draws, _) in zip(axes, panels):
        n_chain, n_draw = draws.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rhat = float(az.rhat(draws, method="rank")) if n_chain > 1 else float("nan")
            ess = float(az.ess(draws, method="bulk")) if n_draw >= 4 else float("nan")
        for c in range(n_chain):
            ax_t.plot(np.arange(n_draw), draws[c], lw=0.5, alpha=0.8, label=f"chain {c}")
        ax_t.set_ylabel(f"{label}\n(parameter units)", fontsize=8)
        ax_t.set_title(f"{label}: R-hat {_fmt(rhat)}, bulk ESS {_fmt(ess, '.0f')}", fontsize=9)
        ax_t.tick_params(labelsize=7)
        ax_t.margins(x=0)
        ranks = scipy.stats.rankdata(draws.ravel()).reshape(draws.shape)
        n_bins = int(max(1, min(20, n_draw // 5)))
        edges = np.linspace(0.5, draws.size + 0.5, n_bins + 1)
        expected = n_draw / n_bins
        for c in range(n_chain):
            h, _ = np.histogram(ranks[c], bins=edges)
            base = c * 2.0 * expected
            ax_r.stairs(h + base, edges, baseline=base, fill=True, color=f"C{c % 10}", alpha=0.7)
            ax_r.axhline(base + expected, color="0.2", ls="--", lw=0.7)
        ax_r.set_yticks([c * 2.0 * expected for c in range(n_chain)], range(n_chain))
        ax_r.set_ylabel("chain", fontsize=8)
        ax_r.set_title(f"rank histogram ({n_bins} bins)", fontsize=9)
        ax_r.tick_params(labelsize=7)
    if panels:
        axes[-1, 0].set_xlabel("draw")
        axes[-1, 1].set_xlabel("rank of the draw among all chains")
        if panels[0][1].shape[0] <= 8:
            axes[0, 0].legend(fontsize=7, loc="upper right", ncols=4)
    else:
        axes[0, 0].set_axis_off()
        axes[0, 1].set_axis_off()
    n_chain, n_draw = panels[0][1].shape if panels else (0, 0)
    fig.suptitle(
        f"Traces and rank plots ({n_chain} chains × {n_draw} draws)" + _skipped_note(skipped),
        fontsize=10,
    )
    return _save(fig, path)


def plot_regional(
    idata,
    var: str,
    path: str | Path,
    *,
    labels: Sequence[str] | None = None,
    maps: np.ndarray | None = None,
    map_names: Sequence[str] = (),
) -> Path:
    """Posterior of a regional parameter: mean and 90 % interval per region, sorted by mean,
    and (with maps) the posterior mean against each map with Pearson r.

    The prior's pooled 90 % interval (when ``var`` is in ``idata.prior``) is shaded behind the
    regions for comparison. Region names label the axis when there are at most 40 regions.

    Args:
        idata: ``arviz.InferenceData``; ``idata.posterior[var]`` has dims
            ``(chain, draw, region)``.
        var: the regional variable's name.
        path: the PNG to write.
        labels: the N region names (default: the coordinate of the region dim).
        maps: ``(N, K)`` regional maps (any units), or None.
        map_names: the K map names (default ``map 0``, ``map 1``, ...).

    Returns:
        The path of the PNG.

    Raises:
        ValueError: ``var`` is missing or not ``(chain, draw, region)``; ``labels`` or
            ``maps`` do not have N rows.
    """
    post = _group(idata, "posterior")
    if post is None or var not in post.data_vars:
        have = [] if post is None else sorted(post.data_vars)
        raise ValueError(f"plot_regional: var {var!r} is not in idata.posterior (it holds {have})")
    da = post[var]
    draws = np.asarray(da.values, dtype=np.float64)
    if draws.ndim != 3:
        raise ValueError(
            f"plot_regional: idata.posterior[{var!r}] must have dims (chain, draw, region), "
            f"got dims {da.dims} with shape {draws.shape}"
        )
    n = draws.shape[2]
    flat = draws.reshape(-1, n)
    if labels is None:
        labels = [str(c) for c in da.coords[da.dims[-1]].values]
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"plot_regional: labels has {len(labels)} entries, {var!r} has {n}")
    if maps is not None:
        maps = np.asarray(maps, dtype=np.float64)
        maps = maps[:, None] if maps.ndim == 1 else maps
        if maps.ndim != 2 or maps.shape[0] != n:
            raise ValueError(
                f"plot_regional: maps must be (N, K) with N = {n} regions, got {maps.shape}"
            )
    k_maps = 0 if maps is None else maps.shape[1]
    names = list(map_names) if len(map_names) == k_maps else [f"map {k}" for k in range(k_maps)]

    mean = flat.mean(axis=0)
    lo, hi = np.quantile(flat, [0.05, 0.95], axis=0)
    order = np.argsort(mean)
    ncols = 1 + k_maps
    fig = figure(max(7.0, 0.16 * n + 2.0) + 3.4 * k_maps, 4.6)
    axes = fig.subplots(1, ncols, squeeze=False, width_ratios=[max(2.0, 0.05 * n)] + [1] * k_maps)
    ax = axes[0, 0]
    x = np.arange(n)
    prior = _group(idata, "prior")
    if prior is not None and var in prior.data_vars:
        pr = np.asarray(prior[var].values, dtype=np.float64).ravel()
        plo, phi = np.quantile(pr, [0.05, 0.95])
        ax.axhspan(plo, phi, color="0.85", label="prior 90 % (pooled)")
    ax.vlines(x, lo[order], hi[order], color="C0", lw=1.2, alpha=0.7, label="90 % interval")
    ax.plot(x, mean[order], "o", ms=3, color="C3", label="posterior mean")
    if n <= 40:
        ax.set_xticks(x, [labels[i] for i in order], rotation=90, fontsize=7)
        ax.set_xlabel("region (sorted by posterior mean)")
    else:
        ax.set_xlabel(f"region rank by posterior mean (of {n})")
    ax.set_ylabel(f"{var} (parameter units)")
    width = float(np.mean(hi - lo))
    ax.set_title(
        f"{var}: means {mean.min():.3g} to {mean.max():.3g}, mean 90 % width {width:.3g}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left")
    ax.margins(x=0.01)
    rs = []
    for k in range(k_maps):
        axm = axes[0, 1 + k]
        r = pearson(maps[:, k], mean)
        rs.append(r)
        axm.errorbar(
            maps[:, k],
            mean,
            # a skewed posterior's mean can lie outside its central interval: clip at 0
            yerr=np.clip(np.vstack([mean - lo, hi - mean]), 0.0, None),
            fmt="o",
            ms=3,
            lw=0.5,
            ecolor="0.7",
            color="C0",
        )
        axm.set_xlabel(f"{names[k]} (map units)", fontsize=8)
        axm.set_ylabel(f"posterior mean {var}", fontsize=8)
        axm.set_title(f"vs {names[k]}: r = {_fmt(r)}", fontsize=9)
        axm.tick_params(labelsize=7)
    rtxt = "" if not rs else " | " + ", ".join(f"r({m}) = {_fmt(r)}" for m, r in zip(names, rs))
    fig.suptitle(f"Regional posterior of {var} ({n} regions){rtxt}", fontsize=10)
    return _save(fig, path)


def plot_fcd(
    fcd_values: np.ndarray,
    ref_edges: np.ndarray,
    ref_hist: np.ndarray,
    path: str | Path,
    *,
    ks: float | None = None,
) -> Path:
    """Histogram of simulated FCD values against a reference FCD histogram.

    Args:
        fcd_values: simulated FCD entries (any shape, flattened; non-finite values dropped),
            each a correlation between two windowed FC patterns.
        ref_edges: ``(B + 1,)`` increasing bin edges of the reference histogram.
        ref_hist: ``(B,)`` reference counts or densities (normalised here to unit area).
        path: the PNG to write.
        ks: KS distance to show; None computes it against the histogram's piecewise-linear CDF
            (:func:`_ks_to_histogram`).

    Returns:
        The path of the PNG.

    Raises:
        ValueError: edges/hist shapes disagree, edges not increasing, the reference has no
            mass, or there are no finite FCD values.
    """
    v = np.asarray(fcd_values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    edges = np.asarray(ref_edges, dtype=np.float64)
    hist = np.asarray(ref_hist, dtype=np.float64)
    if edges.ndim != 1 or hist.shape != (edges.size - 1,) or np.any(np.diff(edges) <= 0):
        raise ValueError(
            "plot_fcd: ref_edges must be increasing (B + 1,) and ref_hist (B,), got "
            f"{edges.shape} and {hist.shape}"
        )
    mass = float(np.sum(hist * np.diff(edges)))
    if not mass > 0:
        raise ValueError(f"plot_fcd: ref_hist has no positive mass (sum of hist × width {mass})")
    if v.size == 0:
        raise ValueError("plot_fcd: fcd_values holds no finite value")
    if ks is None:
        ks = ks_to_histogram(v, edges, hist)
    fig = figure(6.4, 4.2)
    ax = fig.subplots()
    lo, hi = min(edges[0], v.min()), max(edges[-1], v.max())
    bins = edges if (v.min() >= edges[0] and v.max() <= edges[-1]) else np.linspace(lo, hi, 41)
    ax.hist(
        v,
        bins,
        density=True,
        histtype="stepfilled",
        color="C0",
        alpha=0.6,
        label=f"simulated (n={v.size})",
    )
    ax.stairs(hist / mass, edges, color="k", lw=1.5, label="reference")
    ax.set_xlabel("FCD entry (Pearson r between windowed FCs)")
    ax.set_ylabel("density (1/r)")
    ax.legend(fontsize=8)
    ax.set_title(
        f"FCD distribution: KS = {_fmt(ks)}; median simulated {np.median(v):.3f}", fontsize=10
    )
    return _save(fig, path)


def plot_svi_loss(loss: np.ndarray, path: str | Path) -> Path:
    """SVI loss (negative ELBO) per step with a centred running median.

    The y axis is logarithmic when every finite loss is positive, else symmetric-log.
    Non-finite steps are left out and counted in the title.

    Args:
        loss: ``(steps,)`` loss per optimisation step (nats).
        path: the PNG to write.

    Returns:
        The path of the PNG.

    Raises:
        ValueError: ``loss`` is not 1-D or has no finite value.
    """
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 1:
        raise ValueError(f"plot_svi_loss: loss must be 1-D (steps,), got shape {loss.shape}")
    ok = np.isfinite(loss)
    if not ok.any():
        raise ValueError(f"plot_svi_loss: loss ({loss.size} steps) has no finite value")
    steps = np.arange(loss.size)[ok]
    y = loss[ok]
    width = max(1, y.size // 50) | 1  # odd, ~2 % of the run
    med = _running_median(y, width)
    tail = y[-max(1, y.size // 10) :]
    fig = figure(7.5, 4.0)
    ax = fig.subplots()
    ax.plot(steps, y, lw=0.5, color="0.6", label="loss")
    ax.plot(steps, med, lw=1.5, color="C0", label=f"running median ({width} steps)")
    if np.all(y > 0):
        ax.set_yscale("log")
    else:
        # linear within one power of ten around 0 (~1 % of the typical size): ticks stay apart
        thresh = 10.0 ** np.floor(np.log10(max(1e-3, 0.01 * float(np.median(np.abs(y))))))
        ax.set_yscale("symlog", linthresh=thresh)
    ax.set_xlabel("step")
    ax.set_ylabel("loss = −ELBO (nats)")
    ax.legend(fontsize=8)
    bad = int((~ok).sum())
    ax.set_title(
        f"SVI loss over {loss.size} steps: final (median of last 10 %) {np.median(tail):.4g}, "
        f"min {y.min():.4g}" + (f", {bad} non-finite steps" if bad else ""),
        fontsize=9,
    )
    return _save(fig, path)


def plot_sbc_ranks(
    ranks: np.ndarray,
    n_draws: int,
    path: str | Path,
    *,
    names: Sequence[str] | None = None,
    n_bins: int | None = None,
) -> Path:
    """Simulation-based-calibration rank histograms with the uniform expectation.

    For each parameter, the histogram of its ranks over datasets, the expected count per bin
    under a calibrated posterior, and the pointwise 99 % band of a Binomial(n_datasets, p_bin)
    count (:func:`_sbc_band`); the title gives the chi-square uniformity p-value.

    Args:
        ranks: ``(n_datasets, n_params)`` integer ranks of the true value among ``n_draws``
            posterior draws, each in ``0..n_draws``.
        n_draws: the number of posterior draws each rank was computed against.
        path: the PNG to write.
        names: the parameter names (default ``param 0``, ...).
        n_bins: number of rank bins (default ``n_datasets // 10`` clipped to 2..20 and to
            ``n_draws + 1``).

    Returns:
        The path of the PNG.

    Raises:
        ValueError: ranks not 2-D integers in ``0..n_draws``, or ``names`` of the wrong length.
    """
    import scipy.stats

    ranks = np.asarray(ranks)
    if ranks.ndim == 1:
        ranks = ranks[:, None]
    if ranks.ndim != 2 or ranks.shape[0] < 1:
        raise ValueError(
            f"plot_sbc_ranks: ranks must be (n_datasets, n_params), got shape {ranks.shape}"
        )
    if not np.all(np.isfinite(ranks)) or np.any(ranks != np.round(ranks)):
        raise ValueError("plot_sbc_ranks: ranks must be integers")
    if ranks.min() < 0 or ranks.max() > n_draws:
        raise ValueError(
            f"plot_sbc_ranks: ranks must lie in 0..n_draws = 0..{n_draws}, "
            f"got {ranks.min()}..{ranks.max()}"
        )
    n_data, n_par = ranks.shape
    names = [f"param {k}" for k in range(n_par)] if names is None else list(names)
    if len(names) != n_par:
        raise ValueError(f"plot_sbc_ranks: names has {len(names)} entries, ranks has {n_par}")
    if n_bins is None:
        n_bins = int(np.clip(n_data // 10, 2, 20))
    n_bins = int(min(n_bins, n_draws + 1))
    counts, p = sbc_bins(ranks, n_draws, n_bins)
    expected, lo, hi = sbc_band(n_data, p, 0.99)
    ncols = min(n_par, 4)
    fig = figure(3.2 * ncols + 0.3, 2.7 * math.ceil(n_par / ncols) + 0.7)
    axes = _grid(fig, n_par, ncols)
    x = np.arange(n_bins)
    for k, ax in enumerate(axes):
        c = counts[:, k]
        pval = float(scipy.stats.chisquare(c, expected).pvalue) if n_bins > 1 else float("nan")
        outside = int(np.sum((c < lo) | (c > hi)))
        ax.fill_between(
            np.append(x, n_bins) - 0.5,
            np.append(lo, lo[-1]),
            np.append(hi, hi[-1]),
            step="post",
            color="0.85",
            label="99 % band",
        )
        ax.bar(x, c, width=0.9, color="C0", alpha=0.8)
        ax.stairs(
            expected,
            np.arange(n_bins + 1) - 0.5,
            color="k",
            ls="--",
            baseline=None,
            label="uniform",
        )
        ax.set_title(f"{names[k]}: χ² p = {_fmt(pval)}, {outside} bins outside", fontsize=9)
        ax.set_xlabel(f"rank bin ({n_bins} bins over 0..{n_draws})", fontsize=8)
        ax.set_ylabel("datasets", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="lower center")
    fig.suptitle(
        f"SBC ranks: {n_data} datasets, {n_draws} posterior draws each "
        "(band: pointwise binomial 99 %)",
        fontsize=10,
    )
    return _save(fig, path)


__all__ = [
    "plot_band_power_fit",
    "plot_fc_fit",
    "plot_fcd",
    "plot_prior_posterior",
    "plot_regional",
    "plot_sbc_ranks",
    "plot_svi_loss",
    "plot_trace_rank",
]
