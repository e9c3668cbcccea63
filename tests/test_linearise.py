"""The linearisation protocol (vbt_jax.linearise): fixed points, Jacobians, covariances, spectra.

References: SciPy's float64 Lyapunov solver, the closed-form Hopf FC, the analytic FIC state of
the Wong-Wang model, central finite differences, and the nonlinear noisy simulator.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl
from scipy.signal import welch

import vbt_jax as vbt
from vbt_jax.models import JansenRit, MontbrioPazoRoxin, ReducedWongWangExcInh, StuartLandau
from vbt_jax.models.wong_wang import with_fic
from vbt_jax.monitors import Raw


def _small(step=9):
    conn = vbt.dk84().normalised("max")
    idx = np.arange(0, 84, step)
    W = np.asarray(conn.weights)[np.ix_(idx, idx)]
    L = np.asarray(conn.lengths)[np.ix_(idx, idx)]
    return vbt.Connectome(weights=W, lengths=L, labels=tuple(conn.labels[i] for i in idx))


def _cases(W):
    rww = with_fic(ReducedWongWangExcInh(), W, 0.3)
    return {
        "wong_wang": (rww, vbt.Linear(G=0.3), vbt.Additive(1e-4)),
        "mpr": (MontbrioPazoRoxin(), vbt.Linear(G=0.2), vbt.Additive(1e-3)),
        "hopf": (StuartLandau(a=-0.02, omega=0.3), vbt.Difference(G=0.01), vbt.Additive(1e-4)),
        # below its limit cycle: a weaker input than TVB's default mu = 0.22
        "jansen_rit": (
            JansenRit(mu=0.05),
            None,
            vbt.Additive(np.array([0.0, 0.0, 0.0, 0.0, 1e-6, 0.0])),
        ),
    }


def test_every_model_has_a_linearisation_case():
    from vbt_jax.models import MODELS

    assert set(_cases(np.ones((2, 2)))) == set(MODELS)


@pytest.mark.parametrize("name", ["wong_wang", "mpr", "hopf", "jansen_rit"])
@pytest.mark.parametrize("observe", ["neural", "bold"])
def test_fixed_point_jacobian_and_covariance_float64(x64, name, observe):
    """Newton finds a stable fixed point from the model's guess; the assembled Jacobian is the
    network's (all edges instantaneous); the covariance solves the Lyapunov equation as SciPy's
    Bartels-Stewart solver does."""
    conn = _small()
    model, coupling, noise = _cases(np.asarray(conn.weights))[name]
    lin = vbt.linearise(model, conn, noise=noise, coupling=coupling, observe=observe)
    assert float(lin.residual) < 1e-10
    assert lin.max_real_eigenvalue() < 0
    s = model.n_states * conn.n_regions
    J = vbt.network_jacobian(model, np.asarray(conn.weights), coupling, np.asarray(lin.state))
    np.testing.assert_allclose(np.asarray(lin.drift)[:s, :s], J, rtol=1e-12, atol=1e-14)
    A = np.asarray(lin.drift)
    P = sl.solve_continuous_lyapunov(A, -np.diag(np.asarray(lin.diffusion)))
    C = np.asarray(lin.observation)
    ref = C @ P @ C.T
    np.testing.assert_allclose(
        np.asarray(lin.covariance()), ref, rtol=1e-8, atol=1e-8 * abs(ref).max()
    )
    if observe == "bold":
        assert lin.drift.shape == (s + 4 * conn.n_regions,) * 2


def test_wong_wang_fixed_point_is_the_fic_state(x64):
    """Under feedback inhibition control every excitatory pool fires at 3 Hz: S_E* has the
    closed form g t r / (1 + g t r), and J_i was solved for the S_I* that Newton finds."""
    conn = _small()
    model = with_fic(ReducedWongWangExcInh(), np.asarray(conn.weights), 0.3)
    lin = vbt.linearise(model, conn, noise=vbt.Additive(1e-4), coupling=vbt.Linear(G=0.3))
    gtr = model.gamma_e * model.tau_e * 3.0
    np.testing.assert_allclose(np.asarray(lin.state[0]), gtr / (1 + gtr), rtol=1e-10)
    r_e, _ = model.firing_rates(lin.state, 0.3 * (jnp.asarray(conn.weights) @ lin.state[0])[None])
    np.testing.assert_allclose(np.asarray(r_e), 3.0, rtol=1e-8)


def test_hopf_linearisation_is_the_closed_form_fc(x64):
    """For the Stuart-Landau network with symmetric weights the generic route gives the closed
    form of vbt.hopf_fc_symmetric."""
    conn = _small(6)
    W = np.asarray(conn.weights)
    W = 0.5 * (W + W.T)
    conn = vbt.Connectome(weights=W, lengths=np.asarray(conn.lengths), labels=conn.labels)
    a = -0.01 * np.exp(np.random.default_rng(0).normal(size=conn.n_regions))
    G = 0.004
    model = StuartLandau(a=jnp.asarray(a), omega=0.2)
    lin = vbt.linearise(model, conn, noise=vbt.Additive(1e-6), coupling=vbt.Difference(G=G))
    ref = np.asarray(vbt.hopf_fc_symmetric(jnp.asarray(a), jnp.asarray(W), G))
    np.testing.assert_allclose(np.asarray(lin.fc()), ref, atol=1e-10)


def test_bold_cross_spectrum_integrates_to_the_covariance(x64):
    """The one-sided cross-spectral density (delays dropped) integrates over frequency to the
    Lyapunov covariance: two independent routes to the same second moments."""
    conn = _small(12)
    model = with_fic(ReducedWongWangExcInh(), np.asarray(conn.weights), 0.3)
    lin = vbt.linearise(
        model, conn, noise=vbt.Additive(1e-4), coupling=vbt.Linear(G=0.3), observe="bold"
    )
    f = np.geomspace(1e-5, 50.0, 4001)
    S = np.real(np.asarray(lin.cross_spectrum(f, delays=False)))
    integral = np.trapezoid(S, f, axis=0)
    cov = np.asarray(lin.covariance())
    np.testing.assert_allclose(integral, cov, rtol=2e-3, atol=2e-3 * abs(cov).max())


def test_fc_gradient_matches_finite_differences_float64(x64):
    """The gradient of the linearised BOLD FC in the coupling runs through the implicit fixed
    point (custom_root), the Jacobian and the Lyapunov solve; central differences in float64."""
    conn = _small()
    model = with_fic(ReducedWongWangExcInh(), np.asarray(conn.weights), 0.3)

    def loss(G):
        lin = vbt.linearise(
            model, conn, noise=vbt.Additive(1e-4), coupling=vbt.Linear(G=G), observe="bold"
        )
        return jnp.sum(jnp.triu(lin.fc(), 1))

    g = float(jax.jit(jax.grad(loss))(0.3))
    h = 1e-5
    fd = (float(loss(0.3 + h)) - float(loss(0.3 - h))) / (2 * h)
    assert g != 0.0
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_delayed_spectrum_matches_the_nonlinear_simulation(x64):
    """A Stuart-Landau network at 40 Hz with conduction delays of 12-67 ms, simulated with small
    noise: its Welch spectrum (mean over regions) agrees with the linearised spectrum that keeps
    the delays, and that one is closer than the spectrum that drops them."""
    conn = _small()
    n = conn.n_regions
    model = StuartLandau(a=-0.1, omega=2 * np.pi * 40 / 1000)
    coupling, noise = vbt.Difference(G=1.0), vbt.Additive(1e-6)
    lin = vbt.linearise(model, conn, noise=noise, coupling=coupling, speed=3.0)
    sol = vbt.simulate(
        model,
        conn,
        dt=0.1,
        duration=40_000.0,
        key=jax.random.key(1),
        coupling=coupling,
        noise=noise,
        initial_state=jnp.zeros((2, n)),
        monitors=Raw(period=1.0),
        speed=3.0,
    )
    x = np.asarray(sol["raw"])[2000:, 0, :]
    f, P = welch(x, fs=1000.0, nperseg=1000, axis=0)
    band = (f > 5) & (f < 100)
    sim = P[band].mean(1)
    err = {}
    for delays in (True, False):
        S = np.asarray(lin.power_spectrum(f[band], delays=delays)).mean(1)
        err[delays] = float(np.median(np.abs(S - sim) / sim))
    print("median relative error, with / without delays:", err)
    # the Welch estimate itself scatters by ~4% per bin (38 segments, 10 regions averaged)
    assert err[True] < 0.06
    assert err[True] < 0.6 * err[False]


def test_linearise_rejects_bad_input():
    conn = _small()
    model = StuartLandau(a=-0.02)
    with pytest.raises(vbt.ArgumentError, match="observe must be one of"):
        vbt.linearise(model, conn, noise=vbt.Additive(1e-4), observe="meg")
    with pytest.raises(vbt.ArgumentError, match="pass the noise"):
        vbt.linearise(model, conn, noise=None)
    with pytest.raises(vbt.ShapeError, match="leadfield must be"):
        vbt.linearise(
            model, conn, noise=vbt.Additive(1e-4), observe="eeg", leadfield=np.ones((3, 4))
        )
    with pytest.raises(vbt.ShapeError, match="guess for StuartLandau on 10 regions"):
        vbt.linearise(model, conn, noise=vbt.Additive(1e-4), guess=np.zeros((3,)))
    bad = eqx.tree_at(lambda m: m.a, model, 0.5)  # above the bifurcation: the origin is unstable
    lin = vbt.linearise(bad, conn, noise=vbt.Additive(1e-4))
    assert lin.max_real_eigenvalue() > 0


def test_feedback_inhibition_is_with_fic_in_jax(x64):
    """The traceable FIC solve gives with_fic's float64 bisection J_i, and its gradient in G
    (implicit, through both Newton solves) matches central differences."""
    from vbt_jax.models import feedback_inhibition

    W = np.asarray(vbt.dk84().normalised("max").weights)
    model = ReducedWongWangExcInh(w_p=1.3)
    for G in (0.1, 0.3, 0.5):
        ref = np.asarray(with_fic(model, W, G).J_i)
        got, state = feedback_inhibition(model, W, G)
        np.testing.assert_allclose(np.asarray(got.J_i), ref, rtol=1e-12)
        # the returned state is the fixed point: the drift vanishes there without Newton steps
        lin = vbt.linearise(
            got,
            vbt.Connectome(weights=W),
            noise=vbt.Additive(1e-4),
            coupling=vbt.Linear(G=G),
            guess=state,
            newton_steps=0,
        )
        assert float(lin.residual) < 1e-12

    def loss(G):
        return jnp.sum(feedback_inhibition(model, W, G)[0].J_i ** 2)

    h = 1e-6
    fd = (float(loss(0.3 + h)) - float(loss(0.3 - h))) / (2 * h)
    np.testing.assert_allclose(float(jax.grad(loss)(0.3)), fd, rtol=1e-6)


def test_linearised_forward_map_is_the_fic_network_and_differentiable(x64):
    """inference.Linearised (route "linearised") on Wong-Wang with FIC re-solved per parameter
    set: the FC of vbt.linearise on the with_fic model, and a float64 gradient in a regional
    parameter that matches central differences."""
    import inference as inf

    conn = _small()
    n = conn.n_regions
    fwd = inf.Linearised(
        model=ReducedWongWangExcInh(),
        connectome=conn,
        coupling=vbt.Linear(G=0.3),
        noise=vbt.Additive(1e-4),
        observe="bold",
        fic=True,
    )
    assert fwd.route == "linearised" and inf.HopfLinear.route == "linearised"
    assert inf.Simulated.route == "simulation"
    w_p = 1.4 + 0.05 * np.cos(np.arange(n))
    params = {"G": 0.25, "w_p": jnp.asarray(w_p)}
    fc = np.asarray(eqx.filter_jit(fwd)(params)["fc"])
    m = with_fic(ReducedWongWangExcInh(w_p=w_p), np.asarray(conn.weights), 0.25)
    ref = vbt.linearise(
        m, conn, noise=vbt.Additive(1e-4), coupling=vbt.Linear(G=0.25), observe="bold"
    )
    np.testing.assert_allclose(fc, np.asarray(ref.fc()), atol=1e-10)

    def loss(x):
        fc = fwd({"G": 0.25, "w_p": jnp.asarray(w_p).at[2].set(x)})["fc"]
        return jnp.sum(jnp.triu(fc, 1) ** 2)

    g = float(jax.jit(jax.grad(loss))(w_p[2]))
    h = 1e-6
    fd = (float(loss(w_p[2] + h)) - float(loss(w_p[2] - h))) / (2 * h)
    assert g != 0.0
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    with pytest.raises(vbt.ArgumentError, match="fic=True needs a Wong-Wang model"):
        inf.Linearised(model=StuartLandau(), connectome=conn, coupling=None, noise=None, fic=True)
