"""Conduction delays as a sparse, block-friendly plan over a circular history buffer.

The buffer keeps, per buffered coupling row and region, the last ``ring`` steps (``ring`` is the
maximum delay + 1 rounded up to a whole number of blocks) plus ``block`` mirrored slots, so that
the ``block`` consecutive delayed values an edge needs are always one contiguous slice. Because
``block`` never exceeds the smallest non-zero delay, the coupling of a whole block depends only
on states already in the buffer and is gathered at once. Zero-delay connections (TVB's
zero-length self-connections) read the current state at every step instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.core import Tracer

from ._errors import SimulationError

MAX_BLOCK = 32


def is_concrete(x) -> bool:
    return not isinstance(x, Tracer)


@dataclass(frozen=True)
class DelayPlan:
    n_regions: int
    block: int
    ring: int
    max_delay: int
    src: np.ndarray  # (N, E) source index of each incoming delayed edge, padded
    dly: Array | np.ndarray  # (N, E) delay in steps (padding: any valid delay)
    mask: np.ndarray  # (N, E) 1.0 for real edges, 0.0 for padding
    zero_mode: str  # "none" | "diag" | "dense"
    zero_mask: Array | np.ndarray  # (N,) for diag, (N, N) for dense
    traced: bool

    def edge_weights(self, W: Array) -> Array:
        rows = np.arange(self.n_regions)[:, None]
        if self.zero_mode == "dense_traced":
            return jnp.where(self.zero_mask, 0.0, W)
        return W[rows, self.src] * self.mask

    def zero_weights(self, W: Array) -> Array | None:
        if self.zero_mode == "dense_traced":
            return jnp.where(self.zero_mask, W, 0.0)
        if self.zero_mode == "diag":
            return jnp.diagonal(W) * self.zero_mask
        if self.zero_mode == "dense":
            return W * self.zero_mask
        return None


def choose_block(min_delay: int, unit: int, requested: int | None) -> int:
    """The largest block <= min(min_delay, MAX_BLOCK) that divides the monitor unit."""
    cap = max(1, min(min_delay, MAX_BLOCK))
    if requested is not None:
        if unit % requested or requested > cap:
            raise SimulationError(
                f"block={requested} must divide the monitor unit ({unit} steps) and not exceed the "
                f"smallest non-zero delay ({min_delay} steps) nor {MAX_BLOCK}"
            )
        return requested
    return max(k for k in range(1, cap + 1) if unit % k == 0)


def plan_delays(
    weights, lengths, *, speed: float, dt: float, unit: int, block=None, max_delay=None
) -> DelayPlan:
    n = weights.shape[-1]
    concrete = is_concrete(lengths) and is_concrete(speed) and is_concrete(weights)
    if concrete:
        L = np.asarray(lengths, dtype=np.float64)
        d = np.rint(L / float(speed) / float(dt)).astype(np.int64)
        nz = np.asarray(weights) != 0
        delayed = nz & (d > 0)
        zero = nz & (d == 0)
        D = int(d[delayed].max()) if delayed.any() else 0
        if max_delay is not None and max_delay < D:
            raise SimulationError(f"max_delay={max_delay} steps is below the longest delay {D}")
        dmin = int(d[delayed].min()) if delayed.any() else MAX_BLOCK
        K = choose_block(dmin, unit, block)
        deg = delayed.sum(axis=1)
        E = max(int(deg.max()), 1)
        src = np.zeros((n, E), np.int32)
        dly = np.full((n, E), max(D, 1), np.int32)
        mask = np.zeros((n, E), np.float32)
        for i in range(n):
            js = np.nonzero(delayed[i])[0]
            src[i, : len(js)] = js
            dly[i, : len(js)] = d[i, js]
            mask[i, : len(js)] = 1.0
        offdiag = zero & ~np.eye(n, dtype=bool)
        if offdiag.any():
            zero_mode, zero_mask = "dense", zero.astype(np.float32)
        elif zero.any():
            zero_mode, zero_mask = "diag", np.diagonal(zero).astype(np.float32)
        else:
            zero_mode, zero_mask = "none", np.zeros(n, np.float32)
        ring = -(-(max(D, 1) + 1) // K) * K
        return DelayPlan(n, K, ring, D, src, dly, mask, zero_mode, zero_mask, False)
    # traced lengths, speed or weights: every pair is an edge, delays are traced integers
    if max_delay is None or block is None:
        raise SimulationError(
            "the connectome's lengths/weights or the conduction speed are traced (inside jit/vmap/"
            "grad), so the delays are not known when compiling: pass max_delay= (steps) and "
            "block= (steps, at most the smallest non-zero delay) to simulate"
        )
    K = choose_block(block, unit, block)
    D = int(max_delay)
    d = jnp.rint(jnp.asarray(lengths) / speed / dt).astype(jnp.int32)
    src = np.tile(np.arange(n, dtype=np.int32), (n, 1))
    zero = d == 0
    ring = -(-(max(D, 1) + 1) // K) * K
    dly = jnp.where(zero, K, d)
    return DelayPlan(
        n, K, ring, D, src, dly, np.ones((n, n), np.float32), "dense_traced", zero, True
    )
