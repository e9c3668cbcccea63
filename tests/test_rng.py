"""Statistical checks of the counter-based noise generator (vbt_jax._rng.hash_normal)."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from scipy import stats

from vbt_jax import _rng


@pytest.fixture(scope="module")
def draws():
    words = _rng.key_words(jr.key(0))
    # 400 blocks of (10 steps, 2 states, 76 regions): the W1 layout
    return np.asarray(_rng.hash_normal(words, 0, (400, 10, 2, 76), jnp.float32), np.float64)


def test_moments_and_normality(draws):
    x = draws.ravel()  # 608,000 draws
    n = x.size
    # standard errors: mean 1/sqrt(n), variance sqrt(2/n), kurtosis sqrt(24/n); 5 sigma bounds
    assert abs(x.mean()) < 5 / np.sqrt(n)
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(x)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(x)) < 5 * np.sqrt(24 / n)
    assert stats.kstest(x, "norm").pvalue > 1e-3


def test_no_serial_or_cross_block_correlation(draws):
    flat = draws.reshape(400, -1)
    x = flat.ravel()
    n = x.size
    for lag in (1, 2, 76, 152, 1520):  # neighbours, next region, next state, next step/block
        r = np.corrcoef(x[:-lag], x[lag:])[0, 1]
        assert abs(r) < 5 / np.sqrt(n), lag
    # the same element in consecutive blocks
    r = np.corrcoef(flat[:-1].ravel(), flat[1:].ravel())[0, 1]
    assert abs(r) < 5 / np.sqrt(flat[1:].size)
    # squares (a volatility-style dependence a linear test would miss)
    r2 = np.corrcoef(x[:-1] ** 2, x[1:] ** 2)[0, 1]
    assert abs(r2) < 5 / np.sqrt(n)


def test_counter_is_a_bijection_and_keys_differ():
    words = _rng.key_words(jr.key(1))
    a = np.asarray(_rng.hash_normal(words, 0, (100, 1000), jnp.float32))
    # 100,000 consecutive counters: distinct 32-bit inputs give (almost surely) distinct outputs;
    # with 24-bit uniforms a handful of exact ties is expected by the birthday bound (~300)
    assert np.unique(a).size > a.size - 1000
    b = np.asarray(_rng.hash_normal(_rng.key_words(jr.key(2)), 0, (100, 1000), jnp.float32))
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(a.size)
    # drawing blocks 50..99 alone gives exactly the same numbers as part of the bigger draw
    part = np.asarray(_rng.hash_normal(words, 50, (50, 1000), jnp.float32))
    np.testing.assert_array_equal(part, a[50:])


def test_epochs_do_not_repeat():
    words = _rng.key_words(jr.key(3))
    per = 1 << 20
    blocks_per_epoch = (1 << 32) // per  # 4096
    a = np.asarray(_rng.hash_normal(words, 0, (1, per), jnp.float32))
    b = np.asarray(_rng.hash_normal(words, blocks_per_epoch, (1, per), jnp.float32))
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(per)


def test_extreme_bits_give_finite_normals():
    bits = jnp.asarray([0, 1, 0x1FF, 0xFFFFFE00, 0xFFFFFFFF], jnp.uint32)
    z = np.asarray(_rng._bits_to_normal(bits))
    assert np.isfinite(z).all()
    assert z[0] == -z[-1] and 5.0 < z[-1] < 6.0  # symmetric, tails at ~5.3 sigma


def test_model_parameters_are_fields_only():
    from vbt_jax.models import MontbrioPazoRoxin

    assert set(MontbrioPazoRoxin().parameters()) == {"tau", "I", "Delta", "J", "eta", "cr", "cv"}
