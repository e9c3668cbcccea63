"""The ``region_local`` declaration shared by models, couplings and solvers."""

from __future__ import annotations

from typing import ClassVar


class RegionLocal:
    """Mixin giving a class the class variable ``region_local`` (default ``False``).

    ``region_local = True`` declares that the class maps each region's values to that region's
    output without reading other regions' (what that means for a model, a coupling and a
    solver is said on their base classes). :func:`vbt_jax.simulate`'s custom adjoint uses
    per-region Jacobians only when the model, the coupling and the solver all declare it.

    The declaration is not inherited: a subclass is ``False`` unless its own body sets it, as
    overriding a method can break the property.
    """

    region_local: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "region_local" not in cls.__dict__:
            cls.region_local = False
