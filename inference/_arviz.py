"""ArviZ 0.x (``InferenceData``) and 1.x (xarray ``DataTree``) behind one small interface.

Python 3.11 gets arviz 0.2x; Python 3.12+ environments (the GPU machines among them) get
arviz 1.x, where ``from_dict`` takes one dict of groups and per-group attributes, ``summary``
reports equal-tailed intervals unless asked for HDIs, ``psislw`` lives in ``arviz_stats``,
``InferenceData`` is gone and a file reads back as a ``DataTree``. Everything in
``inference/`` that builds or reads ArviZ objects goes through these functions; the objects
themselves are used only through what both kinds share (``obj.posterior[var]``,
``obj.predictions``, ``"a" in obj.posterior``, ``to_netcdf``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def arviz_major() -> int:
    """The installed arviz's major version (0 or 1)."""
    import arviz as az

    return int(az.__version__.split(".")[0])


def from_dict(
    groups: Mapping[str, Mapping[str, Any] | None],
    *,
    coords: Mapping[str, Sequence[Any]] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    attrs: Mapping[str, Any] | None = None,
):
    """An InferenceData (arviz 0.x) or DataTree (1.x) of ``groups`` (``None``/empty left out).

    Args:
        groups: group name (``posterior``, ``sample_stats``, ``prior``, ``observed_data``,
            ...) -> variable name -> array (sampled groups lead with chain, draw).
        coords, dims: as for ``arviz.from_dict``.
        attrs: attributes given to every group.
    """
    import arviz as az

    kept = {g: dict(v) for g, v in groups.items() if v}
    if arviz_major() >= 1:
        obj = az.from_dict(kept, coords=coords, dims=dims)
    else:
        obj = az.from_dict(**kept, coords=coords, dims=dims)
    # set here, not through from_dict's attrs: arviz 0.x puts those on the non-sampled groups
    # only, arviz 1.x wants one dict per group
    for g in kept:
        getattr(obj, g).attrs.update(dict(attrs or {}))
    return obj


def summary(idata, var_names: Sequence[str], hdi_prob: float):
    """``arviz.summary`` with HDIs and no rounding; columns mean, sd, the two HDI bounds (in
    that order, named by the arviz version), then ESS/R-hat/MCSE (``ess_bulk``, ``r_hat``...).

    Unrounded: arviz rounds to 2 decimals by default, which turns G ~ 8e-4 (1/ms) into mean
    0.0, sd 0.0. With one chain (SVI draws) R-hat is NaN and arviz's complaint about it is
    silenced.
    """
    import logging

    import arviz as az

    chains = idata.posterior.sizes.get("chain", 1)
    # arviz 0.x logs through its own Logger object, not one logging.getLogger returns
    log = getattr(az, "_log", None) or logging.getLogger("arviz")
    level = log.level
    if chains < 2:
        log.setLevel(logging.ERROR)
    try:
        return _summary(idata, var_names, hdi_prob)
    finally:
        log.setLevel(level)


def _summary(idata, var_names, hdi_prob):
    import arviz as az

    if arviz_major() >= 1:
        return az.summary(
            idata,
            var_names=list(var_names),
            ci_prob=hdi_prob,
            ci_kind="hdi",
            kind="all",
            round_to="none",
        )
    return az.summary(
        idata, var_names=list(var_names), hdi_prob=hdi_prob, kind="all", round_to="none"
    )


def psislw(log_w: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log importance weights of a 1-D ``log_w`` and the Pareto k."""
    if arviz_major() >= 1:
        from arviz_stats.base import array_stats

        # arviz_stats' psislw takes log-likelihoods (LOO weights are 1/likelihood) and negates
        # them; given -log_w it smooths log_w itself (k agrees with arviz 0.x's to ~0.01)
        smoothed, khat = array_stats.psislw(-np.asarray(log_w))
    else:
        import arviz as az

        smoothed, khat = az.psislw(np.asarray(log_w))
    return np.asarray(smoothed), float(khat)


def predictions_data(ds):
    """An object holding the xarray Dataset ``ds`` as its ``predictions`` group."""
    if arviz_major() >= 1:
        import xarray as xr

        return xr.DataTree.from_dict({"predictions": ds})
    import arviz as az

    return az.InferenceData(predictions=ds)


def group_names(obj) -> list[str]:
    """The group names of an InferenceData or DataTree (``posterior``, ``prior``, ...)."""
    groups = getattr(obj, "groups", None)
    if callable(groups):  # arviz 0.x InferenceData
        return list(groups())
    return list(obj.children)  # DataTree


def from_netcdf(path):
    """Read a file written by ``save_netcdf`` (InferenceData in arviz 0.x, DataTree in 1.x)."""
    import arviz as az

    return az.from_netcdf(str(path))
