"""Any model's network linearised at a fixed point: the linearisation protocol.

Near a stable fixed point ``x*`` a network with additive noise behaves as the linear system

    dX = A X dt + sqrt(Q) dW,        y = C X

with ``A`` the Jacobian of the network's drift, ``Q = diag(2 nsig)`` (TVB's noise convention,
:class:`~vbt_jax.Additive`) and ``C`` the Jacobian of what is observed: the model's BOLD or EEG
drive, the Balloon-Windkessel BOLD signal of that drive (the haemodynamic states are part of
the linear system), or the drive projected through a lead field.

How conduction delays enter:

- :meth:`LinearisedNetwork.covariance` and :meth:`LinearisedNetwork.fc` solve the Lyapunov
  equation of the zero-delay Jacobian: **delays are ignored**. A delayed linear system has no
  Lyapunov equation; the error this makes is measured in the tests and benchmarks.
- :meth:`LinearisedNetwork.cross_spectrum` keeps them exactly: the Jacobian at angular
  frequency ``w`` is ``A(w) = L + D (I_P kron (W o exp(-i w tau))) E``, the delayed linear
  response of the network (``L`` the local part, ``D`` and ``E`` the derivatives of the model
  in its coupling input and of the coupling's ``pre`` in the state).

The model declares where its fixed point lies through
:meth:`~vbt_jax.models.AbstractModel.fixed_point_guess`; Newton's method from there finds it,
and its gradient is implicit (``jax.lax.custom_root``), so everything here works under ``jit``,
``vmap`` and ``grad``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._balloon import BalloonParams, balloon_dfun, bold_signal
from .._errors import ArgumentError, ShapeError
from .._noise import Additive
from ._lyapunov import _cayley, _shift, linear_fc, solve_lyapunov, squared_smith

_MS_PER_S = 1000.0
OBSERVATIONS = ("neural", "eeg", "bold")


def _coupling_parts(model, weights, coupling):
    W = jnp.asarray(weights)
    coupling = model.default_coupling() if coupling is None else coupling
    cvars = np.asarray(model.coupling_vars())
    rowsum = W.sum(axis=1)
    return W, coupling, cvars, rowsum


def network_drift(model, weights, coupling=None):
    """The drift ``x -> dfun(x, coupling(W, x))`` of the network with every edge instantaneous.

    Args:
        model: a neural mass model.
        weights: (N, N) weights, ``weights[i, j]`` from region ``j`` to ``i``.
        coupling: the coupling function (the model's default when ``None``).

    Returns:
        A function of the ``(n_states, N)`` state returning its ``(n_states, N)`` derivative.
    """
    W, coupling, cvars, rowsum = _coupling_parts(model, weights, coupling)

    def drift(x):
        xc = x[cvars]
        return model.dfun(x, coupling.post(coupling.pre(xc) @ W.T, xc, rowsum))

    return drift


def fixed_point(
    model,
    weights,
    coupling=None,
    *,
    guess: Array | None = None,
    newton_steps: int = 30,
    relax_ms: float = 0.0,
    relax_dt: float = 0.1,
) -> Array:
    """The network's fixed point, by Newton's method from the model's guess.

    Its derivatives with respect to the model's and the coupling's parameters are those of the
    implicit function ``drift(x*) = 0`` (one linear solve), not of the iterations.

    Args:
        model: a neural mass model.
        weights: (N, N) weights.
        coupling: the coupling function (the model's default when ``None``).
        guess: (n_states, N) or (n_states,) start; the model's
            :meth:`~vbt_jax.models.AbstractModel.fixed_point_guess` when ``None``.
        newton_steps: Newton iterations (static; converged ones change nothing).
        relax_ms: deterministic Euler integration from the guess before Newton, for a guess that
            may lie outside the fixed point's basin (0: none).
        relax_dt: the relaxation's step.

    Returns:
        (n_states, N) state where the drift vanishes (check :func:`linearise`'s ``residual``).

    Raises:
        ShapeError: a guess or weights of the wrong shape.
    """
    W = jnp.asarray(weights)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ShapeError(f"fixed_point: weights must be (N, N), got shape {W.shape}")
    n, s = W.shape[0], model.n_states
    x0 = model.fixed_point_guess(n) if guess is None else guess
    x0 = jnp.asarray(x0, W.dtype if jnp.issubdtype(W.dtype, jnp.floating) else None)
    if x0.shape == (s,):
        x0 = jnp.broadcast_to(x0[:, None], (s, n))
    if x0.shape != (s, n):
        raise ShapeError(
            f"fixed_point: the guess for {type(model).__name__} on {n} regions must be ({s},) "
            f"or ({s}, {n}), got shape {x0.shape}"
        )
    drift = network_drift(model, W, coupling)
    steps = int(round(relax_ms / relax_dt)) if relax_ms > 0 else 0
    if steps:
        x0 = jax.lax.fori_loop(0, steps, lambda _, x: model.bound(x + relax_dt * drift(x)), x0)
    x0 = jax.lax.stop_gradient(x0)
    shape = x0.shape

    def f(y):
        return drift(y.reshape(shape)).reshape(-1)

    def newton(g, y0):
        def body(_, y):
            return y - jnp.linalg.solve(jax.jacfwd(g)(y), g(y))

        return jax.lax.fori_loop(0, newton_steps, body, y0)

    def tangent_solve(g, y):
        return jnp.linalg.solve(jax.jacfwd(g)(y), y)

    return jax.lax.custom_root(f, x0.reshape(-1), newton, tangent_solve).reshape(shape)


def _flat_jacobian(fun, x):
    return jax.jacfwd(lambda v: fun(v.reshape(x.shape)).reshape(-1))(x.reshape(-1))


class LinearisedNetwork(eqx.Module):
    """A network linearised at its fixed point (build it with :func:`linearise`).

    The state is flattened variable-major (all regions of the first state variable first),
    followed for a BOLD observation by the Balloon-Windkessel states ``[s, f, v, q]`` (each
    over all regions). Rates are per ms.

    Attributes:
        state: (n_states, N) the fixed point.
        residual: max |drift| at ``state`` (0 at an exact fixed point).
        drift: (n, n) Jacobian with every edge instantaneous (delays ignored).
        local: (n, n) the part of ``drift`` that does not pass through the weights.
        into: (n, P N) derivative of the drift in the weighted sums of the coupling.
        out_of: (P N, n) derivative of the coupling's ``pre`` values in the state.
        weights: (N, N).
        delays: (N, N) conduction delays [ms] (zeros without tract lengths).
        diffusion: (n,) ``2 nsig`` per state component (0 for the haemodynamic states).
        observation: (m, n) ``C``: rows are regions (neural, BOLD) or sensors (EEG).
        observe: ``"neural"``, ``"eeg"`` or ``"bold"``.
    """

    state: Array
    residual: Array
    drift: Array
    local: Array
    into: Array
    out_of: Array
    weights: Array
    delays: Array
    diffusion: Array
    observation: Array
    observe: str = eqx.field(static=True)

    @property
    def n_regions(self) -> int:
        return self.weights.shape[0]

    def state_covariance(self, *, iterations: int = 50) -> Array:
        """(n, n) stationary covariance of the whole linear state (delays ignored)."""
        P = solve_lyapunov(self.drift, jnp.diag(self.diffusion), iterations=iterations)
        return 0.5 * (P + P.T)

    def covariance(self, *, iterations: int = 50) -> Array:
        """(m, m) stationary covariance of the observation (delays ignored).

        For a BOLD observation the block structure of the linear system is used (see
        :func:`_bold_covariance`): the same matrix as ``C P C^T`` of the whole state, about
        ten times cheaper on 84 regions.
        """
        if self.observe == "bold":
            return _bold_covariance(self, iterations)
        C = self.observation
        return C @ self.state_covariance(iterations=iterations) @ C.T

    def fc(self, *, iterations: int = 50) -> Array:
        """(m, m) correlation matrix of the observation (delays ignored): the linearised FC."""
        cov = self.covariance(iterations=iterations)
        return linear_fc(cov, cov.shape[0])

    def jacobian_at(self, w: Array) -> Array:
        """(n, n) complex Jacobian of the delayed linear system at angular frequency ``w``
        [rad/ms]: ``L + D (I_P kron (W o exp(-i w tau))) E`` (real ``drift`` at ``w = 0``)."""
        cd = jnp.promote_types(self.drift.dtype, jnp.complex64)
        WE = self.weights.astype(cd) * jnp.exp(-1j * w * self.delays.astype(cd))
        n_pre = self.out_of.shape[0] // self.n_regions
        E = self.out_of.astype(cd).reshape(n_pre, self.n_regions, -1)
        mixed = jnp.einsum("ij,pjk->pik", WE, E).reshape(self.out_of.shape)
        return self.local.astype(cd) + self.into.astype(cd) @ mixed

    def cross_spectrum(self, freqs_hz: Array, *, delays: bool = True) -> Array:
        """One-sided cross-spectral density of the observation [unit^2 / Hz].

        ``S(f) = 2/1000 C R Q R^H C^T`` with ``R = (i w I - A(w))^-1`` and ``w = 2 pi f / 1000``
        rad/ms: integrated over ``f`` from 0 to infinity its real part is :meth:`covariance`
        (for ``delays=False``).

        Args:
            freqs_hz: (F,) frequencies [Hz].
            delays: keep the conduction delays (``True``) or drop them (``False``).

        Returns:
            (F, m, m) complex Hermitian matrices.
        """
        freqs = jnp.atleast_1d(jnp.asarray(freqs_hz, self.drift.dtype))
        cd = jnp.promote_types(self.drift.dtype, jnp.complex64)
        n = self.drift.shape[0]
        eye = jnp.eye(n, dtype=cd)
        Ct = self.observation.T.astype(cd)
        q = self.diffusion.astype(cd)

        def one(f):
            w = 2.0 * math.pi * f / _MS_PER_S
            A = self.jacobian_at(w) if delays else self.drift.astype(cd)
            # Z = R^H C^T, so C R Q R^H C^T = Z^H diag(q) Z
            Z = jnp.linalg.solve(jnp.conj((1j * w) * eye - A).T, Ct)
            return jnp.conj(Z).T @ (q[:, None] * Z)

        return jax.vmap(one)(freqs) * (2.0 / _MS_PER_S)

    def power_spectrum(self, freqs_hz: Array, *, delays: bool = True) -> Array:
        """(F, m) one-sided power spectral density of each observed channel [unit^2 / Hz]."""
        S = self.cross_spectrum(freqs_hz, delays=delays)
        return jnp.real(jnp.diagonal(S, axis1=-2, axis2=-1))

    def max_real_eigenvalue(self) -> float:
        """The largest real part of the zero-delay Jacobian's eigenvalues (NumPy, not traced):
        negative for a stable fixed point."""
        return float(np.linalg.eigvals(np.asarray(self.drift, np.float64)).real.max())


def _inv4(M: Array) -> Array:
    """Inverses of a batch of 4 x 4 matrices ``M[:, :, i]`` by Gauss-Jordan elimination without
    pivoting (arithmetic only: no batched LAPACK call, see ``_lapack``). Used for ``pI - h`` with
    ``h`` a Balloon-Windkessel Jacobian and ``p > 0``, whose leading minors are positive."""
    a = [
        [M[k, j] for j in range(4)] + [jnp.ones_like(M[0, 0]) * (k == j) for j in range(4)]
        for k in range(4)
    ]
    for c in range(4):
        piv = a[c][c]
        a[c] = [x / piv for x in a[c]]
        for r in range(4):
            if r != c:
                f = a[r][c]
                a[r] = [x - f * y for x, y in zip(a[r], a[c])]
    return jnp.stack([jnp.stack(row[4:]) for row in a])


def _det4(M: Array) -> Array:
    """Determinants of a batch of 4 x 4 matrices (the product of the unpivoted pivots)."""
    a = [[M[k, j] for j in range(4)] for k in range(4)]
    det = jnp.ones_like(M[0, 0])
    for c in range(4):
        piv = a[c][c]
        det = det * piv
        for r in range(c + 1, 4):
            f = a[r][c] / piv
            a[r] = [x - f * y for x, y in zip(a[r], a[c])]
    return det


def _block_left(Mb: Array, X: Array) -> Array:
    """The block-diagonal matrix of the 4 x 4 blocks ``Mb[:, :, i]`` (4N x 4N, state-major)
    times ``X`` (4N, k)."""
    n = Mb.shape[-1]
    return jnp.einsum("kli,lim->kim", Mb, X.reshape(4, n, -1)).reshape(X.shape)


def _block_square(Mb: Array) -> Array:
    return jnp.einsum("kli,lmi->kmi", Mb, Mb)


def _block_cayley(h: Array, p: Array) -> tuple[Array, Array]:
    eye4 = jnp.eye(4, dtype=h.dtype)[:, :, None]
    R = _inv4(p * eye4 - h)
    return R, jnp.einsum("kli,lmi->kmi", R, p * eye4 + h)


def _block_shift(h: Array) -> Array:
    """Geometric mean of the eigenvalue moduli of all blocks (from their determinants)."""
    return jax.lax.stop_gradient(jnp.exp(jnp.mean(jnp.log(jnp.abs(_det4(h)))) / 4))


def _sylvester(h: Array, A: Array, C: Array, iterations: int) -> Array:
    """``X`` (4N, m) with ``H X + X A^T + C = 0``, ``H`` block-diagonal (blocks ``h``, (4, 4, N))
    and ``A`` dense (m, m): squared Smith iterations with one common shift, implicit
    derivatives (the cotangent solves the transposed equation ``H^T L + L A + G = 0``)."""
    ht = jnp.swapaxes(h, 0, 1)

    def stein(hb, Ad, rhs):
        p = jnp.sqrt(_block_shift(hb) * _shift(Ad))
        R_h, M_h = _block_cayley(hb, p)
        R_a, M_a = _cayley(Ad, p)
        return squared_smith(
            2.0 * p * _block_left(R_h, rhs) @ R_a.T,
            M_h,
            M_a,
            lambda Lk, Rk, X: _block_left(Lk, X) @ Rk.T,
            _block_square,
            lambda Mk: Mk @ Mk,
            iterations,
        )

    return jax.lax.custom_linear_solve(
        lambda X: _block_left(h, X) + X @ A.T,
        -C,
        lambda _, b: stein(h, A, -b),
        lambda _, b: stein(ht, A.T, -b),
    )


def _block_lyapunov(h: Array, C: Array, iterations: int) -> Array:
    """``Y`` (4N, 4N) with ``H Y + Y H^T + C = 0``, ``H`` block-diagonal (blocks ``h``): every
    factor of the squared Smith iteration is block-diagonal; implicit derivatives."""
    ht = jnp.swapaxes(h, 0, 1)

    def stein(hb, rhs):
        p = _block_shift(hb)
        R, M = _block_cayley(hb, p)

        def apply(Lk, Rk, X):  # Lk X Rk^T with both factors block-diagonal
            return _block_left(Rk, _block_left(Lk, X).T).T

        return squared_smith(
            2.0 * p * apply(R, R, rhs), M, M, apply, _block_square, _block_square, iterations
        )

    return jax.lax.custom_linear_solve(
        lambda Y: _block_left(h, Y) + _block_left(h, Y.T).T,
        -C,
        lambda _, b: stein(h, -b),
        lambda _, b: stein(ht, -b),
    )


def _bold_covariance(lin: LinearisedNetwork, iterations: int) -> Array:
    r"""BOLD covariance of the linear system ``[x; h]`` with drift ``[[A, 0], [B, H]]``.

    The Lyapunov equation splits into three: ``A P_xx + P_xx A^T + Q = 0`` (neural, dense);
    the Sylvester equation ``H X + X A^T + B P_xx = 0`` for ``X = P_hx``; and
    ``H Y + Y H^T + B X^T + X B^T = 0`` for ``Y = P_hh``. ``H`` couples only the four
    haemodynamic states of one region, so its Cayley transform and powers are 4 x 4 blocks and
    the squared Smith iterations of the last two cost matrix products with one dense factor at
    most. Each solve has implicit derivatives. The BOLD signal reads only ``h``: the result is
    ``C_h Y C_h^T``.
    """
    n = lin.n_regions
    m = lin.drift.shape[0] - 4 * n
    A = lin.drift[:m, :m]
    B = lin.drift[m:, :m]
    h = jnp.diagonal(lin.drift[m:, m:].reshape(4, n, 4, n), axis1=1, axis2=3)  # (4, 4, N)
    c = jnp.diagonal(lin.observation[:, m:].reshape(n, 4, n), axis1=0, axis2=2)  # (4, N)
    P_xx = solve_lyapunov(A, jnp.diag(lin.diffusion[:m]), iterations=iterations)
    P_xx = 0.5 * (P_xx + P_xx.T)
    X = _sylvester(h, A, B @ P_xx, iterations)
    rhs = B @ X.T
    Y = _block_lyapunov(h, rhs + rhs.T, iterations)
    Y = 0.5 * (Y + Y.T).reshape(4, n, 4, n)
    return jnp.einsum("ki,kilj,lj->ij", c, Y, c)


def _noise_diag(noise, n_states: int, n: int, dtype) -> Array:
    """``2 nsig`` per state component, flattened variable-major."""
    if noise is None:
        raise ArgumentError("linearise: pass the noise (vbt_jax.Additive) the network is driven by")
    if not isinstance(noise, Additive):
        raise ArgumentError(
            f"linearise: only additive noise (vbt_jax.Additive) has a linear stationary "
            f"statistics here, got {type(noise).__name__}"
        )
    return 2.0 * noise.per_component(n_states, n, dtype).reshape(-1)


def linearise(
    model,
    connectome,
    *,
    noise,
    coupling=None,
    observe: str = "neural",
    balloon: BalloonParams | None = None,
    bold_scale: float = 1.0,
    leadfield: Array | None = None,
    speed: float = math.inf,
    guess: Array | None = None,
    newton_steps: int = 30,
    relax_ms: float = 0.0,
) -> LinearisedNetwork:
    """Linearise ``model`` on ``connectome`` at its fixed point (see the module docstring).

    Args:
        model: a neural mass model (:class:`vbt_jax.models.AbstractModel`).
        connectome: a :class:`vbt_jax.Connectome` (weights as given to :func:`vbt_jax.simulate`;
            its tract lengths and ``speed`` give the delays of :meth:`cross_spectrum`).
        noise: the :class:`vbt_jax.Additive` noise driving the network.
        coupling: the coupling function (the model's default when ``None``).
        observe: ``"neural"`` (the model's BOLD drive, ``model.bold_var``), ``"bold"`` (its
            Balloon-Windkessel BOLD signal) or ``"eeg"`` (the EEG drive ``model.eeg_var``,
            through ``leadfield`` when given).
        balloon: haemodynamic parameters for ``observe="bold"`` (defaults when ``None``).
        bold_scale: factor on the drive entering the haemodynamics (the BOLD monitor's
            ``scale``).
        leadfield: (sensors, N) gain for ``observe="eeg"`` (regions when ``None``).
        speed: conduction speed [mm/ms] (infinite: no delays).
        guess, newton_steps, relax_ms: see :func:`fixed_point`.

    Returns:
        A :class:`LinearisedNetwork`.

    Raises:
        ArgumentError: an unknown observation, non-additive noise, or a lead field of the wrong
            shape.
    """
    if observe not in OBSERVATIONS:
        raise ArgumentError(f"linearise: observe must be one of {OBSERVATIONS}, got {observe!r}")
    W, coup, cvars, rowsum = _coupling_parts(model, connectome.weights, coupling)
    n, s = W.shape[0], model.n_states
    dtype = W.dtype if jnp.issubdtype(W.dtype, jnp.floating) else jnp.result_type(float)
    W = W.astype(dtype)
    if leadfield is not None:
        if observe != "eeg":
            raise ArgumentError("linearise: a leadfield is used only with observe='eeg'")
        L = jnp.asarray(leadfield, dtype)
        if L.ndim != 2 or L.shape[1] != n:
            raise ShapeError(f"linearise: leadfield must be (sensors, {n}), got shape {L.shape}")
    diffusion = _noise_diag(noise, s, n, dtype)
    x = fixed_point(
        model, W, coup, guess=guess, newton_steps=newton_steps, relax_ms=relax_ms
    ).astype(dtype)

    xc = x[cvars]
    pre = coup.pre(xc)
    summed = pre @ W.T
    c = coup.post(summed, xc, rowsum)
    dx = _flat_jacobian(lambda v: model.dfun(v, c), x)
    dc = _flat_jacobian(lambda v: model.dfun(x, v), c)
    dsum = _flat_jacobian(lambda v: coup.post(v, xc, rowsum), summed)
    dnow = _flat_jacobian(lambda v: coup.post(summed, v, rowsum), xc)
    dpre = _flat_jacobian(coup.pre, xc)
    sel = jnp.zeros((cvars.size * n, s * n), dtype)
    rows = np.arange(cvars.size * n)
    cols = (cvars[:, None] * n + np.arange(n)[None, :]).reshape(-1)
    sel = sel.at[rows, cols].set(1.0)
    local = dx + dc @ dnow @ sel
    into = dc @ dsum
    out_of = dpre @ sel
    n_pre = pre.shape[0]
    mixed = jnp.einsum("ij,pjk->pik", W, out_of.reshape(n_pre, n, -1)).reshape(out_of.shape)
    drift = local + into @ mixed
    residual = jnp.max(jnp.abs(network_drift(model, W, coup)(x)))

    lengths = connectome.lengths
    if lengths is None or not math.isfinite(speed):
        delays = jnp.zeros((n, n), dtype)
    else:
        delays = jnp.asarray(lengths, dtype) / speed

    drive_jac = _flat_jacobian(
        lambda v: model.eeg_drive(v) if observe == "eeg" else model.bold_drive(v), x
    )  # (N, s N)
    if observe == "neural":
        C = drive_jac
    elif observe == "eeg":
        C = drive_jac if leadfield is None else L @ drive_jac
    else:
        p = BalloonParams() if balloon is None else balloon
        z = bold_scale * model.bold_drive(x)
        f = 1.0 + z / p.gamma
        v = f**p.alpha
        q = v * (1.0 - (1.0 - p.rho) ** (1.0 / f)) / p.rho
        h = jnp.stack([jnp.zeros_like(f), f, v, q]).astype(dtype)
        H = _flat_jacobian(lambda u: balloon_dfun(u, z, p), h) / _MS_PER_S
        dz = jax.jacfwd(lambda u: balloon_dfun(h, u, p).reshape(-1))(z) / _MS_PER_S  # (4N, N)
        B = dz @ (bold_scale * drive_jac)
        m = 4 * n
        zeros = jnp.zeros((s * n, m), dtype)
        local = jnp.block([[local, zeros], [B, H]])
        drift = jnp.block([[drift, zeros], [B, H]])
        into = jnp.concatenate([into, jnp.zeros((m, into.shape[1]), dtype)])
        out_of = jnp.concatenate([out_of, jnp.zeros((out_of.shape[0], m), dtype)], axis=1)
        diffusion = jnp.concatenate([diffusion, jnp.zeros((m,), dtype)])
        C = jnp.concatenate(
            [jnp.zeros((n, s * n), dtype), _flat_jacobian(lambda u: bold_signal(u, p), h)],
            axis=1,
        )
    return LinearisedNetwork(
        state=x,
        residual=residual,
        drift=drift,
        local=local,
        into=into,
        out_of=out_of,
        weights=W,
        delays=delays,
        diffusion=diffusion,
        observation=C,
        observe=observe,
    )


__all__ = ["LinearisedNetwork", "OBSERVATIONS", "fixed_point", "linearise", "network_drift"]
