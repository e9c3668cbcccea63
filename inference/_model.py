"""The twin: priors + forward map + likelihoods, as one NumPyro model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import numpyro

from vbt_jax import ArgumentError

from ._forward import required_parameters
from ._priors import Prior, sample_priors


@dataclasses.dataclass(frozen=True, eq=False)
class Twin:
    """A Bayesian whole-brain twin.

    Calling it is the NumPyro model: ``twin(data)`` samples the priors, runs the forward map and
    scores each likelihood against ``data[likelihood.site]`` (an observed array in the form
    returned by ``likelihood.observe``), or samples it when ``data`` is None or lacks the site
    (prior/posterior predictive). Predicted features are recorded as deterministic sites
    ``pred_<feature>``.

    Attributes:
        priors: the sampled parameters.
        forward: a forward map (``HopfLinear``, ``Simulated``...): params dict -> features.
        likelihoods: each with ``site``, ``feature``, ``observe`` and ``__call__(pred, obs)``.
        fixed: parameters held at fixed values (not sampled).
        labels: region labels (output coordinates).
        record: features to record as ``pred_<feature>`` deterministic sites.
    """

    priors: Sequence[Prior]
    forward: Any
    likelihoods: Sequence[Any]
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    labels: tuple[str, ...] | None = None
    record: tuple[str, ...] = ()

    def __post_init__(self):
        names = [p.name for p in self.priors]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ArgumentError(f"Twin: parameters with two priors: {sorted(dup)}")
        both = set(names) & set(self.fixed)
        if both:
            raise ArgumentError(f"Twin: parameters both fixed and sampled: {sorted(both)}")
        missing = set(required_parameters(self.forward)) - set(names) - set(self.fixed)
        if missing:
            raise ArgumentError(
                f"Twin: the forward map needs {sorted(missing)}: give each a prior or a fixed value"
            )
        globals_ = {p.name for p in self.priors if not p.regional} | set(self.fixed)
        for p in self.priors:
            by = getattr(p, "scale_by", None)
            if p.regional and by is not None and by not in globals_:
                raise ArgumentError(
                    f"Twin: regional prior {p.name!r}: scale_by={by!r} is not a global "
                    f"parameter (globals: {sorted(globals_)})"
                )
        sites = [lk.site for lk in self.likelihoods]
        if len(set(sites)) != len(sites):
            raise ArgumentError(f"Twin: two likelihoods share a site name: {sites}")
        feats = set(getattr(self.forward, "features", ()))
        for lk in self.likelihoods:
            if lk.feature not in feats:
                raise ArgumentError(
                    f"Twin: likelihood {lk.site!r} needs feature {lk.feature!r}, which the "
                    f"forward map does not compute (it computes {sorted(feats)})"
                )

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.priors)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(lk.site for lk in self.likelihoods)

    def observe(self, observed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Turn raw observations (keyed by likelihood site) into the model's ``data`` dict.

        Raises:
            ArgumentError: a site has no observation, or one has the wrong shape.
        """
        missing = [s for s in self.sites if s not in observed]
        if missing:
            raise ArgumentError(f"no observed data for likelihood(s) {missing}")
        return {lk.site: np.asarray(lk.observe(observed[lk.site])) for lk in self.likelihoods}

    def parameters(self) -> dict[str, Any]:
        """Sample the priors (inside a model) and merge the fixed values."""
        return sample_priors(self.priors, self.fixed)

    def __call__(self, data: Mapping[str, Any] | None = None) -> None:
        params = self.parameters()
        pred = _call(self.forward, params)
        if "stationary" in pred:
            # a draw where the forward map has no stationary statistics has zero density
            numpyro.factor("stationary", jnp.where(pred["stationary"], 0.0, -jnp.inf))
        for name in self.record:
            if name in pred:
                numpyro.deterministic(f"pred_{name}", pred[name])
        for lk in self.likelihoods:
            obs = None if data is None else data.get(lk.site)
            lk(pred, None if obs is None else jnp.asarray(obs))


@eqx.filter_jit
def _call(forward, params):
    """``forward(params)`` as one compiled program. Inside a jitted NUTS or SVI step this is
    inlined; where NumPyro runs the model eagerly (SVI and NUTS initialisation, predictive
    draws) it replaces hundreds of op-by-op dispatches, each its own small program."""
    return forward(params)


__all__ = ["Twin"]
