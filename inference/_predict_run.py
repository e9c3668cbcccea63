"""``vbt predict``: predicted treatment effects on a fitted twin, from a TOML config to a run
folder.

A predict config names a fitted twin (the run folder of ``vbt fit``: ``posterior.nc`` and
``config.toml``), the interventions, the doses and the reference to move towards::

    description = "..."

    [predict]
    twin = "../runs/demo"        # a vbt fit run folder (relative to this file), or --twin
    draws = 1000                 # posterior draws used (thinned evenly; default all)
    doses = [0, 0.5, 1, 2, 4]    # in each drug's EC50 unit (multiples of the EC50 by default)
    report_dose = 2.0            # the dose of the ranking and the FC-change maps (one of doses)
    target_fc = "dk84"           # reference FC to move towards ("dk84", a file, or "none")
    distance = "corr"            # 1 - r of the upper triangles; or "fisher_z"
    interval = 0.9               # credible interval mass
    bands = { slow5 = [0.01, 0.027], slow4 = [0.027, 0.073] }   # Hz, optional

    [[predict.intervention]]
    name = "psilocybin-like"
    kind = "drug"
    preset = "psychedelic_5ht2a" # or receptor = "5HT2a" / a map file + efficacy + mode
    efficacy = -0.5              # optional: override the preset's (relative change of a)
    ec50 = 1.0                   # occupancy: ec50 (dose unit), hill, emax
    hill = 1.0

    [[predict.intervention]]
    name = "precuneus lesion"
    kind = "lesion"
    regions = ["L.PCUN"]         # and/or edges = [["L.PCUN", "R.PCUN"]]
    factor = 0.5

    [[predict.intervention]]
    name = "inhibitory rTMS L.RMFG"
    kind = "stimulation"
    targets = ["L.RMFG"]
    amplitude = -1e-6            # offset of a [1/ms] while the stimulation is on

The run folder: ``predictions.nc`` (ArviZ InferenceData, group ``predictions``; see
:func:`inference.predictions_to_inference_data`), ``summary.csv`` (one row per intervention
and dose: mean FC change with its interval, P(improves), P(unstable)), ``ranking.csv``,
``report.md`` (tables and figures, readable on its own), ``figures/`` (dose-response with
bands, P(improves) by dose, the ranking, FC-change maps, regional GBC changes, band powers),
``config.toml``, ``twin.json`` (where the posterior came from), ``versions.json``. It is
written atomically (``<out>.partial-*`` renamed when complete).

Everything in the config is checked (and the twin's folder read) before anything is compiled;
errors name the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import vbt_jax as vbt
from vbt_jax import ConfigError

_PREDICT = (
    "twin",
    "draws",
    "doses",
    "report_dose",
    "target_fc",
    "distance",
    "interval",
    "bands",
    "chunk",
    "intervention",
    "simulate",
    "observed",
)
_OBSERVED = ("intervention", "dose", "fc_pre", "fc_post", "n_timepoints", "seed")
_SIMULATE = ("draws", "seed", "duration", "fcd_window", "fcd_step")
_DRUG = (
    "name",
    "kind",
    "preset",
    "receptor",
    "parameter",
    "efficacy",
    "mode",
    "map_transform",
    "ec50",
    "hill",
    "emax",
)
_LESION = ("name", "kind", "regions", "edges", "factor", "directed")
_STIM = ("name", "kind", "targets", "amplitude", "onset", "duration")
_PRESETS = ("psychedelic_5ht2a", "antipsychotic_d2", "ketamine_nmda", "benzodiazepine_gabaa")
_TRANSFORMS = {"minmax": "minmax", "max": "max", "none": None}


@dataclasses.dataclass(frozen=True)
class InterventionSpec:
    """One ``[[predict.intervention]]`` table, validated (built on the twin's regions later)."""

    name: str
    kind: str
    settings: Mapping[str, Any]
    section: str


@dataclasses.dataclass(frozen=True)
class ObservedSpec:
    """One ``[[predict.observed]]`` table: an on-drug session to check the prediction with."""

    intervention: str
    dose: float
    fc_pre: str | Path
    fc_post: Path
    n_timepoints: int
    seed: int
    section: str


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """The validated ``[predict]`` section (see the module docstring)."""

    path: Path
    text: str
    description: str
    twin: Path
    draws: int | None
    doses: tuple[float, ...]
    report_dose: float
    target_fc: str | Path | None
    distance: str
    interval: float
    bands: dict[str, tuple[float, float]]
    interventions: tuple[InterventionSpec, ...]
    chunk: int = 64
    sim_draws: int = 0
    sim_seed: int = 0
    sim_duration: float | None = None
    fcd_window: int = 83
    fcd_step: int = 3
    observed: tuple[ObservedSpec, ...] = ()

    def quick(self) -> PredictConfig:
        """Tiny settings for smoke tests: at most 16 draws; at most one simulated draw of at
        most 200 s."""
        return dataclasses.replace(
            self,
            draws=min(self.draws or 16, 16),
            sim_draws=min(self.sim_draws, 1),
            sim_duration=min(self.sim_duration or 200_000.0, 200_000.0),
            fcd_window=min(self.fcd_window, 20),
            fcd_step=min(self.fcd_step, 2),
        )


def _table(path, section, table, allowed):
    from vbt_jax._config import _Table

    return _Table(path, section, table, allowed)


def _pos_int(t, key: str, default):
    v = t.raw(key, default)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise t.error(f"{key} must be an integer >= 1, got {v!r}")
    return v


def _regions(t, key: str) -> list:
    v = t.raw(key, [])
    if isinstance(v, str | int):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str | int) for x in v):
        raise t.error(f"{key} must be a list of region labels or indices, got {v!r}")
    return v


def _intervention(path: Path, i: int, table: Any, base: Path) -> InterventionSpec:
    section = f"predict.intervention.{i}"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [[predict.intervention]] number {i + 1} must be a table")
    kind = table.get("kind")
    allowed = {"drug": _DRUG, "lesion": _LESION, "stimulation": _STIM}
    if kind not in allowed:
        raise ConfigError(
            f"{path}: [{section}] kind must be one of 'drug', 'lesion', 'stimulation', got {kind!r}"
        )
    t = _table(path, section, table, allowed[kind])
    name = t.string("name", what="a label for the report")
    s: dict[str, Any] = {}
    if kind == "drug":
        if t.has("preset") == t.has("receptor"):
            raise t.error(
                f"give either preset (one of {', '.join(_PRESETS)}) or receptor (a receptor "
                "name such as '5HT2a', or a map file), not both or neither"
            )
        if t.has("preset"):
            s["preset"] = t.choice("preset", _PRESETS)
            for key in ("parameter", "mode"):
                if t.has(key):
                    raise t.error(f"{key} is set by the preset {s['preset']!r}; remove it")
        else:
            rec = t.string("receptor")
            p = Path(rec).expanduser()
            p = p if p.is_absolute() else base / p
            if rec.endswith((".csv", ".tsv", ".npy")):
                if not p.exists():
                    raise t.error(f"receptor map file {rec!r} not found (resolved to {p})")
                s["receptor_file"] = p.resolve()
            else:
                names = tuple(vbt.RECEPTOR_TRACERS)
                if rec not in names:
                    raise t.error(
                        f"receptor {rec!r} is neither a map file (.csv/.tsv/.npy) nor one of "
                        f"{', '.join(names)}"
                    )
                s["receptor"] = rec
            s["parameter"] = t.choice("parameter", ("a",), "a")
            s["mode"] = t.choice("mode", ("scale", "add"), "scale")
            if not t.has("efficacy"):
                raise t.error("missing required key 'efficacy' (a drug given by receptor)")
        if t.has("efficacy"):
            s["efficacy"] = t.number("efficacy", lower="any")
        s["map_transform"] = _TRANSFORMS[t.choice("map_transform", tuple(_TRANSFORMS), "minmax")]
        s["ec50"] = t.number("ec50", 1.0, unit="dose unit")
        s["hill"] = t.number("hill", 1.0)
        s["emax"] = t.number("emax", 1.0)
        if not s["emax"] <= 1.0:
            raise t.error(f"emax must be in (0, 1], got {s['emax']}")
    elif kind == "lesion":
        s["regions"] = _regions(t, "regions")
        edges = t.raw("edges", [])
        if not isinstance(edges, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(x, str | int) for x in e)
            for e in edges
        ):
            raise t.error(f"edges must be a list of [region, region] pairs, got {edges!r}")
        if not s["regions"] and not edges:
            raise t.error("a lesion needs regions and/or edges")
        s["edges"] = [tuple(e) for e in edges]
        s["factor"] = t.number("factor", 0.0, lower="non-negative")
        s["directed"] = t.boolean("directed", False)
    else:
        s["targets"] = _regions(t, "targets")
        if not s["targets"]:
            raise t.error("a stimulation needs targets")
        s["amplitude"] = t.number("amplitude", unit="1/ms, offset of a", lower="any")
        s["onset"] = t.number("onset", 0.0, unit="ms", lower="non-negative")
        s["duration"] = t.number("duration", 600_000.0, unit="ms")
    return InterventionSpec(name=name, kind=kind, settings=s, section=section)


def _observed(path: Path, i: int, table: Any, base: Path, ivs: dict) -> ObservedSpec:
    section = f"predict.observed.{i}"
    t = _table(path, section, table, _OBSERVED)
    name = t.string("intervention", what="the name of a drug of this config")
    if name not in ivs:
        raise t.error(f"intervention {name!r} is not one of this config's: {sorted(ivs)}")
    if ivs[name].kind != "drug":
        raise t.error(f"intervention {name!r} is a {ivs[name].kind}; observed checks take drugs")
    files = {}
    for key in ("fc_pre", "fc_post"):
        v = t.string(key, what="an FC matrix file (.npy/.csv/.tsv/BIDS relmat)")
        if key == "fc_pre" and v == "dk84":
            files[key] = v
            continue
        p = Path(v).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise t.error(f"{key} {v!r} not found (resolved to {p})")
        files[key] = p.resolve()
    n_tp = t.raw("n_timepoints", None, "volumes of each scan")
    if not isinstance(n_tp, int) or isinstance(n_tp, bool) or n_tp <= 3:
        raise t.error(f"n_timepoints must be an integer > 3, got {n_tp!r}")
    seed = t.raw("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise t.error(f"seed must be an integer >= 0, got {seed!r}")
    return ObservedSpec(
        intervention=name,
        dose=t.number("dose", lower="non-negative"),
        fc_pre=files["fc_pre"],
        fc_post=files["fc_post"],
        n_timepoints=n_tp,
        seed=seed,
        section=section,
    )


def parse_predict(path: Path, text: str, data: dict[str, Any]) -> PredictConfig:
    """Validate a predict config's parsed TOML ``data`` (read from ``path``).

    Raises:
        ConfigError: naming the file, the section and the key.
    """
    extra = set(data) - {"description", "predict"}
    if extra:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {sorted(extra)}; a predict config has "
            "description and [predict] (the twin's own config is in its run folder)"
        )
    if "predict" not in data:
        raise ConfigError(f"{path}: no [predict] section")
    t = _table(path, "predict", data["predict"], _PREDICT)
    base = path.parent
    twin = Path(t.string("twin", what="a vbt fit run folder")).expanduser()
    twin = twin if twin.is_absolute() else (base / twin)
    doses = t.value("doses", lower="non-negative", what="doses in the drugs' EC50 unit")
    doses = (doses,) if isinstance(doses, float) else doses
    if len(set(doses)) != len(doses):
        raise t.error(f"doses repeat: {list(doses)}")
    doses = tuple(sorted(doses))
    report_dose = t.number("report_dose", max(doses), lower="non-negative")
    if not np.isclose(doses, report_dose).any():
        raise t.error(f"report_dose {report_dose:g} is not one of doses {list(doses)}")
    target: str | Path | None = t.raw("target_fc", "dk84")
    if target == "none":
        target = None
    elif target != "dk84":
        if not isinstance(target, str) or not target:
            raise t.error(f"target_fc must be 'dk84', 'none' or a file, got {target!r}")
        p = Path(target).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise t.error(f"target_fc {target!r} not found (resolved to {p})")
        target = p.resolve()
    interval = t.number("interval", 0.9)
    if not interval < 1:
        raise t.error(f"interval must be in (0, 1), got {interval}")
    bands_raw = t.raw("bands", {})
    if not isinstance(bands_raw, dict):
        raise t.error(f"bands must be a table name = [lo_hz, hi_hz], got {bands_raw!r}")
    bands = {}
    for k, v in bands_raw.items():
        if not (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            and 0 <= v[0] < v[1]
        ):
            raise t.error(f"bands.{k} must be [lo_hz, hi_hz] with 0 <= lo < hi, got {v!r}")
        bands[str(k)] = (float(v[0]), float(v[1]))
    raw_iv = t.raw("intervention", None, "at least one [[predict.intervention]] table")
    if not isinstance(raw_iv, list) or not raw_iv:
        raise t.error("needs at least one [[predict.intervention]] table")
    ivs = tuple(_intervention(path, i, x, base) for i, x in enumerate(raw_iv))
    names = [iv.name for iv in ivs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise t.error(f"intervention names repeat: {dup}")
    st = _table(path, "predict.simulate", data["predict"].get("simulate", {}), _SIMULATE)
    sim_draws = st.raw("draws", 0)
    if not isinstance(sim_draws, int) or isinstance(sim_draws, bool) or sim_draws < 0:
        raise st.error(f"draws must be an integer >= 0 (0: no simulation), got {sim_draws!r}")
    sim_seed = st.raw("seed", 0)
    if not isinstance(sim_seed, int) or isinstance(sim_seed, bool) or sim_seed < 0:
        raise st.error(f"seed must be an integer >= 0, got {sim_seed!r}")
    sim_kw = dict(
        sim_draws=sim_draws,
        sim_seed=sim_seed,
        sim_duration=st.number("duration", unit="ms") if st.has("duration") else None,
        fcd_window=_pos_int(st, "fcd_window", 83),
        fcd_step=_pos_int(st, "fcd_step", 3),
    )
    if sim_kw["fcd_window"] < 2:
        raise st.error(f"fcd_window must be >= 2 samples, got {sim_kw['fcd_window']}")
    raw_obs = data["predict"].get("observed", [])
    if isinstance(raw_obs, dict):
        raw_obs = [raw_obs]
    if not isinstance(raw_obs, list):
        raise t.error("observed must be a table or an array of tables [[predict.observed]]")
    observed = tuple(
        _observed(path, i, x, base, {iv.name: iv for iv in ivs}) for i, x in enumerate(raw_obs)
    )
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ConfigError(f"{path}: description must be a string")
    return PredictConfig(
        path=path,
        text=text,
        description=desc,
        twin=twin,
        draws=_pos_int(t, "draws", None),
        doses=doses,
        report_dose=report_dose,
        target_fc=target,
        distance=t.choice("distance", ("corr", "fisher_z"), "corr"),
        interval=interval,
        bands=bands,
        interventions=ivs,
        chunk=_pos_int(t, "chunk", 64),
        observed=observed,
        **sim_kw,
    )


def load_predict_config(path: str | Path) -> PredictConfig:
    """Read and validate a predict config (nothing is loaded or compiled)."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: TOML syntax error: {e}") from None
    return parse_predict(path.resolve(), text, data)


# ------------------------------------------------------------------------------ the twin


@dataclasses.dataclass(frozen=True)
class FittedTwin:
    """What predictions need from a ``vbt fit`` run folder (NumPy arrays)."""

    folder: Path
    a: np.ndarray  # (D, N) posterior draws of a [1/ms]
    G: np.ndarray  # (D,)
    omega: float  # rad/ms
    weights: np.ndarray  # (N, N), as used in the fit
    labels: tuple[str, ...]
    connectome: Any
    fit_config: Path
    n_posterior: int  # draws in the file before thinning
    experiment_config: Any = None  # the twin's ExperimentConfig (for simulations)


def load_twin(folder: Path, draws: int | None = None, *, what: str = "twin") -> FittedTwin:
    """Read a ``vbt fit`` run folder: the posterior of a Hopf twin and its connectome.

    Raises:
        ConfigError: not a run folder, a twin that is not a linearised Hopf fit, or missing
            posterior variables (naming the file).
    """
    from vbt_jax._config import build_experiment, load_config

    from ._config import load_fit_config
    from ._output import load_netcdf

    folder = Path(folder)
    post_path, cfg_path = folder / "posterior.nc", folder / "config.toml"
    if not post_path.is_file() or not cfg_path.is_file():
        raise ConfigError(
            f"{what} {folder} is not a vbt fit run folder (needs posterior.nc and config.toml); "
            "fit one first, e.g. `vbt fit configs/fit_hopf_dk84.toml --out runs/demo`"
        )
    try:
        fit_cfg = load_fit_config(cfg_path)
    except ConfigError:
        # relative data paths of the original config do not resolve from the run folder;
        # the experiment sections (model, connectome) are all predictions need
        fit_cfg = None
    exp_cfg = fit_cfg.experiment if fit_cfg is not None else load_config(cfg_path)
    if fit_cfg is not None and fit_cfg.forward != "hopf_linear":
        raise ConfigError(
            f"{cfg_path}: vbt predict needs a twin fitted with forward = 'hopf_linear' (a "
            f"linearised Stuart-Landau network), got {fit_cfg.forward!r}"
        )
    if exp_cfg.model.name != "hopf":
        raise ConfigError(f"{cfg_path}: vbt predict needs a Hopf twin, got {exp_cfg.model.name!r}")
    exp = build_experiment(exp_cfg)
    idata = load_netcdf(post_path)
    post = idata.posterior
    if "a" not in post:
        raise ConfigError(f"{post_path}: the posterior has no variable 'a' (regional a, 1/ms)")

    def flat(name):
        v = np.asarray(post[name].values, np.float64)
        return v.reshape((-1,) + v.shape[2:])

    a = flat("a")
    if "G" in post:
        G = flat("G")
    elif fit_cfg is not None and "G" in fit_cfg.fixed:
        G = np.full(a.shape[0], fit_cfg.fixed["G"])
    else:
        raise ConfigError(f"{post_path}: no posterior 'G' and no fixed G in {cfg_path}")
    conn = exp.connectome
    n = conn.n_regions
    if a.ndim != 2 or a.shape[1] != n:
        raise ConfigError(
            f"{post_path}: posterior 'a' has shape {a.shape}, the twin's connectome {n} regions"
        )
    total = a.shape[0]
    if draws is not None and draws < total:
        idx = np.linspace(0, total - 1, draws).round().astype(int)
        a, G = a[idx], G[idx]
    omega = float(np.asarray(exp.model.omega).mean())
    return FittedTwin(
        folder=folder,
        a=a,
        G=G,
        omega=omega,
        weights=np.asarray(conn.weights, np.float64),
        labels=tuple(conn.labels),
        connectome=conn,
        fit_config=cfg_path,
        n_posterior=total,
        experiment_config=exp_cfg,
    )


def build_interventions(cfg: PredictConfig, labels: tuple[str, ...]) -> dict[str, Any]:
    """The intervention objects of the config, placed on the twin's regions.

    Raises:
        ConfigError: unknown region labels or receptor names (naming the table).
    """
    from vbt_jax import interventions as ivs

    out = {}
    for spec in cfg.interventions:
        s = spec.settings
        try:
            if spec.kind == "drug":
                occ = ivs.Occupancy(ec50=s["ec50"], hill=s["hill"], emax=s["emax"])
                if "preset" in s:
                    factory = getattr(ivs, s["preset"])
                    kw = {"efficacy": s["efficacy"]} if "efficacy" in s else {}
                    obj = factory(
                        "hopf",
                        occupancy=occ,
                        map_transform=s["map_transform"],
                        name=spec.name,
                        **kw,
                    )
                else:
                    if "receptor_file" in s:
                        receptor = np.asarray(vbt.load_map(s["receptor_file"], labels).values)
                    else:
                        receptor = s["receptor"]
                    obj = ivs.Drug(
                        spec.name,
                        receptor,
                        s["parameter"],
                        s["efficacy"],
                        occ,
                        mode=s["mode"],
                        map_transform=s["map_transform"],
                    )
                obj.regional_density(labels)  # fail here on a map that does not fit
            elif spec.kind == "lesion":
                obj = ivs.Lesion(
                    regions=s["regions"] or None,
                    edges=s["edges"] or None,
                    factor=s["factor"],
                    directed=s["directed"],
                )
                obj.mask(len(labels), labels)
            else:
                obj = ivs.Stimulation(s["targets"], s["amplitude"], s["onset"], s["duration"])
                obj.offset(len(labels), labels)
        except ConfigError as e:
            raise ConfigError(f"{cfg.path}: [{spec.section}] ({spec.name!r}): {e}") from None
        out[spec.name] = obj
    return out


def _target(cfg: PredictConfig, twin: FittedTwin) -> np.ndarray | None:
    if cfg.target_fc is None:
        return None
    if cfg.target_fc == "dk84":
        if twin.labels != tuple(vbt.dk84().labels):
            raise ConfigError(
                f"{cfg.path}: [predict] target_fc = 'dk84' needs a twin on the DK-84 regions; "
                f"the twin has {len(twin.labels)} regions"
            )
        return np.asarray(vbt.dk84_empirical_fc(), np.float64)
    fc = np.asarray(vbt.load_fc_matrix(cfg.target_fc).fc, np.float64)
    if fc.shape != (len(twin.labels),) * 2:
        raise ConfigError(
            f"{cfg.target_fc}: target FC has shape {fc.shape}, the twin has "
            f"{len(twin.labels)} regions"
        )
    return fc


# ------------------------------------------------------------------------------ the job


def predict_run_folder(
    cfg: PredictConfig,
    out: Path,
    *,
    force: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> Path:
    """Run a predict config end to end and write the run folder ``out``.

    Raises:
        ConfigError: invalid config or twin (before any compilation), or ``out`` exists
            without ``force``.
    """
    from vbt_jax._runfolder import atomic_folder, versions

    from ._output import save_netcdf
    from ._predict import (
        change_summary,
        dose_index,
        predict_interventions,
        prob_improves,
        ranking,
        to_inference_data,
    )

    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not force:
        raise ConfigError(f"output folder {out} already exists; pass --force to replace it")
    twin = load_twin(cfg.twin, cfg.draws, what=f"{cfg.path}: [predict] twin")
    interventions = build_interventions(cfg, twin.labels)
    target = _target(cfg, twin)
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
    sim = _simulate(cfg, twin, interventions, progress)
    checks = _check_observed(cfg, twin, interventions, progress)
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
    with atomic_folder(out) as partial:
        save_netcdf(idata, partial / "predictions.nc")
        _write_csv(partial / "summary.csv", rows)
        if rank is not None:
            _write_csv(
                partial / "ranking.csv",
                [
                    {"intervention": n, "kind": k, "prob_best": float(p)}
                    for n, k, p in zip(pred.names, pred.kinds, rank, strict=True)
                ],
            )
        info["seconds"] = time.perf_counter() - started
        (partial / "twin.json").write_text(json.dumps(info, indent=2) + "\n")
        if checks:
            (partial / "observed_check.json").write_text(
                json.dumps([{**spec, **c.as_dict()} for spec, c in checks], indent=2) + "\n"
            )
        (partial / "config.toml").write_text(cfg.text)
        (partial / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
        figs = []
        if figures:
            from ._predict_plots import prediction_figures

            figs = prediction_figures(partial / "figures", pred, summ, p_imp, rank, k_rep)
            if sim is not None:
                from ._predict_sim import plot_fcd_predictions

                figs.append(plot_fcd_predictions(sim, partial / "figures" / "fcd.png"))
            from ._predict_check import plot_observed_check

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


def _simulate(cfg: PredictConfig, twin: FittedTwin, interventions, progress: bool):
    """The simulated FCD check at the report dose, or None when [predict.simulate] is off."""
    if cfg.sim_draws == 0:
        return None
    from vbt_jax._config import build_experiment

    from ._predict_sim import simulate_interventions

    exp_cfg = twin.experiment_config
    if cfg.sim_duration is not None:
        exp_cfg = exp_cfg.with_simulation(
            duration=cfg.sim_duration,
            transient=min(exp_cfg.simulation.transient, 0.1 * cfg.sim_duration),
        )
    exp = build_experiment(exp_cfg)

    def say(msg):
        if progress:
            print(f"vbt predict: {msg}", file=sys.stderr)

    return simulate_interventions(
        exp,
        twin.a,
        twin.G,
        interventions,
        cfg.report_dose,
        draws=cfg.sim_draws,
        seed=cfg.sim_seed,
        window=cfg.fcd_window,
        step=cfg.fcd_step,
        progress=say,
    )


def _check_observed(cfg: PredictConfig, twin: FittedTwin, interventions, progress: bool):
    """``[(spec dict, ObservedCheck), ...]`` for every ``[[predict.observed]]`` session."""
    import jax.random as jr

    from ._predict_check import check_observed

    out = []
    for spec in cfg.observed:
        where = f"{cfg.path}: [{spec.section}]"
        if spec.fc_pre == "dk84":
            if twin.labels != tuple(vbt.dk84().labels):
                raise ConfigError(f"{where} fc_pre = 'dk84' needs a twin on the DK-84 regions")
            pre = np.asarray(vbt.dk84_empirical_fc(), np.float64)
        else:
            pre = np.asarray(vbt.load_fc_matrix(spec.fc_pre).fc, np.float64)
        post = np.asarray(vbt.load_fc_matrix(spec.fc_post).fc, np.float64)
        n = len(twin.labels)
        for what, m in (("fc_pre", pre), ("fc_post", post)):
            if m.shape != (n, n):
                raise ConfigError(f"{where} {what} is {m.shape}; the twin has {n} regions")
        if progress:
            print(
                f"vbt predict: checking {spec.intervention} at dose {spec.dose:g} against "
                f"{spec.fc_post}",
                file=sys.stderr,
            )
        try:
            c = check_observed(
                twin.a,
                twin.G,
                twin.weights,
                twin.labels,
                interventions[spec.intervention],
                spec.dose,
                pre,
                post,
                spec.n_timepoints,
                key=jr.key(spec.seed),
                prob=cfg.interval,
            )
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
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


def _summary_rows(pred, summ, p_imp) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(pred.names):
        for k, dose in enumerate(pred.doses):
            row = {
                "intervention": name,
                "kind": pred.kinds[i],
                "dose": float(dose),
                "mean_fc_change": float(summ["mean_fc_change_mean"][i, k]),
                "mean_fc_change_lo": float(summ["mean_fc_change_lo"][i, k]),
                "mean_fc_change_hi": float(summ["mean_fc_change_hi"][i, k]),
                "prob_unstable": float(summ["prob_unstable"][i, k]),
            }
            if p_imp is not None:
                row["prob_improves"] = float(p_imp[i, k])
            rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _write_report(
    path, cfg, twin, pred, summ, p_imp, rank, k_rep, figs, sim=None, checks=()
) -> None:
    dose = float(pred.doses[k_rep])
    pct = round(100 * cfg.interval)
    lines = [
        "# Predicted treatment effects",
        "",
        cfg.description or "",
        "",
        f"Twin: `{twin.folder}` ({pred.gbc.shape[0]} of {twin.n_posterior} posterior draws of "
        f"a linearised Stuart-Landau network on {len(twin.labels)} regions). Every draw is "
        "changed by each intervention and its stationary FC computed exactly "
        "(`corr((-B)^-1)`); the spread over draws is the posterior uncertainty of the twin "
        "(the interventions' own constants are fixed as configured). Doses are in each drug's "
        "EC50 unit; lesions and stimulation do not depend on the dose.",
        "",
    ]
    if cfg.target_fc is not None:
        what = (
            "1 - Pearson r of the upper triangles"
            if pred.distance_kind == "corr"
            else "Frobenius norm of the Fisher-z difference"
        )
        lines += [
            f"Target: the FC `{cfg.target_fc}`; distance `{pred.distance_kind}` ({what}). "
            "P(improves) is the posterior probability that the intervention brings the twin's "
            "FC closer to the target than its baseline is.",
            "",
        ]
    lines += ["## Interventions", ""]
    for i, name in enumerate(pred.names):
        lines.append(f"- **{name}** ({pred.kinds[i]})")
    lines += ["", f"## Ranking at dose {dose:g}", ""]
    if rank is not None:
        order = np.argsort(-rank)
        lines += [
            "| rank | intervention | P(best) | P(improves) | mean FC change "
            f"({pct}% interval) | P(unstable) |",
            "|---|---|---|---|---|---|",
        ]
        for j, i in enumerate(order):
            lines.append(
                f"| {j + 1} | {pred.names[i]} | {rank[i]:.2f} | {p_imp[i, k_rep]:.2f} | "
                f"{summ['mean_fc_change_mean'][i, k_rep]:+.4f} "
                f"({summ['mean_fc_change_lo'][i, k_rep]:+.4f}, "
                f"{summ['mean_fc_change_hi'][i, k_rep]:+.4f}) | "
                f"{summ['prob_unstable'][i, k_rep]:.2f} |"
            )
    else:
        lines.append("No target FC: no ranking (set [predict] target_fc).")
    lines += ["", "## Dose-response of the mean FC change", ""]
    head = "| intervention | " + " | ".join(f"dose {d:g}" for d in pred.doses) + " |"
    lines += [head, "|---|" + "---|" * len(pred.doses)]
    for i, name in enumerate(pred.names):
        cells = [
            f"{summ['mean_fc_change_mean'][i, k]:+.4f}"
            + (f" (P {p_imp[i, k]:.2f})" if p_imp is not None else "")
            for k in range(len(pred.doses))
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cells: posterior mean change of the mean FC"
        + (", P(improves)" if p_imp is not None else "")
        + ".",
        "",
        f"## Regions most changed at dose {dose:g} (GBC change, posterior mean)",
        "",
    ]
    for i, name in enumerate(pred.names):
        g = summ["gbc_change_mean"][i, k_rep]
        if not np.isfinite(g).any():
            lines.append(f"- {name}: unstable in every draw")
            continue
        top = np.argsort(-np.abs(np.nan_to_num(g)))[:5]
        parts = [
            f"{pred.labels[r]} {g[r]:+.4f} (P up {summ['prob_gbc_increase'][i, k_rep, r]:.2f})"
            for r in top
        ]
        lines.append(f"- {name}: " + ", ".join(parts))
    if sim is not None:
        lines += [
            "",
            f"## Simulated FCD at dose {sim.dose:g}",
            "",
            f"The nonlinear, noisy twin at {sim.draws.size} posterior draw(s), "
            f"{sim.duration_s:.0f} s each, baseline and every intervention with the same noise "
            f"(FCD windows of {sim.window} samples, step {sim.step}). KS: distance of the "
            "intervention's FCD distribution to the baseline's (same draw, same noise).",
            "",
            "| variant | FCD mean | FCD sd | KS to baseline | mean FC (simulated) |",
            "|---|---|---|---|---|",
        ]
        for v, name in enumerate(sim.names):
            lines.append(
                f"| {name} | {sim.fcd_mean[:, v].mean():.3f} | {sim.fcd_sd[:, v].mean():.3f} | "
                f"{sim.fcd_ks[:, v].mean():.3f} | {sim.mean_fc[:, v].mean():.4f} |"
            )
    if checks:
        lines += [
            "",
            "## Checks against observed on-drug data",
            "",
            "Posterior predictive check of each observed session (replicated pre and post "
            "scans with Fisher-z sampling noise), and the patient's drug efficacy inferred from "
            "the observed change of every edge (see `inference._predict_check`).",
            "",
            "| intervention | dose | observed mean FC change | predicted (interval) | p | "
            "regions covered | efficacy: prior -> posterior (interval) |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec, c in checks:
            d = c.as_dict()
            lo, hi = d["predicted_mean_fc_change_interval"]
            elo, ehi = c.efficacy_interval
            lines.append(
                f"| {spec['intervention']} | {spec['dose']:g} | "
                f"{c.observed_mean_fc_change:+.4f} | "
                f"{d['predicted_mean_fc_change_mean']:+.4f} ({lo:+.4f}, {hi:+.4f}) | "
                f"{c.p_mean_fc:.3f} | {100 * c.gbc_coverage:.0f}% | "
                f"{c.efficacy_prior[0]:+.2f} -> {c.efficacy_mean:+.3f} ({elo:+.3f}, {ehi:+.3f}) |"
            )
    unstable = summ["prob_unstable"]
    if np.any(unstable > 0):
        lines += ["", "## Warnings", ""]
        for i, k in zip(*np.nonzero(unstable > 0), strict=True):
            lines.append(
                f"- {pred.names[i]} at dose {pred.doses[k]:g} pushes "
                f"{100 * unstable[i, k]:.0f}% of the posterior draws past the bifurcation "
                "(no stationary state; left out of the means and intervals)."
            )
    if figs:
        lines += ["", "## Figures", ""]
        for f in figs:
            lines.append(f"![{f.stem}](figures/{f.name})")
    path.write_text("\n".join(lines) + "\n")


__all__ = [
    "FittedTwin",
    "ObservedSpec",
    "InterventionSpec",
    "PredictConfig",
    "build_interventions",
    "load_predict_config",
    "load_twin",
    "parse_predict",
    "predict_run_folder",
]
