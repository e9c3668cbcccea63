"""Brain maps on DK-84: label mapping, receptor densities, MEG power, ENIGMA, user maps."""

import csv
from importlib import resources

import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax import ArgumentError, DataError, LabelError, ShapeError
from vbt_jax._labels import DK_CORTEX, dk_key, match_labels
from vbt_jax.readers import (
    ENIGMA_DISORDERS,
    RECEPTOR_TRACERS,
    enigma_map,
    load_map,
    meg_band_power,
    node_strength_map,
    receptor_density,
    receptor_map,
)

DATA = resources.files("vbt_jax").joinpath("data", "receptors_lausanne")


def _region_info():
    with DATA.joinpath("lausanne", "region_info_scale033.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _text(*parts):
    return DATA.joinpath(*parts).read_text(encoding="utf-8")


def _table(*parts):
    return np.array(
        [[float(x) for x in ln.split(",")] for ln in _text(*parts).splitlines() if ln.strip()]
    )


@pytest.fixture(scope="module")
def dk84_labels():
    return vbt.dk84().labels


def test_dk84_labels_map_one_to_one_onto_lausanne(dk84_labels):
    info = _region_info()
    lausanne_keys = [(r["hemisphere"], dk_key(f"{r['hemisphere']}.{r['label']}")) for r in info]
    lausanne_keys = [k[1] for k in lausanne_keys]
    cortex_rows = [i for i, r in enumerate(info) if r["structure"] == "cortex"]
    assert len(cortex_rows) == 68
    # every cortical DK-84 label -> exactly one Lausanne cortical row, and every row is hit once
    hits = {}
    for lab in dk84_labels:
        if lab[2:] not in DK_CORTEX:
            continue
        rows = [i for i in cortex_rows if lausanne_keys[i] == dk_key(lab)]
        assert len(rows) == 1, lab
        # hemisphere and full name agree with the region table
        assert info[rows[0]]["hemisphere"] == lab[0]
        assert info[rows[0]]["label"] == DK_CORTEX[lab[2:]]
        hits[rows[0]] = lab
    assert sorted(hits) == cortex_rows
    # subcortex: 14 DK-84 regions match a Lausanne row; CER and brainstem match nothing
    sub = [lab for lab in dk84_labels if lab[2:] not in DK_CORTEX]
    for lab in sub:
        n = sum(k == dk_key(lab) for k in lausanne_keys)
        assert n == (0 if lab.endswith("CER") else 1), lab
    assert info[-1]["label"] == "brainstem" and lausanne_keys[-1] is None


@pytest.mark.parametrize(
    "label, key",
    [
        ("L.BSTS", ("L", "bankssts")),
        ("R.PaCG", ("R", "paracentral")),
        ("R.PCG", ("R", "posteriorcingulate")),
        ("ctx-lh-precuneus", ("L", "precuneus")),
        ("Left-Thalamus-Proper", ("L", "thalamus")),
        ("rh_accumbensarea", ("R", "accumbens")),
        ("insula_R", ("R", "insula")),
        ("R.CER", ("R", "cerebellum")),
        ("rA1", None),
        ("brainstem", None),
    ],
)
def test_dk_key_variants(label, key):
    assert dk_key(label) == key


def test_receptor_cortex_reproduces_hansen_table():
    """Cortex of the per-study combination vs Hansen's published receptor_data_scale033."""
    published = _table("receptor_data_scale033.csv")
    names = list(np.load(DATA.joinpath("receptor_names_pet.npy"), allow_pickle=False))
    assert names == list(RECEPTOR_TRACERS)
    cortex = [i for i, r in enumerate(_region_info()) if r["structure"] == "cortex"]
    for k, name in enumerate(names):
        ours = receptor_density(name)[cortex]
        r = np.corrcoef(ours, published[:, k])[0, 1]
        assert r > 0.95, (name, r)
        if name != "VAChT":  # published VAChT uses weights (3, 4, 1, 1)/30, see docstring
            np.testing.assert_allclose(ours, published[:, k], rtol=1e-12, atol=1e-12)


def test_receptor_subcortex_single_study_is_the_file(dk84_labels):
    m = receptor_map("5HT1a", allow_missing=True)
    raw = _table("PET_parcellated", "scale033", "5HT1a_way_hc36_savli.csv").ravel()
    info = _region_info()
    for i, r in enumerate(info[:-1]):
        lab = ("L." if r["hemisphere"] == "L" else "R.") + next(
            a
            for a, n in {
                **DK_CORTEX,
                "TH": "thalamusproper",
                "CA": "caudate",
                "PU": "putamen",
                "PA": "pallidum",
                "HI": "hippocampus",
                "AM": "amygdala",
                "AC": "accumbensarea",
            }.items()
            if n == r["label"]
        )
        assert m.values[dk84_labels.index(lab)] == raw[i], lab
    assert list(np.flatnonzero(m.missing)) == [
        dk84_labels.index("L.CER"),
        dk84_labels.index("R.CER"),
    ]


def test_d2_highest_in_striatum(dk84_labels):
    m = receptor_map("d2", allow_missing=True)  # case-insensitive
    v = m.values
    assert m.labels[int(np.nanargmax(v))] in ("L.PU", "R.PU")
    striatum = [dk84_labels.index(f"{h}.{s}") for h in "LR" for s in ("CA", "PU")]
    others = [
        i
        for i, lab in enumerate(dk84_labels)
        if lab[2:] in DK_CORTEX or lab[2:] in ("TH", "HI", "AM")
    ]
    assert v[striatum].min() > np.nanmax(v[others])


def test_meg_band_power_sums_to_one(dk84_labels):
    bp = meg_band_power(allow_missing=True)
    assert bp.band_names == ("delta", "theta", "alpha", "beta", "low_gamma", "high_gamma")
    assert bp.bands == ((2, 4), (5, 7), (8, 12), (15, 29), (30, 59), (60, 90))
    ok = ~bp.missing
    assert ok.sum() == 68
    assert all(dk84_labels[i][2:] not in DK_CORTEX for i in np.flatnonzero(~ok))
    # the file stores relative power (fractions of the six-band sum): rows sum to 1 up to
    # its 15-digit printing
    np.testing.assert_allclose(bp.values[ok].sum(axis=1), 1.0, atol=1e-12)
    # placement: L.BSTS carries the left bankssts row of the file
    info = _region_info()
    cortex = [i for i, r in enumerate(info) if r["structure"] == "cortex"]
    row = cortex.index(
        next(i for i, r in enumerate(info) if r["label"] == "bankssts" and r["hemisphere"] == "L")
    )
    np.testing.assert_array_equal(
        bp.values[dk84_labels.index("L.BSTS")], _table("MEG", "power_scale033.csv")[row]
    )


def test_enigma_map_values_and_missing(dk84_labels):
    m = enigma_map("Schizophrenia", allow_missing=True)
    assert m.missing.sum() == 16
    col = _table("enigma_atrophy.csv")[:, ENIGMA_DISORDERS.index("schizophrenia")]
    assert np.nanmean(m.values) == pytest.approx(col.mean(), rel=1e-12)
    # schizophrenia thins the cortex on average (negative Cohen's d)
    assert np.nanmean(m.values) < 0


def test_zscore_and_fill_missing():
    m = receptor_map("NMDA", allow_missing=True)
    z = m.zscore()
    assert np.nanmean(z.values) == pytest.approx(0.0, abs=1e-12)
    assert np.nanstd(z.values) == pytest.approx(1.0, rel=1e-12)
    assert np.array_equal(z.missing, m.missing)
    f = z.fill_missing("mean")
    assert not f.missing.any() and f.values[m.missing] == pytest.approx(0.0, abs=1e-12)
    assert (z.fill_missing(-1.0).values[m.missing] == -1.0).all()


def test_unknown_names_list_valid_ones():
    with pytest.raises(ArgumentError, match="5HT2a.*NMDA"):
        receptor_map("serotonin")
    with pytest.raises(ArgumentError, match="schizophrenia"):
        enigma_map("flu")


def test_labels_matching_nothing_are_named():
    tvb = vbt.tvb_connectivity(76)
    with pytest.raises(LabelError, match="rA1"):
        receptor_map("D2", tvb)
    labels = list(vbt.dk84().labels) + ["Brain-Stem"]
    with pytest.raises(LabelError, match="Brain-Stem"):
        receptor_map("D2", labels)
    assert np.isnan(receptor_map("D2", labels, strict=False, allow_missing=True).values[-1])


def test_load_map_permuted_roundtrip(tmp_path, dk84_labels):
    rng = np.random.default_rng(0)
    vals = rng.normal(size=84)
    perm = rng.permutation(84)
    # exact labels, permuted rows
    p = tmp_path / "map.csv"
    p.write_text("label,value\n" + "".join(f"{dk84_labels[i]},{float(vals[i])!r}\n" for i in perm))
    with pytest.warns(vbt.DataWarning, match=r"map.csv: rows are not in the connectome's region "
                      r"order; they were reordered by label"):  # fmt: skip
        np.testing.assert_array_equal(load_map(p).values, vals)
    # FreeSurfer-style names in a TSV, cortex only: subcortex becomes NaN
    names = {
        lab: ("lh_" if lab[0] == "L" else "rh_") + DK_CORTEX[lab[2:]]
        for lab in dk84_labels
        if lab[2:] in DK_CORTEX
    }
    q = tmp_path / "map.tsv"
    q.write_text(
        "name\tthickness\n"
        + "".join(
            f"{names[dk84_labels[i]]}\t{float(vals[i])!r}\n"
            for i in perm
            if dk84_labels[i] in names
        )
    )
    with pytest.warns(vbt.DataWarning, match="reordered by label"):
        m = load_map(q, label_column="name", value_column="thickness", allow_missing=True)
    cortical = np.array([lab in names for lab in dk84_labels])
    np.testing.assert_array_equal(m.values[cortical], vals[cortical])
    assert m.missing.sum() == 16 and not m.missing[cortical].any()
    # .npy in connectome order
    r = tmp_path / "map.npy"
    np.save(r, vals)
    np.testing.assert_array_equal(load_map(r).values, vals)


def test_load_map_errors_name_file_and_labels(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("label,value\nL.BSTS,1\nfoo,2\nbar,3\n")
    with pytest.raises(LabelError, match=r"bad\.csv.*2 of 3 labels.*'foo', 'bar'"):
        load_map(p)
    p.write_text("region,value\nL.BSTS,1\n")
    with pytest.raises(DataError, match=r"bad\.csv: no column 'label'"):
        load_map(p)
    p.write_text("label,value\nL.BSTS,abc\n")
    with pytest.raises(DataError, match=r"bad\.csv: row 2 \('L.BSTS'\)"):
        load_map(p)
    p.write_text("label,value\nL.BSTS,1\nL.BSTS,2\n")
    with pytest.raises(LabelError, match="duplicate"):
        load_map(p)
    q = tmp_path / "short.npy"
    np.save(q, np.ones(10))
    with pytest.raises(ShapeError, match=r"short\.npy.*N = 84.*\(10,\)"):
        load_map(q)


def test_match_labels_falls_back_to_dk_names():
    idx = match_labels(["ctx-rh-cuneus", "Left-Putamen"], ["L.PU", "R.CU", "R.CER"])
    assert list(idx) == [1, 0, -1]


def test_node_strength_map():
    conn = vbt.dk84()
    m = node_strength_map(conn)
    np.testing.assert_allclose(m.values, np.log(np.asarray(conn.weights).sum(axis=1)))
    # after z-scoring, the log map does not depend on the weights' scale
    m2 = node_strength_map(conn.normalised("max"))
    np.testing.assert_allclose(m.zscore().values, m2.zscore().values, atol=1e-12)


def test_shipped_files_match_readme_checksums():
    import hashlib

    lines = [ln.split() for ln in _text("README.md").splitlines()]
    sums = {ln[1]: ln[0] for ln in lines if len(ln) == 2 and len(ln[0]) == 64}
    assert len(sums) == 32  # 26 PET studies + 5 tables + LICENSE.md
    for name, digest in sums.items():
        data = DATA.joinpath(*name.split("/")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_one_label_reader_for_every_caller(tmp_path):
    """Maps, observations and interventions read a labels argument with one function: the forms
    each accepted before (a sequence, a connectome, None, numbers as str) still give the same
    tuple, and a lone str is refused by all of them."""
    from vbt_jax._labels import check_unique, label_tuple, repeated
    from vbt_jax.interventions import Drug, Occupancy
    from vbt_jax.readers import load_fc_matrix

    conn = vbt.dk84()
    fc = tmp_path / "fc.npy"
    np.save(fc, np.eye(2))
    assert label_tuple(None) is None
    assert label_tuple(conn) == conn.labels
    assert label_tuple(["a", 3, "c"]) == ("a", "3", "c")
    assert label_tuple(np.array(["L.BSTS", "R.BSTS"])) == ("L.BSTS", "R.BSTS")
    for call in (
        lambda: receptor_map("D2", "L.BSTS"),
        lambda: load_fc_matrix(fc, labels="L.BSTS"),
        lambda: Drug("d", np.ones(84), "a", 1.0, Occupancy(1.0)).regional_density("L.BSTS"),
    ):
        with pytest.raises(ArgumentError, match=r"must be a sequence of region names or a "
                           r"connectome, got a str \('L.BSTS'\)"):  # fmt: skip
            call()
    # the maps' default stays DK-84 and the region-name normaliser is the same function
    assert receptor_map("D2", allow_missing=True).labels == conn.labels
    assert vbt.dk_key is dk_key and dk_key("ctx-lh-bankssts") == dk_key("L.BSTS")
    assert repeated(["a", "b", "a", "c", "b", "a"]) == {"a": [0, 2, 5], "b": [1, 4]}
    with pytest.raises(LabelError, match=r"f.csv: duplicate labels .*'a' at positions 0, 2, 5; "
                       r"'b' at positions 1, 4$"):  # fmt: skip
        check_unique(["a", "b", "a", "c", "b", "a"], "f.csv", what="labels")


def test_maps_missing_regions_are_named_unless_allowed(tmp_path, dk84_labels):
    with pytest.raises(LabelError, match=r"receptor map 'D2' .*no value for 2 of 84 regions \(the "
                       r"source does not cover them\): \['L.CER', 'R.CER'\]; pass "
                       r"allow_missing=True"):  # fmt: skip
        receptor_map("D2")
    with pytest.raises(LabelError, match=r"ENIGMA map 'adhd' .*no value for 16 of 84 regions.*"
                       r"'L.TH'"):  # fmt: skip
        enigma_map("adhd")
    with pytest.raises(LabelError, match=r"MEG band power .*no value for 16 of 84 regions"):
        meg_band_power()
    # a file without two regions, and one with an n/a value
    p = tmp_path / "m.csv"
    p.write_text("label,value\n" + "".join(f"{lab},{k}\n" for k, lab in enumerate(dk84_labels[2:])))
    with pytest.raises(LabelError, match=r"m.csv: no value for 2 of 84 regions \(absent from the "
                       r"file\): \['L.BSTS', 'L.CACG'\]"):  # fmt: skip
        load_map(p)
    m = load_map(p, allow_missing=True)
    assert list(np.flatnonzero(m.missing)) == [0, 1] and m.values[2] == 0.0
    assert m.zscore().fill_missing(0.0).values[:2].tolist() == [0.0, 0.0]
    cells = ["n/a" if lab == "R.TH" else str(k) for k, lab in enumerate(dk84_labels)]
    p.write_text("label,value\n" + "".join(f"{lab},{c}\n" for lab, c in zip(dk84_labels, cells)))
    with pytest.raises(DataError, match=r"m.csv: no value for 1 of 84 regions \(empty, n/a or "
                       r"NaN in the file\): \['R.TH'\]"):  # fmt: skip
        load_map(p)


def test_map_file_densities_and_named_value_column(tmp_path, dk84_labels):
    rng = np.random.default_rng(3)
    d2, ht = rng.uniform(1, 2, 84), rng.uniform(1, 2, 84)
    ht[40] = -0.25
    p = tmp_path / "receptors.tsv"
    p.write_text("region\tD2\t5HT2a\n" + "".join(
        f"{lab}\t{float(d2[k])!r}\t{float(ht[k])!r}\n" for k, lab in enumerate(dk84_labels)
    ))  # fmt: skip
    m = load_map(p, label_column="region", value_column="D2", density=True)
    np.testing.assert_array_equal(m.values, d2)
    assert m.name == "receptors"
    with pytest.raises(DataError, match=rf"receptors.tsv: densities must be >= 0, but region "
                       rf"'{dk84_labels[40]}' \(region 40\) has -0.25; 1 negative"):  # fmt: skip
        load_map(p, label_column="region", value_column="5HT2a", density=True)
    # not declared a density (e.g. z-scores): negative values are fine
    assert load_map(p, label_column="region", value_column="5HT2a").values[40] == -0.25
    with pytest.raises(DataError, match=r"no column 'NMDA'; columns are \['region', 'D2', "):
        load_map(p, label_column="region", value_column="NMDA")
