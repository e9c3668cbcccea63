"""The ``vbt`` command line: a registry of subcommands.

``vbt_jax`` provides::

    vbt simulate CONFIG [--out DIR] [--seed N] [--duration MS] [--quick] [--force]
                        [--segments K] [--no-figures] [--quiet]
    vbt validate CONFIG
    vbt info

and every installed package may add its own through the ``vbt.commands`` entry-point group
(see :class:`vbt_jax.jobs.Command`); the ``inference`` package adds ``vbt fit`` and
``vbt predict``. A registered command is imported only when it is run (or when ``vbt --help``
lists the commands), so ``vbt simulate`` never imports the packages built on ``vbt_jax``.
The entry points' names are also the configuration sections those commands own: ``vbt
simulate`` runs the experiment sections of a file that also holds, say, a ``[fit]`` section,
and ``vbt validate`` hands that section to its command's own checks.

``vbt simulate`` checks the whole configuration and the output folder before compiling,
compiles, runs, and writes the run folder (see :mod:`vbt_jax._runfolder`). Long runs (>= 1e6
steps) are split into up to 10 segments, each continuing the previous one exactly
(``simulate(resume=...)``), so that a progress bar can advance; ``--segments`` sets the number.
The folder is written atomically (:class:`vbt_jax.jobs.RunFolder`); an existing one is replaced
only with ``--force``.

``simulate`` and the registered commands keep JAX's persistent compilation cache in a per-user
folder, so that a second run of the same model loads its compiled programs instead of compiling
them again: the folder named by ``JAX_COMPILATION_CACHE_DIR`` when that is set (JAX's own
setting), else by ``VBT_CACHE_DIR`` (``off`` turns the cache off), else
``$XDG_CACHE_HOME/vbt_jax/xla`` or ``~/.cache/vbt_jax/xla``. ``vbt info`` prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from ._errors import DivergenceError, VbtError
from .jobs import Command, RunFolder, default_out, read_toml

#: The entry-point group through which other packages add ``vbt`` subcommands.
ENTRY_POINT_GROUP = "vbt.commands"

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
    programs compile in ~0.1 s each. A folder that cannot be made or written is reported in
    one line on stderr, and the run goes on without a cache.
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


# --------------------------------------------------------------------------- the registry


def registered() -> dict[str, metadata.EntryPoint]:
    """The commands other installed packages register (name -> entry point, not loaded)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load(ep: metadata.EntryPoint) -> Command:
    cmd = ep.load()
    if not isinstance(cmd, Command) or cmd.name != ep.name:
        raise TypeError(
            f"entry point {ep.name} = {ep.value!r} in group {ENTRY_POINT_GROUP!r} must name a "
            f"vbt_jax.jobs.Command called {ep.name!r}, got {cmd!r}"
        )
    return cmd


def plugin_sections() -> tuple[str, ...]:
    """Configuration sections owned by registered commands (read from metadata only)."""
    return tuple(registered())


# --------------------------------------------------------------------------- simulate


def _simulate_arguments(s: argparse.ArgumentParser) -> None:
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


def _load_experiment(
    path: Path, seed: int | None = None, duration: float | None = None, quick=False
):
    from .config import load_config

    cfg = load_config(path, extra_sections=plugin_sections())
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


def _run_simulate(args: argparse.Namespace) -> int:
    from ._runfolder import run_experiment, write_run_folder
    from .config import build_experiment

    started = time.perf_counter()
    cfg = _load_experiment(args.config, args.seed, args.duration, args.quick)
    folder = RunFolder.prepare(
        args.out if args.out is not None else default_out(args.config), force=args.force
    )
    exp = build_experiment(cfg)
    result = run_experiment(exp, segments=args.segments, progress=not args.quiet)
    with folder.write(config_text=cfg.text) as partial:
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
        print(f"wrote {folder.path}", file=sys.stderr)
    print(folder.path)
    return 0


# --------------------------------------------------------------------------- validate


def _validate_arguments(v: argparse.ArgumentParser) -> None:
    v.add_argument("config", type=Path, help="config (.toml) to check, with its data files")


def _experiment_lines(path: Path) -> list[str]:
    from .config import build_experiment

    cfg = _load_experiment(path)
    exp = build_experiment(cfg)
    sim = cfg.simulation
    steps = round(sim.duration / sim.dt)
    lines = []
    if cfg.description:
        lines.append(f"  {cfg.description}")
    lines += [
        f"  model       {cfg.model.name} ({type(exp.model).__name__})",
        f"  connectome  {exp.connectome.summary()}",
        f"  coupling    {exp.coupling if exp.coupling is not None else 'model default'}",
        f"  noise       {'none' if cfg.noise is None else f'nsig={cfg.noise.nsig}'}",
        f"  simulation  dt={sim.dt} ms, duration={sim.duration} ms ({steps} steps), "
        f"seed={sim.seed}, {sim.solver}, {sim.dtype}, speed={sim.speed} mm/ms",
    ]
    for name, period in cfg.monitors.periods().items():
        lines.append(
            f"  monitor     {name}: every {period:g} ms, {int(sim.duration // period)} samples"
        )
    return lines


def _run_validate(args: argparse.Namespace) -> int:
    path = Path(args.config)
    _, data = read_toml(path)
    plugins = registered()
    owned = [name for name in data if name in plugins]
    commands = [_load(plugins[name]) for name in owned]
    lines: list[str] = []
    if not any(c.standalone for c in commands):
        lines += _experiment_lines(path)
    for c in commands:
        if c.validate is not None:
            lines += [f"  [{c.name}]"] + c.validate(path)
    print(f"{path.resolve()}: OK")
    for line in lines:
        print(line)
    return 0


# --------------------------------------------------------------------------- info


def _run_info(args: argparse.Namespace) -> int:
    import jax

    from .config import MODEL_REGISTRY, available_models
    from .jobs import versions

    for k, v in versions().items():
        print(f"{k:10s}  {v}")
    print(f"{'devices':10s}  {', '.join(str(d) for d in jax.devices())}")
    have = available_models()
    models = [f"{n}{'' if n in have else ' (missing)'}" for n in MODEL_REGISTRY]
    print(f"{'models':10s}  {', '.join(models)}")
    plugins = registered()
    shown = ", ".join(f"{n} ({ep.value.split(':')[0]})" for n, ep in plugins.items())
    print(f"{'commands':10s}  simulate, validate, info{', ' + shown if shown else ''}")
    cache = _cache_dir(os.environ)
    print(f"{'jax cache':10s}  {cache if cache is not None else 'off (VBT_CACHE_DIR)'}")
    try:
        import tvb_data

        print(f"{'tvb-data':10s}  {getattr(tvb_data, '__version__', 'installed')}")
    except ImportError:
        print(f"{'tvb-data':10s}  not installed ('tvb:<n>' sources and the tvb62 gain need it)")
    return 0


BUILTIN: dict[str, Command] = {
    "simulate": Command(
        "simulate", "run a config and write a run folder", _simulate_arguments, _run_simulate
    ),
    "validate": Command(
        "validate",
        "check a config and its data files without running it",
        _validate_arguments,
        _run_validate,
        compilation_cache=False,
    ),
    "info": Command(
        "info",
        "versions, devices, models and commands",
        lambda p: None,
        _run_info,
        compilation_cache=False,
    ),
}


def _parser(commands: Mapping[str, Command]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vbt", description="Whole-brain network simulations from TOML experiment configs."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return p


def _command(argv: Sequence[str]) -> tuple[Command | None, dict[str, Command]]:
    """The command ``argv`` asks for, loading only that one when it is a registered one; every
    command when none is named (usage and ``--help``)."""
    name = next((a for a in argv if not a.startswith("-")), None)
    if name in BUILTIN:
        return BUILTIN[name], dict(BUILTIN)
    plugins = registered()
    if name in plugins:
        cmd = _load_or_report(name, plugins[name])
        return cmd, {**BUILTIN, name: cmd}
    listed = dict(BUILTIN)
    for n, ep in plugins.items():
        listed[n] = _load_or_report(n, ep)
    return None, listed


def _load_or_report(name: str, ep: metadata.EntryPoint) -> Command:
    try:
        return _load(ep)
    except Exception as e:  # a broken package must not break the other commands
        return _unavailable(name, ep, e)


def _unavailable(name: str, ep: metadata.EntryPoint, error: Exception) -> Command:
    why = f"{type(error).__name__}: {error}"

    def run(args: argparse.Namespace) -> int:
        print(
            f"vbt {name}: registered by {ep.value!r}, which failed to load ({why})", file=sys.stderr
        )
        return 1

    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("rest", nargs=argparse.REMAINDER)

    return Command(name, f"(unavailable: {why})", arguments, run, compilation_cache=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vbt`` command.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 for an invalid config, invalid data or a failed
        simulation (the message goes to stderr), 2 for a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd, commands = _command(argv)
    args = _parser(commands).parse_args(argv)
    cmd = commands[args.command] if cmd is None else cmd
    try:
        if cmd.prepare is not None:
            cmd.prepare()
        if cmd.compilation_cache:
            _use_compilation_cache()
        return cmd.run(args)
    except (VbtError, DivergenceError) as e:
        print(f"vbt {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
