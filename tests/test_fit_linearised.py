"""The linearised route in `vbt fit` (forward = "linearised"), map-only regional priors and the
model-free baselines written beside every fit's held-out FC r."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import inference as inf
import vbt_jax as vbt
from inference.fit import load_fit_config, setup_fit
from vbt_jax import ArgumentError, ConfigError

RWW_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fit_rww_dk84.toml"


def _edited(tmp_path, old, new):
    text = RWW_CONFIG.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "fit.toml"
    path.write_text(text.replace(old, new))
    return path


def test_map_only_regional_prior_is_the_maps_linear_function():
    """tau_scale = 0: no spread and no per-region sites; theta_i = exp(mu + beta m_i)."""
    m = np.linspace(-1.5, 1.5, 7)
    p = inf.Regional("w_p", 7, link="log", loc=0.3, scale=0.2, maps=m, tau_scale=0.0)
    assert p.hyper_sites == ("w_p_mu", "w_p_beta")
    tr = numpyro.handlers.trace(numpyro.handlers.seed(p.sample, jax.random.key(3))).get_trace()
    assert set(tr) == {"w_p_mu", "w_p_beta", "w_p"}
    mu, beta = float(tr["w_p_mu"]["value"]), np.asarray(tr["w_p_beta"]["value"])
    np.testing.assert_allclose(tr["w_p"]["value"], np.exp(mu + m * beta[0]), rtol=1e-6)
    # scale = 0 as well: the group mean is held at loc, only the map slope is sampled
    p = inf.Regional("w_p", 7, link="log", loc=0.3, scale=0.0, maps=m, tau_scale=0.0)
    assert p.hyper_sites == ("w_p_beta",)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(p.sample, jax.random.key(4))).get_trace()
    assert set(tr) == {"w_p_beta", "w_p"}
    beta = np.asarray(tr["w_p_beta"]["value"])
    np.testing.assert_allclose(tr["w_p"]["value"], np.exp(0.3 + m * beta[0]), rtol=1e-6)
    with pytest.raises(ArgumentError, match="tau_scale = 0.*centred"):
        inf.Regional("w_p", 7, maps=m, tau_scale=0.0, centred=True)
    with pytest.raises(ArgumentError, match="tau_scale must be a non-negative number"):
        inf.Regional("w_p", 7, maps=m, tau_scale=-1.0)


def test_rww_config_builds_the_linearised_fic_twin():
    """The shipped Wong-Wang config: BOLD observation, FIC solved again at every draw, the
    forward map's FC equal to vbt.linearise on the model with FIC solved by bisection
    (with_fic, independent of the forward map's Newton solve)."""
    from vbt_jax.models import with_fic

    setup = setup_fit(load_fit_config(RWW_CONFIG))
    fwd = setup.twin.forward
    assert isinstance(fwd, inf.Linearised) and fwd.route == "linearised"
    assert fwd.observe == "bold" and fwd.fic and fwd.fic_rate == 3.0
    assert [p.name for p in setup.twin.priors] == ["G", "w_p"]
    w_p = 1.4 * np.exp(0.05 * setup.maps["receptor:NMDA"])
    G = 0.27
    fc = np.asarray(jax.jit(lambda p: fwd(p)["fc"])({"G": G, "w_p": jnp.asarray(w_p)}))
    exp = setup.experiment
    model = with_fic(
        vbt.models.ReducedWongWangExcInh(w_p=jnp.asarray(w_p)), exp.connectome.weights, G
    )
    lin_fc = jax.jit(
        lambda m: vbt.linearise(
            m, exp.connectome, noise=exp.noise, coupling=vbt.Linear(G=G), observe="bold"
        ).fc()
    )
    np.testing.assert_allclose(fc, np.asarray(lin_fc(model)), atol=2e-4)
    # the check simulates the same network: FIC solved at the draw's G, not the config's
    m_check, c_check, _ = jax.jit(lambda p: fwd.network(p))({"G": G, "w_p": jnp.asarray(w_p)})
    assert float(c_check.G) == pytest.approx(G)
    np.testing.assert_allclose(np.asarray(m_check.J_i), np.asarray(model.J_i), rtol=1e-4)


@pytest.mark.parametrize(
    "old, new, pattern",
    [
        ("[fit.priors.w_p]", "[fit.priors.w_q]", r"\[fit.priors.w_q\]: 'w_q' is not a parameter"),
        ("[fit.priors.w_p]", "[fit.priors.J_i]", r"J_i is solved by feedback inhibition"),
    ],
)
def test_linearised_config_refuses_parameters_it_cannot_set(tmp_path, old, new, pattern):
    cfg = load_fit_config(_edited(tmp_path, old, new))
    with pytest.raises(ConfigError, match=pattern):
        setup_fit(cfg, learn_centring=False)


def test_linearised_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"forward = 'linearised' needs a \[noise\]"):
        load_fit_config(_edited(tmp_path, "nsig = [1e-5, 1e-5]", "nsig = [0.0, 0.0]"))
    with pytest.raises(ConfigError, match="band_power needs forward"):
        load_fit_config(_edited(tmp_path, 'fc = "dk84"', 'fc = "dk84"\nband_power = "meg_hansen"'))


def test_baselines_on_the_held_out_edges():
    """The SC and g_i + g_j baselines against direct NumPy computations on the same edges;
    an FC built as tanh(g_i + g_j) is predicted almost exactly by the regional baseline."""
    from inference.fit._checks import baselines

    setup = setup_fit(load_fit_config(RWW_CONFIG), learn_centring=False)
    n = 84
    iu = np.triu_indices(n, 1)
    te = ~setup.train_edges
    w = np.asarray(setup.experiment.connectome.weights)[iu]
    assert (w > 0).all()  # the DK-84 connectome is dense: no floor is applied
    b = baselines(setup)
    fc = setup.fc[iu]
    assert b["baseline_sc_r_heldout"] == pytest.approx(np.corrcoef(np.log(w[te]), fc[te])[0, 1])
    g = np.random.default_rng(0).normal(0.0, 0.15, n)
    fake = np.eye(n)
    fake[iu] = np.tanh(g[iu[0]] + g[iu[1]])
    fake[iu[1], iu[0]] = fake[iu]
    b = baselines(dataclasses.replace(setup, fc=fake))
    assert b["baseline_regional_r_heldout"] > 0.99


def test_draws_without_a_stationary_state_have_zero_density():
    """Past the FIC state's stability (G = 0.6 on DK-84, where the Jacobian has an eigenvalue
    with positive real part) the twin's log density is -inf, not NaN, and the features are
    finite placeholders; below it (G = 0.3) the density is finite."""
    from numpyro.infer.util import log_density

    setup = setup_fit(load_fit_config(RWW_CONFIG), learn_centring=False)
    twin = setup.twin
    fwd = twin.forward
    drift = jax.jit(lambda p: fwd.linearise(p).drift)
    forward = jax.jit(lambda p: fwd(p))
    density = jax.jit(lambda v: log_density(twin, (setup.data,), {}, v)[0])
    for G, stable in ((0.3, True), (0.6, False)):
        p = {"G": jnp.asarray(G), "w_p": jnp.full(84, 1.4)}
        assert (np.linalg.eigvals(np.asarray(drift(p), float)).real.max() < 0) == stable
        out = forward(p)
        assert bool(out["stationary"]) == stable and np.isfinite(np.asarray(out["fc"])).all()
        lp = float(density({"G": jnp.asarray(G), "w_p_beta": jnp.zeros(1), "sigma_fc": 0.2}))
        assert np.isfinite(lp) == stable and not np.isnan(lp)
