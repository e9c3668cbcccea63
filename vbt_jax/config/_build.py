"""Building the simulator objects of a validated experiment configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from ._schema import ExperimentConfig, Value, _coupling_class, _model_fields, model_class

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

    import vbt_jax as vbt

    c = cfg.connectome
    try:
        if c.source == "dk84":
            conn = vbt.dk84()
        elif c.source.startswith("tvb:"):
            conn = vbt.tvb_connectivity(int(c.source[4:]), allow_isolated=c.allow_isolated)
        else:
            kwargs: dict[str, Any] = {"allow_isolated": c.allow_isolated}
            if c.lengths is not None:
                kwargs["lengths_path"] = c.lengths
            conn = vbt.load_connectome(c.source, **kwargs)
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
        from vbt_jax import load_tvb_eeg_gain

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
    if gain.ndim == 2 and gain.shape[1] != n and gain.shape[0] == n:
        raise ConfigError(
            f"{where} looks transposed: its shape is {gain.shape} but (M channels, {n} regions) "
            f"= ({gain.shape[1]}, {n}) is expected; save gain.T"
        )
    if gain.ndim != 2 or gain.shape[1] != n or not np.issubdtype(gain.dtype, np.number):
        raise ConfigError(
            f"{where} must be a numeric (M, {n}) matrix for {n} regions, got shape {gain.shape} "
            f"dtype {gain.dtype}"
        )
    if not np.all(np.isfinite(gain)):
        raise ConfigError(f"{where} holds NaN or inf values")
    return gain.astype(np.float64), tuple(f"ch{i}" for i in range(gain.shape[0]))


def _monitor(name: str, path: Path, **kwargs: Any) -> Any:
    from .. import monitors

    cls_name = {"raw": "Raw", "tavg": "TemporalAverage", "bold": "Bold", "eeg": "EEG"}[name]
    cls = getattr(monitors, cls_name, None)
    if cls is None:
        raise ConfigError(
            f"{path}: [monitors.{name}] vbt_jax.monitors.{cls_name} is not available in this "
            f"version"
        )
    return cls(**kwargs)


def _apply_fic(config: ExperimentConfig, model: Any, conn: Any, coupling: Any) -> Any:
    from ..models.wong_wang import with_fic

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

    from .._noise import Additive

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


__all__ = ["Experiment", "build_experiment"]
