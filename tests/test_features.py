"""Data features against NumPy / SciPy float64 references."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.integrate
import scipy.signal
import scipy.stats

from vbt_jax._errors import ArgumentError, ShapeError
from vbt_jax.features import (
    DEFAULT_BANDS,
    FISHER_CLIP,
    alpha_peak_frequency,
    band_powers,
    fc,
    fc_correlation,
    fcd,
    fcd_histogram,
    fcd_values,
    fisher_z,
    ks_distance,
    pearson,
    relative_band_powers,
    upper_r,
    welch_psd,
)


def _series(seed, t, n):
    """Correlated test series: a shared slow component plus noise."""
    rng = np.random.default_rng(seed)
    common = np.cumsum(rng.standard_normal((t, 1)), axis=0) * 0.1
    return rng.standard_normal((t, n)) + common * rng.uniform(0.5, 2.0, n)


# ---- FC ------------------------------------------------------------------------------------
def test_fc_matches_numpy():
    x = _series(0, 200, 6)
    with jax.enable_x64(True):
        r = fc(jnp.asarray(x))
        r_t = fc(jnp.asarray(x.T), axis_time=1)
    assert r.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(r), np.corrcoef(x, rowvar=False), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(r_t), np.asarray(r), rtol=0, atol=1e-12)
    r32 = fc(jnp.asarray(x, dtype=jnp.float32))
    assert r32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(r32), np.corrcoef(x, rowvar=False), atol=1e-5)


def test_fc_correlation_matches_numpy():
    a = np.corrcoef(_series(1, 100, 8), rowvar=False)
    b = np.corrcoef(_series(2, 100, 8), rowvar=False)
    iu = np.triu_indices(8, k=1)
    expected = np.corrcoef(a[iu], b[iu])[0, 1]
    with jax.enable_x64(True):
        r = fc_correlation(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(float(r), expected, rtol=0, atol=1e-12)
    # the diagonal is ignored: changing it leaves the score unchanged
    a2 = a + np.diag(np.arange(8.0))
    with jax.enable_x64(True):
        np.testing.assert_allclose(float(fc_correlation(a2, b)), expected, atol=1e-12)
    with pytest.raises(ShapeError, match=r"\(8, 8\) and \(7, 7\)"):
        fc_correlation(a, b[:7, :7])


def test_fc_correlation_batched_matches_numpy(x64):
    """Leading axes broadcast: (3, N, N) against (N, N) and (3, N, N), each vs NumPy."""
    mats = np.stack([np.corrcoef(_series(s, 60, 7), rowvar=False) for s in range(4)])
    iu = np.triu_indices(7, k=1)
    want = [np.corrcoef(m[iu], mats[3][iu])[0, 1] for m in mats[:3]]
    got = np.asarray(fc_correlation(jnp.asarray(mats[:3]), jnp.asarray(mats[3])))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    pairs = np.asarray(fc_correlation(mats[:3], mats[1:]))
    want = [np.corrcoef(mats[k][iu], mats[k + 1][iu])[0, 1] for k in range(3)]
    np.testing.assert_allclose(pairs, want, rtol=0, atol=1e-12)
    # the host-side versions agree with the traceable one
    assert upper_r(mats[0], mats[3]) == pytest.approx(float(got[0]), abs=1e-12)
    assert pearson(mats[0][iu], mats[3][iu]) == pytest.approx(float(got[0]), abs=1e-12)
    with pytest.raises(ShapeError, match="do not broadcast"):
        fc_correlation(mats[:3], mats[:2])
    with pytest.raises(ShapeError, match="N >= 3"):
        fc_correlation(np.eye(2), np.eye(2))


def test_pearson_without_spread_is_nan():
    assert np.isnan(pearson([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]))
    assert np.isnan(pearson([1.0, np.nan], [0.0, 1.0]))


def test_fisher_z_matches_numpy_and_clips(x64):
    r = np.array([-1.0, -0.999, -0.3, 0.0, 0.42, 0.9999, 1.0])
    want = np.arctanh(np.clip(r, -0.999999, 0.999999))
    got_np = fisher_z(r)
    assert isinstance(got_np, np.ndarray) and got_np.dtype == np.float64
    np.testing.assert_allclose(got_np, want, rtol=1e-15)
    got_jax = fisher_z(jnp.asarray(r))
    assert isinstance(got_jax, jax.Array)
    np.testing.assert_allclose(np.asarray(got_jax), want, rtol=1e-14)
    # +-1 (an FC diagonal) stays finite: the clip, not an infinite z
    assert np.all(np.isfinite(got_np)) and got_np[-1] == pytest.approx(np.arctanh(FISHER_CLIP))
    # float32 keeps the clip below 1
    z32 = fisher_z(np.float32(1.0))
    assert np.isfinite(z32) and z32.dtype == np.float32
    # traceable and differentiable inside the clip: d artanh(r) / dr = 1 / (1 - r^2)
    g = jax.vmap(jax.grad(fisher_z))(jnp.asarray(r[1:-1]))
    np.testing.assert_allclose(np.asarray(g), 1.0 / (1.0 - r[1:-1] ** 2), rtol=1e-12)


# ---- FCD -----------------------------------------------------------------------------------
def _fcd_loop(x, window, step):
    starts = range(0, x.shape[0] - window + 1, step)
    iu = np.triu_indices(x.shape[1], k=1)
    tri = [np.corrcoef(x[s : s + window], rowvar=False)[iu] for s in starts]
    w = len(tri)
    out = np.empty((w, w))
    for i in range(w):
        for j in range(w):
            out[i, j] = np.corrcoef(tri[i], tri[j])[0, 1]
    return out


@pytest.mark.parametrize("window,step", [(30, 5), (25, 7)])
def test_fcd_matches_loop(window, step):
    x = _series(3, 163, 5)
    ref = _fcd_loop(x, window, step)
    with jax.enable_x64(True):
        m = fcd(jnp.asarray(x), window, step)
    assert m.shape == ref.shape == ((163 - window) // step + 1,) * 2
    np.testing.assert_allclose(np.asarray(m), ref, rtol=0, atol=1e-10)


def test_fcd_values_and_separation():
    m = np.arange(36.0).reshape(6, 6)
    np.testing.assert_array_equal(
        np.asarray(fcd_values(m)), m[np.triu_indices(6, k=1)]
    )  # 15 values
    v = np.asarray(fcd_values(m, min_separation=3))
    np.testing.assert_array_equal(v, [m[0, 3], m[0, 4], m[0, 5], m[1, 4], m[1, 5], m[2, 5]])
    with pytest.raises(ArgumentError, match="<= W - 1 = 5"):
        fcd_values(m, min_separation=6)


def test_fcd_histogram_matches_numpy():
    vals = np.random.default_rng(4).uniform(-1, 1, 500)
    vals[:3] = [-1.0, 1.0, 0.0]  # edges: numpy closes the last bin
    edges = np.linspace(-1, 1, 21)
    counts, _ = np.histogram(vals, edges)
    h = fcd_histogram(jnp.asarray(vals, jnp.float32), jnp.asarray(edges), normalize=False)
    np.testing.assert_array_equal(np.asarray(h), counts)
    hn = fcd_histogram(jnp.asarray(vals, jnp.float32), edges)
    np.testing.assert_allclose(np.asarray(hn), counts / 500, rtol=1e-6)


@pytest.mark.parametrize("shift,na,nb", [(0.0, 300, 200), (0.3, 150, 400), (0.0, 7, 7)])
def test_ks_distance_matches_scipy(shift, na, nb):
    rng = np.random.default_rng(5)
    a = rng.standard_normal(na)
    b = rng.standard_normal(nb) + shift
    if na == nb:  # ties across samples
        b[:3] = a[:3]
    expected = scipy.stats.ks_2samp(a, b).statistic
    with jax.enable_x64(True):
        d = ks_distance(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(float(d), expected, rtol=0, atol=1e-15)
    d32 = jax.jit(ks_distance)(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    assert d32.dtype == jnp.float32
    np.testing.assert_allclose(float(d32), expected, atol=1e-6)


# ---- spectra -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "nperseg,noverlap,axis", [(128, None, 0), (100, 30, 0), (101, 0, 1), (64, 63, 0)]
)
def test_welch_matches_scipy(nperseg, noverlap, axis):
    x = _series(6, 1000, 3) + 2.0  # a DC offset exercises the detrending
    if axis == 1:
        x = x.T
    f_ref, p_ref = scipy.signal.welch(
        x, fs=250.0, window="hann", nperseg=nperseg, noverlap=noverlap, axis=axis
    )
    with jax.enable_x64(True):
        f, p = welch_psd(jnp.asarray(x), 250.0, nperseg, noverlap, axis=axis)
    assert p.dtype == jnp.float64 and p.shape == p_ref.shape
    np.testing.assert_allclose(np.asarray(f), f_ref, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(p), p_ref, rtol=1e-6, atol=0)


def test_welch_float32_jit_vmap_and_parseval():
    x = jr.normal(jr.key(0), (4, 2048), dtype=jnp.float32)
    f, p = jax.jit(welch_psd, static_argnums=(1, 2), static_argnames="axis")(x, 100.0, 256, axis=1)
    assert p.dtype == jnp.float32 and p.shape == (4, 129)
    pv = jax.vmap(lambda r: welch_psd(r, 100.0, 256)[1])(x)
    np.testing.assert_allclose(np.asarray(pv), np.asarray(p), rtol=1e-5)
    # white noise of unit variance: the one-sided density integrates to the variance (1)
    total = scipy.integrate.trapezoid(np.asarray(p), np.asarray(f), axis=1)
    np.testing.assert_allclose(total, 1.0, rtol=0.1)  # 15 segments x 129 bins: ~3% sd


def test_band_powers_exact_on_piecewise_linear():
    freqs = np.arange(0.0, 101.0, 0.5)
    flat = np.full((freqs.size, 2), 3.0)
    bp = band_powers(jnp.asarray(freqs), jnp.asarray(flat))
    for name, (lo, hi) in DEFAULT_BANDS.items():
        np.testing.assert_allclose(np.asarray(bp[name]), 3.0 * (hi - lo), rtol=1e-6)
    # linear PSD p = f: integral (hi^2 - lo^2) / 2, band edges off the grid
    lin = freqs[:, None] * np.array([1.0, 2.0])
    bands = {"a": (1.3, 4.7), "b": (4.7, 9.95)}
    with jax.enable_x64(True):
        bp = band_powers(jnp.asarray(freqs), jnp.asarray(lin), bands)
        for name, (lo, hi) in bands.items():
            np.testing.assert_allclose(
                np.asarray(bp[name]), (hi**2 - lo**2) / 2 * np.array([1.0, 2.0]), rtol=1e-12
            )
        # on a curved PSD, edges on the grid: the trapezoid rule of SciPy
        curved = np.exp(-((freqs - 10.0) ** 2) / 8.0)
        m = (freqs >= 8.0) & (freqs <= 13.0)
        got = band_powers(freqs, curved, {"alpha": (8.0, 13.0)})["alpha"]
        np.testing.assert_allclose(
            float(got), scipy.integrate.trapezoid(curved[m], freqs[m]), rtol=1e-12
        )


def test_relative_band_powers_sum_to_one():
    x = jr.normal(jr.key(1), (5000, 3))
    f, p = welch_psd(x, 200.0, 400)
    rel = relative_band_powers(f, p)
    np.testing.assert_allclose(np.asarray(sum(rel.values())), 1.0, rtol=1e-5)
    # white noise: the fraction is the bandwidth share of 1-60 Hz, within the estimator's noise
    np.testing.assert_allclose(np.asarray(rel["beta"]), 17.0 / 59.0, rtol=0.1)
    with pytest.raises(ArgumentError, match="low_gamma"):
        band_powers(*welch_psd(x, 100.0, 200))  # Nyquist 50 Hz < 60 Hz


def test_alpha_peak_frequency():
    """10.3 Hz sinusoid + noise, 1 Hz bins: raw argmax says 10.0, interpolation within 0.1."""
    fs = 250.0
    t = np.arange(int(60 * fs)) / fs
    rng = np.random.default_rng(7)
    x = np.stack(
        [
            np.sin(2 * np.pi * 10.3 * t) + 0.5 * rng.standard_normal(t.size),
            np.sin(2 * np.pi * 8.6 * t) + 0.5 * rng.standard_normal(t.size),
        ],
        axis=1,
    )
    f, p = welch_psd(jnp.asarray(x, jnp.float32), fs, 250)
    apf = np.asarray(alpha_peak_frequency(f, p))
    np.testing.assert_allclose(apf, [10.3, 8.6], atol=0.1)
    assert abs(float(f[np.argmax(np.asarray(p[:, 0]))]) - 10.3) > 0.2  # interpolation needed
    apf_jit = jax.jit(alpha_peak_frequency)(f, p)
    np.testing.assert_allclose(np.asarray(apf_jit), apf, rtol=1e-6)


def test_fc_fcd_gradients_match_finite_differences():
    """Reverse-mode gradients of an FC + FCD loss vs central differences (float64)."""
    with jax.enable_x64(True):
        x, y = jr.normal(jr.key(2), (2, 120, 4), dtype=jnp.float64)

        def loss(s):  # s mixes a second signal into each region (correlations are scale-free)
            return fc_correlation(fc(x + s * y), fc(x**2)) + jnp.sum(fcd(x + s * y, 40, 10) ** 2)

        s0 = jnp.array([1.0, 2.0, 0.5, 1.5])
        g = jax.jit(jax.grad(loss))(s0)
        h = 1e-6  # truncation ~h^2 and rounding ~1e-16 / h: both far below rtol 1e-6
        loss_j = jax.jit(loss)
        fd = [(loss_j(s0.at[i].add(h)) - loss_j(s0.at[i].add(-h))) / (2 * h) for i in range(4)]
    assert np.all(np.abs(np.asarray(g)) > 1e-8)
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-6)


def test_validation_errors():
    with pytest.raises(ShapeError, match=r"\(T, N\).*\(5,\)"):
        fc(jnp.zeros(5))
    with pytest.raises(ArgumentError, match=r"\[2, 50\]"):
        fcd(jnp.zeros((50, 4)), 60, 1)
    with pytest.raises(ArgumentError, match="step"):
        fcd(jnp.zeros((50, 4)), 10, 0)
    with pytest.raises(ArgumentError, match="nperseg"):
        welch_psd(jnp.zeros(100), 10.0, 200)
    with pytest.raises(ArgumentError, match="noverlap"):
        welch_psd(jnp.zeros(100), 10.0, 50, 50)
    with pytest.raises(ArgumentError, match="equally spaced"):
        alpha_peak_frequency(jnp.array([1.0, 2.0, 4.0, 5.0]), jnp.ones(4))
    with pytest.raises(ShapeError, match="non-empty"):
        ks_distance(jnp.zeros(0), jnp.ones(3))
