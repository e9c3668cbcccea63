"""The predict config (``vbt predict``): a fitted twin, the interventions, the doses, the target.

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
                                 # a file: .npy in region order, or a .csv/.tsv read by
                                 # label_column ("label") and value_column ("value"); its
                                 # values are densities (>= 0; density = false for z-scores)
                                 # and it covers every region (allow_missing = true: the
                                 # regions it lacks get no drug effect)
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

What ``vbt predict`` writes is described in :mod:`inference.treatment._job`.

Everything in the config is checked (and the twin's folder read) before anything is compiled;
errors name the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import vbt_jax as vbt
from vbt_jax import ConfigError
from vbt_jax.jobs import Table, read_toml

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
    "label_column",
    "value_column",
    "density",
    "allow_missing",
)
_MAP_FILE_KEYS = ("label_column", "value_column", "density", "allow_missing")
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
    t = Table(path, section, table, allowed[kind])
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
                s["label_column"] = t.string("label_column", "label")
                s["value_column"] = t.string("value_column", "value")
                s["density"] = t.boolean("density", True)
                s["allow_missing"] = t.boolean("allow_missing", False)
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
        extra = [k for k in _MAP_FILE_KEYS if t.has(k)] if "receptor_file" not in s else []
        if extra:
            raise t.error(f"{', '.join(extra)} apply to a receptor map file (receptor = '*.csv')")
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
    t = Table(path, section, table, _OBSERVED)
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
    t = Table(path, "predict", data["predict"], _PREDICT)
    base = path.parent
    twin = Path(t.string("twin", what="a vbt fit run folder")).expanduser()
    twin = (twin if twin.is_absolute() else (base / twin)).resolve()
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
    st = Table(path, "predict.simulate", data["predict"].get("simulate", {}), _SIMULATE)
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
        fcd_window=st.integer("fcd_window", 83),
        fcd_step=st.integer("fcd_step", 3),
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
        draws=t.integer("draws", None),
        doses=doses,
        report_dose=report_dose,
        target_fc=target,
        distance=t.choice("distance", ("corr", "fisher_z"), "corr"),
        interval=interval,
        bands=bands,
        interventions=ivs,
        chunk=t.integer("chunk", 64),
        observed=observed,
        **sim_kw,
    )


def load_predict_config(path: str | Path) -> PredictConfig:
    """Read and validate a predict config (nothing is loaded or compiled)."""
    path = Path(path)
    text, data = read_toml(path)
    return parse_predict(path.resolve(), text, data)


__all__ = [
    "InterventionSpec",
    "ObservedSpec",
    "PredictConfig",
    "load_predict_config",
    "parse_predict",
]
