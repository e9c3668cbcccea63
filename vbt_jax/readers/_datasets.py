"""Datasets shipped with vbt_jax (read from package data, never downloaded).

``dk84``: the group-average Human Connectome Project connectome on the Desikan-Killiany atlas
with 84 regions, published with Schirner et al. (2023), Nature Communications 14:2792,
doi:10.1038/s41467-023-38626-y, in the BIDS-connectivity form redistributed by tvbo/tvboptim
(CC-BY-4.0; see ``vbt_jax/data/dk84_hcp/README.md``).
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np

from .._connectome import Connectome, validate
from ._bids import _parse_nodeindices, _relmat_from_texts

_DK84 = ("data", "dk84_hcp")
_PREFIX = "atlas-DesikanKilliany"


def _resource(name: str):
    return resources.files("vbt_jax").joinpath(*_DK84, name)


def _read_relmat(measure: str) -> np.ndarray:
    stem = f"{_PREFIX}_meas-{measure}_relmat"
    mat_res = _resource(stem + ".dense.tsv")
    side_res = _resource(stem + ".json")
    mat, _, _ = _relmat_from_texts(
        mat_res.read_text(encoding="utf-8"),
        side_res.read_text(encoding="utf-8"),
        source=f"vbt_jax/data/dk84_hcp/{stem}.dense.tsv",
        sidecar_source=f"vbt_jax/data/dk84_hcp/{stem}.json",
    )
    return mat


def dk84() -> Connectome:
    """The shipped HCP group connectome on the Desikan-Killiany atlas (84 regions).

    Weights are the symmetric (normalised) streamline counts in arbitrary units (up to ~2e5,
    zero diagonal): normalise them before use (e.g. ``dk84().normalised("log")``). Lengths are
    mean tract lengths in mm. Labels (``L.BSTS``, ..., ``R.CER``) come from the node-indices
    file; no centres are shipped.

    Returns:
        A float64 NumPy-backed :class:`Connectome` named ``"dk84_hcp"``.
    """
    weights = _read_relmat("streamlineCount")
    lengths = _read_relmat("tractLength")
    nodes = f"{_PREFIX}_nodeindices.tsv"
    labels = _parse_nodeindices(
        _resource(nodes).read_text(encoding="utf-8"),
        weights.shape[0],
        f"vbt_jax/data/dk84_hcp/{nodes}",
    )
    validate(weights, lengths, labels, source="vbt_jax/data/dk84_hcp")
    return Connectome(weights, lengths, labels, None, name="dk84_hcp")


def dk84_empirical_fc() -> np.ndarray:
    """Empirical resting-state functional connectivity matching :func:`dk84`.

    Returns:
        (84, 84) float64 array of Pearson correlations between regional BOLD time series, in the
        region order of ``dk84().labels``. The file's diagonal is 0, not 1.
    """
    return _read_relmat("BoldCorrelation")


def dk84_fcd_reference() -> tuple[np.ndarray, np.ndarray]:
    """A typical empirical FCD value distribution for this atlas (qualitative reference).

    The sliding-window parameters that produced it were not recorded, so compare shapes of
    distributions, not exact values.

    Returns:
        ``(edges, hist)``: (101,) bin edges and (100,) histogram values, float64.
    """
    raw = _resource("fcd_reference_histogram.npz").read_bytes()
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        return np.asarray(data["edges"]), np.asarray(data["hist"])


__all__ = ["dk84", "dk84_empirical_fc", "dk84_fcd_reference"]
