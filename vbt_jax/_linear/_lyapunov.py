"""The continuous Lyapunov equation and the stationary statistics of any stable linear SDE."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from .._errors import ArgumentError, ShapeError

_DEFAULT_ITERATIONS = 50


def _smith(A: Array, Q: Array, iterations: int) -> tuple[Array, Array]:
    """Squared Smith iteration on the Cayley transform of ``A``.

    With a shift ``p > 0``, ``R = (pI - A)^-1`` and ``M = R (pI + A)``, the continuous equation
    ``A X + X A^T + Q = 0`` is equivalent to the discrete (Stein) equation
    ``X = M X M^T + 2p R Q R^T``, whose solution is ``sum_j M^j Q_d M^jT``. Squaring doubles
    the number of summed terms per iteration. Returns ``(X_K, M^(2^K))``.
    """
    n = A.shape[-1]
    eye = jnp.eye(n, dtype=A.dtype)
    # shift = geometric mean of |eigenvalues| (|det A|^(1/n)): balances the contraction of the
    # smallest and largest eigenvalues. X does not depend on p, so no gradient flows through it.
    _, logdet = jnp.linalg.slogdet(A)
    p = jax.lax.stop_gradient(jnp.exp(logdet / n))
    R = jnp.linalg.solve(p * eye - A, eye)
    M = R @ (p * eye + A)
    X = 2.0 * p * (R @ Q @ R.T)

    def body(_, carry):
        Xk, Mk = carry
        return Xk + Mk @ Xk @ Mk.T, Mk @ Mk

    return jax.lax.fori_loop(0, iterations, body, (X, M))


def solve_lyapunov(A: Array, Q: Array, *, iterations: int = _DEFAULT_ITERATIONS) -> Array:
    r"""Solve the continuous Lyapunov equation :math:`A X + X A^T + Q = 0` for a stable ``A``.

    Uses the squared Smith iteration on the Cayley transform ``M = (pI - A)^-1 (pI + A)``
    (Smith 1968; Penzl 1999), with the shift ``p`` the geometric mean of ``A``'s eigenvalue
    moduli (from its determinant). One linear solve, then a fixed number of iterations of three
    matrix products each under ``lax.fori_loop``: differentiable in ``A`` and ``Q`` (forward
    and reverse mode), no eigendecomposition (JAX's ``jnp.linalg.eig`` is CPU-only and not
    differentiable), and no factorisation inside the loop.

    Convergence: after ``k`` iterations the error is ``sum_{j >= 2^k} M^j Q_d M^jT``, so it
    shrinks like ``rho^(2^k)`` with ``rho = max |(p + l) / (p - l)| < 1`` over the eigenvalues
    ``l`` of a stable ``A`` (quadratic convergence once ``rho^(2^k)`` is small). About
    ``log2(40 / (1 - rho))`` iterations reach float64 round-off. ``1 - rho`` is roughly
    ``2 min(|l| / p, p / |l|) |Re l| / |l|``: small for eigenvalues far from the geometric mean
    or close to the imaginary axis. The default 50 iterations cover ``1 - rho`` down to ~1e-13,
    e.g. a damping ratio of 1e-3 on eigenvalues six decades apart converges in ~30. Once
    converged, further iterations add nothing (``M^(2^k)`` underflows to zero). The equation
    itself is ill-conditioned when ``A`` has eigenvalues near the imaginary axis (the
    covariance then diverges): that, not the iteration, limits accuracy.

    If ``A`` is not stable the iteration diverges (``inf``/``nan``) or returns a matrix that is
    not the Lyapunov solution; check with :func:`is_stable`.

    Args:
        A: (..., n, n) stable matrix (all eigenvalues with negative real part).
        Q: (..., n, n) right-hand side (symmetric for a covariance).
        iterations: number of squared Smith iterations (static).

    Returns:
        (..., n, n) solution ``X``.

    Raises:
        ArgumentError: if ``A`` or ``Q`` is not square or their shapes differ.
    """
    A = jnp.asarray(A)
    Q = jnp.asarray(Q)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"solve_lyapunov: A must be (..., n, n), got shape {A.shape}")
    if Q.shape[-2:] != A.shape[-2:]:
        raise ShapeError(
            f"solve_lyapunov: Q must have the shape of A {A.shape[-2:]}, got {Q.shape}"
        )
    dtype = jnp.result_type(A, Q)
    A = A.astype(dtype)
    Q = Q.astype(dtype)
    if A.ndim > 2 or Q.ndim > 2:
        batch = jnp.broadcast_shapes(A.shape[:-2], Q.shape[:-2])
        n = A.shape[-1]
        A = jnp.broadcast_to(A, batch + (n, n)).reshape((-1, n, n))
        Q = jnp.broadcast_to(Q, batch + (n, n)).reshape((-1, n, n))
        X = jax.vmap(lambda a, q: solve_lyapunov(a, q, iterations=iterations))(A, Q)
        return X.reshape(batch + (n, n))
    X, _ = _smith(A, Q, iterations)
    return X


def is_stable(A: Array, *, iterations: int = _DEFAULT_ITERATIONS, tol: float = 1e-6) -> Array:
    """Whether every eigenvalue of ``A`` has a negative real part (traceable, no ``eig``).

    ``A`` is stable exactly when its Cayley transform ``M`` has spectral radius below one, i.e.
    when ``M^(2^K)`` from :func:`solve_lyapunov`'s iteration has decayed to zero. Use it to mask a
    likelihood (e.g. ``jnp.where(is_stable(A), loglik, -jnp.inf)``) when parameters can cross
    a bifurcation.

    Args:
        A: (n, n) matrix.
        iterations: number of squarings (static).
        tol: largest accepted entry of ``|M^(2^K)|``. For a stable ``A`` it is ~0 once
            converged; an eigenvalue in the right half-plane makes it grow without bound.
            An eigenvalue too close to the imaginary axis to converge in ``iterations`` is
            reported unstable (conservative).

    Returns:
        Boolean scalar array.
    """
    A = jnp.asarray(A)
    _, MK = _smith(A, jnp.zeros_like(A), iterations)
    err = jnp.max(jnp.abs(MK))
    return jnp.isfinite(err) & (err < tol)


def stationary_covariance(
    A: Array, noise_diag: Array, *, iterations: int = _DEFAULT_ITERATIONS
) -> Array:
    """Stationary covariance of ``dX = A X dt + sqrt(2 nsig) dW`` (TVB's noise convention).

    This is the convention of :class:`~vbt_jax.Additive`: each step adds
    ``sqrt(2 nsig dt) z``, so the diffusion matrix is ``Q = diag(2 nsig)`` and the covariance
    solves ``A P + P A^T + Q = 0``.

    Args:
        A: (n, n) stable drift matrix (e.g. :func:`hopf_jacobian`) [1/ms].
        noise_diag: ``nsig`` per state component, (n,) or scalar [state unit^2 / ms].
        iterations: iterations of :func:`solve_lyapunov` (static).

    Returns:
        (n, n) covariance [state unit^2].

    Raises:
        ArgumentError: if ``noise_diag`` is neither scalar nor (n,).
    """
    A = jnp.asarray(A)
    n = A.shape[-1]
    nsig = jnp.asarray(noise_diag)
    if nsig.ndim > 1 or (nsig.ndim == 1 and nsig.shape[0] != n):
        raise ShapeError(
            f"stationary_covariance: noise_diag must be scalar or ({n},), got {nsig.shape}"
        )
    dtype = jnp.result_type(A, nsig)
    Q = jnp.diag(jnp.broadcast_to(2.0 * nsig, (n,)).astype(dtype))
    P = solve_lyapunov(A.astype(dtype), Q, iterations=iterations)
    return 0.5 * (P + P.T)


def linear_fc(cov: Array, n_regions: int, var_index: int = 0) -> Array:
    """Correlation matrix (FC) of one state variable across regions from a full covariance.

    Args:
        cov: (S * N, S * N) covariance with state ordering ``(var_0 regions, var_1 regions, ...)``.
        n_regions: N.
        var_index: which state variable's (N, N) block to use.

    Returns:
        (N, N) Pearson correlation matrix.

    Raises:
        ArgumentError: if ``cov`` is not square with a multiple of ``n_regions`` rows, or
            ``var_index`` is out of range.
    """
    cov = jnp.asarray(cov)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] % n_regions:
        raise ShapeError(
            f"linear_fc: cov must be (S*N, S*N) with N = {n_regions}, got shape {cov.shape}"
        )
    n_vars = cov.shape[0] // n_regions
    if not 0 <= var_index < n_vars:
        raise ArgumentError(f"linear_fc: var_index must be in [0, {n_vars}), got {var_index}")
    s = slice(var_index * n_regions, (var_index + 1) * n_regions)
    block = cov[s, s]
    sd = jnp.sqrt(jnp.diag(block))
    return block / (sd[:, None] * sd[None, :])
