"""ArviZ output: InferenceData with named dims, NetCDF files, the summary table.

The NetCDF file holds one HDF5 group per InferenceData group (``posterior``, ``prior``,
``sample_stats``, ``observed_data``, ``posterior_predictive``, ``prior_predictive``,
``constant_data``), written through xarray with the h5netcdf engine: arviz 0.x reads it with
``arviz.from_netcdf`` and arviz 1.x / xarray read it as a DataTree (``xarray.open_datatree``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpyro.infer import Predictive

from . import _arviz
from ._keys import as_key
from ._priors import Regional
from .engines import FitResult, model_sites


def _dims_for(twin, name: str, shape: tuple[int, ...]) -> list[str] | None:
    n = len(twin.labels) if twin.labels is not None else None
    for p in twin.priors:
        if isinstance(p, Regional):
            sites = (p.name, f"{p.name}_z", f"{p.name}_eta", f"{p.name}_eta_decentered")
            if name in sites and shape == (p.n_regions,):
                return ["region"]
            if name == f"{p.name}_beta":
                return [f"{p.name}_map"]
    if name in ("fc",) and len(shape) == 1:
        return ["edge"]
    if name == "pred_fc" and n and shape == (n, n):
        return ["region", "region_to"]
    if name in ("amplitude", "pred_amplitude") and shape == (n,):
        return ["region"]
    if name in ("band_power", "pred_band_power") and len(shape) == 2:
        return ["bp_region", "band"]
    if name in ("fcd", "pred_fcd_quantiles") and len(shape) == 1:
        return ["fcd_quantile"]
    return None


def _coords(twin, extra: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    if twin.labels is not None:
        coords["region"] = list(twin.labels)
        coords["region_to"] = list(twin.labels)
    for p in twin.priors:
        if isinstance(p, Regional) and p.n_maps:
            coords[f"{p.name}_map"] = list(p.map_names)
    for lk in twin.likelihoods:
        if lk.site == "fc" and hasattr(lk, "index"):
            i, j = lk.index
            labels = twin.labels or tuple(str(k) for k in range(lk.n_regions))
            coords["edge"] = [f"{labels[a]}~{labels[b]}" for a, b in zip(i, j, strict=True)]
    coords.update(extra or {})
    return coords


def _dims(twin, groups: Sequence[Mapping[str, np.ndarray]], lead: int) -> dict[str, list[str]]:
    dims = {}
    for g in groups:
        for k, v in g.items():
            d = _dims_for(twin, k, tuple(np.shape(v)[lead:]))
            if d is not None:
                dims[k] = d
    return dims


def predictive_draws(
    twin,
    samples: Mapping[str, np.ndarray],
    *,
    key: Any,
    num: int | None = None,
    record: Sequence[str] = ("fc",),
) -> dict[str, np.ndarray]:
    """Posterior (or prior) predictive draws: the observation sites re-sampled and the
    predicted features ``pred_<feature>`` for each draw in ``samples`` (flat, draw-first).

    Args:
        twin: the :class:`~inference.Twin`.
        samples: flat draws of the latent sites (e.g. ``FitResult.flat()``).
        key: PRNG key of the predictive noise (``jax.random.key(seed)``).
        num: use only the first ``num`` draws (None: all).
        record: features to record as ``pred_<feature>``.
    """
    import dataclasses

    tw = dataclasses.replace(twin, record=tuple(record))
    sites = model_sites(tw, None)
    names = list(tw.sites) + [f"pred_{r}" for r in record]
    # without data the observation sites are latent in the trace: resample them
    names = [n for n in names if n in sites["latent"] + sites["deterministic"]]
    latent = {k: v for k, v in samples.items() if k in sites["latent"] and k not in names}
    if num is not None:
        latent = {k: v[:num] for k, v in latent.items()}
    pred = Predictive(tw, posterior_samples=latent, return_sites=names, batch_ndims=1)
    out = pred(as_key(key, "predictive_draws"), None)
    return {k: np.asarray(v) for k, v in out.items()}


def prior_draws(twin, *, key: Any, num: int = 500) -> dict[str, np.ndarray]:
    """Prior and prior-predictive draws (flat), from PRNG key ``key``."""
    pred = Predictive(twin, num_samples=num)
    return {k: np.asarray(v) for k, v in pred(as_key(key, "prior_draws"), None).items()}


def to_inference_data(
    twin,
    result: FitResult,
    data: Mapping[str, np.ndarray],
    *,
    prior: Mapping[str, np.ndarray] | None = None,
    posterior_predictive: Mapping[str, np.ndarray] | None = None,
    constant_data: Mapping[str, np.ndarray] | None = None,
    coords: Mapping[str, Sequence[Any]] | None = None,
    attrs: Mapping[str, Any] | None = None,
):
    """Assemble an ``arviz.InferenceData`` (arviz 0.x) or DataTree (arviz 1.x).

    Args:
        twin: the fitted twin (names dims and coordinates).
        result: the engine's draws (posterior, sample_stats).
        data: the observed data dict (``Twin.observe``), stored as ``observed_data``.
        prior: flat prior + prior-predictive draws (:func:`prior_draws`); latent sites go to
            ``prior``, observation sites to ``prior_predictive``.
        posterior_predictive: flat posterior-predictive draws (:func:`predictive_draws`);
            reshaped to (chain, draw) when their number equals the posterior's.
        constant_data: e.g. the training edge mask and the brain maps.
        coords: extra coordinates.
        attrs: attributes stored on every group (engine, settings, versions).
    """
    chains, draws = result.num_chains, result.num_draws
    obs_sites = set(twin.sites)

    def shaped(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for k, v in d.items():
            v = np.asarray(v)
            if v.shape[0] == chains * draws:
                out[k] = v.reshape((chains, draws) + v.shape[1:])
            else:
                out[k] = v[None]
        return out

    prior_g = prior_pred = None
    if prior is not None:
        prior_g = {k: np.asarray(v)[None] for k, v in prior.items() if k not in obs_sites}
        prior_pred = {k: np.asarray(v)[None] for k, v in prior.items() if k in obs_sites}
    pp = shaped(posterior_predictive) if posterior_predictive is not None else None
    groups = [result.posterior, prior_g or {}, pp or {}, prior_pred or {}]
    dims = _dims(twin, groups, 2)
    dims.update(_dims(twin, [dict(data)], 0))
    if constant_data:
        dims.update(_dims(twin, [dict(constant_data)], 0))
    all_coords = _coords(twin, coords)
    groups = {
        "posterior": result.posterior,
        "sample_stats": result.sample_stats or None,
        "prior": prior_g,
        "prior_predictive": prior_pred,
        "posterior_predictive": pp,
        "observed_data": dict(data),
        "constant_data": dict(constant_data) if constant_data else None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        idata = _arviz.from_dict(groups, coords=all_coords, dims=dims, attrs=attrs)
    return idata


def save_netcdf(idata, path: str | Path) -> Path:
    """Write InferenceData to NetCDF atomically (a temporary file renamed on success), so an
    interrupted write never leaves a half-written ``posterior.nc``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    idata.to_netcdf(str(tmp), engine="h5netcdf")
    os.replace(tmp, path)
    return path


def load_netcdf(path: str | Path):
    """Read a posterior file written by :func:`save_netcdf` (arviz 0.x InferenceData, or the
    DataTree that arviz 1.x returns)."""
    return _arviz.from_netcdf(path)


def _flat(ds, name: str) -> np.ndarray:
    v = np.asarray(ds[name].values)
    return v.reshape((-1,) + v.shape[2:])


def _kurtosis(x) -> float:
    """Pearson kurtosis E[(x - m)^4] / var^2 of the draws (3 for a normal)."""
    x = np.asarray(x, dtype=float).ravel()
    d = x - x.mean()
    v = np.mean(d**2)
    return float(np.mean(d**4) / v**2) if v > 0 else np.nan


def summarize(
    idata,
    twin,
    *,
    hdi_prob: float = 0.9,
    truth: Mapping[str, Any] | None = None,
    identified_below: float = 0.1,
):
    """Summary table of the global and hyper parameters (and regional ones, one row each).

    Columns: mean, sd, HDI bounds, R-hat, bulk/tail ESS (from ``arviz.summary``; R-hat/ESS
    are NaN for a single chain), ``prior_sd``, ``shrinkage = 1 - posterior var / prior var``,
    its Monte Carlo standard error ``shrinkage_se``, ``identified`` (shrinkage more than two
    standard errors above ``identified_below``), and with ``truth`` the posterior
    z-score ``(mean - truth) / sd`` and whether the truth lies in the HDI.

    Returns:
        ``(table, warnings)``: a pandas DataFrame indexed by parameter (``a[L.BSTS]`` for
        regional entries) and a list of messages about weakly identified parameters and
        divergences.
    """
    import pandas as pd

    post = idata.posterior
    names = [n for n in post.data_vars if not n.startswith("pred_")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # unrounded: arviz rounds to 2 decimals by default, which turns G ~ 8e-4 (1/ms)
        # into mean 0.0, sd 0.0 and a spurious shrinkage of 1
        table = _arviz.summary(idata, names, hdi_prob)
    lo_col, hi_col = table.columns[2], table.columns[3]
    prior_sd, post_sd, kurt_post, kurt_prior = {}, {}, {}, {}
    rows = list(table.index)
    prior = getattr(idata, "prior", None)
    for row in rows:
        var, idx = (row.split("[", 1) + [None])[:2]
        post_v = _flat(post, var)
        if prior is not None and var in prior.data_vars:
            pr = _flat(prior, var)
        else:
            pr = None
        if idx is not None:
            labels = [str(x) for x in post[var].coords[post[var].dims[-1]].values]
            k = labels.index(idx.rstrip("]"))
            post_v = post_v.reshape(post_v.shape[0], -1)[:, k]
            pr = None if pr is None else pr.reshape(pr.shape[0], -1)[:, k]
        post_sd[row] = float(np.std(post_v))
        prior_sd[row] = float(np.std(pr)) if pr is not None else np.nan
        kurt_post[row] = _kurtosis(post_v)
        kurt_prior[row] = _kurtosis(pr) if pr is not None else np.nan
    table["prior_sd"] = pd.Series(prior_sd)
    table["shrinkage"] = 1.0 - (table["sd"] ** 2) / (table["prior_sd"] ** 2)
    # Monte Carlo error of the shrinkage estimate: a variance estimated from n effective draws
    # of a distribution with kurtosis k has relative variance (k - 1) / n (2 / n for a normal),
    # so the ratio of the two variances has relative variance (k_post - 1) / n_post +
    # (k_prior - 1) / n_prior (bulk ESS for the posterior, all draws where one chain gives no
    # ESS; prior draws are independent)
    n_draws = int(post.sizes.get("chain", 1) * post.sizes.get("draw", 1))
    ess = table["ess_bulk"] if "ess_bulk" in table else pd.Series(np.nan, index=table.index)
    n_post = ess.where(np.isfinite(ess), n_draws).clip(lower=2.0)
    n_prior = (
        float(prior.sizes.get("chain", 1) * prior.sizes.get("draw", 1))
        if prior is not None
        else np.nan
    )
    rel_var = (pd.Series(kurt_post) - 1.0) / n_post + (pd.Series(kurt_prior) - 1.0) / n_prior
    table["shrinkage_se"] = (1.0 - table["shrinkage"]) * np.sqrt(rel_var)
    # identified only when the shrinkage exceeds the threshold by more than twice its error
    table["identified"] = table["shrinkage"] - 2.0 * table["shrinkage_se"] >= identified_below
    if truth is not None:
        z, inside = {}, {}
        for row in rows:
            var, idx = (row.split("[", 1) + [None])[:2]
            if var not in truth:
                continue
            t = np.asarray(truth[var])
            if idx is not None:
                labels = [str(x) for x in post[var].coords[post[var].dims[-1]].values]
                t = t.reshape(-1)[labels.index(idx.rstrip("]"))]
            t = float(t)
            z[row] = (table.loc[row, "mean"] - t) / table.loc[row, "sd"]
            inside[row] = table.loc[row, lo_col] <= t <= table.loc[row, hi_col]
        table["z"] = pd.Series(z)
        table["truth_in_hdi"] = pd.Series(inside)
    msgs = []
    hyper = {s for p in twin.priors for s in p.hyper_sites}
    hyper |= {lk.sigma_site for lk in twin.likelihoods}
    for row in rows:
        var = row.split("[", 1)[0]
        if var in hyper and np.isfinite(table.loc[row, "shrinkage"]):
            if not table.loc[row, "identified"]:
                msgs.append(
                    f"{row} is not identified by the data: posterior sd "
                    f"{table.loc[row, 'sd']:.3g} vs prior sd {table.loc[row, 'prior_sd']:.3g} "
                    f"(shrinkage {table.loc[row, 'shrinkage']:.2f} "
                    f"± {table.loc[row, 'shrinkage_se']:.2f}, not above {identified_below:g}); "
                    "its posterior is the prior"
                )
    ss = getattr(idata, "sample_stats", None)
    if ss is not None and "diverging" in ss:
        n_div = int(np.asarray(ss["diverging"]).sum())
        if n_div:
            msgs.append(f"{n_div} divergent transitions: the posterior may be biased")
    if "r_hat" in table and np.any(table["r_hat"] > 1.01):
        bad = table.index[table["r_hat"] > 1.01].tolist()
        msgs.append(f"R-hat above 1.01 for {len(bad)} parameters (e.g. {bad[:3]}): run longer")
    return table, msgs


__all__ = [
    "to_inference_data",
    "save_netcdf",
    "load_netcdf",
    "summarize",
    "predictive_draws",
    "prior_draws",
]
