"""The tables and ``report.md`` of a predict run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _summary_rows(pred, summ, p_imp) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(pred.names):
        for k, dose in enumerate(pred.doses):
            row = {
                "intervention": name,
                "kind": pred.kinds[i],
                "dose": float(dose),
                "mean_fc_change": float(summ["mean_fc_change_mean"][i, k]),
                "mean_fc_change_lo": float(summ["mean_fc_change_lo"][i, k]),
                "mean_fc_change_hi": float(summ["mean_fc_change_hi"][i, k]),
                "prob_unstable": float(summ["prob_unstable"][i, k]),
            }
            if p_imp is not None:
                row["prob_improves"] = float(p_imp[i, k])
            rows.append(row)
    return rows


def ranking_rows(pred, summ, p_imp, rank, k_rep: int) -> list[dict[str, Any]]:
    """The ranking at the report dose, best first: by P(best), then by P(improves) (so an
    intervention that improves on the baseline in most draws is not hidden among the
    P(best) = 0 rows), then by name."""
    keys = [(-rank[i], -p_imp[i, k_rep], pred.names[i]) for i in range(len(pred.names))]
    order = sorted(range(len(pred.names)), key=keys.__getitem__)
    return [
        {
            "rank": j + 1,
            "intervention": pred.names[i],
            "kind": pred.kinds[i],
            "prob_best": float(rank[i]),
            "prob_improves": float(p_imp[i, k_rep]),
            "prob_unstable": float(summ["prob_unstable"][i, k_rep]),
            "mean_fc_change": float(summ["mean_fc_change_mean"][i, k_rep]),
        }
        for j, i in enumerate(order)
    ]


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _write_report(
    path, cfg, twin, pred, summ, p_imp, rank, k_rep, figs, sim=None, checks=()
) -> None:
    dose = float(pred.doses[k_rep])
    pct = round(100 * cfg.interval)
    lines = [
        "# Predicted treatment effects",
        "",
        cfg.description or "",
        "",
        f"Twin: `{twin.folder}` ({pred.gbc.shape[0]} of {twin.n_posterior} posterior draws of "
        f"a linearised Stuart-Landau network on {len(twin.labels)} regions). Every draw is "
        "changed by each intervention and its stationary FC computed exactly "
        "(`corr((-B)^-1)`); the spread over draws is the posterior uncertainty of the twin "
        "(the interventions' own constants are fixed as configured). Doses are in each drug's "
        "EC50 unit; lesions and stimulation do not depend on the dose.",
        "",
    ]
    if cfg.target_fc is not None:
        what = (
            "1 - Pearson r of the upper triangles"
            if pred.distance_kind == "corr"
            else "Frobenius norm of the Fisher-z difference"
        )
        lines += [
            f"Target: the FC `{cfg.target_fc}`; distance `{pred.distance_kind}` ({what}). "
            "P(improves) is the posterior probability that the intervention brings the twin's "
            "FC closer to the target than its baseline is.",
            "",
        ]
    lines += ["## Interventions", ""]
    for i, name in enumerate(pred.names):
        lines.append(f"- **{name}** ({pred.kinds[i]})")
    lines += ["", f"## Ranking at dose {dose:g}", ""]
    if rank is not None:
        lines += [
            "| rank | intervention | P(best) | P(improves) | mean FC change "
            f"({pct}% interval) | P(unstable) |",
            "|---|---|---|---|---|---|",
        ]
        for row in ranking_rows(pred, summ, p_imp, rank, k_rep):
            i = pred.names.index(row["intervention"])
            lines.append(
                f"| {row['rank']} | {row['intervention']} | {row['prob_best']:.2f} | "
                f"{row['prob_improves']:.2f} | "
                f"{summ['mean_fc_change_mean'][i, k_rep]:+.4f} "
                f"({summ['mean_fc_change_lo'][i, k_rep]:+.4f}, "
                f"{summ['mean_fc_change_hi'][i, k_rep]:+.4f}) | "
                f"{row['prob_unstable']:.2f} |"
            )
        lines += [
            "",
            "Ordered by P(best) (the share of posterior draws in which the intervention is "
            "closest to the target), then by P(improves).",
        ]
    else:
        lines.append("No target FC: no ranking (set [predict] target_fc).")
    lines += ["", "## Dose-response of the mean FC change", ""]
    head = "| intervention | " + " | ".join(f"dose {d:g}" for d in pred.doses) + " |"
    lines += [head, "|---|" + "---|" * len(pred.doses)]
    for i, name in enumerate(pred.names):
        cells = [
            f"{summ['mean_fc_change_mean'][i, k]:+.4f}"
            + (f" (P {p_imp[i, k]:.2f})" if p_imp is not None else "")
            for k in range(len(pred.doses))
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cells: posterior mean change of the mean FC"
        + (", P(improves)" if p_imp is not None else "")
        + ".",
        "",
        f"## Regions most changed at dose {dose:g} (GBC change, posterior mean)",
        "",
    ]
    for i, name in enumerate(pred.names):
        g = summ["gbc_change_mean"][i, k_rep]
        if not np.isfinite(g).any():
            lines.append(f"- {name}: unstable in every draw")
            continue
        top = np.argsort(-np.abs(np.nan_to_num(g)))[:5]
        parts = [
            f"{pred.labels[r]} {g[r]:+.4f} (P up {summ['prob_gbc_increase'][i, k_rep, r]:.2f})"
            for r in top
        ]
        lines.append(f"- {name}: " + ", ".join(parts))
    if sim is not None:
        lines += [
            "",
            f"## Simulated FCD at dose {sim.dose:g}",
            "",
            f"The nonlinear, noisy twin at {sim.draws.size} posterior draw(s), "
            f"{sim.duration_s:.0f} s each, baseline and every intervention with the same noise "
            f"(FCD windows of {sim.window} samples, step {sim.step}). KS: distance of the "
            "intervention's FCD distribution to the baseline's (same draw, same noise).",
            "",
            "| variant | FCD mean | FCD sd | KS to baseline | mean FC (simulated) |",
            "|---|---|---|---|---|",
        ]
        for v, name in enumerate(sim.names):
            lines.append(
                f"| {name} | {sim.fcd_mean[:, v].mean():.3f} | {sim.fcd_sd[:, v].mean():.3f} | "
                f"{sim.fcd_ks[:, v].mean():.3f} | {sim.mean_fc[:, v].mean():.4f} |"
            )
    if checks:
        lines += [
            "",
            "## Checks against observed on-drug data",
            "",
            "Posterior predictive check of each observed session (replicated pre and post "
            "scans with Fisher-z sampling noise), and the patient's drug efficacy inferred from "
            "the observed change of every edge (see `inference._predict_check`).",
            "",
            "| intervention | dose | observed mean FC change | predicted (interval) | p | "
            "regions covered | efficacy: prior -> posterior (interval) |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec, c in checks:
            d = c.as_dict()
            lo, hi = d["predicted_mean_fc_change_interval"]
            elo, ehi = c.efficacy_interval
            lines.append(
                f"| {spec['intervention']} | {spec['dose']:g} | "
                f"{c.observed_mean_fc_change:+.4f} | "
                f"{d['predicted_mean_fc_change_mean']:+.4f} ({lo:+.4f}, {hi:+.4f}) | "
                f"{c.p_mean_fc:.3f} | {100 * c.gbc_coverage:.0f}% | "
                f"{c.efficacy_prior[0]:+.2f} -> {c.efficacy_mean:+.3f} ({elo:+.3f}, {ehi:+.3f}) |"
            )
    unstable = summ["prob_unstable"]
    if np.any(unstable > 0):
        lines += ["", "## Warnings", ""]
        for i, k in zip(*np.nonzero(unstable > 0), strict=True):
            lines.append(
                f"- {pred.names[i]} at dose {pred.doses[k]:g} pushes "
                f"{100 * unstable[i, k]:.0f}% of the posterior draws past the bifurcation "
                "(no stationary state; left out of the means and intervals)."
            )
    if figs:
        lines += ["", "## Figures", ""]
        for f in figs:
            lines.append(f"![{f.stem}](figures/{f.name})")
    path.write_text("\n".join(lines) + "\n")
