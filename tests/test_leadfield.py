"""EEG lead field: region gain construction, projection, average reference, tvb-data gain."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from vbt_jax._errors import ConnectomeError
from vbt_jax._leadfield import average_reference, project, region_gain_from_vertices
from vbt_jax.readers import load_tvb_eeg_gain


def test_gain_hand_example():
    # 2 sensors, 5 vertices, 3 regions; region 2 has no vertex -> zero column
    projection = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0, 40.0, 50.0]])
    mapping = np.array([1, 0, 1, 0, 1])
    gain = region_gain_from_vertices(projection, mapping, 3)
    expected = np.array([[2.0 + 4.0, 1.0 + 3.0 + 5.0, 0.0], [60.0, 90.0, 0.0]])
    np.testing.assert_array_equal(gain, expected)
    # a float region mapping (as np.loadtxt gives) is accepted when integral
    np.testing.assert_array_equal(region_gain_from_vertices(projection, mapping * 1.0, 3), gain)


def test_gain_nan_rows():
    projection = np.arange(12.0).reshape(3, 4)
    projection[1] = np.nan
    mapping = np.array([0, 0, 1, 1])
    with pytest.raises(ConnectomeError, match=r"all-NaN sensor rows \[1\]"):
        region_gain_from_vertices(projection, mapping, 2)
    gain, kept = region_gain_from_vertices(projection, mapping, 2, drop_nan_rows=True)
    np.testing.assert_array_equal(kept, [0, 2])
    np.testing.assert_array_equal(gain, [[0 + 1, 2 + 3], [8 + 9, 10 + 11]])
    projection[0, 2] = np.nan  # partly NaN: never silently dropped
    with pytest.raises(ConnectomeError, match=r"rows \[0\]"):
        region_gain_from_vertices(projection, mapping, 2, drop_nan_rows=True)


def test_gain_validation_names_shapes():
    projection = np.ones((2, 4))
    with pytest.raises(ConnectomeError, match=r"\(V,\) = \(4,\).*got shape \(3,\)"):
        region_gain_from_vertices(projection, np.zeros(3, int), 2)
    with pytest.raises(ConnectomeError, match=r"got shape \(4,\)"):
        region_gain_from_vertices(np.ones(4), np.zeros(4, int), 2)
    with pytest.raises(ConnectomeError, match=r"\[0, 2\).*max 2"):
        region_gain_from_vertices(projection, np.array([0, 1, 2, 0]), 2)
    with pytest.raises(ConnectomeError, match="integer"):
        region_gain_from_vertices(projection, np.array([0, 0.5, 1, 0]), 2)


def test_average_reference_zero_mean():
    x = jr.normal(jr.key(0), (7, 5)) + 3.0
    y = average_reference(x)
    np.testing.assert_allclose(np.asarray(y.mean(axis=-1)), 0.0, atol=1e-6)
    shift = np.broadcast_to(-np.asarray(x, np.float64).mean(-1, keepdims=True), x.shape)
    np.testing.assert_allclose(np.asarray(y - x), shift, rtol=1e-5)
    y0 = average_reference(x, axis=0)
    np.testing.assert_allclose(np.asarray(y0.mean(axis=0)), 0.0, atol=1e-6)


def test_project_linear_and_matches_numpy():
    k1, k2, k3 = jr.split(jr.key(1), 3)
    gain = jr.normal(k1, (4, 6))
    a = jr.normal(k2, (10, 6))
    b = jr.normal(k3, (10, 6))
    np.testing.assert_allclose(
        np.asarray(project(gain, 2.0 * a - 3.0 * b)),
        np.asarray(2.0 * project(gain, a) - 3.0 * project(gain, b)),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        np.asarray(project(gain, a)), np.asarray(a) @ np.asarray(gain).T, rtol=1e-5, atol=1e-5
    )
    # referencing the output equals projecting with the average-referenced gain
    np.testing.assert_allclose(
        np.asarray(project(gain, a, average_ref=True)),
        np.asarray(project(average_reference(gain, axis=0), a)),
        rtol=1e-5,
        atol=1e-5,
    )
    y = jax.jit(project, static_argnames="average_ref")(gain, a, average_ref=True)
    np.testing.assert_allclose(np.asarray(y.mean(-1)), 0.0, atol=1e-5)
    assert project(gain, a.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    with pytest.raises(ConnectomeError, match=r"N = 6.*got shape \(10, 5\)"):
        project(gain, a[:, :5])


def test_tvb_eeg_gain_rank():
    pytest.importorskip("tvb_data")
    gain, labels = load_tvb_eeg_gain()
    assert gain.shape == (62, 76)
    assert len(labels) == 62 and labels[:2] == ("Fp1", "Fp2")
    assert np.all(np.isfinite(gain)) and np.all(np.abs(gain).sum(axis=0) > 0)
    # FIELD-NOTES: full row rank 62; the average reference removes exactly one dimension
    assert np.linalg.matrix_rank(gain) == 62
    assert np.linalg.matrix_rank(np.asarray(average_reference(gain, axis=0))) == 61


def test_project_names_a_transposed_gain():
    from vbt_jax import ShapeError

    gain = np.ones((84, 62))  # (N, M) instead of (M, N)
    with pytest.raises(ShapeError, match=r"gain looks transposed: its shape is \(M, N\) = \(84, "
                       r"62\) but x has 84 regions \(shape \(5, 84\)\), so \(M, N\) = \(62, 84\) "
                       r"is expected"):  # fmt: skip
        project(gain, np.ones((5, 84)))
    assert project(gain.T, np.ones((5, 84))).shape == (5, 62)
