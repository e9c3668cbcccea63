"""Raw (subsampling) monitor."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._base import AbstractMonitor, Context, as_static_tuple, variable_indices


class Raw(AbstractMonitor):
    """The instantaneous state every ``period`` ms (no averaging; TVB's ``SubSample``).

    Output shape ``(n_samples, n_variables, N)``.

    Args:
        period: sampling period [ms]; a multiple of the integration step.
        variables: names of the state variables to keep (default: all).
        name: key of the output in the :class:`~vbt_jax.Solution`.
    """

    period: float = 1.0
    variables: tuple[str, ...] | None = eqx.field(
        default=None, static=True, converter=as_static_tuple
    )
    name: str = eqx.field(default="raw", static=True, kw_only=True)

    def init(self, ctx: Context):
        idx = variable_indices(ctx.model, self.variables)
        return jnp.zeros((len(idx), ctx.n_regions), ctx.dtype)

    def accumulate(self, mstate, traj, ctx):
        idx = variable_indices(ctx.model, self.variables)
        return traj[-1, jnp.asarray(idx)]

    def sample(self, mstate, ctx):
        return mstate, mstate

    def labels(self, ctx):
        idx = variable_indices(ctx.model, self.variables)
        return tuple(ctx.model.state_names[i] for i in idx)
