"""Observed data loaders: FC matrices, sensor time series, band powers, lead-field checks."""

import json
from importlib import resources

import numpy as np
import pytest

import vbt_jax as vbt
from vbt_jax import ArgumentError, DataError, ShapeError
from vbt_jax.readers import (
    BandPowers,
    SensorTimeSeries,
    check_gain,
    load_band_powers,
    load_fc_matrix,
    load_sensor_timeseries,
    meg_band_power,
    sensor_band_powers,
)


def _fc(n=6, seed=0):
    x = np.random.default_rng(seed).normal(size=(200, n))
    return np.corrcoef(x.T)


def _write(path, mat, header=None, delim=","):
    lines = [] if header is None else [delim.join(header)]
    lines += [delim.join(repr(float(v)) for v in row) for row in mat]
    path.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------ FC


def test_fc_roundtrip_formats(tmp_path):
    fc = _fc()
    np.save(tmp_path / "fc.npy", fc)
    a = load_fc_matrix(tmp_path / "fc.npy", n_timepoints=200)
    # np.corrcoef is symmetric only up to rounding; the loader symmetrises exactly
    np.testing.assert_allclose(a.fc, fc, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(a.fc, a.fc.T)
    assert a.labels[0] == "region_0" and a.fisher_z_sd == pytest.approx(1 / np.sqrt(197))
    names = [f"r{i}" for i in range(6)]
    _write(tmp_path / "fc.csv", fc, header=names)
    b = load_fc_matrix(tmp_path / "fc.csv")
    np.testing.assert_allclose(b.fc, fc, rtol=0, atol=1e-15)
    assert b.labels == tuple(names) and b.n_timepoints is None
    # NaN or all-zero diagonal -> 1
    d = fc.copy()
    np.fill_diagonal(d, np.nan)
    _write(tmp_path / "nan.tsv", d, delim="\t")
    assert (np.diag(load_fc_matrix(tmp_path / "nan.tsv").fc) == 1).all()


def test_fc_bids_relmat_with_sidecar(tmp_path):
    fc = _fc(4)
    np.fill_diagonal(fc, 0.0)
    stem = "atlas-X_meas-BoldCorrelation_relmat"
    _write(tmp_path / f"{stem}.dense.tsv", fc, delim="\t")
    (tmp_path / f"{stem}.json").write_text(
        json.dumps(
            {
                "ValidDiagonal": False,
                "Axes": [
                    {"Size": 4, "NodeFile": "nodes.tsv"},
                    {"Size": 4, "NodeFile": "nodes.tsv"},
                ],
            }
        )
    )
    (tmp_path / "nodes.tsv").write_text(
        "matrix_index\tlabel\n" + "".join(f"{i}\tn{i}\n" for i in range(4))
    )
    o = load_fc_matrix(tmp_path / f"{stem}.dense.tsv")
    assert o.labels == ("n0", "n1", "n2", "n3")
    assert (np.diag(o.fc) == 1).all()


def test_shipped_dk84_fc_loads():
    path = resources.files("vbt_jax").joinpath(
        "data", "dk84_hcp", "atlas-DesikanKilliany_meas-BoldCorrelation_relmat.dense.tsv"
    )
    with resources.as_file(path) as p:
        o = load_fc_matrix(p, vbt.dk84())
    assert o.labels == vbt.dk84().labels
    off = ~np.eye(84, dtype=bool)
    np.testing.assert_array_equal(o.fc[off], vbt.dk84_empirical_fc()[off])


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda m: m.__setitem__((1, 2), m[1, 2] + 0.01), r"not symmetric.*\[1, 2\]"),
        (lambda m: (m.__setitem__((0, 3), 1.5), m.__setitem__((3, 0), 1.5)), r"\[0, 3\] = 1\.5"),
        (lambda m: (m.__setitem__((2, 4), np.nan), m.__setitem__((4, 2), np.nan)), r"\[2, 4\]"),
        (lambda m: m.__setitem__((5, 5), 0.5), r"diagonal must be 1.*\[5, 5\] = 0\.5"),
    ],
)
def test_fc_errors_name_file_and_index(tmp_path, edit, pattern):
    m = _fc()
    edit(m)
    np.save(tmp_path / "bad.npy", m)
    with pytest.raises(DataError, match=r"bad\.npy.*" + pattern):
        load_fc_matrix(tmp_path / "bad.npy")


def test_fc_shape_and_label_errors(tmp_path):
    np.save(tmp_path / "rect.npy", np.zeros((3, 4)))
    with pytest.raises(ShapeError, match=r"rect\.npy.*square.*\(3, 4\)"):
        load_fc_matrix(tmp_path / "rect.npy")
    np.save(tmp_path / "fc.npy", _fc())
    with pytest.raises(ShapeError, match=r"fc\.npy: 6 regions in the FC but 84 labels"):
        load_fc_matrix(tmp_path / "fc.npy", vbt.dk84())
    with pytest.raises(ArgumentError, match="n_timepoints"):
        load_fc_matrix(tmp_path / "fc.npy", n_timepoints=2)
    with pytest.raises(DataError, match="file not found"):
        load_fc_matrix(tmp_path / "nope.npy")


# ------------------------------------------------------------------ sensors


def _sines(fs, seconds, comps, n_ch=3):
    t = np.arange(int(fs * seconds)) / fs
    sig = sum(a * np.sin(2 * np.pi * f * t + 0.3) for a, f in comps)
    return np.stack([sig * (k + 1) for k in range(n_ch)])  # (M, T)


def test_sensor_band_powers_analytic(tmp_path, x64):
    """A sin(2 pi f t) has power A^2/2; with f on a Welch bin the periodic Hann window leaks
    into the two neighbouring bins only, so the band integral is exact up to rounding."""
    fs = 250.0
    data = _sines(fs, 40.0, [(2.0, 10.0), (1.0, 20.0)])
    np.save(tmp_path / "eeg.npy", data)
    ts = load_sensor_timeseries(tmp_path / "eeg.npy", fs, channels=["a", "b", "c"])
    assert ts.data.shape == (10000, 3) and ts.channels == ("a", "b", "c")
    bands = {"delta": (1.0, 4.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0)}
    bp = sensor_band_powers(ts, bands, relative=False)  # nperseg 1000: bins every 0.25 Hz
    scale = np.array([1.0, 4.0, 9.0])  # channel k carries (k + 1) x the signal
    np.testing.assert_allclose(bp.values[:, 1], 2.0 * scale, rtol=1e-9)
    np.testing.assert_allclose(bp.values[:, 2], 0.5 * scale, rtol=1e-9)
    assert (bp.values[:, 0] < 1e-12 * scale).all()
    rel = sensor_band_powers(ts, bands)
    np.testing.assert_allclose(rel.values.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(rel.values[:, 1], 0.8, rtol=1e-9)


def test_sensor_errors(tmp_path):
    data = _sines(100.0, 4.0, [(1.0, 10.0)])
    np.save(tmp_path / "ok.npy", data)
    for bad in (None, 0, -5.0, float("nan")):
        with pytest.raises(ArgumentError, match=r"ok\.npy.*sfreq"):
            load_sensor_timeseries(tmp_path / "ok.npy", bad)
    d = data.copy()
    d[1, 7] = np.nan
    d[2] = 3.0
    np.save(tmp_path / "bad.npy", d)
    with pytest.raises(DataError, match=r"bad\.npy.*NaN.*'Cz'"):
        load_sensor_timeseries(tmp_path / "bad.npy", 100.0, channels=["Fz", "Cz", "Pz"])
    d[1, 7] = 0.0
    np.save(tmp_path / "bad.npy", d)
    with pytest.raises(DataError, match=r"bad\.npy.*constant.*'Pz'"):
        load_sensor_timeseries(tmp_path / "bad.npy", 100.0, channels=["Fz", "Cz", "Pz"])
    # 400 samples at 100 Hz resolve 0.5 Hz (two cycles) but not 0.4 Hz
    load_sensor_timeseries(tmp_path / "ok.npy", 100.0, min_frequency=0.5)
    with pytest.raises(DataError, match=r"ok\.npy: 400 samples.*need >= 500"):
        load_sensor_timeseries(tmp_path / "ok.npy", 100.0, min_frequency=0.4)
    ts = load_sensor_timeseries(tmp_path / "ok.npy", 100.0)
    with pytest.raises(DataError, match="need >= 800"):
        sensor_band_powers(ts, {"slow": (0.25, 2.0)})
    with pytest.raises(ShapeError, match="3 channel names for 2"):
        SensorTimeSeries(np.zeros((10, 2)), 10.0, ["a", "b", "c"])


def test_check_gain_names_both_sides(tmp_path):
    ts = SensorTimeSeries(np.random.default_rng(1).normal(size=(50, 62)), 250.0, list("x" * 62))
    check_gain(np.zeros((62, 84)), ts, vbt.dk84())
    with pytest.raises(ShapeError, match=r"gain has 64 channels.*array has 62"):
        check_gain(np.zeros((64, 84)), ts)
    with pytest.raises(ShapeError, match=r"gain has 76 regions.*'dk84_hcp' has 84"):
        check_gain(np.zeros((62, 76)), ts, vbt.dk84())


# ------------------------------------------------------------------ band power tables


def test_load_band_powers_by_label(tmp_path):
    meg = meg_band_power(allow_missing=True)
    labels = vbt.dk84().labels
    rows = [i for i in np.random.default_rng(2).permutation(84) if not meg.missing[i]]
    text = "region," + ",".join(meg.band_names) + "\n"
    text += "".join(
        labels[i] + "," + ",".join(repr(float(v)) for v in meg.values[i]) + "\n" for i in rows
    )
    (tmp_path / "bp.csv").write_text(text)
    # regions without a row are an error naming them, unless allowed (then NaN rows)
    absent = [labels[i] for i in np.flatnonzero(meg.missing)]
    with pytest.raises(DataError, match=rf"bp.csv: no row for {len(absent)} of 84 regions: "
                       rf"\['{absent[0]}'.*allow_missing=True"):  # fmt: skip
        load_band_powers(tmp_path / "bp.csv", labels, label_column="region")
    got = load_band_powers(tmp_path / "bp.csv", labels, label_column="region", allow_missing=True)
    np.testing.assert_array_equal(got.values, meg.values)  # NaN rows included
    assert got.band_names == meg.band_names
    sub = load_band_powers(
        tmp_path / "bp.csv", labels, ["alpha"], label_column="region", allow_missing=True
    )
    np.testing.assert_array_equal(sub.values[:, 0], meg.as_dict()["alpha"])


def test_load_band_powers_plain_and_errors(tmp_path):
    vals = np.abs(np.random.default_rng(3).normal(size=(5, 2)))
    np.save(tmp_path / "bp.npy", vals)
    bp = load_band_powers(tmp_path / "bp.npy", None, {"alpha": (8, 13), "beta": (13, 30)})
    assert isinstance(bp, BandPowers) and bp.bands == ((8.0, 13.0), (13.0, 30.0))
    np.testing.assert_array_equal(bp.values, vals)
    with pytest.raises(ShapeError, match=r"bp\.npy: 5 rows but 84 labels"):
        load_band_powers(tmp_path / "bp.npy", vbt.dk84())
    with pytest.raises(ShapeError, match=r"bp\.npy: 2 columns but 3 bands"):
        load_band_powers(tmp_path / "bp.npy", None, ["a", "b", "c"])
    vals[2, 1] = -1.0
    np.save(tmp_path / "neg.npy", vals)
    with pytest.raises(DataError, match=r"neg\.npy.*row 2, band 'band_1' = -1"):
        load_band_powers(tmp_path / "neg.npy")


def test_transposed_gain_is_named_with_both_shapes():
    ts = SensorTimeSeries(np.random.default_rng(2).normal(size=(50, 62)), 250.0, list("y" * 62))
    with pytest.raises(ShapeError, match=r"gain looks transposed: its shape is \(84, 62\) but \(M "
                       r"channels, N regions\) = \(62, 84\) is expected"):  # fmt: skip
        check_gain(np.zeros((84, 62)), ts, vbt.dk84())
    with pytest.raises(
        ShapeError, match=r"looks transposed: its shape is \(76, 62\) .* \(62, 76\)"
    ):
        check_gain(np.zeros((76, 62)), ts)
    # a transposed-looking gain of the wrong size for the connectome is the plain mismatch
    with pytest.raises(ShapeError, match=r"gain has 76 channels"):
        check_gain(np.zeros((76, 62)), ts, vbt.dk84())


def test_one_table_parser_for_matrices_fc_and_time_series(tmp_path):
    """Connectome matrices, FC tables and time series share vbt_jax.readers._table.parse_table:
    the same cells, n/a and nan read alike, errors name the file and line in the caller's error
    class."""
    from vbt_jax import ConnectomeError, load_matrix, load_region_timeseries
    from vbt_jax.readers._table import parse_table

    data, names = parse_table("a\tb\n1\tn/a\n\n3\tnan\n", "t.tsv", header=True)
    assert names == ["a", "b"] and data[0, 0] == 1.0 and np.isnan(data[:, 1]).all()
    np.testing.assert_array_equal(parse_table("1 2\n3   4\n", "w.txt")[0], [[1, 2], [3, 4]])
    with pytest.raises(DataError, match=r"x.csv: rows have different lengths \[2, 3\]; line 3 "):
        parse_table("1,2\n\n3,4,5\n", "x.csv")
    with pytest.raises(DataError, match=r"h.csv: the header has 3 names but the rows have 2"):
        parse_table("a,b,c\n1,2\n", "h.csv", header=True)
    with pytest.raises(ConnectomeError, match=r"m.csv: line 2 is not a row of numbers .*headers"):
        parse_table("1,2\n3,x\n", "m.csv", error=ConnectomeError)
    # a ragged time-series table: the line, as for a connectome (a DataError here)
    (tmp_path / "ts.csv").write_text("1,2\n3,4\n5\n")
    with pytest.raises(DataError, match=r"ts.csv: rows have different lengths .*line 3"):
        load_region_timeseries(tmp_path / "ts.csv", tr=1.0)
    (tmp_path / "w.csv").write_text("0,1\n1,0,1\n")
    with pytest.raises(ConnectomeError, match=r"w.csv: rows have different lengths .*line 2"):
        load_matrix(tmp_path / "w.csv")
    # a BIDS FC relmat with the n/a diagonal BIDS uses: read, diagonal set to 1
    fc = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    rows = [
        "\t".join("n/a" if i == j else str(float(fc[i, j])) for j in range(3)) for i in range(3)
    ]
    (tmp_path / "sub-1_meas-r_relmat.dense.tsv").write_text("\n".join(rows) + "\n")
    obs = load_fc_matrix(tmp_path / "sub-1_meas-r_relmat.dense.tsv")
    np.testing.assert_array_equal(obs.fc, fc)
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match=r"s.npy: expected a numeric array, got dtype <U1"):
        load_fc_matrix(tmp_path / "s.npy")
