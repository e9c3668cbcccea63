"""The figures of a fit run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics import ks_to_histogram
from ._setup import FitSetup


def _figures(folder: Path, setup: FitSetup, idata, result, fc_pred, fc_sim, fcd_vals, bp_pred):
    from .. import plots as _plots

    folder.mkdir()
    twin = setup.twin
    scalars = [
        v
        for v in idata.posterior.data_vars
        if idata.posterior[v].ndim <= 3
        and not v.endswith("_z")
        and not any(p.regional and v == p.name for p in twin.priors)
    ]
    _plots.plot_prior_posterior(idata, scalars, folder / "prior_posterior.png")
    _plots.plot_trace_rank(idata, scalars, folder / "trace_rank.png")
    _plots.plot_fc_fit(
        setup.fc,
        fc_pred,
        setup.train_edges,
        folder / "fc_fit.png",
        title="analytic FC at the posterior",
        labels=twin.labels,
    )
    if fc_sim is not None:
        _plots.plot_fc_fit(
            setup.fc,
            fc_sim,
            setup.train_edges,
            folder / "fc_simulated.png",
            title="simulated FC at posterior draws",
            labels=twin.labels,
        )
    for p in twin.priors:
        if p.regional:
            # the link scale (eta) when it is sampled: values of a = -G exp(eta) span decades
            var = f"{p.name}_eta" if f"{p.name}_eta" in idata.posterior else p.name
            _plots.plot_regional(
                idata,
                var,
                folder / f"regional_{p.name}.png",
                labels=twin.labels,
                maps=p.maps if p.n_maps else None,
                map_names=p.map_names,
            )
    if fcd_vals is not None and setup.fcd_reference is not None:
        edges, hist = setup.fcd_reference
        _plots.plot_fcd(
            fcd_vals, edges, hist, folder / "fcd.png", ks=ks_to_histogram(fcd_vals, edges, hist)
        )
    if bp_pred is not None:
        obs = np.where(setup.twin.likelihoods[1].mask, setup.observed["band_power"], np.nan)
        lo, hi = np.quantile(bp_pred, [0.05, 0.95], axis=0)
        _plots.plot_band_power_fit(
            obs, bp_pred.mean(0), lo, hi, setup.band_names, folder / "band_power_fit.png"
        )
    if result.engine == "svi":
        _plots.plot_svi_loss(np.asarray(result.info["loss"]), folder / "svi_loss.png")
