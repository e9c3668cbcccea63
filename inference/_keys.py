"""PRNG keys at the API: every random entry point takes ``key=``, one key per purpose.

A job that needs several random streams (warm start, sampler, prior draws, predictive noise,
simulation noise) derives each from its one key with :func:`purpose_keys`: the stream of a
purpose is ``fold_in(key, crc32(purpose))``: the streams of two seeds never coincide (as
``seed + 1`` offsets would, seed 1's sampler then drawing seed 0's warm-start stream), and
adding a purpose leaves the others unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from vbt_jax import ArgumentError


def as_key(key: Any, where: str) -> jax.Array:
    """``key`` as a raw ``uint32[2]`` key (what NumPyro's samplers take).

    Accepts a typed key (``jax.random.key(seed)``) or a raw one (``jax.random.PRNGKey``).

    Raises:
        ArgumentError: ``key`` is an integer or anything else that is not a PRNG key.
    """
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ArgumentError(f"{where}: key must be a single PRNG key, got shape {key.shape}")
        return jax.random.key_data(key)
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,):
        return key
    raise ArgumentError(
        f"{where}: key must be a PRNG key such as jax.random.key(0), got {type(key).__name__}"
        + (f" {key!r}" if isinstance(key, int) else "")
    )


def purpose_keys(key: Any, purposes: Sequence[str], where: str = "purpose_keys") -> dict:
    """One typed key per named purpose, derived from ``key`` (see the module docstring)."""
    typed = jax.random.wrap_key_data(as_key(key, where))
    return {p: jax.random.fold_in(typed, zlib.crc32(p.encode()) & 0x7FFFFFFF) for p in purposes}


def numpy_rng(key: Any, where: str = "numpy_rng"):
    """A NumPy ``Generator`` seeded by a PRNG key (for NumPy-side randomness of a job)."""
    import numpy as np

    return np.random.default_rng(np.asarray(as_key(key, where)))


__all__ = ["as_key", "numpy_rng", "purpose_keys"]
