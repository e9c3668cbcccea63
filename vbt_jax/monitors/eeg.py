"""EEG/MEG monitor: region activity projected to sensors through a lead field."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._leadfield import project
from ._base import AbstractMonitor, Context


class EEG(AbstractMonitor):
    """Sensor signals ``gain @ mean_window(eeg_drive)`` every ``period`` ms.

    The model's EEG drive (``model.eeg_drive``, e.g. Jansen-Rit's pyramidal potential
    ``y1 - y2``) is averaged over each window, then projected to the ``M`` sensors by the
    ``(M, N)`` region gain (see :func:`vbt_jax.region_gain_from_vertices` and
    :func:`vbt_jax.load_tvb_eeg_gain`). The projection is linear, so it is applied once to all
    stored region-level samples after the scan. Output shape ``(n_samples, M)``.

    Args:
        gain: ``(M, N)`` lead field (region gain) matrix.
        period: sampling period [ms] (default 1 ms = 1 kHz).
        average_reference: subtract the mean over sensors (common average reference).
    """

    gain: Array = eqx.field(kw_only=True)
    period: float = 1.0
    average_reference: bool = eqx.field(default=True, static=True)
    name: str = eqx.field(default="eeg", static=True, kw_only=True)

    def __check_init__(self):
        if jnp.ndim(self.gain) != 2:
            raise ValueError(f"EEG gain must be a (M, N) matrix, got shape {jnp.shape(self.gain)}")

    def init(self, ctx: Context):
        if jnp.shape(self.gain)[1] != ctx.n_regions:
            raise ValueError(
                f"EEG gain has shape {jnp.shape(self.gain)}: its N={jnp.shape(self.gain)[1]} "
                f"does not match the connectome's {ctx.n_regions} regions"
            )
        return jnp.zeros((ctx.n_regions,), ctx.dtype)

    def accumulate(self, mstate, traj, ctx):
        return mstate + jax.vmap(ctx.model.eeg_drive)(traj).sum(axis=0)

    def sample(self, mstate, ctx):
        n = round(self.period / ctx.dt)
        return mstate / n, jnp.zeros_like(mstate)

    def finalize(self, ys, ctx):
        return project(self.gain, ys, average_ref=self.average_reference)
