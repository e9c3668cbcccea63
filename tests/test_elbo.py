"""inference.engines.OrderedTraceELBO: NumPyro's ELBO, the same program in every process."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from inference.engines import OrderedTraceELBO

MODEL = textwrap.dedent(
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    def model(y):
        # several sites, so that an order taken from a set of their names would vary
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        sigma = numpyro.sample("sigma", dist.LogNormal(0.0, 0.5))
        tau = numpyro.sample("tau", dist.HalfNormal(1.0))
        with numpyro.plate("regions", 5):
            theta = numpyro.sample("theta", dist.Normal(mu, tau))
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
        gamma = numpyro.sample("gamma", dist.Normal(0.0, 1.0))
        loc = theta + beta * jnp.arange(5.0) + gamma
        numpyro.sample("y", dist.Normal(loc, sigma), obs=y)
    """
)
namespace: dict = {}
exec(MODEL, namespace)
model = namespace["model"]
Y = jnp.asarray([0.3, -0.2, 1.1, 0.8, 0.1])


@pytest.mark.parametrize("num_particles", [1, 4])
def test_equals_numpyro_trace_elbo(num_particles):
    """Same value and gradient as NumPyro's Trace_ELBO for the same key and parameters (the
    terms are only added in another order)."""
    guide = AutoNormal(model)
    svi = SVI(model, guide, optax.adam(0.01), Trace_ELBO())
    params = svi.get_params(svi.init(jax.random.PRNGKey(0), Y))
    # move the guide away from its initial point so every term matters
    params = jax.tree.map(lambda p: p + 0.1, params)
    key = jax.random.PRNGKey(3)

    def value_and_grad(elbo):
        return jax.value_and_grad(lambda p: elbo.loss(key, p, model, guide, Y))(params)

    v_new, g_new = value_and_grad(OrderedTraceELBO(num_particles=num_particles))
    v_ref, g_ref = value_and_grad(Trace_ELBO(num_particles=num_particles))
    assert np.isfinite(float(v_ref))
    np.testing.assert_allclose(float(v_new), float(v_ref), rtol=1e-6)
    for k in g_ref:
        np.testing.assert_allclose(g_new[k], g_ref[k], rtol=1e-5, atol=1e-6)


def test_svi_fits_a_conjugate_normal_mean():
    """SVI with this ELBO recovers the exact posterior of a conjugate model: y_i ~ N(mu, 1),
    mu ~ N(0, 1), so mu | y ~ N(sum(y) / (n + 1), 1 / (n + 1))."""
    y = jnp.asarray(np.random.default_rng(0).normal(1.5, 1.0, 20))

    def conj(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        with numpyro.plate("n", y.shape[0]):
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    guide = AutoNormal(conj)
    svi = SVI(conj, guide, optax.adam(0.02), OrderedTraceELBO(num_particles=8))
    res = svi.run(jax.random.PRNGKey(1), 3000, y, progress_bar=False)
    n = y.shape[0]
    np.testing.assert_allclose(res.params["mu_auto_loc"], float(y.sum()) / (n + 1), atol=0.02)
    np.testing.assert_allclose(res.params["mu_auto_scale"], (1.0 / (n + 1)) ** 0.5, rtol=0.1)


_PROGRAM = MODEL + textwrap.dedent(
    """
    import hashlib, sys
    import jax, optax
    from numpyro.infer import SVI
    from numpyro.infer.autoguide import AutoNormal
    from inference.engines import OrderedTraceELBO

    y = jnp.asarray([0.3, -0.2, 1.1, 0.8, 0.1])
    svi = SVI(model, AutoNormal(model), optax.adam(0.01), OrderedTraceELBO())
    state = svi.init(jax.random.PRNGKey(0), y)
    text = jax.jit(svi.update).lower(state, y).as_text(debug_info=False)
    loss = svi.update(state, y)[1]
    print(hashlib.sha256(text.encode()).hexdigest(), float(loss).hex())
    """
)


def test_same_program_and_loss_in_every_process():
    """The compiled SVI step (what JAX's persistent cache is keyed on) and the loss are the
    same under different hash seeds of the Python process."""
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "JAX_PLATFORMS": "cpu"}
        run = subprocess.run(
            [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, env=env, check=True
        )
        outs.add(run.stdout.strip())
    assert len(outs) == 1, outs
