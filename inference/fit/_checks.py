"""Checks of a fitted twin: the FC of the posterior predictive on training and held-out
edges, and the nonlinear noisy simulation at posterior draws (FC and FCD)."""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt

from .._forward import monitor_series, with_parameters
from .._keys import numpy_rng
from .._likelihoods import fisher_z
from ..metrics import ks_to_histogram, pearson
from ._setup import FitSetup, fit_keys


def fc_quality(setup: FitSetup, pp: dict[str, np.ndarray], sigma: np.ndarray) -> dict[str, Any]:
    """FC fit quality of the analytic/forward prediction: r on training and held-out edges,
    and the coverage of the held-out edges by the 90% posterior predictive interval."""
    n = setup.fc.shape[0]
    iu = np.triu_indices(n, 1)
    obs = setup.fc[iu]
    pred = pp["pred_fc"][:, iu[0], iu[1]]
    mean = np.tanh(fisher_z(pred).mean(axis=0))
    tr, te = setup.train_edges, ~setup.train_edges
    out = {"fc_r_train": pearson(mean[tr], obs[tr]), "fc_r_all": pearson(mean, obs)}
    rng = numpy_rng(fit_keys(setup.config)["coverage"])
    zrep = fisher_z(pred) + rng.normal(size=pred.shape) * sigma[: pred.shape[0], None]
    lo, hi = np.quantile(zrep, [0.05, 0.95], axis=0)
    zobs = fisher_z(obs)
    if te.any():
        out["fc_r_heldout"] = pearson(mean[te], obs[te])
        out["heldout_coverage_90"] = float(np.mean((zobs[te] >= lo[te]) & (zobs[te] <= hi[te])))
    out["train_coverage_90"] = float(np.mean((zobs[tr] >= lo[tr]) & (zobs[tr] <= hi[tr])))
    if te.any():
        out.update(baselines(setup))
    full = np.eye(n)
    full[iu] = mean
    full[iu[1], iu[0]] = mean
    return out, full


def _network(setup: FitSetup, model0, coupling0):
    """``params -> (model, coupling)`` of the simulated check: the forward map's own network
    where it has one (the linearised route re-solves feedback inhibition control at every
    draw), else the parameters put into the configured model and coupling."""
    net = getattr(setup.twin.forward, "network", None)
    if net is not None:
        return lambda p: net(p)[:2]
    return lambda p: with_parameters(model0, coupling0, p)


def baselines(setup: FitSetup) -> dict[str, float]:
    """What a twin must beat, scored on the same held-out edges (r with the observed FC).

    - ``baseline_sc_r_heldout``: the structural connectome itself, ``log W_ij`` (zero weights
      at half the smallest non-zero one);
    - ``baseline_regional_r_heldout``: one number per region and no connectome or dynamics,
      edge ``(i, j)`` predicted as ``g_i + g_j`` with ``g_i`` the mean Fisher-z FC of region
      ``i`` over the training edges.
    """
    n = setup.fc.shape[0]
    iu = np.triu_indices(n, 1)
    obs = setup.fc[iu]
    tr, te = setup.train_edges, ~setup.train_edges
    w = np.asarray(setup.experiment.connectome.weights, float)[iu]
    floor = 0.5 * w[w > 0].min() if (w > 0).any() else 1.0
    z = fisher_z(obs)
    total, count = np.zeros(n), np.zeros(n)
    for side in iu:
        np.add.at(total, side[tr], z[tr])
        np.add.at(count, side[tr], 1)
    g = total / np.maximum(count, 1)
    return {
        "baseline_sc_r_heldout": pearson(np.log(np.maximum(w, floor))[te], obs[te]),
        "baseline_regional_r_heldout": pearson((g[iu[0]] + g[iu[1]])[te], obs[te]),
    }


def simulate_check(setup: FitSetup, flat: dict[str, np.ndarray], draws: int, progress: bool):
    """Simulate the experiment at ``draws`` posterior draws (noise seeds differ) and measure
    simulated FC against the data and the FCD distribution against the reference.

    Returns:
        ``(quality dict, fc_sim mean (N, N), fcd values of the first draw)``.
    """
    cfg = setup.config
    exp = setup.experiment
    n_total = next(iter(flat.values())).shape[0]
    idx = np.linspace(0, n_total - 1, draws).round().astype(int)
    names = [p.name for p in setup.twin.priors] + list(setup.twin.fixed)
    params = {
        k: np.asarray(flat[k])[idx] if k in flat else np.full(draws, setup.twin.fixed[k])
        for k in names
    }
    kw = exp.simulate_kwargs()
    period = {m.name: m.period for m in exp.monitors}
    source = "bold" if "bold" in period else "tavg" if "tavg" in period else "raw"
    model0 = exp.model
    init = None if exp.initial_state is None else jnp.asarray(exp.initial_state)

    sim = cfg.experiment.simulation
    draw_params = [{k: v[i] for k, v in params.items()} for i in range(draws)]
    network = _network(setup, model0, kw["coupling"])
    stability = []
    for p in draw_params:
        model, coupling = network(p)
        stability.append(
            vbt.step_stability(
                model,
                exp.connectome,
                dt=sim.dt,
                coupling=coupling,
                solver=sim.solver,
                speed=sim.speed,
                state=init,
            )
        )
    stable = np.array([s.stable for s in stability])
    q: dict[str, Any] = {"sim_draws_checked": int(draws), "sim_unstable": int((~stable).sum())}
    if not stable.all():
        q["sim_unstable_advice"] = _unstable_advice(setup, params, stability, sim)
        warnings.warn(q["sim_unstable_advice"], RuntimeWarning, stacklevel=2)
    if not stable.any():
        return _failed(q, q["sim_unstable_advice"]), None, None
    params = {k: v[stable] for k, v in params.items()}

    def one(p, key):
        model, coupling = network(p)
        # "flag", not "raise": a diverged draw is reported and left out below instead of
        # failing the whole fit, and a program without the error callback can be loaded from
        # the persistent compilation cache on the next fit
        sol = vbt.simulate(
            model,
            exp.connectome,
            key=key,
            initial_state=init,
            **{**kw, "coupling": coupling, "on_divergence": "flag"},
        )
        return monitor_series(sol, source, model0), sol.ts[source], sol.diverged

    keys = jax.random.split(fit_keys(cfg)["check"], draws)[stable]
    n_sim = int(stable.sum())
    t0 = time.perf_counter()
    if progress:
        print(f"simulating {n_sim} posterior draws for the FC/FCD check ...", file=sys.stderr)
    xs, ts, diverged = jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in params.items()}, keys)
    diverged = np.asarray(diverged, bool)
    q["sim_diverged"] = int(diverged.sum())
    if diverged.all():
        return (
            _failed(
                q,
                f"every one of the {n_sim} simulated posterior draws diverged (NaN/inf) although "
                f"the {sim.solver} step dt={sim.dt} ms is stable for their linearisation: the "
                "nonlinear dynamics or the noise run away; check [noise] and the prior ranges",
            ),
            None,
            None,
        )
    if diverged.any():
        warnings.warn(
            f"{int(diverged.sum())} of {n_sim} posterior draws diverged (NaN/inf) in the "
            "FC/FCD check and are left out of it",
            RuntimeWarning,
            stacklevel=2,
        )
    xs, ts = np.asarray(xs, float)[~diverged], np.asarray(ts[0])
    draws = int((~diverged).sum())
    x = xs[:, ts > cfg.experiment.simulation.transient]
    n = setup.fc.shape[0]
    iu = np.triu_indices(n, 1)
    fcs = np.stack([np.corrcoef(xi, rowvar=False) for xi in x])
    fc_sim = np.tanh(fisher_z(fcs).mean(axis=0))
    obs = setup.fc[iu]
    tr, te = setup.train_edges, ~setup.train_edges
    q |= {
        "sim_check": "ok",
        "sim_seconds": time.perf_counter() - t0,
        "sim_draws": int(draws),
        "sim_fc_r_all": pearson(fc_sim[iu], obs),
        "sim_fc_r_per_draw": [pearson(f[iu], obs) for f in fcs],
    }
    if te.any():
        q["sim_fc_r_heldout"] = pearson(fc_sim[iu][te], obs[te])
        q["sim_fc_r_train"] = pearson(fc_sim[iu][tr], obs[tr])
    fcd_vals = None
    if x.shape[1] >= cfg.fcd_window + 2 * cfg.fcd_step:
        vals = []
        for xi in x:
            m = np.asarray(vbt.features.fcd(jnp.asarray(xi), cfg.fcd_window, cfg.fcd_step))
            vals.append(
                np.asarray(
                    vbt.features.fcd_values(
                        jnp.asarray(m), min_separation=math.ceil(cfg.fcd_window / cfg.fcd_step)
                    )
                )
            )
        fcd_vals = np.concatenate(vals)
        q["fcd_window_samples"] = cfg.fcd_window
        q["fcd_step_samples"] = cfg.fcd_step
        q["fcd_mean"] = float(fcd_vals.mean())
        if setup.fcd_reference is not None:
            edges, hist = setup.fcd_reference
            q["fcd_ks"] = ks_to_histogram(fcd_vals, edges, hist)
            q["fcd_ks_per_draw"] = [
                ks_to_histogram(v, edges, hist) for v in np.array_split(fcd_vals, draws)
            ]
    return q, fc_sim, fcd_vals


def _failed(q: dict[str, Any], reason: str) -> dict[str, Any]:
    return q | {"sim_check": "failed", "sim_check_reason": reason}


def _unstable_advice(setup: FitSetup, params: dict, stability: list, sim) -> str:
    """Which draws the step cannot integrate, the step that would, and the parameter ranges."""
    stable = np.array([s.stable for s in stability])
    bad = [s for s in stability if not s.stable]
    dt_ok = min(s.dt_max for s in bad)
    parts = []
    for p in setup.twin.priors:
        v = np.asarray(params[p.name], float).reshape(len(stability), -1)
        lo, hi = v.min(axis=1), v.max(axis=1)
        if np.ptp(np.r_[lo, hi]) == 0:
            continue
        text = f"{p.name} in [{lo[~stable].min():.3g}, {hi[~stable].max():.3g}] for unstable draws"
        if stable.any():
            text += f", [{lo[stable].min():.3g}, {hi[stable].max():.3g}] for stable ones"
        parts.append(text)
    return (
        f"{len(bad)} of {len(stability)} check draws make the explicit {sim.solver} step "
        f"dt={sim.dt} ms unstable (per-step growth up to {max(s.growth for s in bad):.3g} of "
        "modes the network itself damps), so they are not simulated. Either set [simulation] "
        f"dt <= {dt_ok:.3g} ms (stable for every one of them) or narrow the prior to the stable "
        "region: " + "; ".join(parts)
    )


__all__ = ["fc_quality", "simulate_check"]
