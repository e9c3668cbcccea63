"""Plain weight and length matrices (``.npy``, ``.csv``, ``.tsv``, ``.txt``), and
:func:`load_connectome`, which picks the connectome reader from the path."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._connectome import Connectome, _warn_unusual, validate
from .._errors import ConnectomeError
from ._bids import _RELMAT_SUFFIX, load_bids_relmat
from ._table import PathLike, _parse_matrix_text, _read_text, read_npy
from ._tvb import load_tvb_zip


def _load_plain_matrix(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ConnectomeError(f"{path}: file not found")
    if suffix == ".npy":
        return read_npy(path, ConnectomeError)
    if suffix in (".csv", ".tsv", ".txt"):
        return _parse_matrix_text(_read_text(path), str(path))
    raise ConnectomeError(f"{path}: unsupported matrix format {suffix!r} (.npy, .csv, .tsv, .txt)")


def load_matrix(
    weights_path: PathLike,
    lengths_path: PathLike | None = None,
    labels: Sequence[str] | PathLike | None = None,
    *,
    allow_isolated: bool = False,
) -> Connectome:
    """Load plain weight (and length) matrices from ``.npy``, ``.csv``, ``.tsv`` or ``.txt``.

    Text files hold only numbers (no header or index column); the delimiter is detected from the
    first line (tab, else comma, else whitespace).

    Args:
        weights_path: (N, N) weights, ``W[i, j]`` from source j to target i.
        lengths_path: (N, N) tract lengths in mm; None gives zero lengths, i.e. no delays.
        labels: N region names, or a text file with one name per line; None gives
            ``region_0``...
        allow_isolated: accept regions without connections.

    Returns:
        A float64 NumPy-backed Connectome named after the weights file's stem.

    Raises:
        ConnectomeError: unreadable or malformed files, or any :func:`validate` failure; the
            message names the file.
    """
    wpath = Path(weights_path)
    weights = _load_plain_matrix(wpath)
    if lengths_path is None:
        lengths = np.zeros_like(weights)
        lsource = str(wpath)
    else:
        lpath = Path(lengths_path)
        lengths = _load_plain_matrix(lpath)
        lsource = f"{wpath} / {lpath}"
    if labels is not None and isinstance(labels, str | os.PathLike):
        lab_path = Path(labels)
        labels = tuple(s.strip() for s in _read_text(lab_path).splitlines() if s.strip())
    validate(weights, lengths, labels, source=lsource, allow_isolated=allow_isolated)
    _warn_unusual(weights, str(wpath))
    return Connectome(weights, lengths, labels, None, name=wpath.stem)


def load_connectome(path: PathLike, **kwargs: Any) -> Connectome:
    """Load a connectome, choosing the reader from the path.

    - a folder, or a ``*_relmat.dense.tsv`` file: :func:`load_bids_relmat`;
    - ``*.zip``: :func:`load_tvb_zip`;
    - ``*.npy``, ``*.csv``, ``*.tsv``, ``*.txt``: :func:`load_matrix` (weights only unless
      ``lengths_path=`` is given).

    Args:
        path: the file or folder.
        **kwargs: passed to the chosen reader.

    Raises:
        ConnectomeError: missing path, unsupported suffix, or the reader's errors.
    """
    p = Path(path)
    if p.is_dir():
        return load_bids_relmat(p, **kwargs)
    if not p.exists():
        raise ConnectomeError(f"{p}: no such file or directory")
    if p.name.endswith(_RELMAT_SUFFIX):
        return load_bids_relmat(p, **kwargs)
    suffix = p.suffix.lower()
    if suffix == ".zip":
        return load_tvb_zip(p, **kwargs)
    if suffix in (".npy", ".csv", ".tsv", ".txt"):
        return load_matrix(p, **kwargs)
    raise ConnectomeError(
        f"{p}: cannot tell the connectome format from the name; expected a BIDS folder or "
        f"'*{_RELMAT_SUFFIX}', a TVB '.zip', or a '.npy'/'.csv'/'.tsv'/'.txt' matrix"
    )


__all__ = ["load_connectome", "load_matrix"]
