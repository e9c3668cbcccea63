"""What predictions need from a fitted twin (a ``vbt fit`` run folder), and the intervention
objects of a predict config placed on the twin's regions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError, ConfigError, DataError

from ._config import PredictConfig


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
    from vbt_jax.config import build_experiment, load_config

    from .._output import load_netcdf
    from ..fit import load_fit_config

    folder = Path(folder).expanduser().resolve()
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
    exp_cfg = (
        fit_cfg.experiment
        if fit_cfg is not None
        else load_config(cfg_path, extra_sections=("fit",))
    )
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
                        receptor = vbt.load_map(
                            s["receptor_file"],
                            labels,
                            label_column=s["label_column"],
                            value_column=s["value_column"],
                            density=s["density"],
                            allow_missing=s["allow_missing"],
                        )
                        receptor = np.asarray(receptor.values)
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
        except (ConfigError, ArgumentError, DataError) as e:
            raise ConfigError(f"{cfg.path}: [{spec.section}] ({spec.name!r}): {e}") from None
        out[spec.name] = obj
    return out


def _placeholder(label: str) -> bool:
    """A label that names no region (``"region_3"``, an atlas integer ``"17"``)."""
    return label.isdigit() or (label.startswith("region_") and label[7:].isdigit())


def fc_for_twin(source: str | Path, twin: FittedTwin, where: str, key: str) -> np.ndarray:
    """An FC matrix a predict config names (``"dk84"`` or a file), checked against the twin.

    Args:
        source: ``"dk84"`` (the shipped HCP group FC) or the resolved file.
        twin: the fitted twin whose regions the matrix must have, in its order.
        where: the config file and section, for messages (``"p.toml: [predict]"``).
        key: the key that names the matrix.

    Raises:
        ConfigError: the file cannot be read as an FC matrix, has another number of regions,
            or names its regions differently (naming the section, the key, the file and both
            sides).
    """
    n = len(twin.labels)
    if source == "dk84":
        if twin.labels != tuple(vbt.dk84().labels):
            raise ConfigError(
                f"{where} {key} = 'dk84' needs a twin on the DK-84 regions; the twin has {n} "
                "regions"
            )
        return np.asarray(vbt.dk84_empirical_fc(), np.float64)
    try:
        obs = vbt.load_fc_matrix(source)
    except DataError as e:
        raise ConfigError(f"{where} {key}: {e}") from None
    m = np.asarray(obs.fc, np.float64)
    if m.shape != (n, n):
        raise ConfigError(
            f"{where} {key} {source} is {m.shape[0]} x {m.shape[1]}; the twin has {n} regions"
        )
    named = obs.labels is not None and not all(_placeholder(str(s)) for s in obs.labels)
    if named and tuple(obs.labels) != twin.labels:
        i = next(k for k, (a, b) in enumerate(zip(obs.labels, twin.labels)) if a != b)
        raise ConfigError(
            f"{where} {key} {source}: region labels differ from the twin's at index {i}: file "
            f"{obs.labels[i]!r} vs twin {twin.labels[i]!r}"
        )
    return m


def _target(cfg: PredictConfig, twin: FittedTwin) -> np.ndarray | None:
    if cfg.target_fc is None:
        return None
    return fc_for_twin(cfg.target_fc, twin, f"{cfg.path}: [predict]", "target_fc")


@dataclasses.dataclass(frozen=True)
class ObservedSession:
    """An observed on-drug session of a predict config, loaded and checked."""

    spec: Any  # the ObservedSpec
    fc_pre: np.ndarray  # (N, N)
    fc_post: np.ndarray  # (N, N)


def observed_sessions(cfg: PredictConfig, twin: FittedTwin) -> tuple[ObservedSession, ...]:
    """The ``[[predict.observed]]`` sessions' FC matrices, read and checked against the twin.

    Raises:
        ConfigError: a file that cannot be read as an FC matrix, or one whose size differs
            from the twin's (naming the section, the key and both sizes).
    """
    out = []
    for spec in cfg.observed:
        where = f"{cfg.path}: [{spec.section}]"
        mats = {
            key: fc_for_twin(getattr(spec, key), twin, where, key) for key in ("fc_pre", "fc_post")
        }
        out.append(ObservedSession(spec, mats["fc_pre"], mats["fc_post"]))
    return tuple(out)


def simulation_experiment(cfg: PredictConfig, twin: FittedTwin):
    """The twin's experiment for ``[predict.simulate]`` (its duration replaced when set), or
    None when the section asks for no simulation.

    Raises:
        ConfigError: the duration leaves too few samples for the FCD windows.
    """
    if cfg.sim_draws == 0:
        return None
    from vbt_jax.config import build_experiment

    exp_cfg = twin.experiment_config
    if cfg.sim_duration is not None:
        exp_cfg = exp_cfg.with_simulation(
            duration=cfg.sim_duration,
            transient=min(exp_cfg.simulation.transient, 0.1 * cfg.sim_duration),
        )
    exp = build_experiment(exp_cfg)
    periods = {m.name: m.period for m in exp.monitors}
    source = "bold" if "bold" in periods else "tavg" if "tavg" in periods else "raw"
    sim = exp_cfg.simulation
    n_samples = int((sim.duration - sim.transient) // periods[source])
    min_sep = -(-cfg.fcd_window // cfg.fcd_step)
    if n_samples < cfg.fcd_window + (min_sep + 1) * cfg.fcd_step:
        raise ConfigError(
            f"{cfg.path}: [predict.simulate] {n_samples} samples of {source} after the "
            f"transient are too few for FCD windows of {cfg.fcd_window} samples further apart "
            f"than one window (step {cfg.fcd_step}); simulate longer (duration) or shorten the "
            "windows"
        )
    return exp


@dataclasses.dataclass(frozen=True)
class PredictInputs:
    """Everything a predict config names, read and checked before anything is compiled."""

    twin: FittedTwin
    interventions: dict[str, Any]
    target: np.ndarray | None
    sessions: tuple[ObservedSession, ...]
    experiment: Any  # for [predict.simulate], or None
    config: PredictConfig | None = None

    def describe(self) -> list[str]:
        """One line per input (``vbt validate`` prints them): the twin and its regions, the
        doses, the target, each intervention with the map or regions it acts on, the files
        (absolute paths) and the settings of the computation."""
        t, cfg = self.twin, self.config
        n = len(t.labels)
        shown = ", ".join(t.labels) if n <= 4 else f"{', '.join(t.labels[:3])}, ..., {t.labels[-1]}"
        lines = [
            f"twin        {t.folder} ({t.a.shape[0]} of {t.n_posterior} posterior draws, "
            f"{n} regions)",
            f"regions     {n} ({getattr(t.connectome, 'name', 'connectome')}: {shown})",
            f"fit config  {t.fit_config}",
        ]
        if cfg is not None:
            doses = ", ".join(f"{d:g}" for d in cfg.doses)
            lines.append(f"doses       {doses} x EC50 (report at {cfg.report_dose:g})")
        specs = {} if cfg is None else {s.name: s for s in cfg.interventions}
        for name, iv in self.interventions.items():
            acts = _acts_on(specs[name]) if name in specs else ""
            lines.append(f"intervention {name}: {iv.kind}{acts}")
        if self.target is None:
            lines.append("target      none")
        else:
            source = "" if cfg is None else f" from {cfg.target_fc}"
            distance = "" if cfg is None else f"; distance {cfg.distance}"
            lines.append("target      FC {} x {}".format(*self.target.shape) + source + distance)
        for s in self.sessions:
            lines.append(
                f"observed    {s.spec.intervention} at dose {s.spec.dose:g}: {s.spec.fc_post}"
            )
        if self.experiment is not None:
            sim = self.experiment.config.simulation
            draws = "" if cfg is None else f" at {cfg.sim_draws} posterior draws"
            lines.append(f"simulate    {sim.duration / 1000:g} s per draw{draws}")
        if cfg is not None:
            bands = ", ".join(f"{k} {lo:g}-{hi:g} Hz" for k, (lo, hi) in cfg.bands.items())
            lines.append(f"bands       {bands}")
            lines.append(
                f"settings    {cfg.interval:g} credible intervals, {cfg.chunk} draws per chunk"
            )
        return lines


def _acts_on(spec) -> str:
    """What an intervention acts on, as the config gives it (a receptor map file, absolute)."""
    s = spec.settings
    if spec.kind == "drug":
        if "preset" in s:
            return f", preset {s['preset']}"
        if "receptor_file" in s:
            return f", receptor map {s['receptor_file']}"
        return f", receptor {s['receptor']}"
    if spec.kind == "lesion":
        where = [*map(str, s["regions"]), *(f"{a}-{b}" for a, b in s["edges"])]
        return f", {', '.join(where)} scaled by {s['factor']:g}"
    return f", targets {', '.join(map(str, s['targets']))}"


def prepare_predict(cfg: PredictConfig) -> PredictInputs:
    """Read the twin and every file a predict config names, and check them together.

    Raises:
        ConfigError: naming the file, the section and the key at fault.
    """
    twin = load_twin(cfg.twin, cfg.draws, what=f"{cfg.path}: [predict] twin")
    interventions = build_interventions(cfg, twin.labels)
    return PredictInputs(
        twin=twin,
        interventions=interventions,
        target=_target(cfg, twin),
        sessions=observed_sessions(cfg, twin),
        experiment=simulation_experiment(cfg, twin),
        config=cfg,
    )


def check_predict_inputs(cfg: PredictConfig) -> list[str]:
    """:func:`prepare_predict`, described line by line."""
    return prepare_predict(cfg).describe()


__all__ = [
    "FittedTwin",
    "ObservedSession",
    "PredictInputs",
    "build_interventions",
    "check_predict_inputs",
    "load_twin",
    "prepare_predict",
]
