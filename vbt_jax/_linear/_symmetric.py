"""Closed forms for symmetric weights and a common omega: the covariance and FC of ``x``.

With ``J = [[B, -w I], [w I, B]]`` and ``B`` symmetric, ``z = x + i y`` obeys
``dz = (B + i w) z dt + noise``: a complex-linear system. With the same noise on ``x`` and ``y``
the complex noise is circular, so the covariance is ``blockdiag(X, X)`` with
``B X + X B = -2 diag(nsig)`` (``w`` drops out), and in ``B``'s eigenbasis
(``B = U diag(lam) U^T``) each mode is a damped rotation whose x-spectrum is the Lorentzian
pair centred on ``+-w`` with half-width ``c = -lam`` (:mod:`._spectra`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from ._hopf import _per_region
from ._lapack import neg_inverse

#: W counts as symmetric when max |W - W^T| <= _SYM_RTOL * max |W| (room for float32 round-off).
_SYM_RTOL = 1e-6


def _float_dtype(*xs):
    # lists and tuples (e.g. nsig=[1e-3, 2e-3]) have no dtype of their own
    xs = [np.asarray(x) if isinstance(x, (list, tuple)) else x for x in xs]
    dtype = jnp.result_type(*xs)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _concrete(x) -> np.ndarray | None:
    """``x`` as NumPy when it is concrete (not traced by jit/vmap/grad), else None."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def _asymmetry(W: Array) -> tuple[float, float] | None:
    """``(max |W - W^T|, tolerance)`` for a concrete ``W``; None when ``W`` is traced."""
    Wn = _concrete(W)
    if Wn is None:
        return None
    Wn = Wn.astype(np.float64)
    return float(np.max(np.abs(Wn - Wn.T), initial=0.0)), _SYM_RTOL * float(
        np.max(np.abs(Wn), initial=0.0)
    )


def _square_weights(W, fname: str) -> Array:
    W = jnp.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ShapeError(f"{fname}: W must be (N, N), got shape {W.shape}")
    return W


def _symmetric_block(a, W, G, fname: str, *others) -> tuple[Array, object]:
    """Validated ``B = diag(a) + G (W_s - diag(rowsum W_s))`` with ``W_s = (W + W^T) / 2``."""
    W = _square_weights(W, fname)
    G = jnp.asarray(G)
    if G.ndim != 0:
        raise ShapeError(f"{fname}: G must be a scalar, got shape {G.shape}")
    n = W.shape[0]
    dtype = _float_dtype(W, a, G, *others)
    a = _per_region(a, n, "a", dtype, fname)
    W = W.astype(dtype)
    W = 0.5 * (W + W.T)
    B = jnp.diag(a) + G.astype(dtype) * (W - jnp.diag(W.sum(axis=1)))
    return B, dtype


def _require_symmetric(W: Array, fname: str) -> None:
    asym = _asymmetry(W)
    if asym is not None and asym[0] > asym[1]:
        raise ArgumentError(
            f"{fname}: W must be symmetric, got max |W - W.T| = {asym[0]:.3g} "
            f"(tolerance {asym[1]:.3g} = {_SYM_RTOL:g} * max |W|); use the general "
            "hopf_fc / stationary_covariance for directed weights"
        )


def _region_noise(nsig, n: int, fname: str, dtype) -> Array:
    nsig = jnp.asarray(nsig, dtype)
    if nsig.ndim != 0 and nsig.shape != (n,):
        raise ShapeError(
            f"{fname}: nsig must be a scalar or ({n},) (the same noise on x and y of each "
            f"region), got shape {nsig.shape}"
        )
    return nsig


def _sym_solve_apply(U: Array, lam: Array, C: Array) -> Array:
    """Solution of ``B X + X B + C = 0`` from ``B = U diag(lam) U^T`` (linear in ``C``)."""
    Ct = U.T @ C @ U
    return U @ (Ct / -(lam[:, None] + lam[None, :])) @ U.T


@jax.custom_jvp
def _sym_lyapunov(B: Array, C: Array) -> Array:
    """``X`` with ``B X + X B + C = 0`` for a symmetric negative definite ``B`` (NaN if not).

    The derivative solves the same equation with right-hand side ``dC + dB X + X dB^T``, so the
    JVP reuses the primal eigendecomposition and, unlike differentiating ``eigh``, stays finite
    when ``B`` has repeated eigenvalues (only ``lam_k + lam_l < 0`` is divided by).
    """
    lam, U = jnp.linalg.eigh(B)
    X = _sym_solve_apply(U, lam, C)
    return jnp.where(lam[-1] < 0, X, jnp.nan)


@_sym_lyapunov.defjvp
def _sym_lyapunov_jvp(primals, tangents):
    B, C = primals
    dB, dC = tangents
    lam, U = jnp.linalg.eigh(B)
    X = _sym_solve_apply(U, lam, C)
    dX = _sym_solve_apply(U, lam, dC + dB @ X + X @ dB.T)
    stable = lam[-1] < 0
    return jnp.where(stable, X, jnp.nan), jnp.where(stable, dX, jnp.nan)


def _sym_covariance(B: Array, nsig: Array) -> Array:
    if nsig.ndim == 0:
        # X = -nsig B^-1; -B is positive definite below the bifurcation (NaN otherwise)
        X = nsig * neg_inverse(B)
    else:
        X = _sym_lyapunov(B, jnp.diag(2.0 * nsig))
    return 0.5 * (X + X.T)


def hopf_covariance_symmetric(
    a: float | Array, W: Array, G: float | Array, nsig: float | Array
) -> Array:
    r"""Stationary covariance of ``x`` for the linearised Stuart-Landau network, symmetric ``W``.

    The network is that of :func:`hopf_jacobian` (Difference coupling, no delays) with a
    symmetric ``W``, one ``omega`` for all regions and the same noise on ``x`` and ``y`` of each
    region. Then the full covariance is ``blockdiag(X, X)`` with

    .. math:: B X + X B = -2\,\mathrm{diag}(\mathrm{nsig}), \qquad
              B = \mathrm{diag}(a) + G\,(W - \mathrm{diag}(\textstyle\sum_j W_{ij})),

    independent of ``omega`` (so it is not an argument). For a scalar ``nsig``,
    ``X = -nsig B^-1`` by one Cholesky factorisation of ``-B``, differentiated as
    ``dX = X dB X`` (matrix products only; on CPU, put many matrices into one ``vmap``-ed call
    rather than several in one program, see ``vbt_jax/_linear/_lapack.py``); per region,
    ``X = U [(U^T Q U)_kl / -(lam_k + lam_l)] U^T`` from ``B = U diag(lam) U^T``
    (``Q = 2 diag(nsig)``), differentiated through the Lyapunov equation rather than ``eigh``
    so gradients stay finite at repeated eigenvalues. ``O(N^3)`` on an ``N x N`` matrix, versus
    the ``2N x 2N`` iterative solve of :func:`stationary_covariance`.

    Valid below the bifurcation (``B`` negative definite, e.g. all ``a < 0`` and ``G >= 0``
    with non-negative ``W``); otherwise the result is NaN.

    ``W`` is checked for symmetry only when it is concrete (not traced by ``jit``/``vmap``/
    ``grad``; close over the connectome to keep it concrete). A traced ``W`` is not checked and
    its symmetric part ``(W + W^T) / 2`` is used.

    Args:
        a: bifurcation parameter [1/ms], scalar or (N,).
        W: (N, N) symmetric weights.
        G: global coupling of the Difference coupling (scalar).
        nsig: noise as in :class:`~vbt_jax.Additive` [state^2 / ms], the same on ``x`` and
            ``y``: scalar or (N,) per region.

    Returns:
        (N, N) covariance of ``x`` (equal to that of ``y``) [state^2].

    Raises:
        ArgumentError: if ``W`` is not square, or (concrete) not symmetric within
            ``1e-6 * max |W|`` (the message gives the largest asymmetry); if ``a`` or ``nsig``
            is neither scalar nor (N,), or ``G`` is not a scalar.
    """
    fname = "hopf_covariance_symmetric"
    B, dtype = _symmetric_block(a, W, G, fname, nsig)
    _require_symmetric(W, fname)
    return _sym_covariance(B, _region_noise(nsig, B.shape[0], fname, dtype))


def hopf_fc_symmetric(
    a: float | Array, W: Array, G: float | Array, nsig: float | Array = 1.0
) -> Array:
    """Analytic FC of ``x`` for the linearised Stuart-Landau network with symmetric ``W``.

    The correlation matrix of :func:`hopf_covariance_symmetric`: equal to :func:`hopf_fc` for a
    symmetric ``W``, a common ``omega`` (on which it does not depend) and the same noise on
    ``x`` and ``y``. With a scalar ``nsig`` the FC does not depend on it either
    (``corr(-B^-1)``), hence the default.

    Args:
        a: bifurcation parameter [1/ms], scalar or (N,).
        W: (N, N) symmetric weights (checked when concrete, see
            :func:`hopf_covariance_symmetric`).
        G: global coupling (scalar).
        nsig: scalar or (N,) noise per region [state^2 / ms].

    Returns:
        (N, N) Pearson correlation matrix (NaN above the bifurcation).

    Raises:
        ArgumentError: as :func:`hopf_covariance_symmetric`.
    """
    fname = "hopf_fc_symmetric"
    B, dtype = _symmetric_block(a, W, G, fname, nsig)
    _require_symmetric(W, fname)
    X = _sym_covariance(B, _region_noise(nsig, B.shape[0], fname, dtype))
    sd = jnp.sqrt(jnp.diag(X))
    return X / (sd[:, None] * sd[None, :])
