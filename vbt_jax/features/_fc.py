"""Static functional connectivity: Pearson correlation matrices and their agreement."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError


def fc(x: Array, axis_time: int = 0) -> Array:
    """Functional connectivity: the Pearson correlation matrix of a multichannel time series.

    Args:
        x: ``(T, N)`` series (time x regions), or ``(N, T)`` with ``axis_time=1``. T >= 2.
        axis_time: the time axis of ``x`` (0 or 1, or -1 / -2).

    Returns:
        ``(N, N)`` correlation matrix, dtype of ``x`` (1 on the diagonal up to rounding). A region
        with zero variance gives NaN in its row and column (its correlation is undefined).

    Raises:
        ArgumentError / ShapeError: if ``x`` is not 2-D or has fewer than 2 time points.
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ShapeError(f"fc: x must have shape (T, N), got shape {x.shape}")
    if axis_time not in (0, 1, -1, -2):
        raise ArgumentError(f"fc: axis_time must be 0 or 1 for a 2-D x, got {axis_time!r}")
    x = jnp.moveaxis(x, axis_time, 0)
    if x.shape[0] < 2:
        raise ShapeError(f"fc: need at least 2 time points, got x with shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return _pearson(x)


@jax.jit
def _pearson(x: Array) -> Array:
    """Correlation matrix of the columns of a floating (T, N) array."""
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    z = xc / jnp.sqrt(jnp.sum(xc * xc, axis=0, keepdims=True))
    return z.T @ z


def _upper(m: Array, k: int = 1) -> Array:
    n = m.shape[-1]
    i, j = np.triu_indices(n, k=k)
    return m[..., i, j]


#: Correlations are clipped to +-(1 - 1e-6) before the Fisher transform (the diagonal's 1,
#: and float32 round-off of a perfect correlation, would give an infinite z).
FISHER_CLIP = 0.999999


def fisher_z(r: Any) -> Any:
    """Fisher's z, ``artanh(r)``, of correlations clipped to ``+-FISHER_CLIP``.

    The one Fisher transform of the package and of :mod:`inference`. The clip keeps a
    correlation of exactly +-1 (an FC diagonal, or float32 round-off of a perfect correlation)
    finite and representable in float32 (``1 - FISHER_CLIP`` is several float32 spacings below
    1), and it is far beyond any estimated edge, so it changes no off-diagonal value of a
    model or a scan in practice.

    NumPy in, NumPy out (same dtype); anything else goes through ``jax.numpy`` (traceable).
    """
    if isinstance(r, np.ndarray | np.generic | float | int):
        return np.arctanh(np.clip(r, -FISHER_CLIP, FISHER_CLIP))
    return jnp.arctanh(jnp.clip(r, -FISHER_CLIP, FISHER_CLIP))


def _r(x: Any, y: Any, xp: Any) -> Any:
    """Pearson r along the last axis of ``x`` and ``y`` (broadcast), with ``xp`` NumPy or
    ``jax.numpy``: the one Pearson formula behind :func:`pearson`, :func:`upper_r` and
    :func:`fc_correlation`."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    return (xc * yc).sum(axis=-1) / xp.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))


def pearson(x: Any, y: Any) -> float:
    """Pearson r of the pairs ``(x_k, y_k)`` where both are finite (host-side, float64).

    Returns:
        The correlation, or NaN with fewer than 2 finite pairs or no spread in either.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ShapeError(f"pearson: x and y must have one size, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = _r(x[ok], y[ok], np)  # no spread: 0 / 0
    return float(r) if np.isfinite(r) else float("nan")


def upper_r(a: Any, b: Any, edges: Any = None) -> float:
    """Pearson r between the strict upper triangles of two (N, N) matrices (host-side,
    float64, over the entries finite in both): how well a predicted FC matches an observed
    one, as reported in run folders. The traceable version is :func:`fc_correlation`.

    Args:
        a, b: (N, N) matrices.
        edges: optional boolean mask over the ``N (N - 1) / 2`` upper-triangle entries in
            ``numpy.triu_indices(N, 1)`` order (e.g. the held-out edges of a fit).

    Returns:
        The correlation (NaN with fewer than 2 finite entries or no spread).

    Raises:
        ShapeError: the matrices are not square of one shape, or the mask has the wrong size.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ShapeError(
            f"upper_r: a and b must be square (N, N) of one shape, got {a.shape} and {b.shape}"
        )
    i, j = np.triu_indices(a.shape[0], 1)
    u, v = a[i, j], b[i, j]
    if edges is not None:
        m = np.asarray(edges, bool)
        if m.shape != u.shape:
            raise ShapeError(f"upper_r: edges must have N(N-1)/2 = {u.size} entries, got {m.shape}")
        u, v = u[m], v[m]
    return pearson(u, v)


def fc_correlation(fc_a: Array, fc_b: Array) -> Array:
    """Pearson correlation between the strict upper triangles (k=1) of two FC matrices.

    The usual goodness-of-fit of a simulated FC to an empirical one; traceable and
    differentiable (e.g. as a loss). :func:`upper_r` is the host-side version used in reports.

    Args:
        fc_a: ``(..., N, N)`` matrices.
        fc_b: ``(..., N, N)`` matrices; the leading axes broadcast against ``fc_a``'s.

    Returns:
        ``(...)`` correlations in [-1, 1] (a scalar for two ``(N, N)`` matrices).

    Raises:
        ShapeError: if the matrices are not square of one size N >= 3 (N = 2 has a single
            off-diagonal value, whose correlation is undefined) or their leading axes do not
            broadcast.
    """
    fc_a, fc_b = jnp.asarray(fc_a), jnp.asarray(fc_b)
    square = all(m.ndim >= 2 and m.shape[-1] == m.shape[-2] for m in (fc_a, fc_b))
    if not square or fc_a.shape[-2:] != fc_b.shape[-2:]:
        raise ShapeError(
            f"fc_correlation: fc_a and fc_b must be square (..., N, N) of one N, got "
            f"{fc_a.shape} and {fc_b.shape}"
        )
    try:
        jnp.broadcast_shapes(fc_a.shape[:-2], fc_b.shape[:-2])
    except ValueError as err:
        raise ShapeError(
            f"fc_correlation: the leading axes of fc_a {fc_a.shape} and fc_b {fc_b.shape} "
            "do not broadcast"
        ) from err
    if fc_a.shape[-1] < 3:
        raise ShapeError(f"fc_correlation: need N >= 3 regions, got N = {fc_a.shape[-1]}")
    dtype = jnp.result_type(fc_a, fc_b, float)
    return _r(_upper(fc_a).astype(dtype), _upper(fc_b).astype(dtype), jnp)
