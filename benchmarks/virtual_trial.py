"""Run the virtual drug trial (``inference.validation.virtual_trial``) over several seeds and
write its measured numbers: ``benchmarks/results/virtual_trial.json`` and ``.md``.

    python benchmarks/virtual_trial.py                 # 4 seeds (a few minutes each on a core)
    python benchmarks/virtual_trial.py --seeds 0 1     # chosen seeds; writes virtual_trial-seeds.*

Per seed: 90 % coverage of the held-out patients' regional GBC changes, responder AUC, RMSE of
the predictive mean, the population efficacy's 90 % interval against the truth, the training
patients' efficacy coverage, and the same scores with the shuffled-map negative control. Across
seeds: the mean and the range, and for the coverage a two-sided 99 % binomial band of the
nominal rate for the number of held-out patients pooled.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inference.validation import TrialDesign, run_virtual_trial  # noqa: E402
from vbt_jax.jobs import versions  # noqa: E402


def one_seed(seed: int) -> dict:
    t0 = time.perf_counter()
    res = run_virtual_trial(key=jax.random.key(seed))
    seconds = time.perf_counter() - t0
    design = TrialDesign()
    row = {"seed": seed, "seconds": seconds}
    for name, r in res.items():
        e = np.asarray(r["posterior"]["e_pop"], float).reshape(-1)
        lo, hi = np.quantile(e, [0.05, 0.95])
        row[name] = {
            "coverage_90": float(r["coverage"]),
            "n_predictions": int(np.asarray(r["observed"]).size),
            "n_patients": int(np.asarray(r["observed"]).shape[0]),
            "auc": float(r["auc"]),
            "rmse": float(r["rmse"]),
            "e_pop_mean": float(e.mean()),
            "e_pop_sd": float(e.std()),
            "e_pop_90": [float(lo), float(hi)],
            "e_pop_inside": bool(lo <= design.e_pop <= hi),
            "efficacy_coverage_90": float(r["efficacy_coverage"]),
            "heldout_lpd": float(np.sum(r["lpd"])),
        }
    return row


def _band(n: int, p: float = 0.9, prob: float = 0.99) -> list[float]:
    lo, hi = stats.binom.ppf([(1 - prob) / 2, (1 + prob) / 2], n, p)
    return [float(lo / n), float(hi / n)]


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name in ("true", "shuffled"):
        rs = [r[name] for r in rows if name in r]
        if not rs:
            continue
        s = {}
        for k in ("coverage_90", "auc", "rmse", "efficacy_coverage_90", "heldout_lpd"):
            v = np.array([r[k] for r in rs])
            s[k] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
        n = sum(r["n_predictions"] for r in rs)
        s["coverage_90_pooled"] = float(sum(r["coverage_90"] * r["n_predictions"] for r in rs) / n)
        # the regional predictions of one patient share its efficacy draw, so the patients,
        # not the predictions, are the independent units of the band
        s["coverage_90_band_99"] = _band(sum(r["n_patients"] for r in rs))
        s["e_pop_inside"] = f"{sum(r['e_pop_inside'] for r in rs)} of {len(rs)}"
        out[name] = s
    return out


def markdown(result: dict) -> str:
    d = result["design"]
    lines = [
        "# Virtual drug trial (benchmarks/virtual_trial.py)",
        "",
        f"Design: true population efficacy {d['e_pop']}, sd {d['e_sd']}, "
        f"{d['n_timepoints']} volumes per scan; seeds {result['seeds']}.",
        "",
        "| seed | map | 90% coverage | AUC | RMSE | e_pop 90% interval | "
        "training efficacy coverage | held-out lpd |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["per_seed"]:
        for name in ("true", "shuffled"):
            if name not in r:
                continue
            x = r[name]
            lines.append(
                f"| {r['seed']} | {name} | {x['coverage_90']:.3f} | {x['auc']:.3f} | "
                f"{x['rmse']:.4f} | ({x['e_pop_90'][0]:.3f}, {x['e_pop_90'][1]:.3f}) | "
                f"{x['efficacy_coverage_90']:.3f} | {x['heldout_lpd']:.1f} |"
            )
    lines += ["", "Across seeds:", ""]
    for name, s in result["summary"].items():
        lo, hi = s["coverage_90_band_99"]
        lines.append(
            f"- {name} map: pooled 90% coverage {s['coverage_90_pooled']:.3f} (99% binomial band "
            f"for that many independent patients {lo:.3f}-{hi:.3f}); AUC {s['auc']['mean']:.3f} "
            f"({s['auc']['min']:.3f}-{s['auc']['max']:.3f}); e_pop inside its 90% interval "
            f"{s['e_pop_inside']}; held-out lpd {s['heldout_lpd']['mean']:.1f}"
        )
    lines += ["", f"Measured {result['date']} on {result['machine']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = ap.parse_args(argv)
    rows = []
    for s in args.seeds:
        rows.append(one_seed(s))
        t = rows[-1]["true"]
        print(
            f"seed {s}: coverage {t['coverage_90']:.3f}, AUC {t['auc']:.3f}, e_pop 90% "
            f"({t['e_pop_90'][0]:.3f}, {t['e_pop_90'][1]:.3f}) in {rows[-1]['seconds']:.0f} s",
            flush=True,
        )
    design = TrialDesign()
    result = {
        "seeds": args.seeds,
        "design": {k: getattr(design, k) for k in ("e_pop", "e_sd", "n_timepoints")},
        "per_seed": rows,
        "summary": summarise(rows),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "versions": versions(),
    }
    stem = "virtual_trial" if args.seeds == [0, 1, 2, 3] else "virtual_trial-seeds"
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
