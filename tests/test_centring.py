"""Partially centred regional priors and the centring learnt by variational inference."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers

import inference as inf
from vbt_jax import ArgumentError, ShapeError

N = 8


def _prior(centred):
    return inf.Regional("a", N, loc=0.5, scale=1.0, tau_scale=1.0, centred=centred)


@dataclasses.dataclass(frozen=True, eq=False)
class _Toy:
    """y_i ~ N(eta_i, s_i): the first half of the regions observed precisely (s = 0.01), the
    second half hardly at all (s = 100)."""

    priors: tuple

    def __call__(self, data):
        eta = self.priors[0].sample()
        s = jnp.concatenate([jnp.full(N // 2, 0.01), jnp.full(N - N // 2, 100.0)])
        numpyro.sample("y", dist.Normal(eta, s).to_event(1), obs=data["y"])


@pytest.mark.parametrize("c", [0.0, 0.3, 1.0])
def test_partial_centring_keeps_the_distribution(c):
    """With mu and tau fixed, eta_i ~ N(mu, tau) whatever the centredness (mean and sd of 20000
    draws within 4 standard errors)."""
    mu, tau, n = 0.7, 2.5, 20000
    prior = _prior(np.full(N, c))
    model = handlers.condition(lambda: prior.sample(), {"a_mu": mu, "a_tau": tau})
    draws = jax.vmap(lambda k: handlers.seed(model, k)())(jax.random.split(jax.random.key(3), n))
    eta = np.asarray(draws)
    assert np.all(np.abs(eta.mean(0) - mu) < 4 * tau / np.sqrt(n))
    assert np.all(np.abs(eta.std(0) - tau) < 4 * tau / np.sqrt(2 * n))


def test_partial_centring_site_and_validation():
    tr = handlers.trace(handlers.seed(lambda: _prior(np.full(N, 0.5)).sample(), 0)).get_trace()
    assert tr["a_eta_decentered"]["type"] == "sample"
    assert tr["a_eta"]["type"] == "deterministic"
    with pytest.raises(ShapeError, match=r"centred must be \(n_regions=8,\), got shape \(3,\)"):
        _prior(np.full(3, 0.5))
    with pytest.raises(ArgumentError, match=r"\[0, 1\]"):
        _prior(np.full(N, 1.5))
    with pytest.raises(ArgumentError, match="'auto'"):
        _prior("yes")


def test_learn_centring_centres_informed_regions_only():
    """With the default fit, unobserved regions get centredness near 0 and every precisely
    observed region clearly more (the ELBO is flat in c once such a region is pinned down, so
    their values spread between 0.5 and 1); the same key gives the same values; a twin without
    "auto" priors is returned unchanged."""
    y = np.linspace(-1.0, 2.0, N)
    toy = _Toy((_prior("auto"),))
    out = inf.learn_centring(
        toy,
        {"y": y},
        key=jax.random.key(0),
    )
    c = np.asarray(out.priors[0].centred)
    print("learnt centring", np.round(c, 3))
    assert c.shape == (N,)
    assert np.all(c[N // 2 :] < 0.2), c
    assert np.all(c[: N // 2] > 0.4) and c[: N // 2].mean() > 0.6, c
    again = inf.learn_centring(toy, {"y": y}, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(again.priors[0].centred), c)
    fixed = _Toy((_prior(True),))
    assert inf.learn_centring(fixed, {"y": y}, key=jax.random.key(0)) is fixed
    with pytest.raises(ArgumentError, match="steps must be >= 1"):
        inf.learn_centring(toy, {"y": y}, key=jax.random.key(0), steps=0)
