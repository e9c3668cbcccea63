"""Cost of the linearised likelihood's gradient for the Wong-Wang twin on DK-84.

Workload: inference.Linearised on the shipped DK-84 connectome (weights / max), the reduced
Wong-Wang model with feedback inhibition control solved again at every evaluation, Linear(G=0.3)
coupling, additive noise 1e-4; the loss is the squared distance of the predicted upper-triangle
FC to the shipped empirical FC, and one evaluation is ``jax.jit(jax.value_and_grad(loss))`` at
(G, w_p[84]). Three observations of the same network:

- neural: FC of S_E (Lyapunov equation of the 168-state neural system);
- bold: BOLD FC, the Balloon-Windkessel states inside the linear system, solved with its block
  structure (LinearisedNetwork.covariance);
- bold-whole: the same BOLD FC from the Lyapunov equation of the whole 504-state system.

Compile time is measured apart; the evaluation is repeated and the median is reported, with
the FC correlation to the empirical FC at the evaluated point. Pin the process to one core
(``taskset -c 0``) on a shared machine.

Usage::

    python benchmarks/bench_linearised.py [--reps 5] [--x64]

Writes ``benchmarks/results/linearised.{md,json}`` (``linearised-x64.*`` with ``--x64``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--x64", action="store_true")
    args = ap.parse_args()

    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import inference as inf
    import vbt_jax as vbt
    from vbt_jax.models import ReducedWongWangExcInh

    conn = vbt.dk84().normalised("max")
    n = conn.n_regions
    emp = jnp.asarray(vbt.dk84_empirical_fc())
    params = {"G": jnp.asarray(0.3), "w_p": jnp.full((n,), 1.4)}
    rows = []
    for name in ("neural", "bold", "bold-whole"):
        fwd = inf.Linearised(
            model=ReducedWongWangExcInh(),
            connectome=conn,
            coupling=vbt.Linear(G=0.3),
            noise=vbt.Additive(1e-4),
            observe="neural" if name == "neural" else "bold",
            fic=True,
        )

        def fc_of(p, fwd=fwd, whole=name == "bold-whole"):
            if not whole:
                return fwd(p)["fc"]
            lin = fwd.linearise(p)
            C = lin.observation
            return vbt.linear_fc(C @ lin.state_covariance() @ C.T, n)

        def loss(p, fc_of=fc_of):
            return jnp.sum((jnp.triu(fc_of(p), 1) - jnp.triu(emp, 1)) ** 2)

        vg = jax.jit(jax.value_and_grad(loss))
        t0 = time.perf_counter()
        jax.block_until_ready(vg(params))
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            jax.block_until_ready(vg(params))
            times.append(time.perf_counter() - t0)
        fc = np.asarray(jax.jit(fc_of)(params))
        r = float(vbt.features.upper_r(fc, np.asarray(emp)))
        med = statistics.median(times)
        rows.append(
            {
                "observe": name,
                "states": (2 if name == "neural" else 6) * n,
                "compile_and_first_s": round(first, 2),
                "value_and_grad_median_s": round(med, 4),
                "gradients_per_s": round(1.0 / med, 2),
                "fc_r_empirical": round(r, 4),
            }
        )
        print(rows[-1], flush=True)
    out = {
        "workload": "Wong-Wang + FIC on DK-84, inference.Linearised, value_and_grad",
        "dtype": "float64" if args.x64 else "float32",
        "reps": args.reps,
        "jax": jax.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "rows": rows,
    }
    stem = "linearised-x64" if args.x64 else "linearised"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        f"# {out['workload']} ({out['dtype']}, jax {out['jax']}, "
        f"{out['cpus_available']} CPU(s), median of {args.reps})",
        "",
        "| observation | states | compile + first (s) | value+grad (s) | gradients/s | FC r |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['observe']} | {row['states']} | {row['compile_and_first_s']} | "
            f"{row['value_and_grad_median_s']} | {row['gradients_per_s']} | "
            f"{row['fc_r_empirical']} |"
        )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
