"""Numbers that say how well a fit did: sampler convergence, agreement of predicted and observed
FC, shrinkage of the posterior, KS distance of an FCD sample to a reference histogram, and the
binned ranks of simulation-based calibration with their binomial bands. Host-side NumPy (float64).

The Pearson r and the KS distance to a histogram come from :mod:`vbt_jax.features` (one
implementation each), re-exported here.
"""

from __future__ import annotations

import numpy as np

from vbt_jax.features import ks_to_histogram, pearson, upper_r


def convergence(idata, table, loss=None) -> dict:
    """Sampler or optimiser diagnostics of a fit, reported whether or not they are fine.

    Args:
        idata: the fit's ArviZ InferenceData (``sample_stats.diverging`` for NUTS).
        table: the summary table (:func:`inference.summarize`), with an ``r_hat`` column.
        loss: SVI's loss (negative ELBO) per step, or None for a sampler.

    Returns:
        ``divergences`` (count; ``None`` for an engine without them), ``divergence_rate``,
        ``r_hat_max`` and ``r_hat_max_parameter`` (``None`` when R-hat is undefined, e.g. one
        chain or SVI draws), ``ess_bulk_min``; with ``loss`` also ``svi_loss_final`` (mean
        over the last tenth of the steps) and ``svi_loss_drift``: how far that mean lies below
        the mean of the tenth before it, in standard errors of the difference (above about 3:
        the loss was still falling and more steps would help).
    """
    out: dict = {"divergences": None, "divergence_rate": None}
    if loss is not None:
        out |= _loss_plateau(np.asarray(loss, np.float64))
    ss = getattr(idata, "sample_stats", None)
    if ss is not None and "diverging" in ss:
        div = np.asarray(ss["diverging"], bool)
        out["divergences"] = int(div.sum())
        out["divergence_rate"] = float(div.mean())
    out["r_hat_max"] = out["r_hat_max_parameter"] = out["ess_bulk_min"] = None
    if "r_hat" in table and np.isfinite(np.asarray(table["r_hat"], float)).any():
        r = table["r_hat"].astype(float)
        out["r_hat_max"] = float(r.max())
        out["r_hat_max_parameter"] = str(r.idxmax())
    if "ess_bulk" in table and np.isfinite(np.asarray(table["ess_bulk"], float)).any():
        out["ess_bulk_min"] = float(table["ess_bulk"].astype(float).min())
    return out


def _loss_plateau(loss: np.ndarray) -> dict:
    loss = loss[np.isfinite(loss)]
    w = len(loss) // 10
    if w < 2:
        return {"svi_loss_final": float(loss[-1]) if len(loss) else None, "svi_loss_drift": None}
    last, before = loss[-w:], loss[-2 * w : -w]
    se = np.sqrt(last.var(ddof=1) / w + before.var(ddof=1) / w)
    drift = (before.mean() - last.mean()) / se if se > 0 else 0.0
    return {"svi_loss_final": float(last.mean()), "svi_loss_drift": float(drift)}


def shrinkage(prior: np.ndarray | None, posterior: np.ndarray) -> float:
    """``1 - var(posterior) / var(prior)`` over flat draws (NaN without prior draws)."""
    if prior is None:
        return float("nan")
    vp = float(np.var(np.asarray(prior, dtype=np.float64)))
    if not np.isfinite(vp) or vp == 0:
        return float("nan")
    return 1.0 - float(np.var(np.asarray(posterior, dtype=np.float64))) / vp


def fc_r(
    fc_obs: np.ndarray, fc_pred: np.ndarray, train_edges: np.ndarray | None
) -> tuple[float, float]:
    """Pearson r of predicted vs observed upper-triangle FC on training and held-out edges.

    ``train_edges`` is a boolean mask over ``np.triu_indices(N, 1)`` order (None: all edges
    train). A set with fewer than 2 edges gives NaN.
    """
    n = fc_obs.shape[0]
    train = (
        np.ones(n * (n - 1) // 2, bool) if train_edges is None else np.asarray(train_edges, bool)
    )
    return upper_r(fc_pred, fc_obs, train), upper_r(fc_pred, fc_obs, ~train)


def sbc_bins(ranks: np.ndarray, n_draws: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of SBC ranks in ``n_bins`` bins and each bin's probability under uniformity.

    Rank ``r`` in ``0..n_draws`` (``L = n_draws + 1`` values) goes to bin
    ``floor(r * n_bins / L)``; a bin's probability is the share of the ``L`` rank values it
    holds, which is exactly ``1 / n_bins`` when ``n_bins`` divides ``L``.

    Returns:
        ``(counts, p)``: ``counts`` ``(n_bins, n_params)``, ``p`` ``(n_bins,)``.
    """
    n_values = n_draws + 1
    ranks = np.asarray(ranks).reshape(ranks.shape[0], -1)
    which = (ranks.astype(np.int64) * n_bins) // n_values
    counts = np.stack([(which == b).sum(axis=0) for b in range(n_bins)])
    per_bin = np.bincount((np.arange(n_values) * n_bins) // n_values, minlength=n_bins)
    return counts, per_bin / n_values


def sbc_band(n_datasets: int, p: np.ndarray, prob: float = 0.99) -> tuple[np.ndarray, ...]:
    """Pointwise central ``prob`` interval of a Binomial(n_datasets, p) bin count.

    Returns:
        ``(expected, lo, hi)``, each shaped like ``p``: ``n p`` and the
        ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles.
    """
    import scipy.stats

    p = np.asarray(p, dtype=np.float64)
    a = 0.5 * (1.0 - prob)
    lo = scipy.stats.binom.ppf(a, n_datasets, p)
    hi = scipy.stats.binom.ppf(1.0 - a, n_datasets, p)
    return n_datasets * p, lo, hi


__all__ = ["fc_r", "ks_to_histogram", "pearson", "sbc_band", "sbc_bins", "shrinkage", "upper_r"]
