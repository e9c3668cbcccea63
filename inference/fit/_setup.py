"""Building a twin from a fit config: the connectome, the observed data, the brain maps, the
priors, the forward map and the likelihoods (nothing is compiled)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError, ConfigError, DataError

from .._centring import learn_centring as _learn_centring
from .._forward import HopfLinear, Simulated
from .._keys import numpy_rng, purpose_keys
from .._likelihoods import FCLikelihood, band_power_likelihood
from .._model import Twin
from .._priors import Global, Regional
from ..engines import FitResult, run_nuts, run_svi
from ._config import FitConfig, PriorSpec


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

    def describe(self) -> list[str]:
        """What will be fitted, one line each (``vbt validate`` prints them)."""
        cfg, twin = self.config, self.twin
        n = self.fc.shape[0]
        lk = twin.likelihoods[0]
        t = "unknown (group average)" if lk.n_timepoints is None else f"{lk.n_timepoints}"
        source = cfg.bold if cfg.bold is not None else cfg.fc
        lines = [
            f"data        FC {n} x {n} from {source}; volumes {t}",
            f"edges       {int(self.train_edges.sum())} in the likelihood, "
            f"{int((~self.train_edges).sum())} held out",
        ]
        if "band_power" in self.observed:
            bp = self.observed["band_power"]
            lines.append(
                f"band power  {bp.shape[0]} x {bp.shape[1]} ({', '.join(self.band_names)})"
            )
        lines.append(f"forward     {cfg.forward} ({type(twin.forward).__name__})")
        for p in twin.priors:
            kind = "regional" if p.regional else "global"
            maps = f", maps {', '.join(p.map_names)}" if p.regional and p.n_maps else ""
            centring = ""
            if p.regional and isinstance(p.centred, str):
                centring = ", centring learnt before sampling"
            elif p.regional and not isinstance(p.centred, bool):
                c = np.asarray(p.centred)
                centring = (
                    f", centring {c.min():.2f}-{c.max():.2f} "
                    f"({int((c > 0.5).sum())} of {c.size} regions above 0.5)"
                )
            lines.append(f"prior       {p.name}: {kind}{maps}{centring}")
        if twin.fixed:
            fixed = ", ".join(f"{k} = {v:g}" for k, v in twin.fixed.items())
            lines.append(f"fixed       {fixed}")
        lines.append(f"engine      {cfg.engine}, seed {cfg.seed}")
        return lines


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
        m = vbt.receptor_map(name.split(":", 1)[1], labels, allow_missing=True)
    elif name.startswith("enigma:"):
        m = vbt.enigma_map(name.split(":", 1)[1], labels, allow_missing=True)
    else:
        p = Path(name).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise ConfigError(
                f"map {name!r}: not 'strength', 'receptor:<name>', 'enigma:<disorder>' nor an "
                f"existing file ({p})"
            )
        m = vbt.load_map(p, labels, allow_missing=True)
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
            ts = vbt.load_region_timeseries(
                cfg.bold, tr=cfg.tr, band=cfg.bold_band, time_axis=cfg.time_axis
            )
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


def setup_fit(cfg: FitConfig, *, learn_centring: bool = True) -> FitSetup:
    """Load the connectome, data and maps, and build the twin.

    Nothing is compiled except, with ``learn_centring`` and a regional prior with
    ``centred = "auto"``, the short variational fit that learns its per-region centring
    (:func:`inference.learn_centring`, key purpose ``"centring"``); ``vbt validate`` skips it.

    Raises:
        ConfigError: on any data/config mismatch, naming both sides.
    """
    from vbt_jax.config import build_experiment

    exp = build_experiment(cfg.experiment)
    conn = exp.connectome
    n, labels = conn.n_regions, tuple(conn.labels)
    base = cfg.experiment.path.parent
    fc, n_timepoints = _observed_fc(cfg, conn)
    m = n * (n - 1) // 2
    rng = numpy_rng(fit_keys(cfg)["heldout_edges"])
    train = np.ones(m, bool)
    if cfg.heldout_fraction > 0:
        train = rng.permutation(m) >= round(cfg.heldout_fraction * m)
    maps = {}
    for spec in cfg.priors:
        for name in spec.maps:
            if name not in maps:
                maps[name] = resolve_map(name, conn, base)
    priors = []
    for spec in cfg.priors:
        try:
            priors.append(_prior(spec, n, labels, maps))
        except (ArgumentError, DataError) as e:
            raise ConfigError(f"{cfg.experiment.path}: prior {spec.name!r}: {e}") from None
    likelihoods: list[Any] = [FCLikelihood(n, train, n_timepoints)]
    observed: dict[str, Any] = {"fc": fc}
    features = ["fc"]
    band_names: tuple[str, ...] = ()
    bands = None
    if cfg.band_power is not None:
        if cfg.band_power == "meg_hansen":
            bp = vbt.meg_band_power(conn, allow_missing=True)  # masked below
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
        keys = jax.random.split(fit_keys(cfg)["forward_noise"], cfg.sim_seeds)
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
    if learn_centring:
        twin = _learn_centring(twin, data, key=fit_keys(cfg)["centring"])
    return FitSetup(cfg, exp, twin, observed, data, fc, train, maps, band_names)


FIT_PURPOSES = (
    "heldout_edges",
    "forward_noise",
    "engine",
    "prior",
    "predictive",
    "coverage",
    "check",
    "centring",
)


def fit_keys(cfg) -> dict:
    """The fit's PRNG key (``jax.random.key(seed)`` of ``[fit] seed``) split per purpose
    (:data:`FIT_PURPOSES`; see :func:`inference._keys.purpose_keys`)."""
    return purpose_keys(jax.random.key(cfg.seed), FIT_PURPOSES, "vbt fit")


def run_engine(setup: FitSetup, checkpoint: Path | None, progress: bool) -> FitResult:
    cfg = setup.config
    if cfg.engine == "nuts":
        nu = cfg.nuts
        return run_nuts(
            setup.twin,
            setup.data,
            key=fit_keys(cfg)["engine"],
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
        key=fit_keys(cfg)["engine"],
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


__all__ = ["FIT_PURPOSES", "FitSetup", "fit_keys", "resolve_map", "run_engine", "setup_fit"]
