"""Region labels: reading a labels argument, repeated labels, and region-name normalisation.

One implementation of each, shared by every reader:

- :func:`label_tuple`: the labels a caller passed (a sequence of names, or anything with a
  ``labels`` attribute such as a connectome), as a tuple of str;
- :func:`check_unique`: repeated labels are an error naming the source, each repeated label
  and its positions;
- :func:`dk_key`: the (hemisphere, Desikan-Killiany name) a region label denotes, whatever its
  spelling (DK-84 abbreviations, Lausanne and FreeSurfer names);
- :func:`match_labels`: where each of a connectome's regions is among a file's labels, exactly
  or by :func:`dk_key`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._errors import ArgumentError, LabelError


def label_tuple(labels: Any, *, what: str = "labels") -> tuple[str, ...] | None:
    """Region labels from a sequence or a connectome-like object (``.labels``); None stays None.

    Raises:
        ArgumentError: ``labels`` is a single str (a common slip for a list of one name).
    """
    if labels is None:
        return None
    if hasattr(labels, "labels"):
        labels = labels.labels
    if isinstance(labels, str):
        raise ArgumentError(
            f"{what} must be a sequence of region names or a connectome, got a str ({labels!r})"
        )
    return tuple(str(s) for s in labels)


def repeated(labels: Sequence[str]) -> dict[str, list[int]]:
    """Each label that occurs more than once, with its 0-based positions, in order of first use."""
    pos: dict[str, list[int]] = {}
    for i, s in enumerate(labels):
        pos.setdefault(str(s), []).append(i)
    return {s: p for s, p in pos.items() if len(p) > 1}


def check_unique(labels: Sequence[str], source: str, *, what: str = "region labels") -> None:
    """Raise :class:`LabelError` naming ``source`` and every repeated label with its positions.

    Args:
        labels: the labels, in file (matrix) order.
        source: the file (or argument) they came from.
        what: how to call them in the message.
    """
    dup = repeated(labels)
    if dup:
        shown = "; ".join(
            f"{s!r} at positions {', '.join(map(str, p))}" for s, p in list(dup.items())[:10]
        )
        more = f" (and {len(dup) - 10} more)" if len(dup) > 10 else ""
        raise LabelError(
            f"{source}: duplicate {what} (each region needs its own name; positions count "
            f"from 0): {shown}{more}"
        )


#: Desikan-Killiany cortical regions: DK-84 abbreviation -> Lausanne/FreeSurfer name.
DK_CORTEX: dict[str, str] = {
    "BSTS": "bankssts",
    "CACG": "caudalanteriorcingulate",
    "CMFG": "caudalmiddlefrontal",
    "CU": "cuneus",
    "EC": "entorhinal",
    "FG": "fusiform",
    "IPG": "inferiorparietal",
    "ITG": "inferiortemporal",
    "ICG": "isthmuscingulate",
    "LOG": "lateraloccipital",
    "LOFG": "lateralorbitofrontal",
    "LG": "lingual",
    "MOFG": "medialorbitofrontal",
    "MTG": "middletemporal",
    "PHIG": "parahippocampal",
    "PaCG": "paracentral",
    "POP": "parsopercularis",
    "POR": "parsorbitalis",
    "PTR": "parstriangularis",
    "PCAL": "pericalcarine",
    "PoCG": "postcentral",
    "PCG": "posteriorcingulate",
    "PrCG": "precentral",
    "PCU": "precuneus",
    "RACG": "rostralanteriorcingulate",
    "RMFG": "rostralmiddlefrontal",
    "SFG": "superiorfrontal",
    "SPG": "superiorparietal",
    "STG": "superiortemporal",
    "SMG": "supramarginal",
    "FP": "frontalpole",
    "TP": "temporalpole",
    "TTG": "transversetemporal",
    "IN": "insula",
}
#: Subcortical regions of DK-84 (and the cerebellum, which the Lausanne maps lack).
DK_SUBCORTEX: dict[str, str] = {
    "TH": "thalamus",
    "CA": "caudate",
    "PU": "putamen",
    "PA": "pallidum",
    "HI": "hippocampus",
    "AM": "amygdala",
    "AC": "accumbens",
    "CER": "cerebellum",
}
_ALIASES = {
    "thalamusproper": "thalamus",
    "accumbensarea": "accumbens",
    "cerebellumcortex": "cerebellum",
}


def _canon_names() -> dict[str, str]:
    out = {}
    for table in (DK_CORTEX, DK_SUBCORTEX):
        for abbr, name in table.items():
            out[abbr.lower()] = name
            out[name] = name
    out.update(_ALIASES)
    return out


_CANON = _canon_names()
_HEMI_PREFIX = re.compile(r"^(?:ctx[-_])?(lh|rh|l|r|left|right)[-_.]", flags=re.IGNORECASE)
_HEMI_SUFFIX = re.compile(r"[-_.](lh|rh|l|r|left|right)$", flags=re.IGNORECASE)


def dk_key(label: str) -> tuple[str, str] | None:
    """The (hemisphere, Desikan-Killiany name) a region label denotes, or None.

    Recognises DK-84 abbreviations with a hemisphere prefix (``"L.BSTS"``, ``"R.PaCG"``), and
    full names with a prefix or suffix (``"lh_bankssts"``, ``"ctx-rh-precuneus"``,
    ``"Left-Thalamus-Proper"``, ``"insula_R"``); case, ``-``, ``_`` and ``.`` in the name are
    ignored.

    Args:
        label: one region name.

    Returns:
        ``("L" | "R", name)`` with ``name`` a key of the DK name tables (e.g. ``"thalamus"``,
        ``"cerebellum"``), or None if the label is not a lateralised DK region.
    """
    s = str(label).strip()
    m = _HEMI_PREFIX.match(s)
    if m:
        hemi, rest = m.group(1), s[m.end() :]
    else:
        m = _HEMI_SUFFIX.search(s)
        if not m:
            return None
        hemi, rest = m.group(1), s[: m.start()]
    name = _CANON.get(re.sub(r"[-_. ]", "", rest).lower())
    if name is None:
        return None
    return ("L" if hemi.lower() in ("l", "lh", "left") else "R"), name


def match_labels(
    source: Sequence[str], target: Sequence[str], *, what: str = "source"
) -> np.ndarray:
    """Index of each target label in ``source`` (-1 where absent).

    Exact string matches are used when every source label is among the targets; otherwise both
    sides are resolved to Desikan-Killiany (hemisphere, name) keys with :func:`dk_key`.

    Args:
        source: labels of the data (e.g. rows of a file).
        target: labels of the connectome.
        what: how to name the source in errors (e.g. a file path).

    Returns:
        (len(target),) int array.

    Raises:
        DataError: duplicate source labels, or source labels matching no target (names them
            and gives the counts).
    """
    source, target = [str(s) for s in source], [str(s) for s in target]
    check_unique(source, what, what="labels")
    if set(source) <= set(target):
        pos = {s: i for i, s in enumerate(source)}
        return np.array([pos.get(t, -1) for t in target])
    tkeys = [dk_key(t) for t in target]
    skeys = [dk_key(s) for s in source]
    pos_k = {k: i for i, k in enumerate(skeys) if k is not None}
    unmatched = [s for s, k in zip(source, skeys) if k is None or k not in set(tkeys)]
    if unmatched:
        raise LabelError(
            f"{what}: {len(unmatched)} of {len(source)} labels match none of the "
            f"{len(target)} connectome regions (exactly or as Desikan-Killiany names): "
            f"{unmatched[:20]}"
        )
    return np.array([pos_k.get(k, -1) if k is not None else -1 for k in tkeys])
