"""Simulation-based calibration (SBC): is the whole fitting procedure calibrated?

Draw parameters from the prior, simulate data from the same model, fit, and record the rank of
the true value among the posterior draws. If the sampler targets the exact posterior, the
truth is one more draw from it, so its rank among ``L`` independent draws is uniform on
``0..L`` (Talts et al. 2018, arXiv:1804.06788). Non-uniform ranks reveal a biased (skewed
histogram), over-confident (U shape) or under-confident (hump) posterior.

:func:`run_sbc` fits many synthetic datasets at once: NumPyro's NUTS kernel run under
``jax.vmap`` over datasets, so one compilation serves every dataset and the linear algebra of
the whole batch is done in one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import initialize_model

from vbt_jax import ArgumentError, ShapeError

from ._keys import as_key, purpose_keys
from ._output import prior_draws


def sbc_ranks(truth: Any, draws: Any) -> np.ndarray:
    """Rank of each true value among its posterior draws.

    Args:
        truth: (D, ...) true values, one per dataset.
        draws: (D, L, ...) posterior draws for each dataset (roughly independent: thin
            autocorrelated MCMC output first, or the ranks pile up at the ends).

    Returns:
        (D, ...) integer ranks in ``0..L``: the number of draws below the truth.

    Raises:
        ArgumentError: the shapes do not match.
    """
    truth = np.asarray(truth)
    draws = np.asarray(draws)
    if draws.ndim < 2 or draws.shape[:1] + draws.shape[2:] != truth.shape:
        raise ShapeError(
            f"sbc_ranks: draws must be (D, L, ...) with truth (D, ...); got draws "
            f"{draws.shape} and truth {truth.shape}"
        )
    return np.sum(draws < truth[:, None], axis=1)


def _check_ranks(ranks: np.ndarray, n_draws: int, where: str) -> np.ndarray:
    ranks = np.asarray(ranks).ravel()
    if ranks.size == 0:
        raise ArgumentError(f"{where}: no ranks")
    if not isinstance(n_draws, int | np.integer) or n_draws < 1:
        raise ArgumentError(f"{where}: n_draws must be a positive integer, got {n_draws!r}")
    if np.any(ranks < 0) or np.any(ranks > n_draws):
        raise ArgumentError(
            f"{where}: ranks must lie in 0..n_draws={n_draws}, got {ranks.min()}..{ranks.max()}"
        )
    return ranks


def uniformity_pvalue(
    ranks: Any, n_draws: int, *, bins: int | None = None, method: str = "chi2"
) -> float:
    """p-value of the hypothesis that ranks are uniform on ``0..n_draws``.

    Args:
        ranks: (D,) ranks of one parameter over D datasets (from :func:`sbc_ranks`).
        n_draws: L, the number of posterior draws each rank was computed against.
        bins: ``"chi2"``: number of bins of consecutive rank values (default ``D // 10``, so
            about 10 expected per bin, clipped to 2..L+1). Bins hold whole rank values, and
            the expected counts follow the number of values in each bin, so the test is exact
            for any ``L``.
        method: ``"chi2"`` (Pearson chi-square on binned ranks, ``bins - 1`` degrees of
            freedom) or ``"ks"`` (Kolmogorov-Smirnov of ``(rank + 0.5) / (L + 1)`` against
            Uniform(0, 1); conservative for small L because the ranks are discrete).

    Returns:
        The p-value (small: not uniform).

    Raises:
        ArgumentError: ranks outside ``0..n_draws``, an unknown method or a bad bin count.
    """
    from scipy import stats

    ranks = _check_ranks(ranks, n_draws, "uniformity_pvalue")
    if method == "ks":
        u = (ranks + 0.5) / (n_draws + 1)
        return float(stats.kstest(u, "uniform").pvalue)
    if method != "chi2":
        raise ArgumentError(f"uniformity_pvalue: method must be 'chi2' or 'ks', got {method!r}")
    n_values = n_draws + 1
    if bins is None:
        bins = int(np.clip(ranks.size // 10, 2, n_values))
    if not 2 <= bins <= n_values:
        raise ArgumentError(f"uniformity_pvalue: bins must be in 2..{n_values}, got {bins}")
    # bin b holds the rank values edges[b] .. edges[b + 1] - 1
    edges = np.round(np.linspace(0, n_values, bins + 1)).astype(int)
    observed = np.histogram(ranks, bins=edges - 0.5)[0]
    expected = ranks.size * np.diff(edges) / n_values
    return float(stats.chisquare(observed, expected).pvalue)


def coverage(truth: Any, draws: Any, prob: float = 0.9) -> np.ndarray:
    """Fraction of datasets whose truth lies in the central ``prob`` posterior interval.

    Args:
        truth: (D, ...) true values.
        draws: (D, L, ...) posterior draws.
        prob: interval probability (0 < prob < 1); the interval runs between the
            ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles of the draws.

    Returns:
        (...) coverage per parameter component (a calibrated posterior gives ``prob`` up to
        binomial noise of sd ``sqrt(prob (1 - prob) / D)``).

    Raises:
        ArgumentError: shapes that do not match, or ``prob`` outside (0, 1).
    """
    if not 0.0 < prob < 1.0:
        raise ArgumentError(f"coverage: prob must be in (0, 1), got {prob!r}")
    truth = np.asarray(truth)
    draws = np.asarray(draws)
    if draws.ndim < 2 or draws.shape[:1] + draws.shape[2:] != truth.shape:
        raise ShapeError(
            f"coverage: draws must be (D, L, ...) with truth (D, ...); got draws "
            f"{draws.shape} and truth {truth.shape}"
        )
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=1)
    return np.mean((lo <= truth) & (truth <= hi), axis=0)


def nuts_many(
    model,
    datasets: Mapping[str, Any],
    *,
    key: Any,
    num_warmup: int = 200,
    num_samples: int = 200,
    thin: int = 1,
    target_accept: float = 0.8,
    max_tree_depth: int = 8,
    dense_mass: bool = False,
    init_radius: float = 2.0,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One NUTS chain on each of D datasets, all at once (``jax.vmap`` of NumPyro's kernel).

    Every dataset gets its own step-size and diagonal mass-matrix adaptation and its own
    initial point (uniform in ``(-init_radius, init_radius)`` on the unconstrained scale).
    All datasets share one compilation; the price is that each iteration lasts as long as the
    longest trajectory in the batch.

    Args:
        model: a NumPyro model taking a data dict (e.g. a :class:`~inference.Twin`).
        datasets: site -> (D, ...) observed arrays (the model's ``data`` with a leading
            dataset axis).
        key: PRNG key (``jax.random.key(seed)``).
        num_warmup, num_samples: NUTS iterations per dataset.
        thin: keep every ``thin``-th draw (``num_samples // thin`` draws kept).
        target_accept, max_tree_depth, dense_mass: NUTS settings.
        init_radius: half-width of the uniform initialisation.

    Returns:
        ``(draws, stats)``: site -> (D, num_samples // thin, ...) constrained draws of the
        latent and deterministic sites, and ``stats["divergences"]`` (D,) the number of
        divergent transitions after warm-up, ``stats["mean_steps"]`` (D,) the mean number of
        leapfrog steps per iteration after warm-up.

    Raises:
        ArgumentError: no datasets, datasets of different lengths, or bad iteration counts.
    """
    if not datasets:
        raise ArgumentError("nuts_many: datasets is empty")
    sizes = {k: np.shape(v)[0] for k, v in datasets.items()}
    if len(set(sizes.values())) != 1:
        raise ArgumentError(f"nuts_many: datasets have different leading sizes {sizes}")
    if not (isinstance(thin, int) and thin >= 1 and num_samples >= thin and num_warmup >= 0):
        raise ArgumentError(
            f"nuts_many: need num_warmup >= 0 and num_samples >= thin >= 1, got "
            f"{num_warmup}, {num_samples}, {thin}"
        )
    n = next(iter(sizes.values()))
    data = {k: jnp.asarray(v) for k, v in datasets.items()}
    first = {k: v[0] for k, v in data.items()}
    keys = purpose_keys(key, ("init", "run"), "nuts_many")
    key_init, key_run = as_key(keys["init"], "nuts_many"), as_key(keys["run"], "nuts_many")
    # the potential (a function of the data) and the unconstrained parameter layout, from one
    # initialisation; each dataset then starts from its own uniform draw
    init, pe_gen, post_gen, _ = initialize_model(
        key_init,
        model,
        init_strategy=init_to_uniform(radius=init_radius),
        dynamic_args=True,
        model_args=(first,),
    )
    leaves, tree = jax.tree_util.tree_flatten(init.z)
    keys = jax.random.split(key_init, len(leaves))
    z0 = jax.tree_util.tree_unflatten(
        tree,
        [
            jax.random.uniform(k, (n,) + jnp.shape(v), jnp.result_type(v), -1.0, 1.0) * init_radius
            for k, v in zip(keys, leaves, strict=True)
        ],
    )
    init_kernel, sample_kernel = hmc(potential_fn_gen=pe_gen, algo="NUTS")
    n_keep = num_samples // thin

    def one(z0, d, key):
        state = init_kernel(
            z0,
            num_warmup,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            dense_mass=dense_mass,
            model_args=(d,),
            rng_key=key,
        )

        # one scan over warm-up and sampling (the kernel adapts while its counter is below
        # num_warmup), so the NUTS kernel is traced and compiled once
        def step(s, _):
            s = sample_kernel(s, model_args=(d,))
            return s, (s.z, s.diverging, s.num_steps)

        _, (zs, div, steps) = jax.lax.scan(step, state, None, length=num_warmup + num_samples)
        zs = jax.tree_util.tree_map(lambda v: v[num_warmup::thin][:n_keep], zs)
        post = jax.vmap(post_gen(d))(zs)
        return post, div[num_warmup:].sum(), steps[num_warmup:].mean()

    run = jax.jit(jax.vmap(one))
    post, div, steps = run(z0, data, jax.random.split(key_run, n))
    stats = {"divergences": np.asarray(div), "mean_steps": np.asarray(steps)}
    return {k: np.asarray(v) for k, v in post.items()}, stats


def run_sbc(
    twin,
    *,
    key: Any,
    num_datasets: int,
    params: Sequence[str] | None = None,
    **nuts_kwargs: Any,
) -> dict[str, Any]:
    """Simulation-based calibration of NUTS on a twin.

    Draws ``num_datasets`` parameter sets and datasets from the twin's prior predictive, fits
    each with :func:`nuts_many` and ranks the truth among the draws.

    Args:
        twin: a :class:`~inference.Twin`.
        key: PRNG key (``jax.random.key(seed)``); the prior draws and NUTS get their own
            streams of it.
        num_datasets: D.
        params: latent sites to rank (default: every latent site of the prior); vector sites
            are ranked component-wise.
        **nuts_kwargs: passed to :func:`nuts_many` (num_warmup, num_samples, thin...).

    Returns:
        A dict with ``"truth"`` (site -> (D, ...)), ``"draws"`` (site -> (D, L, ...)),
        ``"ranks"`` (site -> (D, ...)), ``"n_draws"`` (L), ``"divergences"`` and
        ``"mean_steps"`` ((D,) each, see :func:`nuts_many`).
    """
    keys = purpose_keys(key, ("prior", "nuts"), "run_sbc")
    prior = prior_draws(twin, key=keys["prior"], num=num_datasets)
    sites = set(twin.sites)
    datasets = {k: v for k, v in prior.items() if k in sites}
    draws, stats = nuts_many(twin, datasets, key=keys["nuts"], **nuts_kwargs)
    names = list(params) if params is not None else [k for k in draws if k in prior]
    missing = [k for k in names if k not in draws or k not in prior]
    if missing:
        raise ArgumentError(f"run_sbc: no draws for {missing}; sampled sites: {sorted(draws)}")
    truth = {k: prior[k] for k in names}
    kept = {k: draws[k] for k in names}
    ranks = {k: sbc_ranks(truth[k], kept[k]) for k in names}
    n_draws = next(iter(kept.values())).shape[1]
    return dict(truth=truth, draws=kept, ranks=ranks, n_draws=n_draws, **stats)


__all__ = ["sbc_ranks", "uniformity_pvalue", "coverage", "nuts_many", "run_sbc"]
