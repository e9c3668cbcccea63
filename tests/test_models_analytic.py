"""Neural mass models against analytic and SciPy float64 references.

Every reference below is computed from the published equations written out again here in NumPy
(not from the models' ``dfun``), so a wrong term in a model shows up as a mismatch:

- fixed points (MPR and Jansen-Rit single nodes, the delayed Wong-Wang network) from
  ``scipy.optimize.fsolve``; the simulated runs must converge to them, with tolerances set by
  the slowest decay rate of the Jacobian at the fixed point;
- feedback inhibition control: at the Wong-Wang fixed point every excitatory pool fires at 3 Hz;
- the stationary covariance of a noisy Hopf network below the bifurcation against the
  continuous Lyapunov equation of its linearisation (statistical tolerance, see the test);
- Jansen-Rit's alpha-band limit cycle for high input (Jansen & Rit 1995).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

import vbt_jax as vbt
from vbt_jax.models import MontbrioPazoRoxin
from vbt_jax.models.hopf import StuartLandau
from vbt_jax.models.jansen_rit import JansenRit
from vbt_jax.models.wong_wang import ReducedWongWangExcInh, with_fic
from vbt_jax.monitors import Raw


def _single_node() -> vbt.Connectome:
    return vbt.Connectome(np.zeros((1, 1)), np.zeros((1, 1)))


def _num_jacobian(f, x: np.ndarray, h: float = 1e-7) -> np.ndarray:
    """Central-difference Jacobian of ``f`` at ``x`` (float64)."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h * max(1.0, abs(x[i]))
        cols.append((f(x + e) - f(x - e)) / (2 * e[i]))
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------------- MPR


def _mpr_rhs(x, eta, J=15.0, Delta=1.0, tau=1.0):
    r, V = x
    return np.array(
        [
            (Delta / (np.pi * tau) + 2 * V * r) / tau,
            (V**2 - (np.pi * tau * r) ** 2 + eta + J * tau * r) / tau,
        ]
    )


def test_mpr_single_node_converges_to_fixed_point():
    etas = np.array([-10.0, -6.0, -5.0])
    x0 = np.array([0.1, -2.0])
    refs, rates = [], []
    for eta in etas:
        xs = scipy.optimize.fsolve(_mpr_rhs, x0, args=(eta,), xtol=1e-12)
        assert np.abs(_mpr_rhs(xs, eta)).max() < 1e-12
        ev = np.linalg.eigvals(_num_jacobian(lambda x: _mpr_rhs(x, eta), xs))
        assert ev.real.max() < 0, "reference fixed point must be stable"
        refs.append(xs)
        rates.append(-ev.real.max())
    duration = 20.0
    # the distance to the fixed point decays like exp(-rate t) (times a modest constant); the
    # slowest rate here is 2.4 /ms, so after 20 ms exp(-49) of the initial distance is left
    assert min(rates) * duration > 35

    with jax.enable_x64(True):

        @jax.jit
        @jax.vmap
        def final(eta):
            sol = vbt.simulate(
                MontbrioPazoRoxin(eta=eta),
                _single_node(),
                dt=0.1,
                duration=duration,
                initial_state=jnp.asarray(x0),
                monitors=(Raw(period=duration),),
                dtype=jnp.float64,
                block=1,  # short compilation
            )
            return sol.final_state[:, 0]

        got = np.asarray(final(jnp.asarray(etas)))
    # only float64 rounding remains
    np.testing.assert_allclose(got, np.array(refs), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("dt", "inputs"), [(0.1, (2.0, 5.0)), (0.05, (5.0, 20.0)), (0.02, (20.0,))]
)
def test_mpr_high_state_heun_step_size_limit(dt, inputs):
    """The step-size limit stated in ``MontbrioPazoRoxin``'s docstring, against linear theory.

    Near the high-activity fixed point x* (SciPy) a Heun step multiplies a perturbation along
    an eigenvector of the Jacobian (eigenvalue lam) by g = 1 + lam dt + (lam dt)^2 / 2. The
    simulated run must diverge (and be flagged) exactly where max|g| > 1, and otherwise return
    to x*, at the rate max|g| predicts.
    """
    eta, J, Delta = -4.6, 14.5, 0.7
    n_steps = 5000
    pert = np.array([1e-3, 0.0])
    fixed, gains = [], []
    for inp in inputs:

        def f(x, inp=inp):
            return _mpr_rhs(x, eta, J=J, Delta=Delta) + np.array([0.0, inp])

        xs = scipy.optimize.fsolve(f, np.array([2.0, -0.05]), xtol=1e-13)
        assert np.abs(f(xs)).max() < 1e-11 and xs[0] > 1.0, "the high state"
        lam = np.linalg.eigvals(_num_jacobian(f, xs))
        assert lam.real.max() < 0, "the fixed point itself is stable"
        z = lam * dt
        gain = float(np.abs(1 + z + z * z / 2).max())
        # clear of 1: growth or decay by a factor of at least e^8 over the run
        assert abs(np.log(gain)) * n_steps > 8, (inp, dt, gain)
        fixed.append(xs)
        gains.append(gain)

    with jax.enable_x64(True):

        @jax.jit
        @jax.vmap
        def run(inp, x0):
            sol = vbt.simulate(
                MontbrioPazoRoxin(eta=eta, J=J, Delta=Delta, I=inp),
                _single_node(),
                dt=dt,
                duration=n_steps * dt,
                initial_state=x0,
                monitors=(Raw(period=n_steps * dt),),
                dtype=jnp.float64,
                block=1,
                on_divergence="flag",
            )
            return sol.final_state[:, 0], sol.diverged

        x0 = jnp.asarray(np.array(fixed) + pert)
        final, diverged = run(jnp.asarray(inputs), x0)
    final, diverged = np.asarray(final), np.asarray(diverged)
    for inp, xs, gain, xf, div in zip(inputs, fixed, gains, final, diverged, strict=True):
        assert bool(div) == (gain > 1), f"input {inp}, dt {dt}: |g| = {gain:.4f}, diverged {div}"
        if gain < 1:
            # the perturbation shrinks like |g|^n (times the eigenvector basis' condition number,
            # below 20 here)
            bound = 20 * np.abs(pert).max() * gain**n_steps + 1e-12
            assert np.abs(xf - xs).max() < bound, (inp, dt, np.abs(xf - xs).max(), bound)


# ---------------------------------------------------------------------------- Jansen-Rit


def _jr_sigmoid(v, nu_max=0.0025, r=0.56, v0=5.52):
    return 2 * nu_max / (1 + np.exp(r * (v0 - v)))


def _jr_rhs(y, mu, A=3.25, B=22.0, a=0.1, b=0.05, J=135.0):
    """Jansen & Rit (1995) eqs. 6-8 in ms with C1..C4 = J (1, 0.8, 0.25, 0.25)."""
    y0, y1, y2, y3, y4, y5 = y
    return np.array(
        [
            y3,
            y4,
            y5,
            A * a * _jr_sigmoid(y1 - y2) - 2 * a * y3 - a**2 * y0,
            A * a * (mu + 0.8 * J * _jr_sigmoid(1.0 * J * y0)) - 2 * a * y4 - a**2 * y1,
            B * b * 0.25 * J * _jr_sigmoid(0.25 * J * y0) - 2 * b * y5 - b**2 * y2,
        ]
    )


@pytest.fixture(scope="module")
def jr_runs():
    """Isolated Jansen-Rit columns from rest for three inputs mu [1/ms]: (mu, y1 - y2, final)."""
    mus = np.array([0.05, 0.25, 0.32])
    with jax.enable_x64(True):

        @jax.jit
        @jax.vmap
        def run(mu):
            sol = vbt.simulate(
                JansenRit(mu=mu),
                _single_node(),
                dt=0.1,
                duration=3000.0,
                initial_state=jnp.zeros(6),
                monitors=(Raw(period=1.0, variables=("y1", "y2")),),
                dtype=jnp.float64,
                block=1,  # short compilation
            )
            y = sol["raw"][:, :, 0]
            return y[:, 0] - y[:, 1], sol.final_state[:, 0]

        eeg, final = run(jnp.asarray(mus))
    return mus, np.asarray(eeg), np.asarray(final)


def test_jansen_rit_low_input_fixed_point(jr_runs):
    mus, _, final = jr_runs
    mu = mus[0]
    ref = scipy.optimize.fsolve(lambda y: _jr_rhs(y, mu), np.zeros(6), xtol=1e-12)
    assert np.abs(_jr_rhs(ref, mu)).max() < 1e-13
    ev = np.linalg.eigvals(_num_jacobian(lambda y: _jr_rhs(y, mu), ref))
    assert ev.real.max() < 0
    # slowest decay rate ~0.033 /ms: after 3000 ms the transient is below exp(-98) of its start
    assert -ev.real.max() * 3000.0 > 40
    # the transient is gone (exp(-98)); what remains is float64 rounding at the fixed point
    # (values ~3.5 mV)
    np.testing.assert_allclose(final[0], ref, rtol=0, atol=1e-11)


def test_jansen_rit_alpha_limit_cycle(jr_runs):
    from vbt_jax.features import welch_psd

    mus, eeg, _ = jr_runs
    tail = eeg[:, 1000:]  # drop the first second (transient from rest)
    f, psd = welch_psd(jnp.asarray(tail.T), fs=1000.0, nperseg=1000)  # 1 Hz resolution
    peak = np.asarray(f)[np.argmax(np.asarray(psd), axis=0)]
    amplitude = tail.max(axis=1) - tail.min(axis=1)
    # low input: no oscillation at all; mu = 0.25 and 0.32 (within the 120-320 Hz pulse-density
    # range of Jansen & Rit 1995): a limit cycle of several mV peaking in the alpha band
    assert amplitude[0] < 1e-9
    assert np.all(amplitude[1:] > 3.0), amplitude
    assert np.all((peak[1:] >= 8.0) & (peak[1:] <= 13.0)), peak


# ---------------------------------------------------------------------------- Wong-Wang


def _rww_rhs(x, W, G, J_i):
    """Deco et al. (2014) eqs. 2-7 (TVB's parameters, time in ms), full network, no delays."""
    n = W.shape[0]
    S_E, S_I = x[:n], x[n:]
    J_N, I_o = 0.15, 0.382
    I_E = 1.0 * I_o + 1.4 * J_N * S_E + G * J_N * (W @ S_E) - J_i * S_I
    I_I = 0.7 * I_o + J_N * S_E - S_I
    y_e, y_i = 310.0 * I_E - 125.0, 615.0 * I_I - 177.0
    r_E = y_e / (1 - np.exp(-0.16 * y_e))
    r_I = y_i / (1 - np.exp(-0.087 * y_i))
    dS_E = -S_E / 100.0 + (1 - S_E) * 0.641e-3 * r_E
    dS_I = -S_I / 10.0 + 1e-3 * r_I
    return np.concatenate([dS_E, dS_I]), r_E


def test_wong_wang_fic_network_fixed_point():
    conn = vbt.tvb_connectivity(76)
    W = np.asarray(conn.weights) / np.max(conn.weights)
    conn = vbt.Connectome(W, conn.lengths)
    G = 0.05
    model = with_fic(ReducedWongWangExcInh(), W, G)
    n = W.shape[0]
    rng = np.random.default_rng(7)
    x0 = np.stack([rng.uniform(0.05, 0.3, n), rng.uniform(0.0, 0.1, n)])
    duration = 8000.0

    with jax.enable_x64(True):

        @jax.jit
        def final(model):
            sol = vbt.simulate(
                model,
                conn,
                dt=0.1,
                duration=duration,
                coupling=vbt.Linear(G=G),
                initial_state=jnp.asarray(x0),
                monitors=(Raw(period=100.0),),
                dtype=jnp.float64,
                block=1,  # short compilation
            )
            return sol.final_state

        got = np.asarray(final(model))

    def rhs(x):
        return _rww_rhs(x, W, G, np.asarray(model.J_i))[0]

    ref = scipy.optimize.fsolve(rhs, got.ravel(), xtol=1e-12)
    assert np.abs(rhs(ref)).max() < 1e-14
    ev = np.linalg.eigvals(_num_jacobian(rhs, ref))
    # slowest decay rate ~2.7e-3 /ms (without delays)
    assert -ev.real.max() * duration > 20
    # expected remaining distance ~0.3 exp(-2.7e-3 * 8000) ~ 1.2e-10; 1e-9
    # leaves room for the transient constant of a non-normal Jacobian and for the delays
    np.testing.assert_allclose(got.ravel(), ref, rtol=0, atol=1e-9)
    # feedback inhibition control: every excitatory pool at 3 Hz at the fixed point
    r_E = _rww_rhs(ref, W, G, np.asarray(model.J_i))[1]
    np.testing.assert_allclose(r_E, 3.0, rtol=1e-9)


def test_wong_wang_fic_uncoupled_closed_form():
    """Uncoupled (G = 0), the FIC weight solves the single-region steady state directly."""
    J_i = float(with_fic(ReducedWongWangExcInh(), np.zeros((2, 2)), 0.0).J_i[0])
    S_E = 0.641e-3 * 100 * 3 / (1 + 0.641e-3 * 100 * 3)

    def single(x):
        S_I, J = x
        dS, r_E = _rww_rhs(np.array([S_E, S_I]), np.zeros((1, 1)), 0.0, J)
        return [dS[1], r_E[0] - 3.0]

    S_I, J = scipy.optimize.fsolve(single, [0.05, 1.0], xtol=1e-12)
    assert J_i == pytest.approx(J, rel=1e-10)
    # Deco et al. (2014): J_i close to 1 keeps an isolated region near 3 Hz
    assert 0.9 < J_i < 1.1


# --------------------------------------------------------------------------------- Hopf


def test_hopf_stationary_covariance_matches_lyapunov():
    """Linear-noise approximation of a 3-node Stuart-Landau network below the bifurcation.

    For a < 0 and small noise, ``dz = A z dt + sqrt(2 nsig) dW`` with the Jacobian ``A`` at the
    origin (local rotation plus diffusive coupling, no delays), whose stationary covariance P
    solves ``A P + P A^T + 2 nsig I = 0``. Neglected: the cubic terms (relative effect
    ~ E[x^2 + y^2] / |a| < 1e-4 here) and Heun's discretisation bias (< 0.4 %, from the discrete
    Lyapunov equation of the linear Heun map).

    Statistics: the slowest decay rate is 0.60 /ms, so a variance estimated from 16 runs of
    2.48 s has a relative standard error of about sqrt(2 / (0.6 * 16 * 2480)) ~ 0.9 %. We
    require every covariance entry within 5 standard errors (estimated from the spread over the
    16 runs; t-distribution with 15 degrees of freedom: a false alarm for any of the 21 distinct
    entries has probability ~ 0.3 %) and each variance within 5 % of P (> 5 standard errors plus
    the Heun bias). A noise convention off by a factor 2 (sqrt(nsig dt) vs sqrt(2 nsig dt))
    would be off by 50-100 %.
    """
    W = np.array([[0.0, 1.0, 0.5], [0.8, 0.0, 0.2], [0.3, 0.6, 0.0]])
    a = np.array([-0.5, -0.7, -1.0])  # 1/ms
    omega = 2 * np.pi * np.array([8.0, 10.0, 12.0]) / 1000.0  # rad/ms
    G, nsig = 0.1, 1e-5
    n = 3
    L = G * (W - np.diag(W.sum(axis=1)))
    A = np.block([[np.diag(a) + L, -np.diag(omega)], [np.diag(omega), np.diag(a) + L]])
    assert np.linalg.eigvals(A).real.max() < -0.5
    P = scipy.linalg.solve_continuous_lyapunov(A, -2 * nsig * np.eye(2 * n))

    conn = vbt.Connectome(W, np.zeros((n, n)))
    n_runs, duration, burn = 16, 2500.0, 20
    with jax.enable_x64(True):

        @jax.jit
        @jax.vmap
        def run(key):
            sol = vbt.simulate(
                StuartLandau(a=a, omega=omega),
                conn,
                dt=0.1,
                duration=duration,
                key=key,
                coupling=vbt.Difference(G=G),
                noise=vbt.Additive(nsig=nsig),
                initial_state=jnp.zeros((2, n)),
                monitors=(Raw(period=1.0),),
                dtype=jnp.float64,
                # the default "hash" generator can draw an infinite value (about once in 2**24
                # draws; reported to the lead), and this test makes 2.4e6 draws
                rng="threefry",
                block=1,  # short compilation
            )
            return sol["raw"]

        ys = np.asarray(run(jr.split(jr.key(2024), n_runs)))  # (runs, T, 2, n)
    z = ys[:, burn:].reshape(n_runs, -1, 2 * n)
    covs = np.stack([np.cov(zi, rowvar=False) for zi in z])
    mean, se = covs.mean(axis=0), covs.std(axis=0, ddof=1) / np.sqrt(n_runs)
    assert np.all(np.abs(mean - P) < 5 * se), np.abs(mean - P) / se
    np.testing.assert_allclose(np.diag(mean), np.diag(P), rtol=0.05)


def test_wong_wang_fic_rejects_bad_input():
    with pytest.raises(vbt.ShapeError, match="connectome_weights must be"):
        with_fic(ReducedWongWangExcInh(), np.ones((3, 2)), 0.05)
    # a strongly negative long-range input leaves the excitatory pools below 3 Hz even with
    # J_i = 0: no admissible FIC weight exists
    with pytest.raises(vbt.ArgumentError, match="negative J_i"):
        with_fic(ReducedWongWangExcInh(), np.ones((3, 3)), -5.0)
