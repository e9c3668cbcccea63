"""The hand-written reverse-mode adjoint of the integration loop (``vbt_jax/_adjoint.py``) gives
the gradient that JAX's own differentiation of the same loop gives, for every input a loss can
depend on (model, coupling and noise parameters, weights, initial state and history, the
resumed state), with delays, zero-delay self-connections, noise, Heun and Euler, linear and
sigmoidal coupling, and raw, averaging and BOLD monitors.

The reference is the same ``simulate`` with ``adjoint="autodiff"``, i.e. plain ``jax.grad``
through the checkpointed scan. Both compute the same products; only the order of the
floating-point sums differs, so they agree to a few float32 roundings accumulated over the run
(tolerance 1e-5 relative to the largest component) and to 1e-10 in float64.
"""

import contextlib
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
import vbt_jax._adjoint as adjoint_mod
from vbt_jax.models import MODELS, JansenRit, MontbrioPazoRoxin
from vbt_jax.monitors import Bold, Raw, TemporalAverage


def _connectome(n=6, dense_zero=False, seed=3):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.2, 1.0, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    np.fill_diagonal(W, 0.5)  # zero-length self-connections: read the current state
    L = rng.uniform(3.0, 25.0, (n, n))  # 10 .. 83 steps at 3 mm/ms, dt 0.1 ms
    np.fill_diagonal(L, 0.0)
    if dense_zero:
        W[0, 1], L[0, 1] = 0.7, 0.0  # an off-diagonal zero-delay edge
    return vbt.Connectome(W, L)


def _both(loss, params, ref_loss=None):
    """((custom adjoint gradient, its forward value), (plain autodiff gradient, its value)).

    ``loss(params, adjoint)`` passes ``adjoint`` on to ``simulate``. One compiled
    value-and-gradient program per mode: the value comes out of the forward pass that saves
    what the backward pass needs (the custom VJP's own forward rule with ``"custom"``), so
    comparing the values checks that rule against the plain forward run. ``ref_loss``, if
    given, is the same loss written for the reference (e.g. with a rolled step loop)."""
    out = []
    for adjoint, f in (("custom", loss), ("autodiff", ref_loss or loss)):
        value, grad = jax.jit(jax.value_and_grad(functools.partial(f, adjoint=adjoint)))(params)
        out.append((grad, value))
    return out


def _assert_close(g_new, g_ref, rtol):
    flat_new, flat_ref = jax.tree.leaves(g_new), jax.tree.leaves(g_ref)
    assert len(flat_new) == len(flat_ref)
    for a, b in zip(flat_new, flat_ref):
        a, b = np.asarray(a), np.asarray(b)
        scale = np.max(np.abs(b))
        assert scale > 0.0  # every input really influences the loss here
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _weights(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape))


_slow = pytest.mark.slow


@pytest.mark.parametrize(
    "dtype, solver",
    [
        ("float64", "euler"),
        pytest.param("float64", "heun", marks=_slow),
        pytest.param("float32", "euler", marks=_slow),
        pytest.param("float32", "heun", marks=_slow),  # the default, unrolled step loop
    ],
)
def test_mpr_linear_matches_autodiff(dtype, solver):
    """MPR, linear coupling, noise, raw + temporal average; gradient w.r.t. regional eta, G,
    nsig and the initial state."""
    ctx = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with ctx:
        dt_ = jnp.dtype(dtype)
        conn = _connectome()
        n = conn.n_regions
        c_raw = _weights((40, 2, n), 0).astype(dt_)
        c_tavg = _weights((8, 2, n), 1).astype(dt_)

        def loss(p, adjoint, unroll=True if (dtype, solver) == ("float32", "heun") else 1):
            sol = vbt.simulate(
                MontbrioPazoRoxin(eta=p["eta"]),
                conn,
                dt=0.1,
                duration=40.0,
                key=jr.key(1),
                coupling=vbt.Linear(G=p["G"]),
                noise=vbt.Additive(nsig=p["nsig"]),
                solver=solver,
                monitors=(Raw(period=1.0), TemporalAverage(period=5.0)),
                initial_state=p["x0"],
                dtype=dt_,
                unroll=unroll,
                adjoint=adjoint,
            )
            return jnp.sum(c_raw * sol["raw"]) + jnp.sum(c_tavg * sol["tavg"])

        params = {
            "eta": jnp.linspace(-5.2, -4.8, n, dtype=dt_),
            "G": jnp.asarray(0.3, dt_),
            "nsig": jnp.asarray([0.01, 0.02], dt_),
            "x0": jnp.asarray([0.1, -2.0], dt_),
        }
        # the reference differentiates the rolled loop (the same arithmetic; plain autodiff
        # through the unrolled one takes three times as long to compile)
        (g_new, f_new), (g_ref, f_ref) = _both(
            loss, params, lambda p, adjoint: loss(p, adjoint, unroll=1)
        )
        if (dtype, solver) == ("float32", "heun"):
            np.testing.assert_allclose(f_new, f_ref, rtol=1e-6)
        else:
            assert f_new == f_ref  # the forward run is the same computation
        _assert_close(g_new, g_ref, 1e-5 if dtype == "float32" else 1e-10)


@_slow
def test_jansen_rit_sigmoidal_bold_float64():
    """Jansen-Rit, sigmoidal coupling (buffered value is a nonlinear function of two states),
    Euler, noise and a BOLD monitor; gradient w.r.t. a model parameter, the coupling's
    parameters and the initial state."""
    with jax.enable_x64(True):
        conn = _connectome(n=5, seed=7)
        c_bold = _weights((4, 5), 2)

        def loss(p, adjoint):
            sol = vbt.simulate(
                JansenRit(A=p["A"]),
                conn,
                dt=0.1,
                duration=80.0,
                key=jr.key(2),
                coupling=vbt.Sigmoidal(G=p["G"], r=p["r"]),
                noise=vbt.Additive(nsig=1e-4),
                solver="euler",
                monitors=(Bold(period=20.0, step=1.0, scale=1e3),),
                initial_state=p["x0"],
                dtype=jnp.float64,
                unroll=1,
                adjoint=adjoint,
            )
            return jnp.sum(c_bold * sol["bold"]) + 1e-3 * jnp.sum(sol.final_state**2)

        x0 = JansenRit().random_state(jr.key(5), 5, jnp.float64)
        params = {"A": 3.25, "G": 1.0, "r": 0.56, "x0": x0}
        (g_new, f_new), (g_ref, f_ref) = _both(loss, params)
        assert f_new == f_ref
        _assert_close(g_new, g_ref, 1e-10)


@_slow
@pytest.mark.parametrize("dense_zero, batched_dot", [(False, False), (True, False), (False, True)])
def test_weights_history_and_dense_zero_delays_float64(dense_zero, batched_dot, monkeypatch):
    """Gradient w.r.t. the weights (traced weights: every pair is an edge, delays traced), the
    lengths' partner the history, and G; with an off-diagonal zero-delay edge (dense mode); and
    with the out-edge sum of wide (dense) connectomes, a batched dot instead of the unrolled
    sum."""
    if batched_dot:
        monkeypatch.setattr(adjoint_mod, "_UNROLLED_SUM_MAX", 0)
    with jax.enable_x64(True):
        conn = _connectome(dense_zero=dense_zero)
        n = conn.n_regions
        H = 90
        hist = jnp.stack(
            [
                0.1 + 0.01 * jnp.sin(jnp.arange(H)[:, None] * 0.1 + jnp.arange(n)),
                -2.0 + 0.1 * jnp.cos(jnp.arange(H)[:, None] * 0.07 + jnp.arange(n)),
            ],
            axis=1,
        )
        c_raw = _weights((50, 2, n), 3)

        def loss(p, adjoint):
            sol = vbt.simulate(
                MontbrioPazoRoxin(),
                vbt.Connectome(p["W"], conn.lengths),
                dt=0.1,
                duration=50.0,
                key=jr.key(3),
                coupling=vbt.Linear(G=p["G"]),
                noise=vbt.Additive(nsig=jnp.asarray([0.01, 0.02])),
                monitors=Raw(period=1.0),
                history=p["hist"],
                block=5,
                max_delay=85,
                dtype=jnp.float64,
                unroll=1,
                adjoint=adjoint,
            )
            return jnp.sum(c_raw * sol["raw"])

        params = {"W": jnp.asarray(conn.weights), "G": 0.3, "hist": hist}
        (g_new, f_new), (g_ref, f_ref) = _both(loss, params)
        assert f_new == f_ref
        _assert_close(g_new, g_ref, 1e-10)


@_slow
def test_resume_and_final_buffer_float64():
    """A resumed run (noise counter and buffer slots offset) whose loss also uses the final
    delay buffer and monitor state: gradient w.r.t. the resumed state, buffer and eta."""
    with jax.enable_x64(True):
        conn = _connectome(seed=11)
        n = conn.n_regions
        kw = dict(
            dt=0.1,
            key=jr.key(4),
            coupling=vbt.Linear(G=0.3),
            noise=vbt.Additive(nsig=jnp.asarray([0.01, 0.02])),
            monitors=TemporalAverage(period=2.0),
            dtype=jnp.float64,
            unroll=1,
        )
        first = vbt.simulate(
            MontbrioPazoRoxin(), conn, duration=30.0, initial_state=jnp.asarray([0.1, -2.0]), **kw
        )
        c_buf = _weights(first.final.buffer.shape, 4)
        c_avg = _weights((20, 2, n), 5)

        def loss(p, adjoint):
            resume = first.final
            resume = vbt.SimState(
                state=p["state"],
                buffer=p["buffer"],
                monitor_states=resume.monitor_states,
                step=resume.step,
            )
            sol = vbt.simulate(
                MontbrioPazoRoxin(eta=p["eta"]),
                conn,
                duration=40.0,
                resume=resume,
                adjoint=adjoint,
                **kw,
            )
            return jnp.sum(c_avg * sol["tavg"]) + jnp.sum(c_buf * sol.final.buffer)

        params = {"state": first.final.state, "buffer": first.final.buffer, "eta": -5.0}
        (g_new, f_new), (g_ref, f_ref) = _both(loss, params)
        assert f_new == f_ref
        # the initial buffer's mirror slots (copies of slots 0..K-1) receive their cotangent
        # in the slot they copy; compare the sum of the two, which is what any consistent
        # buffer perturbation sees
        K = 10
        ring = g_ref["buffer"].shape[-1] - K

        def fold(b):
            b = np.asarray(b)
            out = b[..., :ring].copy()
            out[..., :K] += b[..., ring:]
            return out

        g_new["buffer"], g_ref["buffer"] = fold(g_new["buffer"]), fold(g_ref["buffer"])
        _assert_close(g_new, g_ref, 1e-10)


@_slow
def test_vmapped_gradient_matches_autodiff():
    """jax.vmap over the gradient (a batch of coupling strengths) in float32."""
    conn = _connectome(seed=5)

    def loss(G, adjoint):
        sol = vbt.simulate(
            MontbrioPazoRoxin(),
            conn,
            dt=0.1,
            duration=40.0,
            key=jr.key(6),
            coupling=vbt.Linear(G=G),
            noise=vbt.Additive(nsig=jnp.asarray([0.01, 0.02])),
            monitors=Raw(period=1.0),
            initial_state=jnp.asarray([0.1, -2.0]),
            unroll=1,
            adjoint=adjoint,
        )
        return jnp.mean(sol["raw"][:, 0])

    Gs = jnp.asarray([0.1, 0.3, 0.5])
    out = []
    for adjoint in ("custom", "autodiff"):
        out.append(jax.jit(jax.vmap(jax.grad(functools.partial(loss, adjoint=adjoint))))(Gs))
    np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(out[1]))))


# one parameter per registered model, a value inside its range, and a stable coupling strength
_CASES = {
    "mpr": ("eta", -5.0, 0.2),
    "jansen_rit": ("A", 3.25, 1.0),
    "wong_wang": ("J_N", 0.15, 0.5),
    "hopf": ("a", -0.2, 0.1),
}


@_slow
@pytest.mark.parametrize("name", sorted(_CASES))
def test_every_model_matches_autodiff_float64(name):
    """Each registered model with its default coupling (linear, sigmoidal, difference): the
    reverse loop's per-region Jacobians assume a region's step reads no other region's current
    state; a model breaking that would fail here."""
    cls = MODELS[name]
    pname, value, G = _CASES[name]
    with jax.enable_x64(True):
        conn = _connectome(n=4, seed=13)
        x0 = cls().random_state(jr.key(8), 4, jnp.float64)
        if name == "hopf":
            x0 = 0.1 * x0
        if name == "mpr":
            x0 = jnp.stack([0.05 * x0[0], -2.0 + 0.1 * x0[1]])
        coupling0 = cls().default_coupling()
        c_raw = _weights((30,) + x0.shape, 9)

        def loss(p, adjoint):
            model = eqx.tree_at(lambda m: getattr(m, pname), cls(), p["param"])
            sol = vbt.simulate(
                model,
                conn,
                dt=0.1,
                duration=30.0,
                key=jr.key(9),
                coupling=eqx.tree_at(lambda c: c.G, coupling0, p["G"]),
                noise=vbt.Additive(1e-4),
                monitors=Raw(period=1.0),
                initial_state=p["x0"],
                dtype=jnp.float64,
                unroll=1,
                adjoint=adjoint,
            )
            return jnp.sum(c_raw * sol["raw"])

        params = {"param": value, "G": G, "x0": x0}
        (g_new, f_new), (g_ref, f_ref) = _both(loss, params)
        assert f_new == f_ref
        _assert_close(g_new, g_ref, 1e-10)


def test_the_custom_adjoint_is_in_use():
    """The comparisons above are not vacuous: with ``adjoint="custom"`` the loop is a
    custom-VJP call, and with ``"autodiff"`` (or without checkpointing) it is not."""
    conn = _connectome(n=3, seed=1)

    def loss(G, adjoint="custom", checkpoint=True):
        sol = vbt.simulate(
            MontbrioPazoRoxin(),
            conn,
            duration=5.0,
            coupling=vbt.Linear(G=G),
            initial_state=jnp.asarray([0.1, -2.0]),
            checkpoint=checkpoint,
            unroll=1,
            on_divergence="flag",  # the "raise" guard is a custom VJP of its own
            adjoint=adjoint,
        )
        return jnp.sum(sol["raw"])

    def loop_is_custom_vjp(f):
        # with the custom adjoint, the scans of the loop sit inside a custom-VJP call instead
        # of the top level of the traced function
        eqns = jax.make_jaxpr(lambda G: f(G))(0.1).jaxpr.eqns
        top = {e.primitive.name for e in eqns}
        return "custom_vjp_call" in top and "scan" not in top

    assert loop_is_custom_vjp(loss)
    assert not loop_is_custom_vjp(lambda G: loss(G, checkpoint=False))
    assert not loop_is_custom_vjp(lambda G: loss(G, adjoint="autodiff"))


def test_adjoint_argument_is_validated():
    conn = _connectome(n=3, seed=1)
    with pytest.raises(
        vbt.SimulationError, match=r"adjoint must be one of \('custom', 'autodiff'\)"
    ):
        vbt.simulate(
            MontbrioPazoRoxin(), conn, duration=5.0, initial_state=jnp.zeros(2), adjoint="jax"
        )


def test_region_local_is_read_from_the_classes(monkeypatch):
    """The reverse loop's per-region Jacobians are chosen from the ``region_local`` class
    variables of the model, coupling and solver: on for the shipped ones, off for a subclass
    that does not declare it (it may have changed ``dfun``) and for a zero-delay edge between
    two regions."""
    import vbt_jax._integrate as integrate_mod

    seen = []

    def spy(spec, *args):
        seen.append(spec.local)
        return real(spec, *args)

    real = integrate_mod.integrate
    monkeypatch.setattr(integrate_mod, "integrate", spy)

    class Subclassed(MontbrioPazoRoxin):
        pass

    class Declared(MontbrioPazoRoxin):
        region_local = True

    def run(model=MontbrioPazoRoxin(), coupling=vbt.Linear(), solver="heun", dense_zero=False):
        vbt.simulate(
            model,
            _connectome(n=3, seed=1, dense_zero=dense_zero),
            duration=5.0,
            coupling=coupling,
            solver=solver,
            key=jr.key(0),
            unroll=1,
            on_divergence="flag",
        )
        return seen[-1]

    class MyLinear(vbt.Linear):
        pass

    class MyEuler(vbt.EulerMaruyama):
        pass

    assert MontbrioPazoRoxin.region_local and not Subclassed.region_local
    assert run() and run(Declared()) and run(solver="euler")
    assert run(coupling=vbt.Difference()) and run(coupling=vbt.Sigmoidal(), model=JansenRit())
    assert not run(Subclassed())
    assert not run(coupling=MyLinear())
    assert not run(solver=MyEuler())
    assert not run(dense_zero=True)
