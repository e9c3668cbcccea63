"""A virtual drug trial with known ground truth, to test predictions of treatment response.

Generative design (all numbers in :class:`TrialDesign`):

- P virtual patients on one structural connectome (DK-84, weights / max). Patient ``p`` has
  regional Hopf bifurcation parameters ``a_p = -G exp(eta_p)``,
  ``eta_p = mu_p + beta * strength + tau * z_p`` with ``mu_p ~ N(mu_loc, mu_sd)``,
  ``z_p ~ N(0, I)`` and ``strength`` the z-scored node strength.
- Each patient gets a known dose ``d_p`` (log-uniform over ``dose_range``, in EC50 units) of a
  Hopf drug (default ``psychedelic_5ht2a("hopf")``: ``a' = a (1 + e_p occ(d_p) rho)``) with
  a patient efficacy ``e_p ~ N(e_pop, e_sd)``.
- Scans: pre- and post-treatment FC = analytic FC with independent Fisher-z noise of sd
  ``1 / sqrt(T - 3)`` on every edge (``T`` volumes).

Inference pipeline:

1. Baseline: ``eta_p`` of every patient is either the truth plus N(0, 0.05) noise per region
   (default, a stand-in for a per-patient fit) or a MAP estimate from the pre-treatment FC
   alone (:func:`fit_baseline`, Adam; slow on a CPU), then treated as known (its estimation
   error is absorbed by ``sigma_extra`` below).
2. :func:`fit_efficacy`: hierarchical NumPyro model on a training cohort: ``e_pop ~ N(0, 0.5)``,
   ``e_sd ~ HalfNormal(0.2)``, non-centred ``e_p = e_pop + e_sd u_p``, ``sigma_extra ~
   HalfNormal(0.05)``; likelihood ``z_post ~ N(artanh FC(a'_p), sqrt(1/(T-3) + sigma_extra^2))``
   over all edges; NUTS.
3. :func:`predict_change`: for held-out patients, posterior ``(e_pop, e_sd, sigma_extra)`` ->
   new ``e`` -> post-treatment FC from their baseline estimate -> Fisher-z noise -> predictive
   draws of the observed regional GBC change (post minus the observed pre scan).
4. :func:`evaluate`: 90% interval coverage of the regional GBC change, responder AUC
   (Mann-Whitney), RMSE of the predictive mean change, posterior predictive p-values;
   :func:`heldout_lpd`: log predictive density of the held-out post-treatment scans (the
   metric of the shuffled-map negative control).
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
from vbt_jax import ConfigError


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
    """(P, N, N) FC for a' = -G exp(eta) * factor."""
    a = -G * jnp.exp(eta) * factor
    return jax.vmap(lambda x: vbt.hopf_fc_symmetric(x, W, G))(a)


def _upper_z(fc, iu):
    return jnp.arctanh(jnp.clip(fc[..., iu[0], iu[1]], -0.999999, 0.999999))


def gbc_from_z(z: Any, n: int) -> np.ndarray:
    """(..., N) GBC (mean correlation with the other regions) from (..., E) Fisher-z edges."""
    z = jnp.asarray(z)
    iu = np.triu_indices(n, 1)
    r = jnp.tanh(z)
    m = jnp.zeros(z.shape[:-1] + (n, n), r.dtype).at[..., iu[0], iu[1]].set(r)
    return (m + jnp.swapaxes(m, -1, -2)).sum(-1) / (n - 1)


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
        raise ConfigError(f"simulate_cohort: strength and density must be ({n},)")
    k = jr.split(key, 6)
    mu = design.mu_loc + design.mu_sd * jr.normal(k[0], (n_patients,))
    eta = mu[:, None] + design.beta * strength + design.tau * jr.normal(k[1], (n_patients, n))
    e = design.e_pop + design.e_sd * jr.normal(k[2], (n_patients,))
    lo, hi = design.dose_range
    dose = jnp.exp(jr.uniform(k[3], (n_patients,), minval=math.log(lo), maxval=math.log(hi)))
    occ = dose / (1.0 + dose)  # Occupancy(ec50=1): the factories' default
    iu = np.triu_indices(n, 1)
    fc_pre = _fc_batch(eta, 1.0, W, design.G)
    fc_post = _fc_batch(eta, 1.0 + (e * occ)[:, None] * rho, W, design.G)
    sd = design.noise_sd
    z_pre = _upper_z(fc_pre, iu) + sd * jr.normal(k[4], (n_patients, iu[0].size))
    z_post = _upper_z(fc_post, iu) + sd * jr.normal(k[5], (n_patients, iu[0].size))
    return jax.tree_util.tree_map(
        np.asarray, Cohort(eta, e, dose, occ, z_pre, z_post), is_leaf=eqx.is_array
    )


def fit_baseline(
    z_pre: Any,
    weights: Any,
    design: TrialDesign = TrialDesign(),
    *,
    steps: int = 300,
    learning_rate: float = 0.05,
    prior_sd: float = 1.5,
) -> np.ndarray:
    """MAP estimate of each patient's log(-a/G) (P, N) from the pre-treatment Fisher-z FC.

    Adam on ``sum (z - artanh FC(eta))^2 / (2 s^2) + sum (eta - mu_loc)^2 / (2 prior_sd^2)``
    (``s`` the scan noise), all patients at once (vmap). G is the design's (FC depends on a/G
    only).
    """
    import optax

    W = jnp.asarray(weights, jnp.float32)
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    z = jnp.asarray(z_pre, jnp.float32)
    s2 = design.noise_sd**2

    def loss(eta, zp):
        fc = vbt.hopf_fc_symmetric(-design.G * jnp.exp(eta), W, design.G)
        r = zp - _upper_z(fc, iu)
        return 0.5 * (r @ r) / s2 + 0.5 * jnp.sum((eta - design.mu_loc) ** 2) / prior_sd**2

    opt = optax.adam(learning_rate)
    grad = jax.vmap(jax.grad(loss))

    @jax.jit
    def run(eta0):
        def step(carry, _):
            eta, st = carry
            upd, st = opt.update(grad(eta, z), st, eta)
            return (optax.apply_updates(eta, upd), st), None

        (eta, _), _ = jax.lax.scan(step, (eta0, opt.init(eta0)), None, length=steps)
        return eta

    eta0 = jnp.full(z.shape[:1] + (n,), design.mu_loc, jnp.float32)
    return np.asarray(run(eta0))


#: Efficacy grid on which each patient's post-treatment Fisher-z FC is precomputed.
EFFICACY_GRID = (-1.2, 0.8, 41)


def efficacy_grid_z(
    eta_hat: Any,
    occupancy: Any,
    weights: Any,
    density: Any,
    design: TrialDesign = TrialDesign(),
    grid: tuple[float, float, int] = EFFICACY_GRID,
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-z FC (P, M, E) of each patient at each efficacy of a grid (M,).

    The post-treatment FC of a patient depends on one unknown, the efficacy; computing it
    once on a grid (exact analytic FC, forward only) and interpolating linearly in the model
    replaces a Cholesky solve and its gradient per patient per leapfrog step. With the default
    spacing 0.05 the interpolation error is far below the scan noise (see the tests).
    """
    W = jnp.asarray(weights, jnp.float32)
    n = W.shape[0]
    iu = np.triu_indices(n, 1)
    eg = jnp.linspace(grid[0], grid[1], int(grid[2]), dtype=jnp.float32)
    rho = jnp.asarray(density, jnp.float32)

    @jax.jit
    def patient(eta, occ):
        factor = jnp.maximum(1.0 + (eg * occ)[:, None] * rho, 1e-3)
        eta_m = jnp.broadcast_to(eta, (eg.size, n))
        return _upper_z(_fc_batch(eta_m, factor, W, design.G), iu)

    eta = np.asarray(eta_hat, np.float32)
    occ = np.asarray(occupancy, np.float32)
    zs = [np.asarray(patient(eta[p], occ[p])) for p in range(eta.shape[0])]
    return np.asarray(eg), np.stack(zs)


def _interp(e, eg, zg):
    """Linear interpolation of zg (P, M, E) at e (P,) on the uniform grid eg (clamped)."""
    h = eg[1] - eg[0]
    x = jnp.clip((e - eg[0]) / h, 0.0, eg.size - 1.000001)
    i = jnp.floor(x).astype(jnp.int32)
    w = (x - i)[:, None]
    p = jnp.arange(zg.shape[0])
    return (1.0 - w) * zg[p, i] + w * zg[p, i + 1]


def _efficacy_model(eg, zg, noise_sd, z_post=None):
    import numpyro
    import numpyro.distributions as dist

    P = zg.shape[0]
    e_pop = numpyro.sample("e_pop", dist.Normal(0.0, 0.5))
    e_sd = numpyro.sample("e_sd", dist.HalfNormal(0.2))
    s_extra = numpyro.sample("sigma_extra", dist.HalfNormal(0.05))
    with numpyro.plate("patient", P):
        u = numpyro.sample("e_u", dist.Normal(0.0, 1.0))
    e = numpyro.deterministic("e", e_pop + e_sd * u)
    mu = _interp(e, eg, zg)
    sd = jnp.sqrt(noise_sd**2 + s_extra**2)
    with numpyro.plate("edges", mu.shape[1], dim=-1), numpyro.plate("patients", P, dim=-2):
        numpyro.sample("z_post", dist.Normal(mu, sd), obs=z_post)


def fit_efficacy(
    grid_z: tuple[np.ndarray, np.ndarray],
    z_post: Any,
    design: TrialDesign = TrialDesign(),
    *,
    seed: int = 0,
    num_warmup: int = 300,
    num_samples: int = 300,
) -> dict[str, np.ndarray]:
    """Hierarchical NUTS fit of the drug efficacy on a training cohort.

    Model: ``e_pop ~ N(0, 0.5)``, ``e_sd ~ HalfNormal(0.2)``, ``e_p = e_pop + e_sd u_p``,
    ``u_p ~ N(0, 1)`` (non-centred), ``sigma_extra ~ HalfNormal(0.05)``,
    ``z_post[p, edge] ~ N(z_p(e_p), sqrt(1/(T-3) + sigma_extra^2))`` with ``z_p(e)`` the
    patient's predicted post-treatment Fisher-z FC from the baseline estimate, dose and the
    assumed receptor map (:func:`efficacy_grid_z`, linear interpolation; efficacies outside
    the grid are clamped to its ends).

    Args:
        grid_z: ``(grid (M,), z (P, M, E))`` from :func:`efficacy_grid_z`.
        z_post: (P, E) observed post-treatment Fisher-z FC.
        design: for the scan noise (the population values are not used).
        seed, num_warmup, num_samples: NUTS settings (one chain).

    Returns:
        Posterior draws: ``e_pop``, ``e_sd``, ``sigma_extra`` (S,), ``e`` (S, P).
    """
    from numpyro.infer import MCMC, NUTS

    eg, zg = grid_z
    z_post = np.asarray(z_post, np.float32)
    if z_post.shape != (zg.shape[0], zg.shape[2]):
        raise ConfigError(
            f"fit_efficacy: z_post must be {(zg.shape[0], zg.shape[2])}, got {z_post.shape}"
        )
    mcmc = MCMC(
        NUTS(_efficacy_model, target_accept_prob=0.85),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=1,
        progress_bar=False,
    )
    mcmc.run(jr.key(seed), jnp.asarray(eg), jnp.asarray(zg), design.noise_sd, z_post=z_post)
    s = mcmc.get_samples()
    return {k: np.asarray(s[k]) for k in ("e_pop", "e_sd", "sigma_extra", "e")}


def predict_change(
    key: Any,
    posterior: dict[str, np.ndarray],
    grid_z: tuple[np.ndarray, np.ndarray],
    z_pre: Any,
    design: TrialDesign = TrialDesign(),
) -> np.ndarray:
    """Predictive draws (S, P, N) of held-out patients' observed regional GBC change.

    Each posterior draw gives a new efficacy ``e ~ N(e_pop, e_sd)`` per patient, the
    post-treatment Fisher-z FC from the patient's baseline estimate and dose (``grid_z``),
    scan noise of sd ``sqrt(1/(T-3) + sigma_extra^2)``, and the GBC change from the observed
    pre scan ``z_pre`` (P, E).
    """
    eg, zg = (jnp.asarray(x) for x in grid_z)
    P, _, E = zg.shape
    n = int(round(0.5 * (1 + math.sqrt(1 + 8 * E))))
    gbc_pre = gbc_from_z(jnp.asarray(z_pre, jnp.float32), n)

    def one(k, e_pop, e_sd, s_extra):
        k1, k2 = jr.split(k)
        e = e_pop + e_sd * jr.normal(k1, (P,))
        sd = jnp.sqrt(design.noise_sd**2 + s_extra**2)
        z = _interp(e, eg, zg) + sd * jr.normal(k2, (P, E))
        return gbc_from_z(z, n) - gbc_pre

    keys = jr.split(key, posterior["e_pop"].shape[0])
    f = jax.jit(jax.vmap(one))
    post = [jnp.asarray(posterior[k], jnp.float32) for k in ("e_pop", "e_sd", "sigma_extra")]
    out = [
        np.asarray(f(keys[s : s + 50], *(x[s : s + 50] for x in post)))
        for s in range(0, keys.shape[0], 50)
    ]
    return np.concatenate(out)


def heldout_lpd(
    posterior: dict[str, np.ndarray],
    grid_z: tuple[np.ndarray, np.ndarray],
    z_post: Any,
    design: TrialDesign = TrialDesign(),
    n_quad: int = 801,
) -> np.ndarray:
    """Log predictive density (P,) of held-out patients' post-treatment scans [nats].

    ``log (1/S) sum_s integral N(e; e_pop_s, e_sd_s) prod_edges N(z_post | z(e), sd_s) de``:
    the efficacy of a new patient is integrated out by quadrature on ``n_quad`` points of the
    grid range (the likelihood is too sharp in ``e`` for Monte Carlo), the posterior by the
    average over draws. Higher is better.
    """
    from jax.scipy.special import logsumexp

    eg, zg = (jnp.asarray(x) for x in grid_z)
    z_post = jnp.asarray(z_post, jnp.float32)
    P, _, E = zg.shape
    eq = jnp.linspace(eg[0], eg[-1], n_quad)
    h = eq[1] - eq[0]

    @jax.jit
    def rss(zg_p, zo):
        zq = jax.vmap(lambda e: _interp(e[None], eg, zg_p[None])[0])(eq)
        return ((zq - zo) ** 2).sum(-1)

    R = jnp.stack([rss(zg[p], z_post[p]) for p in range(P)])  # (P, Q)
    e_pop, e_sd, sx = (
        jnp.asarray(posterior[k], jnp.float32)[:, None, None]
        for k in ("e_pop", "e_sd", "sigma_extra")
    )
    var = design.noise_sd**2 + sx**2
    ll = -0.5 * R[None] / var - 0.5 * E * jnp.log(2 * jnp.pi * var)
    lp_e = -0.5 * ((eq - e_pop) / e_sd) ** 2 - jnp.log(e_sd * jnp.sqrt(2 * jnp.pi))
    per_draw = logsumexp(ll + lp_e, axis=-1) + jnp.log(h)  # (S, P)
    return np.asarray(logsumexp(per_draw, axis=0) - jnp.log(per_draw.shape[0]))


def auc(score: Any, label: Any) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic (ties count one half)."""
    s = np.asarray(score, np.float64)
    y = np.asarray(label, bool)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        raise ConfigError("auc: need both responders and non-responders")
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
    seed: int = 0,
    *,
    n_train: int = 16,
    n_test: int = 40,
    design: TrialDesign = TrialDesign(),
    shuffle_seed: int | None = 1,
    baseline: str = "noisy_truth",
    baseline_sd: float = 0.05,
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
        seed: PRNG seed of the cohort, NUTS and the predictive draws.
        n_train, n_test: cohort sizes.
        design: ground truth.
        shuffle_seed: permutation seed of the control map, or None for no control.
        baseline: ``"noisy_truth"``: baseline log(-a/G) = truth + N(0, ``baseline_sd``) per
            region (a stand-in for a per-patient fit); ``"map"``: :func:`fit_baseline` (slow
            on a CPU: one Cholesky gradient per patient per step).
        num_warmup, num_samples: NUTS settings.

    Returns:
        ``{"true": result, "shuffled": result}``; each result holds the :func:`evaluate`
        scores, ``posterior``, ``threshold``, ``pred`` (S, n_test, N), ``observed``; the
        ``"true"`` one also ``cohort`` and ``eta_hat``; ``lpd`` (n_test,) from
        :func:`heldout_lpd`, the negative control's metric.
    """
    from vbt_jax.interventions import psychedelic_5ht2a

    if baseline not in ("noisy_truth", "map"):
        raise ConfigError(
            f"run_virtual_trial: baseline must be 'noisy_truth' or 'map', got {baseline!r}"
        )
    conn = vbt.dk84().normalised("max")
    n = conn.n_regions
    W = np.asarray(conn.weights, np.float32)
    strength = np.asarray(vbt.node_strength_map(conn).zscore().fill_missing(0.0).values)
    rho_true = np.asarray(psychedelic_5ht2a("hopf").regional_density(conn.labels), np.float32)
    k_sim, k_base, k_pred = jr.split(jr.key(seed), 3)
    cohort = simulate_cohort(k_sim, n_train + n_test, W, strength, rho_true, design)
    if baseline == "map":
        eta_hat = fit_baseline(cohort.z_pre, W, design)
    else:
        noise = baseline_sd * np.asarray(jr.normal(k_base, cohort.eta.shape))
        eta_hat = (cohort.eta + noise).astype(np.float32)
    train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    tr, te = cohort.take(train), cohort.take(test)
    threshold = float(np.median(observed_change(tr, n).mean(-1)))
    obs = observed_change(te, n)
    maps = {"true": rho_true}
    if shuffle_seed is not None:
        maps["shuffled"] = rho_true[np.random.default_rng(shuffle_seed).permutation(n)]
    results = {}
    for name, rho in maps.items():
        grid = efficacy_grid_z(eta_hat, cohort.occupancy, W, rho, design)
        g_tr = (grid[0], grid[1][train])
        g_te = (grid[0], grid[1][test])
        post = fit_efficacy(
            g_tr, tr.z_post, design, seed=seed, num_warmup=num_warmup, num_samples=num_samples
        )
        pred = predict_change(k_pred, post, g_te, te.z_pre, design)
        out = evaluate(pred, obs, threshold)
        out["lpd"] = heldout_lpd(post, g_te, te.z_post, design)
        out.update(posterior=post, threshold=threshold, pred=pred, observed=obs)
        results[name] = out
    results["true"].update(cohort=cohort, eta_hat=eta_hat)
    return results
