"""NIfTI BOLD images averaged over the regions of a 3-D atlas label image (nibabel), then
preprocessed as every regional time series (``_timeseries.py``).

The BOLD file is read in chunks of volumes, so it never sits in memory whole.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import ArgumentError, DataError, LabelError, ShapeError
from ._timeseries import _MIN_POINTS, RegionTimeSeries, _preprocess

_TR_ATOL = 1e-3  # seconds
_AFFINE_ATOL = 1e-3  # mm
_CHUNK_VALUES = 2**26  # BOLD values read at once (~512 MB of float64)


def _atlas_selection(
    labels: Sequence[int] | Mapping[int, str] | None, present: np.ndarray, atlas_path: str
) -> tuple[list[int], list[str]]:
    """Atlas values to extract and their names; background 0 is skipped when labels is None."""
    if labels is None:
        values = [int(v) for v in present if v != 0]
        return values, [str(v) for v in values]
    if isinstance(labels, Mapping):
        items = list(labels.items())
    elif isinstance(labels, str):
        raise LabelError(f"{atlas_path}: labels must be atlas integer values, got one str")
    else:
        items = [(v, None) for v in labels]
    values, names = [], []
    for v, name in items:
        if isinstance(v, bool) or not float(v).is_integer():
            raise LabelError(f"{atlas_path}: labels must be integer atlas values, got {v!r}")
        values.append(int(v))
        names.append(str(int(v)) if name is None else str(name))
    missing = sorted(set(values) - {int(p) for p in present})
    if missing:
        shown = ", ".join(str(m) for m in missing[:10])
        raise LabelError(
            f"{atlas_path}: labels {shown}{' ...' if len(missing) > 10 else ''} requested but "
            f"absent from the atlas ({len(missing)} missing; atlas has {len(present)} values, "
            f"{int(present.min())}..{int(present.max())})"
        )
    if len(set(values)) != len(values):
        raise LabelError(f"{atlas_path}: labels contain duplicate atlas values: {values}")
    return values, names


def _load_image(path: str, what: str) -> Any:
    """``nibabel.load`` with errors that name the file (missing, not an image, bad gzip)."""
    import nibabel as nib

    if not os.path.isfile(path):
        raise DataError(f"{path}: {what} file not found")
    try:
        return nib.load(path)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as e:
        raise DataError(
            f"{path}: cannot read the {what} as a NIfTI image ({type(e).__name__}: {e})"
        ) from e


def _read_data(img: Any, path: str, what: str, index: Any = ...) -> np.ndarray:
    """The image's voxel data (``index`` of them), float64; a truncated or corrupt file (which
    nibabel reports only when the data are read) is a :class:`DataError` naming it."""
    import zlib

    try:
        return np.asarray(img.dataobj[index], dtype=np.float64)
    except (EOFError, OSError, ValueError, zlib.error) as e:
        raise DataError(
            f"{path}: the {what}'s data cannot be read; the file looks truncated or corrupt "
            f"({type(e).__name__}: {e})"
        ) from e


def _header_tr(img: Any, bold_path: str, tr: float | None) -> float:
    zooms = img.header.get_zooms()
    _, t_unit = img.header.get_xyzt_units()
    scale = {"msec": 1e-3, "usec": 1e-6}.get(t_unit, 1.0)
    header_tr = float(zooms[3]) * scale
    has_header = np.isfinite(header_tr) and header_tr > 0
    if tr is not None:
        tr = float(tr)
        if not (np.isfinite(tr) and tr > 0):
            raise ArgumentError(f"{bold_path}: tr must be a positive number of seconds, got {tr}")
        if has_header and abs(tr - header_tr) > _TR_ATOL:
            raise DataError(
                f"{bold_path}: tr={tr:g} s given but the header TR (pixdim[4]) is "
                f"{header_tr:g} s (units {t_unit!r}); they differ by more than {_TR_ATOL:g} s"
            )
        return tr
    if not has_header:
        raise DataError(
            f"{bold_path}: TR missing: header pixdim[4] is {float(zooms[3])!r} (units "
            f"{t_unit!r}); pass tr= in seconds"
        )
    return header_tr


def load_nifti_regions(
    bold_path: str | os.PathLike,
    atlas_path: str | os.PathLike,
    *,
    labels: Sequence[int] | Mapping[int, str] | None = None,
    tr: float | None = None,
    detrend: bool = True,
    band: tuple[float, float] | None = None,
    band_order: int = 2,
    zscore: bool = True,
    min_voxels: int = 1,
) -> RegionTimeSeries:
    """Average a 4-D BOLD NIfTI over the regions of a 3-D atlas label image.

    Each region's value per volume is the plain mean over its voxels (scaling from the header
    applied). The BOLD file is read in chunks of volumes, so it never sits in memory whole.

    Args:
        bold_path: 4-D NIfTI (X, Y, Z, T).
        atlas_path: 3-D integer label NIfTI (X, Y, Z) on the same grid (same shape and affine
            within 1e-3).
        labels: atlas values to extract, in output order: a sequence of ints, or a mapping
            ``{value: name}`` to name the regions. None: every non-zero value, ascending, named
            by its value.
        tr: repetition time in seconds; None reads it from the header (pixdim[4], ms/us units
            converted). Given and different from a non-zero header TR by > 1e-3 s is an error.
        detrend: remove a least-squares line per region.
        band: ``(low, high)`` pass band in Hz for a zero-phase Butterworth band-pass
            (``scipy.signal.butter`` + ``filtfilt``; the squared magnitude of an order
            ``band_order`` filter), or None.
        band_order: Butterworth order of the band-pass.
        zscore: subtract the mean and divide by the (ddof 0) standard deviation per region.
        min_voxels: smallest number of voxels a region may have.

    Returns:
        A :class:`RegionTimeSeries` with data (T, N) float64, ``source`` the BOLD path.

    Raises:
        DataError: a file missing, not a NIfTI image, truncated or corrupt (naming it); BOLD
            not 4-D or atlas not 3-D, spatial shape or affine mismatch, non-integer
            atlas, TR missing or inconsistent, requested labels absent, a region below
            ``min_voxels``, fewer than 10 volumes, a NaN or constant region series, a band
            outside (0, Nyquist).
    """
    bold_path, atlas_path = os.fspath(bold_path), os.fspath(atlas_path)
    bold = _load_image(bold_path, "BOLD image")
    atlas = _load_image(atlas_path, "atlas")
    if len(bold.shape) != 4:
        raise ShapeError(
            f"{bold_path}: BOLD image must be 4-D (X, Y, Z, T), got shape {bold.shape}"
        )
    if len(atlas.shape) != 3:
        raise ShapeError(
            f"{atlas_path}: atlas image must be 3-D (X, Y, Z), got shape {atlas.shape}"
        )
    if tuple(bold.shape[:3]) != tuple(atlas.shape):
        raise ShapeError(
            f"{atlas_path}: atlas spatial shape {atlas.shape} does not match BOLD {bold_path} "
            f"spatial shape {bold.shape[:3]}"
        )
    if not np.allclose(atlas.affine, bold.affine, atol=_AFFINE_ATOL):
        raise DataError(
            f"{atlas_path}: atlas affine does not match BOLD {bold_path} affine (atol "
            f"{_AFFINE_ATOL:g}):\natlas:\n{np.array2string(atlas.affine, precision=4)}\n"
            f"BOLD:\n{np.array2string(bold.affine, precision=4)}"
        )
    t_len = int(bold.shape[3])
    if t_len < _MIN_POINTS:
        raise ShapeError(
            f"{bold_path}: too few volumes: need at least {_MIN_POINTS}, got {t_len} "
            f"(shape {bold.shape})"
        )
    tr = _header_tr(bold, bold_path, tr)

    lab = _read_data(atlas, atlas_path, "atlas")
    if not np.all(np.isfinite(lab)) or not np.all(np.mod(lab, 1) == 0):
        raise DataError(
            f"{atlas_path}: atlas values must be integers (dtype {atlas.get_data_dtype()})"
        )
    lab = lab.astype(np.int64).reshape(-1, order="F")
    present = np.unique(lab)
    values, names = _atlas_selection(labels, present, atlas_path)
    if not values:
        raise DataError(f"{atlas_path}: atlas has no non-zero labels")

    counts = np.array([np.count_nonzero(lab == v) for v in values])
    small = np.flatnonzero(counts < int(min_voxels))
    if small.size:
        j = int(small[0])
        raise DataError(
            f"{atlas_path}: region {names[j]!r} (atlas value {values[j]}) has {counts[j]} "
            f"voxel(s), fewer than min_voxels={int(min_voxels)}"
        )

    # voxel indices grouped by region, in output order, for np.add.reduceat
    order = np.concatenate([np.flatnonzero(lab == v) for v in values])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    nvox = int(np.prod(bold.shape[:3]))
    chunk = max(1, _CHUNK_VALUES // max(nvox, 1))
    out = np.empty((t_len, len(values)), dtype=np.float64)
    for t0 in range(0, t_len, chunk):
        t1 = min(t_len, t0 + chunk)
        vol = _read_data(bold, bold_path, "BOLD image", (..., slice(t0, t1)))
        vol = vol.reshape(nvox, t1 - t0, order="F")[order]
        out[t0:t1] = (np.add.reduceat(vol, starts, axis=0) / counts[:, None]).T

    data = _preprocess(
        out,
        tr,
        names,
        bold_path,
        detrend=detrend,
        band=band,
        band_order=band_order,
        zscore=zscore,
    )
    return RegionTimeSeries(data, tr, names, bold_path)


__all__ = ["load_nifti_regions"]
