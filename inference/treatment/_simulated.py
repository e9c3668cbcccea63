"""Simulated post-treatment features (FCD, FC) of a fitted twin: the nonlinear model with noise.

The analytic predictions (:mod:`inference._predict`) give stationary FC and spectra of the
linearised network; the FCD (how the FC fluctuates over a scan) needs the nonlinear,
stochastic model. For a few posterior draws, the twin is simulated (``vbt.simulate``, the
twin's own experiment: duration, dt, noise, monitors) at baseline and under every
intervention at one dose, with the same noise key for every variant of a draw (common random
numbers: the differences are the intervention's, not the noise's). Drugs and stimulation
change ``a`` for the whole scan (the stationary state during a long stimulation, as in the
analytic predictions); lesions change the weights.

Features per draw and variant: the FCD values (Pearson r between sliding-window FC upper
triangles, windows further apart than one window length), their mean and sd, the KS distance
between the treated and the baseline FCD distributions, and the mean FC change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError

from .._forward import monitor_series
from .._keys import as_key


class SimulatedPredictions(eqx.Module):
    """Simulated features at a few posterior draws (NumPy arrays; ``V = 1 + I`` variants:
    the baseline first, then the interventions).

    Attributes:
        names: ``("baseline", *interventions)`` (static).
        dose: the dose of the drugs (static).
        draws: (S,) indices of the posterior draws simulated.
        fcd: (S, V, M) FCD values per draw and variant (M per simulation).
        mean_fc: (S, V) mean FC over the upper-triangle edges.
        fcd_ks: (S, V) KS distance of each variant's FCD distribution to the baseline's (0 for
            the baseline itself).
        duration_s, window, step: scan length [s] and FCD window/step in samples (static).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    dose: float = eqx.field(static=True)
    draws: np.ndarray
    fcd: np.ndarray
    mean_fc: np.ndarray
    fcd_ks: np.ndarray
    duration_s: float = eqx.field(static=True)
    window: int = eqx.field(static=True)
    step: int = eqx.field(static=True)

    @property
    def fcd_mean(self) -> np.ndarray:
        """(S, V) mean of the FCD values."""
        return self.fcd.mean(-1)

    @property
    def fcd_sd(self) -> np.ndarray:
        """(S, V) sd of the FCD values (the FCD's spread; 'fluidity' in some papers)."""
        return self.fcd.std(-1)


def _ks(x: np.ndarray, y: np.ndarray) -> float:
    import scipy.stats

    return float(scipy.stats.ks_2samp(x, y).statistic)


def simulate_interventions(
    experiment: Any,
    a_draws: Any,
    G_draws: Any,
    interventions: Mapping[str, Any],
    dose: float,
    *,
    draws: int,
    key: Any,
    window: int,
    step: int,
    progress: Callable[[str], None] | None = None,
) -> SimulatedPredictions:
    """Simulate ``draws`` posterior draws of a Hopf twin at baseline and under each intervention.

    Args:
        experiment: the twin's :class:`vbt_jax.config.Experiment` (model, connectome,
            coupling, noise, monitors, duration, transient).
        a_draws, G_draws: (D, N) and (D,) posterior draws; ``draws`` of them are taken evenly.
        interventions: name -> Drug on ``a``, Lesion or Stimulation (as
            :func:`inference.predict_interventions`).
        dose: the drugs' dose (EC50 units).
        draws: how many posterior draws to simulate (>= 1).
        key: PRNG key of the noise (split into one key per draw, shared by its variants).
        window, step: FCD window and step, in samples of the monitor.
        progress: optional callable receiving a status line per simulation batch.

    Returns:
        A :class:`SimulatedPredictions`.

    Raises:
        ArgumentError: too few samples after the transient for two non-overlapping FCD windows,
            or an intervention the Hopf twin cannot take.
    """
    from vbt_jax.interventions import Drug, Lesion, Stimulation

    a = np.asarray(a_draws, np.float64)
    G = np.asarray(G_draws, np.float64).reshape(-1)
    D, n = a.shape
    if draws < 1:
        raise ArgumentError(f"simulate_interventions: draws must be >= 1, got {draws}")
    idx = np.linspace(0, D - 1, min(draws, D)).round().astype(int)
    exp = experiment
    kw = exp.simulate_kwargs()
    periods = {m.name: m.period for m in exp.monitors}
    source = "bold" if "bold" in periods else "tavg" if "tavg" in periods else "raw"
    sim = exp.config.simulation
    n_samples = int((sim.duration - sim.transient) // periods[source])
    min_sep = math.ceil(window / step)
    if n_samples < window + (min_sep + 1) * step:
        raise ArgumentError(
            f"simulate_interventions: {n_samples} samples after the transient are too few for "
            f"FCD windows of {window} samples apart by more than one window (step {step})"
        )
    model0, conn = exp.model, exp.connectome
    labels = tuple(conn.labels)
    init = None if exp.initial_state is None else jnp.asarray(exp.initial_state)
    names = ("baseline", *interventions)
    # per variant: how a (N,) changes, and the connectome
    variants: list[tuple[Callable[[Any], Any], Any]] = [(lambda x: x, conn)]
    for name, iv in interventions.items():
        if isinstance(iv, Drug):
            if iv.parameter != ("a",):
                raise ArgumentError(f"intervention {name!r}: a Hopf drug must act on ('a',)")
            rho = jnp.asarray(iv.regional_density(labels))

            def fn(x, iv=iv, rho=rho):
                return iv.apply(eqx.tree_at(lambda m: m.a, model0, x), dose, density=rho).a

            variants.append((fn, conn))
        elif isinstance(iv, Stimulation):
            off = jnp.asarray(iv.offset(n, labels))
            variants.append((lambda x, off=off: x + off, conn))
        elif isinstance(iv, Lesion):
            variants.append((lambda x: x, iv.apply(conn)))
        else:
            raise ArgumentError(f"intervention {name!r}: {type(iv).__name__} is not supported")

    def run_one(connectome):
        @jax.jit
        def f(a_v, G_v, key):
            def one(a1, G1, k1):
                model = eqx.tree_at(lambda m: m.a, model0, a1)
                coupling = eqx.tree_at(lambda c: c.G, kw["coupling"], G1)
                sol = vbt.simulate(
                    model, connectome, key=k1, initial_state=init, **{**kw, "coupling": coupling}
                )
                return monitor_series(sol, source, model0), sol.ts[source]

            return jax.vmap(one)(a_v, G_v, key)

        return f

    keys = jax.random.split(
        jax.random.wrap_key_data(as_key(key, "simulate_interventions")), idx.size
    )
    iu = np.triu_indices(n, 1)
    fcd = [[None] * len(variants) for _ in idx]
    mean_fc = np.zeros((idx.size, len(variants)))
    # variants sharing a connectome run as one vmapped batch over (draw, variant)
    groups: dict[int, list[int]] = {}
    for v, (_, c) in enumerate(variants):
        groups.setdefault(id(c), []).append(v)
    t0 = time.perf_counter()
    for members in groups.values():
        c = variants[members[0]][1]
        A = jnp.stack([variants[v][0](jnp.asarray(a[d])) for d in idx for v in members])
        Gs = jnp.asarray(np.repeat(G[idx], len(members)))
        ks = jnp.repeat(keys, len(members), axis=0)
        if progress is not None:
            progress(
                f"simulating {', '.join(names[v] for v in members)} at {idx.size} draw(s) "
                f"({sim.duration / 1000:.0f} s each)"
            )
        xs, ts = run_one(c)(A, Gs, ks)
        xs, ts = np.asarray(xs, np.float64), np.asarray(ts[0])
        xs = xs[:, ts > sim.transient]
        for j, x in enumerate(xs):
            di, v = divmod(j, len(members))
            v = members[v]
            fc = np.corrcoef(x, rowvar=False)
            mean_fc[di, v] = fc[iu].mean()
            m = vbt.features.fcd(jnp.asarray(x), window, step)
            fcd[di][v] = np.asarray(vbt.features.fcd_values(m, min_separation=min_sep))
    fcd_arr = np.asarray([[np.asarray(f) for f in row] for row in fcd])
    ks = np.asarray([[_ks(f, row[0]) for f in row] for row in fcd_arr])
    if progress is not None:
        progress(f"simulations done in {time.perf_counter() - t0:.0f} s")
    return SimulatedPredictions(
        names=names,
        dose=float(dose),
        draws=idx,
        fcd=fcd_arr,
        mean_fc=mean_fc,
        fcd_ks=ks,
        duration_s=sim.duration / 1000.0,
        window=window,
        step=step,
    )
