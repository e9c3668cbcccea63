"""The loop every engine shares: a sampler's chunks, checkpoints and progress bar.

A sampler is a state machine with ``init(key) -> state``, ``resume(key, saved) -> state``
(rebuild what a saved state needs, e.g. a guide's structure) and ``update(state, n) ->
(state, output)`` (``n`` more iterations; ``output`` maps names to arrays of this chunk).
:func:`drive` runs its phases in chunks, writes each chunk to a :class:`~._checkpoint.Store`
and reports on a :class:`~._progress.Progress` bar; the sampler knows neither.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np

from vbt_jax import ArgumentError

from ._checkpoint import Store
from ._progress import Progress


class Sampler(Protocol):
    def init(self, key: Any) -> Any: ...

    def resume(self, key: Any, saved: Any) -> Any: ...

    def update(self, state: Any, n: int) -> tuple[Any, dict[str, np.ndarray]]: ...


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of iterations run in chunks.

    Attributes:
        name: shown on the progress bar (``"warm-up"``, ``"sampling"``, ``"steps"``).
        length: iterations of the phase.
        chunk: iterations per ``update`` call, and per checkpoint.
        keep: whether the chunks' outputs are returned (and saved), or dropped.
    """

    name: str
    length: int
    chunk: int
    keep: bool = True

    def __post_init__(self):
        if self.length < 0 or self.chunk < 1:
            raise ArgumentError(
                f"phase {self.name!r}: needs length >= 0 and chunk >= 1, got length "
                f"{self.length} and chunk {self.chunk}"
            )

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.length / self.chunk)


class Driven(NamedTuple):
    """What :func:`drive` returns.

    Attributes:
        state: the sampler state after the last phase.
        outputs: the kept chunks' outputs, in order (saved ones first on a resumed run).
        seconds: wall time per phase name in this process (the first includes ``init``).
    """

    state: Any
    outputs: list[dict[str, np.ndarray]]
    seconds: dict[str, float]


def drive(
    sampler: Sampler,
    key: Any,
    phases: tuple[Phase, ...],
    *,
    store: Store | None = None,
    progress: bool = True,
    label: Callable[[Phase, int, int], str],
    postfix: Callable[[Phase, dict[str, np.ndarray]], str] | None = None,
    unit: str = "it",
) -> Driven:
    """Run ``phases`` of ``sampler`` from ``key``, or from what ``store`` holds.

    Args:
        sampler: the state machine (see the module docstring).
        key: PRNG key for ``sampler.init`` (and ``sampler.resume``).
        phases: run one after another.
        store: where each chunk and the state after it are written; a run that finds a
            state there continues after the last chunk it counts.
        progress: show one bar over all iterations of all phases.
        label: ``label(phase, k, n_chunks)``: the bar's description while chunk ``k``
            (from 1) of ``phase`` runs.
        postfix: ``postfix(phase, output)``: the note after the counts once a chunk is done.
        unit: what one iteration is, for the bar.

    Returns:
        A :class:`Driven`.
    """
    t0 = time.perf_counter()
    saved = store.load(len(phases)) if store is not None else None
    if saved is None:
        state, done, outputs = sampler.init(key), [0] * len(phases), []
    else:
        state, done, outputs = sampler.resume(key, saved.state), list(saved.done), saved.outputs
    bar = Progress(sum(p.length for p in phases), initial=sum(done), enabled=progress, unit=unit)
    seconds = {}
    try:
        for i, phase in enumerate(phases):
            while done[i] < phase.length:
                n = min(phase.chunk, phase.length - done[i])
                bar.describe(label(phase, done[i] // phase.chunk + 1, phase.n_chunks))
                state, out = sampler.update(state, n)
                done[i] += n
                if phase.keep:
                    outputs.append(out)
                if store is not None:
                    store.save(state, tuple(done), len(outputs), out if phase.keep else None)
                bar.advance(n, postfix(phase, out) if postfix is not None else None)
            seconds[phase.name] = time.perf_counter() - t0
            t0 = time.perf_counter()
    finally:
        bar.close()
    return Driven(state, outputs, seconds)
