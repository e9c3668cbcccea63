"""Coupling functions: how delayed activity of other regions enters a region's dynamics.

Every coupling is split, as in The Virtual Brain, into a ``pre`` part applied to each source
region's delayed coupled variables (and stored in the delay buffer), the weighted sum over the
connectome, and a ``post`` part applied at the target region:

.. math::
    c_i(t) = \\mathrm{post}\\Big(\\sum_j W_{ij}\\,
             \\mathrm{pre}(x_j(t - d_{ij})),\\; x_i(t)\\Big)
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from ._capabilities import RegionLocal


class AbstractCoupling(RegionLocal, eqx.Module):
    """Interface: ``pre`` maps coupled variables ``(C, N)`` to buffered values ``(P, N)``;
    ``post`` maps weighted sums ``(P, N)`` (plus the current coupled variables and the weights'
    row sums) to the model's coupling input.

    ``region_local`` (class variable): ``True`` when ``pre`` and ``post`` map each region's
    values to that region's output alone (``post`` may read the region's own current state and
    row sum), so that a step of :func:`vbt_jax.simulate` reads no other region's current state;
    its custom adjoint then uses per-region Jacobians. Default ``False`` (the general, always
    correct reverse step); not inherited, a subclass declares it in its own body.
    """

    @abc.abstractmethod
    def pre(self, xc: Array) -> Array: ...

    @abc.abstractmethod
    def post(self, summed: Array, xc_now: Array, rowsum: Array) -> Array: ...

    def n_buffered(self, n_coupled: int) -> int:
        """How many rows ``pre`` returns for ``n_coupled`` coupled variables."""
        return n_coupled


class Linear(AbstractCoupling):
    """``c_i = G * sum_j W_ij x_j(t - d_ij) + b``.

    Args:
        G: global coupling strength (dimensionless scale of the normalised weights).
        b: constant offset added to every region's input.
    """

    region_local: ClassVar[bool] = True

    G: float | Array = 1.0
    b: float | Array = 0.0

    def pre(self, xc):
        return xc

    def post(self, summed, xc_now, rowsum):
        return self.G * summed + self.b


class Difference(AbstractCoupling):
    """Diffusive coupling ``c_i = G * sum_j W_ij (x_j(t - d_ij) - x_i(t))`` (Deco et al. 2017 Hopf
    networks; TVB's ``Difference``)."""

    region_local: ClassVar[bool] = True

    G: float | Array = 0.1

    def pre(self, xc):
        return xc

    def post(self, summed, xc_now, rowsum):
        return self.G * (summed - rowsum * xc_now)


class Sigmoidal(AbstractCoupling):
    """Jansen-Rit coupling: the delayed pyramidal potential ``y1 - y2`` of each source goes through
    a sigmoid before summation (TVB's ``SigmoidalJansenRit``):

    ``pre = cmin + (cmax - cmin) / (1 + exp(r (midpoint - (y1 - y2))))``,
    ``c_i = G * sum_j W_ij pre_j``.

    Args:
        G: global coupling. cmin, cmax: sigmoid range [1/ms]. midpoint [mV]. r: steepness [1/mV].
    TVB's defaults: cmax = 2 * 0.0025 = 0.005, midpoint = 6.0 (not the model's v0 = 5.52), r = 0.56.
    """

    region_local: ClassVar[bool] = True

    G: float | Array = 1.0
    cmin: float | Array = 0.0
    cmax: float | Array = 0.005
    midpoint: float | Array = 6.0
    r: float | Array = 0.56

    def pre(self, xc):
        if xc.shape[0] != 2:
            raise ValueError(
                f"Sigmoidal coupling needs two coupled variables (y1, y2), got {xc.shape[0]}"
            )
        return (
            self.cmin
            + (self.cmax - self.cmin) / (1.0 + jnp.exp(self.r * (self.midpoint - (xc[0] - xc[1]))))
        )[None]

    def post(self, summed, xc_now, rowsum):
        return self.G * summed

    def n_buffered(self, n_coupled: int) -> int:
        return 1
