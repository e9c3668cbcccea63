"""``vbt fit`` and ``vbt predict``: the command-line edge of the inference package (called by
``vbt_jax._cli``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from vbt_jax._cli import _default_out


def cmd_fit(args: argparse.Namespace) -> int:
    """Run ``vbt fit CONFIG``: validate, fit, check, write the run folder; print its path."""
    from ._config import load_fit_config
    from ._fit import fit_run_folder

    cfg = load_fit_config(args.config)
    changes = {}
    if args.engine is not None:
        changes["engine"] = args.engine
    if args.seed is not None:
        changes["seed"] = args.seed
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    if args.quick:
        cfg = cfg.quick()
    out = args.out or _default_out(args.config)
    out = fit_run_folder(
        cfg, out, force=args.force, progress=not args.quiet, figures=not args.no_figures
    )
    if not args.quiet:
        q = json.loads((out / "fit_quality.json").read_text())
        keys = ("fc_r_train", "fc_r_heldout", "sim_fc_r_heldout", "fcd_ks", "band_power_r")
        shown = ", ".join(f"{k} {q[k]:.3f}" for k in keys if k in q)
        print(f"fit quality: {shown}", file=sys.stderr)
        for w in q.get("warnings", []):
            print(f"warning: {w}", file=sys.stderr)
        print(f"wrote {out}", file=sys.stderr)
    print(out)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``vbt predict CONFIG``: validate, read the twin, predict, write the run folder."""
    from ._predict_run import load_predict_config, predict_run_folder

    cfg = load_predict_config(args.config)
    if args.twin is not None:
        cfg = dataclasses.replace(cfg, twin=args.twin)
    if args.draws is not None:
        if args.draws < 1:
            from vbt_jax import ConfigError

            raise ConfigError(f"--draws must be >= 1, got {args.draws}")
        cfg = dataclasses.replace(cfg, draws=args.draws)
    if args.quick:
        cfg = cfg.quick()
    out = args.out or _default_out(args.config)
    out = predict_run_folder(
        cfg, out, force=args.force, progress=not args.quiet, figures=not args.no_figures
    )
    if not args.quiet:
        print(f"wrote {out} (report: {out / 'report.md'})", file=sys.stderr)
    print(out)
    return 0
