"""The interface shared by every intervention, and helpers to resolve regions."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np

from .._errors import ArgumentError


class AbstractIntervention(eqx.Module):
    """Something done to a fitted twin: a drug, a stimulation or a lesion.

    Interventions are immutable pytrees: their numeric settings (dose-response constants,
    efficacies, amplitudes, lesion factors) are leaves, so they can be traced by ``jit``,
    ``vmap`` and ``grad``; names, targets and timings are static. Applying one never modifies
    its argument: it returns a new model or connectome.

    Subclasses set ``kind`` (``"drug"``, ``"stimulation"`` or ``"lesion"``) and implement
    :meth:`describe`.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def describe(self) -> str:
        """A one-paragraph, human-readable account of what the intervention does."""


def is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def region_indices(
    regions: Sequence[int | str], labels: Sequence[str] | None, n: int, what: str
) -> np.ndarray:
    """Integer indices of ``regions`` (indices or labels) among ``n`` regions.

    Raises:
        ArgumentError: an index outside ``[0, n)``, a label absent from ``labels`` (or labels
            needed but not given), or a repeated region.
    """
    out = []
    for r in regions:
        if isinstance(r, str):
            if labels is None:
                raise ArgumentError(f"{what}: region {r!r} is a label but no labels were given")
            try:
                out.append(list(labels).index(r))
            except ValueError:
                raise ArgumentError(
                    f"{what}: no region labelled {r!r} among the {len(labels)} labels "
                    f"(e.g. {list(labels[:4])})"
                ) from None
        else:
            i = int(r)
            if not 0 <= i < n:
                raise ArgumentError(f"{what}: region index {i} outside [0, {n})")
            out.append(i)
    idx = np.asarray(out, dtype=np.int64)
    if np.unique(idx).size != idx.size:
        raise ArgumentError(f"{what}: regions repeat: {list(regions)}")
    return idx


def as_region_tuple(regions: Any, what: str) -> tuple[int | str, ...]:
    """Normalise one region or a sequence of regions (indices or labels) to a tuple."""
    if isinstance(regions, (str, int, np.integer)):
        regions = (regions,)
    try:
        out = tuple(r if isinstance(r, str) else int(r) for r in regions)
    except (TypeError, ValueError):
        raise ArgumentError(f"{what}: expected region indices or labels, got {regions!r}") from None
    if not out:
        raise ArgumentError(f"{what}: no regions given")
    return out
