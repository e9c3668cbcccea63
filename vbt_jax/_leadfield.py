"""EEG forward projection: region-level gain matrices, projection and average reference.

A vertex-level lead field ``projection`` (M sensors, V cortical vertices) maps dipole sources on
the cortical surface to sensors. A region-level gain (M, N) sums its columns over the vertices of
each region, i.e. it assumes every vertex of a region carries the region's signal (dipoles normal
to the surface, unit strength per vertex). Units are those of the projection file.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from ._errors import ConnectomeError, ShapeError


def region_gain_from_vertices(
    projection: np.ndarray,
    region_mapping: np.ndarray,
    n_regions: int,
    *,
    drop_nan_rows: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sum a vertex-level lead field over the vertices of each region (NumPy, float64).

    Args:
        projection: ``(M, V)`` lead field, sensors x vertices.
        region_mapping: ``(V,)`` integer region index in ``[0, n_regions)`` of each vertex.
        n_regions: number of regions N. A region with no vertex gets a zero column.
        drop_nan_rows: if True, sensors whose row is entirely NaN (e.g. rows 18-19 of tvb-data's
            ``projection_eeg_65_surface_16k.npy``, reference channels of the MEG one) are dropped
            and their indices left out of the returned ``kept_rows``; if False they raise.

    Returns:
        ``gain`` of shape ``(M, N)``; or, with ``drop_nan_rows=True``, ``(gain, kept_rows)`` with
        ``gain`` of shape ``(len(kept_rows), N)`` and ``kept_rows`` the int indices of the rows of
        ``projection`` that were kept.

    Raises:
        ConnectomeError: if ``projection`` is not 2-D, ``region_mapping`` is not 1-D of length V
            or holds a non-integer or out-of-range index, ``n_regions`` < 1, a row is all NaN
            (without ``drop_nan_rows``) or a row is partly NaN / holds inf.
    """
    proj = np.asarray(projection, dtype=np.float64)
    if proj.ndim != 2:
        raise ConnectomeError(
            f"projection must have shape (M sensors, V vertices), got shape {proj.shape}"
        )
    n_sensors, n_vertices = proj.shape
    rmap = np.asarray(region_mapping)
    if rmap.ndim != 1 or rmap.shape[0] != n_vertices:
        raise ConnectomeError(
            f"region_mapping must have shape (V,) = ({n_vertices},) to match projection "
            f"(M, V) = {proj.shape}, got shape {rmap.shape}"
        )
    if not isinstance(n_regions, int | np.integer) or n_regions < 1:
        raise ConnectomeError(f"n_regions must be a positive int, got {n_regions!r}")
    if not np.issubdtype(rmap.dtype, np.integer):
        if not np.all(np.isfinite(rmap)) or np.any(rmap != np.round(rmap)):
            raise ConnectomeError("region_mapping must hold integer region indices")
    rmap = rmap.astype(np.int64)
    if rmap.size and (rmap.min() < 0 or rmap.max() >= n_regions):
        raise ConnectomeError(
            f"region_mapping indices must lie in [0, n_regions) = [0, {n_regions}), "
            f"got min {rmap.min()} and max {rmap.max()}"
        )

    nan_rows = np.flatnonzero(np.all(np.isnan(proj), axis=1))
    if nan_rows.size and not drop_nan_rows:
        raise ConnectomeError(
            f"projection (M, V) = {proj.shape} has {nan_rows.size} all-NaN sensor rows "
            f"{nan_rows.tolist()}; pass drop_nan_rows=True to drop them"
        )
    kept = np.setdiff1d(np.arange(n_sensors), nan_rows)
    proj = proj[kept]
    bad = np.flatnonzero(~np.all(np.isfinite(proj), axis=1))
    if bad.size:
        raise ConnectomeError(
            f"projection rows {kept[bad].tolist()} hold NaN or inf values in some (not all) "
            "columns; only all-NaN rows can be dropped"
        )

    gain = np.zeros((kept.size, n_regions), dtype=np.float64)
    np.add.at(gain.T, rmap, proj.T)
    if drop_nan_rows:
        return gain, kept
    return gain


def average_reference(x: Array, axis: int = -1) -> Array:
    """Re-reference to the common average: subtract the mean over the SENSOR axis.

    Args:
        x: sensor signals, e.g. ``(T, M)``; the sensor axis is given by ``axis``.
        axis: the sensor axis (default the last, as returned by :func:`project`). For a gain
            matrix ``(M, N)`` use ``axis=0``: referencing the gain equals referencing its output.

    Returns:
        Array of the shape and dtype of ``x`` whose mean over ``axis`` is zero.
    """
    x = jnp.asarray(x)
    return x - jnp.mean(x, axis=axis, keepdims=True)


def project(gain: Array, x: Array, *, average_ref: bool = False) -> Array:
    """Project region signals to sensors: ``y[..., m] = sum_n gain[m, n] x[..., n]``.

    Args:
        gain: ``(M, N)`` region gain matrix.
        x: ``(..., N)`` region signals (e.g. ``(T, N)``).
        average_ref: if True, subtract the mean over the M sensors (common average reference).

    Returns:
        ``(..., M)`` sensor signals, in the dtype of ``x`` (the gain is cast to it).

    Raises:
        ConnectomeError: if ``gain`` is not 2-D or its N does not match ``x.shape[-1]``.
        ShapeError: ``gain`` looks transposed (its M matches ``x.shape[-1]``; both shapes given).
    """
    x = jnp.asarray(x)
    if jnp.ndim(gain) != 2:
        raise ConnectomeError(f"gain must have shape (M, N), got shape {jnp.shape(gain)}")
    m, n = jnp.shape(gain)
    if x.ndim >= 1 and x.shape[-1] != n and x.shape[-1] == m:
        raise ShapeError(
            f"gain looks transposed: its shape is (M, N) = {(m, n)} but x has {m} regions "
            f"(shape {x.shape}), so (M, N) = {(n, m)} is expected; pass gain.T"
        )
    if x.ndim < 1 or x.shape[-1] != jnp.shape(gain)[1]:
        raise ConnectomeError(
            f"x must have shape (..., N) with N = {jnp.shape(gain)[1]} from gain (M, N) = "
            f"{jnp.shape(gain)}, got shape {x.shape}"
        )
    y = jnp.matmul(x, jnp.asarray(gain, dtype=x.dtype).T)
    if average_ref:
        y = average_reference(y, axis=-1)
    return y
