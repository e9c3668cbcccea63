"""Observed data for fitting: group FC matrices, sensor (EEG/MEG) time series, band powers.

Pure NumPy loading and validation at the edge; spectral features reuse
:func:`vbt_jax.features.welch_psd` and :func:`vbt_jax.features.band_powers`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import ArgumentError, DataError, LabelError, ShapeError
from .._labels import label_tuple
from ._table import read_npy
from ._timeseries import _read_table

_RELMAT = "_relmat.dense.tsv"


# ------------------------------------------------------------------ functional connectivity


class ObservedFC(eqx.Module):
    """An empirical (group) functional connectivity matrix.

    Attributes:
        fc: (N, N) float64 symmetric Pearson correlations, diagonal 1.
        labels: N region names (static).
        n_timepoints: number of volumes each correlation was computed from, or None if unknown;
            sets the sampling SD of Fisher-z values, ``1 / sqrt(n_timepoints - 3)``.
        source: file path or description (static).
    """

    fc: Any
    labels: tuple[str, ...] = eqx.field(static=True)
    n_timepoints: int | None = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(
        self,
        fc: Any,
        labels: Sequence[str] | None = None,
        n_timepoints: int | None = None,
        source: str = "array",
    ):
        self.fc = np.asarray(fc, dtype=np.float64)
        n = self.fc.shape[0] if self.fc.ndim else 0
        self.labels = (
            tuple(f"region_{i}" for i in range(n))
            if labels is None
            else tuple(str(s) for s in labels)
        )
        self.n_timepoints = None if n_timepoints is None else int(n_timepoints)
        self.source = str(source)

    def __check_init__(self):
        _check_fc(self.fc, self.source)
        if len(self.labels) != self.fc.shape[0]:
            raise ShapeError(
                f"{self.source}: {len(self.labels)} labels for a {self.fc.shape[0]}-region FC"
            )
        if self.n_timepoints is not None and self.n_timepoints < 4:
            raise ArgumentError(
                f"{self.source}: n_timepoints must be an int >= 4 (Fisher-z variance "
                f"1/(T-3)), got {self.n_timepoints}"
            )

    @property
    def fisher_z_sd(self) -> float | None:
        """Sampling SD of ``arctanh(r)`` for independent samples, ``1/sqrt(T-3)``; None if T
        unknown (autocorrelated BOLD has fewer effective samples, so this is a lower bound)."""
        return None if self.n_timepoints is None else 1.0 / np.sqrt(self.n_timepoints - 3)


def _check_fc(fc: np.ndarray, source: str, atol: float = 1e-6) -> None:
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1] or fc.shape[0] < 2:
        raise ShapeError(f"{source}: FC must be a square (N, N) matrix, N >= 2, got {fc.shape}")
    off = ~np.eye(fc.shape[0], dtype=bool)
    bad = np.argwhere(~np.isfinite(fc) & off)
    if bad.size:
        i, j = bad[0]
        raise DataError(
            f"{source}: {len(bad)} off-diagonal entries are NaN/inf; first at [{i}, {j}] = "
            f"{fc[i, j]}"
        )
    asym = np.abs(fc - fc.T)
    if asym.max() > atol:
        i, j = np.unravel_index(np.argmax(asym), asym.shape)
        raise DataError(
            f"{source}: FC is not symmetric (tolerance {atol:g}): [{i}, {j}] = {fc[i, j]:.6g} "
            f"but [{j}, {i}] = {fc[j, i]:.6g}"
        )
    out = np.abs(fc) > 1.0 + atol
    if out.any():
        i, j = np.argwhere(out)[0]
        raise DataError(
            f"{source}: correlations must lie in [-1, 1]; {int(out.sum())} entries do not, "
            f"first [{i}, {j}] = {fc[i, j]:.6g}"
        )
    d = np.diag(fc)
    if not np.allclose(d, 1.0, atol=atol, rtol=0):
        i = int(np.flatnonzero(np.abs(d - 1.0) > atol)[0])
        raise DataError(f"{source}: FC diagonal must be 1, got [{i}, {i}] = {d[i]:.6g}")


def _relmat_labels(path: Path, n: int) -> tuple[tuple[str, ...] | None, bool | None]:
    """Node labels and ValidDiagonal from a BIDS relmat's JSON sidecar, if any."""
    sidecar = path.with_name(path.name[: -len(".dense.tsv")] + ".json")
    if not sidecar.is_file():
        return None, None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{sidecar}: unreadable JSON sidecar ({e})") from e
    valid_diag = meta.get("ValidDiagonal")
    node_file = None
    axes = meta.get("Axes") or meta.get("axes")
    if isinstance(axes, list) and axes and isinstance(axes[0], dict):
        node_file = axes[0].get("NodeFile")
    if not node_file:
        return None, valid_diag
    from ._bids import _parse_nodeindices

    npath = path.parent / node_file
    if not npath.is_file():
        raise DataError(f"{sidecar}: NodeFile {node_file!r} not found beside it")
    return _parse_nodeindices(npath.read_text(encoding="utf-8"), n, str(npath)), valid_diag


def load_fc_matrix(
    path: str | os.PathLike,
    labels: Any = None,
    *,
    n_timepoints: int | None = None,
    atol: float = 1e-6,
) -> ObservedFC:
    """Load a precomputed (group) FC matrix from .npy, .csv, .tsv or a BIDS relmat.

    Text files may start with a header row of region names. A BIDS ``*_relmat.dense.tsv`` takes
    its labels from the sidecar's ``NodeFile``. A diagonal that is all NaN or all 0 (common
    placeholders, or ``"ValidDiagonal": false``) is set to 1; any other diagonal must be 1. The
    matrix is symmetrised exactly (mean with its transpose) after the check.

    Args:
        path: the file.
        labels: N region names (sequence, or a connectome whose labels must then equal the
            file's, if it names its regions); None takes them from the file or ``region_<i>``.
        n_timepoints: volumes per subject the correlations came from (None if unknown).
        atol: tolerance of the symmetry, diagonal and [-1, 1] checks.

    Returns:
        An :class:`ObservedFC` with ``source`` the path.

    Raises:
        DataError: missing or unreadable file; not square; NaN/inf off the diagonal; asymmetric;
            values outside [-1, 1]; diagonal not 1; label count or names mismatching; the message
            names the file and the first offending index and value.
    """
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise DataError(f"{src}: file not found")
    file_labels, valid_diag = None, None
    if p.name.endswith(_RELMAT):
        fc, _ = _read_table(src)
        fc = np.asarray(fc, dtype=np.float64)
        if fc.ndim == 2 and fc.shape[0] == fc.shape[1]:
            file_labels, valid_diag = _relmat_labels(p, fc.shape[0])
    elif p.suffix.lower() == ".npy":
        fc = read_npy(p)
    elif p.suffix.lower() in (".csv", ".tsv"):
        fc, header = _read_table(src)
        fc = np.asarray(fc, dtype=np.float64)
        file_labels = None if header is None else tuple(header)
    else:
        raise DataError(f"{src}: unsupported extension {p.suffix!r}; expected .npy/.csv/.tsv")
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1]:
        raise ShapeError(f"{src}: FC must be a square (N, N) matrix, got shape {fc.shape}")
    fc = fc.copy()
    d = np.diag(fc)
    if valid_diag is False or np.isnan(d).all() or (d == 0).all():
        np.fill_diagonal(fc, 1.0)
    _check_fc(fc, src, atol)
    fc = 0.5 * (fc + fc.T)
    np.clip(fc, -1.0, 1.0, out=fc)
    n = fc.shape[0]
    want = label_tuple(labels)
    if want is not None:
        if len(want) != n:
            raise ShapeError(f"{src}: {n} regions in the FC but {len(want)} labels given")
        if file_labels is not None and tuple(file_labels) != want:
            i = next(k for k, (a, b) in enumerate(zip(file_labels, want)) if a != b)
            raise LabelError(
                f"{src}: region labels differ from those given at index {i}: file "
                f"{file_labels[i]!r} vs {want[i]!r}"
            )
        file_labels = want
    if file_labels is not None and len(file_labels) != n:
        raise ShapeError(f"{src}: {len(file_labels)} header labels for {n} regions")
    if n_timepoints is not None and (
        isinstance(n_timepoints, bool) or int(n_timepoints) != n_timepoints
    ):
        raise ArgumentError(f"{src}: n_timepoints must be an int, got {n_timepoints!r}")
    return ObservedFC(fc, file_labels, n_timepoints, src)


# ------------------------------------------------------------------ band power tables


class BandPowers(eqx.Module):
    """Power in frequency bands per region or sensor.

    Attributes:
        values: (N, B) float64; NaN rows where there is no value.
        labels: N region or channel names (static).
        band_names: B band names (static).
        bands: B ``(lo, hi)`` edges in Hz, or None if unknown (static).
        source: provenance (static).
    """

    values: Any
    labels: tuple[str, ...] = eqx.field(static=True)
    band_names: tuple[str, ...] = eqx.field(static=True)
    bands: tuple[tuple[float, float], ...] | None = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(
        self,
        values: Any,
        labels: Sequence[str],
        bands: Mapping[str, tuple[float, float]] | Sequence[str],
        source: str = "array",
    ):
        self.values = np.asarray(values, dtype=np.float64)
        self.labels = tuple(str(s) for s in labels)
        if isinstance(bands, Mapping):
            self.band_names = tuple(str(k) for k in bands)
            self.bands = tuple((float(lo), float(hi)) for lo, hi in bands.values())
        else:
            self.band_names = tuple(str(k) for k in bands)
            self.bands = None
        self.source = str(source)

    def __check_init__(self):
        shape = (len(self.labels), len(self.band_names))
        if self.values.shape != shape:
            raise ShapeError(
                f"{self.source}: band powers must be (N, B) = {shape} (labels x bands), got "
                f"{self.values.shape}"
            )

    @property
    def missing(self) -> np.ndarray:
        """(N,) bool: rows without values."""
        return np.isnan(self.values).any(axis=1)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``band name -> (N,)`` values."""
        return {b: self.values[:, k] for k, b in enumerate(self.band_names)}


def load_band_powers(
    path: str | os.PathLike,
    labels: Any = None,
    bands: Mapping[str, tuple[float, float]] | Sequence[str] | None = None,
    *,
    label_column: str | None = None,
    allow_missing: bool = False,
) -> BandPowers:
    """Load a region-level band-power table (.csv/.tsv rows = regions, or .npy (N, B)).

    A text table may have a header row; its band columns are selected by the names in
    ``bands`` (all numeric columns if None). With ``label_column`` (a header name) rows are
    matched to ``labels`` by name (see :func:`vbt_jax.match_labels`); a region of ``labels``
    with no row is an error naming it, or a NaN row with ``allow_missing=True``. Without
    ``label_column`` rows must already be in the order of ``labels``.

    Args:
        path: the file.
        labels: target region names (sequence or connectome); None keeps the file's rows.
        bands: ``name -> (lo, hi)`` Hz or band names; needed to name the columns of a file
            without a header (its length must equal the column count).
        label_column: header name of the column of region labels.
        allow_missing: with ``label_column``, keep regions the file has no row for as NaN
            rows instead of raising.

    Returns:
        A :class:`BandPowers`.

    Raises:
        DataError: unreadable file, missing columns, non-finite or negative values, row/label
            count mismatch, file labels matching no region, regions without a row (unless
            ``allow_missing``); the message names the file.
    """
    from ._maps import match_labels

    src = os.fspath(path)
    if not os.path.isfile(src):
        raise DataError(f"{src}: file not found")
    want = label_tuple(labels)
    row_labels = None
    ext = os.path.splitext(src)[1].lower()
    if ext == ".npy":
        data, header = read_npy(src), None
    elif ext in (".csv", ".tsv") and label_column is not None:
        import csv

        with open(src, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if ext == ".tsv" else ","))
        if not rows or label_column not in rows[0]:
            cols = list(rows[0]) if rows else []
            raise DataError(f"{src}: no column {label_column!r}; columns are {cols}")
        header = [c for c in rows[0] if c != label_column]
        row_labels = [r[label_column].strip() for r in rows]
        try:
            data = np.array([[float(r[c]) for c in header] for r in rows], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"{src}: non-numeric band power ({e})") from None
    else:
        data, header = _read_table(src)
        data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ShapeError(f"{src}: expected a (regions, bands) table, got shape {data.shape}")
    names = list(bands) if bands is not None else None
    if header is not None:
        if names is None:
            names = list(header)
        missing = [b for b in names if b not in header]
        if missing:
            raise DataError(f"{src}: band columns {missing} not in the header {header}")
        data = data[:, [header.index(b) for b in names]]
    elif names is None:
        names = [f"band_{k}" for k in range(data.shape[1])]
    elif len(names) != data.shape[1]:
        raise ShapeError(f"{src}: {data.shape[1]} columns but {len(names)} bands {names}")
    bad = np.argwhere(~np.isfinite(data) | (data < 0))
    if bad.size:
        i, k = bad[0]
        raise DataError(
            f"{src}: band powers must be finite and >= 0; row {i}, band {names[k]!r} = {data[i, k]}"
        )
    if row_labels is not None:
        target = want if want is not None else tuple(row_labels)
        idx = match_labels(row_labels, target, what=src)
        if (idx < 0).any() and not allow_missing:
            absent = [t for t, i in zip(target, idx) if i < 0]
            more = f" ... ({len(absent)} in all)" if len(absent) > 20 else ""
            raise DataError(
                f"{src}: no row for {len(absent)} of {len(target)} regions: {absent[:20]}{more}; "
                f"pass allow_missing=True to keep them as NaN rows"
            )
        data = np.where((idx >= 0)[:, None], data[np.maximum(idx, 0)], np.nan)
        out_labels = target
    else:
        if want is not None and len(want) != data.shape[0]:
            raise ShapeError(
                f"{src}: {data.shape[0]} rows but {len(want)} labels (pass label_column= to "
                f"match rows by name)"
            )
        out_labels = want if want is not None else tuple(f"region_{i}" for i in range(len(data)))
    spec = bands if isinstance(bands, Mapping) else names
    return BandPowers(data, out_labels, spec, src)


# ------------------------------------------------------------------ sensor time series


class SensorTimeSeries(eqx.Module):
    """Sensor-level (EEG/MEG) recordings.

    Attributes:
        data: (T, M) float64, time by channel (the layout of :func:`vbt_jax.project`).
        sfreq: sampling rate in Hz (static).
        channels: M channel names (static).
        source: file path or description (static).
    """

    data: Any
    sfreq: float = eqx.field(static=True)
    channels: tuple[str, ...] = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(self, data: Any, sfreq: float, channels: Sequence[str], source: str = "array"):
        self.data = np.asarray(data, dtype=np.float64)
        self.sfreq = _check_sfreq(sfreq, source)
        self.channels = tuple(str(s) for s in channels)
        self.source = str(source)

    def __check_init__(self):
        if self.data.ndim != 2:
            raise ShapeError(f"{self.source}: data must be (T, M), got {self.data.shape}")
        if len(self.channels) != self.data.shape[1]:
            raise ShapeError(
                f"{self.source}: {len(self.channels)} channel names for {self.data.shape[1]} "
                f"channels"
            )

    @property
    def n_channels(self) -> int:
        return self.data.shape[1]

    @property
    def n_times(self) -> int:
        return self.data.shape[0]


def _check_sfreq(sfreq: Any, source: str) -> float:
    if sfreq is None:
        raise ArgumentError(f"{source}: sfreq (sampling rate in Hz) is required")
    try:
        f = float(sfreq)
    except (TypeError, ValueError):
        raise ArgumentError(f"{source}: sfreq must be a number of Hz, got {sfreq!r}") from None
    if not (np.isfinite(f) and f > 0):
        raise ArgumentError(f"{source}: sfreq must be a positive number of Hz, got {sfreq!r}")
    return f


def _min_samples(sfreq: float, f_lo: float) -> int:
    """Samples needed to resolve ``f_lo``: two of its cycles (Welch resolution f_lo / 2)."""
    return int(np.ceil(2.0 * sfreq / f_lo))


def load_sensor_timeseries(
    path: str | os.PathLike,
    sfreq: float | None,
    *,
    channels: Sequence[str] | None = None,
    time_axis: int = 1,
    min_frequency: float | None = None,
) -> SensorTimeSeries:
    """Load sensor recordings from .npy, .csv or .tsv.

    Args:
        path: the file; by default rows are channels and columns time samples (M, T). A text
            file with ``time_axis=0`` may start with a header row of channel names.
        sfreq: sampling rate in Hz (required).
        channels: M channel names; None uses the header or ``ch_<i>``.
        time_axis: 1 if rows are channels (M, T), 0 if rows are time samples (T, M).
        min_frequency: lowest frequency (Hz) to be analysed; the recording must hold at least
            ``2 sfreq / min_frequency`` samples (two cycles).

    Returns:
        A :class:`SensorTimeSeries` (data stored time by channel).

    Raises:
        DataError: missing/non-positive sfreq, unreadable or non-2-D data, wrong number of
            channel names, NaN/inf or constant channels (named), too few samples.
    """
    src = os.fspath(path)
    sfreq = _check_sfreq(sfreq, src)
    if time_axis not in (0, 1):
        raise ArgumentError(f"{src}: time_axis must be 0 or 1, got {time_axis!r}")
    if not os.path.isfile(src):
        raise DataError(f"{src}: file not found")
    data, header = _read_table(src)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ShapeError(f"{src}: expected a 2-D sensor-by-time array, got shape {data.shape}")
    if header is not None and time_axis != 0:
        raise DataError(f"{src}: a header row of channel names needs time_axis=0")
    if time_axis == 1:
        data = data.T
    n_t, m = data.shape
    names = channels if channels is not None else header
    names = [f"ch_{i}" for i in range(m)] if names is None else [str(s) for s in names]
    if len(names) != m:
        raise ShapeError(
            f"{src}: {len(names)} channel names for {m} channels (data {data.shape} time by "
            f"channel after time_axis={time_axis})"
        )
    nonfinite = [names[i] for i in range(m) if not np.isfinite(data[:, i]).all()]
    if nonfinite:
        raise DataError(f"{src}: channels with NaN/inf samples: {nonfinite[:20]}")
    flat = [names[i] for i in range(m) if np.ptp(data[:, i]) == 0]
    if flat:
        raise DataError(f"{src}: constant (flat) channels: {flat[:20]}")
    if min_frequency is not None:
        need = _min_samples(sfreq, float(min_frequency))
        if n_t < need:
            raise DataError(
                f"{src}: {n_t} samples ({n_t / sfreq:g} s) are too few to resolve "
                f"{min_frequency} Hz; need >= {need} (two cycles at sfreq {sfreq:g} Hz)"
            )
    return SensorTimeSeries(data, sfreq, names, src)


def sensor_band_powers(
    ts: SensorTimeSeries,
    bands: Mapping[str, tuple[float, float]] | None = None,
    *,
    relative: bool = True,
    nperseg: int | None = None,
    noverlap: int | None = None,
) -> BandPowers:
    """Band powers per channel from a Welch PSD (:func:`vbt_jax.features.welch_psd`).

    Args:
        ts: the recordings.
        bands: ``name -> (lo, hi)`` Hz; :data:`vbt_jax.features.DEFAULT_BANDS` if None.
        relative: divide each channel's band powers by their sum (they then sum to 1, the
            convention of Hansen et al.'s MEG maps, :func:`vbt_jax.meg_band_power`).
        nperseg: Welch segment length in samples; default ``min(T, ceil(4 sfreq / f_lo))``
            with ``f_lo`` the lowest positive band edge (resolution f_lo / 4).
        noverlap: Welch overlap in samples (``nperseg // 2`` if None).

    Returns:
        A :class:`BandPowers` over the channels, in data units^2 (absolute) or fractions.

    Raises:
        DataError: malformed bands, a band above Nyquist, too few samples for the lowest band
            edge (fewer than two cycles).
    """
    from ..features import DEFAULT_BANDS, band_powers, welch_psd

    bands = dict(DEFAULT_BANDS if bands is None else bands)
    if not bands:
        raise ArgumentError("sensor_band_powers: bands is empty")
    edges = [e for b in bands.values() for e in b if e > 0]
    f_lo = min(edges) if edges else 1.0
    need = _min_samples(ts.sfreq, f_lo)
    if ts.n_times < need:
        raise DataError(
            f"{ts.source}: {ts.n_times} samples are too few for the band edge {f_lo:g} Hz; "
            f"need >= {need} (two cycles at {ts.sfreq:g} Hz)"
        )
    if nperseg is None:
        nperseg = min(ts.n_times, int(np.ceil(4.0 * ts.sfreq / f_lo)))
    freqs, psd = welch_psd(np.asarray(ts.data), ts.sfreq, nperseg, noverlap, axis=0)
    pw = band_powers(freqs, psd, bands, axis=0)
    values = np.stack([np.asarray(pw[b], dtype=np.float64) for b in bands], axis=1)
    if relative:
        values = values / values.sum(axis=1, keepdims=True)
    return BandPowers(values, ts.channels, bands, ts.source)


def check_gain(gain: Any, ts: SensorTimeSeries, connectome: Any = None) -> None:
    """Check that a lead field fits the recordings (and the connectome, if given).

    Args:
        gain: (M, N) region-to-sensor gain.
        ts: recordings with M channels.
        connectome: optional; its region count must equal N.

    Raises:
        ShapeError: gain not 2-D, channel count or region count mismatch (names both sides),
            or a gain that looks transposed (N, M) (gives both shapes).
    """
    shape = np.shape(gain)
    if len(shape) != 2:
        raise ShapeError(f"gain must be (M channels, N regions), got shape {shape}")
    n = None if connectome is None else int(np.shape(connectome.weights)[-1])
    m = ts.n_channels
    if shape[0] != m and shape[1] == m and (n is None or shape[0] == n):
        expected = f"({m}, {shape[0]})" if n is None else f"({m}, {n})"
        raise ShapeError(
            f"gain looks transposed: its shape is {shape} but (M channels, N regions) = "
            f"{expected} is expected ({ts.source} has {m} channels); pass gain.T"
        )
    if shape[0] != ts.n_channels:
        raise ShapeError(
            f"gain has {shape[0]} channels (shape {shape}) but {ts.source} has {ts.n_channels}"
        )
    if connectome is not None:
        n = int(np.shape(connectome.weights)[-1])
        if shape[1] != n:
            cname = getattr(connectome, "name", "connectome")
            raise ShapeError(
                f"gain has {shape[1]} regions (shape {shape}) but connectome '{cname}' has {n}"
            )


__all__ = [
    "BandPowers",
    "ObservedFC",
    "SensorTimeSeries",
    "check_gain",
    "load_band_powers",
    "load_fc_matrix",
    "load_sensor_timeseries",
    "sensor_band_powers",
]
