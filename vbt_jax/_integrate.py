"""``simulate``: integrate a neural mass network with delays and noise under one jitted scan."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax import Array

from . import _rng
from ._adjoint import LoopSpec, integrate, transpose_edges
from ._delays import DelayPlan, is_concrete, plan_delays
from ._errors import SimulationError
from ._noise import Additive
from ._solvers import get_solver
from .monitors._base import AbstractMonitor, Context, sample_times
from .monitors.raw import Raw


class SimState(eqx.Module):
    """Everything needed to continue a run exactly where it stopped (``simulate(resume=...)``).

    Attributes:
        state: ``(n_states, N)`` model state.
        buffer: the delay buffer ``(n_buffered, N, ring + block)`` of coupled values.
        monitor_states: the monitors' running states (e.g. the haemodynamic state).
        step: number of steps already simulated (sets the noise counter and the buffer slot).
    """

    state: Array
    buffer: Array
    monitor_states: tuple
    step: Array


class Solution(eqx.Module):
    """What :func:`simulate` returns.

    Attributes:
        ys: monitor name -> samples (first axis time).
        ts: monitor name -> sample times [ms] (end of each sampling window).
        final_state: ``(n_states, N)`` state at the end of the run.
        final: a :class:`SimState` to continue the run with ``simulate(..., resume=final)``.
        diverged: ``True`` where the run produced NaN/inf (only returned when
            ``on_divergence="flag"``; with the default ``"raise"`` a diverging run raises).
        labels: monitor name -> names of the output's variable axis (static).
        dt, block: the step [ms] and the coupling block length [steps] that were used.
    """

    ys: dict[str, Array]
    ts: dict[str, Array]
    final_state: Array
    final: SimState
    diverged: Array
    labels: dict[str, tuple[str, ...]] = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    block: int = eqx.field(static=True)

    def __getitem__(self, name: str) -> Array:
        try:
            return self.ys[name]
        except KeyError:
            raise KeyError(f"no monitor named {name!r}; have {sorted(self.ys)}") from None


_ADJOINTS = ("custom", "autodiff")

_DIVERGED = (
    "simulation diverged (NaN/inf): lower the coupling, noise or dt, or pass "
    "on_divergence='flag' to get a flag instead of an error"
)


@jax.custom_vjp
def _guard(y, bad):
    """``y``, raising at run time if ``bad``; under reverse-mode differentiation the backward
    pass raises too, so a gradient of a diverged run is never returned silently."""
    return eqx.error_if(y, bad, _DIVERGED)


def _guard_fwd(y, bad):
    return _guard(y, bad), bad


def _guard_bwd(bad, ct):
    return eqx.error_if(ct, bad, _DIVERGED), None


_guard.defvjp(_guard_fwd, _guard_bwd)


def _region_local(model, coupling, solver, zero_mode: str) -> bool:
    """Whether one step maps each region's state to its next state without reading the other
    regions' current states (given the delayed input and the noise): the model, the coupling
    and the solver each declare ``region_local`` on their class, and no zero-delay edge joins
    two different regions."""
    declared = all(getattr(type(x), "region_local", False) for x in (model, coupling, solver))
    return declared and zero_mode in ("none", "diag")


def _steps(value: float, dt: float, what: str) -> int:
    n = value / dt
    k = round(n)
    if k < 1 or abs(n - k) > 1e-6 * max(1.0, n):
        raise SimulationError(
            f"{what}={value} ms is not a positive whole number of steps dt={dt} ms"
        )
    return k


def _cast_floats(tree, dtype):
    def cast(x):
        if isinstance(x, jax.Array | np.ndarray) and jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.asarray(x, dtype)
        return x

    return jtu.tree_map(cast, tree)


def simulate(
    model,
    connectome,
    *,
    dt: float = 0.1,
    duration: float = 1000.0,
    key: Array | None = None,
    coupling=None,
    noise: Additive | None = None,
    solver="heun",
    monitors: tuple[AbstractMonitor, ...] | AbstractMonitor = (Raw(),),
    speed: float = 3.0,
    initial_state: Array | None = None,
    history: Array | None = None,
    dtype=jnp.float32,
    rng: str = "hash",
    block: int | None = None,
    max_delay: int | None = None,
    checkpoint: bool = True,
    on_divergence: str = "raise",
    resume: SimState | None = None,
    unroll: int | bool = True,
    adjoint: str = "custom",
) -> Solution:
    """Simulate a network of neural masses coupled through a connectome with conduction delays.

    Composable with ``jax.jit``, ``jax.vmap`` and ``jax.grad`` (over model, coupling and noise
    parameters, connectome weights, initial states and keys). Memory does not grow with the
    step count except through the monitors' samples; reverse-mode gradients rematerialise
    segments so their memory grows roughly with the square root of the step count (forward-mode
    differentiation needs ``checkpoint=False``).

    Args:
        model: a neural mass model (``vbt_jax.models``).
        connectome: a :class:`~vbt_jax.Connectome` (weights ``W[i, j]`` from ``j`` to ``i``,
            lengths in mm).
        dt: integration step [ms].
        duration: simulated time [ms]; rounded down to a whole number of the monitors' common
            update unit.
        key: PRNG key for the noise and, when ``initial_state`` is not given, the random initial
            state (drawn from the model's ``state_ranges``, as TVB does).
        coupling: coupling function (default: the model's :meth:`default_coupling`).
        noise: :class:`~vbt_jax.Additive` noise, or ``None`` for a deterministic run.
        solver: ``"heun"`` (default) or ``"euler"``, or a solver instance.
        monitors: one monitor or a tuple of them (``Raw``, ``TemporalAverage``, ``Bold``, ``EEG``).
        speed: conduction speed [mm/ms]; delays are ``rint(lengths / speed / dt)`` steps.
        initial_state: ``(n_states, N)`` or ``(n_states,)`` state at t=0, used as constant history.
        history: ``(H, n_states, N)`` states at t = -(H-1)dt ... 0 (oldest first); ``H`` must
            exceed the longest delay. Overrides ``initial_state``.
        dtype: ``jnp.float32`` (default) or ``jnp.float64`` (needs ``jax_enable_x64``).
        rng: ``"hash"`` (fast counter-based, default) or ``"threefry"``; see ``vbt_jax._rng``.
        block: steps per coupling block (default: the largest allowed); needed, with
            ``max_delay`` (steps), only when lengths or speed are traced.
        checkpoint: rematerialise segments under reverse-mode differentiation, which then uses
            a hand-written adjoint of the loop (``vbt_jax._adjoint``: about 3x the forward
            cost). ``False`` stores every step's residuals and lets JAX differentiate the loop
            itself (more memory, slower); it is also what forward-mode ``jax.jvp``/``jacfwd``
            through ``simulate`` needs.
        adjoint: how reverse-mode differentiation goes through the loop when ``checkpoint``:
            ``"custom"`` (default) uses the hand-written adjoint; ``"autodiff"`` lets JAX
            differentiate the checkpointed loop itself (the reference the custom adjoint is
            tested against). Both give the same gradient up to the order of floating-point
            sums. The custom adjoint's reverse step uses per-region Jacobians only when the
            model, coupling and solver classes declare ``region_local = True``.
        unroll: how many steps of a coupling block are unrolled in the compiled loop (``True``:
            all; fastest run, slower compile; ``1``: quickest compile).
        on_divergence: ``"raise"`` (default; raises at run time if any value is NaN/inf) or
            ``"flag"`` (return ``Solution.diverged`` instead, e.g. for parameter sweeps).
        resume: ``Solution.final`` of an earlier call with the same model, connectome, dt,
            monitors and key: the run continues exactly (same noise, delays and monitor
            states) as if it had been one call. Used for progress reporting and to resume
            interrupted long runs.

    Returns:
        A :class:`Solution`.

    Raises:
        SimulationError: inconsistent arguments (raised before compiling).
        RuntimeError: with ``on_divergence="raise"``, a NaN/inf in the run, raised when the
            compiled program runs (``equinox.EquinoxRuntimeError``, a ``RuntimeError``;
            ``vbt simulate`` reports it as :class:`~vbt_jax.DivergenceError`).
    """
    # ---------------------------------------------------------------- validation (no tracing)
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64):
        raise SimulationError(f"dtype must be float32 or float64, got {dtype}")
    if dtype == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise SimulationError(
            "dtype=float64 needs 64-bit JAX: run jax.config.update('jax_enable_x64', True) first"
        )
    if is_concrete(dt) and not dt > 0:
        raise SimulationError(f"dt must be > 0 ms, got {dt}")
    if not duration > 0:
        raise SimulationError(f"duration must be > 0 ms, got {duration}")
    if isinstance(monitors, AbstractMonitor):
        monitors = (monitors,)
    monitors = tuple(monitors)
    if not monitors:
        raise SimulationError("monitors is empty: give at least one monitor, e.g. Raw()")
    names = [m.name for m in monitors]
    if len(set(names)) != len(names):
        raise SimulationError(f"monitor names must be unique, got {names}")
    if rng not in ("hash", "threefry"):
        raise SimulationError(f"rng must be 'hash' or 'threefry', got {rng!r}")
    if adjoint not in _ADJOINTS:
        raise SimulationError(f"adjoint must be one of {_ADJOINTS}, got {adjoint!r}")
    if on_divergence not in ("raise", "flag"):
        raise SimulationError(f"on_divergence must be 'raise' or 'flag', got {on_divergence!r}")
    W = connectome.weights
    N = W.shape[-1]
    if W.shape != (N, N):
        raise SimulationError(f"connectome weights must be (N, N), got {W.shape}")
    S = model.n_states
    if noise is not None and key is None:
        raise SimulationError("noise is set but key is None: pass key=jax.random.key(seed)")
    if initial_state is None and history is None and key is None and resume is None:
        raise SimulationError("give initial_state, history or a key (for a random initial state)")
    solver = get_solver(solver)
    coupling = model.default_coupling() if coupling is None else coupling
    cvars = model.coupling_vars()
    C = len(cvars)
    B = coupling.n_buffered(C)

    sample_steps = [_steps(m.period, dt, f"monitor {m.name!r} period") for m in monitors]
    grid_steps = [_steps(m.grid_period(), dt, f"monitor {m.name!r} grid period") for m in monitors]
    unit = math.gcd(*sample_steps, *grid_steps)
    n_units = _steps(duration, dt, "duration") // unit
    if n_units < 1:
        raise SimulationError(
            f"duration={duration} ms is shorter than the monitors' update unit ({unit * dt} ms)"
        )
    per_sample = [s // unit for s in sample_steps]
    for m, k in zip(monitors, per_sample):
        if n_units // k < 1:
            raise SimulationError(
                f"duration={duration} ms gives no sample for monitor {m.name!r} "
                f"(period {m.period} ms)"
            )

    plan: DelayPlan = plan_delays(
        W, connectome.lengths, speed=speed, dt=dt, unit=unit, block=block, max_delay=max_delay
    )
    K, ring = plan.block, plan.ring
    blocks_per_unit = unit // K

    if history is not None:
        history = jnp.asarray(history, dtype)
        if history.ndim != 3 or history.shape[1:] != (S, N):
            raise SimulationError(f"history must be (H, {S}, {N}), got {history.shape}")
        if history.shape[0] < plan.max_delay + 1:
            raise SimulationError(
                f"history has {history.shape[0]} steps; the longest delay needs "
                f"{plan.max_delay + 1}"
            )
    elif initial_state is not None:
        x0 = jnp.asarray(initial_state, dtype)
        if x0.shape == (S,):
            x0 = jnp.broadcast_to(x0[:, None], (S, N))
        if x0.shape != (S, N):
            raise SimulationError(f"initial_state must be ({S}, {N}) or ({S},), got {x0.shape}")
        history = x0[None]
    ctx = Context(model=model, n_regions=N, dt=dt, block=K, unit=unit, dtype=dtype)

    # ---------------------------------------------------------------- set-up (traceable)
    model = _cast_floats(model, dtype)
    coupling = _cast_floats(coupling, dtype)
    W = jnp.asarray(W, dtype)
    key_init = key_noise = None
    if key is not None:
        key_init, key_noise = jax.random.split(key)
    if history is None and resume is None:
        history = model.random_state(key_init, N, dtype)[None]
    if resume is not None:
        history = resume.state[None]
    x0 = history[-1]
    cvar_idx = np.asarray(cvars)

    w_edges = plan.edge_weights(W).astype(dtype)  # (N, E)
    w_zero = plan.zero_weights(W)
    rowsum = W.sum(axis=1)
    if noise is not None:
        dw_scale = noise.increment_scale(dt, S, N, dtype)
        words = _rng.key_words(key_noise) if rng == "hash" else None

    # delay buffer: state at step s lives in slot (s - 1) mod ring; slots ring..ring+K-1 mirror
    # slots 0..K-1 so every K-long read is contiguous
    H = history.shape[0]
    s_hist = np.arange(-(ring - 1), 1)  # steps held initially
    rows = np.clip(H - 1 + s_hist, 0, H - 1)
    slots = (s_hist - 1) % ring
    order = np.argsort(slots)
    hist_c = history[rows[order]][:, cvar_idx]  # (ring, C, N) in slot order
    pre_hist = jax.vmap(coupling.pre)(hist_c)  # (ring, B, N)
    buf0 = jnp.transpose(pre_hist, (1, 2, 0)).astype(dtype)  # (B, N, ring)
    buf0 = jnp.concatenate([buf0, buf0[:, :, :K]], axis=2)

    dly = jnp.asarray(plan.dly)
    src = jnp.asarray(plan.src, jnp.int32)

    # every traced input of the loop travels in P, so that the custom adjoint sees it
    loop_inputs = dict(
        model=model,
        coupling=coupling,
        monitors=monitors,
        ctx_model=ctx.model,
        w_edges=w_edges,
        w_zero=w_zero,
        rowsum=rowsum,
        dly=dly,
        dw_scale=dw_scale if noise is not None else None,
        words=words if noise is not None else None,
        key_noise=key_noise if noise is not None and rng != "hash" else None,
    )
    dyn_inputs, static_inputs = eqx.partition(loop_inputs, eqx.is_array)
    dyn_leaves, dyn_def = jtu.tree_flatten(dyn_inputs)

    def make_inputs(leaves):
        return eqx.combine(jtu.tree_unflatten(dyn_def, list(leaves)), static_inputs)

    def context(P):
        return Context(model=P["ctx_model"], n_regions=N, dt=dt, block=K, unit=unit, dtype=dtype)

    def zero_part(P, pc):
        if plan.zero_mode == "diag":
            return pc * P["w_zero"]
        if plan.zero_mode in ("dense", "dense_traced"):
            return pc @ P["w_zero"].T
        return 0.0

    def gather_block(P, buf, t0):
        start = ((t0 - P["dly"] - 1) % ring).astype(jnp.int32)  # (N, E)

        def one(s, j):
            return jax.lax.dynamic_slice(buf, (jnp.int32(0), j, s), (B, 1, K))[:, 0, :]

        sl = jax.vmap(jax.vmap(one))(start, src)  # (N, E, B, K)
        return jnp.einsum("nebk,ne->bnk", sl, P["w_edges"])

    def noise_for(P, first_unit, n):
        """Noise increments of units first_unit .. first_unit+n-1: (n, blocks, K, S, N)."""
        first_block = first_unit * blocks_per_unit
        shape = (n * blocks_per_unit, K, S, N)
        if rng == "hash":
            z = _rng.hash_normal(P["words"], first_block, shape, dtype)
        else:
            z = _rng.threefry_normal(P["key_noise"], first_block, shape, dtype)
        return (z * P["dw_scale"]).reshape((n, blocks_per_unit, K, S, N))

    def one_step(P, x, h, dw):
        coupling, model = P["coupling"], P["model"]
        xc = x[cvar_idx]
        c = coupling.post(h + zero_part(P, coupling.pre(xc)), xc, P["rowsum"])
        return solver.step(model, x, c, dw, dt)

    def pre(P, x):
        return P["coupling"].pre(x[cvar_idx])

    def block_core(P, x, buf, bidx, dws):
        t0 = bidx * K
        hist = gather_block(P, buf, t0)  # (B, N, K)

        def scan_step(x, inp):
            h, dw = inp
            x = one_step(P, x, h, dw)
            return x, (x, pre(P, x))

        hs = jnp.moveaxis(hist, -1, 0)  # (K, B, N)
        x, (traj, pres) = jax.lax.scan(scan_step, x, (hs, dws), unroll=unroll)
        new = jnp.moveaxis(pres, 0, -1).astype(dtype)  # (B, N, K)
        slot = (t0 % ring).astype(jnp.int32)
        buf = jax.lax.dynamic_update_slice(buf, new, (jnp.int32(0), jnp.int32(0), slot))
        buf = jax.lax.dynamic_update_slice(
            buf, new, (jnp.int32(0), jnp.int32(0), jnp.where(slot == 0, jnp.int32(ring), slot))
        )
        return x, traj, hist, buf

    def mon_block(P, mstates, traj):
        ctx = context(P)
        return tuple(m.accumulate(ms, traj, ctx) for m, ms in zip(P["monitors"], mstates))

    def mon_unit(P, mstates, uidx):
        ctx = context(P)
        new_ms, ys = [], []
        for m, ms, k in zip(P["monitors"], mstates, per_sample):
            ms = m.end_unit(ms, ctx)
            y, reset = m.sample(ms, ctx)
            if k > 1:
                due = (uidx + 1) % k == 0
                reset = jtu.tree_map(lambda a, b: jnp.where(due, a, b), reset, ms)
            new_ms.append(reset)
            ys.append(y)
        return tuple(new_ms), tuple(ys)

    def run_block(P, carry, inp):
        bidx, dws = inp
        x, buf, mstates = carry
        x, traj, _, buf = block_core(P, x, buf, bidx, dws)
        return (x, buf, mon_block(P, mstates, traj)), None

    def run_unit(P, carry, inp):
        uidx, dws = inp
        first = uidx * blocks_per_unit
        if blocks_per_unit == 1:
            carry, _ = run_block(P, carry, (first, None if dws is None else dws[0]))
        else:
            bidx = first + jnp.arange(blocks_per_unit)
            carry, _ = jax.lax.scan(lambda c, i: run_block(P, c, i), carry, (bidx, dws))
        x, buf, mstates = carry
        mstates, ys = mon_unit(P, mstates, uidx)
        return (x, buf, mstates), ys

    def edges_transposed(P):
        return P["w_edges"][n_idx_T, e_idx_T] * mask_T, jnp.asarray(P["dly"])[n_idx_T, e_idx_T]

    dst_T, n_idx_T, e_idx_T, mask_T = transpose_edges(plan.src, plan.mask)
    spec = LoopSpec(
        make=make_inputs,
        run_unit=run_unit,
        noise=None if noise is None else noise_for,
        block_core=block_core,
        mon_block=mon_block,
        mon_unit=mon_unit,
        step=one_step,
        pre=pre,
        edges_T=edges_transposed,
        edge_weights=lambda P: P["w_edges"],
        dst_T=dst_T,
        block=K,
        ring=ring,
        blocks_per_unit=blocks_per_unit,
        unroll=unroll,
        local=_region_local(model, coupling, solver, plan.zero_mode),
    )

    mstates0 = tuple(m.init(ctx) for m in monitors)
    offset = jnp.zeros((), jnp.int32)
    if resume is not None:
        if resume.buffer.shape != buf0.shape:
            raise SimulationError(
                f"resume.buffer has shape {resume.buffer.shape}, this run needs {buf0.shape}: "
                "resume with the same model, coupling, connectome, speed, dt and monitors"
            )
        if jtu.tree_structure(resume.monitor_states) != jtu.tree_structure(mstates0):
            raise SimulationError("resume.monitor_states do not match these monitors")
        x0, buf0, mstates0 = resume.state, resume.buffer, resume.monitor_states
        offset = jnp.asarray(resume.step, jnp.int32)
        if is_concrete(resume.step):
            for m, p in zip(monitors, sample_steps):
                if int(resume.step) % p:
                    raise SimulationError(
                        f"resume.step={int(resume.step)} is not a whole number of monitor "
                        f"{m.name!r} periods ({p} steps): split runs at multiples of every period"
                    )
    offset_units = offset // unit

    carry0 = (x0, buf0, mstates0)
    (xf, buff, msf), ys = integrate(
        spec, dyn_leaves, carry0, offset_units, n_units, checkpoint, adjoint == "custom"
    )

    out_ys, out_ts, labels = {}, {}, {}
    diverged = ~jnp.all(jnp.isfinite(xf))
    for m, y, k, p in zip(monitors, ys, per_sample, sample_steps):
        if k > 1:
            y = y[k - 1 :: k]
        y = m.finalize(y, ctx)
        diverged = diverged | ~jnp.all(jnp.isfinite(y))
        out_ys[m.name] = y
        out_ts[m.name] = jnp.asarray(sample_times(p, y.shape[0], dt), dtype) + offset * dt
        labels[m.name] = m.labels(ctx)
    if plan.traced:
        dd = jnp.rint(jnp.asarray(connectome.lengths) / speed / dt)
        bad = jnp.any(((dd > 0) & (dd < K)) | (dd > plan.max_delay))
        msg = f"a traced delay is below block={K} steps or above max_delay={plan.max_delay}"
        xf = eqx.error_if(xf, bad, msg)
        out_ys = {k: eqx.error_if(v, bad, msg) for k, v in out_ys.items()}
    if on_divergence == "raise":
        # attach the check to every output, so that it runs whichever output is used
        xf = _guard(xf, diverged)
        out_ys = {k: _guard(v, diverged) for k, v in out_ys.items()}
    final = SimState(state=xf, buffer=buff, monitor_states=msf, step=offset + n_units * unit)
    return Solution(
        ys=out_ys,
        ts=out_ts,
        final_state=xf,
        final=final,
        diverged=diverged,
        labels=labels,
        dt=dt,
        block=K,
    )
