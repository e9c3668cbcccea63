"""``vbt fit``: build a twin from a fit config, run the engine, check the fit, write a run folder.

Run folder contents: ``posterior.nc`` (ArviZ InferenceData), ``summary.csv`` and ``summary.md``
(table, fit quality, warnings), ``fit_quality.json``, ``figures/*.png``, ``config.toml``,
``versions.json``. The folder appears only when complete (written as ``<out>.partial-*`` and
renamed). The engine checkpoints into ``<out>.checkpoint/``; rerunning the same command after
an interruption resumes from it, and it is deleted once the run folder is written.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import vbt_jax as vbt
from vbt_jax.jobs import RunFolder

from .._output import (
    predictive_draws,
    prior_draws,
    save_netcdf,
    summarize,
    to_inference_data,
)
from ..metrics import convergence, pearson
from ._checks import fc_quality, simulate_check
from ._config import FitConfig
from ._figures import _figures
from ._report import _write_summary_md
from ._setup import fit_keys, run_engine, setup_fit


def _thin(flat: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    n = next(iter(flat.values())).shape[0]
    idx = np.linspace(0, n - 1, min(k, n)).round().astype(int)
    return {key: v[idx] for key, v in flat.items()}


# the r between the simulated check's FC and the likelihood's FC below which a fit is flagged:
# the FC of a 1000-volume simulation has sampling sd ~(1 - r^2) / sqrt(1000) per edge, far below
# the spread of FC over edges, so a correct linearisation stays well above it
SIM_AGREEMENT = 0.8


def fit_run_folder(
    cfg: FitConfig,
    out: RunFolder | str | Path,
    *,
    force: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> Path:
    """Run a fit config end to end and write the run folder ``out`` (see module docstring).

    Args:
        cfg: the validated fit config.
        out: the run folder (a :class:`vbt_jax.jobs.RunFolder`, or a path checked here with
            ``force``).
        force: replace an existing folder (when ``out`` is a path).
        progress: progress bars and messages on stderr.
        figures: draw the PNG figures.

    Returns:
        The run folder's path.

    Raises:
        ConfigError: invalid config; DataError: invalid data (both before any compilation);
        ArgumentError: ``out`` cannot be written (exists without ``force``, is a file, or its
        parent folder is missing).
    """
    started = time.perf_counter()
    folder = out if isinstance(out, RunFolder) else RunFolder.prepare(out, force=force)
    out = folder.path
    auto = [p.name for p in cfg.priors if p.regional and p.centred == "auto"]
    if progress and auto:
        print(f"vbt fit: learning the per-region centring of {', '.join(auto)}", file=sys.stderr)
    setup = setup_fit(cfg)
    ckpt = out.with_name(out.name + ".checkpoint")
    if progress:
        state = "resuming from" if ckpt.exists() else "checkpoints in"
        print(
            f"vbt fit: {cfg.engine} on {len(setup.twin.priors)} priors, "
            f"{int(setup.train_edges.sum())} training edges; {state} {ckpt}",
            file=sys.stderr,
        )
    result = run_engine(setup, ckpt, progress)
    flat = result.flat()
    record = ("fc",) + (("band_power",) if "band_power" in setup.observed else ())
    keys = fit_keys(cfg)
    prior = prior_draws(setup.twin, key=keys["prior"], num=500)
    pp = predictive_draws(setup.twin, _thin(flat, 400), key=keys["predictive"], record=record)
    sigma = _thin(flat, 400)["sigma_fc"]
    quality, fc_pred = fc_quality(setup, pp, sigma)
    quality["engine"] = cfg.engine
    # how the likelihood's features were computed: "linearised" or "simulation"
    quality["route"] = type(setup.twin.forward).route
    quality["engine_seconds"] = result.info["seconds"]
    if "psis_khat" in result.info:  # SVI with resample: < 0.7 means the draws can be trusted
        quality["svi_psis_khat"] = result.info["psis_khat"]
    quality["n_parameters"] = int(sum(math.prod(s) for s in setup.latent_shapes().values()))
    quality["n_regions"] = int(setup.fc.shape[0])
    fc_sim = fcd_vals = None
    if cfg.check_draws > 0:
        # the posterior is written whatever happens in the check
        try:
            q, fc_sim, fcd_vals = simulate_check(setup, flat, cfg.check_draws, progress)
        except Exception as e:
            q = {"sim_check": "failed", "sim_check_reason": f"{type(e).__name__}: {e}"}
        quality.update(q)
        if q["sim_check"] == "failed" and progress:
            print(
                f"vbt fit: the simulated FC/FCD check failed: {q['sim_check_reason']}; "
                "the posterior is written without it",
                file=sys.stderr,
            )
    if fc_sim is not None:
        iu = np.triu_indices(fc_pred.shape[0], 1)
        quality["sim_vs_forward_fc_r"] = pearson(fc_sim[iu], fc_pred[iu])
    bp_pred = None
    if "band_power" in setup.observed:
        obs_bp = setup.observed["band_power"]
        mask = setup.twin.likelihoods[1].mask[:, 0]
        bp_pred = pp["pred_band_power"]
        mean_bp = bp_pred.mean(axis=0)
        quality["band_power_r"] = pearson(np.log(mean_bp[mask]), np.log(obs_bp[mask]))
    attrs = {"engine": cfg.engine, "config": str(cfg.experiment.path), "vbt_jax": vbt.__version__}
    # the (draw, N, N) predicted FC matrices stay out of the file (fc_predicted.npy holds their
    # mean); the replicated observations (site "fc", Fisher z per edge) go in
    pp_all = {k: v.astype(np.float32) for k, v in pp.items() if k != "pred_fc"}
    idata = to_inference_data(
        setup.twin,
        result,
        setup.data,
        prior=prior,
        posterior_predictive=pp_all,
        constant_data={
            "train_edges": setup.train_edges.astype(np.int8),
            **{f"map_{k}": v for k, v in setup.maps.items()},
        },
        attrs=attrs,
    )
    table, msgs = summarize(idata, setup.twin)
    quality |= convergence(
        idata, table, loss=result.info["loss"] if result.engine == "svi" else None
    )
    if quality.get("sim_check") == "failed":
        msgs = msgs + [f"simulated FC/FCD check failed: {quality['sim_check_reason']}"]
    elif quality.get("sim_unstable_advice"):
        msgs = msgs + [quality["sim_unstable_advice"]]
    if quality.get("sim_vs_forward_fc_r", 1.0) < SIM_AGREEMENT:
        msgs = msgs + [
            f"the FC of the nonlinear simulations at posterior draws and the likelihood's "
            f"({quality['route']}) FC disagree: r = {quality['sim_vs_forward_fc_r']:.2f} < "
            f"{SIM_AGREEMENT}; the {quality['route']} FC may not hold in the fitted regime "
            "(or the check's simulations are too short)"
        ]
    with folder.write(config_text=cfg.experiment.text) as partial:
        save_netcdf(idata, partial / "posterior.nc")
        table.to_csv(partial / "summary.csv")
        quality["warnings"] = msgs
        quality["total_seconds"] = time.perf_counter() - started
        (partial / "fit_quality.json").write_text(json.dumps(quality, indent=2) + "\n")
        np.save(partial / "fc_predicted.npy", fc_pred)
        if fc_sim is not None:
            np.save(partial / "fc_simulated.npy", fc_sim)
        _write_summary_md(partial / "summary.md", cfg, table, quality, msgs)
        if result.engine == "svi":
            np.savetxt(partial / "svi_loss.csv", np.asarray(result.info["loss"]), fmt="%.8g")
        if figures:
            _figures(partial / "figures", setup, idata, result, fc_pred, fc_sim, fcd_vals, bp_pred)
    shutil.rmtree(ckpt, ignore_errors=True)
    return out


__all__ = ["fit_run_folder"]
