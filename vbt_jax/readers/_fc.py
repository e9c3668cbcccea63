"""Observed functional connectivity: a precomputed (group) FC matrix from .npy, .csv/.tsv or a
BIDS relmat (:class:`ObservedFC`, :func:`load_fc_matrix`).

Pure NumPy loading and validation at the edge.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import ArgumentError, DataError, LabelError, ShapeError
from .._labels import label_tuple
from ._bids import _RELMAT_SUFFIX as _RELMAT
from ._bids import _parse_nodeindices
from ._table import _read_table, read_npy


class ObservedFC(eqx.Module):
    """An empirical (group) functional connectivity matrix.

    Attributes:
        fc: (N, N) float64 symmetric Pearson correlations, diagonal 1.
        labels: N region names (static).
        n_timepoints: number of volumes each correlation was computed from, or None if unknown;
            sets the sampling SD of Fisher-z values, ``1 / sqrt(n_timepoints - 3)``.
        source: file path or description (static).
    """

    fc: Any
    labels: tuple[str, ...] = eqx.field(static=True)
    n_timepoints: int | None = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(
        self,
        fc: Any,
        labels: Sequence[str] | None = None,
        n_timepoints: int | None = None,
        source: str = "array",
    ):
        self.fc = np.asarray(fc, dtype=np.float64)
        n = self.fc.shape[0] if self.fc.ndim else 0
        self.labels = (
            tuple(f"region_{i}" for i in range(n))
            if labels is None
            else tuple(str(s) for s in labels)
        )
        self.n_timepoints = None if n_timepoints is None else int(n_timepoints)
        self.source = str(source)

    def __check_init__(self):
        _check_fc(self.fc, self.source)
        if len(self.labels) != self.fc.shape[0]:
            raise ShapeError(
                f"{self.source}: {len(self.labels)} labels for a {self.fc.shape[0]}-region FC"
            )
        if self.n_timepoints is not None and self.n_timepoints < 4:
            raise ArgumentError(
                f"{self.source}: n_timepoints must be an int >= 4 (Fisher-z variance "
                f"1/(T-3)), got {self.n_timepoints}"
            )

    @property
    def fisher_z_sd(self) -> float | None:
        """Sampling SD of ``arctanh(r)`` for independent samples, ``1/sqrt(T-3)``; None if T
        unknown (autocorrelated BOLD has fewer effective samples, so this is a lower bound)."""
        return None if self.n_timepoints is None else 1.0 / np.sqrt(self.n_timepoints - 3)


def _check_fc(fc: np.ndarray, source: str, atol: float = 1e-6) -> None:
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1] or fc.shape[0] < 2:
        raise ShapeError(f"{source}: FC must be a square (N, N) matrix, N >= 2, got {fc.shape}")
    off = ~np.eye(fc.shape[0], dtype=bool)
    bad = np.argwhere(~np.isfinite(fc) & off)
    if bad.size:
        i, j = bad[0]
        raise DataError(
            f"{source}: {len(bad)} off-diagonal entries are NaN/inf; first at [{i}, {j}] = "
            f"{fc[i, j]}"
        )
    asym = np.abs(fc - fc.T)
    if asym.max() > atol:
        i, j = np.unravel_index(np.argmax(asym), asym.shape)
        raise DataError(
            f"{source}: FC is not symmetric (tolerance {atol:g}): [{i}, {j}] = {fc[i, j]:.6g} "
            f"but [{j}, {i}] = {fc[j, i]:.6g}"
        )
    out = np.abs(fc) > 1.0 + atol
    if out.any():
        i, j = np.argwhere(out)[0]
        raise DataError(
            f"{source}: correlations must lie in [-1, 1]; {int(out.sum())} entries do not, "
            f"first [{i}, {j}] = {fc[i, j]:.6g}"
        )
    d = np.diag(fc)
    if not np.allclose(d, 1.0, atol=atol, rtol=0):
        i = int(np.flatnonzero(np.abs(d - 1.0) > atol)[0])
        raise DataError(f"{source}: FC diagonal must be 1, got [{i}, {i}] = {d[i]:.6g}")


def _relmat_labels(path: Path, n: int) -> tuple[tuple[str, ...] | None, bool | None]:
    """Node labels and ValidDiagonal from a BIDS relmat's JSON sidecar, if any."""
    sidecar = path.with_name(path.name[: -len(".dense.tsv")] + ".json")
    if not sidecar.is_file():
        return None, None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{sidecar}: unreadable JSON sidecar ({e})") from e
    valid_diag = meta.get("ValidDiagonal")
    node_file = None
    axes = meta.get("Axes") or meta.get("axes")
    if isinstance(axes, list) and axes and isinstance(axes[0], dict):
        node_file = axes[0].get("NodeFile")
    if not node_file:
        return None, valid_diag
    npath = path.parent / node_file
    if not npath.is_file():
        raise DataError(f"{sidecar}: NodeFile {node_file!r} not found beside it")
    return _parse_nodeindices(npath.read_text(encoding="utf-8"), n, str(npath)), valid_diag


def load_fc_matrix(
    path: str | os.PathLike,
    labels: Any = None,
    *,
    n_timepoints: int | None = None,
    atol: float = 1e-6,
) -> ObservedFC:
    """Load a precomputed (group) FC matrix from .npy, .csv, .tsv or a BIDS relmat.

    Text files may start with a header row of region names. A BIDS ``*_relmat.dense.tsv`` takes
    its labels from the sidecar's ``NodeFile``. A diagonal that is all NaN or all 0 (common
    placeholders, or ``"ValidDiagonal": false``) is set to 1; any other diagonal must be 1. The
    matrix is symmetrised exactly (mean with its transpose) after the check.

    Args:
        path: the file.
        labels: N region names (sequence, or a connectome whose labels must then equal the
            file's, if it names its regions); None takes them from the file or ``region_<i>``.
        n_timepoints: volumes per subject the correlations came from (None if unknown).
        atol: tolerance of the symmetry, diagonal and [-1, 1] checks.

    Returns:
        An :class:`ObservedFC` with ``source`` the path.

    Raises:
        DataError: missing or unreadable file; not square; NaN/inf off the diagonal; asymmetric;
            values outside [-1, 1]; diagonal not 1; label count or names mismatching; the message
            names the file and the first offending index and value.
    """
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise DataError(f"{src}: file not found")
    file_labels, valid_diag = None, None
    if p.name.endswith(_RELMAT):
        fc, _ = _read_table(src)
        fc = np.asarray(fc, dtype=np.float64)
        if fc.ndim == 2 and fc.shape[0] == fc.shape[1]:
            file_labels, valid_diag = _relmat_labels(p, fc.shape[0])
    elif p.suffix.lower() == ".npy":
        fc = read_npy(p)
    elif p.suffix.lower() in (".csv", ".tsv"):
        fc, header = _read_table(src)
        fc = np.asarray(fc, dtype=np.float64)
        file_labels = None if header is None else tuple(header)
    else:
        raise DataError(f"{src}: unsupported extension {p.suffix!r}; expected .npy/.csv/.tsv")
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1]:
        raise ShapeError(f"{src}: FC must be a square (N, N) matrix, got shape {fc.shape}")
    fc = fc.copy()
    d = np.diag(fc)
    if valid_diag is False or np.isnan(d).all() or (d == 0).all():
        np.fill_diagonal(fc, 1.0)
    _check_fc(fc, src, atol)
    fc = 0.5 * (fc + fc.T)
    np.clip(fc, -1.0, 1.0, out=fc)
    n = fc.shape[0]
    want = label_tuple(labels)
    if want is not None:
        if len(want) != n:
            raise ShapeError(f"{src}: {n} regions in the FC but {len(want)} labels given")
        if file_labels is not None and tuple(file_labels) != want:
            i = next(k for k, (a, b) in enumerate(zip(file_labels, want)) if a != b)
            raise LabelError(
                f"{src}: region labels differ from those given at index {i}: file "
                f"{file_labels[i]!r} vs {want[i]!r}"
            )
        file_labels = want
    if file_labels is not None and len(file_labels) != n:
        raise ShapeError(f"{src}: {len(file_labels)} header labels for {n} regions")
    if n_timepoints is not None and (
        isinstance(n_timepoints, bool) or int(n_timepoints) != n_timepoints
    ):
        raise ArgumentError(f"{src}: n_timepoints must be an int, got {n_timepoints!r}")
    return ObservedFC(fc, file_labels, n_timepoints, src)


__all__ = ["ObservedFC", "load_fc_matrix"]
