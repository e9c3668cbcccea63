"""One contract over every registered model (optax's common-test pattern): jit equals eager,
vmap over a parameter equals separate runs, gradients are finite and match central finite
differences, the dtype is kept, and the compiled step does not retrace or unroll over time."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax.models import MODELS, Mechanism
from vbt_jax.monitors import Raw

# one parameter per model to vary, a value inside its range, and a stable coupling strength
CASES = {
    "mpr": ("eta", -5.0, 0.2),
    "jansen_rit": ("A", 3.25, 1.0),
    "wong_wang": ("J_N", 0.15, 0.5),
    "hopf": ("a", -0.2, 0.1),
}


def test_every_model_has_a_case():
    assert set(CASES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_declared_capabilities_name_real_fields(name):
    """What a model class declares for simulate and the interventions names its own fields:
    the stimulus parameter and every mechanism's parameters; region_local is declared in the
    class body (it is not inherited)."""
    cls = MODELS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    assert "region_local" in vars(cls) and cls.region_local is True
    assert cls.stimulus_parameter in fields
    for mechanism in cls.mechanisms.values():
        assert isinstance(mechanism, Mechanism)
        assert set(mechanism.parameters) <= fields


def _small_connectome():
    c = vbt.tvb_connectivity(76)
    idx = np.arange(0, 76, 8)  # 10 regions spread over both hemispheres
    W = np.asarray(c.weights)[np.ix_(idx, idx)]
    L = np.asarray(c.lengths)[np.ix_(idx, idx)]
    return vbt.Connectome(W / W.max(), L, labels=tuple(np.asarray(c.labels)[idx]))


def _runner(name, dtype, duration=30.0, noise=False, unroll=True):
    cls = MODELS[name]
    pname, _, G = CASES[name]
    conn = _small_connectome()
    model0 = cls()
    x0 = model0.random_state(jr.key(42), conn.n_regions, dtype)
    if name == "mpr":
        x0 = jnp.stack([0.1 * x0[0] / 2.0, -2.0 + 0.5 * x0[1] / 3.5])  # stay in the low state
    if name == "hopf":
        x0 = 0.1 * x0  # TVB's +-5 range is far outside the a < 0 focus and stiff at dt 0.1
    coupling = eqx.tree_at(lambda c: c.G, model0.default_coupling(), G)

    def run(p, key=jr.key(0)):
        model = eqx.tree_at(lambda m: getattr(m, pname), cls(), p)
        sol = vbt.simulate(
            model,
            conn,
            dt=0.1,
            duration=duration,
            key=key,
            coupling=coupling,
            initial_state=x0,
            noise=vbt.Additive(1e-4) if noise else None,
            monitors=Raw(period=1.0),
            dtype=dtype,
            unroll=unroll,
        )
        return sol["raw"]

    return run


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_equals_eager_and_vmap_equals_loop(name):
    run = _runner(name, jnp.float32, noise=True, unroll=1)
    p = CASES[name][1]
    eager = run(p)
    jrun = jax.jit(run)
    jitted = jrun(p)
    assert np.isfinite(np.asarray(eager)).all()
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-6)
    ps = jnp.asarray([p * 0.9, p, p * 1.1])
    batched = jax.jit(jax.vmap(run))(ps)
    for i in range(3):
        np.testing.assert_allclose(
            np.asarray(batched[i]), np.asarray(jrun(ps[i])), rtol=1e-5, atol=1e-6
        )
    assert not np.allclose(np.asarray(batched[0]), np.asarray(batched[2]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name, x64):
    # a rolled step loop: same arithmetic, much quicker to compile under grad
    run = _runner(name, jnp.float64, unroll=1)
    p = CASES[name][1]

    def loss(q):
        return jnp.mean(run(q)[:, 0] ** 2)

    g = float(jax.jit(jax.grad(loss))(p))
    h = 1e-5 * max(1.0, abs(p))
    jloss = jax.jit(loss)
    fd = (float(jloss(p + h)) - float(jloss(p - h))) / (2 * h)
    assert np.isfinite(g)
    assert g != 0.0
    # central differences in float64 are accurate to ~h^2 * f''' + eps / h ~ 1e-9 relative
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-12)


def _nested(jaxpr):
    """Every equation of a jaxpr and of the jaxprs nested in it (loops, remat, custom VJPs)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns"):
                    yield from _nested(sub)


@pytest.mark.parametrize("name", sorted(CASES))
def test_dtype_kept(name, x64):
    """The output has the requested dtype, a float32 run computes nothing in float64 anywhere
    in its loops (with x64 enabled, where a stray Python float or NumPy array would promote),
    and a float64 run carries its state in float64 (the noise generator draws 23-bit uniforms
    in float32 by design, ``vbt_jax/_rng.py``, so only what the loops carry and emit is
    checked there).
    Checked on the traced program: dtypes are fixed at trace time."""
    p = CASES[name][1]
    for dtype in (jnp.float32, jnp.float64):
        closed = jax.make_jaxpr(_runner(name, dtype, duration=5.0, noise=True))(p)
        assert [a.dtype for a in closed.out_avals] == [dtype]
        scans = [e for e in _nested(closed.jaxpr) if e.primitive.name == "scan"]
        assert scans  # the integration loop is in the traced program
        if dtype == jnp.float32:
            # the top level may hold the float64 parameter being set; the loops may not
            inner = [
                v.aval.dtype
                for scan in scans
                for e in _nested(scan.params["jaxpr"].jaxpr)
                for v in e.outvars
            ]
            assert inner and jnp.float64 not in inner
        else:
            # what the loops carry and emit: state, delay buffer, monitor states and samples
            floats = [
                v.aval.dtype
                for scan in scans
                for v in scan.outvars
                if jnp.issubdtype(v.aval.dtype, jnp.floating)
            ]
            assert floats and jnp.float32 not in floats


@pytest.mark.parametrize("name", sorted(CASES))
def test_step_traces_once_and_is_not_unrolled_over_time(name):
    cls = MODELS[name]
    calls = []

    class Counting(cls):
        def dfun(self, state, coupling):
            calls.append(1)
            return super().dfun(state, coupling)

    pname, p, G = CASES[name]
    conn = _small_connectome()

    def counted(duration):
        calls.clear()

        @jax.jit
        def f(q):
            model = eqx.tree_at(lambda m: getattr(m, pname), Counting(), q)
            sol = vbt.simulate(
                model,
                conn,
                dt=0.1,
                duration=duration,
                key=jr.key(0),
                coupling=eqx.tree_at(lambda c: c.G, cls().default_coupling(), G),
                monitors=Raw(period=1.0),
            )
            return sol["raw"]

        f(p).block_until_ready()
        first = len(calls)
        f(p * 1.01).block_until_ready()  # new value, same shapes: no retrace
        assert len(calls) == first
        return first

    short, long = counted(20.0), counted(400.0)
    assert short == long  # trace work independent of the number of steps
