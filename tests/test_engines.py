"""The engines' parts one at a time: the chunk driver and its checkpoint store on a counting
sampler, and the progress bar of run_nuts and run_svi on a toy model whose number of
unconstrained parameters differs from its number of sites and of constrained values."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import initialize_model

import inference as inf
from inference.engines._checkpoint import Store, _save_pickle
from inference.engines._driver import Phase, drive
from inference.engines._sites import latent_size
from vbt_jax import CheckpointError


class _Counter:
    """A sampler whose state is the iteration count; each chunk outputs the iterations it ran
    (plus a key-dependent offset, so a state started from another key shows)."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at

    def init(self, key):
        return int(jax.random.randint(key, (), 0, 1000)) * 10_000

    def resume(self, key, saved):
        return saved

    def update(self, state, n):
        if self.stop_at is not None and state % 10_000 >= self.stop_at:
            raise KeyboardInterrupt
        return state + n, {"i": np.arange(state, state + n)}


_PHASES = (Phase("warm-up", 7, 3, keep=False), Phase("sampling", 8, 3))


def _label(phase, k, n):
    return f"{phase.name} {k}/{n}"


def test_driver_resumes_after_the_last_saved_chunk(tmp_path):
    """Interrupted in the sampling phase and rerun on the same store: the kept outputs are
    those of an uninterrupted run, warm-up outputs are dropped, and the last state agrees."""
    key = jax.random.key(0)
    ref = drive(_Counter(), key, _PHASES, progress=False, label=_label)
    base = ref.state - 15
    assert [c["i"].tolist() for c in ref.outputs] == [
        list(range(base + 7, base + 10)),
        list(range(base + 10, base + 13)),
        list(range(base + 13, base + 15)),
    ]
    store = Store(tmp_path, "count")
    with pytest.raises(KeyboardInterrupt):
        drive(_Counter(stop_at=10), key, _PHASES, store=store, progress=False, label=_label)
    saved = store.load(len(_PHASES))
    assert saved.done == (7, 3) and len(saved.outputs) == 1
    # a rerun from another key continues the saved state: the key only seeds a fresh start
    again = drive(_Counter(), jax.random.key(1), _PHASES, store=store, progress=False, label=_label)
    assert again.state == ref.state
    for a, b in zip(again.outputs, ref.outputs, strict=True):
        np.testing.assert_array_equal(a["i"], b["i"])


def test_store_refuses_a_state_without_per_phase_progress(tmp_path):
    store = Store(tmp_path, "nuts")
    _save_pickle(store.state_path, dict(state=None, done=0, n_chunks=0))
    with pytest.raises(CheckpointError, match=rf"nuts_state.pkl.*2 phases.*delete {tmp_path}"):
        store.load(2)
    _save_pickle(store.state_path, dict(state=None, done=[3, 0], n_chunks=1))
    with pytest.raises(CheckpointError, match="counts 1 chunks but nuts_chunk_0000.npz"):
        store.load(2)


def _toy(data):
    """1 + 3 + 2 unconstrained parameters in 3 latent sites (7 constrained values)."""
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    s = numpyro.sample("s", dist.LogNormal(0.0, 0.5).expand([3]).to_event(1))
    p = numpyro.sample("p", dist.Dirichlet(jnp.ones(3)))
    numpyro.sample("y", dist.Normal(x + jnp.sum(s * p), 0.5), obs=data["y"])


_TOY_DATA = {"y": jnp.asarray(1.5)}


def _unconstrained_size():
    """The size of NumPyro's own unconstrained initial position of the toy model."""
    info = initialize_model(jax.random.PRNGKey(0), _toy, model_args=(_TOY_DATA,))[0]
    return sum(math.prod(jnp.shape(v)) for v in jax.tree_util.tree_leaves(info.z))


def test_latent_size_counts_unconstrained_dimensions():
    assert latent_size(_toy, _TOY_DATA) == _unconstrained_size() == 6


def test_nuts_progress_names_phase_chunk_chains_and_parameters(capsys):
    """One bar over warm-up and sampling: its description names the phase, the chunk, the
    chains and the number of unconstrained parameters, and it ends at warm-up + samples;
    the bar does not change the draws."""
    kw = dict(key=jax.random.key(0), num_warmup=30, num_samples=20, num_chains=2, chunk=10)
    res = inf.run_nuts(_toy, _TOY_DATA, progress=True, **kw)
    text = capsys.readouterr().err
    size = f"(2 chains, {_unconstrained_size()} parameters)"
    for k in (1, 2, 3):
        assert f"NUTS warm-up chunk {k}/3 {size}" in text
    for k in (1, 2):
        assert f"NUTS sampling chunk {k}/2 {size}" in text
    assert text.index("warm-up chunk 3/3") < text.index("sampling chunk 1/2")
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "NUTS sampling chunk 2/2" in last and "50/50" in last, last
    quiet = inf.run_nuts(_toy, _TOY_DATA, progress=False, **kw)
    assert capsys.readouterr().err == ""
    for k in res.posterior:
        np.testing.assert_array_equal(quiet.posterior[k], res.posterior[k], err_msg=k)


def test_svi_progress_names_step_and_loss(capsys):
    kw = dict(key=jax.random.key(0), guide="normal", steps=30, block=10, num_draws=5)
    res = inf.run_svi(_toy, _TOY_DATA, progress=True, **kw)
    text = capsys.readouterr().err
    size = f"(normal guide, {_unconstrained_size()} parameters)"
    for k in (10, 20, 30):
        assert f"SVI step {k}/30 {size}" in text
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "30/30" in last and "loss " in last, last
    loss = float(last.split("loss ")[1].split("]")[0])
    assert loss == pytest.approx(np.mean(res.info["loss"][-10:]), rel=1e-3)


def _gauss_model(data=None):
    x = numpyro.sample("x", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    numpyro.deterministic("y", 2.0 * x)
    numpyro.sample("s", dist.HalfNormal(1.0))


@pytest.mark.parametrize("chains", [1, 2])
def test_nuts_sampler_compiles_each_chunk_length_once_and_samples_the_target(chains):
    """Warm-up and sampling in chunks: one compiled loop per chunk length, reused by every
    later chunk; the draws are the model's sites (constrained, deterministic included) and
    match the target's moments to within 4 Monte Carlo standard errors."""
    import arviz as az
    from numpyro.infer import NUTS

    from inference.engines._samplers import NutsSampler

    sampler = NutsSampler(NUTS(_gauss_model), None, 200, chains, "sequential")
    state = sampler.init(jax.random.key(3))
    outs = []
    for n in (100, 100, 250, 250, 250, 250):  # 200 warm-up, 1000 draws
        state, out = sampler.update(state, n)
        outs.append(out)
    assert sorted(sampler._loops) == [100, 250]
    assert all(loop._cache_size() == 1 for loop in sampler._loops.values())
    draws = {k: np.concatenate([o[k] for o in outs[2:]], axis=1) for k in outs[0]}
    assert draws["x"].shape == (chains, 1000, 2) and draws["s"].shape == (chains, 1000)
    np.testing.assert_array_equal(draws["y"], 2.0 * draws["x"])
    assert (draws["s"] > 0).all() and draws["__diverging"].dtype == bool
    moments = {
        "x0": (draws["x"][..., 0], 0.0, 1.0),
        "s": (draws["s"], math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)),
    }
    for name, (v, mean, sd) in moments.items():
        se = sd / math.sqrt(float(az.ess(np.asarray(v, np.float64))))
        assert abs(v.mean() - mean) < 4 * se, (name, v.mean(), mean, se)
