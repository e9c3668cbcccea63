"""The one place that works around a deadlock of batched LAPACK calls on XLA's CPU backend.

With jaxlib 0.10.2 on CPU, XLA runs a batched (vmapped) LAPACK call (Cholesky, triangular
solve, symmetric eigendecomposition) through ``ParallelBatchMap`` on its intra-op thread pool.
Two such calls in flight at once in one program can deadlock that pool when it has two threads:
each pool thread waits for chunks that are queued behind the other call. Reverse- or
forward-mode autodiff of ``cho_solve`` under ``vmap`` puts batched triangular solves for the
tangents beside the primal's in one program, which is how the Hopf twin's gradients hit it.

:func:`neg_inverse` avoids it for the Hopf covariance ``(-B)^-1``: its forward pass is one
dependent chain (factor, then solve) and its derivative is matrix products only, so a vmapped,
differentiated caller holds one batched LAPACK call at a time. Callers that batch several
matrices put them into one vmapped call (rather than two independent vmapped calls in one
program) for the same reason. Remove this module when the jaxlib in use no longer deadlocks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax import Array


@jax.custom_jvp
def neg_inverse(B: Array) -> Array:
    """``X = (-B)^-1`` for a symmetric negative definite ``B`` (NaN where ``-B`` is not
    positive definite), by one Cholesky factorisation of ``-B``.

    Its JVP is ``dX = X dB X`` and so its VJP ``g -> X g X``: no triangular solve in either.

    Args:
        B: (N, N) symmetric matrix.

    Returns:
        (N, N) inverse of ``-B``.
    """
    eye = jnp.eye(B.shape[-1], dtype=B.dtype)
    return jsl.cho_solve(jsl.cho_factor(-B, lower=True), eye)


@neg_inverse.defjvp
def _neg_inverse_jvp(primals, tangents):
    X = neg_inverse(primals[0])
    return X, X @ tangents[0] @ X
