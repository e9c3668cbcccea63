"""``vbt predict``: the subcommand this package registers with ``vbt`` (entry point
``vbt.commands``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from vbt_jax import ConfigError
from vbt_jax.jobs import Command, RunFolder, default_out


def _arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("config", type=Path, help="predict config (.toml with [predict])")
    r.add_argument("--twin", type=Path, help="override [predict] twin: a vbt fit run folder")
    r.add_argument(
        "--out", type=Path, help="run folder to create (default runs/<config>-<timestamp>)"
    )
    r.add_argument("--draws", type=int, help="override [predict] draws (posterior draws used)")
    r.add_argument("--quick", action="store_true", help="tiny smoke-test settings (16 draws)")
    r.add_argument("--force", action="store_true", help="replace an existing run folder")
    r.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    r.add_argument("--quiet", action="store_true", help="no progress output")


def _config(args: argparse.Namespace):
    from ._config import load_predict_config

    cfg = load_predict_config(args.config)
    if args.twin is not None:
        cfg = dataclasses.replace(cfg, twin=args.twin.resolve())
    if args.draws is not None:
        if args.draws < 1:
            raise ConfigError(f"--draws must be >= 1, got {args.draws}")
        cfg = dataclasses.replace(cfg, draws=args.draws)
    if args.quick:
        cfg = cfg.quick()
    return cfg


def _run(args: argparse.Namespace) -> int:
    """Validate, read the twin, predict, write the run folder; print its path."""
    from ._job import predict_run_folder

    cfg = _config(args)
    folder = RunFolder.prepare(args.out or default_out(args.config), force=args.force)
    out = predict_run_folder(cfg, folder, progress=not args.quiet, figures=not args.no_figures)
    if not args.quiet:
        print(f"wrote {out} (report: {out / 'report.md'})", file=sys.stderr)
    print(out)
    return 0


def _validate(path: Path) -> list[str]:
    """Everything ``vbt predict`` checks before compiling: the config, the twin's run folder,
    the interventions placed on its regions, the target and observed FC files."""
    from ._config import load_predict_config
    from ._twin import check_predict_inputs

    return [f"  {line}" for line in check_predict_inputs(load_predict_config(path))]


COMMAND = Command(
    name="predict",
    help="predict treatment effects on a fitted twin (a config with [predict])",
    add_arguments=_arguments,
    run=_run,
    validate=_validate,
    standalone=True,
)
