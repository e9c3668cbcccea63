"""A virtual drug trial with known ground truth, to test predictions of treatment response.

Virtual patients on DK-84 are drawn from a stated population (:class:`TrialDesign`), given a
5-HT2A drug at known doses with known efficacies, and scanned before and after; the pipeline
fits each patient's baseline from their own pre-treatment scan (:func:`fit_baseline`), the
efficacy on a training cohort from the observed changes (:func:`fit_efficacy`), and predicts
the held-out patients' changes (:func:`predict_change`), scored by :func:`evaluate` and
:func:`heldout_lpd`, with a shuffled-map negative control (:func:`run_virtual_trial`).

This is a validation study, not library API. Its design, the reasons behind the likelihood of
the observed change and the negative control's metric are in ``docs/virtual_trial.md``; its
measured numbers in ``benchmarks/results/virtual_trial.md`` (``benchmarks/virtual_trial.py``).
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError, ShapeError

from .._keys import as_key
from ..treatment._effects import gbc_from_z


class TrialDesign(eqx.Module):
    """Population values of the virtual trial (the ground truth).

    Chosen near a group fit of the DK-84 Hopf twin: mean FC ~0.25 (5-95 %: 0.19-0.32) across
    patients; at the median dose the psychedelic raises mean FC by ~0.025.

    Attributes:
        G: global coupling [1/ms]. mu_loc, mu_sd: patient mean log(-a/G). beta: effect of the
        z-scored node strength on log(-a/G). tau: regional spread. e_pop, e_sd: population
        mean and sd of the drug efficacy. dose_range: (low, high) doses in EC50 units,
        log-uniform. n_timepoints: scan length T (volumes).
    """

    G: float = 8e-4
    mu_loc: float = -3.7
    mu_sd: float = 0.3
    beta: float = -1.0
    tau: float = 0.5
    e_pop: float = -0.5
    e_sd: float = 0.1
    dose_range: tuple[float, float] = (0.25, 4.0)
    n_timepoints: int = 1200

    @property
    def noise_sd(self) -> float:
        """Fisher-z sd of one edge's correlation over ``n_timepoints`` volumes."""
        return 1.0 / math.sqrt(self.n_timepoints - 3)


class Cohort(eqx.Module):
    """Simulated patients (NumPy arrays; ``E = N (N - 1) / 2`` upper-triangle edges).

    Attributes:
        eta: (P, N) true log(-a/G). efficacy: (P,) true efficacies. dose, occupancy: (P,).
        z_pre, z_post: (P, E) observed Fisher-z FC before and after the drug.
    """

    eta: np.ndarray
    efficacy: np.ndarray
    dose: np.ndarray
    occupancy: np.ndarray
    z_pre: np.ndarray
    z_post: np.ndarray

    def take(self, idx: Any) -> Cohort:
        """The sub-cohort of patients ``idx``."""
        return jax.tree_util.tree_map(lambda x: x[idx], self)


def _fc_batch(eta, factor, W, G):
    """(P, N, N) FC for a' = -G exp(eta) * factor, in one batched call (callers put everything
    into one call, or block on the result before the next: see
    :func:`vbt_jax.hopf_covariance_symmetric` on batching)."""
    a = -G * jnp.exp(eta) * factor
    return jax.vmap(lambda x: vbt.hopf_fc_symmetric(x, W, G))(a)


def _upper_z(fc, iu):
    return vbt.features.fisher_z(fc[..., iu[0], iu[1]])


def simulate_cohort(
    key: Any,
    n_patients: int,
    weights: Any,
    strength: Any,
    density: Any,
    design: TrialDesign = TrialDesign(),
) -> Cohort:
    """Draw a cohort from the trial design (see the module docstring).

    Args:
        key: PRNG key.
        n_patients: P.
        weights: (N, N) symmetric weights. strength: (N,) z-scored node strength.
        density: (N,) receptor weights ``rho`` in [0, 1] of the drug (true map).
        design: population values.

    Returns:
        A :class:`Cohort`.
    """
    W = jnp.asarray(weights, jnp.float32)
    n = W.shape[0]
    strength = jnp.asarray(strength, jnp.float32)
    rho = jnp.asarray(density, jnp.float32)
    if strength.shape != (n,) or rho.shape != (n,):
        raise ShapeError(f"simulate_cohort: strength and density must be ({n},)")
    k = jr.split(key, 6)
    mu = design.mu_loc + design.mu_sd * jr.normal(k[0], (n_patients,))
    eta = mu[:, None] + design.beta * strength + design.tau * jr.normal(k[1], (n_patients, n))
    e = design.e_pop + design.e_sd * jr.normal(k[2], (n_patients,))
    lo, hi = design.dose_range
    dose = jnp.exp(jr.uniform(k[3], (n_patients,), minval=math.log(lo), maxval=math.log(hi)))
    occ = dose / (1.0 + dose)  # Occupancy(ec50=1): the factories' default
    iu = np.triu_indices(n, 1)
    factor = jnp.concatenate([jnp.ones_like(eta), 1.0 + (e * occ)[:, None] * rho])
    fc = _fc_batch(jnp.concatenate([eta, eta]), factor, W, design.G)  # one batched call
    fc_pre, fc_post = fc[:n_patients], fc[n_patients:]
    sd = design.noise_sd
    z_pre = _upper_z(fc_pre, iu) + sd * jr.normal(k[4], (n_patients, iu[0].size))
    z_post = _upper_z(fc_post, iu) + sd * jr.normal(k[5], (n_patients, iu[0].size))
    return jax.tree_util.tree_map(
        np.asarray, Cohort(eta, e, dose, occ, z_pre, z_post), is_leaf=eqx.is_array
    )


def _prior_precision(prior_cov: Any, n: int) -> np.ndarray:
    c = np.asarray(1.5**2 if prior_cov is None else prior_cov, np.float64)
    if c.ndim == 0:
        return np.eye(n) / c
    if c.shape != (n, n):
        raise ShapeError(f"fit_baseline: prior_cov must be a scalar or ({n}, {n}), got {c.shape}")
    return np.linalg.inv(c)


def _z_and_jac(eta, W, G, iu):
    """Upper-triangle Fisher-z FC (E,) for ``a = -G exp(eta)`` and its Jacobian (E, N).

    Analytic: ``dX / d eta_k = a_k x_k x_k^T`` (``X = (-B)^-1``, ``x_k`` its column k), so
    with ``y_ik = X_ik / sqrt(X_ii)`` the correlation's derivative is
    ``dr_ij / d eta_k = a_k (y_ik y_jk - r_ij (y_ik^2 + y_jk^2) / 2)``, and
    ``dz / dr = 1 / (1 - r^2) = cosh(z)^2``; ``O(E N)`` instead of N tangent solves.
    """
    a = -G * jnp.exp(eta)
    X = vbt.hopf_covariance_symmetric(a, W, G, 1.0)
    sd = jnp.sqrt(jnp.diag(X))
    Y = X / sd[:, None]
    z = vbt.features.fisher_z((Y / sd[None, :])[iu[0], iu[1]])
    r = jnp.tanh(z)  # the clipped correlation
    Yi, Yj = Y[iu[0]], Y[iu[1]]
    dr = a[None, :] * (Yi * Yj - 0.5 * r[:, None] * (Yi**2 + Yj**2))
    return z, dr * (jnp.cosh(z) ** 2)[:, None]


def fit_baseline(
    z_pre: Any,
    weights: Any,
    design: TrialDesign = TrialDesign(),
    *,
    prior_mean: Any = None,
    prior_cov: Any = None,
    max_iter: int = 30,
    tol: float = 1e-3,
    laplace: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """MAP estimate of each patient's log(-a/G) (P, N) from the pre-treatment Fisher-z FC.

    Minimises ``|z - artanh FC(eta)|^2 / (2 s^2) + (eta - m)^T C^-1 (eta - m) / 2`` (``s``
    the scan noise, ``m``, ``C`` the prior mean and covariance) by Levenberg-Marquardt
    (Gauss-Newton Hessian ``H = J^T J / s^2 + C^-1`` from the analytic Jacobian ``J``, all
    patients at once), started at the prior mean, until every patient has taken a step whose
    predicted decrease of the loss is below ``tol`` nats (or ``max_iter``). G is the
    design's (FC depends on a/G only).

    Args:
        z_pre: (P, E) pre-treatment Fisher-z FC.
        weights: (N, N) symmetric weights.
        design: for G, the scan noise and the default prior mean ``mu_loc``.
        prior_mean: scalar, (N,) or (P, N) prior mean of log(-a/G); default ``mu_loc``.
        prior_cov: scalar variance or (N, N) prior covariance; default ``1.5^2``.
        max_iter, tol: iteration cap and tolerance [nats].
        laplace: also return the Laplace covariance ``H^-1`` (P, N, N) at the estimate.

    Returns:
        (P, N) float32 MAP estimates, with ``laplace`` and the (P, N, N) float64 covariances.

    Raises:
        ArgumentError: for mis-shaped ``z_pre`` or ``prior_cov``.
    """
    W = jnp.asarray(weights, jnp.float32)
    n = W.shape[0]
    z = jnp.asarray(z_pre, jnp.float32)
    if z.ndim != 2 or z.shape[1] != n * (n - 1) // 2:
        raise ShapeError(
            f"fit_baseline: z_pre must be (P, {n * (n - 1) // 2}) for {n} regions, got {z.shape}"
        )
    iu = np.triu_indices(n, 1)
    s2 = design.noise_sd**2
    prec = _prior_precision(prior_cov, n)
    m0 = design.mu_loc if prior_mean is None else prior_mean
    m0 = np.broadcast_to(np.asarray(m0, np.float64), (z.shape[0], n))
    prec32, m32 = jnp.asarray(prec, jnp.float32), jnp.asarray(m0, jnp.float32)

    def objective(eta, zp, m):
        zf, J = _z_and_jac(eta, W, design.G, iu)
        r = zp - zf
        d = eta - m
        loss = 0.5 * (r @ r) / s2 + 0.5 * d @ prec32 @ d
        return loss, -(J.T @ r) / s2 + prec32 @ d, J.T @ J / s2 + prec32

    def loss_only(eta, zp, m):
        fc = vbt.hopf_fc_symmetric(-design.G * jnp.exp(eta), W, design.G)
        r = zp - _upper_z(fc, iu)
        d = eta - m
        return 0.5 * (r @ r) / s2 + 0.5 * d @ prec32 @ d

    obj = jax.jit(jax.vmap(objective))
    lo = jax.jit(jax.vmap(loss_only))

    def at(eta):
        return (np.asarray(x, np.float64) for x in obj(jnp.asarray(eta, jnp.float32), z, m32))

    eta = m0.copy()
    damp = np.full(z.shape[0], 1e-2)
    done = np.zeros(z.shape[0], bool)
    loss, g, H = at(eta)
    for _ in range(max_iter):
        H = 0.5 * (H + np.swapaxes(H, 1, 2))
        A = H + damp[:, None, None] * (np.eye(n) * np.diagonal(H, axis1=1, axis2=2)[:, None])
        step = -np.linalg.solve(A, g[..., None])[..., 0]
        trial = np.asarray(lo(jnp.asarray(eta + step, jnp.float32), z, m32), np.float64)
        # accept within float32 round-off of the loss (~1e-4 of ~1e3 nats)
        ok = np.isfinite(trial) & (trial <= loss + 1e-6 * np.abs(loss))
        eta = np.where(ok[:, None], eta + step, eta)
        damp = np.where(ok, damp / 3.0, damp * 4.0)
        done |= ok & (-0.5 * (g * step).sum(1) < tol)
        loss, g, H = at(eta)
        if done.all():
            break
    eta_hat = eta.astype(np.float32)
    if not laplace:
        return eta_hat
    return eta_hat, np.linalg.inv(0.5 * (H + np.swapaxes(H, 1, 2)))


#: Efficacy grid on which each patient's post-treatment Fisher-z FC is precomputed.
EFFICACY_GRID = (-1.2, 0.8, 41)


def efficacy_grid_z(
    eta_hat: Any,
    occupancy: Any,
    weights: Any,
    density: Any,
    design: TrialDesign = TrialDesign(),
    grid: tuple[float, float, int] = EFFICACY_GRID,
    *,
    change: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-z FC (P, M, E) of each patient at each efficacy of a grid (M,).

    The post-treatment FC of a patient depends on one unknown, the efficacy; computing it
    once on a grid (exact analytic FC, forward only) and interpolating linearly in the model
    replaces a Cholesky solve and its gradient per patient per leapfrog step. With the default
    spacing 0.05 the interpolation error is far below the scan noise (see the tests).

    With ``change``, the predicted drug-induced change ``z(eta_hat, e) - z(eta_hat, 0)``
    instead of ``z(eta_hat, e)`` (the likelihood of :func:`fit_efficacy` with ``change``).
    """
    W = jnp.asarray(weights, jnp.float32)
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    eg = jnp.linspace(grid[0], grid[1], int(grid[2]), dtype=jnp.float32)
    rho = jnp.asarray(density, jnp.float32)

    @jax.jit
    def patient(eta, occ):
        factor = jnp.maximum(1.0 + (eg * occ)[:, None] * rho, 1e-3)
        factor = jnp.concatenate([factor, jnp.ones((1, n))])  # last row: no drug
        eta_m = jnp.broadcast_to(eta, (eg.size + 1, n))
        z = _upper_z(_fc_batch(eta_m, factor, W, design.G), iu)  # one batched call
        return z[:-1] - z[-1] if change else z[:-1]

    eta = np.asarray(eta_hat, np.float32)
    occ = np.asarray(occupancy, np.float32)
    zs = [np.asarray(patient(eta[p], occ[p])) for p in range(eta.shape[0])]
    return np.asarray(eg), np.stack(zs)


def _interp(e, eg, zg):
    """Linear interpolation of zg (P, M, E) at e (P,) on the uniform grid eg.

    Outside the grid: linear extrapolation of the end segments, so that the gradient in
    ``e`` still points back towards the data (a clamped, flat mean would leave only the
    ``e``-dependent spread variance to act on ``e`` there).
    """
    h = eg[1] - eg[0]
    x = (e - eg[0]) / h
    i = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, eg.size - 2)
    w = (x - i)[:, None]
    p = jnp.arange(zg.shape[0])
    return (1.0 - w) * zg[p, i] + w * zg[p, i + 1]


def change_spread(
    eta_hat: Any,
    baseline_cov: Any,
    occupancy: Any,
    weights: Any,
    density: Any,
    e_ref: float,
    design: TrialDesign = TrialDesign(),
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline uncertainty of the predicted change, per unit efficacy, as a low-rank factor.

    With ``eta ~ N(eta_hat, C)`` (the Laplace posterior of :func:`fit_baseline`) and the
    change ``D(eta, e) = z(eta + log f(e)) - z(eta)`` (``f = 1 + e occ rho``), linearised:
    ``Cov D ~ e^2 A C A^T`` with ``A = (J(eta_hat + log f(e_ref)) - J(eta_hat)) / e_ref`` the
    secant slope per unit efficacy of the change's Jacobian ``J = dz/deta`` (the change is
    close to proportional to ``e``; the slope is taken at a reference efficacy). Returned as
    ``Q diag(S^2) Q^T = A C A^T`` with orthonormal ``Q``.

    Args:
        eta_hat: (P, N) baseline estimates. baseline_cov: (P, N, N) their covariances.
        occupancy: (P,). weights: (N, N). density: (N,) assumed receptor map.
        e_ref: reference efficacy (non-zero).
        design: for G.

    Returns:
        ``Q`` (P, E, N) float32 and ``S`` (P, N) float32.

    Raises:
        ArgumentError: for ``e_ref == 0``.
    """
    if e_ref == 0:
        raise ArgumentError("change_spread: e_ref must be non-zero")
    W = jnp.asarray(weights, jnp.float32)
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    rho = jnp.asarray(density, jnp.float32)

    @jax.jit
    @jax.vmap
    def slope(eta, occ):
        shift = jnp.log(jnp.maximum(1.0 + e_ref * occ * rho, 1e-3))
        # both Jacobians in one batched call (see _fc_batch)
        J = jax.vmap(lambda x: _z_and_jac(x, W, design.G, iu)[1])(jnp.stack([eta + shift, eta]))
        return (J[0] - J[1]) / e_ref

    A = np.asarray(
        slope(jnp.asarray(eta_hat, jnp.float32), jnp.asarray(occupancy, jnp.float32)), np.float64
    )
    U = A @ np.linalg.cholesky(np.asarray(baseline_cov, np.float64))
    lam, V = np.linalg.eigh(np.swapaxes(U, 1, 2) @ U)
    S = np.sqrt(np.maximum(lam, 0.0))
    Q = U @ V / np.maximum(S, 1e-30)[:, None, :]
    return Q.astype(np.float32), S.astype(np.float32)


def _lowrank_loglik(r2, qr, lam_extra, var, n_obs):
    """``log N(y | mu, var I + Q diag(lam_extra) Q^T)`` from ``r2 = |y - mu|^2`` and
    ``qr = Q^T (y - mu)`` (..., K) for orthonormal ``Q`` (E, K); ``n_obs = E``."""
    lam = var + lam_extra
    q2 = qr**2
    return -0.5 * (
        (r2 - q2.sum(-1)) / var
        + (q2 / lam).sum(-1)
        + (n_obs - qr.shape[-1]) * jnp.log(var)
        + jnp.log(lam).sum(-1)
        + n_obs * jnp.log(2 * jnp.pi)
    )


def _spread_arrays(spread, P, E):
    """Validated ``Q`` (P, E, K) and ``S`` (P, K) float32; K = 0 without spread."""
    if spread is None:
        return jnp.zeros((P, E, 0)), jnp.zeros((P, 0))
    Q, S = (jnp.asarray(x, jnp.float32) for x in spread)
    if Q.ndim != 3 or Q.shape[:2] != (P, E) or S.shape != (P, Q.shape[2]):
        raise ShapeError(
            f"spread: Q must be ({P}, {E}, K) and S ({P}, K), got {Q.shape}, {S.shape}"
        )
    return Q, S


def _project(spread, zg, z_obs):
    """``S`` (P, K), ``Q^T zg`` (P, M, K), ``Q^T z_obs`` (P, K); K = 0 without spread."""
    Q, S = _spread_arrays(spread, zg.shape[0], zg.shape[2])
    qzg = jnp.einsum("pek,pme->pmk", Q, jnp.asarray(zg))
    return S, qzg, jnp.einsum("pek,pe->pk", Q, jnp.asarray(z_obs))


def _efficacy_model(eg, zg, noise_var, S, qzg, z_obs, qy):
    import numpyro
    import numpyro.distributions as dist

    P = zg.shape[0]
    e_pop = numpyro.sample("e_pop", dist.Normal(0.0, 0.5))
    e_sd = numpyro.sample("e_sd", dist.HalfNormal(0.2))
    s_extra = numpyro.sample("sigma_extra", dist.HalfNormal(0.05))
    with numpyro.plate("patient", P):
        u = numpyro.sample("e_u", dist.Normal(0.0, 1.0))
    e = numpyro.deterministic("e", e_pop + e_sd * u)
    r = z_obs - _interp(e, eg, zg)
    qr = qy - _interp(e, eg, qzg)
    lam = e[:, None] ** 2 * S**2
    ll = _lowrank_loglik((r**2).sum(-1), qr, lam, noise_var + s_extra**2, zg.shape[2])
    numpyro.factor("z_obs", ll.sum())


def _noise_var(design: TrialDesign, change: bool) -> float:
    """Fisher-z sampling variance of the observation: one scan, or the difference of two."""
    return (2.0 if change else 1.0) * design.noise_sd**2


def _check_spread(spread, change, fname):
    if spread is not None and not change:
        raise ArgumentError(f"{fname}: spread (baseline uncertainty) needs change=True")


def fit_efficacy(
    grid_z: tuple[np.ndarray, np.ndarray],
    z_obs: Any,
    design: TrialDesign = TrialDesign(),
    *,
    change: bool = True,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
    key: Any,
    num_warmup: int = 300,
    num_samples: int = 300,
) -> dict[str, np.ndarray]:
    """Hierarchical NUTS fit of the drug efficacy on a training cohort.

    Model: ``e_pop ~ N(0, 0.5)``, ``e_sd ~ HalfNormal(0.2)``, ``e_p = e_pop + e_sd u_p``,
    ``u_p ~ N(0, 1)`` (non-centred), ``sigma_extra ~ HalfNormal(0.05)``,
    ``z_obs[p] ~ N(m_p(e_p), (v + sigma_extra^2) I + e_p^2 Q_p diag(S_p^2) Q_p^T)`` over the
    E edges, with ``m_p(e)`` from the patient's baseline estimate, dose and the assumed
    receptor map (:func:`efficacy_grid_z`, linear interpolation, extrapolated outside the
    grid) and ``(Q, S)`` the baseline uncertainty (``spread``, from :func:`change_spread`;
    none if None). With ``change`` (default) ``z_obs`` is the observed
    change ``z_post - z_pre``, ``m_p`` the predicted change ``z(eta_hat, e) - z(eta_hat, 0)``
    and ``v = 2 / (T - 3)`` (two independent scans); otherwise ``z_obs = z_post``,
    ``m_p = z(eta_hat, e)``, ``v = 1 / (T - 3)`` and no ``spread``.

    Args:
        grid_z: ``(grid (M,), z (P, M, E))`` from :func:`efficacy_grid_z` (with the same
            ``change``).
        z_obs: (P, E) observed Fisher-z change (``change``) or post-treatment FC.
        design: for the scan noise (the population values are not used).
        change, spread: see above.
        key: PRNG key of the NUTS chain; num_warmup, num_samples: its settings.

    Returns:
        Posterior draws: ``e_pop``, ``e_sd``, ``sigma_extra`` (S,), ``e`` (S, P).

    Raises:
        ArgumentError: for mis-shaped ``z_obs`` or ``spread``, or ``spread`` without ``change``.
    """
    from numpyro.infer import MCMC, NUTS, init_to_median

    _check_spread(spread, change, "fit_efficacy")
    eg, zg = grid_z
    z_obs = np.asarray(z_obs, np.float32)
    if z_obs.shape != (zg.shape[0], zg.shape[2]):
        raise ShapeError(
            f"fit_efficacy: z_obs must be {(zg.shape[0], zg.shape[2])}, got {z_obs.shape}"
        )
    S, qzg, qy = _project(spread, zg, z_obs)
    mcmc = MCMC(
        NUTS(_efficacy_model, target_accept_prob=0.85, init_strategy=init_to_median),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=1,
        progress_bar=False,
    )
    noise_var = _noise_var(design, change)
    mcmc.run(
        as_key(key, "fit_efficacy"), jnp.asarray(eg), jnp.asarray(zg), noise_var, S, qzg, z_obs, qy
    )
    s = mcmc.get_samples()
    return {k: np.asarray(s[k]) for k in ("e_pop", "e_sd", "sigma_extra", "e")}


@eqx.filter_jit
def _predict_draws(keys, e_pop, e_sd, s_extra, eg, zg, base, gbc_pre, Q, S, noise_var, n):
    """GBC change of every patient for a batch of posterior draws (see :func:`predict_change`);
    the arrays are arguments, so one compiled program serves every call of the same shapes."""
    P, _, E = zg.shape

    def one(k, e_pop, e_sd, s_extra):
        k1, k2, k3 = jr.split(k, 3)
        e = e_pop + e_sd * jr.normal(k1, (P,))
        sd = jnp.sqrt(noise_var + s_extra**2)
        xi = e[:, None] * S * jr.normal(k3, S.shape)
        z = base + _interp(e, eg, zg) + jnp.einsum("pek,pk->pe", Q, xi)
        z = z + sd * jr.normal(k2, (P, E))
        return gbc_from_z(z, n) - gbc_pre

    return jax.vmap(one)(keys, e_pop, e_sd, s_extra)


def predict_change(
    key: Any,
    posterior: dict[str, np.ndarray],
    grid_z: tuple[np.ndarray, np.ndarray],
    z_pre: Any,
    design: TrialDesign = TrialDesign(),
    *,
    change: bool = True,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Predictive draws (S, P, N) of held-out patients' observed regional GBC change.

    Each posterior draw gives a new efficacy ``e ~ N(e_pop, e_sd)`` per patient and a draw of
    the observation of :func:`fit_efficacy`'s likelihood (``m_p(e)`` from ``grid_z``, plus
    ``e Q_p (S_p * xi)`` with ``xi ~ N(0, I)`` for ``spread``, plus noise of sd
    ``sqrt(v + sigma_extra^2)``). With ``change`` that is the Fisher-z change, added to the
    observed pre scan ``z_pre`` (P, E) to give the post scan; otherwise it is the post scan
    itself. Returned: GBC(post) - GBC(``z_pre``), the observed quantity of
    :func:`observed_change`.

    Raises:
        ArgumentError: for a mis-shaped ``spread`` or ``spread`` without ``change``.
    """
    _check_spread(spread, change, "predict_change")
    eg, zg = (jnp.asarray(x) for x in grid_z)
    P, _, E = zg.shape
    n = int(round(0.5 * (1 + math.sqrt(1 + 8 * E))))
    z_pre = jnp.asarray(z_pre, jnp.float32)
    gbc_pre = gbc_from_z(z_pre, n)
    base = z_pre if change else jnp.zeros_like(z_pre)
    noise_var = _noise_var(design, change)
    Q, S = _spread_arrays(spread, P, E)

    post = [jnp.asarray(posterior[k], jnp.float32) for k in ("e_pop", "e_sd", "sigma_extra")]
    keys = jr.split(key, post[0].shape[0])
    arrays = (eg, zg, base, gbc_pre, Q, S, jnp.float32(noise_var))
    out = [
        np.asarray(_predict_draws(keys[s : s + 25], *(x[s : s + 25] for x in post), *arrays, n))
        for s in range(0, keys.shape[0], 25)
    ]
    return np.concatenate(out)


@jax.jit
def _lpd_residuals(eq, eg, zg, z_obs, qzg, qy):
    """Squared residual norm (P, Q) and projected residuals (P, Q, K) at the quadrature points
    ``eq``, one patient at a time (``lax.map``: the (P, Q, E) residuals are never held)."""

    def patient(args):
        zg_p, zo, qzg_p, qy_p = args

        def at(e):
            r = zo - _interp(e[None], eg, zg_p[None])[0]
            return (r**2).sum(), qy_p - _interp(e[None], eg, qzg_p[None])[0]

        return jax.vmap(at)(eq)

    return jax.lax.map(patient, (zg, z_obs, qzg, qy))


@eqx.filter_jit
def _lpd_draws(e_pop, e_sd, s_extra, R, QR, lam, eq, noise_var, E):
    """Log predictive density (S, P) of each posterior draw (see :func:`heldout_lpd`)."""
    from jax.scipy.special import logsumexp

    h = eq[1] - eq[0]

    def per_draw(x):
        ep, es, sx = x
        ll = _lowrank_loglik(R, QR, lam, noise_var + sx**2, E)  # (P, Q)
        lp_e = -0.5 * ((eq - ep) / es) ** 2 - jnp.log(es * jnp.sqrt(2 * jnp.pi))
        return logsumexp(ll + lp_e, axis=-1) + jnp.log(h)  # (P,)

    return jax.lax.map(per_draw, (e_pop, e_sd, s_extra))


def heldout_lpd(
    posterior: dict[str, np.ndarray],
    grid_z: tuple[np.ndarray, np.ndarray],
    z_obs: Any,
    design: TrialDesign = TrialDesign(),
    n_quad: int = 801,
    *,
    change: bool = True,
    spread: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Log predictive density (P,) of held-out patients' observations [nats].

    ``log (1/S) sum_s integral N(e; e_pop_s, e_sd_s) L(z_obs | e, sigma_extra_s) de`` with
    ``L`` the likelihood of :func:`fit_efficacy` (the Fisher-z change with ``change``, else
    the post scan; with the baseline uncertainty ``spread``): the efficacy of a new patient is
    integrated out by quadrature on ``n_quad`` points of the grid range (the likelihood is too
    sharp in ``e`` for Monte Carlo), the posterior by the average over draws. Higher is
    better.

    Raises:
        ArgumentError: for a mis-shaped ``spread`` or ``spread`` without ``change``.
    """
    from jax.scipy.special import logsumexp

    _check_spread(spread, change, "heldout_lpd")
    eg, zg = (jnp.asarray(x) for x in grid_z)
    z_obs = jnp.asarray(z_obs, jnp.float32)
    P, _, E = zg.shape
    S, qzg, qy = _project(spread, zg, z_obs)
    eq = jnp.linspace(eg[0], eg[-1], n_quad)
    R, QR = _lpd_residuals(eq, eg, zg, z_obs, qzg, qy)
    lam = eq[None, :, None] ** 2 * S[:, None, :] ** 2  # (P, Q, K)
    draws = [jnp.asarray(posterior[k], jnp.float32) for k in ("e_pop", "e_sd", "sigma_extra")]
    lpd = _lpd_draws(*draws, R, QR, lam, eq, jnp.float32(_noise_var(design, change)), E)
    return np.asarray(logsumexp(lpd, axis=0) - jnp.log(lpd.shape[0]))


def interval_coverage(draws: Any, truth: Any, prob: float = 0.9) -> float:
    """Fraction of ``truth`` (P,) inside the central ``prob`` intervals of ``draws`` (S, P)."""
    lo, hi = np.quantile(np.asarray(draws), [0.5 * (1 - prob), 0.5 * (1 + prob)], axis=0)
    t = np.asarray(truth)
    return float(np.mean((t >= lo) & (t <= hi)))


def auc(score: Any, label: Any) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic (ties count one half)."""
    s = np.asarray(score, np.float64)
    y = np.asarray(label, bool)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        raise ArgumentError("auc: need both responders and non-responders")
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(gt / (pos.size * neg.size))


def observed_change(cohort: Cohort, n: int) -> np.ndarray:
    """(P, N) observed regional GBC change, post minus pre scan."""
    return np.asarray(gbc_from_z(cohort.z_post, n) - gbc_from_z(cohort.z_pre, n))


def evaluate(
    pred: np.ndarray, observed: np.ndarray, threshold: float, prob: float = 0.9
) -> dict[str, Any]:
    """Scores of predictive draws ``pred`` (S, P, N) against ``observed`` (P, N) changes.

    The responder summary is the mean regional GBC change (= change of the mean FC);
    responder = summary > ``threshold``.

    Returns:
        dict: ``coverage`` (fraction of regional observed changes inside the central ``prob``
        predictive interval), ``auc`` (predicted P(responder) vs truth), ``rmse`` (predictive
        mean vs observed regional change), ``p_values`` (P,) of the observed summary under
        the predictive (fraction of draws below it), ``ppc_coverage`` (fraction of p-values
        in the central ``prob`` range), ``prob_responder`` (P,), ``responder`` (P,).
    """
    lo, hi = np.quantile(pred, [0.5 * (1 - prob), 0.5 * (1 + prob)], axis=0)
    coverage = float(np.mean((observed >= lo) & (observed <= hi)))
    s_pred = pred.mean(-1)
    s_obs = observed.mean(-1)
    p_resp = (s_pred > threshold).mean(0)
    resp = s_obs > threshold
    pv = (s_pred < s_obs[None]).mean(0)
    return {
        "coverage": coverage,
        "auc": auc(p_resp, resp),
        "rmse": float(np.sqrt(np.mean((pred.mean(0) - observed) ** 2))),
        "p_values": pv,
        "ppc_coverage": float(np.mean((pv >= 0.5 * (1 - prob)) & (pv <= 0.5 * (1 + prob)))),
        "prob_responder": p_resp,
        "responder": resp,
    }


def run_virtual_trial(
    *,
    key: Any,
    n_train: int = 16,
    n_test: int = 40,
    design: TrialDesign = TrialDesign(),
    shuffle_seed: int | None = 1,
    baseline: str = "map",
    baseline_sd: float = 0.05,
    likelihood: str = "change",
    propagate: bool = True,
    num_warmup: int = 300,
    num_samples: int = 300,
) -> dict[str, dict[str, Any]]:
    """The whole trial on DK-84 with the 5-HT2A psychedelic (Hopf), end to end.

    One cohort (training patients first) is simulated with the true 5-HT2A map. The
    pipeline (efficacy fit and held-out prediction) is run with the true map (``"true"``)
    and, with ``shuffle_seed``, with a seeded permutation of the map (``"shuffled"``, the
    negative control; the data still come from the true map). The responder threshold is the
    median observed mean GBC change of the training cohort.

    Args:
        key: PRNG key (``jax.random.key(seed)``): the cohort, the baseline noise, the
            predictive draws and NUTS each get their own stream of it.
        n_train, n_test: cohort sizes.
        design: ground truth.
        shuffle_seed: permutation seed of the control map, or None for no control.
        baseline: ``"map"``: :func:`fit_baseline` on each patient's pre-treatment scan with
            the design's population as the prior, and its Laplace covariance;
            ``"noisy_truth"``: baseline log(-a/G) = truth + N(0, ``baseline_sd``) per region,
            covariance ``baseline_sd^2 I``.
        likelihood: ``"change"``: the efficacy likelihood and predictions use the observed
            Fisher-z change post minus pre (see the module docstring); ``"post"``: the
            post-treatment scan alone (the earlier design, miscalibrated per patient).
        propagate: with ``"change"``, propagate the baseline covariance into the likelihood
            and predictions (:func:`change_spread`); False treats the baseline as known.
        num_warmup, num_samples: NUTS settings.

    Returns:
        ``{"true": result, "shuffled": result}``; each result holds the :func:`evaluate`
        scores, ``posterior``, ``threshold``, ``pred`` (S, n_test, N), ``observed``,
        ``lpd`` (n_test,) from :func:`heldout_lpd` (the negative control's metric) and
        ``efficacy_coverage`` (fraction of the training patients' true efficacies inside
        their 90 % posterior intervals); the ``"true"`` one also ``cohort``, ``eta_hat`` and
        ``seconds`` (wall time of the baseline fit and of each map's pipeline).

    Raises:
        ArgumentError: for an unknown ``baseline`` or ``likelihood``, or ``propagate`` with
            ``likelihood="post"``.
    """
    import time

    from vbt_jax.interventions import psychedelic_5ht2a

    if baseline not in ("noisy_truth", "map"):
        raise ArgumentError(
            f"run_virtual_trial: baseline must be 'noisy_truth' or 'map', got {baseline!r}"
        )
    if likelihood not in ("change", "post"):
        raise ArgumentError(
            f"run_virtual_trial: likelihood must be 'change' or 'post', got {likelihood!r}"
        )
    change = likelihood == "change"
    if propagate and not change:
        raise ArgumentError("run_virtual_trial: propagate=True needs likelihood='change'")
    conn = vbt.dk84().normalised("max")
    n = conn.n_regions
    W = np.asarray(conn.weights, np.float32)
    strength = np.asarray(vbt.node_strength_map(conn).zscore().fill_missing(0.0).values)
    rho_true = np.asarray(psychedelic_5ht2a("hopf").regional_density(conn.labels), np.float32)
    key = jax.random.wrap_key_data(as_key(key, "run_virtual_trial"))
    k_sim, k_base, k_pred = jr.split(key, 3)
    k_nuts = jr.fold_in(key, 3)
    cohort = simulate_cohort(k_sim, n_train + n_test, W, strength, rho_true, design)
    t0 = time.perf_counter()
    if baseline == "map":
        # the stated population as the prior: eta = mu_p + beta strength + tau z_p
        prior_cov = design.mu_sd**2 * np.ones((n, n)) + design.tau**2 * np.eye(n)
        eta_hat, eta_cov = fit_baseline(
            cohort.z_pre,
            W,
            design,
            prior_mean=design.mu_loc + design.beta * strength,
            prior_cov=prior_cov,
            laplace=True,
        )
    else:
        noise = baseline_sd * np.asarray(jr.normal(k_base, cohort.eta.shape))
        eta_hat = (cohort.eta + noise).astype(np.float32)
        eta_cov = np.broadcast_to(baseline_sd**2 * np.eye(n), (len(eta_hat), n, n))
    seconds = {"baseline": time.perf_counter() - t0}
    train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    tr, te = cohort.take(train), cohort.take(test)
    threshold = float(np.median(observed_change(tr, n).mean(-1)))
    obs = observed_change(te, n)
    y_tr = tr.z_post - tr.z_pre if change else tr.z_post
    y_te = te.z_post - te.z_pre if change else te.z_post
    maps = {"true": rho_true}
    if shuffle_seed is not None:
        maps["shuffled"] = rho_true[np.random.default_rng(shuffle_seed).permutation(n)]
    results = {}
    for name, rho in maps.items():
        t0 = time.perf_counter()
        grid = efficacy_grid_z(eta_hat, cohort.occupancy, W, rho, design, change=change)
        g_tr = (grid[0], grid[1][train])
        g_te = (grid[0], grid[1][test])
        sp_tr = sp_te = None
        if propagate:
            # reference efficacy of the spread's slope: median of the training patients'
            # grid maxima of the likelihood without spread (training data only)
            rss = ((g_tr[1] - y_tr[:, None]) ** 2).sum(-1)
            e_ref = float(np.median(grid[0][np.argmin(rss, axis=1)]))
            Q, S = change_spread(eta_hat, eta_cov, cohort.occupancy, W, rho, e_ref, design)
            sp_tr, sp_te = (Q[train], S[train]), (Q[test], S[test])
        post = fit_efficacy(
            g_tr,
            y_tr,
            design,
            change=change,
            spread=sp_tr,
            key=k_nuts,
            num_warmup=num_warmup,
            num_samples=num_samples,
        )
        pred = predict_change(k_pred, post, g_te, te.z_pre, design, change=change, spread=sp_te)
        out = evaluate(pred, obs, threshold)
        out["lpd"] = heldout_lpd(post, g_te, y_te, design, change=change, spread=sp_te)
        out["efficacy_coverage"] = interval_coverage(post["e"], tr.efficacy)
        out.update(posterior=post, threshold=threshold, pred=pred, observed=obs)
        results[name] = out
        seconds[name] = time.perf_counter() - t0
    results["true"].update(cohort=cohort, eta_hat=eta_hat, seconds=seconds)
    return results
