"""``vbt predict``: predicted treatment effects on a fitted twin, from a TOML config to a run
folder.

The config (its schema and an example in :mod:`inference.treatment._config`) names a fitted
twin, the interventions, the doses and the reference FC to move towards.

The run folder: ``predictions.nc`` (ArviZ InferenceData, group ``predictions``; see
:func:`inference.treatment.predictions_to_inference_data`), ``summary.csv`` (one row per
intervention and dose: mean FC change with its interval, P(improves), P(unstable)),
``ranking.csv``,
``report.md`` (tables and figures, readable on its own), ``figures/`` (dose-response with
bands, P(improves) by dose, the ranking, FC-change maps, regional GBC changes, band powers),
``config.toml``, ``twin.json`` (where the posterior came from), ``versions.json``. It is
written atomically (``<out>.partial-*`` renamed when complete).

Everything in the config is checked (and the twin's folder read) before anything is compiled;
errors name the file, the section and the key.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax.random as jr
import numpy as np

import vbt_jax as vbt
from vbt_jax.jobs import RunFolder

from ._config import PredictConfig
from ._report import _summary_rows, _write_csv, _write_report, ranking_rows
from ._twin import PredictInputs, prepare_predict

# ------------------------------------------------------------------------------ the job


def predict_run_folder(
    cfg: PredictConfig,
    out: RunFolder | str | Path,
    *,
    force: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> Path:
    """Run a predict config end to end and write the run folder ``out``.

    Args:
        cfg: the validated predict config.
        out: the run folder (a :class:`vbt_jax.jobs.RunFolder`, or a path checked here with
            ``force``).
        force: replace an existing folder (when ``out`` is a path).
        progress: progress bars and messages on stderr.
        figures: draw the PNG figures.

    Returns:
        The run folder's path.

    Raises:
        ConfigError: invalid config or twin (before any compilation); ArgumentError: ``out``
            cannot be written.
    """
    from .._output import save_netcdf
    from ._effects import predict_interventions
    from ._summary import change_summary, dose_index, prob_improves, ranking, to_inference_data

    started = time.perf_counter()
    folder = out if isinstance(out, RunFolder) else RunFolder.prepare(out, force=force)
    out = folder.path
    inputs = prepare_predict(cfg)
    twin, interventions, target = inputs.twin, inputs.interventions, inputs.target
    D = twin.a.shape[0]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        print(
            f"vbt predict: {len(interventions)} interventions x {len(cfg.doses)} doses on "
            f"{D} posterior draws of {twin.folder}",
            file=sys.stderr,
        )
        bar = tqdm(total=D, desc="predict", unit="draw", file=sys.stderr)

    def tick(done):
        if bar is not None:
            bar.update(done - bar.n)

    pred = predict_interventions(
        twin.a,
        twin.G,
        twin.weights,
        twin.labels,
        interventions,
        np.asarray(cfg.doses),
        target_fc=target,
        omega=twin.omega,
        distance=cfg.distance,
        bands_hz=cfg.bands or None,
        chunk=cfg.chunk,
        progress=tick,
    )
    if bar is not None:
        bar.close()
    sim = _simulate(cfg, inputs, progress)
    checks = _check_observed(cfg, inputs, progress)
    summ = change_summary(pred, cfg.interval)
    k_rep = dose_index(pred, cfg.report_dose)
    p_imp = prob_improves(pred) if target is not None else None
    rank = ranking(pred, k_rep) if target is not None else None
    rows = _summary_rows(pred, summ, p_imp)
    info = {
        "twin": str(twin.folder.resolve()),
        "fit_config": str(twin.fit_config.resolve()),
        "posterior_draws_in_file": twin.n_posterior,
        "draws_used": D,
        "omega_rad_per_ms": twin.omega,
        "target_fc": None if cfg.target_fc is None else str(cfg.target_fc),
        "distance": cfg.distance,
        "interval": cfg.interval,
        "report_dose": cfg.report_dose,
        "interventions": {k: v.describe() for k, v in interventions.items()},
        "kinds": dict(zip(pred.names, pred.kinds, strict=True)),
    }
    attrs = {
        "twin": info["twin"],
        "config": str(cfg.path),
        "vbt_jax": vbt.__version__,
        "interval": cfg.interval,
        "report_dose": cfg.report_dose,
    }
    idata = to_inference_data(pred, attrs)
    if sim is not None:
        _add_simulated(idata, sim)
    with folder.write(config_text=cfg.text) as partial:
        save_netcdf(idata, partial / "predictions.nc")
        _write_csv(partial / "summary.csv", rows)
        if rank is not None:
            _write_csv(partial / "ranking.csv", ranking_rows(pred, summ, p_imp, rank, k_rep))
        info["seconds"] = time.perf_counter() - started
        (partial / "twin.json").write_text(json.dumps(info, indent=2) + "\n")
        if checks:
            (partial / "observed_check.json").write_text(
                json.dumps([{**spec, **c.as_dict()} for spec, c in checks], indent=2) + "\n"
            )
        figs = []
        if figures:
            from ._plots import prediction_figures

            figs = prediction_figures(partial / "figures", pred, summ, p_imp, rank, k_rep)
            if sim is not None:
                from ._plots import plot_fcd_predictions

                figs.append(plot_fcd_predictions(sim, partial / "figures" / "fcd.png"))
            from ._plots import plot_observed_check

            for j, (spec, c) in enumerate(checks):
                figs.append(
                    plot_observed_check(
                        c, spec["intervention"], partial / "figures" / f"observed_{j}.png"
                    )
                )
        _write_report(
            partial / "report.md", cfg, twin, pred, summ, p_imp, rank, k_rep, figs, sim, checks
        )
    return out


def _simulate(cfg: PredictConfig, inputs: PredictInputs, progress: bool):
    """The simulated FCD check at the report dose, or None when [predict.simulate] is off."""
    if inputs.experiment is None:
        return None
    from ._simulated import simulate_interventions

    def say(msg):
        if progress:
            print(f"vbt predict: {msg}", file=sys.stderr)

    return simulate_interventions(
        inputs.experiment,
        inputs.twin.a,
        inputs.twin.G,
        inputs.interventions,
        cfg.report_dose,
        draws=cfg.sim_draws,
        key=jr.key(cfg.sim_seed),
        window=cfg.fcd_window,
        step=cfg.fcd_step,
        progress=say,
    )


def _check_observed(cfg: PredictConfig, inputs: PredictInputs, progress: bool):
    """``[(spec dict, ObservedCheck), ...]`` for every ``[[predict.observed]]`` session."""

    from ._observed import check_observed

    twin = inputs.twin
    out = []
    for session in inputs.sessions:
        spec = session.spec
        if progress:
            print(
                f"vbt predict: checking {spec.intervention} at dose {spec.dose:g} against "
                f"{spec.fc_post}",
                file=sys.stderr,
            )
        c = check_observed(
            twin.a,
            twin.G,
            twin.weights,
            twin.labels,
            inputs.interventions[spec.intervention],
            spec.dose,
            session.fc_pre,
            session.fc_post,
            spec.n_timepoints,
            key=jr.key(spec.seed),
            prob=cfg.interval,
        )
        info = {
            "intervention": spec.intervention,
            "dose": spec.dose,
            "fc_pre": str(spec.fc_pre),
            "fc_post": str(spec.fc_post),
            "n_timepoints": spec.n_timepoints,
        }
        out.append((info, c))
    return out


def _add_simulated(idata, sim) -> None:
    import xarray as xr

    # DataArrays, not (dims, values) tuples: an arviz 1.x DataTree node stores a tuple as an
    # object scalar, which NetCDF cannot hold
    ds = idata.predictions
    coords = {"sim_draw": np.asarray(sim.draws), "variant": list(sim.names)}
    d2 = ("sim_draw", "variant")
    ds["sim_fcd"] = xr.DataArray(sim.fcd.astype(np.float32), dims=(*d2, "fcd_value"), coords=coords)
    ds["sim_mean_fc"] = xr.DataArray(np.asarray(sim.mean_fc), dims=d2, coords=coords)
    ds["sim_fcd_ks"] = xr.DataArray(np.asarray(sim.fcd_ks), dims=d2, coords=coords)
    ds.attrs["sim_dose"] = sim.dose
    ds.attrs["sim_duration_s"] = sim.duration_s
    ds.attrs["fcd_window"] = sim.window
    ds.attrs["fcd_step"] = sim.step


__all__ = ["predict_run_folder"]
