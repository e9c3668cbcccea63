"""The ``[fit]`` section of an experiment config: what to fit, to which data, with which engine.

A fit config is a simulation config (``[simulation]``, ``[connectome]``, ``[model]``,
``[coupling]``, ``[noise]``, ``[monitors]``: used for the simulated posterior-predictive
check) plus::

    [fit]
    forward = "hopf_linear"      # analytic linearised Hopf FC; "linearised" (any model at
                                 # its fixed point: BOLD FC with the haemodynamics in the
                                 # linear system when [monitors] has bold, else the neural FC;
                                 # Wong-Wang's FIC solved again at every draw); or "simulate"
    engine = "nuts"              # or "svi"
    seed = 0
    heldout_fraction = 0.5       # share of FC edges kept out of the likelihood (checked after)
    check_draws = 4              # posterior draws simulated for the FC/FCD check (0 = none)
    fcd_window = 83              # FCD window, samples of the FC monitor
    fcd_step = 3
    centring_steps = 2000        # SVI steps that learn a centred = "auto" prior's centring

    [fit.data]
    fc = "dk84"                  # or a path (.npy/.csv/.tsv/BIDS relmat)
    n_timepoints = 1200          # volumes behind the FC (omit for a group average)
    # or one subject's BOLD: bold = "sub-01_bold.nii.gz" + atlas = "atlas.nii.gz" (TR from
    # the header, checked against tr if given), or bold = "regions.tsv" + tr, with
    # time_axis = 0 (rows are volumes, the default) or 1 (rows are regions);
    # optional band = [0.01, 0.1] (Hz). FC and n_timepoints then come from the series.
    fcd_reference = "dk84"       # or a .npz with edges/hist, or omit
    band_power = "meg_hansen"    # joint fMRI + MEG fit (Hansen et al. relative band power)

    [fit.nuts]                   # warmup, samples, chains, chunk, target_accept,
                                 # max_tree_depth, dense_mass
    [fit.svi]                    # guide ("normal"/"lowrank"/"flow"), rank, steps,
                                 # learning_rate, draws, particles, resample (importance-
                                 # resample the draws; with guide = "flow" SVI matches NUTS
                                 # on a regional spread tau)

    [fit.priors.G]
    dist = "lognormal"           # normal / lognormal / uniform / halfnormal / truncnormal
    loc = 8e-4                   # (lognormal: the median)
    scale = 0.5

    [fit.priors.a]               # regional: partial pooling + maps
    regional = true
    link = "neglog"
    loc = -3.7
    scale = 1.5
    maps = ["strength"]          # "strength", "receptor:<name>", "enigma:<disorder>", a path
    tau_scale = 1.0
    scale_by = "G"
    centred = "auto"             # true (centred), false (non-centred, the default) or "auto":
                                 # a centredness per region learnt by a short SVI before
                                 # sampling (near 1 where the data pin a region down)

    [fit.fixed]                  # parameters held fixed (e.g. f_peak = 10.0)

Everything is validated before any data is loaded or anything compiled; errors name the file,
the section and the key.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from vbt_jax import ConfigError
from vbt_jax.config import ExperimentConfig, load_config
from vbt_jax.jobs import Table, read_toml

from ..engines import GUIDES

_FIT = (
    "forward",
    "engine",
    "seed",
    "heldout_fraction",
    "check_draws",
    "fcd_window",
    "fcd_step",
    "centring_steps",
    "data",
    "nuts",
    "svi",
    "priors",
    "fixed",
    "simulate",
)
_DATA = (
    "fc",
    "n_timepoints",
    "fcd_reference",
    "band_power",
    "bold",
    "atlas",
    "tr",
    "band",
    "time_axis",
)
_NUTS = (
    "warmup",
    "samples",
    "chains",
    "chunk",
    "target_accept",
    "max_tree_depth",
    "dense_mass",
    "init_steps",
)
_SVI = ("guide", "rank", "steps", "learning_rate", "draws", "particles", "resample")
_PRIOR = (
    "dist",
    "loc",
    "scale",
    "low",
    "high",
    "unit",
    "regional",
    "link",
    "maps",
    "tau_scale",
    "beta_scale",
    "scale_by",
    "centred",
)
_SIMULATE = ("seeds", "features")


@dataclasses.dataclass(frozen=True)
class PriorSpec:
    name: str
    regional: bool
    dist: str = "normal"
    loc: float = 0.0
    scale: float = 1.0
    low: float = -math.inf
    high: float = math.inf
    link: str = "identity"
    maps: tuple[str, ...] = ()
    tau_scale: float = 0.5
    beta_scale: float = 1.0
    scale_by: str | None = None
    unit: str = ""
    centred: bool | str = False


def _centred(t) -> bool | str:
    v = t.raw("centred", False)
    if not (isinstance(v, bool) or v == "auto"):
        raise t.error(f'centred must be true, false or "auto", got {v!r}')
    return v


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """The validated ``[fit]`` section (see the module docstring)."""

    experiment: ExperimentConfig
    forward: str
    engine: str
    seed: int
    heldout_fraction: float
    check_draws: int
    fcd_window: int
    fcd_step: int
    fc: str | Path
    n_timepoints: int | None
    fcd_reference: str | Path | None
    band_power: str | Path | None
    nuts: dict[str, Any]
    svi: dict[str, Any]
    priors: tuple[PriorSpec, ...]
    fixed: dict[str, float]
    sim_seeds: int = 2
    centring_steps: int = 2000
    bold: Path | None = None
    atlas: Path | None = None
    tr: float | None = None
    bold_band: tuple[float, float] | None = None
    time_axis: int = 0  # of a bold table: 0 rows are volumes, 1 rows are regions

    def quick(self) -> FitConfig:
        """Tiny settings for smoke tests: short chains / few SVI steps, a simulated check of one
        short draw. A linearised network's gradient costs far more than the Hopf
        FC's: its chain is halved again."""
        short = self.forward == "linearised"
        nuts = dict(
            self.nuts,
            warmup=25 if short else 50,
            samples=25 if short else 50,
            chains=1,
            chunk=25,
            init_steps=min(self.nuts["init_steps"], 100),
            max_tree_depth=min(self.nuts["max_tree_depth"], 5 if short else 6),
        )
        svi = dict(self.svi, steps=100, draws=50)
        if self.forward == "simulate":
            experiment = self.experiment.quick()
        else:
            # the check's simulation: the transient and enough samples of the slowest monitor
            # for FC and a few FCD windows (twice the window, and 20 more)
            exp = self.experiment
            period = max(exp.monitors.periods().values())
            sim = exp.simulation
            steps = math.ceil((sim.transient + (2 * self.fcd_window + 20) * period) / sim.dt)
            experiment = exp.with_simulation(duration=min(sim.duration, round(steps * sim.dt, 9)))
        return dataclasses.replace(
            self,
            nuts=nuts,
            svi=svi,
            check_draws=min(self.check_draws, 1),
            centring_steps=min(self.centring_steps, 300),
            experiment=experiment,
        )


def _prior(path: Path, name: str, table: Any) -> PriorSpec:
    t = Table(path, f"fit.priors.{name}", table, _PRIOR)
    regional = t.boolean("regional", False)
    maps = t.raw("maps", [])
    if not isinstance(maps, list) or not all(isinstance(m, str) and m for m in maps):
        raise t.error(f"maps must be a list of map names, got {maps!r}")
    if maps and not regional:
        raise t.error("maps need regional = true")
    kw = dict(
        name=name,
        regional=regional,
        dist=t.choice(
            "dist", ("normal", "lognormal", "uniform", "halfnormal", "truncnormal"), "normal"
        ),
        loc=t.number("loc", 0.0, lower="any"),
        scale=t.number("scale", 1.0, lower="non-negative" if regional else "positive"),
        low=t.number("low", -math.inf, lower="any") if t.has("low") else -math.inf,
        high=t.number("high", math.inf, lower="any") if t.has("high") else math.inf,
        link=t.choice("link", ("identity", "log", "neglog"), "identity"),
        maps=tuple(maps),
        tau_scale=t.number("tau_scale", 0.5, lower="non-negative"),
        beta_scale=t.number("beta_scale", 1.0),
        scale_by=t.string("scale_by") if t.has("scale_by") else None,
        unit=t.raw("unit", ""),
        centred=_centred(t),
    )
    if regional and t.has("dist") and kw["dist"] != "normal":
        raise t.error("a regional prior's group mean is Normal(loc, scale) on the link scale")
    return PriorSpec(**kw)


def parse_fit(exp: ExperimentConfig, data: dict[str, Any]) -> FitConfig:
    """Validate the ``[fit]`` section of an already-validated experiment.

    Raises:
        ConfigError: naming the file, section and key.
    """
    path = exp.path
    if "fit" not in data:
        raise ConfigError(f"{path}: no [fit] section: this is a simulation config (vbt simulate)")
    t = Table(path, "fit", data["fit"], _FIT)
    forward = t.choice("forward", ("hopf_linear", "linearised", "simulate"), "hopf_linear")
    engine = t.choice("engine", ("nuts", "svi"), "nuts")
    seed = t.integer("seed", 0, lower=0)
    frac = t.number("heldout_fraction", 0.5, lower="non-negative")
    if not frac < 1:
        raise t.error(f"heldout_fraction must be in [0, 1), got {frac}")
    if forward == "hopf_linear":
        if exp.model.name != "hopf":
            raise t.error(
                f"forward = 'hopf_linear' needs [model] name = 'hopf', got {exp.model.name!r}"
            )
        if exp.coupling is not None and exp.coupling.kind != "difference":
            raise t.error("forward = 'hopf_linear' needs [coupling] kind = 'difference'")
    if forward == "linearised" and exp.noise is None:
        raise t.error(
            "forward = 'linearised' needs a [noise] section with a non-zero nsig: the FC of the "
            "linearised network is the noise-driven fluctuation around its fixed point"
        )
    base = path.parent
    d = Table(path, "fit.data", data["fit"].get("data", {}), _DATA)
    fc = d.file("fc", base, names=("dk84",)) or "dk84"
    n_tp = d.raw("n_timepoints", None)
    if n_tp is not None and (not isinstance(n_tp, int) or n_tp <= 3):
        raise d.error(f"n_timepoints must be an integer > 3, got {n_tp!r}")
    fcd_ref = d.file("fcd_reference", base, names=("dk84",))
    bold = d.file("bold", base)
    atlas = d.file("atlas", base)
    tr = d.number("tr", unit="s") if d.has("tr") else None
    time_axis = d.raw("time_axis", 0)
    if time_axis not in (0, 1) or isinstance(time_axis, bool):
        raise d.error(
            f"time_axis must be 0 (rows are volumes) or 1 (rows are regions), got {time_axis!r}"
        )
    bold_band = None
    if d.has("band"):
        b = d.raw("band")
        if not (
            isinstance(b, list)
            and len(b) == 2
            and all(isinstance(x, int | float) for x in b)
            and 0 <= b[0] < b[1]
        ):
            raise d.error(f"band must be [low_hz, high_hz] with 0 <= low < high, got {b!r}")
        bold_band = (float(b[0]), float(b[1]))
    if bold is not None:
        if d.has("fc"):
            raise d.error("give either fc (a matrix) or bold (time series), not both")
        nifti = str(bold).endswith((".nii", ".nii.gz"))
        if nifti and atlas is None:
            raise d.error(f"bold {bold.name} is a NIfTI image: give its atlas label image too")
        if not nifti and tr is None:
            raise d.error(f"bold {bold.name} is a region-by-time table: give its tr (seconds)")
        if n_tp is not None:
            raise d.error("n_timepoints is read from the bold series; do not give it")
        if nifti and d.has("time_axis"):
            raise d.error("time_axis applies to a table; a NIfTI image has its own axes")
    elif atlas is not None or bold_band is not None or d.has("time_axis"):
        raise d.error("atlas, band and time_axis apply to a bold series; give bold")
    band = d.file("band_power", base, names=("meg_hansen",))
    if band is not None and forward == "linearised":
        raise d.error(
            "band_power needs forward = 'hopf_linear' or 'simulate'; forward = 'linearised' "
            "predicts FC"
        )
    n = Table(path, "fit.nuts", data["fit"].get("nuts", {}), _NUTS)
    nuts = dict(
        warmup=n.integer("warmup", 500),
        samples=n.integer("samples", 1000),
        chains=n.integer("chains", 2),
        chunk=n.integer("chunk", 250),
        target_accept=n.number("target_accept", 0.9),
        max_tree_depth=n.integer("max_tree_depth", 8),
        dense_mass=n.boolean("dense_mass", False),
        init_steps=n.integer("init_steps", 500, lower=0),
    )
    if not nuts["target_accept"] < 1:
        raise n.error(f"target_accept must be in (0, 1), got {nuts['target_accept']}")
    s = Table(path, "fit.svi", data["fit"].get("svi", {}), _SVI)
    svi = dict(
        guide=s.choice("guide", GUIDES, "lowrank"),
        rank=s.integer("rank", 8) if s.has("rank") else None,
        steps=s.integer("steps", 3000),
        learning_rate=s.number("learning_rate", 0.01),
        draws=s.integer("draws", 1000),
        particles=s.integer("particles", 1),
        resample=s.boolean("resample", False),
    )
    pri = data["fit"].get("priors", {})
    if not isinstance(pri, dict) or not pri:
        raise t.error("needs a [fit.priors.<parameter>] table for each fitted parameter")
    priors = tuple(_prior(path, k, v) for k, v in pri.items())
    fx = Table(
        path, "fit.fixed", data["fit"].get("fixed", {}), tuple(data["fit"].get("fixed", {}).keys())
    )
    fixed = {k: fx.number(k, lower="any") for k in fx.table}
    both = {p.name for p in priors} & set(fixed)
    if both:
        raise t.error(f"parameters both fixed and given a prior: {sorted(both)}")
    globals_ = {p.name for p in priors if not p.regional} | set(fixed)
    for p in priors:
        if p.scale_by is not None and p.scale_by not in globals_:
            raise ConfigError(
                f"{path}: [fit.priors.{p.name}] scale_by = {p.scale_by!r} is not a global "
                f"parameter (globals: {sorted(globals_)})"
            )
    if forward == "hopf_linear":
        need = {"a", "G"} | ({"f_peak"} if band is not None else set())
        missing = need - {p.name for p in priors} - set(fixed)
        if missing:
            raise t.error(
                f"forward = 'hopf_linear' needs a prior or fixed value for {sorted(missing)}"
            )
    sim = Table(path, "fit.simulate", data["fit"].get("simulate", {}), _SIMULATE)
    return FitConfig(
        experiment=exp,
        forward=forward,
        engine=engine,
        seed=seed,
        heldout_fraction=frac,
        check_draws=t.integer("check_draws", 4, lower=0),
        fcd_window=t.integer("fcd_window", 83, lower=2),
        fcd_step=t.integer("fcd_step", 3),
        centring_steps=t.integer("centring_steps", 2000, lower=1),
        fc=fc,
        n_timepoints=n_tp,
        fcd_reference=fcd_ref,
        band_power=band,
        nuts=nuts,
        svi=svi,
        priors=priors,
        fixed=fixed,
        sim_seeds=sim.integer("seeds", 2),
        bold=bold,
        atlas=atlas,
        tr=tr,
        bold_band=bold_band,
        time_axis=time_axis,
    )


def load_fit_config(path: str | Path) -> FitConfig:
    """Read and validate a fit config (the experiment sections and ``[fit]``)."""
    exp = load_config(path, extra_sections=("fit",))
    _, data = read_toml(path)
    return parse_fit(exp, data)


__all__ = ["FitConfig", "PriorSpec", "parse_fit", "load_fit_config"]
