"""The integrator against independent references: a plain NumPy loop, exact delays, resumption."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax.models import AbstractModel, MontbrioPazoRoxin
from vbt_jax.monitors import Raw, TemporalAverage


def _numpy_mpr_heun(W, L, x0, G, dt, n_steps, speed=3.0, euler=False):
    """TVB's deterministic scheme written as directly as possible, float64, no blocking."""
    d = np.rint(L / speed / dt).astype(int)
    n = W.shape[0]
    past = [x0[0].copy() for _ in range(d.max() + 1)]  # past[-1 - k] = r k steps ago
    rows, cols = np.nonzero(W)

    def f(x, c):
        r, V = x
        return np.stack([1 / np.pi + 2 * V * r, V * V - np.pi**2 * r * r - 5 + 15 * r + c])

    x, out = x0.copy(), []
    for _ in range(n_steps):
        c = np.zeros(n)
        for i, j in zip(rows, cols):
            c[i] += W[i, j] * past[-1 - d[i, j]][j]
        c *= G
        f1 = f(x, c)
        if euler:
            x = x + dt * f1
        else:
            p = x + dt * f1
            p[0] = np.maximum(p[0], 0)
            x = x + 0.5 * dt * (f1 + f(p, c))
        x[0] = np.maximum(x[0], 0)
        past.append(x[0].copy())
        past.pop(0)
        out.append(x.copy())
    return np.array(out)


@pytest.mark.parametrize("solver", ["heun", "euler"])
def test_matches_plain_numpy_loop_with_delays(x64, solver):
    conn = vbt.tvb_connectivity(76).normalised("max")
    W, L = np.asarray(conn.weights), np.asarray(conn.lengths)
    rng = np.random.default_rng(0)
    x0 = np.stack([rng.uniform(0, 0.3, 76), rng.uniform(-2, -1, 76)])
    n_steps = 1200  # 120 ms: more than twice the longest delay (51 ms), so the ring wraps
    ref = _numpy_mpr_heun(W, L, x0, 0.4, 0.1, n_steps, euler=solver == "euler")
    # a 0.1 ms monitor forces one-step blocks; a 1 ms monitor lets coupling run in blocks of 10
    for period, block in ((0.1, 1), (1.0, 10)):
        sol = vbt.simulate(
            MontbrioPazoRoxin(),
            conn,
            dt=0.1,
            duration=n_steps * 0.1,
            coupling=vbt.Linear(G=0.4),
            initial_state=x0,
            monitors=Raw(period=period),
            dtype=jnp.float64,
            solver=solver,
        )
        assert sol.block == block
        expected = ref[block - 1 :: block]
        np.testing.assert_allclose(np.asarray(sol["raw"]), expected, rtol=0, atol=1e-12)


class _Leak(AbstractModel):
    """dx/dt = -x / tau + c: the simplest model to watch a pulse travel."""

    tau: float = 5.0
    state_names = ("x",)
    state_ranges = {"x": (0.0, 1.0)}
    parameter_ranges = {"tau": (1.0, 10.0)}
    bold_var = "x"
    eeg_var = "x"

    def dfun(self, state, coupling):
        return -state / self.tau + coupling[0]


@pytest.mark.parametrize("delay_steps", [1, 7, 16, 23, 40])
def test_impulse_arrives_after_exactly_the_delay(delay_steps):
    dt, speed = 0.1, 2.0
    W = np.array([[0.0, 0.0], [1.0, 0.0]])  # node 0 drives node 1
    L = np.full((2, 2), delay_steps * speed * dt)
    conn = vbt.Connectome(W, L, labels=("a", "b"))
    history = np.zeros((delay_steps + 1, 1, 2))
    history[-1, 0, 0] = 1.0  # node 0 jumps to 1 at t = 0
    sol = vbt.simulate(
        _Leak(),
        conn,
        dt=dt,
        duration=12 * delay_steps * dt,
        speed=speed,
        history=history,
        monitors=Raw(period=dt),
        solver="euler",
    )
    x1 = np.asarray(sol["raw"][:, 0, 1])  # sample k is the state after k + 1 steps
    first = int(np.argmax(x1 != 0))
    # coupling at step n reads node 0 at step n - d: nonzero from n = d, visible after it
    assert first == delay_steps
    # Euler by hand: x0(n) = (1 - a)^n with a = dt / tau, and x1(n) = dt (n - d) (1 - a)^(n-1-d)
    n = np.arange(1, x1.size + 1)
    a = dt / 5.0
    expected = np.where(
        n > delay_steps, dt * (n - delay_steps) * (1 - a) ** (n - 1 - delay_steps), 0
    )
    np.testing.assert_allclose(x1, expected, rtol=1e-5, atol=1e-7)


def _noisy_kwargs():
    return dict(
        dt=0.1,
        initial_state=jnp.array([0.1, -2.0]),
        coupling=vbt.Linear(G=0.2),
        noise=vbt.Additive(jnp.array([0.01, 0.02])),
    )


def test_resume_is_exact_and_same_key_same_result():
    conn = vbt.tvb_connectivity(76).normalised("max")
    mons = (Raw(period=1.0), TemporalAverage(period=10.0), vbt.monitors.Bold(period=720.0))
    kw = dict(_noisy_kwargs(), monitors=mons, key=jr.key(3))
    full = vbt.simulate(MontbrioPazoRoxin(), conn, duration=2880.0, **kw)
    again = vbt.simulate(MontbrioPazoRoxin(), conn, duration=2880.0, **kw)
    a = vbt.simulate(MontbrioPazoRoxin(), conn, duration=1440.0, **kw)
    b = vbt.simulate(MontbrioPazoRoxin(), conn, duration=1440.0, resume=a.final, **kw)
    for name in ("raw", "tavg", "bold"):
        np.testing.assert_array_equal(np.asarray(full[name]), np.asarray(again[name]))
        joined = np.concatenate([np.asarray(a[name]), np.asarray(b[name])])
        np.testing.assert_array_equal(joined, np.asarray(full[name]))
        np.testing.assert_allclose(
            np.concatenate([a.ts[name], b.ts[name]]), np.asarray(full.ts[name]), rtol=1e-6
        )
    other = vbt.simulate(MontbrioPazoRoxin(), conn, duration=2880.0, **{**kw, "key": jr.key(4)})
    assert not np.allclose(np.asarray(other["raw"]), np.asarray(full["raw"]))


def test_temporal_average_is_mean_of_raw():
    conn = vbt.tvb_connectivity(76).normalised("max")
    sol = vbt.simulate(
        MontbrioPazoRoxin(),
        conn,
        duration=200.0,
        key=jr.key(0),
        monitors=(Raw(period=0.1), TemporalAverage(period=5.0)),
        **_noisy_kwargs(),
    )
    raw = np.asarray(sol["raw"], np.float64).reshape(40, 50, 2, 76).mean(axis=1)
    np.testing.assert_allclose(np.asarray(sol["tavg"]), raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(sol.ts["tavg"]), 5.0 * np.arange(1, 41), rtol=1e-6)


def test_divergence_is_reported():
    conn = vbt.tvb_connectivity(76).normalised("max")
    kw = dict(dt=0.1, duration=400.0, initial_state=jnp.array([1.5, 1.0]))
    kw["coupling"] = vbt.Linear(G=3.0)
    with pytest.raises(RuntimeError, match="diverged"):
        jax.block_until_ready(vbt.simulate(MontbrioPazoRoxin(), conn, **kw).ys)
    sol = vbt.simulate(MontbrioPazoRoxin(), conn, on_divergence="flag", **kw)
    assert bool(sol.diverged)

    # the check must survive jit + grad when only a monitor output is used
    def loss(G):
        s = vbt.simulate(MontbrioPazoRoxin(), conn, **{**kw, "coupling": vbt.Linear(G=G)})
        return jnp.mean(s["raw"])

    with pytest.raises(RuntimeError, match="diverged"):
        jax.block_until_ready(jax.jit(jax.grad(loss))(3.0))
    ok = vbt.simulate(
        MontbrioPazoRoxin(),
        conn,
        on_divergence="flag",
        **{**kw, "coupling": vbt.Linear(G=0.1), "initial_state": jnp.array([0.1, -2.0])},
    )
    assert not bool(ok.diverged)


def test_float64_and_float32_kept(x64):
    conn = vbt.tvb_connectivity(76).normalised("max")
    for dtype in (jnp.float32, jnp.float64):
        sol = vbt.simulate(
            MontbrioPazoRoxin(), conn, duration=20.0, key=jr.key(0), dtype=dtype, **_noisy_kwargs()
        )
        assert sol["raw"].dtype == dtype and sol.final_state.dtype == dtype


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dtype=jnp.float64), "jax_enable_x64"),
        (dict(monitors=Raw(period=0.25)), "period"),
        (dict(duration=0.05), "duration"),
        (dict(history=np.zeros((3, 2, 76))), "history has 3 steps"),
        (dict(initial_state=np.zeros((3,))), "initial_state"),
        (dict(noise=vbt.Additive(0.01), key=None), "key"),
        (dict(rng="mt"), "rng"),
        (dict(monitors=(Raw(), Raw())), "unique"),
    ],
)
def test_bad_arguments_are_named_before_compiling(kwargs, match):
    conn = vbt.tvb_connectivity(76).normalised("max")
    base = dict(duration=10.0, initial_state=jnp.array([0.1, -2.0]), key=jr.key(0), dt=0.1)
    base.update(kwargs)
    with pytest.raises(vbt.SimulationError, match=match):
        vbt.simulate(MontbrioPazoRoxin(), conn, **base)


def test_vmap_over_subjects_with_different_delays():
    base = vbt.tvb_connectivity(76).normalised("max")
    rng = np.random.default_rng(1)
    W1, L1 = np.asarray(base.weights), np.asarray(base.lengths)
    W2 = W1 * rng.uniform(0.5, 1.5, W1.shape)
    L2 = L1 * 1.1
    Ws, Ls = jnp.asarray(np.stack([W1, W2]), jnp.float32), jnp.asarray(np.stack([L1, L2]))
    kw = dict(
        dt=0.1,
        duration=100.0,
        key=jr.key(0),
        initial_state=jnp.array([0.1, -2.0]),
        coupling=vbt.Linear(G=0.3),
        noise=vbt.Additive(jnp.array([1e-3, 2e-3])),
        monitors=Raw(period=1.0),
    )
    D = int(max(np.rint(L1 / 3.0 / 0.1).max(), np.rint(L2 / 3.0 / 0.1).max()))

    def one(W, L):
        conn = vbt.Connectome(W, L, labels=base.labels)
        return vbt.simulate(MontbrioPazoRoxin(), conn, max_delay=D, block=10, **kw)["raw"]

    batched = jax.jit(jax.vmap(one))(Ws, Ls)
    for W, L, out in zip((W1, W2), (L1, L2), batched):
        ref = vbt.simulate(MontbrioPazoRoxin(), vbt.Connectome(W, L, labels=base.labels), **kw)
        np.testing.assert_allclose(np.asarray(out), np.asarray(ref["raw"]), rtol=2e-5, atol=1e-6)
    assert not np.allclose(np.asarray(batched[0]), np.asarray(batched[1]))
    # a block longer than a traced delay is caught at run time
    with pytest.raises(Exception, match="block"):
        short = jnp.asarray(np.stack([L1, L1 * 0.2]))
        jax.block_until_ready(jax.jit(jax.vmap(one))(Ws, short))


def test_vmap_over_seeds_equals_separate_runs():
    conn = vbt.tvb_connectivity(76).normalised("max")

    def run(key):
        return vbt.simulate(
            MontbrioPazoRoxin(),
            conn,
            duration=50.0,
            key=key,
            monitors=Raw(period=1.0),
            **_noisy_kwargs(),
        )["raw"]

    keys = jr.split(jr.key(7), 3)
    batched = np.asarray(jax.jit(jax.vmap(run))(keys))
    single = jax.jit(run)
    for i in range(3):
        np.testing.assert_allclose(batched[i], np.asarray(single(keys[i])), rtol=1e-6, atol=1e-7)
    assert not np.allclose(batched[0], batched[1])
