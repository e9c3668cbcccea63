"""Plain numeric tables in text files: the one parser behind every matrix and time-series reader.

A table is one row per non-blank line, cells split by a delimiter (tab, comma, or runs of
whitespace); ``n/a`` (BIDS) and ``nan`` are NaN, which the readers then reject or accept with
their own message. A first row of names is a header where the caller allows one (time series,
FC tables), an error naming the line where it does not (connectome matrices).

Beside the parser, the file helpers every reader shares: :func:`read_text` and :func:`read_npy`
(errors naming the file, in the caller's error class), ``_read_table`` (a table with an optional
header, by suffix) and the connectome readers' flavour of both, raising ConnectomeError.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._errors import ConnectomeError, DataError

PathLike = str | os.PathLike

_NA = ("n/a", "nan")


def _cell(token: str) -> float:
    t = token.strip()
    return float("nan") if t.lower() in _NA else float(t)


def parse_table(
    text: str,
    source: str,
    *,
    delimiter: str | None = None,
    header: bool = False,
    error: type[DataError] = DataError,
) -> tuple[np.ndarray, list[str] | None]:
    """Parse a numeric table.

    Args:
        text: the file's text.
        source: the file (for messages).
        delimiter: the cell separator; None detects it from the first line: tab if it has one,
            else comma, else runs of whitespace.
        header: a first line that is not all numbers is a row of names; with False it is an
            error.
        error: the exception to raise (a :class:`DataError` subclass, e.g. ConnectomeError).

    Returns:
        ``(data, names)``: (rows, columns) float64, and the header's names or None.

    Raises:
        error: an empty file, a line that is not a row of numbers (its line number), rows of
            different lengths, a header whose length differs from the rows'.
    """
    lines = [(k + 1, line) for k, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise error(f"{source}: the file holds no table (empty)")
    if delimiter is None:
        first = lines[0][1]
        delimiter = "\t" if "\t" in first else ("," if "," in first else None)

    def split(line: str) -> list[str]:
        return line.strip().split(delimiter) if delimiter else line.split()

    names = None
    if header:
        cells = split(lines[0][1])
        try:
            [_cell(c) for c in cells]
        except ValueError:
            names, lines = [c.strip() for c in cells], lines[1:]
            if not lines:
                raise error(f"{source}: a header row but no rows of numbers") from None
    rows = []
    for lineno, line in lines:
        try:
            rows.append([_cell(t) for t in split(line)])
        except ValueError as e:
            hint = "" if header else "; headers or index columns are not supported"
            raise error(f"{source}: line {lineno} is not a row of numbers ({e}){hint}") from e
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        bad = next(lineno for (lineno, _), r in zip(lines, rows) if len(r) != len(rows[0]))
        raise error(
            f"{source}: rows have different lengths {sorted(widths)}; line {bad} has a different "
            f"number of columns than line {lines[0][0]}"
        )
    if names is not None and len(names) != len(rows[0]):
        raise error(
            f"{source}: the header has {len(names)} names but the rows have {len(rows[0])} columns"
        )
    return np.asarray(rows, dtype=np.float64), names


def read_text(path: Path, error: type[DataError] = DataError) -> str:
    """A file's UTF-8 text; a missing or unreadable file is ``error`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise error(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read as text ({e})") from e


def read_npy(path: Path, error: type[DataError] = DataError) -> np.ndarray:
    """A numeric ``.npy`` array as float64; unreadable or non-numeric is ``error`` naming it."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise error(f"{path}: file not found") from e
    except (OSError, ValueError) as e:
        raise error(f"{path}: not a readable .npy array ({e})") from e
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise error(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


# ------------------------------------------------------------------ tables by suffix


def _read_table(path: str) -> tuple[np.ndarray, list[str] | None]:
    """Numeric table from .npy/.csv/.tsv (:func:`parse_table`: comma for .csv, tab for .tsv); a
    non-numeric first row of a text file is a header of names."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return read_npy(path), None
    if ext not in (".csv", ".tsv"):
        raise DataError(f"{path}: unsupported extension {ext!r}; expected .npy, .csv or .tsv")
    delim = "," if ext == ".csv" else "\t"
    return parse_table(read_text(path), path, delimiter=delim, header=True)


# ------------------------------------------------------------------ connectome matrices


def _parse_matrix_text(text: str, source: str, delimiter: str | None = None) -> np.ndarray:
    """A headerless numeric matrix (:func:`parse_table`); ``n/a`` and ``nan`` become NaN (reported
    later by validation); ``delimiter=None`` detects tab, comma or whitespace from the first
    line."""
    return parse_table(text, source, delimiter=delimiter, error=ConnectomeError)[0]


def _read_text(path: Path) -> str:
    """:func:`read_text` raising :class:`ConnectomeError`."""
    return read_text(path, ConnectomeError)
