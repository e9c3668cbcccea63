"""Imaging loaders: synthetic NIfTI/array files against direct NumPy computations."""

import nibabel as nib
import numpy as np
import pytest

import vbt_jax
from vbt_jax._errors import ArgumentError, DataError, LabelError, ShapeError
from vbt_jax.readers import (
    RegionTimeSeries,
    _nifti,
    check_against_connectome,
    load_nifti_regions,
    load_region_timeseries,
)

SHAPE = (6, 5, 4)
AFFINE = np.diag([2.0, 2.0, 2.5, 1.0])


def _atlas():
    lab = np.zeros(SHAPE, dtype=np.int16)
    lab[:3, :, :2] = 1
    lab[3:, :2, :] = 2
    lab[3:, 2:, 1:] = 5
    lab[0, 0, 3] = 7  # a one-voxel region
    return lab


def _write(tmp_path, bold, atlas, *, tr=2.0, unit="sec", bold_affine=AFFINE, name="bold"):
    img = nib.Nifti1Image(bold, bold_affine)
    if bold.ndim == 4:
        img.header.set_zooms((2.0, 2.0, 2.5, tr))
        img.header.set_xyzt_units("mm", unit)
    bp, ap = tmp_path / f"{name}.nii.gz", tmp_path / "atlas.nii.gz"
    nib.save(img, bp)
    nib.save(nib.Nifti1Image(atlas, AFFINE), ap)
    return bp, ap


def _bold(rng, t=12):
    return rng.normal(size=(*SHAPE, t)) + np.arange(t) * 0.01


@pytest.mark.parametrize("chunk_values", [2**26, 5 * 120])  # one read / reads of 5, 5, 2 volumes
def test_region_means_match_numpy(tmp_path, monkeypatch, chunk_values):
    monkeypatch.setattr(_nifti, "_CHUNK_VALUES", chunk_values)
    rng = np.random.default_rng(0)
    bold, lab = _bold(rng), _atlas()
    bp, ap = _write(tmp_path, bold, lab)
    ts = load_nifti_regions(bp, ap, detrend=False, zscore=False)
    expect = np.stack([bold[lab == v].mean(axis=0) for v in (1, 2, 5, 7)], axis=1)
    assert ts.labels == ("1", "2", "5", "7")
    assert ts.tr == 2.0 and ts.source == str(bp)
    np.testing.assert_allclose(ts.data, expect, rtol=0, atol=1e-12)  # float64 round-off only
    # explicit selection and names: order follows the mapping
    ts2 = load_nifti_regions(bp, ap, labels={5: "C", 1: "A"}, detrend=False, zscore=False)
    assert ts2.labels == ("C", "A")
    np.testing.assert_allclose(ts2.data, expect[:, [2, 0]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("unit,zoom,expect", [("sec", 0.72, 0.72), ("msec", 720.0, 0.72)])
def test_tr_from_header(tmp_path, unit, zoom, expect):
    bp, ap = _write(tmp_path, _bold(np.random.default_rng(1)), _atlas(), tr=zoom, unit=unit)
    ts = load_nifti_regions(bp, ap)
    assert ts.tr == pytest.approx(expect, abs=1e-6)  # header stores float32: ~1e-7 s
    # a matching explicit tr is accepted
    assert load_nifti_regions(bp, ap, tr=0.7205).tr == 0.7205


def test_tr_missing_and_mismatch(tmp_path):
    rng = np.random.default_rng(2)
    bp, ap = _write(tmp_path, _bold(rng), _atlas(), tr=0.0)
    with pytest.raises(DataError, match=r"bold\.nii\.gz: TR missing.*pixdim\[4\]"):
        load_nifti_regions(bp, ap)
    assert load_nifti_regions(bp, ap, tr=1.5).tr == 1.5
    bp, ap = _write(tmp_path, _bold(rng), _atlas(), tr=2.0)
    with pytest.raises(DataError, match=r"bold\.nii\.gz: tr=2\.1 s given.*header TR.* 2 s"):
        load_nifti_regions(bp, ap, tr=2.1)


def test_nifti_shape_and_affine_errors(tmp_path):
    rng = np.random.default_rng(3)
    bp, ap = _write(tmp_path, rng.normal(size=SHAPE), _atlas(), name="b3d")
    with pytest.raises(ShapeError, match=r"b3d\.nii\.gz: BOLD image must be 4-D.*\(6, 5, 4\)"):
        load_nifti_regions(bp, ap)
    bp, _ = _write(tmp_path, _bold(rng), _atlas())
    ap4 = tmp_path / "atlas4d.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((*SHAPE, 2), dtype=np.int16), AFFINE), ap4)
    with pytest.raises(ShapeError, match=r"atlas4d\.nii\.gz: atlas image must be 3-D.*, 2\)"):
        load_nifti_regions(bp, ap4)
    bp, _ = _write(tmp_path, rng.normal(size=(6, 5, 3, 12)), _atlas(), name="bsmall")
    with pytest.raises(
        ShapeError,
        match=r"atlas\.nii\.gz: atlas spatial shape \(6, 5, 4\).*"
        r"bsmall\.nii\.gz.*\(6, 5, 3\)",
    ):
        load_nifti_regions(bp, ap)
    shifted = AFFINE.copy()
    shifted[0, 3] = 1.0
    bp, ap = _write(tmp_path, _bold(rng), _atlas(), bold_affine=shifted, name="bshift")
    with pytest.raises(
        DataError,
        match=r"(?s)atlas\.nii\.gz: atlas affine does not match "
        r"BOLD .*bshift\.nii\.gz.*atlas:.*BOLD:.*1\.",
    ):
        load_nifti_regions(bp, ap)
    # within tolerance (5e-4 mm) is accepted
    shifted[0, 3] = 5e-4
    bp, ap = _write(tmp_path, _bold(rng), _atlas(), bold_affine=shifted, name="bok")
    load_nifti_regions(bp, ap)


def test_nifti_label_and_voxel_errors(tmp_path):
    rng = np.random.default_rng(4)
    bp, ap = _write(tmp_path, _bold(rng), _atlas())
    with pytest.raises(LabelError, match=r"atlas\.nii\.gz: labels 3, 9 requested but absent"):
        load_nifti_regions(bp, ap, labels=[1, 3, 9])
    with pytest.raises(
        DataError,
        match=r"atlas\.nii\.gz: region '7' \(atlas value 7\) has 1 "
        r"voxel\(s\), fewer than min_voxels=2",
    ):
        load_nifti_regions(bp, ap, min_voxels=2)
    load_nifti_regions(bp, ap, labels=[1, 2, 5], min_voxels=2)


def test_nifti_series_errors(tmp_path):
    rng = np.random.default_rng(5)
    lab = _atlas()
    bp, ap = _write(tmp_path, _bold(rng, t=9), lab, name="short")
    with pytest.raises(ShapeError, match=r"short\.nii\.gz: too few volumes: .*10, got 9"):
        load_nifti_regions(bp, ap)
    bold = _bold(rng)
    bold[lab == 5, 3] = np.nan
    bp, ap = _write(tmp_path, bold, lab, name="nan")
    with pytest.raises(DataError, match=r"nan\.nii\.gz: region '5' .*NaN"):
        load_nifti_regions(bp, ap)
    bold = _bold(rng)
    bold[lab == 2] = 3.0
    bp, ap = _write(tmp_path, bold, lab, name="const")
    with pytest.raises(DataError, match=r"const\.nii\.gz: region 'B' .*constant"):
        load_nifti_regions(bp, ap, labels={1: "A", 2: "B"})


def _sines(t, freqs):
    return sum(np.sin(2 * np.pi * f * t) for f in freqs)


def test_bandpass_gain_matches_butterworth(tmp_path):
    # TR 0.5 s (Nyquist 1 Hz), 2000 volumes; 0.05 Hz and 0.2 Hz have whole periods (40 and 10
    # samples) in the 1200-sample middle window, so projections separate them exactly.
    tr, n = 0.5, 2000
    t = np.arange(n) * tr
    path = tmp_path / "ts.npy"
    np.save(path, np.stack([_sines(t, (0.05, 0.2)), _sines(t, (0.05,))], axis=1))
    ts = load_region_timeseries(path, tr=tr, band=(0.01, 0.1), detrend=False, zscore=False)
    mid = slice(400, 1600)

    def amp(y, f):
        return 2 * np.mean(y[mid] * np.sin(2 * np.pi * f * t[mid]))

    def gain(f):
        # filtfilt's amplitude gain is the single pass |H|^2; for a bilinear Butterworth
        # band-pass of order 2, |H|^2 = 1 / (1 + ((w^2 - wl wh) / (w (wh - wl)))^4) with the
        # prewarped frequencies w = tan(pi f / fs) (analytic, not computed by SciPy).
        w, wl, wh = (np.tan(np.pi * x * tr) for x in (f, 0.01, 0.1))
        return 1 / (1 + ((w * w - wl * wh) / (w * (wh - wl))) ** 4)

    # spec-level: 0.2 Hz strongly attenuated, 0.05 Hz kept
    assert abs(amp(ts.data[:, 0], 0.2)) < 0.05
    assert amp(ts.data[:, 0], 0.05) > 0.98
    # exact level: edge transients of the 0.01 Hz pole (time constant ~16 s) have decayed by
    # e^-12 after 200 s, so 1e-4 absolute is far above what remains.
    for f in (0.05, 0.2):
        assert amp(ts.data[:, 0], f) == pytest.approx(gain(f), abs=1e-4)
    assert amp(ts.data[:, 1], 0.05) == pytest.approx(gain(0.05), abs=1e-4)


def test_band_validation_names_values(tmp_path):
    path = tmp_path / "ts.npy"
    np.save(path, np.random.default_rng(6).normal(size=(100, 3)))
    with pytest.raises(
        ArgumentError,
        match=r"ts\.npy: band .*Nyquist = 0\.5 / tr = 0\.25 Hz "
        r"\(tr 2 s\), got band=\(0\.01, 0\.3\)",
    ):
        load_region_timeseries(path, tr=2.0, band=(0.01, 0.3))
    with pytest.raises(ArgumentError, match=r"got band=\(0\.1, 0\.01\)"):
        load_region_timeseries(path, tr=2.0, band=(0.1, 0.01))


def test_detrend_removes_line_exactly(tmp_path):
    rng = np.random.default_rng(7)
    n = 200
    tt = np.arange(n, dtype=float)
    design = np.stack([np.ones(n), tt], axis=1)
    x = rng.normal(size=(n, 3))
    x -= design @ np.linalg.lstsq(design, x, rcond=None)[0]  # x orthogonal to [1, t]
    path = tmp_path / "ts.npy"
    np.save(path, x + 5.0 + np.array([0.3, -2.0, 10.0]) * tt[:, None])
    ts = load_region_timeseries(path, tr=1.0, zscore=False)
    np.testing.assert_allclose(ts.data, x, rtol=0, atol=1e-9)  # round-off of values up to 2e3


def test_zscore_and_time_axis_and_text(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 4)) * [1.0, 3.0, 0.2, 7.0] + [1.0, -4.0, 0.0, 100.0]
    np.save(tmp_path / "rt.npy", x.T)
    ts = load_region_timeseries(tmp_path / "rt.npy", tr=2.0, time_axis=1, detrend=False)
    np.testing.assert_allclose(ts.data.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(ts.data.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(ts.data, (x - x.mean(0)) / x.std(0), atol=1e-12)
    # csv with a header of names; tsv without
    names = ["a", "b", "c", "d"]
    with open(tmp_path / "x.csv", "w") as f:
        f.write(",".join(names) + "\n")
        for row in x:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    np.savetxt(tmp_path / "x.tsv", x, delimiter="\t")
    c = load_region_timeseries(tmp_path / "x.csv", tr=2.0, detrend=False, zscore=False)
    s = load_region_timeseries(tmp_path / "x.tsv", tr=2.0, detrend=False, zscore=False)
    assert c.labels == tuple(names)
    assert s.labels == ("region_0", "region_1", "region_2", "region_3")
    np.testing.assert_array_equal(c.data, x)
    np.testing.assert_allclose(s.data, x, rtol=1e-15)


def test_region_timeseries_errors(tmp_path):
    x = np.random.default_rng(9).normal(size=(30, 3))
    path = tmp_path / "ts.npy"
    np.save(path, x)
    with pytest.raises(ShapeError, match=r"ts\.npy: got 2 labels for 3 regions"):
        load_region_timeseries(path, tr=1.0, labels=["a", "b"])
    y = x.copy()
    y[4, 1] = np.nan
    np.save(tmp_path / "nan.npy", y)
    with pytest.raises(DataError, match=r"nan\.npy: region 'b' \(column 1\) has NaN"):
        load_region_timeseries(tmp_path / "nan.npy", tr=1.0, labels=["a", "b", "c"])
    y = x.copy()
    y[:, 2] = 4.0
    np.save(tmp_path / "const.npy", y)
    with pytest.raises(DataError, match=r"const\.npy: region 'region_2' .*constant"):
        load_region_timeseries(tmp_path / "const.npy", tr=1.0)
    np.save(tmp_path / "short.npy", x[:9])
    with pytest.raises(ShapeError, match=r"short\.npy: too few time points: .*10, got 9"):
        load_region_timeseries(tmp_path / "short.npy", tr=1.0)
    np.save(tmp_path / "one.npy", x[:, 0])
    with pytest.raises(ShapeError, match=r"one\.npy: expected a 2-D .*\(30,\)"):
        load_region_timeseries(tmp_path / "one.npy", tr=1.0)
    with pytest.raises(ArgumentError, match=r"ts\.npy: tr must be a positive .*-1"):
        load_region_timeseries(path, tr=-1.0)
    (tmp_path / "x.mat").write_text("")
    with pytest.raises(DataError, match=r"x\.mat: unsupported extension '\.mat'"):
        load_region_timeseries(tmp_path / "x.mat", tr=1.0)


def test_check_against_connectome():
    conn = vbt_jax.dk84()
    names = conn.labels
    assert len(names) == 84
    data = np.random.default_rng(10).normal(size=(20, 84))
    check_against_connectome(RegionTimeSeries(data, 2.0, names, "good"), conn)
    # placeholders (atlas values) are not compared, only the count
    check_against_connectome(RegionTimeSeries(data, 2.0, [str(i) for i in range(84)], "p"), conn)
    with pytest.raises(ShapeError, match=r"short: 83 regions .*'dk84_hcp' has 84"):
        check_against_connectome(RegionTimeSeries(data[:, :83], 2.0, names[:83], "short"), conn)
    swapped = list(names)
    swapped[3], swapped[5] = swapped[5], swapped[3]
    with pytest.raises(
        LabelError,
        match=rf"swap: .*2 position.*index 3: time series "
        rf"'{swapped[3]}' vs connectome '{names[3]}'.*"
        r"Only in the time series: \[\]; only in the connectome: \[\]",
    ):
        check_against_connectome(RegionTimeSeries(data, 2.0, swapped, "swap"), conn)
    renamed = list(names)
    renamed[10] = "L.XYZ"
    with pytest.raises(
        LabelError,
        match=rf"index 10: .*'L\.XYZ' vs connectome '{names[10]}'"
        rf".*Only in the time series: \['L\.XYZ'\]; only in "
        rf"the connectome: \['{names[10]}'\]",
    ):
        check_against_connectome(RegionTimeSeries(data, 2.0, renamed, "ren"), conn)


def test_region_timeseries_validates():
    with pytest.raises(ShapeError, match=r"src: got 2 labels for 3 regions"):
        RegionTimeSeries(np.zeros((10, 3)), 1.0, ["a", "b"], "src")
    with pytest.raises(ArgumentError, match=r"src: tr must be a positive .*0\.0"):
        RegionTimeSeries(np.zeros((10, 3)), 0.0, ["a", "b", "c"], "src")


def test_truncated_or_mislabelled_nifti_names_the_file(tmp_path):
    """A half-copied .nii.gz fails only when its data are read (EOFError inside nibabel), a
    text file named .nii.gz already at load: both are a DataError naming the file."""
    rng = np.random.default_rng(4)
    bp, ap = _write(tmp_path, rng.normal(size=(*SHAPE, 40)), _atlas())
    raw = bp.read_bytes()
    cut = tmp_path / "cut_bold.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut_bold.nii.gz: the BOLD image's data cannot be read; "
                       r"the file looks truncated or corrupt \(EOFError"):  # fmt: skip
        load_nifti_regions(cut, ap)
    text = tmp_path / "notes.nii.gz"
    text.write_text("subject 1, resting state\n")
    with pytest.raises(DataError, match=r"notes.nii.gz: cannot read the BOLD image as a NIfTI "
                       r"image"):  # fmt: skip
        load_nifti_regions(text, ap)
    with pytest.raises(DataError, match=r"notes.nii.gz: cannot read the atlas as a NIfTI image"):
        load_nifti_regions(bp, text)
    atlas_raw = ap.read_bytes()
    cut_atlas = tmp_path / "cut_atlas.nii.gz"
    cut_atlas.write_bytes(atlas_raw[: len(atlas_raw) - 40])
    with pytest.raises(DataError, match=r"cut_atlas.nii.gz: (the atlas's data cannot be read|"
                       r"cannot read the atlas as a NIfTI image)"):  # fmt: skip
        load_nifti_regions(bp, cut_atlas)
    with pytest.raises(DataError, match=r"nope.nii.gz: BOLD image file not found"):
        load_nifti_regions(tmp_path / "nope.nii.gz", ap)


def test_transposed_table_is_refused_naming_time_axis(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 20))  # 120 volumes x 20 regions
    np.save(tmp_path / "rt.npy", x.T)  # saved region by time
    with pytest.raises(ShapeError, match=r"rt.npy: the table looks transposed: shape \(20, 120\) "
                       r"with time_axis=0 \(rows are time points\) gives 20 time points for 120 "
                       r"regions.*pass time_axis=1 \(in a fit config: \[fit.data\] time_axis = "
                       r"1\)"):  # fmt: skip
        load_region_timeseries(tmp_path / "rt.npy", tr=0.72)
    ts = load_region_timeseries(tmp_path / "rt.npy", tr=0.72, time_axis=1, detrend=False)
    np.testing.assert_allclose(ts.data, (x - x.mean(0)) / x.std(0), atol=1e-12)
    np.save(tmp_path / "tr.npy", x)
    with pytest.raises(ShapeError, match=r"tr.npy: the table looks transposed: shape \(120, 20\) "
                       r"with time_axis=1 \(rows are regions\).*pass time_axis=0"):  # fmt: skip
        load_region_timeseries(tmp_path / "tr.npy", tr=0.72, time_axis=1)
