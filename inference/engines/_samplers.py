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
from numpyro.infer import NUTS, SVI

# per-iteration fields of the NUTS state returned with the draws, as ``__<field>``
EXTRA_FIELDS = ("diverging", "accept_prob", "num_steps", "potential_energy", "energy")


@dataclasses.dataclass(frozen=True)
class NutsSampler:
    """``num_chains`` NUTS chains of ``kernel`` on ``data``; one iteration is one draw per
    chain, warm-up (step size and mass matrix adaptation) for the first ``num_warmup``.

    The state is numpyro's ``HMCState`` (batched over chains when ``num_chains > 1``);
    its ``i`` says whether an iteration adapts, so warm-up and sampling are the same
    ``update``: ``n`` calls of the kernel's ``sample`` under one ``lax.scan``, compiled once
    per chunk length and reused by every later chunk of that length (chains under
    ``jax.pmap`` for ``"parallel"``, ``jax.vmap`` for ``"vectorized"``, one after another for
    ``"sequential"``). Each draw is mapped to the model's sites (constrained latent and
    deterministic values) by the kernel's ``postprocess_fn``, as ``numpyro.infer.MCMC`` does.

    Attributes:
        kernel: the NUTS kernel (its ``num_warmup`` schedule is set by :meth:`init`, or by
            :meth:`resume`).
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
    _loops: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def _init_one(self, key: Any) -> Any:
        return self.kernel.init(key, self.num_warmup, None, model_args=(self.data,))

    def init(self, key: Any) -> Any:
        """The chains' initial state, as ``MCMC.run`` makes it: ``key`` split over chains,
        each chain's position from the kernel's ``init_strategy``."""
        if self.num_chains == 1:
            return self._init_one(key)
        keys = jr.split(key, self.num_chains)
        if self.chain_method == "vectorized":
            return self._init_one(keys)
        # chain by chain outside any transformation (also for "parallel"): the kernel keeps
        # the functions its init builds, and they must not close over another trace's values
        states = [self._init_one(keys[c]) for c in range(self.num_chains)]
        return jtu.tree_map(lambda *xs: jnp.stack(xs), *states)

    def resume(self, key: Any, saved: Any) -> Any:
        """The saved state, after the kernel has been set up (its adaptation schedule and
        the model's potential) from ``key`` in this process."""
        if getattr(self.kernel, "_sample_fn", None) is None:
            self._init_one(key)  # one chain's init builds the kernel's functions for all
        return saved

    def _loop(self, n: int) -> Any:
        """The compiled ``n``-iteration loop of one chain (or all, batched)."""
        fn = self._loops.get(n)
        if fn is not None:
            return fn
        kernel = self.kernel

        def one_chain(state, data):
            post = kernel.postprocess_fn((data,), {})

            def body(s, _):
                s = kernel.sample(s, (data,), {})
                return s, (post(s.z), {f: getattr(s, f) for f in EXTRA_FIELDS})

            return jax.lax.scan(body, state, None, length=n)

        if self.num_chains > 1 and self.chain_method == "parallel":
            fn = jax.pmap(one_chain, in_axes=(0, None))
        elif self.num_chains > 1 and self.chain_method == "vectorized":
            fn = jax.jit(jax.vmap(one_chain, in_axes=(0, None)))
        else:
            fn = jax.jit(one_chain)
        self._loops[n] = fn
        return fn

    def update(self, state: Any, n: int) -> tuple[Any, dict[str, np.ndarray]]:
        """``n`` more iterations of every chain.

        Returns:
            ``(state, output)``: output maps each latent and deterministic site to its
            draws, (chain, n, ...), and ``__<field>`` to each of :data:`EXTRA_FIELDS`.
        """
        loop = self._loop(n)
        if self.num_chains == 1:
            state, (sites, extra) = loop(state, self.data)
            sites, extra = jtu.tree_map(lambda x: x[None], (sites, extra))
        elif self.chain_method in ("parallel", "vectorized"):
            state, (sites, extra) = loop(state, self.data)
        else:
            runs = [
                loop(jtu.tree_map(lambda x, c=c: x[c], state), self.data)
                for c in range(self.num_chains)
            ]
            state, (sites, extra) = jtu.tree_map(lambda *xs: jnp.stack(xs), *runs)
        out = {k: np.asarray(v) for k, v in sites.items()}
        for k in EXTRA_FIELDS:
            out[f"__{k}"] = np.asarray(extra[k])
        return state, out


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
