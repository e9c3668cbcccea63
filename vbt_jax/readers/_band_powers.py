"""Band powers per region or sensor: :class:`BandPowers` and region-level band-power tables
(.csv/.tsv rows = regions, or .npy) matched to a connectome's regions by name or order.

Pure NumPy loading and validation at the edge.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import DataError, ShapeError
from .._labels import label_tuple, match_labels
from ._table import _read_table, read_npy


class BandPowers(eqx.Module):
    """Power in frequency bands per region or sensor.

    Attributes:
        values: (N, B) float64; NaN rows where there is no value.
        labels: N region or channel names (static).
        band_names: B band names (static).
        bands: B ``(lo, hi)`` edges in Hz, or None if unknown (static).
        source: provenance (static).
    """

    values: Any
    labels: tuple[str, ...] = eqx.field(static=True)
    band_names: tuple[str, ...] = eqx.field(static=True)
    bands: tuple[tuple[float, float], ...] | None = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(
        self,
        values: Any,
        labels: Sequence[str],
        bands: Mapping[str, tuple[float, float]] | Sequence[str],
        source: str = "array",
    ):
        self.values = np.asarray(values, dtype=np.float64)
        self.labels = tuple(str(s) for s in labels)
        if isinstance(bands, Mapping):
            self.band_names = tuple(str(k) for k in bands)
            self.bands = tuple((float(lo), float(hi)) for lo, hi in bands.values())
        else:
            self.band_names = tuple(str(k) for k in bands)
            self.bands = None
        self.source = str(source)

    def __check_init__(self):
        shape = (len(self.labels), len(self.band_names))
        if self.values.shape != shape:
            raise ShapeError(
                f"{self.source}: band powers must be (N, B) = {shape} (labels x bands), got "
                f"{self.values.shape}"
            )

    @property
    def missing(self) -> np.ndarray:
        """(N,) bool: rows without values."""
        return np.isnan(self.values).any(axis=1)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``band name -> (N,)`` values."""
        return {b: self.values[:, k] for k, b in enumerate(self.band_names)}


def load_band_powers(
    path: str | os.PathLike,
    labels: Any = None,
    bands: Mapping[str, tuple[float, float]] | Sequence[str] | None = None,
    *,
    label_column: str | None = None,
    allow_missing: bool = False,
) -> BandPowers:
    """Load a region-level band-power table (.csv/.tsv rows = regions, or .npy (N, B)).

    A text table may have a header row; its band columns are selected by the names in
    ``bands`` (all numeric columns if None). With ``label_column`` (a header name) rows are
    matched to ``labels`` by name (see :func:`vbt_jax.match_labels`); a region of ``labels``
    with no row is an error naming it, or a NaN row with ``allow_missing=True``. Without
    ``label_column`` rows must already be in the order of ``labels``.

    Args:
        path: the file.
        labels: target region names (sequence or connectome); None keeps the file's rows.
        bands: ``name -> (lo, hi)`` Hz or band names; needed to name the columns of a file
            without a header (its length must equal the column count).
        label_column: header name of the column of region labels.
        allow_missing: with ``label_column``, keep regions the file has no row for as NaN
            rows instead of raising.

    Returns:
        A :class:`BandPowers`.

    Raises:
        DataError: unreadable file, missing columns, non-finite or negative values, row/label
            count mismatch, file labels matching no region, regions without a row (unless
            ``allow_missing``); the message names the file.
    """
    src = os.fspath(path)
    if not os.path.isfile(src):
        raise DataError(f"{src}: file not found")
    want = label_tuple(labels)
    row_labels = None
    ext = os.path.splitext(src)[1].lower()
    if ext == ".npy":
        data, header = read_npy(src), None
    elif ext in (".csv", ".tsv") and label_column is not None:
        import csv

        with open(src, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if ext == ".tsv" else ","))
        if not rows or label_column not in rows[0]:
            cols = list(rows[0]) if rows else []
            raise DataError(f"{src}: no column {label_column!r}; columns are {cols}")
        header = [c for c in rows[0] if c != label_column]
        row_labels = [r[label_column].strip() for r in rows]
        try:
            data = np.array([[float(r[c]) for c in header] for r in rows], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"{src}: non-numeric band power ({e})") from None
    else:
        data, header = _read_table(src)
        data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ShapeError(f"{src}: expected a (regions, bands) table, got shape {data.shape}")
    names = list(bands) if bands is not None else None
    if header is not None:
        if names is None:
            names = list(header)
        missing = [b for b in names if b not in header]
        if missing:
            raise DataError(f"{src}: band columns {missing} not in the header {header}")
        data = data[:, [header.index(b) for b in names]]
    elif names is None:
        names = [f"band_{k}" for k in range(data.shape[1])]
    elif len(names) != data.shape[1]:
        raise ShapeError(f"{src}: {data.shape[1]} columns but {len(names)} bands {names}")
    bad = np.argwhere(~np.isfinite(data) | (data < 0))
    if bad.size:
        i, k = bad[0]
        raise DataError(
            f"{src}: band powers must be finite and >= 0; row {i}, band {names[k]!r} = {data[i, k]}"
        )
    if row_labels is not None:
        target = want if want is not None else tuple(row_labels)
        idx = match_labels(row_labels, target, what=src)
        if (idx < 0).any() and not allow_missing:
            absent = [t for t, i in zip(target, idx) if i < 0]
            more = f" ... ({len(absent)} in all)" if len(absent) > 20 else ""
            raise DataError(
                f"{src}: no row for {len(absent)} of {len(target)} regions: {absent[:20]}{more}; "
                f"pass allow_missing=True to keep them as NaN rows"
            )
        data = np.where((idx >= 0)[:, None], data[np.maximum(idx, 0)], np.nan)
        out_labels = target
    else:
        if want is not None and len(want) != data.shape[0]:
            raise ShapeError(
                f"{src}: {data.shape[0]} rows but {len(want)} labels (pass label_column= to "
                f"match rows by name)"
            )
        out_labels = want if want is not None else tuple(f"region_{i}" for i in range(len(data)))
    spec = bands if isinstance(bands, Mapping) else names
    return BandPowers(data, out_labels, spec, src)


__all__ = ["BandPowers", "load_band_powers"]
