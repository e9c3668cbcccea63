"""Power spectra and band powers of the linearised Stuart-Landau network."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from ._hopf import _per_region, _state_noise, hopf_jacobian
from ._symmetric import _asymmetry, _concrete, _float_dtype, _square_weights, _symmetric_block

_MS_PER_S = 1000.0


def _to_rad_per_ms(f_hz: Array) -> Array:
    return (2.0 * math.pi / _MS_PER_S) * f_hz


def _fast_path(omega, W, nsig, symmetric: bool | None, fname: str) -> bool:
    """Whether the closed forms apply (see :func:`hopf_spectrum`'s ``symmetric``)."""
    if symmetric is False:
        return False
    problems = []
    if jnp.ndim(omega) != 0:
        problems.append(f"omega must be a scalar (got shape {jnp.shape(omega)})")
    asym = _asymmetry(W)
    if asym is not None and asym[0] > asym[1]:
        problems.append(f"W must be symmetric (max |W - W.T| = {asym[0]:.3g} > {asym[1]:.3g})")
    ns = _concrete(nsig)
    noise_equal = jnp.ndim(nsig) == 0 or (ns is not None and np.array_equal(ns[0], ns[1]))
    if ns is not None and not noise_equal:
        problems.append("nsig must be the same for x and y")
    if symmetric is None:
        return not problems and asym is not None and noise_equal
    if problems:
        raise ArgumentError(f"{fname}: symmetric=True but " + "; ".join(problems))
    return True


def _spectral_setup(a, omega, W, G, nsig, symmetric, fname, *others):
    """Validated inputs and the path: ``(fast, dtype, n, payload)``."""
    W = _square_weights(W, fname)
    n = W.shape[0]
    dtype = _float_dtype(W, a, omega, G, nsig, *others)
    omega_arr = jnp.asarray(omega, dtype)
    if omega_arr.ndim != 0:
        _per_region(omega_arr, n, "omega", dtype, fname)
    nsig = jnp.asarray(nsig, dtype)
    noise = _state_noise(nsig, n, fname, dtype)
    fast = _fast_path(omega_arr, W, nsig, symmetric, fname)
    if fast:
        B, _ = _symmetric_block(a, W, G, fname, dtype)
        region_nsig = nsig if nsig.ndim == 0 else (nsig[0] if nsig.ndim == 1 else noise[0])
        return True, dtype, n, (B, omega_arr, region_nsig)
    G = jnp.asarray(G)
    if G.ndim != 0:
        raise ShapeError(f"{fname}: G must be a scalar, got shape {G.shape}")
    a = _per_region(a, n, "a", dtype, fname)
    J = hopf_jacobian(a, omega_arr, W.astype(dtype), G.astype(dtype))
    return False, dtype, n, (J, noise.reshape(-1))


def _diag_sandwich(U: Array, T: Array) -> Array:
    """``diag(U T_f U^T)`` for each ``f``: (..., N, N) -> (..., N), in O(N^3) per matrix."""
    # an einsum over the three operands can materialise (..., N, N, N); two products do not
    return jnp.sum((T @ U.T) * U.T, axis=-2)


def _fast_spectrum(B: Array, omega: Array, nsig: Array, w: Array) -> Array:
    """One-sided PSD [state^2 / Hz] of ``x`` at angular frequencies ``w`` (F,) [rad/ms]."""
    lam, U = jnp.linalg.eigh(B)
    c = -lam
    vm = w[:, None] - omega
    vp = w[:, None] + omega
    if nsig.ndim == 0:
        # each mode: (2 nsig / 1000) [1 / (c^2 + (w - omega)^2) + 1 / (c^2 + (w + omega)^2)]
        s = 1.0 / (c**2 + vm**2) + 1.0 / (c**2 + vp**2)  # (F, N modes)
        S = (2.0 * nsig / _MS_PER_S) * (s @ (U * U).T)
    else:
        # modes are correlated by the noise (Qm = U^T 2 diag(nsig) U); the x cross-spectrum of
        # modes k, l is Qm_kl Re[(c_k c_l + v^2) / ((c_k^2 + v^2)(c_l^2 + v^2))], v = w -+ omega
        Qm = U.T @ (2.0 * nsig[:, None] * U)
        ck, cl = c[:, None], c[None, :]

        def cross(v):
            v2 = v[:, :, None] ** 2
            return (ck * cl + v2) / ((ck**2 + v2) * (cl**2 + v2))

        T = Qm * (cross(vm) + cross(vp))  # (F, N, N)
        S = _diag_sandwich(U, T) / _MS_PER_S
    return jnp.where(lam[-1] < 0, S, jnp.nan)


def _general_spectrum(J: Array, q: Array, w: Array) -> Array:
    """One-sided PSD [state^2 / Hz] of ``x`` from ``[(iwI - J)^-1 Q (iwI - J)^-H]_xx``.

    ``q`` is ``nsig`` per state component (2N,); ``Q = diag(2 q)``.
    """
    n2 = J.shape[0]
    n = n2 // 2
    cdtype = jnp.promote_types(J.dtype, jnp.complex64)
    Jc = J.astype(cdtype)
    eye = jnp.eye(n2, dtype=cdtype)
    rhs = eye[:, :n]

    def one(wk):
        # rows of (iwI - J)^-1 for x are the first n columns of (iwI - J)^-T
        Z = jnp.linalg.solve((1j * wk) * eye - Jc.T, rhs)  # Z[j, i] = R[i, j]
        return (2.0 * q) @ (Z.real**2 + Z.imag**2)

    # two-sided density per (d omega / 2 pi) -> one-sided per Hz: x 2 / 1000
    return jax.vmap(one)(w.astype(J.dtype)) * (2.0 / _MS_PER_S)


def hopf_spectrum(
    a: float | Array,
    omega: float | Array,
    W: Array,
    G: float | Array,
    nsig: float | Array,
    freqs_hz: Array,
    *,
    symmetric: bool | None = None,
) -> Array:
    r"""One-sided power spectral density of ``x`` per region, linearised Stuart-Landau network.

    The network of :func:`hopf_jacobian` (Difference coupling, no delays) with additive noise
    ``nsig`` (:class:`~vbt_jax.Additive`'s convention, ``Q = diag(2 nsig)``). Same convention
    and units as :func:`vbt_jax.features.welch_psd` of the simulated ``x``: frequencies in Hz
    (the model's time is in ms), density in state^2 / Hz, one-sided, so that
    ``integral_0^inf S_i(f) df = Var(x_i)`` (the diagonal of :func:`stationary_covariance`).

    General path (any ``W``, per-region ``omega``, different noise on ``x`` and ``y``):
    ``S(f) = (2 / 1000) [(i w I - J)^-1 Q (i w I - J)^-H]_xx`` with ``w = 2 pi f / 1000``
    rad/ms; one complex ``2N x 2N`` solve per frequency (vmapped).

    Fast path (symmetric ``W``, scalar ``omega``, same noise on ``x`` and ``y``): with
    ``B = U diag(lam) U^T`` (see :func:`hopf_covariance_symmetric`), ``c_k = -lam_k`` and a scalar
    ``nsig``, each mode is a damped rotation with the Lorentzian pair

    .. math:: S_i(f) = \sum_k U_{ik}^2\, \frac{2\,\mathrm{nsig}}{1000}
              \Big[\frac{1}{c_k^2 + (w - \omega)^2} + \frac{1}{c_k^2 + (w + \omega)^2}\Big];

    with per-region noise the modes are correlated through ``Qm = U^T diag(2 nsig) U`` and
    ``S_i = (1/1000) sum_kl U_ik U_il Qm_kl [K_kl(w - omega) + K_kl(w + omega)]``,
    ``K_kl(v) = (c_k c_l + v^2) / ((c_k^2 + v^2)(c_l^2 + v^2))``. One ``eigh`` of ``B``; its
    gradient (through ``eigh``) is not finite where ``B`` has exactly repeated eigenvalues
    (e.g. ``G = 0`` with a common ``a``).

    Args:
        a: bifurcation parameter [1/ms], scalar or (N,).
        omega: angular frequency [rad/ms], scalar or (N,).
        W: (N, N) weights, ``W[i, j]`` from ``j`` to ``i``.
        G: global coupling (scalar).
        nsig: noise [state^2 / ms]: scalar, (2,) per state variable or (2, N).
        freqs_hz: (F,) frequencies [Hz].
        symmetric: ``None`` (default) takes the fast path when ``omega`` is a scalar, ``nsig``
            is a scalar or concrete with equal ``x`` and ``y`` rows, and ``W`` is concrete and
            symmetric; a traced ``W`` or a traced (2, ...) ``nsig`` takes the (much slower)
            general path, so inside a sampler pass ``symmetric=True``. ``True`` forces the fast path
            (raising if a concrete input rules it out; a traced ``W`` is then not checked and its
            symmetric part is used, a traced (2, ...) ``nsig`` contributes its ``x`` row).
            ``False`` forces the general path.

    Returns:
        (F, N) PSD [state^2 / Hz] (NaN above the bifurcation on the fast path).

    Raises:
        ArgumentError: on inconsistent shapes, or ``symmetric=True`` with an asymmetric concrete
            ``W``, a per-region ``omega`` or unequal ``x``/``y`` noise.
    """
    fname = "hopf_spectrum"
    freqs = jnp.asarray(freqs_hz)
    if freqs.ndim != 1:
        raise ShapeError(f"{fname}: freqs_hz must be (F,), got shape {freqs.shape}")
    fast, dtype, _, payload = _spectral_setup(a, omega, W, G, nsig, symmetric, fname, freqs)
    w = _to_rad_per_ms(freqs.astype(dtype))
    if fast:
        return _fast_spectrum(*payload, w)
    return _general_spectrum(*payload, w)


def _parse_bands(bands_hz, fname: str) -> np.ndarray:
    if isinstance(bands_hz, Mapping):
        bands_hz = list(bands_hz.values())
    if isinstance(bands_hz, jax.core.Tracer):
        raise ArgumentError(f"{fname}: bands_hz must be concrete (not traced)")
    try:
        bands = np.asarray(bands_hz, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ShapeError(f"{fname}: bands_hz must be (B, 2) (lo, hi) pairs in Hz") from err
    if bands.ndim != 2 or bands.shape[1] != 2 or bands.shape[0] == 0:
        raise ShapeError(
            f"{fname}: bands_hz must be a dict name -> (lo, hi) or (B, 2) pairs in Hz, "
            f"got shape {bands.shape}"
        )
    ok = np.isfinite(bands).all(axis=1) & (bands[:, 0] >= 0) & (bands[:, 0] < bands[:, 1])
    if not ok.all():
        raise ArgumentError(
            f"{fname}: bands_hz must satisfy 0 <= lo < hi < inf, got {bands[~ok].tolist()}"
        )
    return bands


def _fast_band_power(B: Array, omega: Array, nsig: Array, w_lo: Array, w_hi: Array) -> Array:
    """Exact integral of :func:`_fast_spectrum` over each band [w_lo, w_hi] (B,) rad/ms."""
    lam, U = jnp.linalg.eigh(B)
    c = -lam

    def datan(shift):  # (bands, modes): atan((w_hi + shift) / c) - atan((w_lo + shift) / c)
        return jnp.arctan((w_hi[:, None] + shift) / c) - jnp.arctan((w_lo[:, None] + shift) / c)

    d = datan(-omega) + datan(omega)
    if nsig.ndim == 0:
        # int 1 / (c^2 + v^2) dv = atan(v / c) / c; df [Hz] = 1000 dw / (2 pi)
        P = (nsig / math.pi) * ((d / c) @ (U * U).T)
    else:
        # int K_kl dv = (atan(v / c_k) + atan(v / c_l)) / (c_k + c_l)
        Qm = U.T @ (2.0 * nsig[:, None] * U)
        T = Qm * (d[:, :, None] + d[:, None, :]) / (c[:, None] + c[None, :])
        P = _diag_sandwich(U, T) / (2.0 * math.pi)
    return jnp.where(lam[-1] < 0, P, jnp.nan)


def hopf_band_power(
    a: float | Array,
    omega: float | Array,
    W: Array,
    G: float | Array,
    nsig: float | Array,
    bands_hz: Mapping[str, tuple[float, float]] | Sequence[tuple[float, float]] | np.ndarray,
    *,
    relative: bool = True,
    n_points: int = 129,
    symmetric: bool | None = None,
) -> Array:
    """Power of ``x`` per region in frequency bands: the integral of :func:`hopf_spectrum`.

    Fast path (see :func:`hopf_spectrum`): the integral in closed form (differences of
    ``arctan``), exact and independent of ``n_points``. General path: the trapezoid rule on
    ``n_points`` equally spaced frequencies per band (``B * n_points`` complex ``2N x 2N``
    solves); its relative error is about ``(h / gamma)^2 / 12`` for a spectral peak of half-width
    ``gamma`` Hz sampled every ``h`` Hz.

    Args:
        a, omega, W, G, nsig: as :func:`hopf_spectrum`.
        bands_hz: a dict ``name -> (lo, hi)`` (its order is kept, e.g.
            :data:`vbt_jax.features.DEFAULT_BANDS`) or (B, 2) pairs, in Hz; concrete, with
            ``0 <= lo < hi`` finite.
        relative: divide each band's power by the power summed over all the given bands.
        n_points: frequencies per band for the general path's trapezoid rule (static, >= 2).
        symmetric: path selection as :func:`hopf_spectrum`.

    Returns:
        (B, N) band powers [state^2] (or fractions if ``relative``).

    Raises:
        ArgumentError: on a malformed band or ``n_points``, and as :func:`hopf_spectrum`.
    """
    fname = "hopf_band_power"
    bands = _parse_bands(bands_hz, fname)
    if not isinstance(n_points, int) or isinstance(n_points, bool) or n_points < 2:
        raise ArgumentError(f"{fname}: n_points must be an int >= 2, got {n_points!r}")
    fast, dtype, n, payload = _spectral_setup(a, omega, W, G, nsig, symmetric, fname)
    if fast:
        w = _to_rad_per_ms(jnp.asarray(bands, dtype))
        P = _fast_band_power(*payload, w[:, 0], w[:, 1])
    else:
        grid = bands[:, :1] + (bands[:, 1:] - bands[:, :1]) * np.linspace(0.0, 1.0, n_points)
        f = jnp.asarray(grid.reshape(-1), dtype)
        S = _general_spectrum(*payload, _to_rad_per_ms(f)).reshape(len(bands), n_points, n)
        h = jnp.asarray((bands[:, 1] - bands[:, 0]) / (n_points - 1), dtype)[:, None]
        P = h * (S.sum(axis=1) - 0.5 * (S[:, 0] + S[:, -1]))
    if relative:
        P = P / P.sum(axis=0, keepdims=True)
    return P
