"""Hand-written reverse-mode adjoint of the integration loop (``jax.custom_vjp``).

Reverse-mode differentiation of the loop by JAX itself transposes each block's gather of
delayed values into a scatter-add over the whole delay buffer, and rematerialises segments
together with per-step residuals; on a CPU those two make the gradient cost about 4-5 forward
runs. The adjoint written here keeps the same two-level checkpointing (one carry per segment
is stored by the forward pass; each segment is rerun once in the backward pass, except the
last whole segment and the leftover units, whose records the forward pass keeps) but:

* carries, instead of the cotangent of the delay buffer, a ring of the cotangents of the
  weighted delayed input ``h`` of every target region and step (the mirror of the forward
  buffer), so that the cotangent of a source's buffered value is *gathered* over its out-edges
  (the transposed weight/delay structure) once per block, as the forward pass gathers over
  in-edges; the gather for a block is done at the end of the block after it in the reverse
  loop, and its weighted sum is unrolled over each source's out-edges;
* linearises the ``block`` steps of a block at once (``vmap`` of ``jax.vjp`` of one step, from
  the states recorded by the rematerialised pass) and runs only the transposed step in the
  sequential reverse loop; the cotangents of the parameters, of ``h`` and of the noise are
  then formed for the whole block at once.

The per-step arithmetic is JAX's own (``jax.vjp`` of the step, the coupling, the monitors and
the noise), so gradients equal those of plain autodiff up to the order of floating-point sums.
Forward-mode differentiation (``jax.jvp``) of a function with a custom VJP is not possible:
``simulate(..., checkpoint=False)`` keeps plain autodiff for that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero


def segment_sizes(length: int) -> tuple[int, int, int]:
    """``(n_inner, n_outer, rem)``: units per segment, whole segments, leftover units. Segments
    are sized so that one carry per segment and one segment's residuals take about equal
    memory."""
    n_inner = max(1, min(length, int(round(math.sqrt(5.0 * length)))))
    n_outer = length // n_inner
    return n_inner, n_outer, length - n_outer * n_inner


def nested_scan(
    body, carry, length: int, checkpoint: bool, xs_fn, keep_starts: bool = False, sizes=None
):
    """``lax.scan`` of ``body(carry, (unit_index, xs))`` over units ``0 .. length-1``.

    ``xs_fn(first, n)`` makes the per-unit inputs (the noise) of ``n`` units at once: drawing
    many units' noise in one large array lets XLA spread it over the CPU cores.

    With ``checkpoint``, the scan is split into ``n_outer`` segments of ``n_inner`` units whose
    bodies are rematerialised: reverse-mode differentiation then stores one carry (state plus
    delay buffer) per segment and the residuals of one segment at a time, instead of residuals
    for every step. With ``keep_starts`` the carries at the start of every segment (and of the
    leftover units) are returned as well: ``(carry, ys, (starts, rem_start))``. ``sizes``:
    ``(n_inner, n_outer, rem)`` other than ``segment_sizes(length)``.
    """
    n_inner, n_outer, rem = segment_sizes(length) if sizes is None else sizes

    def segment(c, first):
        idx = first + jnp.arange(n_inner)
        c_out, ys = jax.lax.scan(body, c, (idx, xs_fn(first, n_inner)))
        return c_out, ((ys, c) if keep_starts else ys)

    if checkpoint:
        segment = jax.checkpoint(segment)
    carry, out = jax.lax.scan(segment, carry, n_inner * jnp.arange(n_outer))
    ys, starts = out if keep_starts else (out, None)
    ys = jtu.tree_map(lambda y: y.reshape((n_outer * n_inner,) + y.shape[2:]), ys)
    rem_start = carry
    if rem:
        first = n_outer * n_inner
        carry, ys_rem = jax.lax.scan(body, carry, (first + jnp.arange(rem), xs_fn(first, rem)))
        ys = jtu.tree_map(lambda a, b: jnp.concatenate([a, b]), ys, ys_rem)
    if keep_starts:
        return carry, ys, (starts, rem_start)
    return carry, ys


@dataclass(frozen=True)
class LoopSpec:
    """The pieces of the integration loop, as pure functions of ``P`` (the loop's traced
    inputs, rebuilt by ``make`` from a flat list of arrays) and of their other arguments.

    Shapes: ``S`` states, ``N`` regions, ``B`` buffered coupling rows, ``K`` steps per block.
    The carry is ``(x (S, N), buf (B, N, ring + K), monitor states)``.

    Attributes:
        make: flat array leaves -> ``P``.
        run_unit: ``(P, carry, (global unit index, unit noise)) -> (carry, samples)``.
        noise: ``(P, first global unit, n) -> (n, blocks_per_unit, K, S, N)`` or ``None``.
        block_core: ``(P, x, buf, global block index, block noise) -> (x, traj (K, S, N),
            hist (B, N, K), buf)``: one block without the monitors.
        mon_block: ``(P, monitor states, traj) -> monitor states`` (accumulate).
        mon_unit: ``(P, monitor states, global unit index) -> (monitor states, samples)``.
        step: ``(P, x (S, N), h (B, N), dw (S, N) or None) -> x``: one step.
        pre: ``(P, x (S, N)) -> (B, N)``: the buffered value of a state.
        edges_T: ``P -> (w (N, E'), d (N, E'))``: weight and delay [steps] of each source's
            out-edges (padding: weight 0).
        edge_weights: ``P -> `` the in-edge weights (the leaf of ``P`` that ``edges_T``'s
            weights are taken from).
        dst_T: ``(N, E')`` target of each out-edge.
        block, ring, blocks_per_unit, unroll: as in ``simulate``.
        local: ``step`` maps each region's state to its next state independently of the other
            regions' states (given ``h`` and ``dw``): the reverse loop then uses per-region
            Jacobians.
    """

    make: Callable
    run_unit: Callable
    noise: Callable | None
    block_core: Callable
    mon_block: Callable
    mon_unit: Callable
    step: Callable
    pre: Callable
    edges_T: Callable
    edge_weights: Callable
    dst_T: np.ndarray
    block: int
    ring: int
    blocks_per_unit: int
    unroll: Any
    local: bool = False


class _Static(eqx.Module):
    value: Any = eqx.field(static=True)


def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _instantiate(ct):
    return jtu.tree_map(
        lambda z: jnp.zeros(z.aval.shape, z.aval.dtype) if isinstance(z, SymbolicZero) else z,
        ct,
        is_leaf=lambda z: isinstance(z, SymbolicZero),
    )


def _tree_add(a, b):
    return jtu.tree_map(jnp.add, a, b)


# out-edges per source up to which gather_future sums them rank by rank (unrolled); beyond, one
# batched dot. A gradient on a dense connectome, unrolled sum against the earlier adjoint's dot:
# 220 regions 0.34 s against 0.39 s, 300 regions 0.48 against 0.44
_UNROLLED_SUM_MAX = 192


def transpose_edges(src: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-edge lists from the in-edge lists ``src (N, E)`` (``mask`` 1 for real edges).

    Returns ``(dst, n_idx, e_idx, valid)``, each ``(N, E')``: for source ``j`` and out-edge
    ``f``, the target ``dst[j, f]``, the position ``(n_idx, e_idx)`` of that edge in the in-edge
    arrays, and 1.0 for a real edge (padding points at position ``(0, 0)``).
    """
    n = src.shape[0]
    outs = [[] for _ in range(n)]
    for i in range(n):
        for e in range(src.shape[1]):
            if mask[i, e]:
                outs[int(src[i, e])].append((i, e))
    width = max(1, max(len(o) for o in outs))
    dst = np.zeros((n, width), np.int32)
    n_idx = np.zeros((n, width), np.int32)
    e_idx = np.zeros((n, width), np.int32)
    valid = np.zeros((n, width), np.float32)
    for j, o in enumerate(outs):
        for f, (i, e) in enumerate(o):
            dst[j, f], n_idx[j, f], e_idx[j, f], valid[j, f] = i, i, e, 1.0
    return dst, n_idx, e_idx, valid


def _record_unit(spec: LoopSpec, P, carry, inp):
    """One unit of the loop (``spec.run_unit``) that also returns what its reverse needs:
    ``(carry, (samples, (block records, monitor states before sampling)))``; a block's
    record is ``(x, traj, hist, monitor states)`` at its start."""
    uidx, dws = inp
    first = uidx * spec.blocks_per_unit

    def rec_block(carry, binp):
        bidx, dw = binp
        x, buf, ms = carry
        x_new, traj, hist, buf = spec.block_core(P, x, buf, bidx, dw)
        ms_new = spec.mon_block(P, ms, traj)
        return (x_new, buf, ms_new), (x, traj, hist, ms)

    if spec.blocks_per_unit == 1:
        carry, rec = rec_block(carry, (first, None if dws is None else dws[0]))
        brecs = jtu.tree_map(lambda a: a[None], rec)
    else:
        bidx = first + jnp.arange(spec.blocks_per_unit)
        carry, brecs = jax.lax.scan(rec_block, carry, (bidx, dws))
    x, buf, ms_end = carry
    ms_new, ys = spec.mon_unit(P, ms_end, uidx)
    return (x, buf, ms_new), (ys, (brecs, ms_end))


def integrate(
    spec: LoopSpec, leaves, carry0, offset_units, n_units: int, checkpoint: bool, adjoint: bool
):
    """Run the loop over ``n_units`` units from ``carry0``: ``(carry, samples per unit)``.

    With ``adjoint`` (and ``checkpoint``), reverse-mode differentiation uses the hand-written
    adjoint of this module; otherwise JAX differentiates the loop itself.
    """
    leaves = tuple(leaves)

    def primal(leaves, carry0, offset_units):
        P = spec.make(leaves)

        def body(carry, inp):
            return spec.run_unit(P, carry, (offset_units + inp[0], inp[1]))

        def xs_fn(first, n):
            return None if spec.noise is None else spec.noise(P, offset_units + first, n)

        return nested_scan(body, carry0, n_units, checkpoint, xs_fn)

    if not (adjoint and checkpoint):
        return primal(leaves, carry0, offset_units)

    loop = jax.custom_vjp(primal)

    def fwd(leaves, carry0, offset_units):
        is_p = lambda x: isinstance(x, CustomVJPPrimal)  # noqa: E731
        perturbed = tuple(
            bool(p.perturbed) and _is_float(p.value) for p in jtu.tree_leaves(leaves, is_leaf=is_p)
        )
        carry_perturbed = tuple(p.perturbed for p in jtu.tree_leaves(carry0, is_leaf=is_p))
        leaves, carry0, offset_units = jtu.tree_map(
            lambda p: p.value, (leaves, carry0, offset_units), is_leaf=is_p
        )
        P = spec.make(leaves)

        def body(carry, inp):
            return spec.run_unit(P, carry, (offset_units + inp[0], inp[1]))

        def xs_fn(first, n):
            return None if spec.noise is None else spec.noise(P, offset_units + first, n)

        # every segment but the last whole one keeps only its start; the last one and the
        # leftover units (the "tail", first in the reverse pass) keep their records, so that
        # the reverse pass need not rerun them
        n_inner, n_outer, _ = segment_sizes(n_units)
        n_head = (n_outer - 1) * n_inner
        carry, ys, (starts, _) = nested_scan(
            body, carry0, n_head, False, xs_fn, keep_starts=True, sizes=(n_inner, n_outer - 1, 0)
        )
        dws = xs_fn(n_head, n_units - n_head)
        uidx = offset_units + n_head + jnp.arange(n_units - n_head)
        carry, (ys_tail, recs) = jax.lax.scan(
            lambda c, inp: _record_unit(spec, P, c, inp), carry, (uidx, dws)
        )
        ys = jtu.tree_map(lambda a, b: jnp.concatenate([a, b]), ys, ys_tail)
        tail = (recs, dws)
        res = (_Static((perturbed, carry_perturbed)), leaves, starts, tail, carry0[1], offset_units)
        return (carry, ys), res

    def bwd(res, cts):
        flags, leaves, starts, tail, buf0, offset_units = res
        perturbed, carry_perturbed = flags.value
        return _backward(
            spec, n_units, perturbed, carry_perturbed, leaves, starts, tail, buf0, offset_units, cts
        )

    loop.defvjp(fwd, bwd, symbolic_zeros=True)
    return loop(leaves, carry0, offset_units)


def _backward(
    spec, n_units, perturbed, carry_perturbed, leaves, starts, tail, buf0, offset_units, cts
):
    K, ring, bpu = spec.block, spec.ring, spec.blocks_per_unit
    var_idx = [i for i, p in enumerate(perturbed) if p]

    def make_P(dvar):
        lv = list(leaves)
        for i, v in zip(var_idx, dvar):
            lv[i] = v
        return spec.make(tuple(lv))

    dvar0 = tuple(leaves[i] for i in var_idx)
    P0 = make_P(dvar0)
    (ct_x, ct_buf, ct_ms), ct_ys = cts
    have_direct = not isinstance(ct_buf, SymbolicZero)
    ct_x, ct_ms, ct_ys = _instantiate((ct_x, ct_ms, ct_ys))

    wT, w_T_vjp = jax.vjp(lambda dv: spec.edges_T(make_P(dv))[0], dvar0)
    width = wT.shape[1]
    # unrolled sum: out-edges rank-major, (E', N), so that the slices gathered for one rank
    # form one contiguous (N, B, K) block; batched dot: source-major, (N, E')
    rank_major = width <= _UNROLLED_SUM_MAX
    d_T = (spec.edges_T(P0)[1] % ring).astype(jnp.int32)
    dst_T = jnp.asarray(spec.dst_T)
    if rank_major:
        d_T, dst_T = d_T.T, dst_T.T
    # einsum subscripts of the gathered slices and of the weights' (N, E') cotangent
    sl_sub = "fnbk" if rank_major else "nfbk"
    # the weights' cotangent needs one more contraction per block: only when they vary
    need_w = any(v is leaf for v in dvar0 for leaf in jtu.tree_leaves(spec.edge_weights(P0)))
    N = wT.shape[0]
    buf_shape = buf0.shape
    B = buf_shape[0]

    row = buf_shape[2]  # ring + K
    # flat start of each out-edge's target row in a (B, N * row) view of the ring
    row_start = dst_T * row
    flat_dims = jax.lax.GatherDimensionNumbers(
        offset_dims=(2, 3), collapsed_slice_dims=(), start_index_map=(1,)
    )

    def gather_future(R, t0):
        """Cotangent ``(B, N, K)`` of the buffered values of steps t0+1 .. t0+K, gathered over
        out-edges from the ring of future input cotangents, and the gathered slices
        ``(E', N, B, K)`` or ``(N, E', B, K)`` (``sl_sub``) when the weights' cotangent needs
        them (else ``None``)."""
        start = ((t0 + 1) % ring).astype(jnp.int32) + d_T
        start = jnp.where(start >= ring, start - ring, start) + row_start
        # every slice lies inside its row (start <= ring - 1, row = ring + K)
        sl = jax.lax.gather(
            R.reshape(B, N * row),
            start[..., None],
            flat_dims,
            (B, K),
            mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS,
        )
        if not rank_major:
            return jnp.einsum("nfbk,nf->bnk", sl, wT), (sl if need_w else None)
        # rank by rank, the sum fuses with the gather's output into one loop; XLA's CPU dot
        # for N tiny (1 x E') @ (E' x K) products costs about twice as much
        acc = sl[0] * wT[:, 0, None, None]
        for f in range(1, width):
            acc = acc + sl[f] * wT[:, f, None, None]
        return jnp.moveaxis(acc, 1, 0), (sl if need_w else None)

    def write_ring(R, new, t0):
        slot = (t0 % ring).astype(jnp.int32)
        z = jnp.int32(0)
        R = jax.lax.dynamic_update_slice(R, new, (z, z, slot))
        return jax.lax.dynamic_update_slice(
            R, new, (z, z, jnp.where(slot == 0, jnp.int32(ring), slot))
        )

    def rev_block(state, inp):
        bidx, (x_start, traj, hist, ms_before), dws = inp
        # (ct_pre, sl): this block's gather_future, done at the end of the previous one
        lam, R, (ct_pre, sl), D, ct_ms, g, gT = state
        t0 = bidx * K
        _, mvjp = jax.vjp(
            lambda dv, ms, tr: spec.mon_block(make_P(dv), ms, tr), dvar0, ms_before, traj
        )
        g1, ct_ms, ct_traj = mvjp(ct_ms)
        if D is not None:
            slot = (t0 % ring).astype(jnp.int32)
            z = jnp.int32(0)
            ct_pre = ct_pre + jax.lax.dynamic_slice(D, (z, z, slot), (B, N, K))
            D = jax.lax.dynamic_update_slice(D, jnp.zeros((B, N, K), D.dtype), (z, z, slot))
        pres, pvjp = jax.vjp(
            lambda dv, tr: jax.vmap(lambda x: spec.pre(make_P(dv), x))(tr), dvar0, traj
        )
        if gT is not None:
            gT = gT + jnp.einsum(f"{sl_sub},kbn->nf", sl, pres)
        g2, ct_traj2 = pvjp(jnp.moveaxis(ct_pre, -1, 0).astype(pres.dtype))
        ct_traj = ct_traj + ct_traj2
        xs_before = jnp.concatenate([x_start[None], traj[:-1]])
        hs = jnp.moveaxis(hist, -1, 0)

        def lin(x, h, dw):
            return jax.vjp(lambda dv, x, h, dw: spec.step(make_P(dv), x, h, dw), dvar0, x, h, dw)[1]

        vjps = jax.vmap(lin)(xs_before, hs, dws)
        inj = jnp.concatenate([jnp.zeros_like(ct_traj[:1]), ct_traj[:-1]])
        if spec.local:
            # each region's step depends on its own state only: its (S, S) Jacobian, for all
            # K steps at once, makes the sequential reverse loop one small contraction a step
            P = make_P(dvar0)
            eye = jnp.eye(x_start.shape[0], dtype=x_start.dtype)

            def jac(x, h, dw):
                def tangent(e):
                    t = jnp.broadcast_to(e[:, None], x.shape)
                    return jax.jvp(lambda x: spec.step(P, x, h, dw), (x,), (t,))[1]

                return jax.vmap(tangent)(eye)  # (S in, S out, N)

            J = jax.vmap(jac)(xs_before, hs, dws)

            def body(lam, inp):
                J_k, inj_k = inp
                return jnp.sum(J_k * lam[None], axis=1) + inj_k, lam

            xs_rev = (J, inj)
        else:

            def body(lam, inp):
                vj, inj_k = inp
                return vj(lam)[1] + inj_k, lam

            xs_rev = (vjps, inj)
        lam, lams = jax.lax.scan(body, lam + ct_traj[-1], xs_rev, reverse=True, unroll=spec.unroll)
        g3, _, ct_h, ct_dw = jax.vmap(lambda vj, lm: vj(lm))(vjps, lams)
        g3 = jtu.tree_map(lambda a: a.sum(axis=0), g3)
        R = write_ring(R, jnp.moveaxis(ct_h, 0, -1).astype(R.dtype), t0)
        # the previous block (t0 - K) reads the cotangents of steps >= t0 + 1 (every delay is
        # at least K steps), all final now: gathering them here lands the result in the loop
        # carry in the gather's own layout, where the consumer that transposes it cannot
        # absorb the sum into a slower fused loop
        gathered = gather_future(R, t0 - K)
        g = _tree_add(g, _tree_add(g1, _tree_add(g2, g3)))
        return (lam, R, gathered, D, ct_ms, g, gT), ct_dw

    def rev_unit(state, inp):
        uidx, brecs, ms_end, dws = inp
        # the samples' cotangent is read in place (slicing it per segment would copy it)
        ct_y = jtu.tree_map(
            lambda y: jax.lax.dynamic_index_in_dim(y, uidx - offset_units, keepdims=False), ct_ys
        )
        lam, R, G, D, ct_ms, g, gT = state
        _, uvjp = jax.vjp(lambda dv, ms: spec.mon_unit(make_P(dv), ms, uidx), dvar0, ms_end)
        g1, ct_ms = uvjp((ct_ms, ct_y))
        state = (lam, R, G, D, ct_ms, _tree_add(g, g1), gT)
        first = uidx * bpu
        if bpu == 1:
            one = jtu.tree_map(lambda a: a[0], (brecs, dws))
            state, ct_dw = rev_block(state, (first, one[0], one[1]))
            ct_dws = None if ct_dw is None else ct_dw[None]
        else:
            state, ct_dws = jax.lax.scan(
                rev_block, state, (first + jnp.arange(bpu), brecs, dws), reverse=True
            )
        return state, ct_dws

    def rev_segment(state, start_carry, first_local, n, recorded=None):
        """The reverse of units first_local .. first_local+n-1: rerun from ``start_carry``,
        or from their ``recorded`` ``(records, noise)``."""
        first = offset_units + first_local
        uidx = first + jnp.arange(n)
        dws, nvjp = None, None
        if spec.noise is not None:
            # with recorded noise only the pullback is used (XLA drops the unused draws)
            dws, nvjp = jax.vjp(lambda dv: spec.noise(make_P(dv), first, n), dvar0)
        if recorded is not None:
            (brecs, ms_end), dws = recorded
        else:
            P = make_P(dvar0)
            _, (_, (brecs, ms_end)) = jax.lax.scan(
                lambda c, inp: _record_unit(spec, P, c, inp), start_carry, (uidx, dws)
            )
        state, ct_dws = jax.lax.scan(rev_unit, state, (uidx, brecs, ms_end, dws), reverse=True)
        if nvjp is not None:
            (gn,) = nvjp(ct_dws.astype(dws.dtype))
            lam, R, G, D, ct_ms, g, gT = state
            state = (lam, R, G, D, ct_ms, _tree_add(g, gn), gT)
        return state

    n_inner, n_outer, _ = segment_sizes(n_units)
    n_head = (n_outer - 1) * n_inner
    dtype = ct_x.dtype
    R0 = jnp.zeros(buf_shape, dtype)
    if have_direct:
        D0 = ct_buf.at[:, :, :K].add(ct_buf[:, :, ring:]).at[:, :, ring:].set(0.0)
    else:
        D0 = None
    g0 = jtu.tree_map(jnp.zeros_like, dvar0)
    gT0 = jnp.zeros(wT.shape, wT.dtype) if need_w else None
    # the last block's gather reads the still empty ring: zeros
    G0 = (
        jnp.zeros((B, N, K), dtype),
        jnp.zeros(((width, N) if rank_major else (N, width)) + (B, K), dtype) if need_w else None,
    )
    state = (ct_x, R0, G0, D0, ct_ms, g0, gT0)
    state = rev_segment(state, None, n_head, n_units - n_head, recorded=tail)

    def seg_body(state, inp):
        start_carry, first = inp
        return rev_segment(state, start_carry, first, n_inner), None

    state, _ = jax.lax.scan(
        seg_body, state, (starts, n_inner * jnp.arange(n_outer - 1)), reverse=True
    )
    lam, R, _, D, ct_ms, g, gT = state

    # the initial buffer: its values (steps before the run) are read by the first blocks
    buf_perturbed = carry_perturbed[1]
    ct_buf0 = None
    if buf_perturbed or gT is not None:
        t_first = offset_units * (bpu * K)
        z = jnp.int32(0)

        def vblock(st, b):
            R, cb, gT = st
            t0 = t_first - b * K
            ct_pre, sl = gather_future(R, t0)
            slot = (t0 % ring).astype(jnp.int32)
            if D is not None:
                ct_pre = ct_pre + jax.lax.dynamic_slice(D, (z, z, slot), (B, N, K))
            cb = jax.lax.dynamic_update_slice(cb, ct_pre.astype(cb.dtype), (z, z, slot))
            if gT is not None:
                old = jax.lax.dynamic_slice(buf0, (z, z, slot), (B, N, K))
                gT = gT + jnp.einsum(f"{sl_sub},bnk->nf", sl, old)
            R = write_ring(R, jnp.zeros((B, N, K), R.dtype), t0)
            return (R, cb, gT), None

        (R, ct_buf0, gT), _ = jax.lax.scan(
            vblock, (R, jnp.zeros(buf_shape, dtype), gT), 1 + jnp.arange(ring // K)
        )
    if gT is not None:
        g = _tree_add(g, w_T_vjp(gT.astype(wT.dtype))[0])
    ct_leaves = [None] * len(leaves)
    for i, v in zip(var_idx, g):
        ct_leaves[i] = v
    ct_carry0 = (lam, ct_buf0 if buf_perturbed else None, ct_ms)
    return tuple(ct_leaves), ct_carry0, None
