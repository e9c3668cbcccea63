"""The ``vbt`` command line: simulate an experiment config into a run folder, validate it, info.

Usage::

    vbt simulate CONFIG [--out DIR] [--seed N] [--duration MS] [--quick] [--force]
                        [--segments K] [--no-figures] [--quiet]
    vbt validate CONFIG
    vbt info
    vbt fit CONFIG [--out DIR] [--engine nuts|svi] [--seed N] [--quick] [--force]
                   [--no-figures] [--quiet]
    vbt predict CONFIG [--twin DIR] [--out DIR] [--draws N] [--quick] [--force]
                       [--no-figures] [--quiet]

``vbt simulate`` checks the whole configuration before compiling, compiles, runs, and writes
the run folder (see :mod:`vbt_jax._runfolder`). Long runs (>= 1e6 steps) are split into up to
10 segments, each continuing the previous one exactly (``simulate(resume=...)``), so that a
progress bar can advance; ``--segments`` sets the number. The folder is written atomically:
everything goes into a fresh ``<out>.partial-XXXX`` folder beside ``<out>``, renamed to
``<out>`` only when complete, so a failed or interrupted run never leaves a half-written
``<out>``. An existing ``<out>`` is replaced only with ``--force``.

``simulate``, ``fit`` and ``predict`` keep JAX's persistent compilation cache in a per-user
folder, so that a second run of the same model loads its compiled programs instead of
compiling them again (a quick fit of the demo config: 29-30 s instead of 48-52 s): the folder named
by ``JAX_COMPILATION_CACHE_DIR`` when that is set (JAX's own setting), else by
``VBT_CACHE_DIR`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/vbt_jax/xla`` or
``~/.cache/vbt_jax/xla``. ``vbt info`` prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._errors import ConfigError, ConnectomeError, DivergenceError, SimulationError

_ERRORS = (ConfigError, ConnectomeError, SimulationError, DivergenceError)

_CACHE_OFF = ("", "0", "off", "false", "no", "none")


def _cache_dir(env: Mapping[str, str]) -> Path | None:
    """The folder for JAX's persistent compilation cache under ``env``; ``None``: no cache."""
    if env.get("JAX_COMPILATION_CACHE_DIR"):  # JAX's own setting wins
        return Path(env["JAX_COMPILATION_CACHE_DIR"]).expanduser()
    own = env.get("VBT_CACHE_DIR")
    if own is not None:
        return None if own.strip().lower() in _CACHE_OFF else Path(own).expanduser()
    return Path(env.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "vbt_jax" / "xla"


def _use_compilation_cache(env: Mapping[str, str] = os.environ) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`_cache_dir` (before compiling).

    Every program is cached, however quick to compile (unless
    ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise): most of a fit's few hundred
    programs compile in ~0.1 s each, and caching only those above JAX's default of 1 s saved 13
    s of a quick fit's 52 instead of 21. A folder that cannot be made or written is reported
    in one line on stderr, and the run goes on without a cache.
    """
    import jax

    path = _cache_dir(env)
    if path is None:
        return None
    try:  # one clear message instead of a JAX warning for every program
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(f"no write permission for {path}")
    except OSError as e:
        print(
            f"vbt: compilation cache {path} is not usable ({e}); running without it "
            "(set VBT_CACHE_DIR to a writable folder, or VBT_CACHE_DIR=off)",
            file=sys.stderr,
        )
        return None
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(path))
    # from env even when JAX was imported before env had it (the test session sets it late)
    min_secs = float(env.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", 0.0))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_secs)
    return Path(jax.config.jax_compilation_cache_dir)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vbt", description="Whole-brain network simulations from TOML experiment configs."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("simulate", help="run a config and write a run folder")
    s.add_argument("config", type=Path, help="experiment config (.toml)")
    s.add_argument(
        "--out", type=Path, help="run folder to create (default runs/<config>-<timestamp>)"
    )
    s.add_argument("--seed", type=int, help="override [simulation] seed")
    s.add_argument("--duration", type=float, help="override [simulation] duration (ms)")
    s.add_argument(
        "--quick",
        action="store_true",
        help="tiny smoke-test settings: three samples of the slowest monitor, no transient",
    )
    s.add_argument("--force", action="store_true", help="replace an existing run folder")
    s.add_argument(
        "--segments",
        type=int,
        default=None,
        help="run as K exactly continued simulate calls, the progress bar advancing per "
        "segment (default: up to 10 for runs of 10 s or more, else 1)",
    )
    s.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    s.add_argument("--quiet", action="store_true", help="no progress output")

    v = sub.add_parser("validate", help="check a config (and load its data) without running")
    v.add_argument("config", type=Path)

    sub.add_parser("info", help="versions, devices and available models")
    f = sub.add_parser("fit", help="fit a twin to data (a config with a [fit] section)")
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
    r = sub.add_parser(
        "predict", help="predict treatment effects on a fitted twin (a config with [predict])"
    )
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
    return p


def _load(path: Path, seed: int | None = None, duration: float | None = None, quick=False):
    from ._config import load_config

    cfg = load_config(path)
    changes = {}
    if seed is not None:
        changes["seed"] = seed
    if duration is not None:
        changes["duration"] = duration
    if changes:
        cfg = cfg.with_simulation(**changes)
    if quick:
        cfg = cfg.quick()
    return cfg


def _default_out(config: Path) -> Path:
    return Path("runs") / f"{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _result_lines(summary: dict) -> list[str]:
    """One line per headline result of a run's summary (for the terminal)."""
    lines = []
    if summary.get("fc_empirical_r") is not None:
        lines.append(
            f"FC ({summary['fc_source']}) vs empirical: r = {summary['fc_empirical_r']:.3f}"
        )
    eeg = summary.get("eeg")
    if eeg and "alpha_peak_hz" in eeg:
        alpha = eeg["relative_band_power"].get("alpha")
        edges = [e for band in eeg["bands_hz"].values() for e in band]
        share = (
            ""
            if alpha is None
            else f", alpha band {100 * alpha:.0f}% of the {min(edges):g}-{max(edges):g} Hz power"
        )
        lines.append(f"EEG: alpha peak {eeg['alpha_peak_hz']:.2f} Hz{share}")
    return lines


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ._config import build_experiment
    from ._runfolder import atomic_folder, run_experiment, write_run_folder

    started = time.perf_counter()
    cfg = _load(args.config, args.seed, args.duration, args.quick)
    exp = build_experiment(cfg)
    out: Path = args.out if args.out is not None else _default_out(args.config)
    if out.exists() and not args.force:
        raise ConfigError(f"output folder {out} already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder")

    result = run_experiment(exp, segments=args.segments, progress=not args.quiet)

    with atomic_folder(out) as partial:
        overrides = {
            k: v for k, v in (("seed", args.seed), ("duration", args.duration)) if v is not None
        }
        summary = write_run_folder(
            partial,
            exp,
            result,
            figures=not args.no_figures,
            started=started,
            extra={"cli_overrides": overrides, "quick": bool(args.quick)},
        )
    if not args.quiet:
        for line in _result_lines(summary):
            print(line, file=sys.stderr)
        print(f"wrote {out}", file=sys.stderr)
    print(out)
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    # the inference package (NumPyro) is imported only here: vbt_jax itself never imports it
    import importlib
    import os

    # one XLA host device per CPU core so that NUTS chains run in parallel (must be set before
    # JAX starts its CPU backend; a flag already given by the user wins)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        n = max(1, min(os.cpu_count() or 1, 8))
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()

    fit = importlib.import_module("inference._cli")
    return fit.cmd_fit(args)


def _cmd_validate(args: argparse.Namespace) -> int:
    from ._config import build_experiment

    cfg = _load(args.config)
    exp = build_experiment(cfg)
    sim = cfg.simulation
    steps = round(sim.duration / sim.dt)
    print(f"{cfg.path}: OK")
    if cfg.description:
        print(f"  {cfg.description}")
    print(f"  model       {cfg.model.name} ({type(exp.model).__name__})")
    print(f"  connectome  {exp.connectome.summary()}")
    print(f"  coupling    {exp.coupling if exp.coupling is not None else 'model default'}")
    print(f"  noise       {'none' if cfg.noise is None else f'nsig={cfg.noise.nsig}'}")
    print(
        f"  simulation  dt={sim.dt} ms, duration={sim.duration} ms ({steps} steps), "
        f"seed={sim.seed}, {sim.solver}, {sim.dtype}, speed={sim.speed} mm/ms"
    )
    for name, period in cfg.monitors.periods().items():
        print(f"  monitor     {name}: every {period:g} ms, {int(sim.duration // period)} samples")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import jax

    from ._config import MODEL_REGISTRY, available_models
    from ._runfolder import versions

    for k, v in versions().items():
        print(f"{k:10s}  {v}")
    print(f"{'devices':10s}  {', '.join(str(d) for d in jax.devices())}")
    have = available_models()
    models = [f"{n}{'' if n in have else ' (missing)'}" for n in MODEL_REGISTRY]
    print(f"{'models':10s}  {', '.join(models)}")
    cache = _cache_dir(os.environ)
    print(f"{'jax cache':10s}  {cache if cache is not None else 'off (VBT_CACHE_DIR)'}")
    try:
        import tvb_data

        print(f"{'tvb-data':10s}  {getattr(tvb_data, '__version__', 'installed')}")
    except ImportError:
        print(f"{'tvb-data':10s}  not installed ('tvb:<n>' sources and the tvb62 gain need it)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    # the inference package (NumPyro) is imported only here: vbt_jax itself never imports it
    import importlib

    return importlib.import_module("inference._cli").cmd_predict(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vbt`` command.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 for an invalid config or a failed simulation (the
        message goes to stderr), 2 for a usage error.
    """
    args = _parser().parse_args(argv)
    command = {
        "simulate": _cmd_simulate,
        "validate": _cmd_validate,
        "info": _cmd_info,
        "fit": _cmd_fit,
        "predict": _cmd_predict,
    }
    try:
        if args.command in ("simulate", "fit", "predict"):
            _use_compilation_cache()
        return command[args.command](args)
    except _ERRORS as e:
        print(f"vbt {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
