"""NUTS chains and an SVI fit as state machines: ``init(key)``, ``resume(key, saved)`` and
``update(state, n) -> (state, output)``, driven in chunks by :func:`._driver.drive`.

Each ``update`` is a function of the state it is given: the same state gives the same next
state and output, whichever process runs it, which is what makes a resumed run equal an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
from numpyro.infer import MCMC, NUTS, SVI

# per-iteration fields of the NUTS state returned with the draws, as ``__<field>``
EXTRA_FIELDS = ("diverging", "accept_prob", "num_steps", "potential_energy", "energy")


@dataclasses.dataclass(frozen=True)
class NutsSampler:
    """``num_chains`` NUTS chains of ``kernel`` on ``data``; one iteration is one draw per
    chain, warm-up (step size and mass matrix adaptation) for the first ``num_warmup``.

    The state is numpyro's ``HMCState`` (batched over chains when ``num_chains > 1``);
    its ``i`` says whether an iteration adapts, so warm-up and sampling are the same
    ``update``. ``update`` runs ``numpyro.infer.MCMC`` from the state (as
    ``post_warmup_state``) for ``n`` iterations; one MCMC object per chunk length is kept,
    only as a cache of its compiled loop.

    Attributes:
        kernel: the NUTS kernel (its ``num_warmup`` schedule is set by :meth:`init`, or by
            the first ``update`` of a resumed state).
        data: the model's argument.
        num_warmup: adapting iterations per chain.
        num_chains: chains.
        chain_method: ``"parallel"``, ``"sequential"`` or ``"vectorized"``.
    """

    kernel: NUTS
    data: Any
    num_warmup: int
    num_chains: int
    chain_method: str
    _runs: dict[int, MCMC] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def init(self, key: Any) -> Any:
        """The chains' initial state, as ``MCMC.run`` makes it: ``key`` split over chains,
        each chain's position from the kernel's ``init_strategy``."""

        def one(k):
            return self.kernel.init(k, self.num_warmup, None, model_args=(self.data,))

        if self.num_chains == 1:
            return one(key)
        keys = jr.split(key, self.num_chains)
        if self.chain_method == "vectorized":
            return one(keys)
        if self.chain_method == "parallel":
            return jax.pmap(one)(keys)
        states = [one(keys[c]) for c in range(self.num_chains)]
        return jtu.tree_map(lambda *xs: jnp.stack(xs), *states)

    def resume(self, key: Any, saved: Any) -> Any:
        return saved

    def update(self, state: Any, n: int) -> tuple[Any, dict[str, np.ndarray]]:
        """``n`` more iterations of every chain.

        Returns:
            ``(state, output)``: output maps each latent and deterministic site to its
            draws, (chain, n, ...), and ``__<field>`` to each of :data:`EXTRA_FIELDS`.
        """
        mcmc = self._runs.get(n)
        if mcmc is None:
            mcmc = MCMC(
                self.kernel,
                num_warmup=self.num_warmup,
                num_samples=n,
                num_chains=self.num_chains,
                chain_method=self.chain_method,
                progress_bar=False,
                jit_model_args=True,
            )
            self._runs[n] = mcmc
        mcmc.post_warmup_state = state
        mcmc.run(state.rng_key, self.data, extra_fields=EXTRA_FIELDS)
        out = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        extra = mcmc.get_extra_fields(group_by_chain=True)
        for k in EXTRA_FIELDS:
            out[f"__{k}"] = np.asarray(extra[k])
        return mcmc.last_state, out


@dataclasses.dataclass(frozen=True)
class SviSampler:
    """Optimiser steps of ``svi`` on ``data``, ``block`` at a time under one compiled
    ``lax.scan`` (a shorter last chunk masks the steps past its end).

    The state is numpyro's ``SVIState`` (guide parameters, optimiser state, PRNG key).

    Attributes:
        svi: ``numpyro.infer.SVI`` of the model, guide, optimiser and loss.
        data: the model's argument.
        block: the longest chunk.
    """

    svi: SVI
    data: Mapping[str, Any] | None
    block: int

    def __post_init__(self):
        svi, block = self.svi, self.block

        def run_block(state, data, n_valid):
            def body(s, i):
                s2, loss = svi.update(s, data)
                keep = i < n_valid
                s2 = jtu.tree_map(lambda a, b: jnp.where(keep, a, b), s2, s)
                return s2, loss

            return jax.lax.scan(body, state, jnp.arange(block))

        object.__setattr__(self, "_run_block", jax.jit(run_block))

    def init(self, key: Any) -> Any:
        return self.svi.init(key, self.data)

    def resume(self, key: Any, saved: Any) -> Any:
        """The saved state, after ``init`` has built the guide's structure from ``key``."""
        self.svi.init(key, self.data)
        return jtu.tree_map(jnp.asarray, saved)

    def update(self, state: Any, n: int) -> tuple[Any, dict[str, np.ndarray]]:
        """``n`` (at most ``block``) more steps.

        Returns:
            ``(state, {"loss": (n,) losses})``.

        Raises:
            FloatingPointError: the last loss is not finite.
        """
        state, losses = self._run_block(state, self.data, n)
        losses = np.asarray(losses[:n])
        if not np.isfinite(losses[-1]):
            step = int(state.optim_state[0])
            raise FloatingPointError(
                f"SVI loss became {losses[-1]} at step {step}; lower the learning rate"
            )
        return state, {"loss": losses}
