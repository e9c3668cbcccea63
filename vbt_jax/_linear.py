"""Linearised network dynamics: the analytic stationary covariance and functional connectivity.

Around a stable fixed point a network model with additive noise behaves as the linear SDE
``dX = A X dt + sqrt(2 nsig) dW`` (``A`` the Jacobian of the network's drift). Its stationary
covariance ``P`` solves the continuous Lyapunov equation ``A P + P A^T + diag(2 nsig) = 0``,
which gives the model's functional connectivity without simulating, as a smooth function of the
parameters (a likelihood that NUTS can differentiate).

**Conduction delays are ignored in this approximation**: the Jacobian is that of the
zero-delay network. With delays the linearised system is a delay differential equation whose
covariance is not given by a Lyapunov equation.

For the Stuart-Landau (Hopf) network with symmetric weights and one common ``omega`` the
covariance and the power spectrum have closed forms (:func:`hopf_covariance_symmetric`,
:func:`hopf_fc_symmetric`, :func:`hopf_spectrum`, :func:`hopf_band_power`): one Cholesky
factorisation or one symmetric eigendecomposition of an ``N x N`` matrix instead of a
``2N x 2N`` Lyapunov solve, for the many cheap gradients that NUTS needs.

Everything here is ``jax.numpy`` only and works under ``jit``, ``vmap``, ``grad`` and
``jacfwd``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import Array

from ._errors import ArgumentError, ShapeError

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


def hopf_jacobian(a: float | Array, omega: float | Array, W: Array, G: float | Array) -> Array:
    r"""Jacobian at the origin of the Stuart-Landau network with diffusive coupling.

    The network is :class:`~vbt_jax.models.StuartLandau` with
    :class:`~vbt_jax.Difference` coupling ``c_i = G sum_j W_ij (z_j - z_i)`` on both ``x`` and
    ``y``, without delays. With ``L = G (W - diag(sum_j W_ij))``:

    .. math::
        J = \begin{pmatrix} \mathrm{diag}(a) + L & -\mathrm{diag}(\omega) \\
                            \mathrm{diag}(\omega) & \mathrm{diag}(a) + L \end{pmatrix}

    State ordering ``(x_1..x_N, y_1..y_N)`` (the simulator's ``(2, N)`` state flattened row by
    row); units 1/ms.

    Args:
        a: bifurcation parameter [1/ms], scalar or (N,).
        omega: angular frequency [rad/ms], scalar or (N,).
        W: (N, N) weights, ``W[i, j]`` from ``j`` to ``i``.
        G: global coupling (scalar).

    Returns:
        (2N, 2N) Jacobian [1/ms].

    Raises:
        ArgumentError: if ``W`` is not square or ``a``/``omega`` are neither scalar nor (N,).
    """
    W = jnp.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ShapeError(f"hopf_jacobian: W must be (N, N), got shape {W.shape}")
    n = W.shape[0]
    dtype = jnp.result_type(W, a, omega, G)
    a = _per_region(a, n, "a", dtype)
    omega = _per_region(omega, n, "omega", dtype)
    W = W.astype(dtype)
    L = G * (W - jnp.diag(W.sum(axis=1)))
    block = jnp.diag(a) + L
    rot = jnp.diag(omega)
    return jnp.block([[block, -rot], [rot, block]])


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


def hopf_fc(
    a: float | Array,
    omega: float | Array,
    W: Array,
    G: float | Array,
    nsig: float | Array,
    *,
    iterations: int = _DEFAULT_ITERATIONS,
) -> Array:
    """Analytic FC of ``x`` for the Stuart-Landau network linearised at the origin (no delays).

    Composes :func:`hopf_jacobian`, :func:`stationary_covariance` and :func:`linear_fc`. Valid
    below the bifurcation (every eigenvalue of the Jacobian stable, e.g. ``a < 0``): check with
    :func:`is_stable` when ``a`` or ``G`` may cross it.

    Args:
        a: bifurcation parameter [1/ms], scalar or (N,).
        omega: angular frequency [rad/ms], scalar or (N,).
        W: (N, N) weights.
        G: global coupling of the Difference coupling.
        nsig: noise as in :class:`~vbt_jax.Additive`: scalar, (2,) per state variable or (2, N).

    Returns:
        (N, N) correlation matrix of ``x``.

    Raises:
        ArgumentError: on inconsistent shapes.
    """
    J = hopf_jacobian(a, omega, W, G)
    n = J.shape[0] // 2
    noise = _state_noise(nsig, n, "hopf_fc", J.dtype).reshape(-1)
    cov = stationary_covariance(J, noise, iterations=iterations)
    return linear_fc(cov, n, 0)


def _per_region(v, n: int, name: str, dtype, fname: str = "hopf_jacobian") -> Array:
    v = jnp.asarray(v, dtype)
    if v.ndim == 0:
        return jnp.full((n,), v)
    if v.shape != (n,):
        raise ShapeError(f"{fname}: {name} must be scalar or ({n},), got shape {v.shape}")
    return v


def _state_noise(nsig, n: int, fname: str, dtype) -> Array:
    """``nsig`` in :class:`~vbt_jax.Additive`'s shapes ((), (2,), (2, N)) broadcast to (2, N)."""
    nsig = jnp.asarray(nsig, dtype)
    if nsig.ndim == 1:
        if nsig.shape[0] != 2:
            raise ShapeError(f"{fname}: nsig must be (), (2,) or (2, {n}), got {nsig.shape}")
        nsig = nsig[:, None]
    elif nsig.ndim == 2 and nsig.shape != (2, n):
        raise ShapeError(f"{fname}: nsig must be (), (2,) or (2, {n}), got {nsig.shape}")
    elif nsig.ndim > 2:
        raise ShapeError(f"{fname}: nsig must be (), (2,) or (2, {n}), got {nsig.shape}")
    return jnp.broadcast_to(nsig, (2, n))


# --------------------------------------------------------------------------------------------
# Symmetric weights and a common omega: closed forms
#
# With J = [[B, -w I], [w I, B]] and B symmetric, z = x + i y obeys dz = (B + i w) z dt + noise:
# a complex-linear system. With the same noise on x and y the complex noise is circular, so the
# covariance is blockdiag(X, X) with B X + X B = -2 diag(nsig) (w drops out), and in B's
# eigenbasis (B = U diag(lam) U^T) each mode is a damped rotation whose x-spectrum is the
# Lorentzian pair centred on +-w with half-width c = -lam.
# --------------------------------------------------------------------------------------------

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
    n = B.shape[0]
    if nsig.ndim == 0:
        # X = -nsig B^-1; -B is positive definite below the bifurcation (NaN otherwise)
        factor = jsl.cho_factor(-B, lower=True)
        X = nsig * jsl.cho_solve(factor, jnp.eye(n, dtype=B.dtype))
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
              B = \mathrm{diag}(a) + G\,(W - \mathrm{diag}(	extstyle\sum_j W_{ij})),

    independent of ``omega`` (so it is not an argument). For a scalar ``nsig``,
    ``X = -nsig B^-1`` by one Cholesky factorisation of ``-B``; per region,
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


# ---- spectra --------------------------------------------------------------------------------

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

    .. math:: S_i(f) = \sum_k U_{ik}^2\, rac{2\,\mathrm{nsig}}{1000}
              \Big[rac{1}{c_k^2 + (w - \omega)^2} + rac{1}{c_k^2 + (w + \omega)^2}\Big];

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
