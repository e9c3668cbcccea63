"""TVB data: connectivity zips (tvb-data's ``connectivity_*.zip`` layout), the connectomes
tvb-data ships and the EEG gain of its default subject."""

from __future__ import annotations

import bz2
import importlib.resources
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .._connectome import Connectome, _warn_unusual, validate
from .._errors import ConnectomeError, DataWarning
from .._labels import check_unique
from .._leadfield import region_gain_from_vertices
from ._table import PathLike, _parse_matrix_text

_TVB_SIZES = (66, 68, 76, 96, 192)


# ------------------------------------------------------------------ connectivity zips


def _tvb_member_key(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".bz2"):
        base = base[: -len(".bz2")]
    stem = base.rsplit(".", 1)[0].lower()
    if stem == "weights":
        return "weights"
    if stem in ("tract_lengths", "tract", "tracts"):
        return "lengths"
    if stem in ("centres", "centers"):
        return "centres"
    return None


def _parse_tvb_centres(text: str, source: str) -> tuple[tuple[str, ...], np.ndarray]:
    labels, xyz = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        # connectivity_66 carries a fifth column ("None"); extra columns are ignored.
        if len(tokens) < 4:
            raise ConnectomeError(
                f"{source}: line {lineno} should be 'label x y z', got {line.strip()!r}"
            )
        try:
            xyz.append([float(t) for t in tokens[1:4]])
        except ValueError as e:
            raise ConnectomeError(f"{source}: line {lineno}: bad coordinate ({e})") from e
        labels.append(tokens[0])
    check_unique(labels, source)
    return tuple(labels), np.asarray(xyz, dtype=np.float64).reshape(-1, 3)


def load_tvb_zip(path: PathLike, *, allow_isolated: bool = False) -> Connectome:
    """Load a TVB connectivity zip (tvb-data's ``connectivity_*.zip`` layout).

    Reads ``weights.txt``, ``tract_lengths.txt`` and (optionally) ``centres.txt`` (label then
    x y z per line; extra columns are ignored). Members may sit in a subfolder and may be
    ``.bz2``-compressed. Without ``centres.txt`` the labels are ``region_0``... and centres None.

    Args:
        path: the zip file.
        allow_isolated: accept regions without connections (needed for tvb-data's
            connectivity_76 and connectivity_192, which contain zero-weight corpus callosum rows).

    Returns:
        A float64 NumPy-backed Connectome named after the zip's stem.

    Raises:
        ConnectomeError: unreadable zip, missing or duplicated members, parse errors, or any
            :func:`validate` failure; the message names the zip (and the member).
    """
    path = Path(path)
    if not path.is_file():
        raise ConnectomeError(f"{path}: file not found")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConnectomeError(f"{path}: not a readable zip file ({e})") from e
    with zf:
        members: dict[str, str] = {}
        for name in zf.namelist():
            if name.endswith("/") or name.startswith("__MACOSX/"):
                continue
            key = _tvb_member_key(name)
            if key is None:
                continue
            if key in members:
                raise ConnectomeError(
                    f"{path}: ambiguous members {members[key]!r} and {name!r} for {key}"
                )
            members[key] = name
        for key, expected in (("weights", "weights.txt"), ("lengths", "tract_lengths.txt")):
            if key not in members:
                raise ConnectomeError(
                    f"{path}: no {expected} member (found {sorted(zf.namelist())})"
                )

        def text(key: str) -> str:
            name = members[key]
            raw = zf.read(name)
            if name.endswith(".bz2"):
                try:
                    raw = bz2.decompress(raw)
                except OSError as e:
                    raise ConnectomeError(f"{path}:{name}: bad bz2 data ({e})") from e
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConnectomeError(f"{path}:{name}: not UTF-8 text ({e})") from e

        weights = _parse_matrix_text(text("weights"), f"{path}:{members['weights']}")
        lengths = _parse_matrix_text(text("lengths"), f"{path}:{members['lengths']}")
        labels, centres = None, None
        if "centres" in members:
            labels, centres = _parse_tvb_centres(text("centres"), f"{path}:{members['centres']}")
    validate(weights, lengths, labels, source=str(path), allow_isolated=allow_isolated)
    _warn_unusual(weights, str(path))
    if centres is not None and centres.shape[0] != weights.shape[0]:
        raise ConnectomeError(
            f"{path}: centres has {centres.shape[0]} rows for {weights.shape[0]} regions"
        )
    return Connectome(weights, lengths, labels, centres, name=path.stem)


def tvb_connectivity(n_regions: int, *, allow_isolated: bool = True) -> Connectome:
    """Load tvb-data's ``connectivity_{n_regions}.zip`` (66, 68, 76, 96 or 192 regions).

    Isolated regions are allowed by default here because connectivity_76 and connectivity_192
    contain them (corpus callosum placeholders with no connections).

    Raises:
        ImportError: the optional ``tvb-data`` package is not installed.
        ConnectomeError: ``n_regions`` is not one of the shipped sizes.
    """
    if n_regions not in _TVB_SIZES:
        raise ConnectomeError(
            f"tvb_connectivity(n_regions): tvb-data ships {_TVB_SIZES}, got {n_regions!r}"
        )
    try:
        import tvb_data
    except ImportError as e:
        raise ImportError(
            "tvb_connectivity() needs the optional 'tvb-data' package; install it with "
            "`pip install vbt_jax[bench]` or `pip install vbt_jax[dev]` (or `pip install tvb-data`)"
        ) from e
    path = Path(tvb_data.__file__).parent / "connectivity" / f"connectivity_{n_regions}.zip"
    with warnings.catch_warnings():
        # TVB's own connectomes carry self-connections by design: no DataWarning for them
        warnings.simplefilter("ignore", DataWarning)
        return load_tvb_zip(path, allow_isolated=allow_isolated)


# ------------------------------------------------------------------ EEG gain

_TVB_PROJECTION = ("projectionMatrix", "projection_eeg_62_surface_16k.mat")
_TVB_MAPPING = ("regionMapping", "regionMapping_16k_76.txt")
_TVB_SENSORS = ("sensors", "eeg_unitvector_62.txt.bz2")


def load_tvb_eeg_gain() -> tuple[np.ndarray, tuple[str, ...]]:
    """The 62-channel EEG region gain of tvb-data's default subject (76 regions).

    Reads from the installed ``tvb_data`` package: ``projectionMatrix/
    projection_eeg_62_surface_16k.mat`` (variable ``ProjectionMatrix``, 62 x 16384),
    ``regionMapping/regionMapping_16k_76.txt`` (16384 region indices, matching
    ``connectivity_76``) and the labels of ``sensors/eeg_unitvector_62.txt.bz2``, and sums the
    projection over each region's vertices (:func:`region_gain_from_vertices`). The result has
    rank 62 (rank 61 after average reference).

    Returns:
        ``(gain, labels)``: ``gain`` float64 of shape ``(62, 76)`` and the 62 sensor labels
        (``"Fp1"``, ``"Fp2"``, ...) in the row order of ``gain``.

    Raises:
        ImportError: if tvb-data is not installed.
        ConnectomeError: if the files do not have the expected shapes.
    """
    try:
        root = importlib.resources.files("tvb_data")
    except ModuleNotFoundError as err:
        raise ImportError(
            "load_tvb_eeg_gain needs the tvb-data package (pip install tvb-data)"
        ) from err
    import scipy.io

    with importlib.resources.as_file(root.joinpath(*_TVB_PROJECTION)) as path:
        mat = scipy.io.loadmat(path)
    if "ProjectionMatrix" not in mat:
        raise ConnectomeError(
            f"{'/'.join(_TVB_PROJECTION)} has no variable 'ProjectionMatrix' "
            f"(found {[k for k in mat if not k.startswith('__')]})"
        )
    projection = mat["ProjectionMatrix"]
    with root.joinpath(*_TVB_MAPPING).open("r") as fh:
        rmap = np.loadtxt(fh)
    with root.joinpath(*_TVB_SENSORS).open("rb") as fh:
        text = bz2.decompress(fh.read()).decode()
    labels = tuple(line.split()[0] for line in text.splitlines() if line.strip())
    if len(labels) != projection.shape[0]:
        raise ConnectomeError(
            f"{'/'.join(_TVB_SENSORS)} lists {len(labels)} sensors but "
            f"{'/'.join(_TVB_PROJECTION)} has {projection.shape[0]} rows"
        )
    gain = region_gain_from_vertices(projection, rmap, 76)
    return gain, labels


__all__ = ["load_tvb_eeg_gain", "load_tvb_zip", "tvb_connectivity"]
