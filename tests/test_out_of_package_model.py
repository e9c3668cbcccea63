"""A model written outside the package, with the public API only, gets what the shipped models
get from what its class declares: the custom adjoint's per-region reverse step
(``region_local``), the default stimulation input (``stimulus_parameter``) and the drug
presets (``mechanisms``). A model that mixes regions and does not declare ``region_local``
still gets the right gradient.

Gradients are compared in float64 with ``simulate(..., adjoint="autodiff")`` (JAX's own
differentiation of the loop) to 1e-10 relative to the largest component, as in
``tests/test_adjoint.py``, and with central finite differences; stimulation and drug effects
with NumPy computations written here.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax.interventions import (
    Occupancy,
    Stimulation,
    antipsychotic_d2,
    ketamine_nmda,
    psychedelic_5ht2a,
)
from vbt_jax.models import AbstractModel, Mechanism
from vbt_jax.monitors import Raw, TemporalAverage


class DrivenOscillator(AbstractModel):
    """A damped oscillator per region driven through a saturating input:
    ``x' = y``, ``y' = -omega^2 x - gamma y + tanh(gain (c + I))`` (time in ms).

    Each region's derivative reads only its own state and input, so the class declares
    ``region_local``; ``I`` is its external input, and ``gain`` is what an excitatory-gain drug
    scales.
    """

    omega: float | jax.Array = 0.3
    gamma: float | jax.Array = 0.1
    gain: float | jax.Array = 1.5
    I: float | jax.Array = 0.0  # noqa: E741

    state_names: ClassVar[tuple[str, ...]] = ("x", "y")
    state_ranges: ClassVar[dict[str, tuple[float, float]]] = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]] = {"gain": (0.5, 3.0)}
    bold_var: ClassVar[str] = "x"
    eeg_var: ClassVar[str] = "x"
    region_local: ClassVar[bool] = True
    stimulus_parameter: ClassVar[str | None] = "I"
    mechanisms: ClassVar[dict[str, Mechanism]] = {
        "excitatory_gain": Mechanism("gain", 0.3, "The input gain scaled."),
    }

    def dfun(self, state, coupling):
        x, y = state[0], state[1]
        drive = jnp.tanh(self.gain * (coupling[0] + self.I))
        return jnp.stack([y, -(self.omega**2) * x - self.gamma * y + drive])


class MeanFieldLeak(AbstractModel):
    """``x' = -x / tau + k (mean_j x_j - x) + c``: every region reads the network mean of the
    current states, so this class must not (and does not) declare ``region_local``."""

    tau: float | jax.Array = 5.0
    k: float | jax.Array = 0.2

    state_names: ClassVar[tuple[str, ...]] = ("x",)
    state_ranges: ClassVar[dict[str, tuple[float, float]]] = {"x": (0.0, 1.0)}
    parameter_ranges: ClassVar[dict[str, tuple[float, float]]] = {"k": (0.0, 1.0)}
    bold_var: ClassVar[str] = "x"
    eeg_var: ClassVar[str] = "x"

    def dfun(self, state, coupling):
        x = state[0]
        return (-x / self.tau + self.k * (jnp.mean(x) - x) + coupling[0])[None]


class MeanFieldClaimedLocal(MeanFieldLeak):
    """The same dynamics with a false ``region_local`` declaration."""

    region_local: ClassVar[bool] = True


def _connectome(n=5, seed=3):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.2, 1.0, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    np.fill_diagonal(W, 0.5)  # zero-length self-connections: read the current state
    L = rng.uniform(3.0, 25.0, (n, n))
    np.fill_diagonal(L, 0.0)
    return vbt.Connectome(W, L)


def _value_and_grad(loss, params, adjoint):
    return jax.jit(jax.value_and_grad(functools.partial(loss, adjoint=adjoint)))(params)


def _assert_close(g_new, g_ref, rtol):
    flat_new, flat_ref = jax.tree.leaves(g_new), jax.tree.leaves(g_ref)
    assert len(flat_new) == len(flat_ref)
    for a, b in zip(flat_new, flat_ref):
        a, b = np.asarray(a), np.asarray(b)
        scale = np.max(np.abs(b))
        assert scale > 0.0  # every input really influences the loss
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def test_declarations_are_read_from_the_class():
    assert DrivenOscillator.region_local and not MeanFieldLeak.region_local
    assert MeanFieldClaimedLocal.region_local
    assert DrivenOscillator.mechanisms["excitatory_gain"].parameters == ("gain",)


def test_region_local_model_custom_adjoint_matches_autodiff(x64):
    """Gradient w.r.t. per-region model parameters, the coupling strength, the noise and the
    initial state, with delays, zero-delay self-connections, noise and two monitors."""
    conn = _connectome()
    n = conn.n_regions
    c_raw = jnp.asarray(np.random.default_rng(0).normal(size=(40, 2, n)))
    c_avg = jnp.asarray(np.random.default_rng(1).normal(size=(8, 2, n)))

    def loss(p, adjoint):
        sol = vbt.simulate(
            DrivenOscillator(omega=p["omega"], gain=p["gain"], I=p["I"]),
            conn,
            dt=0.1,
            duration=40.0,
            key=jr.key(1),
            coupling=vbt.Linear(G=p["G"]),
            noise=vbt.Additive(nsig=p["nsig"]),
            monitors=(Raw(period=1.0), TemporalAverage(period=5.0)),
            initial_state=p["x0"],
            dtype=jnp.float64,
            unroll=1,
            adjoint=adjoint,
        )
        return jnp.sum(c_raw * sol["raw"]) + jnp.sum(c_avg * sol["tavg"])

    params = {
        "omega": jnp.linspace(0.2, 0.4, n),
        "gain": jnp.asarray(1.5),
        "I": jnp.linspace(-0.1, 0.1, n),
        "G": jnp.asarray(0.3),
        "nsig": jnp.asarray([1e-3, 2e-3]),
        "x0": jnp.asarray([0.3, -0.2]),
    }
    f_new, g_new = _value_and_grad(loss, params, "custom")
    f_ref, g_ref = _value_and_grad(loss, params, "autodiff")
    assert f_new == f_ref
    _assert_close(g_new, g_ref, 1e-10)


def test_region_mixing_model_gets_the_right_gradient(x64):
    """A model whose step reads every region's current state, without ``region_local``: the
    custom adjoint equals autodiff and central finite differences. The same dynamics falsely
    declared region-local get a different gradient, so the declaration is what keeps the
    safe reverse step."""
    conn = _connectome(seed=7)
    n = conn.n_regions
    c_raw = jnp.asarray(np.random.default_rng(2).normal(size=(30, 1, n)))
    x0 = jnp.asarray(np.random.default_rng(3).uniform(0.0, 1.0, (1, n)))

    def loss(p, adjoint, cls=MeanFieldLeak):
        sol = vbt.simulate(
            cls(tau=p["tau"], k=p["k"]),
            conn,
            dt=0.1,
            duration=30.0,
            key=jr.key(2),
            coupling=vbt.Linear(G=p["G"]),
            noise=vbt.Additive(nsig=1e-3),
            monitors=Raw(period=1.0),
            initial_state=p["x0"],
            dtype=jnp.float64,
            unroll=1,
            adjoint=adjoint,
        )
        return jnp.sum(c_raw * sol["raw"])

    params = {"tau": jnp.asarray(5.0), "k": jnp.asarray(0.2), "G": jnp.asarray(0.3), "x0": x0}
    f_new, g_new = _value_and_grad(loss, params, "custom")
    f_ref, g_ref = _value_and_grad(loss, params, "autodiff")
    assert f_new == f_ref
    _assert_close(g_new, g_ref, 1e-10)

    forward = jax.jit(functools.partial(loss, adjoint="custom"))
    h = 1e-5
    for name in ("k", "tau", "G"):
        up = forward({**params, name: params[name] + h})
        down = forward({**params, name: params[name] - h})
        np.testing.assert_allclose(float(g_new[name]), (up - down) / (2 * h), rtol=1e-6)

    _, g_claimed = _value_and_grad(
        functools.partial(loss, cls=MeanFieldClaimedLocal), params, "custom"
    )
    assert abs(float(g_claimed["k"]) - float(g_ref["k"])) > 1e-3 * abs(float(g_ref["k"]))


def test_stimulation_drives_the_declared_input(x64):
    """Stimulation without ``parameter=`` offsets ``DrivenOscillator.I`` in its targets while
    it is on; the run equals an Euler loop written here with that input switched on and off."""
    n, dt, T = 3, 0.1, 30.0
    onset, length, amp = 10.0, 8.0, np.array([0.4, -0.25])
    conn = vbt.Connectome(np.zeros((n, n)), np.zeros((n, n)), labels=("A", "B", "C"))
    model = DrivenOscillator(I=jnp.asarray([0.05, 0.0, -0.05]))
    stim = Stimulation(["A", "C"], jnp.asarray(amp), onset, length)

    assert stim.parameter_for(model) == "I"
    on = stim.apply(model, conn)
    np.testing.assert_array_equal(np.asarray(on.I), [0.05 + 0.4, 0.0, -0.05 - 0.25])
    np.testing.assert_array_equal(np.asarray(on.gain), np.asarray(model.gain))

    x0 = np.array([[0.2, -0.1, 0.0], [0.0, 0.1, -0.2]])
    sol = stim.run(
        model,
        conn,
        duration=T,
        dt=dt,
        solver="euler",
        initial_state=jnp.asarray(x0),
        monitors=Raw(period=dt),
        dtype=jnp.float64,
    )
    x, out = x0.copy(), []
    base, offset = np.array([0.05, 0.0, -0.05]), np.array([amp[0], 0.0, amp[1]])
    k_on, k_off = round(onset / dt), round((onset + length) / dt)
    for k in range(round(T / dt)):
        inp = base + offset if k_on <= k < k_off else base  # step k runs from t = k dt
        drive = np.tanh(1.5 * inp)  # no coupling: zero weights
        dx = np.stack([x[1], -(0.3**2) * x[0] - 0.1 * x[1] + drive])
        x = x + dt * dx
        out.append(x.copy())
    np.testing.assert_allclose(np.asarray(sol["raw"]), np.asarray(out), rtol=0, atol=1e-12)


def test_stimulation_of_a_model_declaring_no_input_names_it():
    with pytest.raises(vbt.ArgumentError, match=r"MeanFieldLeak declares no stimulus_parameter"):
        Stimulation([0], 0.1, 0.0, 1.0).parameter_for(MeanFieldLeak())
    assert Stimulation([0], 0.1, 0.0, 1.0, parameter="k").parameter_for(MeanFieldLeak()) == "k"


def test_drug_presets_act_through_the_declared_mechanism(x64):
    """psychedelic_5ht2a strengthens and antipsychotic_d2 weakens the model's declared
    ``excitatory_gain`` mechanism: ``gain * (1 +- 0.3 occ(dose) rho)``, with the Hill
    occupancy written out here; a preset whose mechanism the model lacks names both."""
    rho = np.array([0.0, 0.25, 1.0, 0.6])
    model = DrivenOscillator(gain=jnp.asarray([1.0, 1.5, 2.0, 2.5]))
    dose, ec50 = 3.0, 2.0
    occ = dose / (dose + ec50)
    for factory, sign in ((psychedelic_5ht2a, 1.0), (antipsychotic_d2, -1.0)):
        for arg in (DrivenOscillator, model):
            drug = factory(arg, occupancy=Occupancy(ec50=ec50))
            assert drug.parameter == ("gain",) and drug.efficacy == sign * 0.3
            out = drug.apply(model, dose, density=jnp.asarray(rho))
            expected = np.array([1.0, 1.5, 2.0, 2.5]) * (1.0 + sign * 0.3 * occ * rho)
            np.testing.assert_allclose(np.asarray(out.gain), expected, rtol=1e-14)
            np.testing.assert_array_equal(np.asarray(out.I), np.asarray(model.I))
    assert "The input gain scaled." in psychedelic_5ht2a(DrivenOscillator).describe()
    with pytest.raises(
        vbt.ArgumentError, match=r"DrivenOscillator declares no 'feedback_inhibition' mechanism"
    ):
        ketamine_nmda(DrivenOscillator)
    with pytest.raises(vbt.ArgumentError, match=r"MeanFieldLeak declares no 'excitatory_gain'"):
        psychedelic_5ht2a(MeanFieldLeak())


def test_mechanism_declaration_is_validated():
    with pytest.raises(ValueError, match="Mechanism.parameters"):
        Mechanism((), 0.2)
    with pytest.raises(ValueError, match="Mechanism.efficacy"):
        Mechanism("gain", float("nan"))


def test_out_of_package_models_linearise(x64):
    """The linearisation protocol needs nothing from the package either: from the default guess
    (the middle of state_ranges) Newton finds a state where the network's equations, written
    out here with the coupling by hand, vanish; the covariance is SciPy's Lyapunov solution;
    for a region-local and a region-mixing model alike."""
    import scipy.linalg as sl

    conn = _connectome()
    W = np.asarray(conn.weights)
    for model, coupling in (
        (DrivenOscillator(I=0.2), vbt.Linear(G=0.05)),
        (MeanFieldLeak(k=0.3), vbt.Linear(G=0.05, b=0.1)),
    ):
        lin = vbt.linearise(model, conn, noise=vbt.Additive(1e-4), coupling=coupling)
        s = model.n_states

        def rhs(v):
            x = v.reshape(s, -1)
            c = coupling.G * (W @ x[0]) + coupling.b
            return np.asarray(model.dfun(jnp.asarray(x), jnp.asarray(c)[None])).reshape(-1)

        x = np.asarray(lin.state).reshape(-1)
        assert np.abs(x).max() > 0.1  # not the trivial state: the input moves it
        assert np.abs(rhs(x)).max() < 1e-12
        assert lin.max_real_eigenvalue() < 0
        A = np.asarray(lin.drift)
        P = sl.solve_continuous_lyapunov(A, -np.diag(np.asarray(lin.diffusion)))
        np.testing.assert_allclose(
            np.asarray(lin.covariance()), P[: W.shape[0], : W.shape[0]], rtol=1e-8
        )
