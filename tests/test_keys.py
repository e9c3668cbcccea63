"""Explicit PRNG keys: one stream per purpose, and no two seeds sharing a stream."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import jax
import numpy as np
import pytest

import inference as inf
from inference._keys import as_key, numpy_rng, purpose_keys
from inference.fit import load_fit_config
from inference.fit._setup import FIT_PURPOSES, fit_keys
from vbt_jax import ArgumentError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _streams(keys: dict) -> dict[str, tuple[int, ...]]:
    return {p: tuple(np.asarray(as_key(k, "test")).tolist()) for p, k in keys.items()}


def test_purpose_streams_of_two_seeds_are_all_distinct():
    """Every (seed, purpose) pair of seeds 0-3 gets its own stream: seed 1's sampler is not
    seed 0's warm start, as it would be with ``seed + 1`` offsets."""
    purposes = ("warm_start", "sampler", "prior", "predictive", "check")
    streams = [
        s
        for seed in range(4)
        for s in _streams(purpose_keys(jax.random.key(seed), purposes)).values()
    ]
    assert len(set(streams)) == len(streams) == 4 * len(purposes)


def test_fit_keys_seed_0_and_1_share_no_stream():
    cfg0 = load_fit_config(CONFIGS / "fit_hopf_dk84.toml")
    s0 = _streams(fit_keys(cfg0))
    assert set(s0) == set(FIT_PURPOSES)
    cfg1 = dataclasses.replace(cfg0, seed=1)
    s1 = _streams(fit_keys(cfg1))
    for (p, a), (q, b) in itertools.product(s0.items(), s1.items()):
        assert a != b, (p, q)
    # same seed, same streams
    assert _streams(fit_keys(cfg0)) == s0


def test_typed_and_raw_keys_agree_and_integers_are_refused():
    assert np.array_equal(as_key(jax.random.key(3), "f"), jax.random.PRNGKey(3))
    with pytest.raises(ArgumentError, match=r"run_nuts: key must be a PRNG key .*int 0"):
        as_key(0, "run_nuts")
    with pytest.raises(ArgumentError, match="single PRNG key"):
        as_key(jax.random.split(jax.random.key(0), 2), "f")
    a = numpy_rng(jax.random.key(5)).normal(size=3)
    assert np.array_equal(a, numpy_rng(jax.random.key(5)).normal(size=3))
    assert not np.array_equal(a, numpy_rng(jax.random.key(6)).normal(size=3))


def test_entry_points_refuse_a_seed_for_a_key():
    """An integer where a key belongs is refused before anything is traced or compiled."""
    with pytest.raises(ArgumentError, match="run_nuts: key"):
        inf.run_nuts(None, None, key=0)
    with pytest.raises(ArgumentError, match="run_svi: key"):
        inf.run_svi(None, None, key=0)
    with pytest.raises(ArgumentError, match="prior_draws: key"):
        inf.prior_draws(None, key=0)
