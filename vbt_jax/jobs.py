"""What a command-line job needs, shared by ``vbt simulate`` and the commands other packages add.

A *job* reads a TOML configuration, runs for a while and writes a *run folder*. This module
holds the pieces every job uses, so that each is written once:

- :class:`Table`: one TOML table being validated, with typed getters whose errors name the
  file, the section and the key (``configs/x.toml: [fit.nuts] warmup must be an integer >= 1,
  got -3``);
- :class:`RunFolder`: the output folder of a job. :meth:`RunFolder.prepare` checks the path
  before any long computation (an existing folder needs ``force``, an existing file or a
  missing parent folder is an error); :meth:`RunFolder.write` then fills a temporary folder
  beside it, with ``config.toml`` and ``versions.json``, and renames it into place only when
  the job has written everything, so a failed or interrupted job never leaves a half-written
  folder;
- :func:`default_out`, :func:`versions`, :func:`figure`;
- :class:`Command`: a subcommand of ``vbt``. ``vbt_jax`` provides ``simulate``, ``validate``
  and ``info``; another installed package adds its own through the ``vbt.commands``
  entry-point group (``inference`` adds ``fit`` and ``predict``), so the dependency runs one
  way: ``vbt_jax`` never imports the packages built on it.

Every error raised here is a :class:`~vbt_jax.ConfigError` (a configuration value) or an
:class:`~vbt_jax.ArgumentError` (an output path).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._errors import ArgumentError, ConfigError

__all__ = [
    "Command",
    "REQUIRED",
    "RunFolder",
    "Table",
    "atomic_folder",
    "default_out",
    "figure",
    "hemisphere",
    "hemisphere_boundaries",
    "read_toml",
    "region_ticks",
    "versions",
]

#: Marks a key as required in the :class:`Table` getters (the default of ``default``).
REQUIRED: Any = object()

Value = float | tuple[float, ...]


def _suggest(key: str, allowed: tuple[str, ...]) -> str:
    low = key.lower()
    close = [a for a in allowed if len(low) >= 2 and a.lower().startswith(low)]
    close = close or difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class Table:
    """One TOML table being read: typed getters whose errors name the file, section and key.

    Args:
        path: the configuration file (for messages).
        section: the table's name as written in the file, e.g. ``"fit.nuts"``.
        table: the parsed table (a dict).
        allowed: the keys it may have; any other key is an error that names the allowed ones
            and suggests the closest.

    Raises:
        ConfigError: ``table`` is not a table, or has a key not in ``allowed``.
    """

    def __init__(self, path: Path, section: str, table: Any, allowed: tuple[str, ...]):
        self.path, self.section = Path(path), section
        if not isinstance(table, dict):
            raise self.error(f"must be a table, got {table!r}")
        for key in table:
            if key not in allowed:
                raise self.error(
                    f"unknown key {key!r}{_suggest(key, allowed)}; expected one of: "
                    f"{', '.join(allowed)}"
                )
        self.table = table

    def error(self, msg: str) -> ConfigError:
        """A :class:`~vbt_jax.ConfigError` whose message starts with the file and section."""
        return ConfigError(f"{self.path}: [{self.section}] {msg}")

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str, default: Any = REQUIRED, what: str = "") -> Any:
        """The value as parsed (no check); ``default`` when absent, an error if required."""
        if key in self.table:
            return self.table[key]
        if default is REQUIRED:
            raise self.error(f"missing required key {key!r}{f' ({what})' if what else ''}")
        return default

    def number(
        self,
        key: str,
        default: Any = REQUIRED,
        *,
        unit: str = "",
        lower: str = "positive",
        what: str = "",
    ) -> float:
        """A finite number; ``lower`` is ``"positive"``, ``"non-negative"`` or ``"any"``."""
        v = self.raw(key, default, what or unit)
        adjective = "" if lower == "any" else f"{lower} "
        ok = _is_number(v) and math.isfinite(v)
        ok = ok and (lower != "positive" or v > 0) and (lower != "non-negative" or v >= 0)
        if not ok:
            unit_txt = f" ({unit})" if unit else ""
            raise self.error(f"{key} must be a {adjective}number{unit_txt}, got {v!r}")
        return float(v)

    def integer(self, key: str, default: Any = REQUIRED, *, lower: int | None = 1) -> Any:
        """An integer ``>= lower`` (``lower=None``: any integer); ``default`` (which may be
        ``None``) when absent."""
        v = self.raw(key, default)
        if v is None and default is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or (lower is not None and v < lower):
            bound = "" if lower is None else f" >= {lower}"
            raise self.error(f"{key} must be an integer{bound}, got {v!r}")
        return v

    def boolean(self, key: str, default: Any = REQUIRED) -> bool:
        v = self.raw(key, default)
        if not isinstance(v, bool):
            raise self.error(f"{key} must be true or false, got {v!r}")
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: Any = REQUIRED) -> str:
        v = self.raw(key, default)
        if v not in choices:
            raise self.error(
                f"{key} must be one of {', '.join(repr(c) for c in choices)}, got {v!r}"
            )
        return v

    def string(self, key: str, default: Any = REQUIRED, what: str = "") -> str:
        v = self.raw(key, default, what)
        if not isinstance(v, str) or not v:
            raise self.error(
                f"{key} must be a non-empty string{f' ({what})' if what else ''}, got {v!r}"
            )
        return v

    def value(self, key: str, *, lower: str = "any", what: str = "") -> Value:
        """A number, or a non-empty list of numbers (returned as a tuple)."""
        v = self.table[key]
        adjective = "" if lower == "any" else f"{lower} "

        def ok(x: Any) -> bool:
            return (
                _is_number(x)
                and math.isfinite(x)
                and (lower != "non-negative" or x >= 0)
                and (lower != "positive" or x > 0)
            )

        if ok(v):
            return float(v)
        if isinstance(v, list) and v and all(ok(x) for x in v):
            return tuple(float(x) for x in v)
        raise self.error(
            f"{key} must be a {adjective}number or a list of {adjective}numbers"
            f"{f' ({what})' if what else ''}, got {v!r}"
        )

    def file(self, key: str, base: Path, *, names: tuple[str, ...] = ()) -> str | Path | None:
        """A file named by ``key``, relative to ``base`` unless absolute, resolved; one of
        ``names`` (a shipped data set such as ``"dk84"``) is returned as the string. ``None``
        when the key is absent.

        Raises:
            ConfigError: the value is neither one of ``names`` nor an existing file (the
                message gives the path it resolved to).
        """
        if not self.has(key):
            return None
        v = self.string(key)
        if v in names:
            return v
        p = Path(v).expanduser()
        p = (p if p.is_absolute() else Path(base) / p).resolve()
        if not p.exists():
            also = f"one of {', '.join(map(repr, names))} nor " if names else ""
            raise self.error(f"{key} {v!r} is neither {also}an existing file (resolved to {p})")
        return p


def read_toml(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The text of a TOML file and the document it parses to.

    Raises:
        ConfigError: the file is missing or unreadable, or not valid TOML (naming the file).
    """
    import tomllib

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config file not found") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{path}: is a folder, not a config file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config file ({e})") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    return text, data


def default_out(config: Path) -> Path:
    """The default run folder of a job on ``config``: ``runs/<config stem>-<timestamp>``."""
    return Path("runs") / f"{Path(config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def versions() -> dict[str, str]:
    """Versions of python, jax, jaxlib, numpy and vbt_jax, the platform and the default
    device (what ``versions.json`` of a run folder holds)."""
    import jax
    import jaxlib
    import numpy as np

    from . import __version__

    return {
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "vbt_jax": __version__,
        "platform": platform.platform(),
        "device": str(jax.devices()[0]),
    }


def figure(width: float, height: float):
    """A matplotlib ``Figure`` on an Agg canvas (no pyplot state, runs headless), inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


_HEMISPHERE_PREFIXES = (
    ("L.", "L"), ("R.", "R"), ("l.", "L"), ("r.", "R"),
    ("ctx-lh-", "L"), ("ctx-rh-", "R"), ("Left-", "L"), ("Right-", "R"),
    ("lh_", "L"), ("rh_", "R"), ("lh-", "L"), ("rh-", "R"), ("lh.", "L"), ("rh.", "R"),
    ("L_", "L"), ("R_", "R"),
)  # fmt: skip


def hemisphere(label: str) -> str | None:
    """``"L"`` or ``"R"`` when a region label names its hemisphere by a usual prefix (``L.``,
    ``lh_``, ``ctx-rh-``, ``Left-``, ...), else None."""
    for prefix, side in _HEMISPHERE_PREFIXES:
        if label.startswith(prefix) and len(label) > len(prefix):
            return side
    return None


def hemisphere_boundaries(labels) -> list[int]:
    """The indices at which the hemisphere changes along ``labels`` (the first region of each
    new block); empty unless every label names its hemisphere and the hemispheres come in at
    most four contiguous blocks (e.g. left cortex, left subcortex | right subcortex, right
    cortex has one boundary)."""
    sides = [hemisphere(str(v)) for v in labels]
    if not sides or None in sides:
        return []
    cuts = [i for i in range(1, len(sides)) if sides[i] != sides[i - 1]]
    return cuts if len(cuts) <= 3 else []


def region_ticks(
    ax, labels, *, axes: str = "xy", max_labels: int = 50, hemispheres: str | None = None
) -> None:
    """Label a region-by-region matrix plot with region names instead of indices.

    Font size shrinks with the number of regions; beyond ``max_labels`` every k-th name is
    shown. ``axes`` picks the axes that get names (``"x"``, ``"y"`` or ``"xy"``). Where the
    labels name their hemispheres (:func:`hemisphere_boundaries`), a thin line separates the
    hemispheres on the axes in ``hemispheres`` (default: ``axes``; ``""`` for none).
    """
    labels = [str(v) for v in labels]
    n = len(labels)
    step = max(1, -(-n // max_labels))
    pos = list(range(0, n, step))
    size = float(min(7.0, max(3.0, 250.0 / max(len(pos), 1))))
    names = [labels[i] for i in pos]
    if "x" in axes:
        ax.set_xticks(pos, names, rotation=90, fontsize=size)
        ax.set_xlabel("")
    if "y" in axes:
        ax.set_yticks(pos, names, fontsize=size)
        ax.set_ylabel("")
    ax.tick_params(length=1.5, pad=1)
    lines = axes if hemispheres is None else hemispheres
    for i in hemisphere_boundaries(labels):
        if "x" in lines:
            ax.axvline(i - 0.5, color="0.25", lw=0.6)
        if "y" in lines:
            ax.axhline(i - 0.5, color="0.25", lw=0.6)


@contextlib.contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Write a folder atomically: yield a fresh ``<out>.partial-XXXX`` folder beside ``out``;
    when the block ends without error it becomes ``out`` (an existing ``out`` is swapped out,
    then deleted), on any error it is removed, so ``out`` is never half-written.

    The parent folder of ``out`` must exist.
    """
    out = Path(out)
    partial = Path(tempfile.mkdtemp(prefix=f"{out.name}.partial-", dir=out.parent))
    try:
        partial.chmod(0o755)  # mkdtemp makes it private; a run folder is an ordinary folder
        yield partial
        if out.exists():  # replacing: swap, then delete the old folder
            old = Path(tempfile.mkdtemp(prefix=f"{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            partial.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """The output folder of a job, checked before the job starts (see :meth:`prepare`).

    Attributes:
        path: the folder, absolute.
        force: replace an existing folder.
    """

    path: Path
    force: bool = False

    @classmethod
    def prepare(cls, out: str | Path, *, force: bool = False) -> RunFolder:
        """Check that ``out`` can be written, before any long computation.

        Args:
            out: the folder to create.
            force: replace ``out`` if it is an existing folder.

        Raises:
            ArgumentError: ``out`` is an existing file; an existing folder without ``force``;
                its parent folder does not exist (it is not created, so that a mistyped path
                does not make folders elsewhere); or the parent is not writable.
        """
        path = Path(out).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ArgumentError(f"output path {path} exists and is a file, not a run folder")
        if path.exists() and not force:
            raise ArgumentError(f"output folder {path} already exists; pass --force to replace it")
        parent = path.parent
        if not parent.is_dir():
            raise ArgumentError(
                f"cannot write {path}: its parent folder {parent} does not exist (create it "
                "first, or choose another --out)"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ArgumentError(f"cannot write {path}: no write permission in {parent}")
        return cls(path, force)

    @contextlib.contextmanager
    def write(self, *, config_text: str | None = None) -> Iterator[Path]:
        """Fill the run folder atomically (:func:`atomic_folder`): yields the temporary
        folder, with ``config.toml`` (``config_text``, when given) and ``versions.json``
        already written; it becomes :attr:`path` when the block ends without error.

        Raises:
            ArgumentError: ``path`` appeared since :meth:`prepare` and ``force`` is not set.
        """
        if self.path.exists() and not self.force:
            raise ArgumentError(
                f"output folder {self.path} already exists; pass --force to replace it"
            )
        with atomic_folder(self.path) as partial:
            if config_text is not None:
                (partial / "config.toml").write_text(config_text, encoding="utf-8")
            (partial / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
            yield partial


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand of ``vbt``.

    A package adds one by naming an instance in its ``vbt.commands`` entry points, e.g. in
    ``pyproject.toml``::

        [project.entry-points."vbt.commands"]
        fit = "inference.fit._cli:COMMAND"

    The entry point's name is the command's name and the top-level section of a
    configuration file it owns (``[fit]``): ``vbt simulate`` accepts a file with such a
    section, and ``vbt validate`` hands the file to :attr:`validate`.

    Attributes:
        name: the subcommand.
        help: one line for ``vbt --help``.
        add_arguments: adds the subcommand's arguments to its ``argparse`` parser.
        run: runs it; returns the exit status.
        validate: checks a configuration file as deeply as :attr:`run` would before any
            compilation (data files, shapes, labels) and returns lines describing it; raises
            a :class:`~vbt_jax.VbtError` subclass naming what is wrong.
        standalone: the section's file is not an experiment configuration (``vbt validate``
            then leaves the experiment sections to :attr:`validate`).
        prepare: called before JAX starts its backends (e.g. to set ``XLA_FLAGS``).
        compilation_cache: use JAX's persistent compilation cache (see ``vbt info``).
    """

    name: str
    help: str
    add_arguments: Callable[[Any], None]
    run: Callable[[Any], int]
    validate: Callable[[Path], list[str]] | None = None
    standalone: bool = False
    prepare: Callable[[], None] | None = None
    compilation_cache: bool = True
