"""Functional connectivity dynamics (sliding-window FC) and distribution distances."""

from __future__ import annotations

import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from ._fc import _pearson, _upper


def _positive_int(name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ArgumentError(f"{name} must be a positive int (a number of samples), got {value!r}")
    return int(value)


def fcd(x: Array, window: int, step: int) -> Array:
    """Functional connectivity dynamics matrix of a ``(T, N)`` series.

    Windows of ``window`` samples start at ``0, step, 2 step, ...`` while they fit in T (no
    padding), giving ``W = (T - window) // step + 1`` windows. Each window's FC (Pearson) is
    reduced to its strict upper triangle (N (N - 1) / 2 values), and entry ``(i, j)`` of the
    result is the Pearson correlation between the upper triangles of windows i and j.

    Args:
        x: ``(T, N)`` series, time first.
        window: window length in SAMPLES (>= 2), e.g. ``round(60 s / TR)``.
        step: shift between consecutive windows in SAMPLES (>= 1).

    Returns:
        ``(W, W)`` symmetric matrix, dtype of ``x``.

    Raises:
        ArgumentError / ShapeError: if ``x`` is not 2-D with N >= 3, or ``window``/``step`` are not
            positive ints, ``window`` < 2 or ``window`` > T.
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ShapeError(f"fcd: x must have shape (T, N), got shape {x.shape}")
    n_t, n = x.shape
    if n < 3:
        raise ShapeError(f"fcd: need N >= 3 regions to correlate FC triangles, got N = {n}")
    window = _positive_int("fcd: window", window)
    step = _positive_int("fcd: step", step)
    if not 2 <= window <= n_t:
        raise ArgumentError(f"fcd: window must be in [2, T] = [2, {n_t}] samples, got {window}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return _fcd(x, window, step)


@partial(jax.jit, static_argnums=(1, 2))
def _fcd(x: Array, window: int, step: int) -> Array:
    starts = np.arange((x.shape[0] - window) // step + 1) * step
    windows = x[starts[:, None] + np.arange(window)[None, :]]  # (W, window, N)
    triangles = jax.vmap(lambda w: _upper(_pearson(w)))(windows)  # (W, N (N - 1) / 2)
    return _pearson(triangles.T)


def fcd_values(fcd_matrix: Array, min_separation: int = 1) -> Array:
    """Upper-triangle entries ``(i, j)``, ``j - i >= min_separation``, of an FCD matrix.

    Args:
        fcd_matrix: ``(W, W)`` FCD matrix from :func:`fcd`.
        min_separation: smallest window-index distance kept (>= 1). The default 1 keeps the whole
            strict upper triangle; ``ceil(window / step)`` keeps only pairs of windows that do not
            overlap in time (overlapping windows are correlated by construction).

    Returns:
        1-D array of ``(W - m)(W - m + 1) / 2`` values (m = ``min_separation``), row-major.

    Raises:
        ArgumentError / ShapeError: if the matrix is not square or ``min_separation`` is not in [1,
            W - 1].
    """
    fcd_matrix = jnp.asarray(fcd_matrix)
    if fcd_matrix.ndim != 2 or fcd_matrix.shape[0] != fcd_matrix.shape[1]:
        raise ShapeError(f"fcd_values: fcd_matrix must be (W, W), got {fcd_matrix.shape}")
    n_w = fcd_matrix.shape[0]
    m = _positive_int("fcd_values: min_separation", min_separation)
    if m > n_w - 1:
        raise ArgumentError(
            f"fcd_values: min_separation must be <= W - 1 = {n_w - 1} for a {n_w} x {n_w} "
            f"matrix, got {m}"
        )
    return _upper(fcd_matrix, k=m)


def fcd_histogram(values: Array, edges: Array, *, normalize: bool = True) -> Array:
    """Histogram of FCD values over fixed bin edges (NumPy's bin convention).

    Bins are ``[e_k, e_{k+1})``, the last one closed; values outside ``[e_0, e_last]`` are not
    counted. Counts are not differentiable in ``values``: use :func:`ks_distance` or moments for
    gradient-based fitting.

    Args:
        values: 1-D values, e.g. from :func:`fcd_values`.
        edges: ``(B + 1,)`` increasing bin edges, e.g. ``jnp.linspace(-1, 1, 41)``.
        normalize: if True, return the fraction of ``values`` in each bin (sums to 1 when all
            values lie within the edges); if False, the counts.

    Returns:
        ``(B,)`` fractions or counts, dtype of ``values``.

    Raises:
        ShapeError: if ``edges`` is not 1-D with at least 2 entries.
    """
    values = jnp.ravel(jnp.asarray(values))
    edges = jnp.asarray(edges)
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise ShapeError(f"fcd_histogram: edges must be 1-D with >= 2 entries, got {edges.shape}")
    dtype = values.dtype if jnp.issubdtype(values.dtype, jnp.floating) else jnp.result_type(float)
    counts, _ = jnp.histogram(values, bins=edges.astype(dtype))
    counts = counts.astype(dtype)
    if normalize:
        counts = counts / values.shape[0]
    return counts


def ks_distance(a: Array, b: Array) -> Array:
    """Two-sample Kolmogorov-Smirnov statistic ``sup_x |F_a(x) - F_b(x)|`` (sort based).

    Equals ``scipy.stats.ks_2samp(a, b).statistic``. Typical use: compare simulated and
    empirical FCD value distributions.

    Args:
        a: 1-D sample (any length >= 1).
        b: 1-D sample (any length >= 1).

    Returns:
        Scalar in [0, 1], in the floating dtype of the inputs.

    Raises:
        ShapeError: if either sample is empty.
    """
    a = jnp.ravel(jnp.asarray(a))
    b = jnp.ravel(jnp.asarray(b))
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ShapeError(f"ks_distance: samples must be non-empty, got {a.shape} and {b.shape}")
    dtype = jnp.result_type(a, b)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return _ks(a.astype(dtype), b.astype(dtype))


@jax.jit
def _ks(a: Array, b: Array) -> Array:
    dtype = a.dtype
    a_s, b_s = jnp.sort(a), jnp.sort(b)
    pooled = jnp.concatenate([a_s, b_s])
    cdf_a = jnp.searchsorted(a_s, pooled, side="right").astype(dtype) / a.shape[0]
    cdf_b = jnp.searchsorted(b_s, pooled, side="right").astype(dtype) / b.shape[0]
    return jnp.max(jnp.abs(cdf_a - cdf_b))


def ks_to_histogram(values: np.ndarray, edges: np.ndarray, hist: np.ndarray) -> float:
    """Two-sided KS distance between a sample and a reference histogram (host-side, float64),
    e.g. simulated FCD values against :func:`vbt_jax.dk84_fcd_reference`.

    The reference CDF is the histogram's (normalised, uniform within each bin, so piecewise
    linear and continuous); the supremum of ``|ECDF - F|`` is then reached at a sample point
    (from the left or the right), so it is computed exactly there.
    """
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    v = v[np.isfinite(v)]
    mass = np.asarray(hist, dtype=np.float64) * np.diff(edges)
    cdf_edges = np.concatenate([[0.0], np.cumsum(mass) / mass.sum()])
    f = np.interp(v, edges, cdf_edges, left=0.0, right=1.0)
    n = v.size
    hi = np.arange(1, n + 1) / n - f
    lo = f - np.arange(n) / n
    return float(max(hi.max(), lo.max()))
