"""Building a twin from a fit config: the connectome, the observed data, the brain maps, the
priors, the forward map and the likelihoods (nothing is compiled)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError, ConfigError, DataError

from .._centring import learn_centring as _learn_centring
from .._forward import HopfLinear, Linearised, Simulated
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
    fcd_reference: tuple[np.ndarray, np.ndarray] | None = None  # (edges (B+1,), hist (B,))

    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every sampled (latent) site of the twin, in the model's order.

        The model is traced abstractly (``jax.eval_shape``): nothing is compiled or run.
        """
        from numpyro import handlers

        names: list[str] = []

        def sites(key):
            tr = handlers.trace(handlers.seed(self.twin, key)).get_trace(self.data)
            latent = [(k, s) for k, s in tr.items() if s["type"] == "sample"]
            latent = [(k, s["value"]) for k, s in latent if not s["is_observed"]]
            names[:] = [k for k, _ in latent]
            return [v for _, v in latent]  # a list keeps the order (a dict would be sorted)

        shapes = jax.eval_shape(sites, jax.random.PRNGKey(0))
        return {k: tuple(v.shape) for k, v in zip(names, shapes, strict=True)}

    def describe(self) -> list[str]:
        """What will be fitted, one line each (``vbt validate`` prints them): the regions, the
        data files (absolute paths), the priors and the number of sampled values, the engine's
        settings."""
        cfg, twin = self.config, self.twin
        n = self.fc.shape[0]
        labels = twin.labels
        shown = ", ".join(labels) if n <= 4 else f"{', '.join(labels[:3])}, ..., {labels[-1]}"
        lk = twin.likelihoods[0]
        t = "unknown (group average)" if lk.n_timepoints is None else f"{lk.n_timepoints}"
        source = cfg.bold if cfg.bold is not None else cfg.fc
        if source == "dk84":
            source = "dk84 (the shipped HCP group FC)"
        lines = [
            f"regions     {n} ({getattr(self.experiment.connectome, 'name', 'connectome')}: "
            f"{shown})",
            f"data        FC {n} x {n} from {source}; volumes {t}",
        ]
        if cfg.atlas is not None:
            lines.append(f"atlas       {cfg.atlas}")
        if cfg.bold is not None:
            band = "" if cfg.bold_band is None else ", band {:g}-{:g} Hz".format(*cfg.bold_band)
            tr = "from the header" if cfg.tr is None else f"{cfg.tr:g} s"
            lines.append(f"bold        tr {tr}{band}")
        lines.append(
            f"edges       {int(self.train_edges.sum())} in the likelihood, "
            f"{int((~self.train_edges).sum())} held out"
        )
        if "band_power" in self.observed:
            bp = self.observed["band_power"]
            lk = next(k for k in twin.likelihoods if getattr(k, "site", None) == "band_power")
            kept = bp.shape[0] if lk.mask is None else int(np.asarray(lk.mask).any(axis=1).sum())
            left = ""
            if kept < bp.shape[0]:
                left = f"; {bp.shape[0] - kept} regions without values left out"
            lines.append(
                f"band power  {bp.shape[0]} x {bp.shape[1]} ({', '.join(self.band_names)}) "
                f"from {cfg.band_power}{left}"
            )
        if self.fcd_reference is not None:
            lines.append(f"fcd ref     {cfg.fcd_reference} ({self.fcd_reference[1].size} bins)")
        lines.append(f"forward     {cfg.forward} ({type(twin.forward).__name__})")
        base = cfg.experiment.path.parent
        for p in twin.priors:
            kind = "regional" if p.regional else "global"
            maps = ""
            if p.regional and p.n_maps:
                names = [str(_map_file(m, base) or m) for m in p.map_names]
                maps = f", maps {', '.join(names)}"
                if not p.has_spread:
                    maps += " (their linear function: no regional spread)"
            if p.regional and p.scale == 0:
                maps += f", group mean held at {p.loc:g} (link scale)"
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
        shapes = self.latent_shapes()
        total = sum(math.prod(s) for s in shapes.values())
        each = ", ".join(f"{k} {math.prod(s)}" for k, s in shapes.items())
        lines.append(f"parameters  {total} sampled values ({each})")
        if twin.fixed:
            fixed = ", ".join(f"{k} = {v:g}" for k, v in twin.fixed.items())
            lines.append(f"fixed       {fixed}")
        lines.append(f"engine      {_engine_settings(cfg)}")
        if cfg.check_draws:
            lines.append(f"check       {cfg.check_draws} posterior draws simulated (FC, FCD)")
        return lines


def _engine_settings(cfg: FitConfig) -> str:
    """The engine and the settings it runs with, in one line."""
    if cfg.engine == "nuts":
        nu = cfg.nuts
        return (
            f"nuts, {nu['chains']} chain(s) x ({nu['warmup']} warm-up + {nu['samples']} draws), "
            f"target_accept {nu['target_accept']:g}, max_tree_depth {nu['max_tree_depth']}, "
            f"dense_mass {str(nu['dense_mass']).lower()}, seed {cfg.seed}"
        )
    sv = cfg.svi
    rank = f" (rank {sv['rank']})" if sv["rank"] is not None else ""
    return (
        f"svi, guide {sv['guide']}{rank}, {sv['steps']} steps, learning_rate "
        f"{sv['learning_rate']:g}, {sv['particles']} particle(s), {sv['draws']} draws"
        f"{', resampled' if sv['resample'] else ''}, seed {cfg.seed}"
    )


@contextlib.contextmanager
def _reading(cfg: FitConfig, section: str, key: str) -> Iterator[None]:
    """Errors raised while reading what ``[section] key`` names, prefixed with the config file,
    the section and the key; each keeps its kind (a :class:`~vbt_jax.ShapeError` stays one)."""
    try:
        yield
    except (ConfigError, DataError, ArgumentError) as e:
        raise type(e)(f"{cfg.experiment.path}: [{section}] {key}: {e}") from None


def _map_file(name: str, base: Path) -> Path | None:
    """The file a map name stands for (relative to ``base``), or None for a named map."""
    if name == "strength" or name.startswith(("receptor:", "enigma:")):
        return None
    p = Path(name).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


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
        p = _map_file(name, base)
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
        with _reading(cfg, "fit.data", "bold"):
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
                f"{cfg.experiment.path}: [fit.data] bold: {cfg.bold}: {x.shape[0]} volumes are "
                "too few for an FC likelihood (need >= 10)"
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
    with _reading(cfg, "fit.data", "fc"):
        obs = vbt.load_fc_matrix(cfg.fc, labels=conn.labels)
    return np.asarray(obs.fc, float), cfg.n_timepoints or obs.n_timepoints


def _fcd_reference(cfg: FitConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """The FCD reference histogram ``(edges, hist)`` of ``[fit.data] fcd_reference``, checked."""
    ref = cfg.fcd_reference
    if ref is None:
        return None
    if ref == "dk84":
        return vbt.dk84_fcd_reference()
    where = f"{cfg.experiment.path}: [fit.data] fcd_reference {ref}"
    try:
        z = np.load(ref, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: cannot be read as a .npz file ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ConfigError(f"{where}: is a single array; need a .npz with 'edges' and 'hist'")
    with z:
        missing = [k for k in ("edges", "hist") if k not in z.files]
        if missing:
            raise ConfigError(f"{where}: has no {' or '.join(missing)} (it holds {z.files})")
        edges, hist = np.asarray(z["edges"], float), np.asarray(z["hist"], float)
    if edges.ndim != 1 or hist.ndim != 1 or edges.size != hist.size + 1 or hist.size < 1:
        raise ConfigError(
            f"{where}: edges must be (B + 1,) and hist (B,), got {edges.shape} and {hist.shape}"
        )
    if not (np.isfinite(edges).all() and np.isfinite(hist).all()):
        raise ConfigError(f"{where}: edges and hist must be finite")
    if not (np.diff(edges) > 0).all() or (hist < 0).any() or hist.sum() <= 0:
        raise ConfigError(
            f"{where}: edges must increase and hist be non-negative with a positive sum"
        )
    return edges, hist


def _check_parameter_names(cfg: FitConfig, exp) -> None:
    """With forward ``"linearised"`` or ``"simulate"``, every fitted or fixed parameter must be
    a field of the model, the coupling's ``G`` (or, simulated, ``nsig``, a factor on the
    noise); with feedback inhibition control ``J_i`` is solved for, not fitted."""
    if cfg.forward == "hopf_linear":
        return
    model = exp.model
    fields = {f.name for f in dataclasses.fields(model)}
    allowed = fields | ({"G"} if exp.coupling is not None else set())
    if cfg.forward == "simulate":
        allowed.add("nsig")
    for name, where in [(p.name, f"[fit.priors.{p.name}]") for p in cfg.priors] + [
        (k, f"[fit.fixed] {k}") for k in cfg.fixed
    ]:
        if name not in allowed:
            raise ConfigError(
                f"{cfg.experiment.path}: {where}: {name!r} is not a parameter of "
                f"{type(model).__name__} (forward = {cfg.forward!r} can fit "
                f"{', '.join(sorted(allowed))})"
            )
        if name == "J_i" and cfg.experiment.model.fic:
            raise ConfigError(
                f"{cfg.experiment.path}: {where}: J_i is solved by feedback inhibition control "
                "([model] fic = true) at every draw; fit other parameters or set fic = false"
            )


def setup_fit(cfg: FitConfig, *, learn_centring: bool = True) -> FitSetup:
    """Load the connectome, data and maps, and build the twin.

    Nothing is compiled except, with ``learn_centring`` and a regional prior with
    ``centred = "auto"``, the short variational fit that learns its per-region centring
    (:func:`inference.learn_centring`, key purpose ``"centring"``); ``vbt validate`` skips it.

    This is everything ``vbt fit`` reads and checks before it compiles; ``vbt validate`` runs
    it too and prints :meth:`FitSetup.describe`.

    Raises:
        ConfigError: an invalid combination of config and data (naming the file, the section
            and the key); DataError (ShapeError, LabelError): a data file that cannot be read
            or does not fit the connectome, the message starting with the config file, the
            section and the key that name it.
    """
    from vbt_jax.config import build_experiment

    exp = build_experiment(cfg.experiment)
    _check_parameter_names(cfg, exp)
    conn = exp.connectome
    n, labels = conn.n_regions, tuple(conn.labels)
    base = cfg.experiment.path.parent
    fc, n_timepoints = _observed_fc(cfg, conn)
    fcd_reference = _fcd_reference(cfg)
    m = n * (n - 1) // 2
    rng = numpy_rng(fit_keys(cfg)["heldout_edges"])
    train = np.ones(m, bool)
    if cfg.heldout_fraction > 0:
        train = rng.permutation(m) >= round(cfg.heldout_fraction * m)
    maps = {}
    for spec in cfg.priors:
        for name in spec.maps:
            if name not in maps:
                with _reading(cfg, f"fit.priors.{spec.name}", f"maps {name!r}"):
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
        where = f"{cfg.experiment.path}: [fit.data] band_power {cfg.band_power}"
        with _reading(cfg, "fit.data", "band_power"):
            if cfg.band_power == "meg_hansen":
                bp = vbt.meg_band_power(conn, allow_missing=True)  # masked below
            else:
                bp = vbt.load_band_powers(cfg.band_power, labels=conn.labels, allow_missing=True)
        values = np.asarray(bp.values, float)
        if bp.bands is None:
            raise ConfigError(f"{where}: the band edges (Hz) are unknown; give them")
        band_names = tuple(bp.band_names)
        bands = tuple((float(lo), float(hi)) for lo, hi in bp.bands)
        mask = np.isfinite(values).all(axis=1)
        if not mask.any():
            raise ConfigError(f"{where}: no region has values")
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
    elif cfg.forward == "linearised":
        bold = next((mo for mo in exp.monitors if mo.name == "bold"), None)
        forward = Linearised(
            exp.model,
            conn,
            exp.coupling,
            exp.noise,
            observe="neural" if bold is None else "bold",
            balloon=None if bold is None else bold.params,
            bold_scale=1.0 if bold is None else float(bold.scale),
            fic=cfg.experiment.model.fic,
            fic_rate=cfg.experiment.model.fic_rate,
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
        twin = _learn_centring(twin, data, key=fit_keys(cfg)["centring"], steps=cfg.centring_steps)
    return FitSetup(cfg, exp, twin, observed, data, fc, train, maps, band_names, fcd_reference)


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
