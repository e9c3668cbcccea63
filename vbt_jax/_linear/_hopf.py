"""The Stuart-Landau network linearised at the origin: its Jacobian and its general FC."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .._errors import ShapeError
from ._lyapunov import _DEFAULT_ITERATIONS, linear_fc, stationary_covariance


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
