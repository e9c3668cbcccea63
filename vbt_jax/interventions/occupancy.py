"""Receptor occupancy as a function of dose: the Hill (Emax) model."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError
from ._base import is_tracer


def _check_positive(value, name: str) -> None:
    if is_tracer(value):
        return
    v = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(v) & (v > 0)):
        raise ArgumentError(f"Occupancy.{name} must be finite and > 0, got {value!r}")


class Occupancy(eqx.Module):
    r"""Fraction of receptors occupied by a drug at a given dose or concentration.

    .. math:: \mathrm{occ}(d) = E_{max}\, \frac{d^h}{d^h + EC_{50}^h}

    (the Hill / Emax model; with ``h = 1`` it is the law of mass action, occupancy of a single
    binding site at equilibrium). It is a sigmoid in ``log d`` centred on ``log EC50``: with
    ``h = 1``, ``occ(k EC50) + occ(EC50 / k) = E_max`` for every ``k > 0``.

    Dose ``d`` and ``ec50`` share one unit, chosen by the user (mg of an oral dose, ng/mL of
    plasma concentration, or multiples of the EC50 with ``ec50 = 1``); the class does not
    convert units. Example: therapeutic D2 occupancy by antipsychotics is 65-80 %
    (Kapur & Seeman 2001, Am. J. Psychiatry 158:360-369); with ``h = 1`` and ``E_max = 1`` that
    is a dose of 1.86-4 EC50.

    Attributes (traceable leaves):
        ec50: dose at half-maximal occupancy, > 0 [dose unit].
        hill: Hill coefficient, > 0 (steepness).
        emax: maximal occupancy, in (0, 1].

    Raises (at construction, for concrete values):
        ArgumentError: non-positive or non-finite ``ec50``/``hill``, or ``emax`` outside (0, 1].
    """

    ec50: float | Array
    hill: float | Array = 1.0
    emax: float | Array = 1.0

    def __check_init__(self):
        _check_positive(self.ec50, "ec50")
        _check_positive(self.hill, "hill")
        if not is_tracer(self.emax):
            e = np.asarray(self.emax, dtype=np.float64)
            if not np.all((e > 0) & (e <= 1)):
                raise ArgumentError(f"Occupancy.emax must be in (0, 1], got {self.emax!r}")

    def __call__(self, dose: float | Array) -> Array:
        """Occupancy at ``dose`` (any shape, >= 0, same unit as ``ec50``) in [0, emax].

        Raises:
            ArgumentError: a concrete negative or non-finite dose.
        """
        if not is_tracer(dose):
            d = np.asarray(dose, dtype=np.float64)
            if not np.all(np.isfinite(d) & (d >= 0)):
                raise ArgumentError(f"Occupancy: dose must be finite and >= 0, got {dose!r}")
        r = jnp.power(jnp.asarray(dose) / self.ec50, self.hill)
        return self.emax * r / (1.0 + r)

    def inverse(self, occupancy: float | Array) -> Array:
        """The dose that gives ``occupancy`` (any shape, in ``[0, emax)``).

        Raises:
            ArgumentError: a concrete occupancy outside ``[0, emax)``.
        """
        if not is_tracer(occupancy) and not is_tracer(self.emax):
            o = np.asarray(occupancy, dtype=np.float64)
            if not np.all((o >= 0) & (o < np.asarray(self.emax))):
                raise ArgumentError(
                    f"Occupancy.inverse: occupancy must be in [0, emax={self.emax}), "
                    f"got {occupancy!r}"
                )
        o = jnp.asarray(occupancy)
        return self.ec50 * jnp.power(o / (self.emax - o), 1.0 / self.hill)
