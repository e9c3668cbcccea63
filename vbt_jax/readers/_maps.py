"""Brain maps on a connectome's regions: receptor densities, MEG band power, ENIGMA atrophy.

The shipped maps (``vbt_jax/data/receptors_lausanne``, CC BY-NC-SA 4.0, non-commercial; see its
README) come from Hansen et al. (2022), Nature Neuroscience 25:1569-1581, on the Lausanne
"scale033" parcellation, i.e. the Desikan-Killiany (DK) atlas: 34 cortical regions per
hemisphere, 7 subcortical regions per hemisphere and the brainstem. They are placed on a
connectome by matching region names: DK-84 abbreviations (``"L.BSTS"``, ``"R.TH"``), Lausanne or
FreeSurfer names (``"bankssts"``, ``"ctx-lh-bankssts"``, ``"Left-Thalamus-Proper"``) all resolve to
the same (hemisphere, region) key. Regions without a value (cerebellum; subcortex for cortical
maps) are an error naming them, or NaN with ``allow_missing=True``; the Lausanne brainstem has
no DK-84 region and is dropped.

Everything here is NumPy, run once at the edge; pass ``BrainMap.values`` to a model parameter.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Sequence
from importlib import resources
from typing import Any

import equinox as eqx
import numpy as np

from .._errors import ArgumentError, DataError, DataWarning, LabelError, ShapeError
from .._labels import _CANON, DK_CORTEX, dk_key, label_tuple, match_labels
from ._band_powers import BandPowers

_DATA = ("data", "receptors_lausanne")
_SRC = "vbt_jax/data/receptors_lausanne"


def _labels_of(labels: Any) -> tuple[str, ...]:
    """Labels from a sequence, a Connectome-like object, or None (DK-84)."""
    if labels is None:
        from ._datasets import dk84

        labels = dk84()
    out = label_tuple(labels)
    if not out:
        raise ArgumentError("labels is empty")
    return out


def _target_index(labels: tuple[str, ...], strict: bool) -> list[tuple[str, str] | None]:
    keys = [dk_key(s) for s in labels]
    bad = [s for s, k in zip(labels, keys) if k is None]
    if bad and (strict or len(bad) == len(labels)):
        raise LabelError(
            f"{len(bad)} of {len(labels)} region labels match no Desikan-Killiany region "
            f"(expected e.g. 'L.BSTS', 'lh_bankssts', 'Left-Thalamus-Proper'): {bad[:20]}"
            + ("" if len(bad) < len(labels) else "; nothing matched")
            + ("; pass strict=False to leave them NaN" if len(bad) < len(labels) else "")
        )
    seen: dict[tuple[str, str], str] = {}
    for s, k in zip(labels, keys):
        if k is not None and k in seen:
            raise LabelError(f"labels {seen[k]!r} and {s!r} both denote region {k}")
        if k is not None:
            seen[k] = s
    return keys


class BrainMap(eqx.Module):
    """One value per region of a connectome, NaN where the source has no value.

    Attributes:
        values: (N,) float64 NumPy array in the region order of ``labels``.
        name: what the map shows (e.g. ``"D2"``).
        labels: N region names (static).
        source: provenance and units (static).
    """

    values: Any
    name: str = eqx.field(static=True)
    labels: tuple[str, ...] = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def __init__(self, values: Any, name: str, labels: Sequence[str], source: str = "array"):
        self.values = np.asarray(values, dtype=np.float64)
        self.name = str(name)
        self.labels = tuple(str(s) for s in labels)
        self.source = str(source)

    def __check_init__(self):
        if self.values.ndim != 1 or self.values.shape[0] != len(self.labels):
            raise ShapeError(
                f"BrainMap {self.name!r}: values must be (N,) with N = {len(self.labels)} labels, "
                f"got shape {self.values.shape}"
            )
        if np.isinf(self.values).any():
            i = int(np.flatnonzero(np.isinf(self.values))[0])
            raise DataError(f"BrainMap {self.name!r}: value at {self.labels[i]!r} is infinite")

    @property
    def missing(self) -> np.ndarray:
        """(N,) bool: True where the map has no value (NaN)."""
        return np.isnan(self.values)

    def zscore(self) -> BrainMap:
        """Standardise over the non-missing regions (mean 0, SD 1 with ddof=0); NaN stays NaN.

        Raises:
            DataError: fewer than two values, or all values equal.
        """
        v = self.values[~self.missing]
        if v.size < 2 or np.std(v) == 0:
            raise DataError(
                f"BrainMap {self.name!r}: cannot z-score {v.size} value(s) with SD {np.std(v):g}"
            )
        out = (self.values - v.mean()) / v.std()
        return BrainMap(out, self.name, self.labels, self.source + "; z-scored")

    def fill_missing(self, value: float | str = 0.0) -> BrainMap:
        """Replace NaN by ``value`` (a number, or ``"mean"`` for the mean of the others)."""
        if isinstance(value, str):
            if value != "mean":
                raise ArgumentError(
                    f"fill_missing: value must be a number or 'mean', got {value!r}"
                )
            if self.missing.all():
                raise DataError(f"BrainMap {self.name!r}: every value is missing")
            value = float(np.nanmean(self.values))
        out = np.where(self.missing, float(value), self.values)
        return BrainMap(out, self.name, self.labels, self.source)


# ------------------------------------------------------------------ shipped data


def _res(*parts: str):
    return resources.files("vbt_jax").joinpath(*_DATA, *parts)


def _read_rows(*parts: str) -> np.ndarray:
    text = _res(*parts).read_text(encoding="utf-8")
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def _lausanne_keys() -> list[tuple[str, str] | None]:
    """Keys of the 83 Lausanne scale033 rows (None for the brainstem)."""
    text = _res("lausanne", "region_info_scale033.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    keys = []
    for r in rows:
        name = _CANON.get(r["label"].lower())
        keys.append(None if name is None else (r["hemisphere"], name))
    return keys


def _cortex_rows() -> np.ndarray:
    """Indices (into the 83 Lausanne rows) of the 68 cortical regions, file order."""
    keys = _lausanne_keys()
    cortex = set(DK_CORTEX.values())
    return np.array([i for i, k in enumerate(keys) if k is not None and k[1] in cortex])


def _missing_error(what: str, labels: Sequence[str], missing: np.ndarray, why: str) -> str:
    names = [labels[i] for i in np.flatnonzero(missing)]
    more = f" ... ({len(names)} in all)" if len(names) > 20 else ""
    return (
        f"{what}: no value for {len(names)} of {len(labels)} regions ({why}): {names[:20]}{more}; "
        f"pass allow_missing=True to keep them NaN (then BrainMap.fill_missing(value) fills "
        f"them), or give a map that covers every region"
    )


def _place(
    values: np.ndarray, rows: np.ndarray, labels: Any, strict: bool, what: str, allow_missing: bool
) -> np.ndarray:
    """Put values of Lausanne rows ``rows`` (values[..., k] for row rows[k]) on ``labels``.

    Raises :class:`LabelError` for DK regions the source has no value for, unless
    ``allow_missing`` (labels that are no DK region, accepted by ``strict=False``, stay NaN).
    """
    lk = _lausanne_keys()
    by_key = {lk[r]: k for k, r in enumerate(rows) if lk[r] is not None}
    out = np.full((len(labels),) + values.shape[1:], np.nan)
    keys = _target_index(labels, strict)
    for i, key in enumerate(keys):
        if key in by_key:
            out[i] = values[by_key[key]]
    absent = np.array([k is not None and k not in by_key for k in keys])
    if absent.any() and not allow_missing:
        raise LabelError(_missing_error(what, labels, absent, "the source does not cover them"))
    return out


#: Receptor/transporter -> PET studies (file stem, number of healthy subjects) combined for it.
#: The file set and the weighting follow Hansen et al. (2022).
RECEPTOR_TRACERS: dict[str, tuple[tuple[str, int], ...]] = {
    "5HT1a": (("5HT1a_way_hc36_savli", 36),),
    "5HT1b": (("5HT1b_p943_hc22_savli", 22), ("5HT1b_p943_hc65_gallezot", 65)),
    "5HT2a": (("5HT2a_cimbi_hc29_beliveau", 29),),
    "5HT4": (("5HT4_sb20_hc59_beliveau", 59),),
    "5HT6": (("5HT6_gsk_hc30_radhakrishnan", 30),),
    "5HTT": (("5HTT_dasb_hc100_beliveau", 100),),
    "A4B2": (("A4B2_flubatine_hc30_hillmer", 30),),
    "CB1": (("CB1_omar_hc77_normandin", 77),),
    "D1": (("D1_SCH23390_hc13_kaller", 13),),
    "D2": (("D2_flb457_hc37_smith", 37), ("D2_flb457_hc55_sandiego", 55)),
    "DAT": (("DAT_fpcit_hc174_dukart_spect", 174),),
    "GABAa": (("GABAa-bz_flumazenil_hc16_norgaard", 16),),
    "H3": (("H3_cban_hc8_gallezot", 8),),
    "M1": (("M1_lsn_hc24_naganawa", 24),),
    "mGluR5": (
        ("mGluR5_abp_hc22_rosaneto", 22),
        ("mGluR5_abp_hc28_dubois", 28),
        ("mGluR5_abp_hc73_smart", 73),
    ),
    "MOR": (("MU_carfentanil_hc204_kantonen", 204),),
    "NET": (("NAT_MRB_hc77_ding", 77),),
    "NMDA": (("NMDA_ge179_hc29_galovic", 29),),
    "VAChT": (
        ("VAChT_feobv_hc3_spreng", 3),
        ("VAChT_feobv_hc4_tuominen", 4),
        ("VAChT_feobv_hc5_bedard_sum", 5),
        ("VAChT_feobv_hc18_aghourian_sum", 18),
    ),
}


def _lookup(name: str, valid: Sequence[str], what: str) -> str:
    by_lower = {v.lower(): v for v in valid}
    key = str(name).lower()
    if key not in by_lower:
        raise ArgumentError(f"unknown {what} {name!r}; valid names: {', '.join(valid)}")
    return by_lower[key]


def receptor_density(name: str) -> np.ndarray:
    """A receptor's density on the 83 Lausanne scale033 regions (region_info row order).

    One PET study: its values as published (units of that study, e.g. BP_ND). Several studies of
    the same tracer: each is standardised with its own cortical mean and SD (ddof=0) and the
    standardised maps are averaged with weights equal to their numbers of subjects, as in Hansen
    et al. (2022). The same affine map is applied to a study's subcortical values, so cortex and
    subcortex share one normalisation.

    Args:
        name: a key of :data:`RECEPTOR_TRACERS` (case-insensitive).

    Returns:
        (83,) float64, brainstem last.

    Raises:
        DataError: unknown name (lists the valid ones).
    """
    name = _lookup(name, list(RECEPTOR_TRACERS), "receptor")
    studies = RECEPTOR_TRACERS[name]
    ctx = _cortex_rows()
    maps = [_read_rows("PET_parcellated", "scale033", f"{stem}.csv").ravel() for stem, _ in studies]
    if len(maps) == 1:
        return maps[0]
    weights = np.array([n for _, n in studies], dtype=np.float64)
    z = [(m - m[ctx].mean()) / m[ctx].std() for m in maps]
    return np.tensordot(weights, np.stack(z), axes=1) / weights.sum()


def receptor_map(
    name: str, labels: Any = None, *, strict: bool = True, allow_missing: bool = False
) -> BrainMap:
    """Receptor or transporter density (PET, Hansen et al. 2022) on a connectome's regions.

    Cortex and subcortex (thalamus, caudate, putamen, pallidum, accumbens, hippocampus,
    amygdala) come from the per-study PET files (see :func:`receptor_density` for how studies of
    one tracer are combined); the cerebellum and any non-DK region are NaN. In the cortex this
    equals Hansen's ``receptor_data_scale033.csv`` column exactly for 18 of the 19 receptors;
    for VAChT the four studies are weighted by their subject counts (3, 4, 5, 18), whereas the
    published column weights them (3, 4, 1, 1) / 30 (correlation 0.99 between the two).

    Args:
        name: one of ``5HT1a 5HT1b 5HT2a 5HT4 5HT6 5HTT A4B2 CB1 D1 D2 DAT GABAa H3 M1 mGluR5
            MOR NET NMDA VAChT`` (case-insensitive).
        labels: target region names (sequence, or a connectome); None for ``dk84().labels``.
        strict: raise on labels that are not DK regions (else leave them NaN).
        allow_missing: keep regions the PET data do not cover (the cerebellum) as NaN; by
            default they are an error naming them.

    Returns:
        A :class:`BrainMap` in the units of the PET study (one study) or in cortical SD units
        (several studies); z-score it before use as a heterogeneity map.

    Raises:
        ArgumentError: unknown receptor (lists valid names).
        LabelError: labels that match no DK region; regions without a value (names them)
            unless ``allow_missing``.
    """
    labels = _labels_of(labels)
    key = _lookup(name, list(RECEPTOR_TRACERS), "receptor")
    what = f"receptor map {key!r} (Hansen et al. 2022 PET)"
    values = _place(receptor_density(key), np.arange(83), labels, strict, what, allow_missing)
    studies = RECEPTOR_TRACERS[key]
    unit = "study units" if len(studies) == 1 else "cortical-SD units, subject-weighted mean"
    src = (
        f"Hansen et al. 2022 PET ({', '.join(s for s, _ in studies)}; {unit}); "
        f"CC BY-NC-SA 4.0, {_SRC}"
    )
    return BrainMap(values, key, labels, src)


#: Hansen et al. (2022) MEG bands, name -> (lo, hi) Hz.
MEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (2.0, 4.0),
    "theta": (5.0, 7.0),
    "alpha": (8.0, 12.0),
    "beta": (15.0, 29.0),
    "low_gamma": (30.0, 59.0),
    "high_gamma": (60.0, 90.0),
}


def meg_band_power(
    labels: Any = None, *, strict: bool = True, allow_missing: bool = False
) -> BandPowers:
    """Group-average MEG relative band power per cortical region (Hansen et al. 2022).

    Source-level resting MEG of 33 HCP subjects; in each region the six band powers sum to 1
    (relative to their sum). Bands (Hz): delta 2-4, theta 5-7, alpha 8-12, beta 15-29, low
    gamma 30-59, high gamma 60-90.

    Args:
        labels: target region names (sequence, or a connectome); None for ``dk84().labels``.
        strict: raise on labels that are not DK regions (else leave them NaN).
        allow_missing: keep the regions without MEG power (subcortex, cerebellum) as NaN rows;
            by default they are an error naming them.

    Returns:
        A :class:`vbt_jax.BandPowers` with ``values`` (N, 6), NaN rows for subcortex and the
        cerebellum, ``band_names`` and ``bands`` (:data:`MEG_BANDS`).

    Raises:
        LabelError: labels that match no DK region; regions without a value (names them)
            unless ``allow_missing``.
    """
    labels = _labels_of(labels)
    what = "MEG band power (Hansen et al. 2022, cortex only)"
    rows = _read_rows("MEG", "power_scale033.csv")
    values = _place(rows, _cortex_rows(), labels, strict, what, allow_missing)
    src = f"Hansen et al. 2022 MEG relative power (33 HCP subjects); CC BY-NC-SA 4.0, {_SRC}"
    return BandPowers(values, labels, MEG_BANDS, source=src)


#: Columns of enigma_atrophy.csv (ENIGMA case-control cortical thickness, Cohen's d).
ENIGMA_DISORDERS: tuple[str, ...] = (
    "22q",
    "adhd",
    "asd",
    "epilepsy_gge",
    "epilepsy_rtle",
    "epilepsy_ltle",
    "depression",
    "ocd",
    "schizophrenia",
    "bipolar",
    "obesity",
    "schizotypy",
    "park",
)


def enigma_map(
    disorder: str, labels: Any = None, *, strict: bool = True, allow_missing: bool = False
) -> BrainMap:
    """ENIGMA cortical-thickness case-control effect sizes (Cohen's d), cortex only.

    Negative values mean thinner cortex in patients. Subcortex and cerebellum are NaN.

    Args:
        disorder: one of :data:`ENIGMA_DISORDERS` (e.g. ``"schizophrenia"``; ``"park"`` is
            Parkinson's disease), case-insensitive.
        labels: target region names (sequence, or a connectome); None for ``dk84().labels``.
        strict: raise on labels that are not DK regions (else leave them NaN).
        allow_missing: keep the regions without a value (subcortex, cerebellum) as NaN; by
            default they are an error naming them.

    Raises:
        ArgumentError: unknown disorder (lists valid names).
        LabelError: labels that match no DK region; regions without a value (names them)
            unless ``allow_missing``.
    """
    labels = _labels_of(labels)
    key = _lookup(disorder, ENIGMA_DISORDERS, "ENIGMA disorder")
    col = _read_rows("enigma_atrophy.csv")[:, ENIGMA_DISORDERS.index(key)]
    what = f"ENIGMA map {key!r} (cortex only)"
    values = _place(col, _cortex_rows(), labels, strict, what, allow_missing)
    src = f"ENIGMA cortical thickness Cohen's d via Hansen et al. 2022; CC BY-NC-SA 4.0, {_SRC}"
    return BrainMap(values, key, labels, src)


# ------------------------------------------------------------------ user maps


def _read_label_table(path: str, label_column: str, value_column: str):
    delim = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=delim))
    if not rows:
        raise DataError(f"{path}: no data rows (expected a header and one row per region)")
    cols = list(rows[0])
    for col in (label_column, value_column):
        if col not in cols:
            raise DataError(f"{path}: no column {col!r}; columns are {cols}")
    names, vals = [], []
    for k, r in enumerate(rows):
        names.append(str(r[label_column]).strip())
        raw = str(r[value_column]).strip()
        try:
            vals.append(float("nan") if raw.lower() in ("", "n/a", "na", "nan") else float(raw))
        except ValueError:
            raise DataError(
                f"{path}: row {k + 2} ({names[-1]!r}): {value_column!r} = {raw!r} is not a number"
            ) from None
    return names, np.asarray(vals, dtype=np.float64)


def load_map(
    path: str | os.PathLike,
    labels: Any = None,
    *,
    label_column: str = "label",
    value_column: str = "value",
    name: str | None = None,
    allow_missing: bool = False,
    density: bool = False,
) -> BrainMap:
    """Load a user's regional map and place it on a connectome's regions.

    ``.csv``/``.tsv``: a header row, a label column and a value column (a table of several maps,
    e.g. one column per receptor, is read one column at a time by ``value_column``); rows are
    matched to the connectome by label (exactly, or as Desikan-Killiany names, see
    :func:`match_labels`), so row order does not matter, but rows that had to be reordered are
    mentioned with a :class:`~vbt_jax.DataWarning`. Empty cells and ``n/a`` are missing
    values. ``.npy``: a 1-D array already in connectome order.

    Args:
        path: the file.
        labels: target region names (sequence, or a connectome); None for ``dk84().labels``.
        label_column, value_column: column names in a text table.
        name: map name; the file stem if None.
        allow_missing: connectome regions absent from the file, or with an empty/``n/a``/NaN
            value, become NaN (fill them with :meth:`BrainMap.fill_missing`); by default they
            are an error naming them.
        density: the values are densities (receptor binding, cell counts): a negative value is
            an error naming the region and the value.

    Returns:
        A :class:`BrainMap` with ``source`` the path.

    Raises:
        DataError: unreadable file, missing columns, non-numeric or infinite values, NaN values
            (unless ``allow_missing``), a negative value with ``density``.
        LabelError: duplicate labels, file labels matching no connectome region (names them,
            with counts), connectome regions absent from the file (unless ``allow_missing``).
        ShapeError: a .npy of the wrong shape.
    """
    path = os.fspath(path)
    labels = _labels_of(labels)
    name = name or os.path.splitext(os.path.basename(path))[0]
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    ext = os.path.splitext(path)[1].lower()
    absent = np.zeros(len(labels), bool)
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable .npy array ({e})") from e
        if arr.ndim != 1 or arr.shape[0] != len(labels):
            raise ShapeError(
                f"{path}: a .npy map must be (N,) in connectome order with N = {len(labels)}, "
                f"got shape {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
        values = np.asarray(arr, dtype=np.float64)
    elif ext in (".csv", ".tsv"):
        names, vals = _read_label_table(path, label_column, value_column)
        idx = match_labels(names, labels, what=path)
        absent = idx < 0
        values = np.where(absent, np.nan, vals[np.maximum(idx, 0)])
        found = idx[~absent]
        if np.any(np.diff(found) < 0):
            first = int(np.flatnonzero(np.diff(found) < 0)[0]) + 1
            i = int(np.flatnonzero(~absent)[first])
            warnings.warn(
                f"{path}: rows are not in the connectome's region order; they were reordered "
                f"by label (e.g. {labels[i]!r}, region {i}, is row {int(idx[i]) + 2} of the "
                f"file)",
                DataWarning,
                stacklevel=2,
            )
    else:
        raise DataError(f"{path}: unsupported extension {ext!r}; expected .csv, .tsv or .npy")
    if np.isinf(values).any():
        i = int(np.flatnonzero(np.isinf(values))[0])
        raise DataError(f"{path}: value for {labels[i]!r} is infinite")
    if not allow_missing:
        if absent.any():
            raise LabelError(_missing_error(path, labels, absent, "absent from the file"))
        nan = np.isnan(values)
        if nan.any():
            raise DataError(_missing_error(path, labels, nan, "empty, n/a or NaN in the file"))
    if density:
        neg = np.flatnonzero(values < 0)
        if neg.size:
            i = int(neg[0])
            raise DataError(
                f"{path}: densities must be >= 0, but region {labels[i]!r} (region {i}) has "
                f"{values[i]:g}; {neg.size} negative value(s) in all"
            )
    return BrainMap(values, name, labels, path)


def node_strength_map(connectome: Any, log: bool = True) -> BrainMap:
    """Node strength ``s_i = sum_j W_ij`` (incoming weights) of a connectome.

    Args:
        connectome: a :class:`vbt_jax.Connectome` (anything with ``weights`` and ``labels``).
        log: natural log of the strength; regions with zero strength are then NaN (missing).
            After z-scoring, a log map does not depend on the weights' overall scale.

    Returns:
        A :class:`BrainMap` named ``"log_strength"`` or ``"strength"``.
    """
    w = np.asarray(connectome.weights, dtype=np.float64)
    s = w.sum(axis=1)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(s > 0, np.log(np.where(s > 0, s, 1.0)), np.nan)
    cname = getattr(connectome, "name", "connectome")
    return BrainMap(
        s,
        "log_strength" if log else "strength",
        connectome.labels,
        f"node strength (row sums) of connectome '{cname}'",
    )


__all__ = [
    "BrainMap",
    "ENIGMA_DISORDERS",
    "MEG_BANDS",
    "RECEPTOR_TRACERS",
    "enigma_map",
    "load_map",
    "meg_band_power",
    "node_strength_map",
    "receptor_density",
    "receptor_map",
]
