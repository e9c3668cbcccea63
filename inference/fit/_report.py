"""``summary.md`` of a fit run folder."""

from __future__ import annotations

from pathlib import Path

from ._config import FitConfig


def _markdown_table(table) -> str:
    cols = ["mean", "sd", table.columns[2], table.columns[3], "r_hat", "ess_bulk", "shrinkage"]
    cols = [c for c in cols if c in table.columns]
    lines = ["| parameter | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for idx, row in table.iterrows():
        lines.append(f"| {idx} | " + " | ".join(f"{row[c]:.4g}" for c in cols) + " |")
    return "\n".join(lines)


def _write_summary_md(path: Path, cfg: FitConfig, table, quality: dict, msgs: list[str]) -> None:
    q = quality
    lines = [f"# Fit of {cfg.experiment.path.name}", ""]
    lines.append(
        f"Engine: {cfg.engine}, {q['engine_seconds']:.1f} s; {q['n_parameters']} "
        f"parameters for {q['n_regions']} regions; likelihood route: {q['route']}."
    )
    lines.append("")
    lines.append("## Convergence")
    lines.append("")
    div = q.get("divergences")
    lines.append(
        "- divergent transitions: "
        + ("not applicable (" + q["engine"] + ")" if div is None else f"{div}")
    )
    if q.get("r_hat_max") is None:
        lines.append("- worst R-hat: undefined (one chain or independent draws)")
    else:
        lines.append(f"- worst R-hat: {q['r_hat_max']:.3f} ({q['r_hat_max_parameter']})")
    if q.get("ess_bulk_min") is not None:
        lines.append(f"- smallest bulk ESS: {q['ess_bulk_min']:.0f}")
    if q.get("svi_loss_drift") is not None:
        still = " (still falling: more steps would help)" if q["svi_loss_drift"] > 3 else ""
        lines.append(
            f"- SVI loss over the last tenth of the steps: {q['svi_loss_final']:.4g}, "
            f"{q['svi_loss_drift']:.1f} standard errors below the tenth before{still}"
        )
    if q.get("svi_psis_khat") is not None:
        ok = "draws can be trusted" if q["svi_psis_khat"] < 0.7 else "draws are unreliable"
        lines.append(f"- PSIS k-hat of the guide: {q['svi_psis_khat']:.2f} ({ok})")
    if "sim_check" in q:
        state = q["sim_check"]
        if state == "failed":
            state += f": {q['sim_check_reason']}"
        lines.append(f"- simulated FC/FCD check: {state}")
    lines.append("")
    lines.append("## Fit quality")
    lines.append("")
    for k in (
        "fc_r_train",
        "fc_r_heldout",
        "fc_r_all",
        "heldout_coverage_90",
        "train_coverage_90",
        "sim_fc_r_train",
        "sim_fc_r_heldout",
        "sim_fc_r_all",
        "fcd_ks",
        "band_power_r",
        "sim_vs_forward_fc_r",
        "baseline_sc_r_heldout",
        "baseline_regional_r_heldout",
    ):
        if k in q:
            lines.append(f"- {k}: {q[k]:.3f}")
    lines.append("")
    if "baseline_regional_r_heldout" in q and "fc_r_heldout" in q:
        beats = q["fc_r_heldout"] > q["baseline_regional_r_heldout"]
        lines.append(
            f"On the held-out edges the twin's FC r is {q['fc_r_heldout']:.3f}; the structural "
            f"connectome itself (log weights) gives {q['baseline_sc_r_heldout']:.3f}, and one "
            f"number per region with no connectome (g_i + g_j, each region's mean training FC) "
            f"gives {q['baseline_regional_r_heldout']:.3f}: the twin "
            f"{'beats' if beats else 'does not beat'} that regional baseline."
        )
        lines.append("")
    lines.append(
        "`fc_r_*`: Pearson r between the posterior-mean analytic FC and the data over "
        "training edges, held-out edges (never seen by the likelihood) and all edges; "
        "`sim_*`: the same for FC of simulations at posterior draws; `fcd_ks`: KS "
        "distance between simulated FCD values and the reference histogram; "
        "`sim_vs_forward_fc_r`: r between the simulated FC and the likelihood's FC (linearised "
        "or simulated), a check that the likelihood holds in the fitted regime."
    )
    lines.append("")
    if msgs:
        lines.append("## Warnings")
        lines.append("")
        lines.extend(f"- {m}" for m in msgs)
        lines.append("")
    glob = table.loc[[r for r in table.index if "[" not in r]]
    lines.append("## Global and hyper-parameters")
    lines.append("")
    lines.append(_markdown_table(glob))
    lines.append("")
    lines.append("Regional parameters: see summary.csv.")
    path.write_text("\n".join(lines) + "\n")
