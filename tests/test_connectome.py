"""Connectome container, validation, loaders and the shipped dk84 dataset.

References: hand-computed matrices, direct NumPy/zipfile reads of the files, TVB's own
``Connectivity`` reader (when tvb-library is installed) and the facts in FIELD-NOTES / the
dataset README.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbt_jax._connectome import Connectome, validate
from vbt_jax._errors import ConnectomeError, LabelError
from vbt_jax.readers import (
    dk84,
    dk84_empirical_fc,
    dk84_fcd_reference,
    load_bids_relmat,
    load_connectome,
    load_matrix,
    load_tvb_zip,
    tvb_connectivity,
)

DK84_DIR = Path(__file__).resolve().parents[1] / "vbt_jax" / "data" / "dk84_hcp"
PREFIX = "atlas-DesikanKilliany"
TVB_SHAPES = {"connectivity_66": 66, "connectivity_68": 68, "connectivity_76": 76,
              "connectivity_96": 96, "connectivity_192": 192, "paupau": 4}  # fmt: skip


def _tvb_zip_dir() -> Path:
    tvb_data = pytest.importorskip("tvb_data")
    return Path(tvb_data.__file__).parent / "connectivity"


def _read_zip_member(path: Path, stem: str) -> str:
    """Independent reader: find ``stem``(.txt|.txt.bz2) anywhere in the zip, return its text."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if re.search(rf"(^|/){stem}\.txt(\.bz2)?$", n)]
        assert len(names) == 1, names
        raw = zf.read(names[0])
    return (bz2.decompress(raw) if names[0].endswith(".bz2") else raw).decode()


def _np_matrix(path: Path, stem: str) -> np.ndarray:
    return np.loadtxt(_read_zip_member(path, stem).splitlines())


def _ring(n: int = 4) -> np.ndarray:
    w = np.zeros((n, n))
    for i in range(n):
        w[i, (i + 1) % n] = 1.0
    return w


# --------------------------------------------------------------------------- validation


def test_validate_rejects_non_2d():
    with pytest.raises(ConnectomeError, match=r"weights must be a 2-D .* shape \(3,\)"):
        validate(np.ones(3), np.ones(3), source="w.npy")


def test_validate_rejects_non_square():
    with pytest.raises(ConnectomeError, match=r"^w.npy: weights must be square .*\(3, 4\)"):
        validate(np.ones((3, 4)), np.ones((3, 4)), source="w.npy")


def test_validate_rejects_shape_mismatch():
    with pytest.raises(ConnectomeError, match=r"lengths shape \(4, 4\) does not match .*\(3, 3\)"):
        validate(np.ones((3, 3)), np.ones((4, 4)))


@pytest.mark.parametrize("field", ["weights", "lengths"])
def test_validate_reports_non_finite_count_and_first_index(field):
    good = _ring(4)
    bad = good.copy()
    bad[1, 2] = np.nan
    bad[3, 0] = np.inf
    args = (bad, good) if field == "weights" else (good, bad)
    with pytest.raises(ConnectomeError, match=rf"2 non-finite .* first at {field}\[1, 2\] = nan"):
        validate(*args, source="x.csv")


@pytest.mark.parametrize("field", ["weights", "lengths"])
def test_validate_reports_first_negative(field):
    good = _ring(4)
    bad = good.copy()
    bad[0, 2] = -0.5
    bad[2, 3] = -1.0
    args = (bad, good) if field == "weights" else (good, bad)
    with pytest.raises(ConnectomeError, match=rf"{field} must be non-negative, found 2 .* "
                       rf"{field}\[0, 2\] = -0.5"):  # fmt: skip
        validate(*args)


def test_validate_names_isolated_region_and_allows_opt_in():
    w = _ring(4)
    w[:, 2] = 0.0
    w[2, :] = 0.0
    w[0, 3] = 1.0  # keep the others connected
    w[2, 2] = 5.0  # a self-loop does not connect a region to the network
    labels = ("A", "B", "C", "D")
    with pytest.raises(ConnectomeError, match=r"region 2 \('C'\) has no connections"):
        validate(w, np.zeros_like(w), labels)
    validate(w, np.zeros_like(w), labels, allow_isolated=True)
    w[1, 2] = 0.1  # an incoming connection alone is enough
    validate(w, np.zeros_like(w), labels)


def test_validate_labels_count():
    with pytest.raises(ConnectomeError, match=r"got 3 labels for 4 regions"):
        validate(_ring(4), np.zeros((4, 4)), ["a", "b", "c"])


def test_zero_length_with_weight_is_allowed():
    w = _ring(3)
    validate(w, np.zeros_like(w))
    assert Connectome(w).delay_steps(3.0, 0.1).max() == 0


def test_check_init_rejects_bad_fields():
    w = _ring(3)
    with pytest.raises(ConnectomeError, match=r"got 2 labels for 3 regions"):
        Connectome(w, labels=("a", "b"))
    with pytest.raises(ConnectomeError, match=r"centres must be \(3, 3\), got shape \(3, 2\)"):
        Connectome(w, centres=np.zeros((3, 2)))
    with pytest.raises(ConnectomeError, match=r"lengths shape \(2, 2\) does not match"):
        Connectome(w, np.zeros((2, 2)))
    with pytest.raises(ConnectomeError, match=r"weights\[0, 1\] = -1.0"):
        Connectome(-w)
    with pytest.raises(ConnectomeError, match=r"weights must be \(N, N\)"):
        Connectome(np.ones(3))


def test_connectome_survives_jit_vmap_and_grad():
    w = _ring(4) * 2.0
    conn = Connectome(w, np.full((4, 4), 10.0))

    @jax.jit
    def total(c):
        return c.normalised("rowsum").weights.sum()

    assert float(total(conn)) == pytest.approx(4.0, abs=1e-6)
    # Built from tracers inside vmap (value checks must be skipped, shape checks still hold).
    ws = jnp.stack([jnp.asarray(w), 3.0 * jnp.asarray(w)])
    maxes = jax.vmap(lambda wi: Connectome(wi, conn.lengths).normalised("max").weights.max())(ws)
    np.testing.assert_allclose(np.asarray(maxes), [1.0, 1.0], atol=1e-6)
    # Batched leaves outside vmap, vmapped with eqx.filter_vmap.
    batched = Connectome(np.stack([w, 3.0 * w]), np.full((4, 4), 10.0))
    sums = eqx.filter_vmap(lambda c: c.weights.sum(), in_axes=eqx.if_array(0))(
        eqx.tree_at(lambda c: c.lengths, batched, np.full((2, 4, 4), 10.0))
    )
    np.testing.assert_allclose(np.asarray(sums), [8.0, 24.0])
    g = jax.grad(lambda c: (c.weights**2).sum())(Connectome(jnp.asarray(w)))
    np.testing.assert_allclose(np.asarray(g.weights), 2.0 * w)


# --------------------------------------------------------------------------- transformations


W_HAND = np.array([[0.0, 2.0, 0.0], [4.0, 0.0, 0.0], [1.0, 3.0, 0.0]])


def test_normalised_max_log_rowsum_by_hand():
    c = Connectome(W_HAND)
    np.testing.assert_array_equal(c.normalised("max").weights, W_HAND / 4.0)
    log_expected = np.array(
        [[0.0, np.log(3.0), 0.0], [np.log(5.0), 0.0, 0.0], [np.log(2.0), np.log(4.0), 0.0]]
    ) / np.log(5.0)
    np.testing.assert_allclose(c.normalised("log").weights, log_expected, rtol=1e-15)
    np.testing.assert_array_equal(
        c.normalised("rowsum").weights, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.25, 0.75, 0.0]]
    )
    # A row with zero sum stays zero (no NaN).
    w0 = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(
        Connectome(w0).normalised("rowsum").weights,
        [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]],
    )
    assert c.normalised(None) is c
    np.testing.assert_array_equal(c.normalised("max").lengths, c.lengths)
    with pytest.raises(ConnectomeError, match=r"normalised\(mode\).*'sum'"):
        c.normalised("sum")


@pytest.mark.parametrize("mode", ["max", "log", "rowsum"])
def test_normalised_jax_matches_numpy_and_batches(mode):
    ref = Connectome(W_HAND).normalised(mode).weights
    got = jax.jit(lambda c: c.normalised(mode).weights)(Connectome(jnp.asarray(W_HAND)))
    # float32 on the JAX side: a few ulps of 1.0.
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6, atol=1e-7)
    batched = Connectome(np.stack([W_HAND, 10.0 * W_HAND])).normalised(mode).weights
    np.testing.assert_array_equal(batched[0], ref)
    np.testing.assert_allclose(batched[1], Connectome(10.0 * W_HAND).normalised(mode).weights)


def test_without_diagonal_and_symmetrised_by_hand():
    w = np.array([[1.0, 2.0], [6.0, 3.0]])
    ln = np.array([[0.0, 10.0], [30.0, 0.0]])
    c = Connectome(w, ln)
    np.testing.assert_array_equal(c.without_diagonal().weights, [[0.0, 2.0], [6.0, 0.0]])
    np.testing.assert_array_equal(c.without_diagonal().lengths, ln)
    s = c.symmetrised()
    np.testing.assert_array_equal(s.weights, [[1.0, 4.0], [4.0, 3.0]])
    np.testing.assert_array_equal(s.lengths, [[0.0, 20.0], [20.0, 0.0]])
    assert s.labels == c.labels and s.name == c.name


# --------------------------------------------------------------------------- delays


def test_delay_steps_match_tvb_order_of_division():
    path = _tvb_zip_dir() / "connectivity_66.zip"
    lengths = _np_matrix(path, "tract_lengths")
    got = load_tvb_zip(path).delay_steps(3.0, 0.1)
    tvb_order = np.rint(lengths / 3.0 / 0.1)
    other_order = np.rint(lengths / (3.0 * 0.1))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, tvb_order)
    # The trap: at dt 0.1 ms the other order flips several .5 ties (8 entries at 3 mm/ms).
    assert int((got != other_order).sum()) == 8


def test_delay_steps_equal_tvb_idelays():
    pytest.importorskip("tvb")
    from tvb.datatypes.connectivity import Connectivity

    path = _tvb_zip_dir() / "connectivity_66.zip"
    ref = Connectivity.from_file(str(path))
    ref.speed = np.array([3.0])
    ref.configure()
    ref.set_idelays(0.1)
    np.testing.assert_array_equal(load_tvb_zip(path).delay_steps(3.0, 0.1), ref.idelays)


@pytest.mark.parametrize("speed,dt,arg", [(0.0, 0.1, "speed"), (-3.0, 0.1, "speed"),
                                          (3.0, 0.0, "dt_ms"), (3.0, np.nan, "dt_ms")])  # fmt: skip
def test_delay_steps_rejects_bad_speed_and_dt(speed, dt, arg):
    with pytest.raises(ConnectomeError, match=rf"delay_steps: {arg}.*> 0"):
        Connectome(_ring(3)).delay_steps(speed, dt)


def test_delay_steps_refuses_tracers():
    with pytest.raises(ConnectomeError, match="outside jit"):
        jax.jit(lambda c: c.delay_steps(3.0, 0.1).sum())(Connectome(_ring(3)))


# --------------------------------------------------------------------------- TVB zips


def test_every_tvb_zip_matches_direct_numpy_read():
    zdir = _tvb_zip_dir()
    zips = sorted(zdir.glob("*.zip"))
    assert {z.stem for z in zips} >= set(TVB_SHAPES) - {"paupau"}
    for path in zips:
        c = load_tvb_zip(path, allow_isolated=True)
        w, ln = _np_matrix(path, "weights"), _np_matrix(path, "tract_lengths")
        if path.stem in TVB_SHAPES:
            assert c.n_regions == TVB_SHAPES[path.stem]
        np.testing.assert_array_equal(c.weights, w)
        np.testing.assert_array_equal(c.lengths, ln)
        rows = [r.split() for r in _read_zip_member(path, "centres").splitlines() if r.strip()]
        assert c.labels == tuple(r[0] for r in rows)
        np.testing.assert_array_equal(c.centres, [[float(x) for x in r[1:4]] for r in rows])
        assert c.name == path.stem


def test_connectivity_76_facts():
    path = _tvb_zip_dir() / "connectivity_76.zip"
    c = load_tvb_zip(path, allow_isolated=True)
    w, ln = _np_matrix(path, "weights"), _np_matrix(path, "tract_lengths")
    assert int(np.count_nonzero(c.weights)) == int(np.count_nonzero(w)) == 1560
    diag_w, diag_l = np.diag(c.weights), np.diag(c.lengths)
    assert int(np.count_nonzero(diag_w)) == 66
    assert np.all(diag_l[diag_w != 0] == 0.0)  # 66 self-connections of length 0
    np.testing.assert_array_equal(diag_l, np.diag(ln))
    values, counts = np.unique(diag_w, return_counts=True)
    assert values[np.argmax(counts)] == 2.0
    assert not np.array_equal(c.weights, c.weights.T)  # directed
    # Two corpus callosum placeholders have no connections: rejected unless allowed.
    with pytest.raises(ConnectomeError, match=r"connectivity_76.zip: region 37 \('rCC'\)"):
        load_tvb_zip(path)
    assert c.labels[75] == "lCC"


def test_tvb_zip_labels_and_centres_match_tvb_reader():
    pytest.importorskip("tvb")
    from tvb.datatypes.connectivity import Connectivity

    for stem in ("connectivity_66", "connectivity_68", "connectivity_192"):
        path = _tvb_zip_dir() / f"{stem}.zip"
        ref = Connectivity.from_file(str(path))
        c = load_tvb_zip(path, allow_isolated=True)
        np.testing.assert_array_equal(c.weights, ref.weights)
        np.testing.assert_array_equal(c.lengths, ref.tract_lengths)
        assert c.labels == tuple(str(s) for s in ref.region_labels)
        np.testing.assert_array_equal(c.centres, ref.centres)


def test_tvb_connectivity_convenience(monkeypatch):
    pytest.importorskip("tvb_data")
    c = tvb_connectivity(68)
    assert c.n_regions == 68 and c.name == "connectivity_68"
    with pytest.raises(ConnectomeError, match=r"tvb-data ships .* got 77"):
        tvb_connectivity(77)
    monkeypatch.setitem(sys.modules, "tvb_data", None)  # makes `import tvb_data` fail
    with pytest.raises(ImportError, match=r"bench"):
        tvb_connectivity(76)


def _write_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_tvb_zip_errors_name_the_file(tmp_path):
    w = "0 1\n1 0\n"
    bad = _write_zip(tmp_path / "nolen.zip", {"sub/weights.txt": w})
    with pytest.raises(ConnectomeError, match=r"nolen.zip: no tract_lengths.txt member"):
        load_tvb_zip(bad)
    neg = _write_zip(
        tmp_path / "neg.zip",
        {"weights.txt": w, "tract_lengths.txt": "0 -2\n2 0\n", "centres.txt": "a 0 0 0\nb 1 1 1\n"},
    )
    with pytest.raises(ConnectomeError, match=r"neg.zip: lengths .* lengths\[0, 1\] = -2.0"):
        load_tvb_zip(neg)
    ragged = _write_zip(tmp_path / "ragged.zip", {"weights.txt": "0 1\n1\n", "tract.txt": w})
    with pytest.raises(ConnectomeError, match=r"ragged.zip:weights.txt: rows have different"):
        load_tvb_zip(ragged)
    few = _write_zip(
        tmp_path / "few.zip",
        {"weights.txt": w, "tract_lengths.txt": w, "centres.txt": "a 0 0 0\nb 1 1 1\nc 2 2 2\n"},
    )
    with pytest.raises(ConnectomeError, match=r"few.zip: got 3 labels for 2 regions"):
        load_tvb_zip(few)
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(ConnectomeError, match=r"junk.zip: not a readable zip"):
        load_tvb_zip(tmp_path / "junk.zip")


def test_tvb_zip_with_bz2_members_in_subfolder(tmp_path):
    members = {"w": "0 2\n3 0\n", "l": "0 10\n12.5 0\n", "c": "x 1 2 3 None\ny 4 5 6 None\n"}
    path = tmp_path / "mini.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mini/weights.txt.bz2", bz2.compress(members["w"].encode()))
        zf.writestr("mini/tract_lengths.txt.bz2", bz2.compress(members["l"].encode()))
        zf.writestr("mini/centres.txt", members["c"])
    c = load_connectome(path)
    np.testing.assert_array_equal(c.weights, [[0, 2], [3, 0]])
    np.testing.assert_array_equal(c.lengths, [[0, 10], [12.5, 0]])
    assert c.labels == ("x", "y")
    np.testing.assert_array_equal(c.centres, [[1, 2, 3], [4, 5, 6]])


# --------------------------------------------------------------------------- BIDS / dk84


def _np_tsv(name: str) -> np.ndarray:
    return np.loadtxt(DK84_DIR / name, delimiter="\t")


def _node_labels() -> tuple[str, ...]:
    with open(DK84_DIR / f"{PREFIX}_nodeindices.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return tuple(r["label"] for r in sorted(rows, key=lambda r: int(r["matrix_index"])))


def test_bids_loader_equals_direct_tsv_read():
    w = _np_tsv(f"{PREFIX}_meas-streamlineCount_relmat.dense.tsv")
    ln = _np_tsv(f"{PREFIX}_meas-tractLength_relmat.dense.tsv")
    for c in (
        load_bids_relmat(DK84_DIR),
        load_connectome(DK84_DIR),
        load_connectome(DK84_DIR / f"{PREFIX}_meas-streamlineCount_relmat.dense.tsv"),
        dk84(),
    ):
        np.testing.assert_array_equal(c.weights, w)
        np.testing.assert_array_equal(c.lengths, ln)
        assert c.labels == _node_labels()
        assert c.centres is None
    no_len = load_bids_relmat(DK84_DIR, lengths_measure=None)
    np.testing.assert_array_equal(no_len.lengths, np.zeros((84, 84)))
    # FC has negative correlations: not usable as weights, and the loader says so.
    with pytest.raises(ConnectomeError, match=r"BoldCorrelation_relmat.dense.tsv: weights must"):
        load_bids_relmat(DK84_DIR, weights_measure="BoldCorrelation", lengths_measure=None)
    np.testing.assert_array_equal(
        dk84_empirical_fc(), _np_tsv(f"{PREFIX}_meas-BoldCorrelation_relmat.dense.tsv")
    )


def test_dk84_facts_from_readme():
    c = dk84()
    fc = dk84_empirical_fc()
    assert c.n_regions == 84 and fc.shape == (84, 84)
    assert c.labels[0] == "L.BSTS" and c.labels[-1] == "R.CER"
    np.testing.assert_array_equal(c.weights, c.weights.T)
    np.testing.assert_array_equal(fc, fc.T)
    assert 1.9e5 < c.weights.max() < 2.2e5 and 200.0 < c.lengths.max() < 230.0  # "~2e5", "~224"
    iu = np.triu_indices(84, k=1)
    r = np.corrcoef(np.log1p(c.weights[iu]), fc[iu])[0, 1]
    # README states 0.46 (two decimals, so +-0.005 rounding); 0.01 leaves room for that only.
    assert abs(r - 0.46) < 0.01
    mean_off = fc[~np.eye(84, dtype=bool)].mean()
    assert abs(mean_off - 0.23) < 0.005  # README: "mean off-diagonal 0.23"
    edges, hist = dk84_fcd_reference()
    assert edges.shape == (101,) and hist.shape == (100,)
    assert np.all(np.diff(edges) > 0) and np.all(hist >= 0) and hist.sum() > 0


def test_shipped_files_are_unchanged():
    readme = (DK84_DIR / "README.md").read_text()
    listed = dict(
        (m.group(2), m.group(1)) for m in re.finditer(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    shipped = {p.name for p in DK84_DIR.iterdir()} - {"README.md"}
    assert set(listed) == shipped and len(shipped) == 9
    for name, digest in listed.items():
        assert hashlib.sha256((DK84_DIR / name).read_bytes()).hexdigest() == digest, name


def _copy_dk84(tmp_path: Path) -> Path:
    dst = tmp_path / "bids"
    shutil.copytree(DK84_DIR, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def test_bids_errors_name_the_file(tmp_path):
    d = _copy_dk84(tmp_path)
    side = d / f"{PREFIX}_meas-streamlineCount_relmat.json"
    meta = json.loads(side.read_text())
    meta["Axes"][1]["Size"] = 90
    side.write_text(json.dumps(meta))
    with pytest.raises(ConnectomeError, match=r"streamlineCount_relmat.json: Axes\[1\] .*Size 90"):
        load_bids_relmat(d)

    d = _copy_dk84(tmp_path / "b")
    (d / f"{PREFIX}_meas-tractLength_relmat.dense.tsv").unlink()
    with pytest.raises(ConnectomeError, match=r"tractLength_relmat.dense.tsv: lengths file not"):
        load_bids_relmat(d)
    with pytest.raises(ConnectomeError, match=r"no files match .*meas-fooCount.*'streamlineCount'"):
        load_bids_relmat(d, weights_measure="fooCount")

    d = _copy_dk84(tmp_path / "c")
    nodes = d / f"{PREFIX}_nodeindices.tsv"
    nodes.write_text("\n".join(nodes.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ConnectomeError, match=r"nodeindices.tsv: 83 nodes listed for a 84 x 84"):
        load_bids_relmat(d)

    d = _copy_dk84(tmp_path / "d")
    wfile = d / f"{PREFIX}_meas-streamlineCount_relmat.dense.tsv"
    rows = wfile.read_text().splitlines()
    cells = rows[5].split("\t")
    cells[7] = "n/a"
    rows[5] = "\t".join(cells)
    wfile.write_text("\n".join(rows) + "\n")
    with pytest.raises(ConnectomeError, match=r"streamlineCount_relmat.dense.tsv: weights .*"
                       r"weights\[5, 7\] = nan"):  # fmt: skip
        load_bids_relmat(d)


# --------------------------------------------------------------------------- plain matrices


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".tsv", ".txt"])
def test_load_matrix_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    w = rng.random((5, 5)) * 1e3
    ln = rng.random((5, 5)) * 150.0
    labels = ["a", "b", "c", "d", "e"]
    paths = []
    for name, arr in (("w", w), ("l", ln)):
        p = tmp_path / f"{name}{suffix}"
        if suffix == ".npy":
            np.save(p, arr)
        else:
            delim = {".csv": ",", ".tsv": "\t", ".txt": " "}[suffix]
            np.savetxt(p, arr, delimiter=delim, fmt="%.17g")  # repr precision: exact round trip
        paths.append(p)
    c = load_matrix(paths[0], paths[1], labels)
    np.testing.assert_array_equal(c.weights, w)
    np.testing.assert_array_equal(c.lengths, ln)
    assert c.labels == tuple(labels) and c.name == "w"
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    assert load_matrix(paths[0], labels=tmp_path / "labels.txt").labels == tuple(labels)
    c2 = load_connectome(paths[0])
    np.testing.assert_array_equal(c2.weights, w)
    np.testing.assert_array_equal(c2.lengths, np.zeros((5, 5)))  # no lengths: no delays


def test_load_matrix_errors_name_the_file(tmp_path):
    p = tmp_path / "sc.csv"
    p.write_text("0,1,2\n1,0,nan\n2,1,0\n")
    with pytest.raises(ConnectomeError, match=r"sc.csv: weights contain 1 non-finite .*\[1, 2\]"):
        load_matrix(p)
    p.write_text("a,b,c\n0,1,2\n1,0,1\n2,1,0\n")
    with pytest.raises(ConnectomeError, match=r"sc.csv: line 1 is not a row of numbers"):
        load_matrix(p)
    np.save(tmp_path / "rect.npy", np.ones((2, 3)))
    with pytest.raises(ConnectomeError, match=r"rect.npy: weights must be square .*\(2, 3\)"):
        load_matrix(tmp_path / "rect.npy")
    with pytest.raises(ConnectomeError, match=r"missing.npy: file not found"):
        load_matrix(tmp_path / "missing.npy")
    (tmp_path / "sc.mat").write_bytes(b"")
    with pytest.raises(ConnectomeError, match=r"sc.mat: cannot tell the connectome format"):
        load_connectome(tmp_path / "sc.mat")
    with pytest.raises(ConnectomeError, match=r"nothere.zip: no such file"):
        load_connectome(tmp_path / "nothere.zip")


def test_summary_reports_counts():
    s = Connectome(W_HAND, name="hand").summary()
    assert s.startswith("Connectome 'hand': 3 regions, 4 non-zero weights (44.4 %)")
    assert "directed" in s


def test_bids_valid_diagonal_false_and_node_order(tmp_path):
    side = {
        "ValidDiagonal": False,
        "Axes": [{"Name": "row", "Size": 3, "NodeFile": "atlas-T_nodeindices.tsv"},
                 {"Name": "column", "Size": 3, "NodeFile": "atlas-T_nodeindices.tsv"}],
    }  # fmt: skip
    (tmp_path / "atlas-T_meas-sc_relmat.dense.tsv").write_text("n/a\t1\t2\n1\t7\t0\n2\t0\tn/a\n")
    (tmp_path / "atlas-T_meas-sc_relmat.json").write_text(json.dumps(side))
    (tmp_path / "atlas-T_meas-len_relmat.dense.tsv").write_text("0\t10\t20\n10\t0\t30\n20\t30\t0\n")
    (tmp_path / "atlas-T_nodeindices.tsv").write_text("matrix_index\tlabel\n2\tcc\n0\taa\n1\tbb\n")
    c = load_bids_relmat(tmp_path, weights_measure="sc", lengths_measure="len")
    # The diagonal is declared invalid (n/a and 7 here): read as 0.
    np.testing.assert_array_equal(c.weights, [[0, 1, 2], [1, 0, 0], [2, 0, 0]])
    np.testing.assert_array_equal(c.lengths, [[0, 10, 20], [10, 0, 30], [20, 30, 0]])
    assert c.labels == ("aa", "bb", "cc") and c.name == "atlas-T"
    side["ValidDiagonal"] = True
    (tmp_path / "atlas-T_meas-sc_relmat.json").write_text(json.dumps(side))
    with pytest.raises(ConnectomeError, match=r"sc_relmat.dense.tsv: weights contain 2 non-finite"):
        load_bids_relmat(tmp_path, weights_measure="sc", lengths_measure="len")


# --------------------------------------------------------------------------- bad input, named


def test_duplicate_labels_name_the_file_labels_and_positions(tmp_path):
    w = "0 1 1\n1 0 1\n1 1 0\n"
    z = _write_zip(
        tmp_path / "dup.zip",
        {"weights.txt": w, "tract_lengths.txt": w, "centres.txt": "A 0 0 0\nB 1 1 1\nA 2 2 2\n"},
    )
    with pytest.raises(LabelError, match=r"dup.zip:centres.txt: duplicate region labels .*'A' "
                       r"at positions 0, 2$"):  # fmt: skip
        load_tvb_zip(z)
    d = _copy_dk84(tmp_path / "bids")
    nodes = d / f"{PREFIX}_nodeindices.tsv"
    rows = nodes.read_text().splitlines()
    header = rows[0].split("\t")
    cells = rows[3].split("\t")  # matrix index 2 gets the label of index 0
    cells[header.index("label")] = rows[1].split("\t")[header.index("label")]
    rows[3] = "\t".join(cells)
    nodes.write_text("\n".join(rows) + "\n")
    first = rows[1].split("\t")[header.index("label")]
    with pytest.raises(LabelError, match=rf"nodeindices.tsv: duplicate region labels .*"
                       rf"'{re.escape(first)}' at positions 0, 2"):  # fmt: skip
        load_bids_relmat(d)
    with pytest.raises(LabelError, match=r"<array>: duplicate region labels .*'x' at positions "
                       r"0, 1; 'y' at positions 2, 3"):  # fmt: skip
        validate(np.ones((4, 4)), np.ones((4, 4)), ["x", "x", "y", "y"])


def test_values_beyond_float32_are_named_with_the_largest(tmp_path):
    w = _ring(4)
    w[2, 3] = 1e300
    np.save(tmp_path / "w.npy", w)
    msg = r"w.npy: weights hold 1 value\(s\) beyond float32's range \(3.403e\+38\); the largest is "
    with pytest.raises(ConnectomeError, match=msg + r"weights\[2, 3\] = 1e\+300"):
        load_matrix(tmp_path / "w.npy")
    ln = _ring(4) * 10.0
    ln[0, 1], ln[1, 2] = 1e40, 2e40
    np.savetxt(tmp_path / "l.csv", ln, delimiter=",")
    np.save(tmp_path / "ok.npy", _ring(4))
    with pytest.raises(ConnectomeError, match=r"l.csv: lengths hold 2 value\(s\) .* largest is "
                       r"lengths\[1, 2\] = 2e\+40"):  # fmt: skip
        load_matrix(tmp_path / "ok.npy", tmp_path / "l.csv")
    with pytest.raises(ConnectomeError, match=r"Connectome 'big': weights hold .*= 1e\+300"):
        Connectome(w, name="big")
    # the largest float32 itself is accepted
    ok = _ring(4) * float(np.finfo(np.float32).max)
    validate(ok, np.zeros((4, 4)))


def test_one_region_is_not_a_network(tmp_path):
    np.save(tmp_path / "one.npy", np.ones((1, 1)))
    with pytest.raises(ConnectomeError, match=r"one.npy: a network needs at least 2 regions, got "
                       r"1 \(weights shape \(1, 1\)\)"):  # fmt: skip
        load_matrix(tmp_path / "one.npy")
    with pytest.raises(ConnectomeError, match="a network needs at least 2 regions, got 1"):
        load_matrix(tmp_path / "one.npy", allow_isolated=True)


def test_unusual_but_legitimate_connectomes_warn(tmp_path):
    import warnings

    from vbt_jax import DataWarning

    w = _ring(4) + _ring(4).T
    w[1, 1], w[3, 3] = 0.5, 2.0
    np.save(tmp_path / "selfw.npy", w)
    with pytest.warns(DataWarning, match=r"selfw.npy: 2 of 4 self-connections are non-zero "
                      r"\(largest weights\[3, 3\] = 2\); they are used as given"):  # fmt: skip
        c = load_matrix(tmp_path / "selfw.npy")
    assert c.weights[3, 3] == 2.0  # used as given
    # a BIDS relmat declared undirected whose weights are not symmetric
    side = {"Directed": False, "ValidDiagonal": False,
            "Axes": [{"Name": "row", "Size": 3}, {"Name": "column", "Size": 3}]}  # fmt: skip
    (tmp_path / "atlas-T_meas-sc_relmat.dense.tsv").write_text("0\t1\t2\n1\t0\t5\n2\t3\t0\n")
    (tmp_path / "atlas-T_meas-sc_relmat.json").write_text(json.dumps(side))
    with pytest.warns(DataWarning, match=r"sc_relmat.dense.tsv: declared undirected \(\"Directed"
                      r"\": false\) but the weights are not symmetric: weights\[1, 2\] = 5 vs "
                      r"weights\[2, 1\] = 3; used as given"):  # fmt: skip
        c = load_bids_relmat(tmp_path, weights_measure="sc", lengths_measure=None)
    assert c.weights[1, 2] == 5.0 and c.weights[2, 1] == 3.0
    side["Directed"] = True  # directed: asymmetry is expected, no warning
    (tmp_path / "atlas-T_meas-sc_relmat.json").write_text(json.dumps(side))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_bids_relmat(tmp_path, weights_measure="sc", lengths_measure=None)
        load_bids_relmat(DK84_DIR)  # the shipped data: zero diagonal, symmetric
        dk84()
        if _tvb_zip_dir().is_dir():  # TVB's connectomes have self-connections by design
            assert np.count_nonzero(np.diag(tvb_connectivity(76).weights)) == 66
