"""Checking a prediction against observed on-drug data, and the patient's drug efficacy.

Given a patient's fitted twin (posterior draws of ``a`` and ``G``), a drug at a dose, and the
patient's FC before (``fc_pre``) and on the drug (``fc_post``), both from scans of ``T``
volumes:

**Posterior predictive check.** For every posterior draw of the twin and a new efficacy
drawn from its prior ``Normal(e0, prior_sd)`` (a patient's response to a drug is not known
before the session), the predicted pre and post FC are observed with Fisher-z sampling noise
of sd ``1 / sqrt(T - 3)`` per edge (independent scans), and the replicated change is
compared with the observed change: a two-sided posterior
predictive p-value of the mean FC change, and per region the p-value and the coverage of the
central interval of the GBC change. The model's misfit of the baseline FC is assumed to be the
same in both sessions, so it cancels in the change (the fit's discrepancy sd is not added).

**The patient's efficacy.** The efficacy ``e`` of the drug is inferred from the observed
change of every edge's Fisher z, ``dz_obs ~ Normal(dz(e, draw), sqrt(2 / (T - 3) + s^2))``
with ``dz(e, draw)`` the predicted change at efficacy ``e`` for a posterior draw of the twin,
``s ~ HalfNormal(s_scale)`` a discrepancy sd, the twin's posterior averaged over, and a
``Normal(e0, prior_sd)`` prior (``e0`` the drug's configured efficacy). ``dz`` is computed
exactly on a coarse grid of efficacies and interpolated linearly in between (a smooth
function of ``e``); the posterior is evaluated on a fine grid, where the residual sum of
squares of the interpolated prediction is a quadratic in the interpolation weight, so the
fine grid costs no extra FC solve.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError, ShapeError

from ._effects import gbc_from_z


@dataclasses.dataclass(frozen=True)
class ObservedCheck:
    """Result of :func:`check_observed` (NumPy arrays).

    Attributes:
        observed_mean_fc_change: observed change of the mean FC (upper triangle).
        predicted_mean_fc_change: (R,) replicated changes (posterior draws x noise replicates).
        p_mean_fc: two-sided posterior predictive p-value of the observed mean FC change.
        observed_gbc_change: (N,) observed regional GBC change.
        gbc_p: (N,) two-sided p-values of the regional GBC changes.
        gbc_coverage: share of regions whose observed change lies in the central ``prob``
            interval of the replicated changes.
        efficacy_grid: (F,) efficacies; efficacy_posterior: (F,) posterior density on it.
        efficacy_mean, efficacy_sd: posterior mean and sd.
        efficacy_interval: central ``prob`` posterior interval.
        efficacy_prior: (loc, sd) of the prior.
        prob: interval mass.
    """

    observed_mean_fc_change: float
    predicted_mean_fc_change: np.ndarray
    p_mean_fc: float
    observed_gbc_change: np.ndarray
    gbc_p: np.ndarray
    gbc_coverage: float
    efficacy_grid: np.ndarray
    efficacy_posterior: np.ndarray
    efficacy_mean: float
    efficacy_sd: float
    efficacy_interval: tuple[float, float]
    efficacy_prior: tuple[float, float]
    prob: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready scalars and the regional p-values."""
        return {
            "observed_mean_fc_change": self.observed_mean_fc_change,
            "predicted_mean_fc_change_mean": float(self.predicted_mean_fc_change.mean()),
            "predicted_mean_fc_change_interval": [
                float(q)
                for q in np.quantile(
                    self.predicted_mean_fc_change, [0.5 - self.prob / 2, 0.5 + self.prob / 2]
                )
            ],
            "p_mean_fc": self.p_mean_fc,
            "gbc_coverage": self.gbc_coverage,
            "gbc_p_min": float(self.gbc_p.min()),
            "efficacy_mean": self.efficacy_mean,
            "efficacy_sd": self.efficacy_sd,
            "efficacy_interval": list(self.efficacy_interval),
            "efficacy_prior": list(self.efficacy_prior),
            "interval": self.prob,
        }


def _two_sided(rep: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Two-sided predictive p-value: 2 min(P(rep <= obs), P(rep >= obs)), capped at 1."""
    lo = (rep <= obs).mean(0)
    hi = (rep >= obs).mean(0)
    return np.minimum(1.0, 2.0 * np.minimum(lo, hi))


def _z_up(a_d, G_d, e, W, occ_rho):
    """Fisher z of the upper-triangle FC of the twin ``a_d`` under the drug at efficacy e."""
    n = W.shape[0]
    iu = jnp.triu_indices(n, 1)
    fc = vbt.hopf_fc_symmetric(a_d * (1.0 + e * occ_rho), W, G_d)
    return vbt.features.fisher_z(fc[iu])


@functools.partial(jax.jit, static_argnames="replicates")
def _replicate(a_d, G_d, key, W, occ_rho, e0, e_sd, s, replicates):
    """Replicated (mean FC change (R,), GBC change (R, N)) of one draw: a new efficacy from
    its prior per replicate, and scan noise."""
    k0, k1, k2 = jr.split(key, 3)
    e = e0 + e_sd * jr.normal(k0, (replicates,))
    # one batched FC solve for e = 0 and the replicates (see _rss_terms)
    z = jax.vmap(lambda ei: _z_up(a_d, G_d, ei, W, occ_rho))(jnp.concatenate([jnp.zeros(1), e]))
    z0, z1 = z[0], z[1:]
    z0 = z0 + s * jr.normal(k1, z1.shape)
    z1 = z1 + s * jr.normal(k2, z1.shape)
    n = W.shape[0]
    return (jnp.tanh(z1) - jnp.tanh(z0)).mean(-1), gbc_from_z(z1, n) - gbc_from_z(z0, n)


@jax.jit
def _rss_terms(a_d, G_d, eg, W, occ_rho, dz_obs):
    """Per interval of the efficacy grid: sum r^2, sum r dZ, sum dZ^2 (r the residual at the
    interval's left end, dZ the change of the prediction across it)."""
    # e = 0 goes into the same batched solve as the grid (see vbt.hopf_covariance_symmetric
    # on batching)
    Zall = jax.vmap(lambda e: _z_up(a_d, G_d, e, W, occ_rho))(jnp.concatenate([jnp.zeros(1), eg]))
    Z0, Z = Zall[0], Zall[1:]  # (E,), (M, E)
    r = dz_obs - (Z[:-1] - Z0)
    dZ = Z[1:] - Z[:-1]
    return (r * r).sum(-1), (r * dZ).sum(-1), (dZ * dZ).sum(-1)


def _check_fc(fc: Any, n: int, what: str) -> np.ndarray:
    fc = np.asarray(fc, np.float64)
    if fc.shape != (n, n):
        raise ShapeError(f"check_observed: {what} must be ({n}, {n}), got {fc.shape}")
    iu = np.triu_indices(n, 1)
    if not np.all(np.isfinite(fc[iu])) or np.any(np.abs(fc[iu]) >= 1):
        raise ArgumentError(f"check_observed: {what} needs finite correlations in (-1, 1)")
    return fc


def check_observed(
    a_draws: Any,
    G_draws: Any,
    weights: Any,
    labels: Any,
    drug: Any,
    dose: float,
    fc_pre: Any,
    fc_post: Any,
    n_timepoints: int,
    *,
    key: Any,
    replicates: int = 4,
    prob: float = 0.9,
    prior_sd: float = 0.5,
    discrepancy_scale: float = 0.05,
    grid: tuple[float, float, int] = (-1.5, 1.5, 61),
    fine: int = 1201,
    efficacy_draws: int = 64,
) -> ObservedCheck:
    """Posterior predictive check of an observed drug effect, and the efficacy's posterior.

    Args:
        a_draws, G_draws: (D, N), (D,) posterior draws of the patient's Hopf twin.
        weights: (N, N) symmetric structural weights of the fit; labels: (N,) region labels.
        drug: a :class:`~vbt_jax.interventions.Drug` acting on ``("a",)`` in ``"scale"`` mode.
        dose: the dose of the on-drug scan (the drug's EC50 unit).
        fc_pre, fc_post: (N, N) observed FC before and on the drug.
        n_timepoints: volumes of each scan (> 3).
        key: PRNG key of the noise replicates.
        replicates: replicates (efficacy and scan noise) per posterior draw.
        prob: interval mass.
        prior_sd: sd of the efficacy's Normal prior around the drug's configured efficacy
            (also the spread of the replicated sessions' efficacies).
        discrepancy_scale: scale of the HalfNormal prior on the discrepancy sd ``s``.
        grid: (low, high, points) of the exact efficacy grid; fine: points of the fine grid.
        efficacy_draws: posterior draws (thinned evenly) used for the efficacy posterior.

    Returns:
        An :class:`ObservedCheck`.

    Raises:
        ArgumentError: shapes, a drug that is not a scaling Hopf drug, ``n_timepoints <= 3``,
            or FC matrices with values outside (-1, 1).
    """
    from vbt_jax.interventions import Drug

    a = np.asarray(a_draws, np.float32)
    G = np.asarray(G_draws, np.float32).reshape(-1)
    if a.ndim != 2 or G.shape != (a.shape[0],):
        raise ShapeError(
            f"check_observed: a_draws (D, N) and G_draws (D,) expected, got {a.shape}, {G.shape}"
        )
    D, n = a.shape
    W = jnp.asarray(np.asarray(weights, np.float32))
    if W.shape != (n, n):
        raise ShapeError(f"check_observed: weights must be ({n}, {n}), got {W.shape}")
    if not isinstance(drug, Drug) or drug.parameter != ("a",) or drug.mode != "scale":
        raise ArgumentError("check_observed: the drug must be a Hopf drug scaling ('a',)")
    if not isinstance(n_timepoints, int | np.integer) or n_timepoints <= 3:
        raise ArgumentError(
            f"check_observed: n_timepoints must be an integer > 3, got {n_timepoints}"
        )
    if not 0 < prob < 1:
        raise ArgumentError(f"check_observed: prob must be in (0, 1), got {prob}")
    pre = _check_fc(fc_pre, n, "fc_pre")
    post = _check_fc(fc_post, n, "fc_post")
    iu = np.triu_indices(n, 1)
    s = 1.0 / np.sqrt(n_timepoints - 3)
    rho = jnp.asarray(drug.regional_density(labels), jnp.float32)
    occ = float(drug.occupancy(dose))
    e0 = float(np.asarray(drug.efficacy))

    occ_rho = occ * rho
    keys = jr.split(key, D)
    reps = [
        _replicate(jnp.asarray(a[d]), G[d], keys[d], W, occ_rho, e0, prior_sd, s, replicates)
        for d in range(D)
    ]
    rep_mean = np.concatenate([np.asarray(r[0]) for r in reps])
    rep_gbc = np.concatenate([np.asarray(r[1]) for r in reps])
    obs_mean = float(post[iu].mean() - pre[iu].mean())
    obs_gbc = (post.sum(1) - np.diag(post)) / (n - 1) - (pre.sum(1) - np.diag(pre)) / (n - 1)
    lo, hi = np.quantile(rep_gbc, [0.5 - prob / 2, 0.5 + prob / 2], axis=0)
    gbc_cov = float(np.mean((obs_gbc >= lo) & (obs_gbc <= hi)))

    # ---- the efficacy: exact dz on a coarse grid, RSS on a fine grid by interpolation
    lo_e, hi_e, m = float(grid[0]), float(grid[1]), int(grid[2])
    eg = jnp.linspace(lo_e, hi_e, m, dtype=jnp.float32)
    dz_obs = jnp.asarray(
        vbt.features.fisher_z(post[iu]) - vbt.features.fisher_z(pre[iu]), jnp.float32
    )
    sel = np.linspace(0, D - 1, min(efficacy_draws, D)).round().astype(int)

    terms = [_rss_terms(jnp.asarray(a[d]), G[d], eg, W, occ_rho, dz_obs) for d in sel]
    A, B, C = (np.stack(x).astype(np.float64) for x in zip(*terms, strict=True))  # (S, M - 1)
    ef = np.linspace(lo_e, hi_e, fine)
    x = np.clip((ef - lo_e) / (hi_e - lo_e) * (m - 1), 0.0, m - 1 - 1e-9)
    i = np.floor(x).astype(int)
    w = x - i
    rss = A[:, i] - 2.0 * w * B[:, i] + w * w * C[:, i]  # (S, F)
    E = iu[0].size
    sx = np.linspace(0.0, 4.0 * discrepancy_scale, 41)
    log_p_sx = -0.5 * (sx / discrepancy_scale) ** 2
    log_p_sx -= np.logaddexp.reduce(log_p_sx)
    var = 2.0 * s * s + sx**2  # (Q,)
    ll = -0.5 * rss[:, :, None] / var - 0.5 * E * np.log(2 * np.pi * var)  # (S, F, Q)
    ll = np.logaddexp.reduce(ll + log_p_sx, axis=-1)  # (S, F): s integrated out
    ll = np.logaddexp.reduce(ll, axis=0) - np.log(ll.shape[0])  # twin's posterior averaged
    log_post = ll - 0.5 * ((ef - e0) / prior_sd) ** 2
    log_post -= log_post.max()
    p = np.exp(log_post)
    h = ef[1] - ef[0]
    p /= p.sum() * h
    cdf = np.cumsum(p) * h
    mean = float((ef * p).sum() * h)
    sd = float(np.sqrt(((ef - mean) ** 2 * p).sum() * h))
    interval = (
        float(np.interp(0.5 - prob / 2, cdf, ef)),
        float(np.interp(0.5 + prob / 2, cdf, ef)),
    )
    return ObservedCheck(
        observed_mean_fc_change=obs_mean,
        predicted_mean_fc_change=rep_mean,
        p_mean_fc=float(_two_sided(rep_mean, obs_mean)),
        observed_gbc_change=obs_gbc,
        gbc_p=_two_sided(rep_gbc, obs_gbc),
        gbc_coverage=gbc_cov,
        efficacy_grid=ef,
        efficacy_posterior=p,
        efficacy_mean=mean,
        efficacy_sd=sd,
        efficacy_interval=interval,
        efficacy_prior=(e0, prior_sd),
        prob=prob,
    )
