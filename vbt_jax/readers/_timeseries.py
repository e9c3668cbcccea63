"""Empirical imaging data to model inputs: regional BOLD time series from NIfTI or text/NumPy files.

Pure NumPy/SciPy/nibabel: everything here runs once at the edge, before anything is compiled.
Preprocessing order is fixed: linear detrend, then band-pass (zero-phase Butterworth), then
z-score per region.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import ArgumentError, DataError, LabelError, ShapeError
from ._table import parse_table, read_npy, read_text

_MIN_POINTS = 10
_TR_ATOL = 1e-3  # seconds
_AFFINE_ATOL = 1e-3  # mm
_PLACEHOLDER = re.compile(r"region_\d+")
_CHUNK_VALUES = 2**26  # BOLD values read at once (~512 MB of float64)


class RegionTimeSeries(eqx.Module):
    """Regional time series (e.g. parcellated BOLD) ready to compare with a model's output.

    Attributes:
        data: (T, N) float64 NumPy array, T time points by N regions.
        tr: sampling interval in seconds (repetition time for BOLD).
        labels: N region names (static). Atlas integer values written as strings (``"17"``)
            when no names were given.
        source: where the data came from (file path or description; static).

    Raises (at construction):
        DataError: data not 2-D, tr not a positive finite number, wrong number of labels.
    """

    data: Any
    tr: float = eqx.field(static=True)
    labels: tuple[str, ...] = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(self, data: Any, tr: float, labels: Sequence[Any], source: str = "array"):
        self.data = np.asarray(data, dtype=np.float64)
        self.tr = float(tr)
        if isinstance(labels, str):
            raise ArgumentError(f"{source}: labels must be a sequence of names, got one str")
        self.labels = tuple(str(s) for s in labels)
        self.source = str(source)

    def __check_init__(self):
        if self.data.ndim != 2:
            raise ShapeError(
                f"{self.source}: data must be (T, N) (time by region), got shape {self.data.shape}"
            )
        if not (np.isfinite(self.tr) and self.tr > 0):
            raise ArgumentError(
                f"{self.source}: tr must be a positive number of seconds, got {self.tr}"
            )
        if len(self.labels) != self.data.shape[1]:
            raise ShapeError(
                f"{self.source}: got {len(self.labels)} labels for {self.data.shape[1]} regions "
                f"(data shape {self.data.shape})"
            )

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.data.shape[1])

    @property
    def n_times(self) -> int:
        """Number of time points T."""
        return int(self.data.shape[0])


# ------------------------------------------------------------------ preprocessing


def _check_series(data: np.ndarray, labels: Sequence[str], source: str) -> None:
    """Reject too-short, non-finite or constant regional series (data is (T, N))."""
    t = data.shape[0]
    if t < _MIN_POINTS:
        raise ShapeError(
            f"{source}: too few time points: need at least {_MIN_POINTS}, got {t} "
            f"(data shape {data.shape})"
        )
    bad = ~np.all(np.isfinite(data), axis=0)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: region {labels[j]!r} (column {j}) has NaN/inf values in its time series"
        )
    const = np.ptp(data, axis=0) == 0
    if const.any():
        j = int(np.flatnonzero(const)[0])
        raise DataError(
            f"{source}: region {labels[j]!r} (column {j}) has a constant time series "
            f"(value {data[0, j]!r})"
        )


def _check_band(band: Any, tr: float, source: str) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ArgumentError(f"{source}: band must be (low_hz, high_hz), got {band!r}") from None
    nyquist = 0.5 / tr
    if not (0 < low < high < nyquist):
        raise ArgumentError(
            f"{source}: band must satisfy 0 < low < high < Nyquist = 0.5 / tr = {nyquist:g} Hz "
            f"(tr {tr:g} s), got band=({low:g}, {high:g}) Hz"
        )
    return low, high


def _preprocess(
    data: np.ndarray,
    tr: float,
    labels: Sequence[str],
    source: str,
    *,
    detrend: bool,
    band: Any,
    band_order: int,
    zscore: bool,
) -> np.ndarray:
    import scipy.signal as ss

    _check_series(data, labels, source)
    out = np.array(data, dtype=np.float64)
    if detrend:
        out = ss.detrend(out, axis=0, type="linear")
    if band is not None:
        low, high = _check_band(band, tr, source)
        b, a = ss.butter(int(band_order), (low, high), btype="bandpass", fs=1.0 / tr)
        padlen = 3 * max(len(a), len(b))
        if out.shape[0] <= padlen:
            raise ShapeError(
                f"{source}: band-pass of order {band_order} needs more than {padlen} time "
                f"points, got {out.shape[0]}"
            )
        out = ss.filtfilt(b, a, out, axis=0)
    if zscore:
        sd = out.std(axis=0)
        if np.any(sd == 0):
            j = int(np.flatnonzero(sd == 0)[0])
            raise DataError(
                f"{source}: region {labels[j]!r} is constant after preprocessing; cannot z-score"
            )
        out = (out - out.mean(axis=0)) / sd
    return out


# ------------------------------------------------------------------ NIfTI


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


# ------------------------------------------------------------------ arrays on disk


def _read_table(path: str) -> tuple[np.ndarray, list[str] | None]:
    """Numeric table from .npy/.csv/.tsv (:func:`vbt_jax._table.parse_table`: comma for .csv,
    tab for .tsv); a non-numeric first row of a text file is a header of names."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return read_npy(path), None
    if ext not in (".csv", ".tsv"):
        raise DataError(f"{path}: unsupported extension {ext!r}; expected .npy, .csv or .tsv")
    delim = "," if ext == ".csv" else "\t"
    return parse_table(read_text(path), path, delimiter=delim, header=True)


def load_region_timeseries(
    path: str | os.PathLike,
    *,
    tr: float,
    labels: Sequence[str] | None = None,
    time_axis: int = 0,
    detrend: bool = True,
    band: tuple[float, float] | None = None,
    band_order: int = 2,
    zscore: bool = True,
) -> RegionTimeSeries:
    """Load a region-by-time array from .npy, .csv or .tsv and preprocess it.

    Text files may start with one header row of region names (only with ``time_axis=0``, where
    columns are regions); ``labels`` overrides it.

    Args:
        path: the file.
        tr: sampling interval in seconds.
        labels: N region names; None uses the header or ``region_0 ...``.
        time_axis: 0 if rows are time points (T, N), 1 if rows are regions (N, T).
        detrend, band, band_order, zscore: as in :func:`load_nifti_regions`.

    Returns:
        A :class:`RegionTimeSeries` with data (T, N) float64, ``source`` the path.

    Raises:
        ShapeError: fewer time points than regions (the table looks transposed: the message
            names ``time_axis``).
        DataError: unreadable or non-2-D table, bad time_axis or tr, wrong number of labels,
            fewer than 10 time points, a NaN or constant region series, a band outside
            (0, Nyquist).
    """
    path = os.fspath(path)
    if time_axis not in (0, 1):
        raise ArgumentError(f"{path}: time_axis must be 0 or 1, got {time_axis!r}")
    tr = float(tr)
    if not (np.isfinite(tr) and tr > 0):
        raise ArgumentError(f"{path}: tr must be a positive number of seconds, got {tr}")
    data, header = _read_table(path)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ShapeError(f"{path}: expected a 2-D region-by-time array, got shape {data.shape}")
    if header is not None and time_axis != 0:
        raise DataError(f"{path}: a header row of names needs time_axis=0 (columns = regions)")
    shape = data.shape
    if time_axis == 1:
        data = data.T
    n = data.shape[1]
    if data.shape[0] < n:
        rows = ("time points", "regions")[time_axis]
        other = ("regions", "time points")[time_axis]
        raise ShapeError(
            f"{path}: the table looks transposed: shape {shape} with time_axis={time_axis} "
            f"(rows are {rows}) gives {data.shape[0]} time points for {n} regions, fewer time "
            f"points than regions. If its rows are {other}, pass time_axis={1 - time_axis} (in "
            f"a fit config: [fit.data] time_axis = {1 - time_axis})"
        )
    if labels is None:
        labels = header if header is not None else [f"region_{i}" for i in range(n)]
    if isinstance(labels, str):
        raise ArgumentError(f"{path}: labels must be a sequence of names, got one str")
    labels = [str(s) for s in labels]
    if len(labels) != n:
        raise ShapeError(
            f"{path}: got {len(labels)} labels for {n} regions (data shape {data.shape} after "
            f"time_axis={time_axis}, time by region)"
        )
    out = _preprocess(
        data, tr, labels, path, detrend=detrend, band=band, band_order=band_order, zscore=zscore
    )
    return RegionTimeSeries(out, tr, labels, path)


# ------------------------------------------------------------------ consistency


def _named(labels: Sequence[str]) -> bool:
    """False for placeholder labels: atlas integer values or ``region_<i>``."""
    return bool(labels) and not all(
        s.lstrip("-").isdigit() or _PLACEHOLDER.fullmatch(s) for s in labels
    )


def check_against_connectome(ts: RegionTimeSeries, connectome: Any) -> None:
    """Check that regional time series and a connectome describe the same regions, in order.

    Labels are compared only when both sides carry names (placeholders such as atlas integer
    values ``"17"`` or ``"region_3"`` are not names).

    Args:
        ts: the empirical data.
        connectome: a :class:`vbt_jax.Connectome` (anything with ``labels`` and ``weights``).

    Raises:
        DataError: region counts differ, or labels differ (names the first mismatch on both
            sides and the labels present on only one side).
    """
    c_labels = tuple(str(s) for s in connectome.labels)
    n_c = int(np.shape(connectome.weights)[-1])
    cname = getattr(connectome, "name", "connectome")
    if ts.n_regions != n_c:
        raise ShapeError(
            f"{ts.source}: {ts.n_regions} regions in the time series but connectome "
            f"'{cname}' has {n_c}"
        )
    if not (_named(ts.labels) and _named(c_labels)):
        return
    diff = [i for i, (a, b) in enumerate(zip(ts.labels, c_labels)) if a != b]
    if diff:
        i = diff[0]
        only_ts = [s for s in ts.labels if s not in set(c_labels)][:5]
        only_c = [s for s in c_labels if s not in set(ts.labels)][:5]
        raise LabelError(
            f"{ts.source}: labels differ from connectome '{cname}' at {len(diff)} position(s); "
            f"first at index {i}: time series {ts.labels[i]!r} vs connectome {c_labels[i]!r}. "
            f"Only in the time series: {only_ts}; only in the connectome: {only_c}"
        )
