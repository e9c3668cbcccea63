"""The frozen, validated objects an experiment configuration is read into, and the registries
of names the configuration files may use."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .._errors import ConfigError
from ..jobs import Table
from ..models import MODELS

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

#: The top-level keys of an experiment configuration. A file may hold more sections when the
#: caller reads them itself (``parse_config(..., extra_sections=...)``): ``vbt simulate``
#: accepts the sections of the commands other packages register (see :mod:`vbt_jax.jobs`).
_TOP = ("description", "simulation", "connectome", "model", "coupling", "noise", "monitors")
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


def _model_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _coupling_class(kind: str) -> type:
    from .. import _coupling

    return getattr(_coupling, COUPLING_KINDS[kind])


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
        from ._sections import _check_timing, _parse_simulation

        sim = _parse_simulation(Table(self.path, "simulation", table, _SIMULATION))
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
