"""``vbt fit``: build a twin from a fit config, run the engine, check the fit, write a run folder.

Run folder contents: ``posterior.nc`` (ArviZ InferenceData), ``summary.csv`` and ``summary.md``
(table, fit quality, warnings), ``fit_quality.json``, ``figures/*.png``, ``config.toml``,
``versions.json``. The folder appears only when complete (written as ``<out>.partial-*`` and
renamed). The engine checkpoints into ``<out>.checkpoint/``; rerunning the same command after
an interruption resumes from it, and it is deleted once the run folder is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt
from vbt_jax import ConfigError

from ._config import FitConfig, PriorSpec
from ._engines import FitResult, run_nuts, run_svi
from ._forward import HopfLinear, Simulated, monitor_series, with_parameters
from ._likelihoods import FCLikelihood, band_power_likelihood, fisher_z
from ._model import Twin
from ._output import (
    predictive_draws,
    prior_draws,
    save_netcdf,
    summarize,
    to_inference_data,
)
from ._plots import _ks_to_histogram
from ._priors import Global, Regional


@dataclasses.dataclass
class FitSetup:
    """Everything built from a fit config before any compilation."""

    config: FitConfig
    experiment: Any
    twin: Twin
    observed: dict[str, np.ndarray]  # raw observations keyed by site (fc matrix, band powers)
    data: dict[str, np.ndarray]  # the model's data dict (Twin.observe)
    fc: np.ndarray  # (N, N) observed FC
    train_edges: np.ndarray  # (M,) bool
    maps: dict[str, np.ndarray]  # name -> (N,) z-scored maps used by regional priors
    band_names: tuple[str, ...] = ()


def resolve_map(name: str, connectome, base: Path) -> Any:
    """A brain map by name on the connectome's regions (z-scored, missing regions -> 0).

    ``"strength"`` (log node strength), ``"receptor:<name>"`` (Hansen et al. 2022 PET),
    ``"enigma:<disorder>"`` (ENIGMA cortical thickness effect sizes), or a file path
    (CSV/TSV with label and value columns, or .npy in connectome order).
    """
    labels = connectome.labels
    if name == "strength":
        m = vbt.node_strength_map(connectome)
    elif name.startswith("receptor:"):
        m = vbt.receptor_map(name.split(":", 1)[1], labels)
    elif name.startswith("enigma:"):
        m = vbt.enigma_map(name.split(":", 1)[1], labels)
    else:
        p = Path(name).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise ConfigError(
                f"map {name!r}: not 'strength', 'receptor:<name>', 'enigma:<disorder>' nor an "
                f"existing file ({p})"
            )
        m = vbt.load_map(p, labels)
    return np.asarray(m.zscore().fill_missing(0.0).values, float)


def _prior(spec: PriorSpec, n: int, labels, maps: dict[str, np.ndarray]):
    if not spec.regional:
        return Global(spec.name, spec.dist, spec.loc, spec.scale, spec.low, spec.high, spec.unit)
    m = np.stack([maps[k] for k in spec.maps], axis=1) if spec.maps else None
    return Regional(
        spec.name,
        n,
        spec.link,
        spec.loc,
        spec.scale,
        m,
        spec.maps,
        spec.beta_scale,
        spec.tau_scale,
        tuple(labels),
        spec.unit,
        spec.scale_by,
        spec.centred,
    )


def _observed_fc(cfg: FitConfig, conn) -> tuple[np.ndarray, int | None]:
    """The observed FC and the number of volumes behind it (None when unknown)."""
    if cfg.bold is not None:
        if str(cfg.bold).endswith((".nii", ".nii.gz")):
            ts = vbt.load_nifti_regions(cfg.bold, cfg.atlas, tr=cfg.tr, band=cfg.bold_band)
        else:
            ts = vbt.load_region_timeseries(cfg.bold, tr=cfg.tr, band=cfg.bold_band)
        vbt.check_against_connectome(ts, conn)
        x = np.asarray(ts.data, float)
        if x.shape[0] < 10:
            raise ConfigError(
                f"{cfg.bold}: {x.shape[0]} volumes are too few for an FC likelihood (need >= 10)"
            )
        return np.corrcoef(x, rowvar=False), int(x.shape[0])
    if cfg.fc == "dk84":
        if tuple(conn.labels) != tuple(vbt.dk84().labels):
            raise ConfigError(
                f"{cfg.experiment.path}: [fit.data] fc = 'dk84' needs the dk84 connectome "
                f"(the connectome has {conn.n_regions} regions: {conn.labels[:3]}...)"
            )
        fc = np.array(vbt.dk84_empirical_fc(), float)
        np.fill_diagonal(fc, 1.0)
        return fc, cfg.n_timepoints
    obs = vbt.load_fc_matrix(cfg.fc, labels=conn.labels)
    return np.asarray(obs.fc, float), cfg.n_timepoints or obs.n_timepoints


def setup_fit(cfg: FitConfig) -> FitSetup:
    """Load the connectome, data and maps, and build the twin (no compilation).

    Raises:
        ConfigError: on any data/config mismatch, naming both sides.
    """
    from vbt_jax._config import build_experiment

    exp = build_experiment(cfg.experiment)
    conn = exp.connectome
    n, labels = conn.n_regions, tuple(conn.labels)
    base = cfg.experiment.path.parent
    fc, n_timepoints = _observed_fc(cfg, conn)
    m = n * (n - 1) // 2
    rng = np.random.default_rng(cfg.seed)
    train = np.ones(m, bool)
    if cfg.heldout_fraction > 0:
        train = rng.permutation(m) >= round(cfg.heldout_fraction * m)
    maps = {}
    for spec in cfg.priors:
        for name in spec.maps:
            if name not in maps:
                maps[name] = resolve_map(name, conn, base)
    priors = [_prior(s, n, labels, maps) for s in cfg.priors]
    likelihoods: list[Any] = [FCLikelihood(n, train, n_timepoints)]
    observed: dict[str, Any] = {"fc": fc}
    features = ["fc"]
    band_names: tuple[str, ...] = ()
    bands = None
    if cfg.band_power is not None:
        if cfg.band_power == "meg_hansen":
            bp = vbt.meg_band_power(conn)
        else:
            bp = vbt.load_band_powers(cfg.band_power, labels=conn.labels)
        values = np.asarray(bp.values, float)
        if bp.bands is None:
            raise ConfigError(
                f"band powers {cfg.band_power}: the band edges (Hz) are unknown; give them"
            )
        band_names = tuple(bp.band_names)
        bands = tuple((float(lo), float(hi)) for lo, hi in bp.bands)
        mask = np.isfinite(values).all(axis=1)
        if not mask.any():
            raise ConfigError(f"band powers {cfg.band_power}: no region has values")
        likelihoods.append(band_power_likelihood(n, len(bands), mask[:, None]))
        observed["band_power"] = np.where(np.isfinite(values), values, 1.0)
        features.append("band_power")
    if cfg.forward == "hopf_linear":
        omega = np.asarray(exp.model.omega)
        if omega.ndim:
            raise ConfigError(
                f"{cfg.experiment.path}: forward = 'hopf_linear' needs one omega for all regions"
            )
        forward = HopfLinear(
            jnp.asarray(conn.weights, jnp.float32),
            float(omega),
            bands=bands,
            features=tuple(features),
        )
    else:
        keys = jax.random.split(jax.random.key(cfg.seed), cfg.sim_seeds)
        source = "bold" if any(mo.name == "bold" for mo in exp.monitors) else "tavg"
        forward = Simulated(
            exp,
            keys,
            tuple(features),
            source=source,
            bands=bands,
            fcd_window=cfg.fcd_window,
            fcd_step=cfg.fcd_step,
        )
    twin = Twin(priors, forward, likelihoods, cfg.fixed, labels)
    data = twin.observe(observed)
    return FitSetup(cfg, exp, twin, observed, data, fc, train, maps, band_names)


def run_engine(setup: FitSetup, checkpoint: Path | None, progress: bool) -> FitResult:
    cfg = setup.config
    if cfg.engine == "nuts":
        nu = cfg.nuts
        return run_nuts(
            setup.twin,
            setup.data,
            seed=cfg.seed,
            num_warmup=nu["warmup"],
            num_samples=nu["samples"],
            num_chains=nu["chains"],
            chunk=nu["chunk"],
            target_accept=nu["target_accept"],
            max_tree_depth=nu["max_tree_depth"],
            dense_mass=nu["dense_mass"],
            init_steps=nu["init_steps"],
            checkpoint=checkpoint,
            progress=progress,
        )
    sv = cfg.svi
    return run_svi(
        setup.twin,
        setup.data,
        seed=cfg.seed,
        guide=sv["guide"],
        rank=sv["rank"],
        steps=sv["steps"],
        learning_rate=sv["learning_rate"],
        num_draws=sv["draws"],
        num_particles=sv["particles"],
        resample=sv["resample"],
        checkpoint=checkpoint,
        progress=progress,
    )


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def fc_quality(setup: FitSetup, pp: dict[str, np.ndarray], sigma: np.ndarray) -> dict[str, Any]:
    """FC fit quality of the analytic/forward prediction: r on training and held-out edges,
    and the coverage of the held-out edges by the 90% posterior predictive interval."""
    n = setup.fc.shape[0]
    iu = np.triu_indices(n, 1)
    obs = setup.fc[iu]
    pred = pp["pred_fc"][:, iu[0], iu[1]]
    mean = np.tanh(fisher_z(pred).mean(axis=0))
    tr, te = setup.train_edges, ~setup.train_edges
    out = {"fc_r_train": _r(mean[tr], obs[tr]), "fc_r_all": _r(mean, obs)}
    rng = np.random.default_rng(setup.config.seed + 7)
    zrep = fisher_z(pred) + rng.normal(size=pred.shape) * sigma[: pred.shape[0], None]
    lo, hi = np.quantile(zrep, [0.05, 0.95], axis=0)
    zobs = fisher_z(obs)
    if te.any():
        out["fc_r_heldout"] = _r(mean[te], obs[te])
        out["heldout_coverage_90"] = float(np.mean((zobs[te] >= lo[te]) & (zobs[te] <= hi[te])))
    out["train_coverage_90"] = float(np.mean((zobs[tr] >= lo[tr]) & (zobs[tr] <= hi[tr])))
    full = np.eye(n)
    full[iu] = mean
    full[iu[1], iu[0]] = mean
    return out, full


def simulate_check(setup: FitSetup, flat: dict[str, np.ndarray], draws: int, progress: bool):
    """Simulate the experiment at ``draws`` posterior draws (noise seeds differ) and measure
    simulated FC against the data and the FCD distribution against the reference.

    Returns:
        ``(quality dict, fc_sim mean (N, N), fcd values of the first draw)``.
    """
    cfg = setup.config
    exp = setup.experiment
    n_total = next(iter(flat.values())).shape[0]
    idx = np.linspace(0, n_total - 1, draws).round().astype(int)
    names = [p.name for p in setup.twin.priors] + list(setup.twin.fixed)
    params = {
        k: np.asarray(flat[k])[idx] if k in flat else np.full(draws, setup.twin.fixed[k])
        for k in names
    }
    kw = exp.simulate_kwargs()
    period = {m.name: m.period for m in exp.monitors}
    source = "bold" if "bold" in period else "tavg" if "tavg" in period else "raw"
    model0 = exp.model
    init = None if exp.initial_state is None else jnp.asarray(exp.initial_state)

    def one(p, key):
        model, coupling = with_parameters(model0, kw["coupling"], p)
        # "flag", not "raise": a diverged draw is reported and left out below instead of
        # failing the whole fit, and a program without the error callback can be loaded from
        # the persistent compilation cache on the next fit
        sol = vbt.simulate(
            model,
            exp.connectome,
            key=key,
            initial_state=init,
            **{**kw, "coupling": coupling, "on_divergence": "flag"},
        )
        return monitor_series(sol, source, model0), sol.ts[source], sol.diverged

    keys = jax.random.split(jax.random.key(cfg.seed + 1), draws)
    t0 = time.perf_counter()
    if progress:
        print(f"simulating {draws} posterior draws for the FC/FCD check ...", file=sys.stderr)
    xs, ts, diverged = jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in params.items()}, keys)
    diverged = np.asarray(diverged, bool)
    if diverged.all():
        raise FloatingPointError(
            f"every one of the {draws} posterior draws simulated for the FC/FCD check diverged "
            "(NaN/inf): lower [simulation] dt or the noise in the experiment config"
        )
    if diverged.any():
        warnings.warn(
            f"{int(diverged.sum())} of {draws} posterior draws diverged (NaN/inf) in the "
            "FC/FCD check and are left out of it",
            RuntimeWarning,
            stacklevel=2,
        )
    xs, ts = np.asarray(xs, float)[~diverged], np.asarray(ts[0])
    draws = int((~diverged).sum())
    x = xs[:, ts > cfg.experiment.simulation.transient]
    n = setup.fc.shape[0]
    iu = np.triu_indices(n, 1)
    fcs = np.stack([np.corrcoef(xi, rowvar=False) for xi in x])
    fc_sim = np.tanh(fisher_z(fcs).mean(axis=0))
    obs = setup.fc[iu]
    tr, te = setup.train_edges, ~setup.train_edges
    q = {
        "sim_seconds": time.perf_counter() - t0,
        "sim_draws": int(draws),
        "sim_diverged": int(diverged.sum()),
        "sim_fc_r_all": _r(fc_sim[iu], obs),
        "sim_fc_r_per_draw": [_r(f[iu], obs) for f in fcs],
    }
    if te.any():
        q["sim_fc_r_heldout"] = _r(fc_sim[iu][te], obs[te])
        q["sim_fc_r_train"] = _r(fc_sim[iu][tr], obs[tr])
    fcd_vals = None
    if x.shape[1] >= cfg.fcd_window + 2 * cfg.fcd_step:
        vals = []
        for xi in x:
            m = np.asarray(vbt.features.fcd(jnp.asarray(xi), cfg.fcd_window, cfg.fcd_step))
            vals.append(
                np.asarray(
                    vbt.features.fcd_values(
                        jnp.asarray(m), min_separation=math.ceil(cfg.fcd_window / cfg.fcd_step)
                    )
                )
            )
        fcd_vals = np.concatenate(vals)
        q["fcd_window_samples"] = cfg.fcd_window
        q["fcd_step_samples"] = cfg.fcd_step
        q["fcd_mean"] = float(fcd_vals.mean())
        if cfg.fcd_reference is not None:
            if cfg.fcd_reference == "dk84":
                edges, hist = vbt.dk84_fcd_reference()
            else:
                with np.load(cfg.fcd_reference) as z:
                    edges, hist = z["edges"], z["hist"]
            q["fcd_ks"] = _ks_to_histogram(fcd_vals, edges, hist)
            q["fcd_ks_per_draw"] = [
                _ks_to_histogram(v, edges, hist) for v in np.array_split(fcd_vals, draws)
            ]
    return q, fc_sim, fcd_vals


def _thin(flat: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    n = next(iter(flat.values())).shape[0]
    idx = np.linspace(0, n - 1, min(k, n)).round().astype(int)
    return {key: v[idx] for key, v in flat.items()}


def _markdown_table(table) -> str:
    cols = ["mean", "sd", table.columns[2], table.columns[3], "r_hat", "ess_bulk", "shrinkage"]
    cols = [c for c in cols if c in table.columns]
    lines = ["| parameter | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for idx, row in table.iterrows():
        lines.append(f"| {idx} | " + " | ".join(f"{row[c]:.4g}" for c in cols) + " |")
    return "\n".join(lines)


def fit_run_folder(
    cfg: FitConfig,
    out: Path,
    *,
    force: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> Path:
    """Run a fit config end to end and write the run folder ``out`` (see module docstring).

    Raises:
        ConfigError: invalid config/data (before any compilation), or ``out`` exists without
            ``force``.
    """
    from vbt_jax._runfolder import atomic_folder, versions

    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not force:
        raise ConfigError(f"output folder {out} already exists; pass --force to replace it")
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
    prior = prior_draws(setup.twin, seed=cfg.seed + 2, num=500)
    pp = predictive_draws(setup.twin, _thin(flat, 400), seed=cfg.seed + 3, record=record)
    sigma = _thin(flat, 400)["sigma_fc"]
    quality, fc_pred = fc_quality(setup, pp, sigma)
    quality["engine"] = cfg.engine
    quality["engine_seconds"] = result.info["seconds"]
    if "psis_khat" in result.info:  # SVI with resample: < 0.7 means the draws can be trusted
        quality["svi_psis_khat"] = result.info["psis_khat"]
    latent = _latent_names(setup)
    quality["n_parameters"] = int(
        sum(np.prod(v.shape[2:], dtype=int) for k, v in result.posterior.items() if k in latent)
    )
    quality["n_regions"] = int(setup.fc.shape[0])
    fc_sim = fcd_vals = None
    if cfg.check_draws > 0:
        q, fc_sim, fcd_vals = simulate_check(setup, flat, cfg.check_draws, progress)
        quality.update(q)
    bp_pred = None
    if "band_power" in setup.observed:
        obs_bp = setup.observed["band_power"]
        mask = setup.twin.likelihoods[1].mask[:, 0]
        bp_pred = pp["pred_band_power"]
        mean_bp = bp_pred.mean(axis=0)
        quality["band_power_r"] = _r(np.log(mean_bp[mask]).ravel(), np.log(obs_bp[mask]).ravel())
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
    with atomic_folder(out) as partial:
        save_netcdf(idata, partial / "posterior.nc")
        table.to_csv(partial / "summary.csv")
        quality["warnings"] = msgs
        quality["total_seconds"] = time.perf_counter() - started
        (partial / "fit_quality.json").write_text(json.dumps(quality, indent=2) + "\n")
        (partial / "config.toml").write_text(cfg.experiment.text)
        (partial / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
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


def _latent_names(setup: FitSetup) -> set[str]:
    from ._engines import model_sites

    return set(model_sites(setup.twin, setup.data)["latent"])


def _write_summary_md(path: Path, cfg: FitConfig, table, quality: dict, msgs: list[str]) -> None:
    q = quality
    lines = [f"# Fit of {cfg.experiment.path.name}", ""]
    lines.append(
        f"Engine: {cfg.engine}, {q['engine_seconds']:.1f} s; {q['n_parameters']} "
        f"parameters for {q['n_regions']} regions."
    )
    lines.append("")
    lines.append("## Fit quality")
    lines.append("")
    for k in (
        "fc_r_train",
        "fc_r_heldout",
        "fc_r_all",
        "heldout_coverage_90",
        "train_coverage_90",
        "sim_fc_r_train",
        "sim_fc_r_heldout",
        "sim_fc_r_all",
        "fcd_ks",
        "band_power_r",
    ):
        if k in q:
            lines.append(f"- {k}: {q[k]:.3f}")
    lines.append("")
    lines.append(
        "`fc_r_*`: Pearson r between the posterior-mean analytic FC and the data over "
        "training edges, held-out edges (never seen by the likelihood) and all edges; "
        "`sim_*`: the same for FC of simulations at posterior draws; `fcd_ks`: KS "
        "distance between simulated FCD values and the reference histogram."
    )
    lines.append("")
    if msgs:
        lines.append("## Warnings")
        lines.append("")
        lines.extend(f"- {m}" for m in msgs)
        lines.append("")
    glob = table.loc[[r for r in table.index if "[" not in r]]
    lines.append("## Global and hyper-parameters")
    lines.append("")
    lines.append(_markdown_table(glob))
    lines.append("")
    lines.append("Regional parameters: see summary.csv.")
    path.write_text("\n".join(lines) + "\n")


def _figures(folder: Path, setup: FitSetup, idata, result, fc_pred, fc_sim, fcd_vals, bp_pred):
    from . import _plots

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
    )
    if fc_sim is not None:
        _plots.plot_fc_fit(
            setup.fc,
            fc_sim,
            setup.train_edges,
            folder / "fc_simulated.png",
            title="simulated FC at posterior draws",
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
    if fcd_vals is not None and setup.config.fcd_reference is not None:
        if setup.config.fcd_reference == "dk84":
            edges, hist = vbt.dk84_fcd_reference()
        else:
            with np.load(setup.config.fcd_reference) as z:
                edges, hist = z["edges"], z["hist"]
        _plots.plot_fcd(
            fcd_vals, edges, hist, folder / "fcd.png", ks=_ks_to_histogram(fcd_vals, edges, hist)
        )
    if bp_pred is not None:
        obs = np.where(setup.twin.likelihoods[1].mask, setup.observed["band_power"], np.nan)
        lo, hi = np.quantile(bp_pred, [0.05, 0.95], axis=0)
        _plots.plot_band_power_fit(
            obs, bp_pred.mean(0), lo, hi, setup.band_names, folder / "band_power_fit.png"
        )
    if result.engine == "svi":
        _plots.plot_svi_loss(np.asarray(result.info["loss"]), folder / "svi_loss.png")


__all__ = [
    "FitSetup",
    "setup_fit",
    "run_engine",
    "fit_run_folder",
    "simulate_check",
    "fc_quality",
    "resolve_map",
]
