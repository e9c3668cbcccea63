"""Figures of inference/plots.py: every function writes a valid PNG, and the numbers the
figures show (shrinkage, FC r, KS distance, SBC binomial band) match independent references."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import scipy.stats

from inference import metrics as _metrics
from inference import plots as _plots
from inference._arviz import from_dict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_px: int = 300) -> None:
    """A real PNG: signature, an IHDR chunk with a plausible size, more than a blank image."""
    assert path.exists()
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert min_px <= width <= 6000 and min_px <= height <= 6000, (width, height)
    assert len(data) > 10_000  # a figure with axes and text; a blank canvas compresses to ~2 KB
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was moved into place


def _idata(n_chains: int = 2, n_draws: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    c, d = n_chains, n_draws
    posterior = {
        "g": rng.normal(0.0, 0.5, (c, d)),
        "sigma_fc": np.abs(rng.normal(0.2, 0.02, (c, d))),
        "a_beta": rng.normal([0.5, -0.3, 0.0], 0.1, (c, d, 3)),
        "a": rng.normal(np.linspace(-1, 1, 12), 0.2, (c, d, 12)),
        "pred_fcd_quantiles": rng.uniform(size=(c, d, 8)),
    }
    prior = {
        "g": rng.normal(0.0, 1.0, (1, 800)),
        "a_beta": rng.normal(0.0, 1.0, (1, 800, 3)),
        "a": rng.normal(0.0, 1.5, (1, 800, 12)),
    }
    labels = [f"R{k}" for k in range(12)]
    return from_dict(
        {"posterior": posterior, "prior": prior},
        coords={"region": labels, "a_map": ["myelin", "pc1", "receptor"], "q": list(range(8))},
        dims={"a": ["region"], "a_beta": ["a_map"], "pred_fcd_quantiles": ["q"]},
    )


@pytest.fixture(scope="module")
def idata():
    return _idata()


# ----------------------------------------------------------------------------- numbers


def test_shrinkage_of_halved_sd_is_three_quarters():
    rng = np.random.default_rng(1)
    n = 4000
    prior = rng.normal(0.0, 1.0, n)
    post = rng.normal(0.0, 0.5, n)
    # Expected 1 - 0.25 = 0.75. The ratio of two sample variances (n = 4000 each) has a relative
    # sd of sqrt(2/n + 2/n) ~ 0.032, so the shrinkage has sd 0.25 * 0.032 ~ 0.008: 0.03 is ~4 sd.
    assert _metrics.shrinkage(prior, post) == pytest.approx(0.75, abs=0.03)
    assert _metrics.shrinkage(prior, post) == pytest.approx(1 - np.var(post) / np.var(prior))
    assert math.isnan(_metrics.shrinkage(None, post))
    assert math.isnan(_metrics.shrinkage(np.ones(10), post))  # no prior spread: undefined


def test_panels_expand_small_vectors_and_skip_large(idata):
    panels, skipped = _plots._panels(idata, ["g", "sigma_fc", "a_beta", "a"], "t")
    labels = [p[0] for p in panels]
    assert labels == ["g", "sigma_fc", "a_beta[myelin]", "a_beta[pc1]", "a_beta[receptor]"]
    assert skipped == ["a (12,)"]
    by = {p[0]: p for p in panels}
    assert by["sigma_fc"][2] is None  # no prior draws: posterior only
    np.testing.assert_array_equal(by["a_beta[pc1]"][1], idata.posterior["a_beta"].values[..., 1])
    np.testing.assert_array_equal(by["a_beta[pc1]"][2], idata.prior["a_beta"].values[0, :, 1])
    with pytest.raises(ValueError, match="nope"):
        _plots._panels(idata, ["nope"], "t")


def test_fc_r_matches_scipy_on_each_edge_set():
    rng = np.random.default_rng(2)
    n = 9
    a = rng.normal(size=(n, n))
    obs = np.corrcoef(a)
    pred = np.clip(obs + rng.normal(0, 0.2, (n, n)), -1, 1)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]  # row-major upper triangle
    train = rng.uniform(size=len(pairs)) < 0.7
    o = np.array([obs[i, j] for i, j in pairs])
    p = np.array([pred[i, j] for i, j in pairs])
    r_train, r_test = _metrics.fc_r(obs, pred, train)
    assert r_train == pytest.approx(scipy.stats.pearsonr(p[train], o[train])[0], abs=1e-12)
    assert r_test == pytest.approx(scipy.stats.pearsonr(p[~train], o[~train])[0], abs=1e-12)
    r_all, r_none = _metrics.fc_r(obs, pred, None)
    assert r_all == pytest.approx(scipy.stats.pearsonr(p, o)[0], abs=1e-12)
    assert math.isnan(r_none)


def test_pearson_ignores_non_finite_pairs():
    x = np.array([0.0, 1.0, 2.0, np.nan, 4.0, 5.0])
    y = np.array([0.1, 0.9, 2.3, 7.0, np.inf, 5.2])
    keep = [0, 1, 2, 5]
    assert _metrics.pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x[keep], y[keep])[0])


def test_ks_to_histogram_equals_scipy_kstest():
    rng = np.random.default_rng(3)
    v = rng.uniform(size=300)
    edges = np.linspace(0.0, 1.0, 11)
    # A flat histogram's piecewise-linear CDF is the U(0, 1) CDF exactly.
    ks = _metrics.ks_to_histogram(v, edges, np.full(10, 7.0))
    assert ks == pytest.approx(scipy.stats.kstest(v, "uniform").statistic, abs=1e-12)
    # Two bins with densities 0.5 and 1.5 on [0, 1]: F(x) = x/2 below 1/2, then 1/4 + 3(x-1/2)/2.
    w = rng.triangular(0.0, 1.0, 1.0, size=200)

    def cdf(x):
        return np.where(x < 0.5, 0.5 * x, 0.25 + 1.5 * (x - 0.5))

    ks2 = _metrics.ks_to_histogram(w, np.array([0.0, 0.5, 1.0]), np.array([1.0, 3.0]))
    assert ks2 == pytest.approx(scipy.stats.kstest(w, cdf).statistic, abs=1e-12)


def test_sbc_bins_probabilities_and_counts():
    # n_draws = 9: ten rank values; bin = floor(4 r / 10) puts 0-2 | 3-4 | 5-7 | 8-9 together.
    ranks = np.array([[0], [2], [3], [5], [7], [7], [9]])
    counts, p = _metrics.sbc_bins(ranks, 9, 4)
    np.testing.assert_allclose(p, [0.3, 0.2, 0.3, 0.2])
    np.testing.assert_array_equal(counts[:, 0], [2, 1, 3, 1])
    counts, p = _metrics.sbc_bins(np.arange(100)[:, None], 99, 10)
    np.testing.assert_allclose(p, 0.1)
    np.testing.assert_array_equal(counts[:, 0], 10)


def _binom_quantile(q: float, n: int, p: float) -> int:
    """Smallest k with P(X <= k) >= q, summing the pmf with exact integer binomials."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if cdf >= q - 1e-12:
            return k
    return n


def test_sbc_band_is_the_binomial_99_percent_interval():
    n = 200
    p = np.array([0.05, 0.1, 0.25])
    expected, lo, hi = _metrics.sbc_band(n, p, 0.99)
    np.testing.assert_allclose(expected, n * p)
    np.testing.assert_array_equal(lo, [_binom_quantile(0.005, n, q) for q in p])
    np.testing.assert_array_equal(hi, [_binom_quantile(0.995, n, q) for q in p])
    # Coverage: uniform ranks fall inside the pointwise band at least 99 % of the time (the
    # binomial is discrete, so a bit more). 4000 bin counts: a 2-sd Monte Carlo margin is 0.003.
    rng = np.random.default_rng(4)
    counts = rng.multinomial(n, np.full(10, 0.1), size=400).ravel()
    _, lo, hi = _metrics.sbc_band(n, np.array([0.1]), 0.99)
    assert np.mean((counts >= lo) & (counts <= hi)) >= 0.99 - 0.003


def test_running_median_is_centred_median():
    x = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0])
    got = _plots._running_median(x, 3)
    padded = np.concatenate([[x[0]], x, [x[-1]]])
    ref = [np.median(padded[i : i + 3]) for i in range(x.size)]
    np.testing.assert_array_equal(got, ref)


# ----------------------------------------------------------------------------- figures


def test_plot_prior_posterior(idata, tmp_path):
    out = _plots.plot_prior_posterior(
        idata, ["g", "sigma_fc", "a_beta", "pred_fcd_quantiles"], tmp_path / "pp.png"
    )
    assert out == tmp_path / "pp.png"
    _check_png(out)


def test_plot_fc_fit(tmp_path):
    rng = np.random.default_rng(5)
    n = 12
    obs = np.corrcoef(rng.normal(size=(n, 40)))
    pred = np.clip(obs + rng.normal(0, 0.1, (n, n)), -1, 1)
    train = rng.uniform(size=n * (n - 1) // 2) < 0.8
    _check_png(_plots.plot_fc_fit(obs, pred, train, tmp_path / "fc.png", title="test"))
    _check_png(_plots.plot_fc_fit(obs, 2.0 * pred, None, tmp_path / "fc_all.png"))
    with pytest.raises(ValueError, match="train_edges"):
        _plots.plot_fc_fit(obs, pred, train[:-1], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="fc_pred"):
        _plots.plot_fc_fit(obs, pred[:-1], None, tmp_path / "bad.png")
    names = [f"R{i}" for i in range(n)]
    _check_png(_plots.plot_fc_fit(obs, pred, train, tmp_path / "named.png", labels=names))
    with pytest.raises(ValueError, match="labels has 11 names, the FC is 12 x 12"):
        _plots.plot_fc_fit(obs, pred, train, tmp_path / "bad.png", labels=names[:-1])


@pytest.mark.parametrize("n,shown", [(12, 12), (84, 42), (360, 45)])
def test_region_ticks_name_the_regions(n, shown):
    from vbt_jax.jobs import figure, region_ticks

    ax = figure(4, 4).subplots()
    ax.imshow(np.eye(n))
    names = [f"ctx-{i}" for i in range(n)]
    region_ticks(ax, names)
    xt = [t.get_text() for t in ax.get_xticklabels()]
    yt = [t.get_text() for t in ax.get_yticklabels()]
    assert xt == yt and len(xt) == shown and xt[0] == "ctx-0"
    # every shown name sits on its own row/column
    assert [names[int(round(v))] for v in ax.get_xticks()] == xt


def test_region_ticks_separate_the_hemispheres():
    """DK-84's labels (left cortex and subcortex, then right subcortex and cortex) get one
    separator between the hemispheres on each named axis; labels without a hemisphere, or
    interleaved ones, get none."""
    import vbt_jax as vbt
    from vbt_jax.jobs import figure, hemisphere_boundaries, region_ticks

    labels = vbt.dk84().labels
    assert hemisphere_boundaries(labels) == [42]
    assert hemisphere_boundaries(["ctx-lh-a", "ctx-lh-b", "ctx-rh-a", "ctx-rh-b"]) == [2]
    assert hemisphere_boundaries([f"r{i}" for i in range(6)]) == []
    assert hemisphere_boundaries(["L.a", "R.a", "L.b", "R.b", "L.c", "R.c"]) == []

    def lines(axes="xy", hemispheres=None):
        ax = figure(4, 4).subplots()
        ax.imshow(np.eye(len(labels)))
        region_ticks(ax, labels, axes=axes, hemispheres=hemispheres)
        return sorted((tuple(ln.get_xdata()), tuple(ln.get_ydata())) for ln in ax.get_lines())

    # axvline: x = (41.5, 41.5); axhline: y = (41.5, 41.5), in axes coordinates along the other
    assert lines() == [((0, 1), (41.5, 41.5)), ((41.5, 41.5), (0, 1))]
    assert lines(axes="x") == [((41.5, 41.5), (0, 1))]
    assert lines(axes="x", hemispheres="xy") == lines()
    assert lines(hemispheres="") == []


def test_fc_figures_name_the_regions(tmp_path, monkeypatch):
    """The FC matrices of the fit and simulate figures carry region names as tick labels
    (every other one of DK-84's 84) and a hemisphere separator; without labels they keep
    index ticks."""
    import vbt_jax as vbt
    import vbt_jax._plot as sim_plots
    from vbt_jax import jobs

    figs = []

    def keep(*args, **kwargs):
        figs.append(jobs.figure(*args, **kwargs))
        return figs[-1]

    monkeypatch.setattr(_plots, "figure", keep)
    monkeypatch.setattr(sim_plots, "figure", keep)
    labels = vbt.dk84().labels
    fc = np.asarray(vbt.dk84_empirical_fc(), float)
    np.fill_diagonal(fc, 1.0)
    _plots.plot_fc_fit(fc, fc, None, tmp_path / "fit.png", labels=labels)
    sim_plots.plot_fc(tmp_path / "sim.png", fc, fc, source="BOLD", labels=labels)
    _plots.plot_fc_fit(fc, fc, None, tmp_path / "plain.png")
    named, plain = figs[0].axes[:2] + figs[1].axes[:2], figs[2].axes[:2]
    for ax in named:
        xt = [t.get_text() for t in ax.get_xticklabels()]
        yt = [t.get_text() for t in ax.get_yticklabels()]
        assert xt == yt == list(labels[::2])
        assert len(ax.get_lines()) == 2  # the hemisphere separators
    for ax in plain:
        assert all(t.get_text().lstrip("−-").isdigit() for t in ax.get_xticklabels())
        assert not ax.get_lines()


def test_plot_band_power_fit(tmp_path):
    rng = np.random.default_rng(6)
    n, bands = 10, ("delta", "theta", "alpha", "beta", "gamma")
    obs = rng.dirichlet([4, 3, 5, 2, 1], size=n)
    obs[3] = np.nan  # a region without a measurement
    mean = np.abs(obs + rng.normal(0, 0.02, obs.shape))
    mean[3] = rng.dirichlet([4, 3, 5, 2, 1])
    lo, hi = 0.8 * mean, 1.2 * mean
    out = _plots.plot_band_power_fit(obs, mean, lo, hi, bands, tmp_path / "bp.png")
    _check_png(out)
    with pytest.raises(ValueError, match="band_names"):
        _plots.plot_band_power_fit(obs, mean, lo, hi, bands[:4], tmp_path / "bad.png")


@pytest.mark.parametrize("n_chains", [1, 3])
def test_plot_trace_rank(n_chains, tmp_path):
    data = _idata(n_chains=n_chains, n_draws=200, seed=7)
    out = _plots.plot_trace_rank(data, ["g", "a_beta"], tmp_path / "tr.png")
    _check_png(out)


def test_plot_regional(idata, tmp_path):
    maps = np.stack([np.linspace(-1, 1, 12), np.random.default_rng(8).normal(size=12)], axis=1)
    out = _plots.plot_regional(
        idata, "a", tmp_path / "reg.png", maps=maps, map_names=("gradient", "noise")
    )
    _check_png(out)
    _check_png(_plots.plot_regional(idata, "a", tmp_path / "reg_plain.png"))
    with pytest.raises(ValueError, match="maps"):
        _plots.plot_regional(idata, "a", tmp_path / "bad.png", maps=maps[:5])
    with pytest.raises(ValueError, match="region"):
        _plots.plot_regional(idata, "g", tmp_path / "bad.png")


def test_plot_fcd(tmp_path):
    rng = np.random.default_rng(9)
    edges = np.linspace(-1, 1, 41)
    ref = np.histogram(rng.beta(5, 3, 5000) * 2 - 1, bins=edges)[0]
    vals = rng.beta(4, 3, 2000) * 2 - 1
    _check_png(_plots.plot_fcd(vals, edges, ref, tmp_path / "fcd.png"))
    _check_png(_plots.plot_fcd(vals, edges, ref, tmp_path / "fcd_ks.png", ks=0.123))
    with pytest.raises(ValueError, match="ref_hist"):
        _plots.plot_fcd(vals, edges, ref[:-1], tmp_path / "bad.png")


def test_plot_svi_loss(tmp_path):
    rng = np.random.default_rng(10)
    steps = np.arange(2000)
    loss = 50.0 + 5000.0 * np.exp(-steps / 300.0) + rng.normal(0, 5, steps.size)
    _check_png(_plots.plot_svi_loss(loss, tmp_path / "loss.png"))
    negative = loss - 500.0  # an ELBO loss can be negative: symlog axis
    negative[17] = np.nan
    _check_png(_plots.plot_svi_loss(negative, tmp_path / "loss_neg.png"))
    with pytest.raises(ValueError, match="finite"):
        _plots.plot_svi_loss(np.full(5, np.nan), tmp_path / "bad.png")


def test_plot_sbc_ranks(tmp_path):
    rng = np.random.default_rng(11)
    ranks = rng.integers(0, 100, size=(200, 3))  # n_draws = 99: 100 rank values
    out = _plots.plot_sbc_ranks(ranks, 99, tmp_path / "sbc.png", names=["g", "a_mu", "sigma"])
    _check_png(out)
    with pytest.raises(ValueError, match="0..n_draws"):
        _plots.plot_sbc_ranks(ranks, 50, tmp_path / "bad.png")


def test_existing_file_is_replaced(tmp_path):
    target = tmp_path / "loss.png"
    target.write_bytes(b"old")
    _plots.plot_svi_loss(np.linspace(10, 1, 50), target)
    _check_png(target)
