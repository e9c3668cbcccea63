"""One-step schemes for stochastic delay differential equations with additive noise.

The delayed coupling input is computed once per step and used in every stage (as in The Virtual
Brain); the noise increment ``dw`` is the same in the predictor and the corrector.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
from jax import Array

from ._capabilities import RegionLocal


class AbstractSolver(RegionLocal, eqx.Module):
    """One step ``x -> x'`` of a scheme, given the coupling input ``c`` and the noise ``dw``.

    ``region_local`` (class variable): ``True`` when the step combines each region's values
    only with that region's own (it calls the model's ``dfun`` and ``bound`` and mixes their
    outputs region by region), so a region-local model stays region-local under it. Default
    ``False``; not inherited, a subclass declares it in its own body.
    """

    @abc.abstractmethod
    def step(self, model, x: Array, c: Array, dw: Array | None, dt: float) -> Array: ...


class Heun(AbstractSolver):
    """Stochastic Heun (predictor-corrector; strong order 1 for additive noise, order 2 without
    noise)."""

    region_local: ClassVar[bool] = True

    def step(self, model, x, c, dw, dt):
        f1 = model.dfun(x, c)
        pred = x + dt * f1 if dw is None else x + dt * f1 + dw
        pred = model.bound(pred)
        f2 = model.dfun(pred, c)
        x1 = x + (0.5 * dt) * (f1 + f2)
        if dw is not None:
            x1 = x1 + dw
        return model.bound(x1)


class EulerMaruyama(AbstractSolver):
    """Euler-Maruyama (strong order 1 for additive noise, order 1 without noise)."""

    region_local: ClassVar[bool] = True

    def step(self, model, x, c, dw, dt):
        x1 = x + dt * model.dfun(x, c)
        if dw is not None:
            x1 = x1 + dw
        return model.bound(x1)


def get_solver(solver) -> AbstractSolver:
    if isinstance(solver, AbstractSolver):
        return solver
    names = {"heun": Heun, "euler": EulerMaruyama, "euler_maruyama": EulerMaruyama}
    try:
        return names[str(solver).lower()]()
    except KeyError:
        raise ValueError(f"unknown solver {solver!r}; expected one of {sorted(names)}") from None
