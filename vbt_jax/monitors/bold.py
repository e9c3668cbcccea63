"""BOLD monitor: Balloon-Windkessel haemodynamics integrated alongside the neural model."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._balloon import BalloonParams, balloon_init, balloon_step, bold_signal
from ._base import AbstractMonitor, Context


class Bold(AbstractMonitor):
    """fMRI BOLD sampled every repetition time ``period`` (ms).

    The model's BOLD drive (``model.bold_var``, e.g. MPR's firing rate ``r``) is averaged over
    each monitor unit (at most ``step`` ms) and drives the Balloon-Windkessel model
    (:mod:`vbt_jax._balloon`; its equations are in seconds: the unit is converted here), stepped
    with Heun at that unit. Output shape ``(n_samples, N)``: the fractional BOLD signal at the
    end of each TR. The haemodynamic state starts at rest; discard the first ~10 s.

    Args:
        period: repetition time TR [ms] (e.g. 720.0 for HCP).
        step: longest haemodynamic integration step [ms] (default 1 ms).
        scale: factor applied to the neural drive before it enters the haemodynamics.
        params: :class:`~vbt_jax.BalloonParams` (Friston 2003 haemodynamics, Stephan 2007 signal).
    """

    period: float = 720.0
    step: float = 1.0
    scale: float = 1.0
    params: BalloonParams = BalloonParams()
    name: str = eqx.field(default="bold", static=True, kw_only=True)

    def grid_period(self):
        return self.step

    def init(self, ctx: Context):
        return (balloon_init(ctx.n_regions, ctx.dtype), jnp.zeros((ctx.n_regions,), ctx.dtype))

    def accumulate(self, mstate, traj, ctx):
        x, acc = mstate
        return x, acc + jax.vmap(ctx.model.bold_drive)(traj).sum(axis=0)

    def end_unit(self, mstate, ctx):
        x, acc = mstate
        z = self.scale * acc / ctx.unit
        x = balloon_step(x, z, ctx.unit * ctx.dt / 1000.0, self.params)
        return x, jnp.zeros_like(acc)

    def sample(self, mstate, ctx):
        return bold_signal(mstate[0], self.params), mstate
