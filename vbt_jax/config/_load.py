"""The entry points of the experiment configuration: a TOML file or document in, a validated
:class:`ExperimentConfig` out (each section read by :mod:`._sections`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from ..jobs import Table, read_toml
from ._schema import _CONNECTOME, _MODEL, _MONITORS, _SIMULATION, _TOP, ExperimentConfig
from ._sections import (
    _check_timing,
    _parse_connectome,
    _parse_coupling,
    _parse_model,
    _parse_monitors,
    _parse_noise,
    _parse_simulation,
)


def parse_config(
    data: Mapping[str, Any],
    path: str | Path,
    text: str = "",
    *,
    extra_sections: Collection[str] = (),
) -> ExperimentConfig:
    """Validate an already-parsed TOML document (a dict) into an :class:`ExperimentConfig`.

    Args:
        data: the document, as returned by ``tomllib.loads``.
        path: the file it came from; relative paths inside resolve against its folder, and
            every error message starts with it.
        text: the document's text, kept for copying into run folders.
        extra_sections: top-level sections the caller reads itself (e.g. ``("fit",)``); they
            are accepted and not looked at. Any other unknown top-level key is an error.

    Raises:
        ConfigError: naming the file, the section and the key at fault.
    """
    path = Path(path).resolve()
    base = path.parent
    top = Table(path, "top level", dict(data), _TOP + tuple(extra_sections))
    description = top.raw("description", "")
    if not isinstance(description, str):
        raise top.error(f"description must be a string, got {description!r}")
    for section in ("simulation", "model", "monitors"):
        if not top.has(section):
            raise ConfigError(f"{path}: missing required section [{section}]")
    sim = _parse_simulation(Table(path, "simulation", data["simulation"], _SIMULATION))
    conn = _parse_connectome(
        Table(path, "connectome", data.get("connectome", {}), _CONNECTOME), base
    )
    model, cls = _parse_model(Table(path, "model", data["model"], _MODEL), path)
    states = tuple(cls.state_names)
    coupling = _parse_coupling(path, data["coupling"], cls) if "coupling" in data else None
    noise = None
    if "noise" in data:
        noise = _parse_noise(Table(path, "noise", data["noise"], ("nsig",)), path, states)
    monitors = _parse_monitors(
        Table(path, "monitors", data["monitors"], _MONITORS), path, states, base
    )
    _check_timing(path, sim, monitors)
    return ExperimentConfig(
        path=path,
        text=text,
        description=description,
        simulation=sim,
        connectome=conn,
        model=model,
        coupling=coupling,
        noise=noise,
        monitors=monitors,
    )


def find_config(name: str) -> Path:
    """The shipped config ``configs/<name>``, looked up from the working directory upwards,
    then beside the package (an editable install): what a notebook run from anywhere in the
    repository needs."""
    here = Path.cwd().resolve()
    for base in (here, *here.parents, Path(__file__).resolve().parents[2]):
        if (base / "configs" / name).is_file():
            return base / "configs" / name
    raise FileNotFoundError(f"configs/{name} not found above {here} nor beside the package")


def load_config(path: str | Path, *, extra_sections: Collection[str] = ()) -> ExperimentConfig:
    """Read and validate a TOML experiment file (see the module docstring for the schema).

    Nothing is compiled and the connectome is not loaded yet (see :func:`build_experiment`).

    Args:
        path: the ``.toml`` file.
        extra_sections: top-level sections the caller reads itself (see :func:`parse_config`).

    Returns:
        A frozen :class:`ExperimentConfig`.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or an invalid section/key (the message
            starts with the path and names the key).
    """
    text, data = read_toml(path)
    return parse_config(data, path, text, extra_sections=extra_sections)
