"""The continuous Lyapunov equation and the stationary statistics of any stable linear SDE."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from .._errors import ArgumentError, ShapeError

_DEFAULT_ITERATIONS = 50


def _cayley(A: Array, p: Array) -> tuple[Array, Array]:
    """``R = (pI - A)^-1`` and ``M = R (pI + A)``."""
    eye = jnp.eye(A.shape[-1], dtype=A.dtype)
    R = jnp.linalg.solve(p * eye - A, eye)
    return R, R @ (p * eye + A)


def _shift(A: Array) -> Array:
    """The geometric mean of ``|eigenvalues of A|`` (``|det A|^(1/n)``): balances the
    contraction of the smallest and largest eigenvalues. The solution does not depend on it,
    so no gradient flows through it."""
    _, logdet = jnp.linalg.slogdet(A)
    return jax.lax.stop_gradient(jnp.exp(logdet / A.shape[-1]))


def squared_smith(X0: Array, L: Array, R: Array, apply, square_left, square_right, iterations):
    """``sum_j L^j X0 (R^j)^T`` by squared Smith iterations, stopped once converged.

    ``apply(Lk, Rk, X)`` is ``Lk X Rk^T`` and ``square_left``/``square_right`` square a power,
    in whatever representation ``L`` and ``R`` have (dense, or stacked diagonal blocks, whose
    Frobenius norm is that of the array). The iteration stops when the product of the powers'
    Frobenius norms, a bound on the next increment relative to the sum, falls below the
    dtype's machine epsilon, or after ``iterations`` squarings. It is a ``while_loop``, not
    differentiable itself: the solvers built on it give implicit derivatives through
    ``jax.lax.custom_linear_solve``.
    """
    eps = jnp.finfo(X0.dtype).eps

    def cond(c):
        k, _, _, _, err = c
        return (k < iterations) & (err > eps)

    def body(c):
        k, X, Lk, Rk, _ = c
        X = X + apply(Lk, Rk, X)
        Lk, Rk = square_left(Lk), square_right(Rk)
        return k + 1, X, Lk, Rk, _frobenius(Lk) * _frobenius(Rk)

    init = (0, X0, L, R, _frobenius(L) * _frobenius(R))
    return jax.lax.while_loop(cond, body, init)[1]


def _frobenius(M: Array) -> Array:
    return jnp.sqrt(jnp.sum(M * M))


def _dense_stein(A: Array, Q: Array, iterations: int) -> Array:
    """``X`` with ``A X + X A^T + Q = 0`` (``Q`` any square matrix), the converged Smith sum.

    With a shift ``p > 0``, ``R = (pI - A)^-1`` and ``M = R (pI + A)``, the continuous equation
    is equivalent to the discrete (Stein) equation ``X = M X M^T + 2p R Q R^T``, whose solution
    is ``sum_j M^j Q_d M^jT``; squaring doubles the number of summed terms per iteration.
    """
    p = _shift(A)
    R, M = _cayley(A, p)

    def square(Mk):
        return Mk @ Mk

    return squared_smith(
        2.0 * p * (R @ Q @ R.T),
        M,
        M,
        lambda Lk, Rk, X: Lk @ X @ Rk.T,
        square,
        square,
        iterations,
    )


def solve_lyapunov(A: Array, Q: Array, *, iterations: int = _DEFAULT_ITERATIONS) -> Array:
    r"""Solve the continuous Lyapunov equation :math:`A X + X A^T + Q = 0` for a stable ``A``.

    Uses the squared Smith iteration on the Cayley transform ``M = (pI - A)^-1 (pI + A)``
    (Smith 1968; Penzl 1999), with the shift ``p`` the geometric mean of ``A``'s eigenvalue
    moduli (from its determinant): one linear solve, then squarings of three matrix products
    each, stopped once the next increment is below round-off (at most ``iterations``). No
    eigendecomposition (JAX's ``jnp.linalg.eig`` is CPU-only and not differentiable).
    Derivatives are implicit (``jax.lax.custom_linear_solve``): the tangent solves the same
    equation and the cotangent its transpose, so forward and reverse mode in ``A`` and ``Q``
    each cost one more solve and store nothing of the iterations.

    Convergence: after ``k`` iterations the error is ``sum_{j >= 2^k} M^j Q_d M^jT``, so it
    shrinks like ``rho^(2^k)`` with ``rho = max |(p + l) / (p - l)| < 1`` over the eigenvalues
    ``l`` of a stable ``A`` (quadratic convergence once ``rho^(2^k)`` is small). About
    ``log2(40 / (1 - rho))`` iterations reach float64 round-off. ``1 - rho`` is roughly
    ``2 min(|l| / p, p / |l|) |Re l| / |l|``: small for eigenvalues far from the geometric mean
    or close to the imaginary axis. The default 50 iterations cover ``1 - rho`` down to ~1e-13,
    e.g. a damping ratio of 1e-3 on eigenvalues six decades apart converges in ~30. The
    equation itself is ill-conditioned when ``A`` has eigenvalues near the imaginary axis (the
    covariance then diverges): that, not the iteration, limits accuracy.

    If ``A`` is not stable the iteration diverges (``inf``/``nan``) or returns a matrix that is
    not the Lyapunov solution; check with :func:`is_stable`.

    Args:
        A: (..., n, n) stable matrix (all eigenvalues with negative real part).
        Q: (..., n, n) right-hand side (symmetric for a covariance).
        iterations: the most squared Smith iterations (static).

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
    # implicit derivatives: the tangent (and the cotangent) of X solve the same equation (its
    # transpose, A^T L + L A + dX = 0, for the cotangent), so reverse mode costs one more
    # converged solve and stores nothing of the iterations
    return jax.lax.custom_linear_solve(
        lambda X: A @ X + X @ A.T,
        -Q,
        lambda _, b: _dense_stein(A, -b, iterations),
        lambda _, b: _dense_stein(A.T, -b, iterations),
    )


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
    _, MK = _cayley(A, _shift(A))
    MK = jax.lax.fori_loop(0, iterations, lambda _, M: M @ M, MK)
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
