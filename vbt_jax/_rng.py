"""Gaussian noise for the integrators.

Two generators are offered, selected by ``simulate(..., rng=...)``:

``"threefry"``
    ``jax.random.normal`` with ``jax.random.fold_in(key, block)``: JAX's standard, strongest
    generator, but on a CPU it costs more than the whole rest of a simulation step.
``"hash"`` (default)
    A counter-based generator: draw number ``g`` of a run is two keyed rounds of the
    ``lowbias32`` integer finaliser (C. Wellons, "Hash function prospector", 2018) applied to
    ``g``, with two 32-bit words derived from the PRNG key, then mapped to a standard normal with
    the inverse error function. It is a
    pure function of (key, draw number), so the same key gives the same noise on any device,
    inside ``vmap``, under rematerialisation and when a run is split and resumed. Its moments,
    serial correlation and normality are tested in ``tests/test_rng.py``. It is not suitable for
    cryptography.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
from jax import Array

_M1 = 0x7FEB352D
_M2 = 0x846CA68B
_GOLDEN = 0x9E3779B9


def _lowbias32(x: Array) -> Array:
    x = x ^ (x >> 16)
    x = x * jnp.uint32(_M1)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(_M2)
    return x ^ (x >> 16)


def key_words(key: Array) -> Array:
    """Two uint32 words derived from a JAX PRNG key (typed or raw)."""
    return jr.bits(key, (2,), jnp.uint32)


def hash_normal(words: Array, first: Array, shape: tuple[int, ...], dtype) -> Array:
    """Standard normal draws of ``shape``; ``first`` is the index of the first block of
    ``shape[1:]`` draws (``shape[0]`` consecutive blocks are drawn).

    Draw ``g`` of the run (a global 32-bit counter) is ``lowbias32(lowbias32(g ^ k0) + k1)``,
    a keyed bijection of the counter, so no two draws of an epoch of 2**32 draws share their
    input; every epoch gets its own key words.
    """
    per = 1
    for s in shape[1:]:
        per *= s
    blocks_per_epoch = (1 << 32) // per
    first = jnp.asarray(first, jnp.uint32)
    b = first + jnp.arange(shape[0], dtype=jnp.uint32)
    epoch = b // jnp.uint32(blocks_per_epoch)
    within = b % jnp.uint32(blocks_per_epoch)
    k0 = _lowbias32(words[0] ^ (epoch * jnp.uint32(_GOLDEN)))[:, None]
    k1 = _lowbias32(words[1] + epoch)[:, None]
    g = within[:, None] * jnp.uint32(per) + jnp.arange(per, dtype=jnp.uint32)[None, :]
    bits = _lowbias32(_lowbias32(g ^ k0) + k1)
    return _bits_to_normal(bits).astype(dtype).reshape(shape)


def _bits_to_normal(bits: Array) -> Array:
    """23 high bits -> (k + 1/2) 2^-22 - 1, exactly representable in float32 and strictly
    inside (-1, 1) (so erf_inv stays finite) -> standard normal."""
    u = ((bits >> 9).astype(jnp.float32) + 0.5) * (2.0 / (1 << 23)) - 1.0
    return jnp.sqrt(jnp.float32(2.0)) * jax.lax.erf_inv(u)


def threefry_normal(key: Array, first: Array, shape: tuple[int, ...], dtype) -> Array:
    """Like :func:`hash_normal` with ``jax.random.normal(fold_in(key, block))`` per block."""
    blocks = jnp.asarray(first, jnp.uint32) + jnp.arange(shape[0], dtype=jnp.uint32)
    return jax.vmap(lambda b: jr.normal(jr.fold_in(key, b), shape[1:], dtype))(blocks)
