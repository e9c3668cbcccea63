"""Power spectra: Welch PSD, band powers and the alpha peak frequency.

Frequencies are in Hz: give the sampling rate ``fs`` in Hz (a model run in ms sampled every
``dt_ms`` has ``fs = 1000 / dt_ms``).
"""

from __future__ import annotations

import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError

#: Default EEG bands in Hz, ``name -> (lo, hi)``; adjacent bands share their edge.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "low_gamma": (30.0, 60.0),
}


def _float_dtype(x: Array):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)


def welch_psd(
    x: Array,
    fs: float,
    nperseg: int,
    noverlap: int | None = None,
    axis: int = 0,
    *,
    detrend: bool = True,
) -> tuple[Array, Array]:
    """Welch power spectral density: periodic Hann window, one-sided, density scaling.

    Matches ``scipy.signal.welch(x, fs, window="hann", nperseg=nperseg, noverlap=noverlap,
    detrend="constant", axis=axis)``: segments of ``nperseg`` samples every
    ``nperseg - noverlap`` samples (no padding: a tail shorter than a step is ignored), each with
    its mean removed (if ``detrend``), windowed, FFT'd, scaled by ``1 / (fs sum(w^2))``, doubled
    at all frequencies but 0 and Nyquist, and averaged (mean) over segments.

    Args:
        x: signal with time along ``axis``, e.g. ``(T, N)``.
        fs: sampling rate in Hz.
        nperseg: segment length in samples (2 <= nperseg <= T); frequency resolution fs/nperseg.
        noverlap: overlap in samples (0 <= noverlap < nperseg); ``nperseg // 2`` if None.
        axis: the time axis of ``x``.
        detrend: subtract each segment's mean (SciPy's default ``detrend="constant"``).

    Returns:
        ``(freqs, psd)``: ``freqs`` ``(F,)`` in Hz with ``F = nperseg // 2 + 1``, and ``psd`` of
        the shape of ``x`` with ``axis`` replaced by F, in units of x^2 / Hz; dtype of ``x``.

    Raises:
        ArgumentError / ShapeError: on an invalid ``nperseg``, ``noverlap`` or ``axis``.
    """
    x = jnp.asarray(x)
    x = x.astype(_float_dtype(x))
    if not -x.ndim <= axis < x.ndim:
        raise ArgumentError(f"welch_psd: axis {axis} out of range for x with shape {x.shape}")
    n_t = x.shape[axis]
    if not isinstance(nperseg, numbers.Integral) or not 2 <= nperseg <= n_t:
        raise ArgumentError(
            f"welch_psd: nperseg must be an int in [2, T] = [2, {n_t}] (T = x.shape[{axis}]), "
            f"got {nperseg!r}"
        )
    if noverlap is None:
        noverlap = nperseg // 2
    if not isinstance(noverlap, numbers.Integral) or not 0 <= noverlap < nperseg:
        raise ArgumentError(
            f"welch_psd: noverlap must be an int in [0, nperseg) = [0, {nperseg}), got {noverlap!r}"
        )
    return _welch(jnp.moveaxis(x, axis, -1), fs, nperseg, noverlap, detrend, axis)


@partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _welch(xt: Array, fs, nperseg: int, noverlap: int, detrend: bool, axis: int):
    """Welch core on ``xt`` with time last; the frequency axis goes back to ``axis``."""
    step = nperseg - noverlap
    starts = np.arange((xt.shape[-1] - nperseg) // step + 1) * step
    segs = xt[..., starts[:, None] + np.arange(nperseg)[None, :]]  # (..., S, nperseg)
    if detrend:
        segs = segs - jnp.mean(segs, axis=-1, keepdims=True)
    n = np.arange(nperseg)
    win = jnp.asarray(0.5 - 0.5 * np.cos(2.0 * np.pi * n / nperseg), dtype=xt.dtype)
    spec = jnp.fft.rfft(segs * win, axis=-1)
    power = (spec.real**2 + spec.imag**2) / (fs * jnp.sum(win * win))
    n_f = nperseg // 2 + 1
    # one-sided: fold the negative frequencies onto the positive ones (not DC, not Nyquist)
    fold = np.full(n_f, 2.0)
    fold[0] = 1.0
    if nperseg % 2 == 0:
        fold[-1] = 1.0
    psd = jnp.mean(power, axis=-2) * jnp.asarray(fold, dtype=xt.dtype)
    psd = jnp.moveaxis(psd, -1, axis)
    freqs = jnp.arange(n_f, dtype=xt.dtype) * (fs / nperseg)
    return freqs, psd.astype(xt.dtype)


def _concrete(a) -> np.ndarray | None:
    """``a`` as NumPy if it is concrete (not traced under jit/vmap), else None."""
    if isinstance(a, jax.core.Tracer):
        return None
    return np.asarray(a)


def _check_bands(freqs: Array, bands: dict[str, tuple[float, float]]) -> None:
    if not isinstance(bands, dict) or not bands:
        raise ArgumentError(f"bands must be a non-empty dict name -> (lo, hi) Hz, got {bands!r}")
    f = _concrete(freqs)
    for name, band in bands.items():
        if len(band) != 2 or not 0 <= band[0] < band[1]:
            raise ArgumentError(f"band {name!r} must be (lo, hi) Hz with 0 <= lo < hi, got {band}")
        if f is not None and (band[0] < f[0] or band[1] > f[-1]):
            raise ArgumentError(
                f"band {name!r} = {tuple(band)} Hz reaches outside the spectrum "
                f"[{f[0]:g}, {f[-1]:g}] Hz; pass bands within it (or sample faster)"
            )


@jax.jit
def _integrate(freqs: Array, psd: Array, lo: Array, hi: Array) -> Array:
    """Exact integrals over [lo_b, hi_b] of the piecewise-linear interpolant of psd (..., F).

    ``lo``, ``hi`` are ``(B,)``; the result is ``(..., B)``.
    """
    f0, f1 = freqs[:-1], freqs[1:]
    p0, p1 = psd[..., None, :-1], psd[..., None, 1:]
    a = jnp.clip(lo[:, None], f0, f1)  # (B, F - 1)
    b = jnp.clip(hi[:, None], f0, f1)
    slope = (p1 - p0) / (f1 - f0)
    pa = p0 + slope * (a - f0)
    pb = p0 + slope * (b - f0)
    return jnp.sum(0.5 * (b - a) * (pa + pb), axis=-1)


def band_powers(
    freqs: Array,
    psd: Array,
    bands: dict[str, tuple[float, float]] | None = None,
    axis: int = 0,
) -> dict[str, Array]:
    """Power in frequency bands: the integral of the PSD over each ``[lo, hi]`` Hz.

    The PSD is integrated as its piecewise-linear interpolant (the trapezoid rule, with band edges
    that need not fall on a frequency bin), so adjacent bands add up exactly: delta + theta equals
    the power over 1-8 Hz.

    Args:
        freqs: ``(F,)`` increasing frequencies in Hz (from :func:`welch_psd`).
        psd: PSD with frequency along ``axis``, e.g. ``(F, N)``.
        bands: ``name -> (lo, hi)`` in Hz; :data:`DEFAULT_BANDS` if None (delta 1-4, theta 4-8,
            alpha 8-13, beta 13-30, low_gamma 30-60).
        axis: the frequency axis of ``psd``.

    Returns:
        ``name -> power`` with ``power`` of the shape of ``psd`` without ``axis`` (units of psd
        times Hz).

    Raises:
        ArgumentError / ShapeError: if a band is malformed, or (when ``freqs`` is concrete, i.e.
            not traced) reaches outside ``[freqs[0], freqs[-1]]``; traced, the part outside adds
            nothing.
    """
    bands = DEFAULT_BANDS if bands is None else bands
    freqs = jnp.asarray(freqs)
    psd = jnp.asarray(psd)
    _check_bands(freqs, bands)
    if psd.shape[axis] != freqs.shape[0]:
        raise ShapeError(
            f"psd.shape[{axis}] = {psd.shape[axis]} must equal len(freqs) = {freqs.shape[0]}"
        )
    p = jnp.moveaxis(psd, axis, -1)
    fr = freqs.astype(p.dtype)
    lo = jnp.asarray([b[0] for b in bands.values()], dtype=p.dtype)
    hi = jnp.asarray([b[1] for b in bands.values()], dtype=p.dtype)
    powers = _integrate(fr, p, lo, hi)
    return {name: powers[..., i] for i, name in enumerate(bands)}


def relative_band_powers(
    freqs: Array,
    psd: Array,
    bands: dict[str, tuple[float, float]] | None = None,
    axis: int = 0,
    total: tuple[float, float] | None = None,
) -> dict[str, Array]:
    """Band powers divided by the power over ``total`` Hz.

    Args:
        freqs, psd, bands, axis: as for :func:`band_powers`.
        total: ``(lo, hi)`` Hz of the reference power; by default from the lowest band edge to
            the highest (1-60 Hz for the default bands), so contiguous bands sum to 1.

    Returns:
        ``name -> fraction`` of the shape of ``psd`` without ``axis``.

    Raises:
        ArgumentError / ShapeError: as for :func:`band_powers`.
    """
    bands = DEFAULT_BANDS if bands is None else bands
    _check_bands(jnp.asarray(freqs), bands)
    if total is None:
        total = (min(b[0] for b in bands.values()), max(b[1] for b in bands.values()))
    powers = band_powers(freqs, psd, {**bands, "__total__": total}, axis)
    ref = powers.pop("__total__")
    return {name: pw / ref for name, pw in powers.items()}


def alpha_peak_frequency(
    freqs: Array, psd: Array, band: tuple[float, float] = (7.0, 14.0), axis: int = 0
) -> Array:
    """Frequency of the largest PSD value within ``band``, refined by parabolic interpolation.

    A parabola is fitted through the log-PSD at the maximal bin and its two neighbours, and its
    vertex taken (the vertex offset is clipped to half a bin). On the log scale a Gaussian-shaped
    peak (e.g. the Hann window's main lobe) is fitted exactly, so the bias is a small fraction of
    a bin. The PSD must be positive near the peak.

    Args:
        freqs: ``(F,)`` equally spaced frequencies in Hz (from :func:`welch_psd`).
        psd: PSD with frequency along ``axis``, e.g. ``(F, N)``.
        band: ``(lo, hi)`` Hz searched for the maximum (bounds included).
        axis: the frequency axis of ``psd``.

    Returns:
        Peak frequency in Hz, of the shape of ``psd`` without ``axis``.

    Raises:
        ArgumentError / ShapeError: if the band is malformed or holds no frequency bin,
            ``freqs`` has fewer than 3 entries or (when concrete) is not equally spaced, or
            ``psd`` does not match it.
    """
    freqs = jnp.asarray(freqs)
    psd = jnp.asarray(psd)
    if freqs.ndim != 1 or freqs.shape[0] < 3:
        raise ShapeError(f"alpha_peak_frequency: freqs must be (F,) with F >= 3, got {freqs.shape}")
    if psd.shape[axis] != freqs.shape[0]:
        raise ShapeError(
            f"psd.shape[{axis}] = {psd.shape[axis]} must equal len(freqs) = {freqs.shape[0]}"
        )
    if len(band) != 2 or not band[0] < band[1]:
        raise ArgumentError(f"alpha_peak_frequency: band must be (lo, hi) with lo < hi, got {band}")
    f = _concrete(freqs)
    if f is not None:
        df = np.diff(f)
        if not np.allclose(df, df[0], rtol=1e-6, atol=0):
            raise ArgumentError("alpha_peak_frequency: freqs must be equally spaced")
        if not np.any((f >= band[0]) & (f <= band[1])):
            raise ArgumentError(f"alpha_peak_frequency: no frequency bin inside band {band} Hz")
    return _peak(freqs, jnp.moveaxis(psd, axis, -1), band[0], band[1])


@jax.jit
def _peak(freqs: Array, p: Array, lo, hi) -> Array:
    fr = freqs.astype(p.dtype)
    in_band = (fr >= lo) & (fr <= hi)
    k = jnp.argmax(jnp.where(in_band, p, -jnp.inf), axis=-1)
    k = jnp.clip(k, 1, fr.shape[0] - 2)
    logp = jnp.log(p)
    a = jnp.take_along_axis(logp, (k - 1)[..., None], axis=-1)[..., 0]
    b = jnp.take_along_axis(logp, k[..., None], axis=-1)[..., 0]
    c = jnp.take_along_axis(logp, (k + 1)[..., None], axis=-1)[..., 0]
    curvature = a - 2.0 * b + c
    safe = jnp.where(curvature < 0, curvature, -1.0)
    offset = jnp.where(curvature < 0, 0.5 * (a - c) / safe, 0.0)
    offset = jnp.clip(offset, -0.5, 0.5)
    return fr[k] + offset * (fr[1] - fr[0])
