"""Temporal-average monitor."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._base import AbstractMonitor, Context, as_static_tuple, variable_indices


class TemporalAverage(AbstractMonitor):
    """The mean state over each window of ``period`` ms (TVB's ``TemporalAverage``).

    Output shape ``(n_samples, n_variables, N)``; sample ``k`` averages the states at steps
    ``k*p + 1 ... (k+1)*p`` and is stamped with the window's end time.
    """

    period: float = 1.0
    variables: tuple[str, ...] | None = eqx.field(
        default=None, static=True, converter=as_static_tuple
    )
    name: str = eqx.field(default="tavg", static=True, kw_only=True)

    def init(self, ctx: Context):
        idx = variable_indices(ctx.model, self.variables)
        return jnp.zeros((len(idx), ctx.n_regions), ctx.dtype)

    def accumulate(self, mstate, traj, ctx):
        idx = variable_indices(ctx.model, self.variables)
        return mstate + traj[:, jnp.asarray(idx)].sum(axis=0)

    def sample(self, mstate, ctx):
        n = round(self.period / ctx.dt)
        return mstate / n, jnp.zeros_like(mstate)

    def labels(self, ctx):
        idx = variable_indices(ctx.model, self.variables)
        return tuple(ctx.model.state_names[i] for i in idx)
