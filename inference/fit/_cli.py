"""``vbt fit``, the subcommand this package registers with ``vbt`` (entry point group
``vbt.commands``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from vbt_jax.jobs import Command, RunFolder, default_out


def _arguments(f: argparse.ArgumentParser) -> None:
    f.add_argument("config", type=Path, help="fit config (.toml with [fit])")
    f.add_argument(
        "--out", type=Path, help="run folder to create (default runs/<config>-<timestamp>)"
    )
    f.add_argument("--engine", choices=("nuts", "svi"), help="override [fit] engine")
    f.add_argument("--seed", type=int, help="override [fit] seed")
    f.add_argument("--quick", action="store_true", help="tiny smoke-test settings")
    f.add_argument("--force", action="store_true", help="replace an existing run folder")
    f.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    f.add_argument("--quiet", action="store_true", help="no progress output")


def _prepare() -> None:
    """One XLA host device per CPU core (at most 8), so that NUTS chains run in parallel; a
    device count already in ``XLA_FLAGS`` wins. Must run before JAX starts its CPU backend."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        n = max(1, min(os.cpu_count() or 1, 8))
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def _run(args: argparse.Namespace) -> int:
    """Validate, fit, check, write the run folder; print its path."""
    from ._config import load_fit_config
    from ._job import fit_run_folder

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
    folder = RunFolder.prepare(args.out or default_out(args.config), force=args.force)
    out = fit_run_folder(cfg, folder, progress=not args.quiet, figures=not args.no_figures)
    if not args.quiet:
        q = json.loads((out / "fit_quality.json").read_text())
        keys = ("fc_r_train", "fc_r_heldout", "sim_fc_r_heldout", "fcd_ks", "band_power_r")
        shown = ", ".join(f"{k} {q[k]:.3f}" for k in keys if isinstance(q.get(k), float))
        print(f"fit quality: {shown}", file=sys.stderr)
        for w in q.get("warnings", []):
            print(f"warning: {w}", file=sys.stderr)
        print(f"wrote {out}", file=sys.stderr)
    print(out)
    return 0


def _validate(path: Path) -> list[str]:
    """Everything ``vbt fit`` checks before compiling: the config, the data files, the maps."""
    from ._config import load_fit_config
    from ._setup import setup_fit

    cfg = load_fit_config(path)
    setup = setup_fit(cfg, learn_centring=False)
    return [f"  {line}" for line in setup.describe()]


COMMAND = Command(
    name="fit",
    help="fit a twin to data (a config with a [fit] section)",
    add_arguments=_arguments,
    run=_run,
    validate=_validate,
    prepare=_prepare,
)
