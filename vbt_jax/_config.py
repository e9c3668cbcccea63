"""Experiment configuration files (TOML) loaded into frozen, validated objects.

A configuration is read and checked completely *before* anything is compiled:
:func:`load_config` parses the file and checks every key, type, unit and name that does not need
the connectome's data; :func:`build_experiment` then loads the connectome (and EEG gain), checks
the per-region lengths against its N and builds the simulator objects. Every error is a
:class:`~vbt_jax.ConfigError` whose message starts with the file path and names the section and
key at fault, e.g. ``configs/x.toml: [simulation] dt must be a positive number (ms), got 'abc'``.

Units: time in ms, lengths in mm, speeds in mm/ms (= m/s).

Schema (``*`` = required; anything not listed is an error naming the key and the allowed ones)::

    description = "free text"          # optional, top level

    [simulation]
    dt*         = 0.1        # integration step [ms], > 0
    duration*   = 60000.0    # simulated time [ms], a whole number of steps
    seed        = 0          # int in [0, 2**32): PRNG key for noise and the random initial state
    solver      = "heun"     # "heun" | "euler"
    dtype       = "float32"  # "float32" | "float64" (float64 runs inside jax.enable_x64)
    speed       = 3.0        # conduction speed [mm/ms]; delays = rint(lengths / speed / dt)
    rng         = "hash"     # noise generator: "hash" (fast) | "threefry"
    transient   = 0.0        # [ms] initial time left out of the FC and of the figures'
                             # z-scores and spectra (the data are saved in full)

    [connectome]
    source         = "dk84"  # "dk84" (shipped HCP DK 84 regions) | "tvb:76" (tvb-data; 66, 68,
                             # 76, 96, 192) | a path (TVB .zip, BIDS relmat folder/file, .npy,
                             # .csv, .tsv, .txt); relative paths are relative to this file
    lengths        = "L.npy" # tract lengths [mm] for a plain matrix source (default: no delays)
    normalise      = "max"   # "max" | "log" | "rowsum" | "none"
    remove_diagonal = false  # zero the self-connections (applied first)
    symmetrise     = false   # (W + W.T) / 2 for weights and lengths (applied second;
                             # normalise comes last)
    allow_isolated = ...     # accept regions without connections; default true for "tvb:*"
                             # (connectivity_76/_192 hold placeholders), false otherwise

    [model]
    name* = "mpr"            # "mpr" | "jansen_rit" | "wong_wang" | "hopf"
    fic   = false            # wong_wang only: set J_i per region by feedback inhibition control
    fic_rate = 3.0           # (models.wong_wang.with_fic) so every E pool fires at fic_rate [Hz]
    [model.parameters]       # field name of the model class -> number or list of N numbers
    eta = -4.6
    [model.initial_state]    # optional; every state variable -> number or list of N numbers
    r = 0.1                  # (absent: drawn uniformly from the model's state_ranges)
    V = -2.0

    [coupling]               # optional (absent: the model's default coupling)
    kind = "linear"          # "linear" (G, b) | "difference" (G) | "sigmoidal" (G, cmin, cmax,
                             # midpoint, r); absent: the model's default coupling instance
    G    = 0.5               # the other keys override the coupling's fields (number or list
                             # of N)

    [noise]                  # optional (absent, or all nsig 0: deterministic)
    nsig = 0.01              # TVB convention (increment sqrt(2 nsig dt) z): one number, a list
                             # with one number per state variable, or a table {state = number}
                             # (states left out get 0)

    [monitors]               # at least one of (defaults: period 1 ms, tr 720 ms, step 1 ms):
    raw  = { period = 1.0, variables = ["r", "V"] }   # instantaneous states every period [ms]
    tavg = { period = 1.0, variables = ["r"] }        # window means; variables default: all
    bold = { tr = 720.0, step = 1.0, scale = 1.0 }    # BOLD every tr [ms] (Balloon-Windkessel
                                                      # stepped every `step` ms)
    eeg  = { period = 1.0, gain = "tvb62", average_reference = true }
                             # gain: "tvb62" (tvb-data's 62 x 76 gain, needs "tvb:76") or a
                             # path to an (M, N) .npy; period [ms]

Every monitor period (and the BOLD ``tr`` and ``step``) must be a whole number of ``dt``, ``tr``
a whole number of ``step``, and ``duration`` must give at least one sample of every monitor.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._errors import ConfigError
from .models import MODELS

# --------------------------------------------------------------------------- registries

#: Model names usable in ``[model] name`` -> model class (the models package registry).
MODEL_REGISTRY: Mapping[str, type] = MappingProxyType(MODELS)

#: Coupling kinds usable in ``[coupling] kind`` -> class name in ``vbt_jax._coupling``.
COUPLING_KINDS: Mapping[str, str] = MappingProxyType(
    {"linear": "Linear", "difference": "Difference", "sigmoidal": "Sigmoidal"}
)

TVB_SIZES = (66, 68, 76, 96, 192)
NORMALISATIONS = ("max", "log", "rowsum", "none")
SOLVERS = ("heun", "euler")
DTYPES = ("float32", "float64")
RNGS = ("hash", "threefry")

_TOP = (
    "description",
    "simulation",
    "connectome",
    "model",
    "coupling",
    "noise",
    "monitors",
    "fit",
    "predict",
)
_SIMULATION = ("dt", "duration", "seed", "solver", "dtype", "speed", "rng", "transient")
_CONNECTOME = (
    "source",
    "lengths",
    "normalise",
    "remove_diagonal",
    "symmetrise",
    "allow_isolated",
)
_MODEL = ("name", "fic", "fic_rate", "parameters", "initial_state")
_MONITORS = ("raw", "tavg", "bold", "eeg")
_RAW = ("period", "variables")
_BOLD = ("tr", "step", "scale")
_EEG = ("period", "gain", "average_reference")
_PLAIN_MATRIX = (".npy", ".csv", ".tsv", ".txt")

_REQUIRED = object()

Value = float | tuple[float, ...]
"""A config number: a scalar, or one value per region (or per state variable for ``nsig``)."""


def model_class(name: str) -> type:
    """The model class registered as ``name`` (see :data:`vbt_jax.models.MODELS`).

    Raises:
        ConfigError: ``name`` is not registered.
    """
    if name not in MODEL_REGISTRY:
        raise ConfigError(f"unknown model {name!r}; expected one of: {', '.join(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[name]


def available_models() -> dict[str, type]:
    """The registered models, name -> class."""
    return dict(MODEL_REGISTRY)


# --------------------------------------------------------------------------- frozen config


@dataclass(frozen=True)
class SimulationConfig:
    """``[simulation]``: see the module docstring. Times in ms, speed in mm/ms."""

    dt: float
    duration: float
    seed: int = 0
    solver: str = "heun"
    dtype: str = "float32"
    speed: float = 3.0
    rng: str = "hash"
    transient: float = 0.0


@dataclass(frozen=True)
class ConnectomeConfig:
    """``[connectome]``: ``source`` is ``"dk84"``, ``"tvb:<n>"`` or an absolute path."""

    source: str
    lengths: str | None = None
    normalise: str = "max"
    remove_diagonal: bool = False
    symmetrise: bool = False
    allow_isolated: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: registry name, parameter overrides and an optional initial state."""

    name: str
    parameters: Mapping[str, Value] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    initial_state: Mapping[str, Value] | None = None
    fic: bool = False
    fic_rate: float = 3.0


@dataclass(frozen=True)
class CouplingConfig:
    """``[coupling]``: ``kind`` (None: the model's default) and field overrides."""

    kind: str | None
    parameters: Mapping[str, Value] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )


@dataclass(frozen=True)
class NoiseConfig:
    """``[noise]``: additive noise, one ``nsig`` per state variable (TVB convention)."""

    nsig: tuple[float, ...]


@dataclass(frozen=True)
class RawConfig:
    """``[monitors.raw]`` and ``[monitors.tavg]``: period [ms], variables (None = all)."""

    period: float = 1.0
    variables: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BoldConfig:
    """``[monitors.bold]``: repetition time ``tr`` [ms], haemodynamic ``step`` [ms], ``scale``."""

    tr: float = 720.0
    step: float = 1.0
    scale: float = 1.0


@dataclass(frozen=True)
class EEGConfig:
    """``[monitors.eeg]``: ``gain`` is ``"tvb62"`` or an absolute ``.npy`` path."""

    gain: str
    period: float = 1.0
    average_reference: bool = True


@dataclass(frozen=True)
class MonitorsConfig:
    """``[monitors]``: each monitor is None when absent (at least one is set)."""

    raw: RawConfig | None = None
    tavg: RawConfig | None = None
    bold: BoldConfig | None = None
    eeg: EEGConfig | None = None

    def periods(self) -> dict[str, float]:
        """Sampling period [ms] of each configured monitor (the BOLD one is its TR)."""
        out = {}
        for name in _MONITORS:
            m = getattr(self, name)
            if m is not None:
                out[name] = m.tr if name == "bold" else m.period
        return out


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment file, validated. Build the simulator objects with
    :func:`build_experiment`.

    Attributes:
        path: the file it was read from (absolute).
        text: the file's text (copied into run folders).
        description: the optional top-level ``description``.
        simulation, connectome, model, coupling, noise, monitors: the sections (``coupling``
            and ``noise`` are None when absent; ``noise`` also when every nsig is 0).
    """

    path: Path
    text: str
    description: str
    simulation: SimulationConfig
    connectome: ConnectomeConfig
    model: ModelConfig
    coupling: CouplingConfig | None
    noise: NoiseConfig | None
    monitors: MonitorsConfig

    def with_simulation(self, **changes: Any) -> ExperimentConfig:
        """Return a copy with ``[simulation]`` keys replaced (e.g. ``seed=3``), re-validated.

        Raises:
            ConfigError: a replaced value is invalid (named as the ``[simulation]`` key).
        """
        table = {**dataclasses.asdict(self.simulation), **changes}
        sim = _parse_simulation(_Table(self.path, "simulation", table, _SIMULATION))
        _check_timing(self.path, sim, self.monitors)
        return dataclasses.replace(self, simulation=sim)

    def quick(self) -> ExperimentConfig:
        """Tiny settings for smoke tests: the duration cut to three samples of the slowest
        monitor (at least 100 ms, at most the configured duration) and no transient."""
        longest = max(self.monitors.periods().values())
        dt = self.simulation.dt
        target = max(3.0 * longest, 100.0)
        duration = min(self.simulation.duration, round(math.ceil(target / dt - 1e-9) * dt, 9))
        return self.with_simulation(duration=duration, transient=0.0)


# --------------------------------------------------------------------------- table reader


def _suggest(key: str, allowed: tuple[str, ...]) -> str:
    low = key.lower()
    close = [a for a in allowed if len(low) >= 2 and a.lower().startswith(low)]
    close = close or difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class _Table:
    """One TOML table being read: typed getters whose errors name the file, section and key."""

    def __init__(self, path: Path, section: str, table: Any, allowed: tuple[str, ...]):
        self.path, self.section = path, section
        if not isinstance(table, dict):
            raise self.error(f"must be a table, got {table!r}")
        for key in table:
            if key not in allowed:
                raise self.error(
                    f"unknown key {key!r}{_suggest(key, allowed)}; expected one of: "
                    f"{', '.join(allowed)}"
                )
        self.table = table

    def error(self, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{self.section}] {msg}")

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str, default: Any = _REQUIRED, what: str = "") -> Any:
        if key in self.table:
            return self.table[key]
        if default is _REQUIRED:
            raise self.error(f"missing required key {key!r}{f' ({what})' if what else ''}")
        return default

    def number(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        unit: str = "",
        lower: str = "positive",
        what: str = "",
    ) -> float:
        """A finite number; ``lower`` is "positive", "non-negative" or "any"."""
        v = self.raw(key, default, what or unit)
        adjective = "" if lower == "any" else f"{lower} "
        ok = _is_number(v) and math.isfinite(v)
        ok = ok and (lower != "positive" or v > 0) and (lower != "non-negative" or v >= 0)
        if not ok:
            unit_txt = f" ({unit})" if unit else ""
            raise self.error(f"{key} must be a {adjective}number{unit_txt}, got {v!r}")
        return float(v)

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        v = self.raw(key, default)
        if not isinstance(v, bool):
            raise self.error(f"{key} must be true or false, got {v!r}")
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _REQUIRED) -> str:
        v = self.raw(key, default)
        if v not in choices:
            raise self.error(
                f"{key} must be one of {', '.join(repr(c) for c in choices)}, got {v!r}"
            )
        return v

    def string(self, key: str, default: Any = _REQUIRED, what: str = "") -> str:
        v = self.raw(key, default, what)
        if not isinstance(v, str) or not v:
            raise self.error(
                f"{key} must be a non-empty string{f' ({what})' if what else ''}, got {v!r}"
            )
        return v

    def value(self, key: str, *, lower: str = "any", what: str = "") -> Value:
        """A number, or a non-empty list of numbers (stored as a tuple)."""
        v = self.table[key]
        adjective = "" if lower == "any" else f"{lower} "

        def ok(x: Any) -> bool:
            return (
                _is_number(x)
                and math.isfinite(x)
                and (lower != "non-negative" or x >= 0)
                and (lower != "positive" or x > 0)
            )

        if ok(v):
            return float(v)
        if isinstance(v, list) and v and all(ok(x) for x in v):
            return tuple(float(x) for x in v)
        raise self.error(
            f"{key} must be a {adjective}number or a list of {adjective}numbers"
            f"{f' ({what})' if what else ''}, got {v!r}"
        )


def _resolve_path(t: _Table, key: str, base: Path) -> Path:
    raw = t.string(key)
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = base / p
    p = p.resolve()
    if not p.exists():
        raise t.error(f"{key} {raw!r} not found (resolved to {p})")
    return p


def _steps_ok(value: float, dt: float) -> bool:
    n = value / dt
    k = round(n)
    return k >= 1 and abs(n - k) <= 1e-6 * max(1.0, n)


# --------------------------------------------------------------------------- sections


def _parse_simulation(t: _Table) -> SimulationConfig:
    dt = t.number("dt", unit="ms", what="integration step, ms")
    duration = t.number("duration", unit="ms", what="simulated time, ms")
    seed = t.raw("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise t.error(f"seed must be an integer in [0, 2**32), got {seed!r}")
    sim = SimulationConfig(
        dt=dt,
        duration=duration,
        seed=seed,
        solver=t.choice("solver", SOLVERS, "heun"),
        dtype=t.choice("dtype", DTYPES, "float32"),
        speed=t.number("speed", 3.0, unit="mm/ms"),
        rng=t.choice("rng", RNGS, "hash"),
        transient=t.number("transient", 0.0, unit="ms", lower="non-negative"),
    )
    if not _steps_ok(duration, dt):
        raise t.error(f"duration must be a whole number of steps dt={dt} ms, got {duration!r}")
    if sim.transient >= duration:
        raise t.error(
            f"transient must be shorter than duration={duration} ms, got {sim.transient!r}"
        )
    return sim


def _parse_connectome(t: _Table, base: Path) -> ConnectomeConfig:
    src = t.string("source", "dk84", what="'dk84', 'tvb:<n>' or a path")
    if src == "dk84":
        source = src
    elif src.startswith("tvb:"):
        n = src[4:]
        if not n.isdigit() or int(n) not in TVB_SIZES:
            raise t.error(
                f"source {src!r}: tvb-data ships connectivity_{{{', '.join(map(str, TVB_SIZES))}}}"
                f"; write e.g. 'tvb:76'"
            )
        source = f"tvb:{int(n)}"
    else:
        source = str(_resolve_path(t, "source", base))
    lengths = None
    if t.has("lengths"):
        if (
            source == "dk84"
            or source.startswith("tvb:")
            or Path(source).suffix.lower() not in (_PLAIN_MATRIX)
        ):
            raise t.error(
                f"lengths is only for plain matrix sources ({', '.join(_PLAIN_MATRIX)}); "
                f"source {src!r} carries its own lengths"
            )
        lengths = str(_resolve_path(t, "lengths", base))
    return ConnectomeConfig(
        source=source,
        lengths=lengths,
        normalise=t.choice("normalise", NORMALISATIONS, "max"),
        remove_diagonal=t.boolean("remove_diagonal", False),
        symmetrise=t.boolean("symmetrise", False),
        allow_isolated=t.boolean("allow_isolated", source.startswith("tvb:")),
    )


def _model_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _parse_model(t: _Table, path: Path) -> tuple[ModelConfig, type]:
    name = t.string("name", what=f"one of {', '.join(MODEL_REGISTRY)}")
    if name not in MODEL_REGISTRY:
        raise t.error(
            f"name {name!r} is not a model{_suggest(name, tuple(MODEL_REGISTRY))}; expected one "
            f"of: {', '.join(MODEL_REGISTRY)}"
        )
    try:
        cls = model_class(name)
    except ConfigError as e:
        raise t.error(f"name: {e}") from e
    fic = t.boolean("fic", False)
    if (fic or t.has("fic_rate")) and name != "wong_wang":
        raise t.error(f"fic and fic_rate apply to the wong_wang model only, not {name!r}")
    fic_rate = t.number("fic_rate", 3.0, unit="Hz")
    fields = _model_fields(cls)
    if fic and "J_i" in t.raw("parameters", {}):
        raise t.error("fic = true sets J_i per region; remove J_i from [model.parameters]")
    pt = _Table(path, "model.parameters", t.raw("parameters", {}), fields)
    params = {k: pt.value(k, what=f"a value of {cls.__name__}.{k}") for k in pt.table}
    init = None
    if t.has("initial_state"):
        states = tuple(cls.state_names)
        it = _Table(path, "model.initial_state", t.raw("initial_state"), states)
        missing = [s for s in states if s not in it.table]
        if missing:
            raise it.error(
                f"missing state variable(s) {', '.join(map(repr, missing))}; give every one of "
                f"{', '.join(states)} (or drop [model.initial_state] for a random initial state)"
            )
        init = MappingProxyType({s: it.value(s) for s in states})
    cfg = ModelConfig(
        name=name,
        parameters=MappingProxyType(params),
        initial_state=init,
        fic=fic,
        fic_rate=fic_rate,
    )
    return cfg, cls


def _coupling_class(kind: str) -> type:
    from . import _coupling

    return getattr(_coupling, COUPLING_KINDS[kind])


def _parse_coupling(path: Path, table: Any, model_cls: type) -> CouplingConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [coupling] must be a table, got {table!r}")
    kind = table.get("kind")
    if kind is None:
        # the model's own default coupling (its field values included) with overrides
        cls = type(model_cls().default_coupling())
    else:
        if kind not in COUPLING_KINDS:
            raise ConfigError(
                f"{path}: [coupling] kind must be one of "
                f"{', '.join(repr(k) for k in COUPLING_KINDS)}, got {kind!r}"
            )
        cls = _coupling_class(kind)
    fields = _model_fields(cls)
    t = _Table(path, "coupling", table, ("kind",) + fields)
    params = {k: t.value(k, what=f"a value of {cls.__name__}.{k}") for k in t.table if k != "kind"}
    return CouplingConfig(kind=kind, parameters=MappingProxyType(params))


def _parse_noise(t: _Table, path: Path, states: tuple[str, ...]) -> NoiseConfig | None:
    v = t.raw("nsig", what="noise intensity per state variable")
    if isinstance(v, dict):
        nt = _Table(path, "noise.nsig", v, states)
        nsig = tuple(nt.number(s, lower="non-negative") if s in v else 0.0 for s in states)
    else:
        val = t.value("nsig", lower="non-negative", what=f"one per state variable {states}")
        if isinstance(val, tuple):
            if len(val) != len(states):
                raise t.error(
                    f"nsig has {len(val)} values; the model has {len(states)} state variables "
                    f"{states}"
                )
            nsig = val
        else:
            nsig = (val,) * len(states)
    if all(x == 0 for x in nsig):
        return None
    return NoiseConfig(nsig=nsig)


def _parse_variables(t: _Table, states: tuple[str, ...]) -> tuple[str, ...] | None:
    if not t.has("variables"):
        return None
    v = t.raw("variables")
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(s, str) for s in v):
        raise t.error(f"variables must be a list of state variable names {states}, got {v!r}")
    for s in v:
        if s not in states:
            raise t.error(
                f"variables: {s!r} is not a state variable{_suggest(s, states)}; expected some "
                f"of: {', '.join(states)}"
            )
    return tuple(v)


def _parse_monitors(t: _Table, path: Path, states: tuple[str, ...], base: Path) -> MonitorsConfig:
    out: dict[str, Any] = {}
    for name in ("raw", "tavg"):
        if t.has(name):
            mt = _Table(path, f"monitors.{name}", t.raw(name), _RAW)
            out[name] = RawConfig(
                period=mt.number("period", 1.0, unit="ms"),
                variables=_parse_variables(mt, states),
            )
    if t.has("bold"):
        mt = _Table(path, "monitors.bold", t.raw("bold"), _BOLD)
        out["bold"] = BoldConfig(
            tr=mt.number("tr", 720.0, unit="ms"),
            step=mt.number("step", 1.0, unit="ms"),
            scale=mt.number("scale", 1.0, lower="any"),
        )
    if t.has("eeg"):
        mt = _Table(path, "monitors.eeg", t.raw("eeg"), _EEG)
        gain = mt.string("gain", what="'tvb62' or a path to an (M, N) .npy")
        if gain != "tvb62":
            p = _resolve_path(mt, "gain", base)
            if p.suffix.lower() != ".npy":
                raise mt.error(f"gain must be 'tvb62' or a .npy file, got {gain!r}")
            gain = str(p)
        out["eeg"] = EEGConfig(
            gain=gain,
            period=mt.number("period", 1.0, unit="ms"),
            average_reference=mt.boolean("average_reference", True),
        )
    if not out:
        raise t.error(f"no monitor configured; add at least one of: {', '.join(_MONITORS)}")
    return MonitorsConfig(**out)


def _check_timing(path: Path, sim: SimulationConfig, mon: MonitorsConfig) -> None:
    dt = sim.dt

    def err(section: str, msg: str) -> ConfigError:
        return ConfigError(f"{path}: [{section}] {msg}")

    for name, period in mon.periods().items():
        key = "tr" if name == "bold" else "period"
        if not _steps_ok(period, dt):
            raise err(f"monitors.{name}", f"{key}={period} ms is not a whole number of dt={dt} ms")
        if period > sim.duration:
            raise err(
                f"monitors.{name}",
                f"{key}={period} ms is longer than [simulation] duration={sim.duration} ms: "
                f"no sample would be taken",
            )
    if mon.bold is not None:
        if not _steps_ok(mon.bold.step, dt):
            raise err("monitors.bold", f"step={mon.bold.step} ms is not a whole number of dt={dt}")
        if not _steps_ok(mon.bold.tr, mon.bold.step):
            raise err(
                "monitors.bold",
                f"tr={mon.bold.tr} ms is not a whole number of step={mon.bold.step} ms",
            )


# --------------------------------------------------------------------------- entry points


def parse_config(data: Mapping[str, Any], path: str | Path, text: str = "") -> ExperimentConfig:
    """Validate an already-parsed TOML document (a dict) into an :class:`ExperimentConfig`.

    Args:
        data: the document, as returned by ``tomllib.loads``.
        path: the file it came from; relative paths inside resolve against its folder, and
            every error message starts with it.
        text: the document's text, kept for copying into run folders.

    Raises:
        ConfigError: naming the file, the section and the key at fault.
    """
    path = Path(path).resolve()
    base = path.parent
    top = _Table(path, "top level", dict(data), _TOP)
    description = top.raw("description", "")
    if not isinstance(description, str):
        raise top.error(f"description must be a string, got {description!r}")
    for section in ("simulation", "model", "monitors"):
        if not top.has(section):
            raise ConfigError(f"{path}: missing required section [{section}]")
    sim = _parse_simulation(_Table(path, "simulation", data["simulation"], _SIMULATION))
    conn = _parse_connectome(
        _Table(path, "connectome", data.get("connectome", {}), _CONNECTOME), base
    )
    model, cls = _parse_model(_Table(path, "model", data["model"], _MODEL), path)
    states = tuple(cls.state_names)
    coupling = _parse_coupling(path, data["coupling"], cls) if "coupling" in data else None
    noise = None
    if "noise" in data:
        noise = _parse_noise(_Table(path, "noise", data["noise"], ("nsig",)), path, states)
    monitors = _parse_monitors(
        _Table(path, "monitors", data["monitors"], _MONITORS), path, states, base
    )
    _check_timing(path, sim, monitors)
    return ExperimentConfig(
        path=path,
        text=text,
        description=description,
        simulation=sim,
        connectome=conn,
        model=model,
        coupling=coupling,
        noise=noise,
        monitors=monitors,
    )


def find_config(name: str) -> Path:
    """The shipped config ``configs/<name>``, looked up from the working directory upwards,
    then beside the package (an editable install): what a notebook run from anywhere in the
    repository needs."""
    here = Path.cwd().resolve()
    for base in (here, *here.parents, Path(__file__).resolve().parents[1]):
        if (base / "configs" / name).is_file():
            return base / "configs" / name
    raise FileNotFoundError(f"configs/{name} not found above {here} nor beside the package")


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a TOML experiment file (see the module docstring for the schema).

    Nothing is compiled and the connectome is not loaded yet (see :func:`build_experiment`).

    Args:
        path: the ``.toml`` file.

    Returns:
        A frozen :class:`ExperimentConfig`.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or an invalid section/key (the message
            starts with the path and names the key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config file ({e})") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    return parse_config(data, path, text)


# --------------------------------------------------------------------------- building


@dataclass(frozen=True, eq=False)
class Experiment:
    """The simulator objects built from an :class:`ExperimentConfig` (all checks passed).

    Attributes:
        config: the configuration.
        model, connectome, coupling, noise: arguments for :func:`vbt_jax.simulate`
            (``noise`` None = deterministic).
        monitors: the monitor instances, in the order raw, tavg, bold, eeg.
        initial_state: ``(n_states, N)`` NumPy array, or None (random, from the seed).
        eeg_channels: sensor names of the EEG gain rows (None without EEG).
    """

    config: ExperimentConfig
    model: Any
    connectome: Any
    coupling: Any
    noise: Any
    monitors: tuple[Any, ...]
    initial_state: Any
    eeg_channels: tuple[str, ...] | None

    def simulate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`vbt_jax.simulate` (all but key and initial state)."""
        import jax.numpy as jnp

        sim = self.config.simulation
        return dict(
            dt=sim.dt,
            duration=sim.duration,
            coupling=self.coupling,
            noise=self.noise,
            solver=sim.solver,
            monitors=self.monitors,
            speed=sim.speed,
            dtype=jnp.float64 if sim.dtype == "float64" else jnp.float32,
            rng=sim.rng,
        )


def _per_region(path: Path, section: str, key: str, v: Value, n: int) -> Any:
    import numpy as np

    if isinstance(v, tuple):
        if len(v) != n:
            raise ConfigError(
                f"{path}: [{section}] {key} has {len(v)} values; the connectome has {n} regions "
                f"(give one number, or a list of {n})"
            )
        return np.asarray(v, dtype=np.float64)
    return v


def _load_connectome(cfg: ExperimentConfig):
    import numpy as np

    from . import _connectome, _datasets

    c = cfg.connectome
    try:
        if c.source == "dk84":
            conn = _datasets.dk84()
        elif c.source.startswith("tvb:"):
            conn = _connectome.tvb_connectivity(int(c.source[4:]), allow_isolated=c.allow_isolated)
        else:
            kwargs: dict[str, Any] = {"allow_isolated": c.allow_isolated}
            if c.lengths is not None:
                kwargs["lengths_path"] = c.lengths
            conn = _connectome.load_connectome(c.source, **kwargs)
        if c.remove_diagonal:
            conn = conn.without_diagonal()
        if c.symmetrise:
            conn = conn.symmetrised()
        conn = conn.normalised(None if c.normalise == "none" else c.normalise)
    except (ValueError, ImportError) as e:
        raise ConfigError(f"{cfg.path}: [connectome] source {c.source!r}: {e}") from e
    if not np.any(np.asarray(conn.weights)):
        raise ConfigError(f"{cfg.path}: [connectome] source {c.source!r}: all weights are zero")
    return conn


def _load_gain(cfg: ExperimentConfig, n: int) -> tuple[Any, tuple[str, ...]]:
    import numpy as np

    e = cfg.monitors.eeg
    assert e is not None
    where = f"{cfg.path}: [monitors.eeg] gain {e.gain!r}"
    if e.gain == "tvb62":
        from ._leadfield import load_tvb_eeg_gain

        if n != 76:
            raise ConfigError(
                f"{where} is the 62 x 76 gain of tvb-data's connectivity_76; the connectome has "
                f"{n} regions (use source = 'tvb:76', or give an (M, {n}) .npy)"
            )
        try:
            gain, labels = load_tvb_eeg_gain()
        except (ImportError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from err
        return gain, tuple(labels)
    try:
        gain = np.load(e.gain, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{where}: not a readable .npy array ({err})") from err
    if gain.ndim != 2 or gain.shape[1] != n or not np.issubdtype(gain.dtype, np.number):
        raise ConfigError(
            f"{where} must be a numeric (M, {n}) matrix for {n} regions, got shape {gain.shape} "
            f"dtype {gain.dtype}"
        )
    if not np.all(np.isfinite(gain)):
        raise ConfigError(f"{where} holds NaN or inf values")
    return gain.astype(np.float64), tuple(f"ch{i}" for i in range(gain.shape[0]))


def _monitor(name: str, path: Path, **kwargs: Any) -> Any:
    from . import monitors

    cls_name = {"raw": "Raw", "tavg": "TemporalAverage", "bold": "Bold", "eeg": "EEG"}[name]
    cls = getattr(monitors, cls_name, None)
    if cls is None:
        raise ConfigError(
            f"{path}: [monitors.{name}] vbt_jax.monitors.{cls_name} is not available in this "
            f"version"
        )
    return cls(**kwargs)


def _apply_fic(config: ExperimentConfig, model: Any, conn: Any, coupling: Any) -> Any:
    from .models.wong_wang import with_fic

    c = coupling if coupling is not None else model.default_coupling()
    if type(c).__name__ != "Linear":
        raise ConfigError(
            f"{config.path}: [model] fic = true needs a linear coupling, got {type(c).__name__}"
        )
    try:
        return with_fic(
            model, conn.weights, float(c.G), target_rate=config.model.fic_rate, b=float(c.b)
        )
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{config.path}: [model] fic: {e}") from e


def build_experiment(config: ExperimentConfig) -> Experiment:
    """Load the connectome (and EEG gain) and build the model, coupling, noise and monitors.

    Still nothing is compiled: every remaining check (per-region list lengths against N, the
    gain's shape, the model's own parameter checks) happens here.

    Raises:
        ConfigError: naming the file, the section and the key at fault.
    """
    import numpy as np

    from ._noise import Additive

    path = config.path
    conn = _load_connectome(config)
    n = conn.n_regions
    cls = model_class(config.model.name)
    params = {
        k: _per_region(path, "model.parameters", k, v, n)
        for k, v in config.model.parameters.items()
    }
    try:
        model = cls(**params)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: [model.parameters] {cls.__name__} rejected them: {e}") from e
    init = None
    if config.model.initial_state is not None:
        rows = [
            np.broadcast_to(_per_region(path, "model.initial_state", s, v, n), (n,))
            for s, v in config.model.initial_state.items()
        ]
        init = np.stack(rows).astype(np.float64)

    coupling = None
    cc = config.coupling
    if cc is not None:
        base = model.default_coupling() if cc.kind is None else _coupling_class(cc.kind)()
        fields = {f: getattr(base, f) for f in _model_fields(type(base))}
        fields.update({k: _per_region(path, "coupling", k, v, n) for k, v in cc.parameters.items()})
        try:
            coupling = type(base)(**fields)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{path}: [coupling] {type(base).__name__} rejected: {e}") from e

    if config.model.fic:
        model = _apply_fic(config, model, conn, coupling)

    noise = None
    if config.noise is not None:
        noise = Additive(nsig=np.asarray(config.noise.nsig, dtype=np.float64))

    mons: list[Any] = []
    m = config.monitors
    if m.raw is not None:
        mons.append(_monitor("raw", path, period=m.raw.period, variables=m.raw.variables))
    if m.tavg is not None:
        mons.append(_monitor("tavg", path, period=m.tavg.period, variables=m.tavg.variables))
    if m.bold is not None:
        mons.append(_monitor("bold", path, period=m.bold.tr, step=m.bold.step, scale=m.bold.scale))
    channels = None
    if m.eeg is not None:
        gain, channels = _load_gain(config, n)
        mons.append(
            _monitor(
                "eeg",
                path,
                gain=gain,
                period=m.eeg.period,
                average_reference=m.eeg.average_reference,
            )
        )
    return Experiment(
        config=config,
        model=model,
        connectome=conn,
        coupling=coupling,
        noise=noise,
        monitors=tuple(mons),
        initial_state=init,
        eeg_channels=channels,
    )


__all__ = [
    "COUPLING_KINDS",
    "MODEL_REGISTRY",
    "BoldConfig",
    "ConnectomeConfig",
    "CouplingConfig",
    "EEGConfig",
    "Experiment",
    "ExperimentConfig",
    "ModelConfig",
    "MonitorsConfig",
    "NoiseConfig",
    "RawConfig",
    "SimulationConfig",
    "available_models",
    "build_experiment",
    "load_config",
    "model_class",
    "parse_config",
]
