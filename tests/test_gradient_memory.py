"""Reverse-mode memory: rematerialised segments keep the gradient's memory far below linear."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax.models import MontbrioPazoRoxin
from vbt_jax.monitors import TemporalAverage


def _loss(duration, checkpoint=True):
    conn = vbt.tvb_connectivity(76).normalised("max")

    def loss(G):
        sol = vbt.simulate(
            MontbrioPazoRoxin(),
            conn,
            dt=0.1,
            duration=duration,
            key=jr.key(0),
            initial_state=jnp.array([0.1, -2.0]),
            coupling=vbt.Linear(G=G),
            noise=vbt.Additive(jnp.array([1e-3, 2e-3])),
            # 10 ms samples: the samples (and their cotangent) are stored for the whole run
            # by nature; at 1 ms they would dominate what is measured here, the integrator's
            # own storage
            monitors=TemporalAverage(period=10.0),
            checkpoint=checkpoint,
        )
        return jnp.mean(sol["tavg"][:, 0])

    return loss


def _temp_bytes(f, *args):
    analysis = jax.jit(f).lower(*args).compile().memory_analysis()
    if analysis is None or not hasattr(analysis, "temp_size_in_bytes"):
        pytest.skip("this backend reports no memory analysis")
    return analysis.temp_size_in_bytes


def test_checkpointed_gradient_equals_plain_gradient():
    g_ck = jax.jit(jax.grad(_loss(500.0, True)))(0.1)
    g_plain = jax.jit(jax.grad(_loss(500.0, False)))(0.1)
    assert np.isfinite(float(g_ck)) and float(g_ck) != 0.0
    np.testing.assert_allclose(float(g_ck), float(g_plain), rtol=1e-6)


def test_gradient_memory_grows_sublinearly():
    short = _temp_bytes(jax.grad(_loss(1000.0)), 0.1)
    long = _temp_bytes(jax.grad(_loss(16000.0)), 0.1)
    plain = _temp_bytes(jax.grad(_loss(1000.0, checkpoint=False)), 0.1)
    # 16x the steps: storing every step would need ~16x; two-level segments need ~sqrt(16) = 4x
    assert long < 6 * short, (short, long)
    # and even at 1 s, rematerialisation saves most of the memory
    assert short < plain / 3, (short, plain)
