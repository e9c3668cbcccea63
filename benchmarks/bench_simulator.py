"""Benchmark vbt_jax's simulator against vbjax and The Virtual Brain (TVB).

One workload for every tool: Montbrio-Pazo-Roxin (TVB's defaults, eta = -5) on tvb-data's
connectivity_76 (weights / max), delays rint(length / 3 mm/ms / 0.1 ms) steps, stochastic Heun
with dt = 0.1 ms, additive noise nsig = (0.01, 0.02) on (r, V) in TVB's convention (each step
adds sqrt(2 nsig dt) z), constant initial history r = 0.1, V = -2 (the low state), r and V kept
every 1 ms.

W1  one 10 s run at G = 0.1: wall seconds per simulated second.
W2  256 coupling values G in [0, 0.3] x 1 s, as one batch: simulations per second.
W3  jax.grad of a scalar loss (mean squared difference between the time-averaged 1 ms r samples
    and 0.1) with respect to (G, eta[76]) through 2, 10 and 60 s: gradient time over forward
    time, peak memory.

Every measurement runs in a fresh child process (this script with ``--worker``): peak memory
(``ru_maxrss``) then belongs to one configuration, and the peers cannot disturb one another
(importing vbjax rewrites ``XLA_FLAGS``; TVB configures logging). Compilation is timed apart
from the runs, then each run is repeated (at most ``reps`` times, fewer once ``budget_s`` is
spent) and the median is reported.

Usage::

    python benchmarks/bench_simulator.py [--quick] [--only W1,W2,W3] [--no-peers]

Writes ``benchmarks/results/latest.{md,json}`` for a full run (every workload, peers included);
a partial run names its files after what it ran (``latest-W3-no-peers.md``) so that it never
overwrites the full table, and ``--quick`` writes ``quick*.{md,json}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
RESULT_TAG = "@@bench-result "

# ----------------------------------------------------------------------------- the workload
N_REGIONS = 76
DT = 0.1  # ms
SPEED = 3.0  # mm/ms
NSIG = (0.01, 0.02)  # on (r, V); per-step increment sqrt(2 nsig dt) z
X0 = (0.1, -2.0)  # MPR's low state (r, V)
ETA = -5.0
G_W1 = 0.1
W2_G_RANGE = (0.0, 0.3)
SAMPLE_MS = 1.0
LOSS_TARGET = 0.1
VBJAX_GRAD_LIMIT_BYTES = 8e9  # skip a vbjax gradient whose XLA temp estimate exceeds this
W3_TIME_LIMIT_S = 900.0  # skip a gradient whose time, extrapolated linearly, exceeds this
VBJAX_CHUNK_MS = 100.0  # chunk length of vbjax's make_continuation variant
VBJAX_W2_BATCH = 16  # vbjax W2: lax.map over vmapped batches of this size on each device

# targets (reported, never used to choose settings)
W1_TARGET = 3.0  # vbt_jax >= 3x faster than the fastest peer
W2_TARGET = 3.0  # vbt_jax >= 3x vbjax's simulations per second
W3_TIME_TARGET = 3.0  # gradient time <= 3x forward time
W3_MEMORY_TARGET = 2.0  # peak RSS of the longest gradient <= 2x that of the shortest


@dataclasses.dataclass(frozen=True)
class Tool:
    """One way of running the workload.

    Attributes:
        kind: ``"vbt"``, ``"vbjax"``, ``"tvb-numba"`` or ``"tvb-numpy"``.
        rng: vbt_jax's noise generator.
        w2: how W2's batch is run: ``"vmap"``, ``"map"`` (``lax.map``, one simulation at a
            time) or ``"pmap-map"`` (pmap over host devices, ``lax.map`` over vmapped batches).
        chunked: vbjax only: ``make_continuation`` chunks of ``VBJAX_CHUNK_MS``, each
            rematerialised under ``jax.grad``.
    """

    kind: str
    rng: str = "hash"
    w2: str = "vmap"
    chunked: bool = False


TOOLS = {
    "vbt_jax (hash)": Tool("vbt"),
    "vbt_jax (threefry)": Tool("vbt", rng="threefry"),
    "vbt_jax (hash, lax.map)": Tool("vbt", w2="map"),
    "vbjax": Tool("vbjax", w2="pmap-map"),
    "vbjax (chunked)": Tool("vbjax", chunked=True),
    "TVB numba": Tool("tvb-numba"),
    "TVB numpy": Tool("tvb-numpy"),
}
VBT = tuple(name for name, tool in TOOLS.items() if tool.kind == "vbt")
TOOLS_BY_TASK = {
    "W1": ("vbt_jax (hash)", "vbt_jax (threefry)", "vbjax", "TVB numba", "TVB numpy"),
    "W2": VBT + ("vbjax", "TVB numba"),
    "W3": ("vbt_jax (hash)", "vbt_jax (threefry)", "vbjax", "vbjax (chunked)"),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of the workloads (durations in ms) and the repetition policy."""

    w1_ms: float = 10_000.0
    w2_n: int = 256
    w2_ms: float = 1_000.0
    w2_tvb_subset: int = 32  # TVB loops in Python: time every (w2_n // subset)-th value only
    w3_ms: tuple[float, ...] = (2_000.0, 10_000.0, 60_000.0)
    reps: int = 5
    budget_s: float = 120.0  # stop repeating once this is spent (always at least one run)


FULL = Settings()
QUICK = Settings(
    w1_ms=100.0,
    w2_n=8,
    w2_ms=100.0,
    w2_tvb_subset=4,
    w3_ms=(100.0, 200.0, 600.0),
    reps=3,
    budget_s=10.0,
)


# ----------------------------------------------------------------------------- worker helpers
def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far [MB] (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _repeat(fn: Callable[[int], object], settings: Settings) -> tuple[list[float], list, dict]:
    """Time ``fn(rep)``: one warm-up call, then up to ``settings.reps`` calls, fewer once
    ``budget_s`` is spent.

    The warm-up call (first execution: allocation, page faults) is excluded, unless it alone
    takes more than a quarter of the budget: then it is the single measurement.

    Returns:
        (times [s], outputs, {"warm_s": seconds of the excluded call or None}).
    """
    t0 = time.perf_counter()
    out = fn(0)
    warm = time.perf_counter() - t0
    if warm > settings.budget_s / 4:
        return [warm], [out], {"warm_s": None}
    times, outs = [], []
    start = time.perf_counter()
    while len(times) < settings.reps:
        t0 = time.perf_counter()
        outs.append(fn(len(times) + 1))
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > settings.budget_s:
            break
    return times, outs, {"warm_s": warm}


def _summary(times: list[float], compile_s: float | None, warm: dict, **extra) -> dict:
    return {
        "status": "ok",
        "compile_s": compile_s,
        **warm,
        "times_s": times,
        "median_s": statistics.median(times),
        "reps": len(times),
        **extra,
    }


def _connectome():
    import vbt_jax as vbt

    return vbt.tvb_connectivity(N_REGIONS).normalised("max")


def _steps(ms: float) -> int:
    return int(round(ms / DT))


# ----------------------------------------------------------------------------- JAX runners
# Each runner is ``run(G, eta, key) -> (samples (T, 2, N), diverged)`` for a fixed duration.
def _vbt_runner(rng: str, duration_ms: float):
    import jax.numpy as jnp

    import vbt_jax as vbt
    from vbt_jax.models import MontbrioPazoRoxin
    from vbt_jax.monitors import Raw

    conn = _connectome()

    def run(G, eta, key):
        sol = vbt.simulate(
            MontbrioPazoRoxin(eta=eta),
            conn,
            dt=DT,
            duration=duration_ms,
            key=key,
            coupling=vbt.Linear(G=G),
            noise=vbt.Additive(nsig=jnp.asarray(NSIG)),
            monitors=(Raw(period=SAMPLE_MS),),
            speed=SPEED,
            initial_state=jnp.asarray(X0),
            rng=rng,
            on_divergence="flag",
        )
        return sol["raw"], sol.diverged

    return run


def _vbjax_runner(duration_ms: float, chunked: bool):
    """The workload in vbjax: ``make_sdde`` (stochastic Heun over a buffer that holds the
    history followed by the pre-drawn normal samples), ``mpr_dfun`` and ``mpr_r_positive``;
    with ``chunked``, ``make_continuation`` runs it in chunks (vbjax's helper for long runs),
    each chunk rematerialised under ``jax.grad``.

    The coupling follows vbjax's ``delay_apply`` but gathers only r (cv = 0), from a window of
    the buffer with constant indices (gathering with indices computed from the step makes
    ``jax.grad`` store an index array per step: 15 GB of XLA temp through 10 s instead of
    0.9 GB), with TVB's rounded delays and ``W[i, j]`` read as j -> i (``make_delay_helper``
    floors the delays; ``delay_apply`` pairs ``W[j, i]`` with the delay of edge (i, j), which
    is wrong for directed weights). Zero-delay (self) edges read the current state: at the
    corrector stage their slot in ``make_sdde``'s buffer still holds a noise sample.
    """
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import vbjax as vb

    conn = _connectome()
    W = np.asarray(conn.weights)
    lags = np.rint(np.asarray(conn.lengths) / SPEED / DT).astype(np.int32)
    n_hist = int(lags.max())
    now = (lags == 0) & (W != 0)
    w_delayed = jnp.asarray(np.where(now, 0.0, W), jnp.float32)
    w_now = jnp.asarray(np.where(now, W, 0.0), jnp.float32)
    back = jnp.asarray(n_hist - lags)  # row of each edge's delayed value in the window
    src = jnp.asarray(np.tile(np.arange(N_REGIONS), (N_REGIONS, 1)))
    # vbjax adds gfun * sqrt(dt) * z per step: gfun = sqrt(2 nsig) gives TVB's increment
    sigma = jnp.sqrt(2.0 * jnp.asarray(NSIG, jnp.float32))[:, None]
    n_steps, per = _steps(duration_ms), _steps(SAMPLE_MS)
    chunk = _steps(VBJAX_CHUNK_MS) if chunked else n_steps
    if n_steps % chunk:
        raise ValueError(f"duration {duration_ms} ms is not a multiple of {VBJAX_CHUNK_MS} ms")

    def dfun(buf, x, t, p):
        G, theta = p
        window = jax.lax.dynamic_slice(buf, (t - n_hist, 0, 0), (n_hist + 1, 1, N_REGIONS))
        delayed = jnp.sum(w_delayed * window[back, 0, src], axis=1)
        return vb.mpr_dfun(x, (G * (delayed + w_now @ x[0]), 0.0), theta)

    _, loop = vb.make_sdde(DT, n_hist, dfun, sigma, adhoc=vb.mpr_r_positive)
    x0 = jnp.asarray(X0, jnp.float32)[:, None] * jnp.ones((n_hist + 1, 2, N_REGIONS))

    def run_plain(G, eta, key):
        z = jr.normal(key, (n_steps, 2, N_REGIONS), jnp.float32)
        _, xs = loop(jnp.concatenate([x0, z]), (G, vb.mpr_default_theta._replace(eta=eta)))
        return xs[per - 1 :: per]

    def run_chunked(G, eta, key):
        step_chunk = vb.make_continuation(loop, chunk, n_hist, N_REGIONS, 2)
        p = (G, vb.mpr_default_theta._replace(eta=eta))

        @jax.checkpoint
        def one_chunk(buf, k):
            buf, xs = step_chunk(buf, p, k)
            return buf, xs[per - 1 :: per]

        buf0 = jnp.concatenate([x0, jnp.zeros((chunk, 2, N_REGIONS))])
        _, ys = jax.lax.scan(one_chunk, buf0, jr.split(key, n_steps // chunk))
        return ys.reshape((-1, 2, N_REGIONS))

    def run(G, eta, key):
        samples = (run_chunked if chunked else run_plain)(G, eta, key)
        return samples, ~jnp.all(jnp.isfinite(samples))

    return run


def _jax_runner(name: str, duration_ms: float):
    tool = TOOLS[name]
    if tool.kind == "vbjax":
        return _vbjax_runner(duration_ms, tool.chunked)
    return _vbt_runner(tool.rng, duration_ms)


def _jax_w1(tool: str, settings: Settings) -> dict:
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    run = _jax_runner(tool, settings.w1_ms)
    eta = jnp.full((N_REGIONS,), ETA, jnp.float32)
    t0 = time.perf_counter()
    compiled = jax.jit(lambda key: run(G_W1, eta, key)).lower(jr.key(0)).compile()
    compile_s = time.perf_counter() - t0
    times, outs, warm = _repeat(lambda rep: jax.block_until_ready(compiled(jr.key(rep))), settings)
    r_means = [float(np.mean(np.asarray(y)[:, 0])) for y, _ in outs]
    return _summary(
        times,
        compile_s,
        warm,
        per_sim_s=statistics.median(times) / (settings.w1_ms / 1000.0),
        r_means=r_means,
        diverged=sum(bool(d) for _, d in outs),
    )


def _jax_w2(tool: str, settings: Settings) -> dict:
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    run = _jax_runner(tool, settings.w2_ms)
    eta = jnp.full((N_REGIONS,), ETA, jnp.float32)
    n = settings.w2_n
    Gs = jnp.linspace(*W2_G_RANGE, n, dtype=jnp.float32)
    keys = jr.split(jr.key(0), n)

    def one(G, key):
        return run(G, eta, key)

    def batched(G, key):
        return jax.lax.map(lambda a: one(*a), (G, key), batch_size=VBJAX_W2_BATCH)

    mode, n_dev = TOOLS[tool].w2, jax.local_device_count()
    if mode == "pmap-map" and n_dev > 1 and n % n_dev == 0:
        # vbjax's recipe (its bench_vmap.py): pmap over the host devices its import creates;
        # within each, vmapped batches of VBJAX_W2_BATCH (a 128-wide vmap runs 4x slower)
        fn, args = jax.pmap(batched), (Gs.reshape(n_dev, -1), keys.reshape(n_dev, -1))
        batching = f"pmap over {n_dev} devices x lax.map of vmap({VBJAX_W2_BATCH})"
    elif mode == "pmap-map":
        fn, args = jax.jit(batched), (Gs, keys)
        batching = f"lax.map of vmap({VBJAX_W2_BATCH})"
    elif mode == "map":
        fn, args = jax.jit(lambda G, key: jax.lax.map(lambda a: one(*a), (G, key))), (Gs, keys)
        batching = "lax.map, one at a time"
    else:
        fn, args = jax.jit(jax.vmap(one)), (Gs, keys)
        batching = "vmap"
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    times, outs, warm = _repeat(lambda rep: jax.block_until_ready(compiled(*args)), settings)
    median = statistics.median(times)
    return _summary(
        times,
        compile_s,
        warm,
        n_sims=n,
        sims_per_s=n / median,
        batching=batching,
        diverged=int(np.sum(np.asarray(outs[-1][1]))),
    )


def _jax_w3(tool: str, settings: Settings, duration_ms: float, mode: str) -> dict:
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import jax.tree_util as jtu

    run = _jax_runner(tool, duration_ms)

    def loss(params, key):
        G, eta = params
        samples, _ = run(G, eta, key)
        return jnp.mean((jnp.mean(samples[:, 0], axis=0) - LOSS_TARGET) ** 2)

    fn = loss if mode == "forward" else jax.grad(loss)
    params = (jnp.float32(G_W1), jnp.full((N_REGIONS,), ETA, jnp.float32))
    key = jr.key(0)
    rss_setup = _peak_rss_mb()
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(params, key).compile()
    compile_s = time.perf_counter() - t0
    rss_compiled = _peak_rss_mb()
    analysis = compiled.memory_analysis()
    temp = None if analysis is None else int(analysis.temp_size_in_bytes)
    if TOOLS[tool].kind == "vbjax" and temp is not None and temp > VBJAX_GRAD_LIMIT_BYTES:
        return {
            "status": "skipped",
            "note": f"XLA temp estimate {temp / 1e9:.1f} GB > {VBJAX_GRAD_LIMIT_BYTES / 1e9:g} GB",
            "temp_bytes": temp,
        }
    times, outs, warm = _repeat(lambda rep: jax.block_until_ready(compiled(params, key)), settings)
    finite = all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jtu.tree_leaves(outs[-1]))
    return _summary(
        times,
        compile_s,
        warm,
        temp_bytes=temp,
        rss_setup_mb=rss_setup,
        rss_compiled_mb=rss_compiled,
        peak_rss_mb=_peak_rss_mb(),
        finite=finite,
    )


# ----------------------------------------------------------------------------- TVB
def _tvb_simulator(G: float, duration_ms: float, monitor, noise_seed: int = 42):
    from tvb.datatypes.connectivity import Connectivity
    from tvb.simulator import coupling, integrators, models, noise, simulator

    conn = _connectome()
    W = np.asarray(conn.weights, np.float64)
    L = np.asarray(conn.lengths, np.float64)
    centres = np.zeros((N_REGIONS, 3)) if conn.centres is None else np.asarray(conn.centres)
    horizon = int(np.rint(L / SPEED / DT).max()) + 1
    # TVB fills a history shorter than the longest delay with random states: give all of it
    history = np.broadcast_to(np.asarray(X0)[None, :, None, None], (horizon, 2, N_REGIONS, 1))
    sim = simulator.Simulator(
        model=models.MontbrioPazoRoxin(eta=np.array([ETA])),
        connectivity=Connectivity(
            weights=W,
            tract_lengths=L,
            region_labels=np.asarray(conn.labels),
            centres=centres,
            speed=np.array([SPEED]),
        ),
        coupling=coupling.Linear(a=np.array([G])),
        integrator=integrators.HeunStochastic(
            dt=DT, noise=noise.Additive(nsig=np.asarray(NSIG), noise_seed=noise_seed)
        ),
        monitors=[monitor],
        simulation_length=duration_ms,
        initial_conditions=history.copy(),
    )
    sim.configure()
    return sim


def _nb_backend():
    """TVB's numba MPR backend, building its kernel once per simulator object.

    The stock backend renders, ``exec``s and so recompiles its kernel at every ``run_sim``;
    caching the built function lets the timed runs exclude compilation, as for the JAX tools.
    """
    from tvb.simulator.backend.nb_mpr import NbMPRBackend

    class CachedNbMPRBackend(NbMPRBackend):
        def build_py_func(self, template_source, content, name="kernel", **kwargs):
            built = self.__dict__.setdefault("_built", {})
            key = (template_source, id(content["sim"]), content.get("compatibility_mode"), name)
            if key not in built:
                built[key] = super().build_py_func(template_source, content, name, **kwargs)
            return built[key]

    return CachedNbMPRBackend()


def _nb_run(backend, sim, n_steps: int) -> np.ndarray:
    # compatibility_mode: the corrector reuses the predictor's coupling, as TVB's Heun does
    # (otherwise zero-delay self-edges read a not-yet-written buffer slot holding noise)
    ((_, data),) = backend.run_sim(sim, nstep=n_steps, compatibility_mode=True)
    return data[_steps(SAMPLE_MS) - 1 :: _steps(SAMPLE_MS), :, :, 0]


def _tvb_w1(tool: str, settings: Settings) -> dict:
    from tvb.simulator import monitors

    n_steps = _steps(settings.w1_ms)
    if tool == "TVB numba":
        sim = _tvb_simulator(G_W1, settings.w1_ms, monitors.Raw())
        backend = _nb_backend()
        t0 = time.perf_counter()
        _nb_run(backend, sim, 10)
        compile_s = time.perf_counter() - t0
        times, outs, warm = _repeat(lambda rep: _nb_run(backend, sim, n_steps), settings)
    else:
        warm = _tvb_simulator(G_W1, 10 * DT, monitors.SubSample(period=SAMPLE_MS))
        t0 = time.perf_counter()
        warm.run()
        compile_s = time.perf_counter() - t0
        sims = []

        def once(rep):
            sims.append(
                _tvb_simulator(
                    G_W1, settings.w1_ms, monitors.SubSample(period=SAMPLE_MS), noise_seed=rep
                )
            )
            t0 = time.perf_counter()
            ((_, data),) = sims[-1].run()
            return time.perf_counter() - t0, data[:, :, :, 0]

        # configure() is set-up, not simulation: time run() alone
        _, timed, warm = _repeat(once, settings)
        times, outs = [t for t, _ in timed], [d for _, d in timed]
    return _summary(
        times,
        compile_s,
        warm,
        per_sim_s=statistics.median(times) / (settings.w1_ms / 1000.0),
        r_means=[float(np.mean(y[:, 0])) for y in outs],
        diverged=sum(not np.all(np.isfinite(y)) for y in outs),
    )


def _tvb_w2(settings: Settings) -> dict:
    from tvb.simulator import monitors

    Gs = np.linspace(*W2_G_RANGE, settings.w2_n)[:: max(1, settings.w2_n // settings.w2_tvb_subset)]
    # G is baked into the generated kernel as a constant; folding it into the weights keeps
    # one compiled kernel for the whole sweep (same arithmetic: G * sum_j W_ij r_j)
    sim = _tvb_simulator(1.0, settings.w2_ms, monitors.Raw())
    W = np.array(sim.connectivity.weights)
    backend = _nb_backend()
    t0 = time.perf_counter()
    _nb_run(backend, sim, 10)
    compile_s = time.perf_counter() - t0
    n_steps = _steps(settings.w2_ms)

    def sweep(rep):
        diverged = 0
        for G in Gs:
            sim.connectivity.weights = G * W
            diverged += not np.all(np.isfinite(_nb_run(backend, sim, n_steps)))
        return diverged

    times, outs, warm = _repeat(sweep, settings)
    rate = len(Gs) / statistics.median(times)
    return _summary(
        times,
        compile_s,
        warm,
        n_sims=len(Gs),
        sims_per_s=rate,
        batching=f"Python loop over {len(Gs)} of {settings.w2_n} values, one kernel",
        extrapolated_s=settings.w2_n / rate,
        diverged=outs[-1],
    )


# ----------------------------------------------------------------------------- worker entry
def _worker(job: dict) -> dict:
    settings = QUICK if job["quick"] else FULL
    tool, task = job["tool"], job["task"]
    try:
        tvb = TOOLS[tool].kind.startswith("tvb")
        if task == "W1":
            return _tvb_w1(tool, settings) if tvb else _jax_w1(tool, settings)
        if task == "W2":
            return _tvb_w2(settings) if tvb else _jax_w2(tool, settings)
        return _jax_w3(tool, settings, job["duration_ms"], job["mode"])
    except ImportError as e:
        return {"status": "skipped", "note": f"{tool} not available ({type(e).__name__}: {e})"}


def _run_child(job: dict, timeout_s: float = 2400.0) -> dict:
    """Run one job in a fresh interpreter; never raises."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "note": f"timed out after {timeout_s:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG) :])
            result["child_wall_s"] = time.perf_counter() - t0
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "error", "note": f"exit code {proc.returncode}: {tail[:300]}"}


# ----------------------------------------------------------------------------- environment
def _machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "load_average_start": os.getloadavg(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _versions() -> dict:
    out = {}
    for dist in (
        "vbt_jax",
        "jax",
        "jaxlib",
        "equinox",
        "numpy",
        "vbjax",
        "tvb-library",
        "tvb-data",
        "numba",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out["git"] = rev + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["git"] = "unknown"
    return out


# ----------------------------------------------------------------------------- report
def _f(x, fmt: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return format(x, fmt)


def _load(values) -> str:
    return "—" if values is None else "/".join(f"{v:.2f}" for v in values)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return f"{'PASS' if ok else 'FAIL'} ({value:.2f}x)"


def _status_row(tool: str, res: dict, width: int) -> list[str]:
    return [tool, f"{res['status']}: {res.get('note', '')}"] + [""] * (width - 2)


def _report_w1(res: dict, settings: Settings, notes: list[str]) -> str:
    ok = {t: r for t, r in res.items() if r["status"] == "ok"}
    peers = [ok[t]["per_sim_s"] for t in ok if t not in VBT]
    fastest = min(peers) if peers else None
    vbjax = ok.get("vbjax", {}).get("per_sim_s")
    headers = [
        "tool",
        "compile / warm-up s",
        "median s (reps)",
        "s per simulated s",
        "speed-up vs fastest peer",
        "vs vbjax",
        "mean r (sd over reps)",
        "diverged runs",
        f"target: >= {W1_TARGET:g}x fastest peer",
    ]
    rows = []
    for tool, r in res.items():
        if r["status"] != "ok":
            rows.append(_status_row(tool, r, len(headers)))
            continue
        finite = [m for m in r["r_means"] if math.isfinite(m)]
        sd = statistics.stdev(finite) if len(finite) > 1 else None
        mean_r = f"{_f(statistics.fmean(finite), '.4f') if finite else '—'} ({_f(sd, '.1e')})"
        speedup = fastest / r["per_sim_s"] if fastest else None
        rows.append(
            [
                tool,
                _f(r["compile_s"], ".2f"),
                f"{_f(r['median_s'], '.3g')} ({r['reps']})",
                _f(r["per_sim_s"], ".3g"),
                _f(speedup, ".2f"),
                _f(vbjax / r["per_sim_s"] if vbjax else None, ".2f"),
                mean_r,
                f"{r['diverged']} of {r['reps']}",
                _verdict(speedup, W1_TARGET, True) if tool in VBT else "",
            ]
        )
    out = [f"## W1: one {settings.w1_ms / 1000:g} s run, G = {G_W1}", "", _table(headers, rows)]
    out += ["", _agreement(ok, notes)]
    return "\n".join(out)


def _agreement(ok: dict, notes: list[str]) -> str:
    """Do the tools simulate the same thing? Compare mean r with the run-to-run spread."""
    stats = {}
    for tool, r in ok.items():
        finite = [m for m in r["r_means"] if math.isfinite(m)]
        if finite:
            stats[tool] = (statistics.fmean(finite), finite)
    variances = [statistics.variance(v) for _, v in stats.values() if len(v) > 1]
    if len(stats) < 2 or not variances:
        return "Mean-r check: not enough finite runs to compare."
    sd = math.sqrt(statistics.fmean(variances))
    means = {t: m for t, (m, _) in stats.items()}
    spread = max(means.values()) - min(means.values())
    ok_spread = spread <= 4.0 * sd
    text = (
        f"Mean-r check: the tools' mean r span {spread:.2e}; the run-to-run standard deviation "
        f"of one run's mean r (pooled over tools, different noise per run) is {sd:.2e}. "
        f"{'AGREE' if ok_spread else 'DISAGREE'} (criterion: span <= 4 sd)."
    )
    if not ok_spread:
        notes.append("W1 mean r differs between tools by more than the noise: check the setup.")
    return text


def _report_w2(res: dict, settings: Settings, notes: list[str]) -> str:
    ok = {t: r for t, r in res.items() if r["status"] == "ok"}
    peers = [ok[t]["sims_per_s"] for t in ok if t not in VBT]
    fastest = max(peers) if peers else None
    vbjax = ok.get("vbjax", {}).get("sims_per_s")
    headers = [
        "tool",
        "batching",
        "compile s",
        "median s (reps)",
        "simulations/s",
        "vs fastest peer",
        "vs vbjax",
        "diverged",
        f"target: >= {W2_TARGET:g}x vbjax",
    ]
    rows = []
    for tool, r in res.items():
        if r["status"] != "ok":
            rows.append(_status_row(tool, r, len(headers)))
            continue
        median = f"{_f(r['median_s'], '.3g')} ({r['reps']})"
        if "extrapolated_s" in r:
            median += f"; {settings.w2_n} extrapolated: {_f(r['extrapolated_s'], '.3g')}"
        rows.append(
            [
                tool,
                r["batching"],
                _f(r["compile_s"], ".2f"),
                median,
                _f(r["sims_per_s"], ".3g"),
                _f(r["sims_per_s"] / fastest if fastest else None, ".2f"),
                _f(r["sims_per_s"] / vbjax if vbjax else None, ".2f"),
                f"{r['diverged']} of {r['n_sims']}",
                _verdict(r["sims_per_s"] / vbjax if vbjax else None, W2_TARGET, True)
                if tool in VBT
                else "",
            ]
        )
    title = (
        f"## W2: {settings.w2_n} coupling values G in [{W2_G_RANGE[0]}, {W2_G_RANGE[1]}] x "
        f"{settings.w2_ms / 1000:g} s, one batch"
    )
    return "\n".join([title, "", _table(headers, rows)])


def _report_w3(res: dict, settings: Settings, notes: list[str]) -> str:
    headers = [
        "tool",
        "simulated s",
        "forward s (reps)",
        "gradient s (reps)",
        "grad / forward",
        "compile s fwd / grad",
        "peak RSS MB fwd / grad",
        "XLA temp MB fwd / grad",
        "gradient finite",
        f"target: grad <= {W3_TIME_TARGET:g}x forward",
    ]
    rows, memory = [], []
    for tool, by_duration in res.items():
        rss, temp = {}, {}
        for duration, pair in by_duration.items():
            fwd, grad = pair["forward"], pair["grad"]
            if fwd["status"] != "ok" or grad["status"] != "ok":
                bad = grad if grad["status"] != "ok" else fwd
                rows.append(
                    [tool, f"{duration / 1000:g}", f"{bad['status']}: {bad['note']}"]
                    + [""] * (len(headers) - 3)
                )
                continue
            ratio = grad["median_s"] / fwd["median_s"]
            rss[duration] = grad["peak_rss_mb"]
            temp[duration] = grad["temp_bytes"]

            def mb(x):
                return _f(None if x is None else x / 1e6, ".0f")

            rows.append(
                [
                    tool,
                    f"{duration / 1000:g}",
                    f"{_f(fwd['median_s'], '.3g')} ({fwd['reps']})",
                    f"{_f(grad['median_s'], '.3g')} ({grad['reps']})",
                    _f(ratio, ".2f"),
                    f"{_f(fwd['compile_s'], '.1f')} / {_f(grad['compile_s'], '.1f')}",
                    f"{_f(fwd['peak_rss_mb'], '.0f')} / {_f(grad['peak_rss_mb'], '.0f')}",
                    f"{mb(fwd['temp_bytes'])} / {mb(grad['temp_bytes'])}",
                    "yes" if grad["finite"] else "NO (NaN/inf)",
                    _verdict(ratio, W3_TIME_TARGET, False) if tool in VBT else "",
                ]
            )
        lo, hi = min(settings.w3_ms), max(settings.w3_ms)
        if lo in rss and hi in rss:
            growth = rss[hi] / rss[lo]
            verdict = _verdict(growth, W3_MEMORY_TARGET, False) if tool in VBT else f"{growth:.2f}x"
            line = (
                f"- {tool}: peak RSS of the gradient, {hi / 1000:g} s / {lo / 1000:g} s = "
                f"{rss[hi]:.0f} / {rss[lo]:.0f} MB: {verdict}"
                + (f" (target <= {W3_MEMORY_TARGET:g}x)" if tool in VBT else "")
            )
            if temp[hi] and temp[lo]:
                line += (
                    f"; XLA temp {temp[hi] / 1e6:.0f} / {temp[lo] / 1e6:.0f} MB = "
                    f"{temp[hi] / temp[lo]:.1f}x"
                )
            memory.append(line)
    out = [
        "## W3: jax.grad through W1 (loss: mean squared error of time-averaged r vs 0.1; "
        "gradient with respect to G and eta[76])",
        "",
        _table(headers, rows),
    ]
    if memory:
        out += ["", "Memory growth:", *memory]
    return "\n".join(out)


def _markdown(report: dict, settings: Settings) -> str:
    m, v = report["machine"], report["versions"]
    notes: list[str] = list(report["notes"])
    parts = [
        "# vbt_jax simulator benchmark" + (" (--quick: tiny settings)" if report["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['platform']}, "
        f"Python {m['python']}. Load average (1, 5, 15 min) at start "
        f"{_load(m['load_average_start'])}, at end {_load(m.get('load_average_end'))}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "Workload: MPR (TVB defaults, eta -5), connectivity_76 (weights / max), delays "
        f"rint(length / {SPEED:g} mm/ms / {DT:g} ms), stochastic Heun dt {DT:g} ms, additive "
        f"noise nsig {NSIG} on (r, V) (increment sqrt(2 nsig dt) z in every tool), initial "
        f"history (r, V) = {X0}, r and V kept every {SAMPLE_MS:g} ms. JAX tools in float32, TVB "
        "in float64. Times are medians over the repetitions in parentheses (each tool in a "
        "fresh process; compilation timed separately and excluded).",
    ]
    if "W1" in report:
        parts += ["", _report_w1(report["W1"], settings, notes)]
    if "W2" in report:
        parts += ["", _report_w2(report["W2"], settings, notes)]
    if "W3" in report:
        parts += ["", _report_w3(report["W3"], settings, notes)]
    if notes:
        parts += ["", "Notes:", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- main
def _standing_notes(settings: Settings, tasks: list[str], peers: bool) -> list[str]:
    notes = []
    if not peers:
        notes.append("--no-peers: vbjax and TVB were not run; ratios against peers are n/a.")
        return notes
    notes.append(
        "vbjax: make_sdde + mpr_dfun + mpr_r_positive; the coupling gathers r from a window of "
        "its buffer (TVB's rounded delays, W[i, j] from j to i; zero-delay self-edges read the "
        "current state); noise sigma = sqrt(2 nsig) because vbjax adds sigma sqrt(dt) z. "
        f"'vbjax (chunked)' runs make_continuation chunks of {VBJAX_CHUNK_MS:g} ms, each under "
        "jax.checkpoint."
    )
    notes.append(
        "TVB numba: tvb.simulator.backend.nb_mpr with compatibility_mode=True (the corrector "
        "reuses the predictor's coupling, like TVB's Heun); its kernel is built once and reused "
        "(the stock run_sim recompiles at every call), so compile time is excluded as for JAX."
    )
    if "W2" in tasks:
        notes.append(
            "W2 batching: vbt_jax with jax.vmap (the stated workload), plus one row with "
            "lax.map (one simulation at a time); vbjax with the fastest recipe found for it (pmap "
            f"over its host devices, lax.map over vmapped batches of {VBJAX_W2_BATCH}; one "
            "pmap x vmap batch of 256 ran 4x slower)."
        )
        notes.append(
            f"TVB W2: {settings.w2_tvb_subset} of the {settings.w2_n} coupling values were timed "
            "(every k-th value) and the rate extrapolated; G is folded into the weights so one "
            "kernel serves every value (TVB's backend bakes G into the generated code)."
        )
    if "W3" in tasks:
        notes.append(
            "W3: forward and gradient of each duration each ran in their own process; peak RSS "
            "is that process's ru_maxrss (imports, compilation and the run); XLA temp is "
            "compiled.memory_analysis().temp_size_in_bytes. TVB has no gradient. A gradient "
            f"whose time, extrapolated linearly from the next shorter duration, exceeds "
            f"{W3_TIME_LIMIT_S:g} s is skipped (a lower bound: vbjax's unchunked gradient time "
            "grows faster than linearly)."
        )
    return notes


def _w3_tool(tool: str, settings: Settings, child: Callable[..., dict]) -> dict:
    """W3 for one tool, shortest duration first. A duration whose gradient would take longer
    than ``W3_TIME_LIMIT_S`` (linear extrapolation from the last one measured) is skipped, and
    so are the longer ones after it."""
    out, last, skipped = {}, None, None
    for d in sorted(settings.w3_ms):
        if skipped is None and last is not None:
            estimate = last[1] * d / last[0]
            if estimate > W3_TIME_LIMIT_S:
                note = (
                    f"gradient estimated >= {estimate:.0f} s (linear from {last[0] / 1000:g} s) "
                    f"> {W3_TIME_LIMIT_S:g} s"
                )
                skipped = {"status": "skipped", "note": note}
        if skipped is not None:
            out[d] = {"forward": skipped, "grad": skipped}
            continue
        out[d] = {mode: child("W3", tool, duration_ms=d, mode=mode) for mode in ("forward", "grad")}
        if out[d]["grad"]["status"] == "ok":
            last = (d, out[d]["grad"]["median_s"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("--only", default="W1,W2,W3", help="comma-separated subset of W1,W2,W3")
    parser.add_argument("--no-peers", action="store_true", help="run vbt_jax only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(RESULT_TAG + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0

    tasks = [t.strip().upper() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TOOLS_BY_TASK))
    if unknown:
        parser.error(f"--only: unknown workload(s) {unknown}; choose from W1, W2, W3")
    settings = QUICK if args.quick else FULL
    report: dict = {
        "quick": args.quick,
        "machine": _machine(),
        "versions": _versions(),
        "settings": dataclasses.asdict(settings),
        "notes": _standing_notes(settings, tasks, not args.no_peers),
    }

    def child(task: str, tool: str, **extra) -> dict:
        label = f"[{task}] {tool} " + " ".join(f"{k}={v}" for k, v in extra.items())
        print(label + " ...", file=sys.stderr, flush=True)
        res = _run_child({"task": task, "tool": tool, "quick": args.quick, **extra})
        print(f"{label}: {res['status']} {res.get('note', '')}", file=sys.stderr, flush=True)
        return res

    for task in ("W1", "W2", "W3"):
        if task not in tasks:
            continue
        tools = [t for t in TOOLS_BY_TASK[task] if t in VBT or not args.no_peers]
        if task == "W3":
            report[task] = {tool: _w3_tool(tool, settings, child) for tool in tools}
        else:
            report[task] = {tool: child(task, tool) for tool in tools}
    report["machine"]["load_average_end"] = os.getloadavg()

    text = _markdown(report, settings)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "latest"
    if set(tasks) != {"W1", "W2", "W3"}:
        stem += "-" + "-".join(t for t in ("W1", "W2", "W3") if t in tasks)
    if args.no_peers:
        stem += "-no-peers"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
