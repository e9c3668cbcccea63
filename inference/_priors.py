"""Priors for twin parameters: global scalars and partially pooled, map-informed regional maps.

A :class:`Global` prior is one scalar parameter (global coupling, noise, a homogeneous model
parameter). A :class:`Regional` prior gives one value per region through a non-centred
hierarchical model on a link scale:

.. math::
    \\eta_i = \\mu + \\sum_k \\beta_k m_{ki} + \\tau z_i, \\qquad z_i \\sim N(0, 1),
    \\qquad \\theta_i = g^{-1}(\\eta_i)

with brain maps ``m_k`` (z-scored receptor density, T1w/T2w, a disorder map, node strength...),
so that a few hyper-parameters (``mu``, ``beta``, ``tau``) describe a heterogeneous model and
the data decide, through ``tau``, how far regions depart from the maps. Sampling ``z`` rather
than ``eta`` (the non-centred form) avoids the funnel that NUTS meets when ``tau`` is small.

Between the two forms lies a partial centring (Gorinova, Moore & Hoffman 2019, numpyro's
``LocScaleReparam``): with centredness ``c_i`` in [0, 1] per region, ``w_i ~ N(c_i m_i,
tau^c_i)`` is sampled and ``eta_i = m_i + tau^(1 - c_i) (w_i - c_i m_i)``; ``c = 1`` is the
centred form, ``c = 0`` the non-centred one. Regions the data pin down want ``c`` near 1, regions
the data barely see (their posterior is their prior) near 0; :func:`learn_centring` finds ``c``
by variational inference.

Sites are named ``<name>`` for globals; ``<name>_mu``, ``<name>_beta`` (one per map),
``<name>_tau``, ``<name>_z`` (one per region; ``<name>_eta`` when centred,
``<name>_eta_decentered`` when partially centred) and the deterministic ``<name>`` (per region)
for regional priors.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer.reparam import LocScaleReparam

from vbt_jax import ArgumentError, ShapeError

_DISTS = ("normal", "lognormal", "uniform", "halfnormal", "truncnormal")
_LINKS = ("identity", "log", "neglog")


@dataclasses.dataclass(frozen=True)
class Global:
    """A scalar parameter with a named distribution.

    Attributes:
        name: the parameter (a model field such as ``"a"``, or ``"G"``, ``"nsig"``).
        dist: ``"normal"`` (loc, scale), ``"lognormal"`` (loc = median, scale = sd of the log),
            ``"uniform"`` (low, high), ``"halfnormal"`` (scale), ``"truncnormal"``
            (loc, scale, low, high).
        loc, scale, low, high: the distribution's numbers (unused ones are ignored).
        unit: the parameter's unit, for tables and figures.
    """

    name: str
    dist: str = "normal"
    loc: float = 0.0
    scale: float = 1.0
    low: float = -math.inf
    high: float = math.inf
    unit: str = ""

    def __post_init__(self):
        where = f"prior {self.name!r}"
        if self.dist not in _DISTS:
            raise ArgumentError(f"{where}: dist must be one of {_DISTS}, got {self.dist!r}")
        if not (math.isfinite(self.scale) and self.scale > 0) and self.dist != "uniform":
            raise ArgumentError(f"{where}: scale must be a positive number, got {self.scale!r}")
        if self.dist == "lognormal" and not self.loc > 0:
            raise ArgumentError(f"{where}: lognormal loc is the median and must be > 0")
        if self.dist == "uniform" and not (
            math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high
        ):
            raise ArgumentError(
                f"{where}: uniform needs finite low < high, got {self.low}, {self.high}"
            )
        if self.dist == "truncnormal" and not self.low < self.high:
            raise ArgumentError(f"{where}: truncnormal needs low < high")

    def distribution(self) -> dist.Distribution:
        """The NumPyro distribution."""
        if self.dist == "normal":
            return dist.Normal(self.loc, self.scale)
        if self.dist == "lognormal":
            return dist.LogNormal(math.log(self.loc), self.scale)
        if self.dist == "uniform":
            return dist.Uniform(self.low, self.high)
        if self.dist == "halfnormal":
            return dist.HalfNormal(self.scale)
        low = None if math.isinf(self.low) else self.low
        high = None if math.isinf(self.high) else self.high
        return dist.TruncatedNormal(self.loc, self.scale, low=low, high=high)

    def sample(self) -> jnp.ndarray:
        """Sample the site inside a NumPyro model."""
        return numpyro.sample(self.name, self.distribution())

    @property
    def hyper_sites(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def regional(self) -> bool:
        return False


@dataclasses.dataclass(frozen=True, eq=False)
class Regional:
    """A per-region parameter with partial pooling and optional brain-map regression.

    Attributes:
        name: the model parameter (e.g. ``"a"`` for Stuart-Landau, ``"eta"`` for MPR).
        n_regions: number of regions N.
        link: ``"identity"`` (theta = eta), ``"log"`` (theta = exp(eta) > 0) or ``"neglog"``
            (theta = -exp(eta) < 0, e.g. the Hopf bifurcation parameter below the bifurcation).
        loc, scale: Normal prior of the group mean ``mu`` on the link scale; ``scale = 0``
            holds ``mu`` at ``loc`` (no site), e.g. a published group value with only the map
            slopes fitted.
        maps: (N, K) brain maps, each z-scored over regions (missing values filled with 0, the
            map mean); K may be 0.
        map_names: the K map names.
        beta_scale: sd of the Normal(0, .) prior of each map coefficient (link scale per map sd).
        tau_scale: scale of the HalfNormal prior of the regional spread ``tau`` (link scale);
            ``0``: no spread, the parameter is the maps' linear function
            ``theta_i = g^-1(mu + beta m_i)`` (a map-informed model with K + 1 parameters).
        labels: region labels, for output coordinates.
        unit: the parameter's unit.
        scale_by: name of a global parameter that multiplies the regional values
            (``theta_i = g^-1(eta_i) * scale``), e.g. ``"G"`` for the Hopf ``a``: FC depends on
            ``a / G`` only, so sampling the ratio removes a ridge that slows NUTS down.
        centred: ``True``: sample ``eta`` directly (``eta_i ~ N(mu + beta m_i, tau)``, site
            ``<name>_eta``) instead of ``z``: better for NUTS when the data inform every region
            strongly (``False``, the non-centred form, is better when they do not). An (N,)
            array of centredness values in [0, 1] partially centres each region (site
            ``<name>_eta_decentered``); ``"auto"`` marks them to be learnt by
            :func:`learn_centring` (until then the model learns them as NumPyro ``param``
            ``<name>_eta_centered``).
    """

    name: str
    n_regions: int
    link: str = "identity"
    loc: float = 0.0
    scale: float = 1.0
    maps: Any = None
    map_names: tuple[str, ...] = ()
    beta_scale: float = 1.0
    tau_scale: float = 0.5
    labels: tuple[str, ...] | None = None
    unit: str = ""
    scale_by: str | None = None
    centred: Any = False

    def __post_init__(self):
        where = f"regional prior {self.name!r}"
        c = self.centred
        if not (isinstance(c, bool) or (isinstance(c, str) and c == "auto")):
            if isinstance(c, str):
                raise ArgumentError(f"{where}: centred must be True, False, 'auto' or an array")
            c = np.asarray(c, float)
            if c.shape != (self.n_regions,):
                raise ShapeError(
                    f"{where}: centred must be (n_regions={self.n_regions},), got shape {c.shape}"
                )
            if not np.all((c >= 0) & (c <= 1)):
                raise ArgumentError(f"{where}: centredness values must lie in [0, 1]")
            object.__setattr__(self, "centred", c)
        if self.link not in _LINKS:
            raise ArgumentError(f"{where}: link must be one of {_LINKS}, got {self.link!r}")
        for k in ("scale", "beta_scale", "tau_scale"):
            v = getattr(self, k)
            if not (math.isfinite(v) and (v > 0 or (k != "beta_scale" and v == 0))):
                kind = "positive" if k == "beta_scale" else "non-negative"
                raise ArgumentError(f"{where}: {k} must be a {kind} number, got {v!r}")
        if self.tau_scale == 0 and self.centred is not False:
            raise ArgumentError(
                f"{where}: tau_scale = 0 (no regional spread) has nothing to centre; leave "
                f"centred at False, got {self.centred!r}"
            )
        maps = np.zeros((self.n_regions, 0)) if self.maps is None else np.asarray(self.maps, float)
        if maps.ndim == 1:
            maps = maps[:, None]
        if maps.ndim != 2 or maps.shape[0] != self.n_regions:
            raise ShapeError(
                f"{where}: maps must be (n_regions={self.n_regions}, K), got shape {maps.shape}"
            )
        if not np.all(np.isfinite(maps)):
            bad = np.argwhere(~np.isfinite(maps))[0]
            raise ArgumentError(
                f"{where}: map {bad[1]} has a missing/non-finite value at region {bad[0]}; fill "
                "missing regions first (BrainMap.fill_missing)"
            )
        if len(self.map_names) != maps.shape[1]:
            names = tuple(f"map{k}" for k in range(maps.shape[1]))
            object.__setattr__(self, "map_names", names)
        object.__setattr__(self, "maps", maps)

    @property
    def n_maps(self) -> int:
        return self.maps.shape[1]

    @property
    def hyper_sites(self) -> tuple[str, ...]:
        sites = [f"{self.name}_mu"] if self.scale > 0 else []
        if self.n_maps:
            sites.append(f"{self.name}_beta")
        return (*sites, f"{self.name}_tau") if self.has_spread else tuple(sites)

    @property
    def has_spread(self) -> bool:
        """Whether regions depart from the maps (``tau_scale > 0``: sites ``<name>_tau`` and
        ``<name>_z`` or ``<name>_eta``)."""
        return self.tau_scale > 0

    @property
    def regional(self) -> bool:
        return True

    def inverse_link(self, eta):
        if self.link == "log":
            return jnp.exp(eta)
        if self.link == "neglog":
            return -jnp.exp(eta)
        return eta

    def link_fn(self, theta):
        """Map parameter values to the link scale (NumPy)."""
        theta = np.asarray(theta, float)
        if self.link == "log":
            return np.log(theta)
        if self.link == "neglog":
            return np.log(-theta)
        return theta

    def sample(self, scale=None) -> jnp.ndarray:
        """Sample the hyper-parameters and ``z``; return (and record) the regional values
        (multiplied by ``scale``, the value of ``scale_by``, when given)."""
        n = self.name
        if self.scale > 0:
            eta = numpyro.sample(f"{n}_mu", dist.Normal(self.loc, self.scale))
        else:
            eta = jnp.asarray(self.loc, jnp.result_type(float))
        if self.n_maps:
            beta = numpyro.sample(
                f"{n}_beta", dist.Normal(0.0, self.beta_scale).expand([self.n_maps]).to_event(1)
            )
            eta = eta + jnp.asarray(self.maps, jnp.result_type(float)) @ beta
        if not self.has_spread:
            eta = jnp.broadcast_to(eta, (self.n_regions,))
        else:
            eta = self._spread(eta)
        theta = self.inverse_link(eta)
        if scale is not None:
            theta = theta * scale
        return numpyro.deterministic(n, theta)

    def _spread(self, eta):
        n = self.name
        tau = numpyro.sample(f"{n}_tau", dist.HalfNormal(self.tau_scale))
        if not isinstance(self.centred, bool):
            c = None if isinstance(self.centred, str) else jnp.asarray(self.centred)
            with handlers.reparam(config={f"{n}_eta": LocScaleReparam(centered=c)}):
                eta = numpyro.sample(
                    f"{n}_eta",
                    dist.Normal(jnp.broadcast_to(eta, (self.n_regions,)), tau).to_event(1),
                )
        elif self.centred:
            eta = numpyro.sample(
                f"{n}_eta",
                dist.Normal(jnp.broadcast_to(eta, (self.n_regions,)), tau).to_event(1),
            )
        else:
            z = numpyro.sample(f"{n}_z", dist.Normal(0.0, 1.0).expand([self.n_regions]).to_event(1))
            eta = eta + tau * z
        return eta


Prior = Global | Regional


def default_prior(
    model_cls: type,
    name: str,
    *,
    regional: bool = False,
    n_regions: int | None = None,
    maps: Any = None,
    map_names: Sequence[str] = (),
) -> Prior:
    """A weakly informative prior from a model's declared ``parameter_ranges``.

    Global: uniform over the range. Regional: identity link, group mean Normal(centre,
    range / 4), spread ``tau`` HalfNormal(range / 8), map coefficients Normal(0, range / 8).

    Raises:
        ArgumentError: the model declares no range for ``name``.
    """
    ranges: Mapping[str, tuple[float, float]] = getattr(model_cls, "parameter_ranges", {})
    if name not in ranges:
        raise ArgumentError(
            f"{model_cls.__name__} declares no range for {name!r} (it has: "
            f"{', '.join(ranges) or 'none'}); give the prior explicitly"
        )
    lo, hi = (float(v) for v in ranges[name])
    if not regional:
        return Global(name, "uniform", low=lo, high=hi)
    if n_regions is None:
        raise ArgumentError(f"default_prior({name!r}, regional=True) needs n_regions")
    width = hi - lo
    return Regional(
        name,
        n_regions,
        "identity",
        loc=0.5 * (lo + hi),
        scale=width / 4,
        maps=maps,
        map_names=tuple(map_names),
        beta_scale=width / 8,
        tau_scale=width / 8,
    )


def sample_priors(
    priors: Sequence[Prior], fixed: Mapping[str, Any] | None = None
) -> dict[str, jnp.ndarray]:
    """Sample every prior inside a NumPyro model; returns ``{parameter: value}`` (with the
    ``fixed`` values merged). Globals are sampled first so regional priors can be scaled by one.

    Raises:
        ArgumentError: a regional prior's ``scale_by`` names no global parameter.
    """
    params = {k: jnp.asarray(v) for k, v in (fixed or {}).items()}
    for p in priors:
        if not p.regional:
            params[p.name] = p.sample()
    for p in priors:
        if p.regional:
            scale = None
            if p.scale_by is not None:
                if p.scale_by not in params:
                    raise ArgumentError(
                        f"regional prior {p.name!r}: scale_by={p.scale_by!r} is not a global "
                        f"parameter (have: {sorted(params)})"
                    )
                scale = params[p.scale_by]
            params[p.name] = p.sample(scale)
    return params


__all__ = ["Global", "Regional", "Prior", "default_prior", "sample_priors"]
