"""Per-region centring of regional priors, learnt by variational inference."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from vbt_jax import ArgumentError

from ._keys import as_key
from ._priors import Regional


def needs_centring(twin) -> bool:
    """Whether a regional prior of ``twin`` has ``centred="auto"``."""
    return any(_auto(p) for p in twin.priors)


def _auto(p) -> bool:
    return isinstance(p, Regional) and isinstance(p.centred, str)


def learn_centring(
    twin,
    data: Mapping[str, Any],
    *,
    key,
    steps: int = 2000,
    learning_rate: float = 0.02,
):
    """The twin with every ``centred="auto"`` regional prior given learnt centredness values.

    Fits a mean-field normal guide to the partially centred model with the centredness of each
    region a free parameter in [0, 1] (maximising the ELBO over both, as Gorinova, Moore &
    Hoffman 2019), and fixes the result: near 1 where the data pin a region down, near 0 where
    its posterior is its prior. NUTS on the returned twin then meets neither the centred form's
    funnel (weakly informed regions) nor the non-centred form's coupling (strongly informed
    ones). Deterministic for a given key.

    Args:
        twin: a :class:`inference.Twin`; returned unchanged if no prior is ``"auto"``.
        data: the observed data dict (``Twin.observe``).
        key: a JAX PRNG key.
        steps, learning_rate: Adam steps of the variational fit.

    Raises:
        ArgumentError: ``steps < 1``, or the variational fit produced a non-finite loss.
    """
    import optax
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    if not needs_centring(twin):
        return twin
    if steps < 1:
        raise ArgumentError(f"learn_centring: steps must be >= 1, got {steps}")
    guide = AutoNormal(twin)
    svi = SVI(twin, guide, optax.adam(learning_rate), Trace_ELBO())
    res = svi.run(as_key(key, "learn_centring"), steps, data, progress_bar=False)
    loss = np.asarray(res.losses)
    if not np.isfinite(loss[-max(1, steps // 10) :]).all():
        raise ArgumentError(
            "learn_centring: the variational fit's loss is not finite; lower learning_rate"
        )
    priors = tuple(
        dataclasses.replace(p, centred=np.asarray(res.params[f"{p.name}_eta_centered"], float))
        if _auto(p)
        else p
        for p in twin.priors
    )
    return dataclasses.replace(twin, priors=priors)


__all__ = ["learn_centring", "needs_centring"]
