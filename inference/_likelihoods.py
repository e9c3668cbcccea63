"""Likelihoods: how observed features are scored against a forward map's prediction.

**FC (Fisher z).** Each observed correlation ``r_ij`` becomes ``z = artanh(r)``, whose sampling
distribution for T independent samples is close to Normal with sd ``1 / sqrt(T - 3)`` whatever
the true correlation. The likelihood is

    z_obs_ij ~ Normal(artanh(r_pred_ij), sqrt(1 / (T_eff - 3) + sigma_fc^2))

over the strict upper triangle (optionally a training subset of edges). ``T_eff`` is the number
of volumes when it is known (a single scan); for a group-average FC it is unknown and left
out. ``sigma_fc`` is a learned model-discrepancy sd (HalfNormal prior): the linearised or
simulated model never reproduces an empirical FC exactly, and without this term the posterior
would be absurdly narrow. We chose this over several-seed simulation variance for the default
analytic model because the analytic FC *is* the expectation of the stationary process: the only
randomness left is the data's. Edges are treated as independent given the prediction, which
they are not (they share regions); ``sigma_fc`` absorbs part of that, and the simulation-based
calibration tests check the coverage of the whole procedure against this likelihood.

**FCD.** The distribution of FCD values is summarised by its quantiles; observed quantiles are
Normal around the predicted ones with a learned sd (``sigma_fcd``).

**Amplitude.** Log standard deviation of each region's BOLD series, Normal with learned sd.

**Band powers.** Log relative band power per region (or sensor) and band, Normal with learned
sd (``sigma_bp``): relative powers are compositional and positive, so the log scale makes the
error roughly homoscedastic across bands whose powers differ by orders of magnitude.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vbt_jax import ArgumentError, ShapeError
from vbt_jax.features import fisher_z


@dataclasses.dataclass(frozen=True, eq=False)
class FCLikelihood:
    """Fisher-z likelihood of the upper triangle of an FC matrix.

    Attributes:
        n_regions: N.
        edges: boolean mask over the ``N (N - 1) / 2`` upper-triangle edges (row-major, as
            ``numpy.triu_indices(N, 1)``) that enter the likelihood; the others are held out.
        n_timepoints: volumes behind the observed FC (None: unknown, no sampling term).
        sigma_scale: scale of the HalfNormal prior on the discrepancy sd ``sigma_fc``.
    """

    n_regions: int
    edges: Any = None
    n_timepoints: int | None = None
    sigma_scale: float = 0.5
    site: str = "fc"
    feature: str = "fc"

    def __post_init__(self):
        m = self.n_regions * (self.n_regions - 1) // 2
        e = np.ones(m, bool) if self.edges is None else np.asarray(self.edges, bool)
        if e.shape != (m,):
            raise ShapeError(
                f"FCLikelihood: edges mask must have N(N-1)/2 = {m} entries, got {e.shape}"
            )
        if not e.any():
            raise ArgumentError("FCLikelihood: the edge mask selects no edge")
        if self.n_timepoints is not None and self.n_timepoints <= 3:
            raise ArgumentError(
                f"FCLikelihood: n_timepoints must be > 3 for a Fisher-z variance, got "
                f"{self.n_timepoints}"
            )
        object.__setattr__(self, "edges", e)

    @property
    def index(self) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.triu_indices(self.n_regions, 1)
        return i[self.edges], j[self.edges]

    @property
    def sigma_site(self) -> str:
        return f"sigma_{self.site}"

    def observe(self, fc_obs: np.ndarray) -> np.ndarray:
        """The observed vector (Fisher z of the selected edges) from an (N, N) FC matrix."""
        fc_obs = np.asarray(fc_obs, float)
        if fc_obs.shape != (self.n_regions, self.n_regions):
            raise ShapeError(
                f"observed FC has shape {fc_obs.shape}; the connectome has {self.n_regions} regions"
            )
        i, j = self.index
        return fisher_z(fc_obs[i, j])

    def __call__(self, pred: dict, obs) -> None:
        i, j = self.index
        z = fisher_z(pred["fc"][i, j])
        sigma = numpyro.sample(self.sigma_site, dist.HalfNormal(self.sigma_scale))
        var = sigma**2
        if self.n_timepoints is not None:
            var = var + 1.0 / (self.n_timepoints - 3)
        numpyro.sample(self.site, dist.Normal(z, jnp.sqrt(var)).to_event(1), obs=obs)


@dataclasses.dataclass(frozen=True, eq=False)
class VectorLikelihood:
    """Normal likelihood of a feature vector/array on a transformed scale (log or identity).

    Used for FCD quantiles (identity), regional amplitude (log) and band powers (log).

    Attributes:
        feature: key of the forward map's output.
        site: NumPyro site name of the observation.
        shape: shape of the observed array.
        log: compare on the log scale.
        sigma_scale: scale of the HalfNormal prior on the sd.
        mask: optional boolean array of ``shape``; False entries (missing data) are ignored.
    """

    feature: str
    site: str
    shape: tuple[int, ...]
    log: bool = False
    sigma_scale: float = 0.5
    mask: Any = None

    def __post_init__(self):
        if self.mask is not None:
            m = np.asarray(self.mask, bool)
            if m.shape != tuple(self.shape):
                raise ShapeError(
                    f"{self.site}: mask shape {m.shape} differs from data shape {self.shape}"
                )
            object.__setattr__(self, "mask", m)

    @property
    def sigma_site(self) -> str:
        return f"sigma_{self.site}"

    def observe(self, value) -> np.ndarray:
        v = np.asarray(value, float)
        if v.shape != tuple(self.shape):
            raise ShapeError(f"observed {self.site} has shape {v.shape}, expected {self.shape}")
        if self.log:
            ok = v > 0 if self.mask is None else (v > 0) | ~self.mask
            if not np.all(ok | ~np.isfinite(v)):
                raise ArgumentError(f"observed {self.site} must be positive for a log likelihood")
            v = np.log(np.where(v > 0, v, 1.0))
        if self.mask is not None:
            v = np.where(self.mask, v, 0.0)
        elif not np.all(np.isfinite(v)):
            raise ArgumentError(f"observed {self.site} has non-finite values; give a mask")
        return v

    def __call__(self, pred: dict, obs) -> None:
        mu = pred[self.feature]
        if self.log:
            mu = jnp.log(mu)
        sigma = numpyro.sample(self.sigma_site, dist.HalfNormal(self.sigma_scale))
        d = dist.Normal(mu, sigma)
        if self.mask is not None:
            d = d.mask(jnp.asarray(self.mask))
        numpyro.sample(self.site, d.to_event(len(self.shape)), obs=obs)


def fcd_likelihood(n_quantiles: int, sigma_scale: float = 0.1) -> VectorLikelihood:
    """Likelihood of FCD value quantiles (identity scale)."""
    return VectorLikelihood("fcd_quantiles", "fcd", (n_quantiles,), False, sigma_scale)


def amplitude_likelihood(n_regions: int, sigma_scale: float = 0.5) -> VectorLikelihood:
    """Likelihood of regional BOLD amplitude (log sd per region)."""
    return VectorLikelihood("amplitude", "amplitude", (n_regions,), True, sigma_scale)


def band_power_likelihood(
    n_regions: int, n_bands: int, mask=None, sigma_scale: float = 0.5
) -> VectorLikelihood:
    """Likelihood of log relative band powers per region (or sensor) and band."""
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask, bool).reshape(n_regions, -1), (n_regions, n_bands))
    return VectorLikelihood(
        "band_power", "band_power", (n_regions, n_bands), True, sigma_scale, mask
    )


__all__ = [
    "FCLikelihood",
    "VectorLikelihood",
    "fisher_z",
    "fcd_likelihood",
    "amplitude_likelihood",
    "band_power_likelihood",
]
