"""Sensor (EEG/MEG) recordings: :class:`SensorTimeSeries`, their band powers, and the check of a
lead field against them.

Pure NumPy loading and validation at the edge; spectral features reuse
:func:`vbt_jax.features.welch_psd` and :func:`vbt_jax.features.band_powers`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import ArgumentError, DataError, ShapeError
from ._band_powers import BandPowers
from ._table import _read_table


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


__all__ = ["SensorTimeSeries", "check_gain", "load_sensor_timeseries", "sensor_band_powers"]
