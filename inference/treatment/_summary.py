"""Posterior summaries of predicted intervention effects: means and credible intervals of the
changes, the probability that an intervention moves FC towards the target, the ranking of the
interventions, and the ArviZ export of :class:`~inference.treatment.Predictions`.

Host-side NumPy over the draws of :func:`~inference.treatment.predict_interventions`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from vbt_jax import ArgumentError

from .. import _arviz
from ._effects import Predictions


def _interval(x: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    lo = 0.5 * (1.0 - prob)
    with warnings.catch_warnings():  # an intervention unstable in every draw: all-NaN slices
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(x, lo, axis=0), np.nanquantile(x, 1.0 - lo, axis=0)


def _nanmean(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0)


def change_summary(pred: Predictions, prob: float = 0.9) -> dict[str, np.ndarray]:
    """Posterior means and equal-tailed credible intervals of the predicted changes.

    Draws an intervention makes unstable (NaN) are left out of the means and intervals; their
    share is ``prob_unstable``.

    Args:
        pred: from :func:`predict_interventions`.
        prob: interval mass in (0, 1).

    Returns:
        dict with ``gbc_change_mean``, ``gbc_change_lo``, ``gbc_change_hi`` (I, K, N) and
        ``mean_fc_change_mean``, ``mean_fc_change_lo``, ``mean_fc_change_hi`` (I, K) (the
        dose-response of the mean FC), ``prob_gbc_increase`` (I, K, N): the posterior
        probability that the region's GBC rises, ``prob_unstable`` (I, K), and with band
        powers ``band_power_change_mean``/``_lo``/``_hi`` (I, K, B, N).

    Raises:
        ArgumentError: ``prob`` outside (0, 1).
    """
    if not 0.0 < prob < 1.0:
        raise ArgumentError(f"change_summary: prob must be in (0, 1), got {prob}")
    g, m = pred.gbc_change, pred.mean_fc_change
    glo, ghi = _interval(g, prob)
    mlo, mhi = _interval(m, prob)
    out = {
        "gbc_change_mean": _nanmean(g),
        "gbc_change_lo": glo,
        "gbc_change_hi": ghi,
        "mean_fc_change_mean": _nanmean(m),
        "mean_fc_change_lo": mlo,
        "mean_fc_change_hi": mhi,
        "prob_gbc_increase": (g > 0).mean(0),
        "prob_unstable": pred.prob_unstable,
    }
    bp = pred.band_power_change
    if bp is not None:
        lo, hi = _interval(bp, prob)
        out.update(
            band_power_change_mean=_nanmean(bp), band_power_change_lo=lo, band_power_change_hi=hi
        )
    return out


def _need_distance(pred: Predictions, what: str) -> None:
    if pred.distance is None:
        raise ArgumentError(f"{what}: the predictions have no distances; pass target_fc=")


def prob_improves(pred: Predictions) -> np.ndarray:
    """(I, K) posterior probability that the distance to the target drops below baseline.

    A draw the intervention makes unstable counts as not improved.

    Raises:
        ArgumentError: predictions made without ``target_fc``.
    """
    _need_distance(pred, "prob_improves")
    with np.errstate(invalid="ignore"):
        return (pred.distance < pred.distance_base[:, None, None]).mean(0)


def dose_index(pred: Predictions, dose: float) -> int:
    """Index of ``dose`` among the predicted doses.

    Raises:
        ArgumentError: the dose was not predicted (lists the doses).
    """
    hit = np.flatnonzero(np.isclose(pred.doses, dose, rtol=1e-6, atol=1e-9))
    if hit.size == 0:
        raise ArgumentError(f"dose {dose:g} is not among the predicted doses {pred.doses.tolist()}")
    return int(hit[0])


def ranking(pred: Predictions, dose_index: int) -> np.ndarray:
    """(I,) probability of each intervention being the best (smallest distance) at one dose.

    Ties within a draw go to the first intervention (``argmin``); an unstable intervention
    (NaN distance) is never the best.

    Raises:
        ArgumentError: no distances, or ``dose_index`` outside ``[0, K)``.
    """
    _need_distance(pred, "ranking")
    k = len(pred.doses)
    if not -k <= dose_index < k:
        raise ArgumentError(f"ranking: dose_index {dose_index} outside [0, {k})")
    d = np.nan_to_num(pred.distance[:, :, dose_index], nan=np.inf)
    best = np.argmin(d, axis=1)
    return np.bincount(best, minlength=len(pred.names)) / best.size


def to_inference_data(pred: Predictions, attrs: Mapping[str, Any] | None = None):
    """ArviZ InferenceData with a ``predictions`` group (save with ``save_netcdf``).

    Variables: ``gbc``, ``gbc_change`` (draw, intervention, dose, region), ``mean_fc``,
    ``mean_fc_change``, ``unstable`` (draw, intervention, dose), ``gbc_base`` (draw, region),
    ``mean_fc_base`` (draw), ``fc_change_mean`` (intervention, dose, region, region_to), with
    a target ``distance`` (draw, intervention, dose) and ``distance_base`` (draw), with bands
    ``band_power``/``band_power_change`` (draw, intervention, dose, band, region) and
    ``band_power_base`` (draw, band, region). Coordinates: intervention names (and their
    ``kind``), doses, region labels, band names.
    """
    import xarray as xr

    d4 = ("draw", "intervention", "dose", "region")
    data = {
        "gbc": (d4, pred.gbc),
        "gbc_change": (d4, pred.gbc_change),
        "mean_fc": (d4[:3], pred.mean_fc),
        "mean_fc_change": (d4[:3], pred.mean_fc_change),
        "gbc_base": (("draw", "region"), pred.gbc_base),
        "mean_fc_base": (("draw",), pred.mean_fc_base),
    }
    if pred.unstable is not None:
        data["unstable"] = (d4[:3], pred.unstable.astype(np.int8))
    if pred.fc_change_mean is not None:
        data["fc_change_mean"] = (
            ("intervention", "dose", "region", "region_to"),
            pred.fc_change_mean,
        )
    if pred.distance is not None:
        data["distance"] = (d4[:3], pred.distance)
        data["distance_base"] = (("draw",), pred.distance_base)
    if pred.band_power is not None:
        d5 = ("draw", "intervention", "dose", "band", "region")
        data["band_power"] = (d5, pred.band_power)
        data["band_power_change"] = (d5, pred.band_power_change)
        data["band_power_base"] = (("draw", "band", "region"), pred.band_power_base)
    coords = {
        "draw": np.arange(pred.gbc.shape[0]),
        "intervention": list(pred.names),
        "dose": np.asarray(pred.doses),
        "region": list(pred.labels),
    }
    if pred.fc_change_mean is not None:
        coords["region_to"] = list(pred.labels)
    if pred.kinds:
        coords["kind"] = ("intervention", list(pred.kinds))
    if pred.band_names:
        coords["band"] = list(pred.band_names)
    at = {"distance_kind": pred.distance_kind, **dict(attrs or {})}
    ds = xr.Dataset(data, coords=coords, attrs=at)
    return _arviz.predictions_data(ds)


predictions_to_inference_data = to_inference_data
