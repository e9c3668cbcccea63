"""inference._arviz gives the same results under arviz 0.x (InferenceData) and 1.x (DataTree).

CI runs arviz 0.x (Python 3.11); these tests also pass in a Python 3.12 environment with
arviz 1.x, where ``from_dict``, ``summary`` and ``psislw`` have other signatures.
"""

from __future__ import annotations

import numpy as np

from inference import _arviz


def _narrowest(x: np.ndarray, prob: float) -> tuple[float, float]:
    """Shortest interval holding ``ceil(prob * n)`` of the sorted draws (the sample HDI)."""
    s = np.sort(x)
    k = int(np.ceil(prob * s.size))
    widths = s[k - 1 :] - s[: s.size - k + 1]
    i = int(np.argmin(widths))
    return float(s[i]), float(s[i + k - 1])


def test_summary_reports_hdi_not_equal_tailed(tmp_path):
    rng = np.random.default_rng(0)
    g = rng.exponential(1.0, size=(2, 2000))  # skewed: HDI starts near 0, the ETI at q05
    a = rng.normal(size=(2, 2000, 3))
    idata = _arviz.from_dict(
        {"posterior": {"g": g, "a": a}, "observed_data": {"y": np.arange(4.0)}, "prior": None},
        coords={"region": ["L.A", "L.B", "R.C"]},
        dims={"a": ["region"]},
        attrs={"engine": "test"},
    )
    assert set(_arviz.group_names(idata)) == {"posterior", "observed_data"}
    table = _arviz.summary(idata, ["g", "a"], 0.9)
    assert list(table.index) == ["g", "a[L.A]", "a[L.B]", "a[R.C]"]
    assert list(table.columns[:2]) == ["mean", "sd"] and {"r_hat", "ess_bulk"} <= set(table.columns)
    lo, hi = table.loc["g", table.columns[2]], table.loc["g", table.columns[3]]
    ref_lo, ref_hi = _narrowest(g.ravel(), 0.9)
    assert abs(lo - ref_lo) < 0.01 and abs(hi - ref_hi) < 0.05, (lo, hi, ref_lo, ref_hi)
    assert lo < 0.5 * np.quantile(g, 0.05)  # an equal-tailed interval would start at q05
    np.testing.assert_allclose(table.loc["g", "mean"], g.mean(), rtol=1e-12)
    assert table.loc["g", "r_hat"] < 1.01

    # round trip through the NetCDF file both arviz versions read
    path = tmp_path / "x.nc"
    idata.to_netcdf(str(path), engine="h5netcdf")
    back = _arviz.from_netcdf(path)
    np.testing.assert_array_equal(back.posterior["a"].values, a)
    assert list(back.posterior["a"].coords["region"].values) == ["L.A", "L.B", "R.C"]
    assert back.posterior.attrs["engine"] == back.observed_data.attrs["engine"] == "test"


def test_psislw_matches_pareto_k_of_known_tails():
    rng = np.random.default_rng(1)
    # importance weights with a Pareto tail of shape 1/k: the fitted tail index must be k
    for k_true in (0.3, 0.8):
        log_w = np.log(rng.pareto(1.0 / k_true, 20000) + 1.0)
        smoothed, khat = _arviz.psislw(log_w)
        assert smoothed.shape == log_w.shape and np.all(np.isfinite(smoothed))
        assert abs(khat - k_true) < 0.15, (k_true, khat)
    # light tails: k well below 0.5
    _, khat = _arviz.psislw(rng.normal(size=20000))
    assert khat < 0.5
