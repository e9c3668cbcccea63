"""One progress bar per engine run, over all its iterations, so that its ETA is the run's."""

from __future__ import annotations

from typing import IO


class Progress:
    """A tqdm bar whose description names the part of the run in flight.

    Args:
        total: iterations of the whole run (every phase, per chain).
        initial: iterations already done (a resumed run).
        enabled: False draws nothing.
        unit: what one iteration is (``"it"``, ``"step"``).
        file: where the bar is written (default: standard error).
    """

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        enabled: bool = True,
        unit: str = "it",
        file: IO[str] | None = None,
    ):
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total, initial=initial, disable=not enabled, unit=unit, file=file, leave=True
        )

    @property
    def n(self) -> int:
        """Iterations counted so far."""
        return self._bar.n

    def describe(self, text: str) -> None:
        """Name what runs next (shown at once)."""
        self._bar.set_description_str(text)

    def advance(self, n: int, postfix: str | None = None) -> None:
        """Count ``n`` finished iterations, with an optional note after the counts."""
        if postfix is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
