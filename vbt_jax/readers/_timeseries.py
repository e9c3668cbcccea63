"""Regional time series (e.g. parcellated BOLD): :class:`RegionTimeSeries`, its preprocessing,
tables on disk and the check against a connectome.

Pure NumPy/SciPy: everything here runs once at the edge, before anything is compiled.
Preprocessing order is fixed: linear detrend, then band-pass (zero-phase Butterworth), then
z-score per region. NIfTI BOLD averaged over an atlas is read in ``_nifti.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import ArgumentError, DataError, LabelError, ShapeError
from ._table import _read_table

_MIN_POINTS = 10
_PLACEHOLDER = re.compile(r"region_\d+")


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


# ------------------------------------------------------------------ arrays on disk


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


__all__ = ["RegionTimeSeries", "check_against_connectome", "load_region_timeseries"]
