"""Lesions: scaling (or cutting) the structural connections of regions or of single tracts."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from ._base import AbstractIntervention, as_region_tuple, is_tracer, region_indices


class Lesion(AbstractIntervention):
    """Scale the weights of a region's connections, or of chosen tracts, by ``factor``.

    ``regions``: every connection into and out of each region (rows and columns of the
    weights, the self-connection included) is multiplied by ``factor``; ``factor = 0`` removes
    the region from the network (a resection, a stroke core), ``0 < factor < 1`` weakens it.
    ``edges``: pairs ``(i, j)`` in the weights' convention (``W[i, j]`` from ``j`` to ``i``);
    with ``directed=False`` (default) ``W[j, i]`` is scaled too, since diffusion tractography
    does not resolve direction. Each weight is scaled once even when it matches several
    entries. Tract lengths are unchanged.

    Attributes:
        regions: region indices or labels (static; may be empty).
        edges: ``(i, j)`` pairs of indices or labels (static; may be empty).
        factor: the scale, >= 0 (leaf; traceable).
        directed: scale only ``W[i, j]`` for an edge (static).

    Raises (at construction):
        ArgumentError: neither regions nor edges, a malformed edge, or a negative factor.
    """

    kind = "lesion"

    regions: tuple[int | str, ...] = eqx.field(static=True)
    edges: tuple[tuple[int | str, int | str], ...] = eqx.field(static=True)
    factor: float | Array
    directed: bool = eqx.field(static=True)

    def __init__(
        self,
        regions: Any = None,
        edges: Any = None,
        factor: float | Array = 0.0,
        *,
        directed: bool = False,
    ):
        self.regions = () if regions is None else as_region_tuple(regions, "Lesion.regions")
        pairs = []
        for e in () if edges is None else edges:
            if isinstance(e, str) or len(e) != 2:
                raise ArgumentError(f"Lesion.edges: each edge must be a pair (i, j), got {e!r}")
            pairs.append(tuple(as_region_tuple(e, "Lesion.edges")))
        self.edges = tuple(pairs)
        self.factor = factor
        self.directed = bool(directed)

    def __check_init__(self):
        if not self.regions and not self.edges:
            raise ArgumentError("Lesion: give regions= and/or edges=")
        if jnp.ndim(self.factor) != 0:
            raise ShapeError(f"Lesion.factor must be a scalar, got shape {jnp.shape(self.factor)}")
        if not is_tracer(self.factor) and not float(np.asarray(self.factor)) >= 0:
            raise ArgumentError(f"Lesion.factor must be >= 0, got {self.factor!r}")

    def mask(self, n_regions: int, labels: Any = None) -> np.ndarray:
        """(N, N) bool: the weights this lesion scales.

        Raises:
            ArgumentError: unknown labels or indices outside [0, N).
        """
        labels = None if labels is None else tuple(labels)
        m = np.zeros((n_regions, n_regions), dtype=bool)
        if self.regions:
            idx = region_indices(self.regions, labels, n_regions, "Lesion.regions")
            m[idx, :] = True
            m[:, idx] = True
        for e in self.edges:
            i, j = region_indices(e, labels, n_regions, "Lesion.edges")
            m[i, j] = True
            if not self.directed:
                m[j, i] = True
        return m

    def apply(self, connectome: Any) -> Any:
        """The lesioned connectome (a new one; the input is unchanged).

        NumPy weights and a concrete factor stay NumPy (exact float64); otherwise the weights
        become a JAX array, differentiable in ``factor``.

        Args:
            connectome: a :class:`~vbt_jax.Connectome` with (N, N) weights.

        Returns:
            The connectome with ``W[i, j] * factor`` on the lesioned entries.
        """
        w = connectome.weights
        n = int(w.shape[-1])
        m = self.mask(n, connectome.labels)
        if isinstance(w, np.ndarray) and not is_tracer(self.factor):
            new = np.where(m, w * float(np.asarray(self.factor)), w)
        else:
            w = jnp.asarray(w)
            new = jnp.where(jnp.asarray(m), w * self.factor, w)
        return eqx.tree_at(lambda c: c.weights, connectome, new)

    def describe(self) -> str:
        f = "traced" if is_tracer(self.factor) else f"{float(np.asarray(self.factor)):g}"
        parts = []
        if self.regions:
            parts.append(f"all connections of regions {list(self.regions)}")
        if self.edges:
            kind = "directed" if self.directed else "undirected"
            parts.append(f"{kind} edges {[list(e) for e in self.edges]}")
        return f"Lesion: weights of {' and '.join(parts)} scaled by {f}; tract lengths kept."
