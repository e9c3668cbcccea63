"""What a NumPyro model samples: its site names, and how many numbers a sampler moves."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from numpyro import handlers
from numpyro.distributions.transforms import biject_to


def _trace(model, data):
    with handlers.block():
        return handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(data)


def model_sites(model, data) -> dict[str, list[str]]:
    """Names of latent, deterministic and observed sites of a NumPyro model."""
    out = {"latent": [], "deterministic": [], "observed": []}
    for name, site in _trace(model, data).items():
        if site["type"] == "deterministic":
            out["deterministic"].append(name)
        elif site["type"] == "sample":
            out["observed" if site["is_observed"] else "latent"].append(name)
    return out


def latent_size(model, data: Any) -> int:
    """Unconstrained dimensions of the model's latent sites: the numbers NUTS moves and an
    autoguide fits (a simplex of k values counts k - 1, a k x k correlation Cholesky factor
    k (k - 1) / 2)."""
    n = 0
    for site in _trace(model, data).values():
        if site["type"] == "sample" and not site["is_observed"]:
            shape = biject_to(site["fn"].support).inverse_shape(jnp.shape(site["value"]))
            n += math.prod(shape)
    return n
