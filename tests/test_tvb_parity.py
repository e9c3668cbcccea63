"""Trajectories of vbt_jax models against The Virtual Brain on a delayed 76-region connectome.

The fixtures (``tests/fixtures/tvb_*.npz``) were made by ``tests/fixtures/make_tvb_fixtures.py``
with tvb-library's reference simulator: deterministic Heun, dt = 0.1 ms, connectivity_76 with
conduction delays at 3 mm/ms, an explicit random initial history, 300 ms, every 2 ms stored.
Here the same run is repeated with :func:`vbt_jax.simulate` in float64.

Tolerance. TVB integrates in float64 but keeps the delay buffer of the coupled variables and the
weights in float32 (and sums the linear/difference coupling in float32), so every delayed input
it uses carries a relative rounding error of up to ~6e-8 (float32 eps / 2); the fixtures' weights
are float32-exact, so they add nothing. A float64 re-run therefore differs from TVB by that
rounding propagated through 3000 steps. We compare, per state variable, the largest
``|ours - tvb|`` divided by the variable's largest magnitude in the TVB run against
``RTOL = 1e-6``: float32 rounding grown over the run, with a margin for other platforms'
libm. Plausible mistakes (a 1 % parameter error, the 5.52 vs 6.0 mV sigmoid
midpoint) give 2e-3 to 0.3 (the negative controls below require > 100 RTOL).
"""

from __future__ import annotations

import functools
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax.models import MontbrioPazoRoxin
from vbt_jax.models.hopf import StuartLandau
from vbt_jax.models.jansen_rit import JansenRit
from vbt_jax.models.wong_wang import ReducedWongWangExcInh
from vbt_jax.monitors import Raw

FIXTURES = Path(__file__).parent / "fixtures"
RTOL = 1e-6

MODELS = {
    "mpr": MontbrioPazoRoxin,
    "jansen_rit": JansenRit,
    "wong_wang": ReducedWongWangExcInh,
    "hopf": StuartLandau,
}
COUPLINGS = {"Linear": vbt.Linear, "Sigmoidal": vbt.Sigmoidal, "Difference": vbt.Difference}


@functools.cache
def _load(name: str) -> dict:
    with np.load(FIXTURES / f"tvb_{name}.npz") as f:
        return {k: f[k] for k in f.files}


def _setup(fx: dict):
    params = {k[len("param_") :]: v for k, v in fx.items() if k.startswith("param_")}
    model = MODELS[str(fx["model"])](**params)
    cpar = {k[len("coupling_") :]: float(v) for k, v in fx.items() if k.startswith("coupling_")}
    coupling = COUPLINGS[str(fx["coupling"])](**cpar)
    return model, coupling


# steps per coupling block: 2 keeps compilation short; MPR uses the default (the largest block
# allowed, 10 steps here) so the blocked gather is exercised against TVB as well
BLOCKS = {"mpr": None, "jansen_rit": 2, "wong_wang": 2, "hopf": 2}


@functools.cache
def _runner(name: str):
    """A jitted ``(model, coupling, history) -> raw samples`` for one fixture (compiled once)."""
    fx = _load(name)
    conn = vbt.Connectome(fx["weights"], fx["lengths"])
    dt = float(fx["dt"])
    period = dt * int(fx["every"])

    @jax.jit
    def run(model, coupling, history):
        sol = vbt.simulate(
            model,
            conn,
            dt=dt,
            duration=float(fx["t"][-1]),
            coupling=coupling,
            solver="heun",
            monitors=(Raw(period=period),),
            speed=float(fx["speed"]),
            history=history,
            dtype=jnp.float64,
            block=BLOCKS[name],
        )
        return sol.ts["raw"], sol["raw"]

    return run


def _run(name: str, model, coupling, history) -> np.ndarray:
    fx = _load(name)
    ts, ys = _runner(name)(model, coupling, jnp.asarray(history, jnp.float64))
    np.testing.assert_allclose(np.asarray(ts), fx["t"], rtol=1e-12)
    return np.asarray(ys)


def _errors(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Max abs difference per state variable divided by the variable's TVB scale."""
    scale = np.abs(ref).max(axis=(0, 2))
    return np.abs(ours - ref).max(axis=(0, 2)) / scale


@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_tvb(name):
    fx = _load(name)
    with jax.enable_x64(True):
        model, coupling = _setup(fx)
        ours = _run(name, model, coupling, fx["history"])
    ref = fx["y"]
    assert ours.shape == ref.shape
    err = _errors(ours, ref)
    assert np.all(err < RTOL), f"{name}: relative max errors per variable {err}"


def _scaled(module, field: str, factor: float = 1.01):
    return eqx.tree_at(lambda m: getattr(m, field), module, getattr(module, field) * factor)


# negative controls: a small, plausible mistake must land far outside the tolerance, otherwise
# the comparison above could not catch it
MISTAKES = {
    # the model's v0 instead of TVB's coupling-sigmoid midpoint 6.0
    "jansen_rit": lambda m, c: (m, eqx.tree_at(lambda c: c.midpoint, c, 5.52)),
    "hopf": lambda m, c: (_scaled(m, "omega"), c),  # frequencies 1 % off
    "wong_wang": lambda m, c: (_scaled(m, "J_i"), c),  # FIC weights 1 % off
    "mpr": lambda m, c: (m, _scaled(c, "G")),  # global coupling 1 % off
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_tolerance_detects_small_mistakes(name):
    fx = _load(name)
    with jax.enable_x64(True):
        model, coupling = MISTAKES[name](*_setup(fx))
        ours = _run(name, model, coupling, fx["history"])
    err = _errors(ours, fx["y"])
    assert err.max() > 100 * RTOL, f"{name}: a deliberate mistake went unnoticed ({err})"
