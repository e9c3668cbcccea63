"""Structural connectomes: the :class:`Connectome` pytree, validation and file loaders.

Conventions (those of The Virtual Brain and neurolib):

- ``weights[i, j]`` is the coupling weight from source region ``j`` to target region ``i``;
  row ``i`` therefore holds everything region ``i`` receives.
- ``lengths[i, j]`` is the tract length in mm of the same connection; with a conduction speed
  ``v`` in mm/ms it gives the delay ``lengths[i, j] / v`` in ms.

A non-zero weight with a zero length off the diagonal is allowed: it is a connection without
delay (the simulator must read the current state for it, not the delay buffer).
"""

from __future__ import annotations

import bz2
import json
import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ConnectomeError, DataWarning
from ._labels import check_unique
from ._table import parse_table, read_npy, read_text

PathLike = str | os.PathLike

_TVB_SIZES = (66, 68, 76, 96, 192)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NORMALISATIONS = ("max", "log", "rowsum", None)


# --------------------------------------------------------------------------- helpers


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _as_matrix(x: Any, field: str) -> Any:
    """Keep JAX arrays (and tracers) as they are; turn anything else into a float64 ndarray.

    Keeping file data in float64 NumPy preserves the exact values needed to reproduce TVB's
    integer delays (``np.rint`` ties at .5 depend on the last bits of the lengths).
    """
    if isinstance(x, jax.Array):
        return x
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConnectomeError(f"Connectome.{field}: cannot convert to a float array ({e})") from e


def _xp(*arrays: Any):
    """NumPy for NumPy inputs (keeps float64 file data exact), jax.numpy otherwise."""
    return np if all(isinstance(a, np.ndarray) for a in arrays) else jnp


def _check_values(arr: np.ndarray, field: str, source: str) -> None:
    """Finite and non-negative, with the count and the first offending index in the message."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(np.argwhere(bad)[0])
        raise ConnectomeError(
            f"{source}: {field} contain {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at {field}[{', '.join(str(int(i)) for i in first)}] = {float(arr[first])}"
        )
    neg = arr < 0
    if neg.any():
        first = tuple(np.argwhere(neg)[0])
        raise ConnectomeError(
            f"{source}: {field} must be non-negative, found {int(neg.sum())} negative value(s); "
            f"first at {field}[{', '.join(str(int(i)) for i in first)}] = {float(arr[first])}"
        )
    # the simulator runs in float32 by default: such values become inf there, or (lengths)
    # delay buffers no machine holds
    if arr.size and float(arr.max()) > _FLOAT32_MAX:
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(arr)), arr.shape))
        raise ConnectomeError(
            f"{source}: {field} hold {int((arr > _FLOAT32_MAX).sum())} value(s) beyond float32's "
            f"range ({_FLOAT32_MAX:.4g}); the largest is {field}[{', '.join(map(str, at))}] = "
            f"{float(arr[at]):.4g}. Rescale the data (or check the file's units)"
        )


def _warn_unusual(weights: np.ndarray, source: str, *, undirected: bool = False) -> None:
    """:class:`DataWarning` for a file's legitimate but unusual weights: self-connections, and
    an asymmetric matrix its metadata declare undirected. Both are used as given."""
    diag = np.diag(weights)
    nz = np.flatnonzero(diag)
    if nz.size:
        i = int(nz[np.argmax(np.abs(diag[nz]))])
        warnings.warn(
            f"{source}: {nz.size} of {diag.size} self-connections are non-zero (largest "
            f"weights[{i}, {i}] = {diag[i]:.4g}); they are used as given. "
            f"Connectome.without_diagonal() (or [connectome] remove_diagonal = true) drops them",
            DataWarning,
            stacklevel=3,
        )
    if undirected:
        asym = np.abs(weights - weights.T)
        if asym.max() > 0:
            i, j = (int(k) for k in np.unravel_index(int(np.argmax(asym)), asym.shape))
            warnings.warn(
                f'{source}: declared undirected ("Directed": false) but the weights are not '
                f"symmetric: weights[{i}, {j}] = {weights[i, j]:.6g} vs weights[{j}, {i}] = "
                f"{weights[j, i]:.6g}; used as given (row = target, column = source). "
                f"Connectome.symmetrised() (or [connectome] symmetrise = true) averages them",
                DataWarning,
                stacklevel=3,
            )


def _region_name(i: int, labels: Sequence[str] | None) -> str:
    return f"{i} ('{labels[i]}')" if labels is not None else str(i)


# --------------------------------------------------------------------------- validation


def validate(
    weights: Any,
    lengths: Any,
    labels: Sequence[str] | None = None,
    *,
    source: str = "<array>",
    allow_isolated: bool = False,
) -> None:
    """Check a connectome's matrices before anything is built or compiled.

    Checks, in this order: ``weights`` is a 2-D square matrix of at least 2 regions; ``lengths``
    has the same shape; ``labels`` (if given) has one entry per region, each once; both matrices
    are finite, non-negative and within float32's range;
    and (unless ``allow_isolated``) no region is isolated, i.e. has no non-zero weight in its row
    or its column outside the diagonal (a self-connection does not link a region to the network).
    A non-zero weight with zero length off the diagonal is allowed (a connection without delay).

    Args:
        weights: (N, N) coupling weights, ``weights[i, j]`` from source j to target i.
        lengths: (N, N) tract lengths in mm.
        labels: optional N region names.
        source: what to call the data in error messages (a file name, usually).
        allow_isolated: accept regions without any connection (TVB's connectivity_76 and _192
            contain two such corpus callosum placeholders).

    Raises:
        ConnectomeError: naming ``source``, the field, the expected and received shape, or the
            first offending index and value (the largest, for values beyond float32's range).
        LabelError: repeated labels (each with its positions).
    """
    if _is_tracer(weights) or _is_tracer(lengths):
        raise ConnectomeError(
            f"{source}: validate() needs concrete arrays, got JAX tracers; validate outside jit"
        )
    w = np.asarray(weights)
    ln = np.asarray(lengths)
    if w.ndim != 2:
        raise ConnectomeError(
            f"{source}: weights must be a 2-D (N, N) matrix, got a {w.ndim}-D array of shape "
            f"{w.shape}"
        )
    if w.shape[0] != w.shape[1]:
        raise ConnectomeError(f"{source}: weights must be square (N, N), got shape {w.shape}")
    if ln.shape != w.shape:
        raise ConnectomeError(
            f"{source}: lengths shape {ln.shape} does not match weights shape {w.shape}"
        )
    n = w.shape[0]
    if n < 2:
        raise ConnectomeError(
            f"{source}: a network needs at least 2 regions, got {n} (weights shape {w.shape})"
        )
    if labels is not None and len(labels) != n:
        raise ConnectomeError(
            f"{source}: got {len(labels)} labels for {n} regions (weights shape {w.shape})"
        )
    if labels is not None:
        check_unique([str(s) for s in labels], source)
    for field, arr in (("weights", w), ("lengths", ln)):
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ConnectomeError(f"{source}: {field} must be numeric, got dtype {arr.dtype}")
        _check_values(arr, field, source)
    if not allow_isolated:
        off = w != 0
        np.fill_diagonal(off, False)
        isolated = np.flatnonzero(~off.any(axis=0) & ~off.any(axis=1))
        if isolated.size:
            first = int(isolated[0])
            raise ConnectomeError(
                f"{source}: region {_region_name(first, labels)} has no connections (its row and "
                f"column of weights are zero off the diagonal); {isolated.size} isolated "
                f"region(s) in total: {isolated.tolist()}. Remove them, or pass "
                f"allow_isolated=True to keep them"
            )


# --------------------------------------------------------------------------- the pytree


class Connectome(eqx.Module):
    """A structural connectome: weights, tract lengths, region labels and centres.

    ``weights[i, j]`` is the weight from source region ``j`` to target region ``i`` (TVB's
    convention). Array fields are pytree leaves (so a Connectome can be passed through ``jit``,
    ``vmap`` and ``grad``); ``labels`` and ``name`` are static metadata.

    NumPy inputs are stored as float64 NumPy arrays (exact file values; they become JAX arrays
    when traced), JAX arrays are stored unchanged. Leading batch axes are tolerated: only the last
    two axes must be (N, N).

    Attributes:
        weights: (..., N, N) non-negative coupling weights (arbitrary units).
        lengths: (..., N, N) non-negative tract lengths in mm; zeros mean no delays.
        labels: N region names (static).
        centres: (N, 3) region centres (mm, the atlas' space) or None.
        name: a short name for messages and summaries (static).

    Raises (at construction, on concrete arrays only; tracers skip the value checks):
        ConnectomeError: wrong ndim, non-square or mismatched shapes, wrong number of labels,
            centres not (N, 3), non-finite or negative values.
    """

    weights: Any
    lengths: Any
    labels: tuple[str, ...] = eqx.field(static=True)
    centres: Any
    name: str = eqx.field(static=True)

    def __init__(
        self,
        weights: Any,
        lengths: Any = None,
        labels: Sequence[str] | None = None,
        centres: Any = None,
        name: str = "connectome",
    ):
        self.weights = _as_matrix(weights, "weights")
        if lengths is None:
            xp = _xp(self.weights)
            lengths = xp.zeros_like(self.weights)
        self.lengths = _as_matrix(lengths, "lengths")
        n = self.weights.shape[-1] if self.weights.ndim >= 1 else 0
        if labels is None:
            labels = tuple(f"region_{i}" for i in range(n))
        if isinstance(labels, str):
            raise ConnectomeError("Connectome.labels: expected a sequence of names, got one str")
        self.labels = tuple(str(s) for s in labels)
        self.centres = None if centres is None else _as_matrix(centres, "centres")
        self.name = str(name)

    def __check_init__(self):
        w, ln = self.weights, self.lengths
        src = f"Connectome '{self.name}'"
        if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
            raise ConnectomeError(
                f"{src}: weights must be (N, N) (optionally with leading batch axes), got shape "
                f"{w.shape}"
            )
        if ln.ndim < 2 or ln.shape[-2:] != w.shape[-2:]:
            raise ConnectomeError(
                f"{src}: lengths shape {ln.shape} does not match weights shape {w.shape}"
            )
        n = w.shape[-1]
        if len(self.labels) != n:
            raise ConnectomeError(
                f"{src}: got {len(self.labels)} labels for {n} regions (weights shape {w.shape})"
            )
        if self.centres is not None:
            c = self.centres
            if c.ndim < 2 or c.shape[-2:] != (n, 3):
                raise ConnectomeError(f"{src}: centres must be ({n}, 3), got shape {c.shape}")
        for field, arr in (("weights", w), ("lengths", ln)):
            if not _is_tracer(arr):
                _check_values(np.asarray(arr), field, src)

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.weights.shape[-1])

    # ----------------------------------------------------------------- pure transformations

    def normalised(self, mode: Literal["max", "log", "rowsum"] | None = "max") -> Connectome:
        """Return a copy with rescaled weights (lengths unchanged).

        Args:
            mode: ``"max"``: ``W / max(W)`` (max over the whole matrix, diagonal included);
                ``"log"``: ``log1p(W) / max(log1p(W))``, i.e. ``log(1 + W)`` then divided by its
                maximum so the result lies in [0, 1]; ``"rowsum"``: each row divided by its sum
                (the total input of the target region becomes 1; rows summing to zero stay zero);
                ``None``: unchanged. An all-zero matrix is returned unchanged by every mode.
                With leading batch axes each (N, N) matrix is normalised on its own.

        Returns:
            A new Connectome (NumPy in, NumPy out; JAX in, JAX out; works under ``jit``).

        Raises:
            ConnectomeError: unknown ``mode``.
        """
        if mode not in _NORMALISATIONS:
            raise ConnectomeError(
                f"normalised(mode): expected one of {_NORMALISATIONS}, got {mode!r}"
            )
        if mode is None:
            return self
        w = self.weights
        xp = _xp(w)
        if mode == "rowsum":
            scale = xp.sum(w, axis=-1, keepdims=True)
        else:
            if mode == "log":
                w = xp.log1p(w)
            scale = xp.max(w, axis=(-2, -1), keepdims=True)
        new = w / xp.where(scale > 0, scale, xp.ones_like(scale))
        return eqx.tree_at(lambda c: c.weights, self, new)

    def without_diagonal(self) -> Connectome:
        """Return a copy with zero self-connection weights (lengths unchanged)."""
        w = self.weights
        xp = _xp(w)
        eye = xp.eye(w.shape[-1], dtype=bool)
        return eqx.tree_at(lambda c: c.weights, self, xp.where(eye, xp.zeros_like(w), w))

    def symmetrised(self) -> Connectome:
        """Return a copy with ``(W + W.T) / 2`` for both weights and lengths."""
        w, ln = self.weights, self.lengths
        xp = _xp(w, ln)
        w2 = (w + xp.swapaxes(w, -1, -2)) / 2
        l2 = (ln + xp.swapaxes(ln, -1, -2)) / 2
        return eqx.tree_at(lambda c: (c.weights, c.lengths), self, (w2, l2))

    def delay_steps(self, speed_mm_per_ms: float, dt_ms: float) -> np.ndarray:
        """Integer delays in time steps, computed exactly as TVB does.

        ``np.rint(lengths / speed / dt)`` in float64 (division by the speed first, then by dt;
        ``rint`` rounds half to even). The order matters: on TVB's connectivity_66 at dt = 0.1 ms
        ``lengths / (speed * dt)`` lands on the other side of several .5 ties.

        Args:
            speed_mm_per_ms: conduction speed in mm/ms (= m/s), > 0.
            dt_ms: integration step in ms, > 0.

        Returns:
            (..., N, N) ``numpy.int64`` array of delays in steps (0 where the length is 0).

        Raises:
            ConnectomeError: speed or dt not a finite positive number, or traced lengths (delays
                fix buffer sizes, so compute them outside ``jit``).
        """
        for arg, val in (("speed_mm_per_ms", speed_mm_per_ms), ("dt_ms", dt_ms)):
            if _is_tracer(val):
                raise ConnectomeError(f"delay_steps: {arg} must be a concrete number, got a tracer")
            try:
                v = float(val)
            except (TypeError, ValueError) as e:
                raise ConnectomeError(f"delay_steps: {arg} must be a number, got {val!r}") from e
            if not (np.isfinite(v) and v > 0):
                raise ConnectomeError(f"delay_steps: {arg} must be finite and > 0, got {val!r}")
        if _is_tracer(self.lengths):
            raise ConnectomeError(
                "delay_steps: lengths are JAX tracers; integer delays fix the buffer size, so "
                "compute them outside jit/vmap from concrete lengths"
            )
        lengths = np.asarray(self.lengths, dtype=np.float64)
        return np.rint(lengths / float(speed_mm_per_ms) / float(dt_ms)).astype(np.int64)

    def summary(self) -> str:
        """One line: name, region count, non-zero weights, value ranges, symmetry."""
        w, ln = self.weights, self.lengths
        head = f"Connectome '{self.name}': {self.n_regions} regions"
        if _is_tracer(w) or _is_tracer(ln):
            return head + " (traced arrays)"
        w = np.asarray(w)
        ln = np.asarray(ln)
        nnz = int(np.count_nonzero(w))
        sym = "symmetric" if np.array_equal(w, np.swapaxes(w, -1, -2)) else "directed"
        batch = f", batch shape {w.shape[:-2]}" if w.ndim > 2 else ""
        return (
            f"{head}{batch}, {nnz} non-zero weights ({100.0 * nnz / w.size:.1f} %), "
            f"weights in [{w.min():.4g}, {w.max():.4g}], lengths in [{ln.min():.4g}, "
            f"{ln.max():.4g}] mm, {sym}"
        )


# --------------------------------------------------------------------------- text parsing


def _parse_matrix_text(text: str, source: str, delimiter: str | None = None) -> np.ndarray:
    """A headerless numeric matrix (:func:`vbt_jax._table.parse_table`); ``n/a`` and ``nan``
    become NaN (reported later by validation); ``delimiter=None`` detects tab, comma or
    whitespace from the first line."""
    return parse_table(text, source, delimiter=delimiter, error=ConnectomeError)[0]


def _read_text(path: Path) -> str:
    return read_text(path, ConnectomeError)


# --------------------------------------------------------------------------- TVB zips


def _tvb_member_key(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".bz2"):
        base = base[: -len(".bz2")]
    stem = base.rsplit(".", 1)[0].lower()
    if stem == "weights":
        return "weights"
    if stem in ("tract_lengths", "tract", "tracts"):
        return "lengths"
    if stem in ("centres", "centers"):
        return "centres"
    return None


def _parse_tvb_centres(text: str, source: str) -> tuple[tuple[str, ...], np.ndarray]:
    labels, xyz = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        # connectivity_66 carries a fifth column ("None"); extra columns are ignored.
        if len(tokens) < 4:
            raise ConnectomeError(
                f"{source}: line {lineno} should be 'label x y z', got {line.strip()!r}"
            )
        try:
            xyz.append([float(t) for t in tokens[1:4]])
        except ValueError as e:
            raise ConnectomeError(f"{source}: line {lineno}: bad coordinate ({e})") from e
        labels.append(tokens[0])
    check_unique(labels, source)
    return tuple(labels), np.asarray(xyz, dtype=np.float64).reshape(-1, 3)


def load_tvb_zip(path: PathLike, *, allow_isolated: bool = False) -> Connectome:
    """Load a TVB connectivity zip (tvb-data's ``connectivity_*.zip`` layout).

    Reads ``weights.txt``, ``tract_lengths.txt`` and (optionally) ``centres.txt`` (label then
    x y z per line; extra columns are ignored). Members may sit in a subfolder and may be
    ``.bz2``-compressed. Without ``centres.txt`` the labels are ``region_0``... and centres None.

    Args:
        path: the zip file.
        allow_isolated: accept regions without connections (needed for tvb-data's
            connectivity_76 and connectivity_192, which contain zero-weight corpus callosum rows).

    Returns:
        A float64 NumPy-backed Connectome named after the zip's stem.

    Raises:
        ConnectomeError: unreadable zip, missing or duplicated members, parse errors, or any
            :func:`validate` failure; the message names the zip (and the member).
    """
    path = Path(path)
    if not path.is_file():
        raise ConnectomeError(f"{path}: file not found")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConnectomeError(f"{path}: not a readable zip file ({e})") from e
    with zf:
        members: dict[str, str] = {}
        for name in zf.namelist():
            if name.endswith("/") or name.startswith("__MACOSX/"):
                continue
            key = _tvb_member_key(name)
            if key is None:
                continue
            if key in members:
                raise ConnectomeError(
                    f"{path}: ambiguous members {members[key]!r} and {name!r} for {key}"
                )
            members[key] = name
        for key, expected in (("weights", "weights.txt"), ("lengths", "tract_lengths.txt")):
            if key not in members:
                raise ConnectomeError(
                    f"{path}: no {expected} member (found {sorted(zf.namelist())})"
                )

        def text(key: str) -> str:
            name = members[key]
            raw = zf.read(name)
            if name.endswith(".bz2"):
                try:
                    raw = bz2.decompress(raw)
                except OSError as e:
                    raise ConnectomeError(f"{path}:{name}: bad bz2 data ({e})") from e
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConnectomeError(f"{path}:{name}: not UTF-8 text ({e})") from e

        weights = _parse_matrix_text(text("weights"), f"{path}:{members['weights']}")
        lengths = _parse_matrix_text(text("lengths"), f"{path}:{members['lengths']}")
        labels, centres = None, None
        if "centres" in members:
            labels, centres = _parse_tvb_centres(text("centres"), f"{path}:{members['centres']}")
    validate(weights, lengths, labels, source=str(path), allow_isolated=allow_isolated)
    _warn_unusual(weights, str(path))
    if centres is not None and centres.shape[0] != weights.shape[0]:
        raise ConnectomeError(
            f"{path}: centres has {centres.shape[0]} rows for {weights.shape[0]} regions"
        )
    return Connectome(weights, lengths, labels, centres, name=path.stem)


def tvb_connectivity(n_regions: int, *, allow_isolated: bool = True) -> Connectome:
    """Load tvb-data's ``connectivity_{n_regions}.zip`` (66, 68, 76, 96 or 192 regions).

    Isolated regions are allowed by default here because connectivity_76 and connectivity_192
    contain them (corpus callosum placeholders with no connections).

    Raises:
        ImportError: the optional ``tvb-data`` package is not installed.
        ConnectomeError: ``n_regions`` is not one of the shipped sizes.
    """
    if n_regions not in _TVB_SIZES:
        raise ConnectomeError(
            f"tvb_connectivity(n_regions): tvb-data ships {_TVB_SIZES}, got {n_regions!r}"
        )
    try:
        import tvb_data
    except ImportError as e:
        raise ImportError(
            "tvb_connectivity() needs the optional 'tvb-data' package; install it with "
            "`pip install vbt_jax[bench]` or `pip install vbt_jax[dev]` (or `pip install tvb-data`)"
        ) from e
    path = Path(tvb_data.__file__).parent / "connectivity" / f"connectivity_{n_regions}.zip"
    with warnings.catch_warnings():
        # TVB's own connectomes carry self-connections by design: no DataWarning for them
        warnings.simplefilter("ignore", DataWarning)
        return load_tvb_zip(path, allow_isolated=allow_isolated)


# --------------------------------------------------------------------------- BIDS relmat

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


# --------------------------------------------------------------------------- plain matrices


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


__all__ = [
    "Connectome",
    "load_bids_relmat",
    "load_connectome",
    "load_matrix",
    "load_tvb_zip",
    "tvb_connectivity",
    "validate",
]
