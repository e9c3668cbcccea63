"""Reading each section of an experiment configuration (TOML) into its frozen object."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

from .._errors import ConfigError
from ..jobs import Table, _suggest
from ._schema import (
    _BOLD,
    _EEG,
    _MONITORS,
    _PLAIN_MATRIX,
    _RAW,
    COUPLING_KINDS,
    DTYPES,
    MODEL_REGISTRY,
    NORMALISATIONS,
    RNGS,
    SOLVERS,
    TVB_SIZES,
    BoldConfig,
    ConnectomeConfig,
    CouplingConfig,
    EEGConfig,
    ModelConfig,
    MonitorsConfig,
    NoiseConfig,
    RawConfig,
    SimulationConfig,
    _coupling_class,
    _model_fields,
    model_class,
)


def _resolve_path(t: Table, key: str, base: Path) -> Path:
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


def _parse_simulation(t: Table) -> SimulationConfig:
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


def _parse_connectome(t: Table, base: Path) -> ConnectomeConfig:
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


def _parse_model(t: Table, path: Path) -> tuple[ModelConfig, type]:
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
    pt = Table(path, "model.parameters", t.raw("parameters", {}), fields)
    params = {k: pt.value(k, what=f"a value of {cls.__name__}.{k}") for k in pt.table}
    init = None
    if t.has("initial_state"):
        states = tuple(cls.state_names)
        it = Table(path, "model.initial_state", t.raw("initial_state"), states)
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
    t = Table(path, "coupling", table, ("kind",) + fields)
    params = {k: t.value(k, what=f"a value of {cls.__name__}.{k}") for k in t.table if k != "kind"}
    return CouplingConfig(kind=kind, parameters=MappingProxyType(params))


def _parse_noise(t: Table, path: Path, states: tuple[str, ...]) -> NoiseConfig | None:
    v = t.raw("nsig", what="noise intensity per state variable")
    if isinstance(v, dict):
        nt = Table(path, "noise.nsig", v, states)
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


def _parse_variables(t: Table, states: tuple[str, ...]) -> tuple[str, ...] | None:
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


def _parse_monitors(t: Table, path: Path, states: tuple[str, ...], base: Path) -> MonitorsConfig:
    out: dict[str, Any] = {}
    for name in ("raw", "tavg"):
        if t.has(name):
            mt = Table(path, f"monitors.{name}", t.raw(name), _RAW)
            out[name] = RawConfig(
                period=mt.number("period", 1.0, unit="ms"),
                variables=_parse_variables(mt, states),
            )
    if t.has("bold"):
        mt = Table(path, "monitors.bold", t.raw("bold"), _BOLD)
        out["bold"] = BoldConfig(
            tr=mt.number("tr", 720.0, unit="ms"),
            step=mt.number("step", 1.0, unit="ms"),
            scale=mt.number("scale", 1.0, lower="any"),
        )
    if t.has("eeg"):
        mt = Table(path, "monitors.eeg", t.raw("eeg"), _EEG)
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
