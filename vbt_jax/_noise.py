"""Noise processes for the stochastic integrators."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array


class Additive(eqx.Module):
    r"""Additive white noise with TVB's convention: :math:`dx = f\,dt + \sqrt{2\,\sigma}\,dW`.

    Each step adds ``sqrt(2 * nsig * dt) * z`` with ``z`` standard normal, so ``nsig`` is the
    diffusion coefficient [state unit^2 / ms].

    Args:
        nsig: scalar, one value per state variable ``(n_states,)``, or per state variable and
            region ``(n_states, N)``. Zero switches a variable's noise off.
    """

    nsig: float | Array = 1e-3

    def per_component(self, n_states: int, n_regions: int, dtype) -> Array:
        """``nsig`` broadcast to ``(n_states, n_regions)``, after checking its shape.

        Raises:
            ValueError: ``nsig`` is neither scalar, ``(n_states,)`` nor
                ``(n_states, n_regions)``.
        """
        nsig = jnp.asarray(self.nsig, dtype)
        if nsig.ndim == 1:
            if nsig.shape[0] != n_states:
                raise ValueError(
                    f"Additive noise nsig has shape {nsig.shape}; expected () , ({n_states},) or "
                    f"({n_states}, {n_regions}) for a model with {n_states} state variables"
                )
            nsig = nsig[:, None]
        elif nsig.ndim == 2 and nsig.shape != (n_states, n_regions):
            raise ValueError(
                f"Additive noise nsig has shape {nsig.shape}; expected ({n_states}, {n_regions})"
            )
        return jnp.broadcast_to(nsig, (n_states, n_regions))

    def increment_scale(self, dt: float, n_states: int, n_regions: int, dtype) -> Array:
        """``sqrt(2 nsig dt)`` per state variable and region: the scale of one step's noise."""
        return jnp.sqrt(2.0 * self.per_component(n_states, n_regions, dtype) * dt)
