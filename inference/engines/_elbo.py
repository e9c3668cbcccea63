"""The evidence lower bound used by :func:`inference.run_svi`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from numpyro import handlers
from numpyro.infer.elbo import ELBO
from numpyro.infer.util import log_density


class OrderedTraceELBO(ELBO):
    """The standard reparameterised ELBO, ``E_q[log p(x, z) - log q(z)]``, estimated with
    ``num_particles`` draws of the guide, each log density summed over its sites in the
    order the program visits them.

    This is what NumPyro's ``Trace_ELBO`` computes for continuous latent variables. We do
    not use that class because NumPyro >= 0.18 forms its per-site terms in the iteration
    order of a Python ``set`` of site names, which changes with ``PYTHONHASHSEED`` from one
    process to the next: the compiled SVI step was a different program in every process, so
    JAX's persistent compilation cache never found it (a 5-6 s recompile in every fit), and
    the float32 loss could differ in its last bits between processes for the same seed.

    Only models and guides without mutable state (``numpyro.mutable``) are supported, which
    covers every guide of :func:`inference.run_svi`.
    """

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        def particle(key):
            model_key, guide_key = jax.random.split(key)
            log_q, guide_trace = log_density(
                handlers.seed(guide, guide_key), args, kwargs, param_map
            )
            if any(site["type"] == "mutable" for site in guide_trace.values()):
                raise NotImplementedError("OrderedTraceELBO: mutable guide state")
            replayed = handlers.replay(handlers.seed(model, model_key), guide_trace)
            log_p, _ = log_density(replayed, args, kwargs, param_map)
            return log_p - log_q

        if self.num_particles == 1:
            elbo = particle(rng_key)
        else:
            keys = jax.random.split(rng_key, self.num_particles)
            elbo = jnp.mean(jax.vmap(particle)(keys))
        return {"loss": -elbo, "mutable_state": None}
