"""BIDS-connectivity derivatives: dense ``*_relmat.dense.tsv`` matrices, their JSON sidecars and
node-indices files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .._connectome import Connectome, _warn_unusual, validate
from .._errors import ConnectomeError
from .._labels import check_unique
from ._table import PathLike, _parse_matrix_text, _read_text

_RELMAT_SUFFIX = "_relmat.dense.tsv"
_MEAS_RE = re.compile(r"meas-([A-Za-z0-9]+)")


def _check_sidecar(meta: Any, shape: tuple[int, ...], source: str) -> list[str]:
    """Check the JSON sidecar's ``Axes`` sizes against the matrix; return its NodeFile names."""
    if not isinstance(meta, dict):
        raise ConnectomeError(f"{source}: expected a JSON object, got {type(meta).__name__}")
    axes = meta.get("Axes")
    if axes is None:
        return []
    if not isinstance(axes, list) or len(axes) != 2:
        raise ConnectomeError(f"{source}: 'Axes' must list 2 axes (row, column), got {axes!r}")
    node_files = []
    for k, ax in enumerate(axes):
        if not isinstance(ax, dict):
            raise ConnectomeError(f"{source}: Axes[{k}] must be an object, got {ax!r}")
        size = ax.get("Size")
        if size is not None and size != shape[k]:
            dim = ("rows", "columns")[k]
            raise ConnectomeError(
                f"{source}: Axes[{k}] ({ax.get('Name', '?')!r}) has Size {size} but the matrix "
                f"has {shape[k]} {dim} (shape {shape})"
            )
        if ax.get("NodeFile"):
            node_files.append(str(ax["NodeFile"]))
    if len(set(node_files)) > 1:
        raise ConnectomeError(
            f"{source}: rows and columns use different node files {node_files}; a connectome "
            f"needs the same regions on both axes"
        )
    return node_files


def _parse_nodeindices(text: str, n: int, source: str) -> tuple[str, ...]:
    """Labels ordered by matrix index from a BIDS node-indices TSV (header required)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConnectomeError(f"{source}: empty node-indices file")
    header = [h.strip() for h in lines[0].split("\t")]
    label_col = next((header.index(c) for c in ("label", "name") if c in header), None)
    if label_col is None:
        raise ConnectomeError(f"{source}: no 'label' column in the header {header}")
    index_col = next((header.index(c) for c in ("matrix_index", "index") if c in header), None)
    rows = [line.split("\t") for line in lines[1:]]
    if len(rows) != n:
        raise ConnectomeError(f"{source}: {len(rows)} nodes listed for a {n} x {n} matrix")
    labels: list[str | None] = [None] * n
    for k, row in enumerate(rows):
        if len(row) != len(header):
            raise ConnectomeError(
                f"{source}: line {k + 2} has {len(row)} columns, the header has {len(header)}"
            )
        if index_col is None:
            idx = k
        else:
            try:
                idx = int(row[index_col])
            except ValueError as e:
                raise ConnectomeError(f"{source}: line {k + 2}: bad matrix index ({e})") from e
        if not 0 <= idx < n or labels[idx] is not None:
            raise ConnectomeError(
                f"{source}: line {k + 2}: matrix index {idx} is out of range or repeated "
                f"(expected each of 0..{n - 1} once)"
            )
        labels[idx] = row[label_col].strip()
    check_unique(labels, source)  # type: ignore[arg-type]
    return tuple(labels)  # type: ignore[arg-type]


def _relmat_from_texts(
    matrix_text: str,
    sidecar_text: str | None,
    source: str,
    sidecar_source: str,
) -> tuple[np.ndarray, list[str], bool]:
    """Parse one dense relmat (+ sidecar): the matrix, the sidecar's node file names, and
    whether the sidecar declares it undirected (``"Directed": false``).

    If the sidecar says ``"ValidDiagonal": false`` the diagonal carries no data and is set to 0.
    """
    mat = _parse_matrix_text(matrix_text, source, delimiter="\t")
    if mat.shape[0] != mat.shape[1]:
        raise ConnectomeError(f"{source}: relmat must be square (N, N), got shape {mat.shape}")
    node_files: list[str] = []
    undirected = False
    if sidecar_text is not None:
        try:
            meta = json.loads(sidecar_text)
        except json.JSONDecodeError as e:
            raise ConnectomeError(f"{sidecar_source}: invalid JSON ({e})") from e
        node_files = _check_sidecar(meta, mat.shape, sidecar_source)
        if meta.get("ValidDiagonal") is False:
            np.fill_diagonal(mat, 0.0)
        undirected = meta.get("Directed") is False
    return mat, node_files, undirected


def _relmat_from_path(path: Path) -> tuple[np.ndarray, list[str], bool]:
    sidecar = path.with_name(path.name[: -len(".dense.tsv")] + ".json")
    side_text = _read_text(sidecar) if sidecar.is_file() else None
    return _relmat_from_texts(_read_text(path), side_text, str(path), str(sidecar))


def load_bids_relmat(
    directory_or_weights_tsv: PathLike,
    *,
    weights_measure: str = "streamlineCount",
    lengths_measure: str | None = "tractLength",
    allow_isolated: bool = False,
) -> Connectome:
    """Load a BIDS-connectivity derivative: dense ``*_relmat.dense.tsv`` matrices.

    Each matrix is a headerless tab-separated N x N table (``n/a`` read as NaN, which validation
    then rejects) with an optional JSON sidecar (same name, ``.json`` instead of ``.dense.tsv``)
    whose ``Axes[*].Size`` must match the matrix and whose ``Axes[*].NodeFile`` names the
    node-indices TSV (header with a ``label`` column and optionally ``matrix_index``), which
    gives the labels. Without a node file the labels are ``region_0``... If a sidecar declares
    ``"ValidDiagonal": false`` the matrix diagonal is set to 0.

    Args:
        directory_or_weights_tsv: a folder holding exactly one
            ``*meas-<weights_measure>_relmat.dense.tsv``, or that weights file itself (then
            ``weights_measure`` is ignored).
        weights_measure: the ``meas-`` entity of the weights (default streamline counts).
        lengths_measure: the ``meas-`` entity of the tract lengths (mm), looked up beside the
            weights file; None for zero lengths (no delays).
        allow_isolated: accept regions without connections.

    Returns:
        A float64 NumPy-backed Connectome named after the file name before ``_meas-``.

    Raises:
        ConnectomeError: missing or ambiguous files, sidecar/matrix size mismatch, node file
            problems, or any :func:`validate` failure; messages name the file.
    """
    p = Path(directory_or_weights_tsv)
    if p.is_dir():
        found = sorted(p.glob(f"*meas-{weights_measure}{_RELMAT_SUFFIX}"))
        if len(found) != 1:
            available = sorted(
                {m.group(1) for f in p.glob(f"*{_RELMAT_SUFFIX}") if (m := _MEAS_RE.search(f.name))}
            )
            what = "no" if not found else f"{len(found)} ({[f.name for f in found]})"
            raise ConnectomeError(
                f"{p}: {what} files match '*meas-{weights_measure}{_RELMAT_SUFFIX}'; measures "
                f"present: {available}"
            )
        wpath = found[0]
    elif p.is_file():
        if not p.name.endswith(_RELMAT_SUFFIX):
            raise ConnectomeError(f"{p}: expected a BIDS '*{_RELMAT_SUFFIX}' file")
        wpath = p
    else:
        raise ConnectomeError(f"{p}: no such file or directory")

    weights, node_files, undirected = _relmat_from_path(wpath)
    n = weights.shape[0]
    if lengths_measure is None:
        lengths = np.zeros_like(weights)
    else:
        if not _MEAS_RE.search(wpath.name):
            raise ConnectomeError(
                f"{wpath}: no 'meas-' entity in the name, so the lengths file cannot be found; "
                f"pass lengths_measure=None for zero lengths"
            )
        lpath = wpath.with_name(_MEAS_RE.sub(f"meas-{lengths_measure}", wpath.name, count=1))
        if not lpath.is_file():
            raise ConnectomeError(
                f"{lpath}: lengths file not found (lengths_measure={lengths_measure!r}); pass "
                f"lengths_measure=None for zero lengths"
            )
        lengths, lnode_files, _ = _relmat_from_path(lpath)
        if lengths.shape != weights.shape:
            raise ConnectomeError(
                f"{lpath}: lengths shape {lengths.shape} does not match weights shape "
                f"{weights.shape} ({wpath.name})"
            )
        if node_files and lnode_files and lnode_files[0] != node_files[0]:
            raise ConnectomeError(
                f"{lpath}: node file {lnode_files[0]!r} differs from the weights' {node_files[0]!r}"
            )
        node_files = node_files or lnode_files
    labels = None
    if node_files:
        npath = wpath.parent / node_files[0]
        labels = _parse_nodeindices(_read_text(npath), n, str(npath))
    validate(weights, lengths, labels, source=str(wpath), allow_isolated=allow_isolated)
    _warn_unusual(weights, str(wpath), undirected=undirected)
    name = wpath.name.split("_meas-")[0] if "_meas-" in wpath.name else wpath.name
    return Connectome(weights, lengths, labels, None, name=name)


__all__ = ["load_bids_relmat"]
