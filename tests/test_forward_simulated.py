"""``inference.Simulated``: features from fixed-seed simulations, equal to direct simulate calls."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import inference as inf
import vbt_jax as vbt
from vbt_jax import ArgumentError
from vbt_jax.config import build_experiment, load_config

# 4-region MPR ring with delays, noise, a tavg monitor of r every 10 ms (300 ms, 30 samples)
W4 = np.array([[0, 1.0, 0, 0.5], [1.0, 0, 0.8, 0], [0, 0.8, 0, 1.0], [0.5, 0, 1.0, 0]])
L4 = np.array([[0, 1.8, 0, 3.0], [1.8, 0, 2.4, 0], [0, 2.4, 0, 2.1], [3.0, 0, 2.1, 0]])
TOML = """
[simulation]
dt = 0.1
duration = 300.0
seed = 7

[connectome]
source = "w.npy"
lengths = "l.npy"
normalise = "max"

[model]
name = "mpr"

[model.parameters]
eta = [-4.6, -4.8, -5.0, -4.7]
J = 14.5

[model.initial_state]
r = 0.1
V = -2.0

[coupling]
kind = "linear"
G = 0.4

[noise]
nsig = [0.001, 0.01]

[monitors]
tavg = { period = 10.0, variables = ["r"] }
"""


@pytest.fixture
def experiment(tmp_path):
    np.save(tmp_path / "w.npy", W4)
    np.save(tmp_path / "l.npy", L4)
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    return build_experiment(load_config(path))


def _direct_fc(exp, params, key):
    model = exp.model
    model = type(model)(**{**model.parameters(), "eta": jnp.asarray(params["eta"])})
    coupling = vbt.Linear(G=params["G"])
    kw = exp.simulate_kwargs()
    kw["coupling"] = coupling
    sol = vbt.simulate(
        model, exp.connectome, key=key, initial_state=jnp.asarray(exp.initial_state), **kw
    )
    x = np.asarray(sol["tavg"][:, 0, :], float)
    return np.corrcoef(x, rowvar=False)


def test_simulated_fc_equals_direct_simulations(experiment):
    keys = jax.random.split(jax.random.key(3), 2)
    fw = inf.Simulated(experiment, keys, ("fc", "amplitude"), source="tavg")
    params = {"eta": jnp.array([-4.5, -4.9, -5.0, -4.6]), "G": jnp.asarray(0.3)}
    out = jax.jit(fw.__call__)(params)
    fcs = [_direct_fc(experiment, params, k) for k in keys]
    want = np.tanh(np.mean([np.arctanh(np.clip(f, -0.999999, 0.999999)) for f in fcs], axis=0))
    # float32 simulation and correlation: agreement to a few float32 ulps of r
    np.testing.assert_allclose(np.asarray(out["fc"]), want, atol=2e-5)
    assert out["amplitude"].shape == (4,) and np.all(np.asarray(out["amplitude"]) > 0)


@pytest.mark.slow
def test_simulated_gradient_finite_and_matches_fd(experiment):
    keys = jax.random.split(jax.random.key(5), 2)
    fw = inf.Simulated(experiment, keys, ("fc",), source="tavg")
    base = {"eta": jnp.array([-4.5, -4.9, -5.0, -4.6])}

    def loss(G):
        fc = fw({**base, "G": G})["fc"]
        return jnp.sum(jnp.triu(fc, 1))

    g = jax.jit(jax.grad(loss))(jnp.asarray(0.3))
    h = 1e-2  # float32 simulation: a coarse central difference of a smooth loss
    loss = jax.jit(loss)  # one compile for both evaluations
    fd = (loss(jnp.asarray(0.3 + h)) - loss(jnp.asarray(0.3 - h))) / (2 * h)
    assert np.isfinite(g)
    np.testing.assert_allclose(float(g), float(fd), rtol=0.1, atol=1e-3)


def test_simulated_checks_monitors(experiment):
    keys = jax.random.split(jax.random.key(0), 1)
    with pytest.raises(ArgumentError, match="bold"):
        inf.Simulated(experiment, keys, ("fc",), source="bold")
    with pytest.raises(ArgumentError, match="bands"):
        inf.Simulated(experiment, keys, ("band_power",), band_source="tavg")


def test_simulated_fcd_quantiles_equal_direct(experiment):
    """FCD quantiles of the forward map equal those of a direct simulation (one seed)."""
    keys = jax.random.split(jax.random.key(11), 1)
    fw = inf.Simulated(
        experiment,
        keys,
        ("fcd_quantiles",),
        source="tavg",
        fcd_window=8,
        fcd_step=2,
        quantiles=(0.1, 0.5, 0.9),
    )
    params = {"eta": jnp.array([-4.5, -4.9, -5.0, -4.6]), "G": jnp.asarray(0.3)}
    got = np.asarray(fw(params)["fcd_quantiles"])
    model = type(experiment.model)(**{**experiment.model.parameters(), "eta": params["eta"]})
    kw = experiment.simulate_kwargs()
    kw["coupling"] = vbt.Linear(G=params["G"])
    sol = vbt.simulate(
        model,
        experiment.connectome,
        key=keys[0],
        initial_state=jnp.asarray(experiment.initial_state),
        **kw,
    )
    x = np.asarray(sol["tavg"][:, 0, :], float)
    # independent NumPy FCD: windows of 8 samples every 2, correlation of FC upper triangles,
    # pairs of windows at least 4 windows apart (non-overlapping)
    iu = np.triu_indices(4, 1)
    starts = range(0, x.shape[0] - 8 + 1, 2)
    fcs = np.array([np.corrcoef(x[s : s + 8], rowvar=False)[iu] for s in starts])
    m = np.corrcoef(fcs)
    i, j = np.triu_indices(len(fcs), 4)
    want = np.quantile(m[i, j], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_default_prior_from_parameter_ranges():
    from vbt_jax.models import MontbrioPazoRoxin

    lo, hi = MontbrioPazoRoxin.parameter_ranges["eta"]
    g = inf.default_prior(MontbrioPazoRoxin, "eta")
    assert (g.dist, g.low, g.high) == ("uniform", lo, hi)
    r = inf.default_prior(MontbrioPazoRoxin, "eta", regional=True, n_regions=5)
    assert r.loc == 0.5 * (lo + hi) and r.scale == (hi - lo) / 4 and r.n_maps == 0
    with pytest.raises(ArgumentError, match="no range for 'nope'"):
        inf.default_prior(MontbrioPazoRoxin, "nope")
