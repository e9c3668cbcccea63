"""The interface of streaming monitors: observe a simulation without storing its trajectory."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import numpy as np
from jax import Array


@dataclass(frozen=True)
class Context:
    """Static facts about the running simulation handed to monitors (never traced)."""

    model: Any
    n_regions: int
    dt: float  # ms
    block: int  # steps per block (coupling computed once per block)
    unit: int  # steps per unit (monitors' update grid)
    dtype: Any


class AbstractMonitor(eqx.Module):
    """A monitor turns the simulated states into an output sampled every ``period`` ms.

    The integrator calls, in this order: :meth:`accumulate` after each block of steps with the
    block's states ``(block, n_states, N)``; :meth:`end_unit` after each unit of steps (the common
    grid of all monitors); :meth:`sample` when a sample is due (the monitor returns the sample and
    its reset state). After the scan, :meth:`finalize` maps the stacked samples to the output
    (e.g. a lead-field projection). Memory is that of the monitor state plus the samples.
    """

    name: eqx.AbstractVar[str]
    period: eqx.AbstractVar[float]

    def grid_period(self) -> float:
        """The longest update unit (ms) this monitor tolerates; default its sampling period."""
        return self.period

    @abc.abstractmethod
    def init(self, ctx: Context) -> Any: ...

    @abc.abstractmethod
    def accumulate(self, mstate: Any, traj: Array, ctx: Context) -> Any: ...

    def end_unit(self, mstate: Any, ctx: Context) -> Any:
        return mstate

    @abc.abstractmethod
    def sample(self, mstate: Any, ctx: Context) -> tuple[Array, Any]: ...

    def finalize(self, ys: Array, ctx: Context) -> Array:
        return ys

    def labels(self, ctx: Context) -> tuple[str, ...]:
        """Names of the output's second-to-last axis entries (variables), if any."""
        return ()


def variable_indices(model, variables: tuple[str, ...] | None) -> tuple[int, ...]:
    if variables is None:
        return tuple(range(len(model.state_names)))
    return tuple(model.state_index(v) for v in variables)


def as_static_tuple(x) -> tuple[str, ...] | None:
    if x is None:
        return None
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def sample_times(period_steps: int, n_samples: int, dt: float) -> np.ndarray:
    """Times (ms) stamped on samples: the end of each sampling period."""
    return (np.arange(1, n_samples + 1) * period_steps) * dt
