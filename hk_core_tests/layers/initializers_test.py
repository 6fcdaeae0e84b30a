"""Initializers (API.md §4.2): distributions, formulas and key use."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

KEY = jax.random.PRNGKey(1)


def _draw(init, shape, dtype=jnp.float32, key=KEY):
    return hk.transform(lambda: init(shape, dtype)).apply({}, key)


def _first_key(key=KEY):
    return jax.random.split(key)[1]


def test_constant_broadcasts_and_casts():
    out = hk.initializers.Constant(np.array([1.0, 2.0]))([3, 2], jnp.int32)
    np.testing.assert_array_equal(out, np.array([[1, 2]] * 3, np.int32))


def test_random_normal_is_mean_plus_stddev_times_normal():
    out = _draw(hk.initializers.RandomNormal(stddev=2.0, mean=1.0), [1000])
    expected = 1.0 + 2.0 * jax.random.normal(_first_key(), [1000])
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


def test_random_uniform_bounds_and_key():
    out = _draw(hk.initializers.RandomUniform(-3.0, 1.0), [2000])
    np.testing.assert_array_equal(out, jax.random.uniform(_first_key(), [2000], jnp.float32,
                                                          -3.0, 1.0))
    assert float(out.min()) >= -3.0 and float(out.max()) < 1.0


def test_truncated_normal_is_stddev_times_unit_truncated_normal_plus_mean():
    out = _draw(hk.initializers.TruncatedNormal(stddev=0.5, mean=0.25), [4000])
    unit = jax.random.truncated_normal(_first_key(), -2.0, 2.0, [4000], jnp.float32)
    chex.assert_trees_all_close(out, 0.5 * unit + 0.25, rtol=1e-6)
    assert float(out.max()) <= 0.25 + 2 * 0.5 and float(out.min()) >= 0.25 - 2 * 0.5


def test_truncated_normal_complex_draws_parts_independently():
    out = _draw(hk.initializers.TruncatedNormal(), [8], jnp.complex64)
    parts = jax.random.truncated_normal(_first_key(), -2.0, 2.0, [2, 8], jnp.float32)
    chex.assert_trees_all_close(out, parts[0] + 1j * parts[1])


@pytest.mark.parametrize("mode, fan", [("fan_in", 6), ("fan_out", 5), ("fan_avg", 5.5)])
def test_variance_scaling_normal_std_is_sqrt_scale_over_fan(mode, fan):
    out = _draw(hk.initializers.VarianceScaling(2.0, mode, "normal"), [6, 5])
    expected = np.sqrt(2.0 / fan) * jax.random.normal(_first_key(), [6, 5])
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


def test_variance_scaling_truncated_normal_divides_by_rounded_constant():
    out = _draw(hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal"), [6, 5])
    stddev = np.float32(np.sqrt(1.0 / 6) / np.asarray(0.87962566103423978, np.float32))
    unit = jax.random.truncated_normal(_first_key(), -2.0, 2.0, [6, 5], jnp.float32)
    np.testing.assert_array_equal(out, stddev * unit)


def test_variance_scaling_uniform_limit_is_sqrt_three_scale():
    out = _draw(hk.initializers.VarianceScaling(3.0, "fan_in", "uniform"), [100, 50])
    limit = np.sqrt(3 * 3.0 / 100)
    assert float(jnp.abs(out).max()) <= limit
    assert float(jnp.abs(out).max()) > 0.95 * limit


def test_variance_scaling_conv_fans_use_receptive_field():
    out = _draw(hk.initializers.VarianceScaling(1.0, "fan_in", "normal"), [3, 3, 4, 8])
    expected = np.sqrt(1.0 / (3 * 3 * 4)) * jax.random.normal(_first_key(), [3, 3, 4, 8])
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


def test_variance_scaling_fan_in_axes():
    out = _draw(hk.initializers.VarianceScaling(1.0, "fan_in", "normal", fan_in_axes=[0]),
                [4, 3, 2])
    expected = np.sqrt(1.0 / 4) * jax.random.normal(_first_key(), [4, 3, 2])
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


# Haiku 0.0.17 black box (VarianceScaling(1.0, mode, "normal", fan_in_axes=...) divided by
# RandomNormal(1.0) from the same key, fan = 1 / ratio**2): rank <= 2 ignores fan_in_axes;
# a negative axis counts in fan_in and, matched as written, in fan_out too.
@pytest.mark.parametrize("shape, fan_in_axes, mode, fan", [
    ((4, 6), (1,), "fan_in", 4.0),
    ((4, 6), (1,), "fan_out", 6.0),
    ((8,), (0,), "fan_in", 8.0),
    ((), (0,), "fan_avg", 1.0),
    ((3, 4, 6), (0,), "fan_out", 24.0),
    ((3, 4, 6), (-1,), "fan_in", 6.0),
    ((3, 4, 6), (-1,), "fan_out", 72.0),
    ((2, 3, 4, 5), (1, 3), "fan_avg", 11.5),
])
def test_variance_scaling_fan_in_axes_counts_only_above_rank_two(shape, fan_in_axes, mode,
                                                                  fan):
    out = _draw(hk.initializers.VarianceScaling(1.0, mode, "normal", fan_in_axes=fan_in_axes),
                shape)
    expected = np.sqrt(1.0 / fan) * jax.random.normal(_first_key(), shape)
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


@pytest.mark.parametrize("kwargs", [{"scale": -1.0}, {"mode": "fan_sideways"},
                                    {"distribution": "cauchy"}])
def test_variance_scaling_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=r"`scale` must be a non-negative value|"
                                   r"Invalid `(mode|distribution)` argument"):
        hk.initializers.VarianceScaling(**kwargs)


def test_variance_scaling_lowercases_distribution():
    assert hk.initializers.VarianceScaling(distribution="UNIFORM").distribution == "uniform"


def test_uniform_scaling_limit():
    out = _draw(hk.initializers.UniformScaling(1.5), [300, 4])
    limit = np.sqrt(3 / 300) * 1.5
    expected = jax.random.uniform(_first_key(), [300, 4], jnp.float32, -limit, limit)
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


@pytest.mark.parametrize("shape", [[3, 5], [5, 3], [2, 3, 6]])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    out = np.asarray(_draw(hk.initializers.Orthogonal(scale=2.0), shape), np.float64)
    flat = out.reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-5)


def test_orthogonal_and_identity_need_rank_two():
    with pytest.raises(ValueError, match=r"Orthogonal initializer requires at least a 2D shape"):
        _draw(hk.initializers.Orthogonal(), [3])
    with pytest.raises(ValueError, match=r"Identity initializer requires at least a 2D shape"):
        hk.initializers.Identity()([3], jnp.float32)


def test_identity_broadcasts_eye_times_gain():
    out = hk.initializers.Identity(gain=3.0)([2, 2, 3], jnp.float32)
    np.testing.assert_array_equal(out, 3.0 * np.broadcast_to(np.eye(2, 3), (2, 2, 3)))


@pytest.mark.parametrize("init", [hk.initializers.RandomNormal(), hk.initializers.TruncatedNormal(),
                                  hk.initializers.RandomUniform(), hk.initializers.Orthogonal(),
                                  hk.initializers.VarianceScaling(),
                                  hk.initializers.UniformScaling()])
def test_random_initializers_draw_exactly_one_key(init):
    def f():
        init([4, 4], jnp.float32)
        return hk.next_rng_key()

    np.testing.assert_array_equal(hk.transform(f).apply({}, KEY),
                                  jax.random.split(jax.random.split(KEY)[0])[1])


def test_initializers_without_randomness_draw_no_key():
    def f():
        hk.initializers.Constant(1.0)([2], jnp.float32)
        hk.initializers.Identity()([2, 2], jnp.float32)
        return hk.next_rng_key()

    np.testing.assert_array_equal(hk.transform(f).apply({}, KEY), _first_key())


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_eager_draws_are_bitwise_the_unfused_haiku_formulas(dtype):
    # Eager initializers run as one jitted call each; the values must be the same bits as the
    # op-by-op formulas (split chain, draw, then scale) that Haiku evaluates.
    def draw_all():
        return (hk.initializers.TruncatedNormal(0.3)([40, 7], dtype),
                hk.initializers.RandomNormal(0.3)([40, 7], dtype),
                hk.initializers.RandomUniform(-0.7, 0.2)([40, 7], dtype),
                hk.initializers.VarianceScaling(2.0)([3, 3, 5, 4], dtype))

    got = hk.transform(draw_all).apply({}, KEY)
    keys = []
    key = KEY
    for _ in range(4):
        key, sub = jax.random.split(key)
        keys.append(sub)
    vs_std = np.sqrt(2.0 / 45) / np.asarray(0.87962566103423978, dtype)
    expected = (
        np.asarray(0.3, dtype) * jax.random.truncated_normal(keys[0], -2.0, 2.0, [40, 7], dtype),
        np.asarray(0.3, dtype) * jax.random.normal(keys[1], [40, 7], dtype),
        jax.random.uniform(keys[2], [40, 7], dtype, -0.7, 0.2),
        np.asarray(vs_std, dtype) * jax.random.truncated_normal(keys[3], -2.0, 2.0,
                                                                [3, 3, 5, 4], dtype))
    for g, e in zip(got, expected):
        assert g.dtype == dtype
        np.testing.assert_array_equal(np.asarray(g, np.float32), np.asarray(e, np.float32))
    # Under jit XLA may fuse `stddev * normal` (an ulp apart), as it does for Haiku.
    chex.assert_trees_all_close(got, jax.jit(hk.transform(draw_all).apply)({}, KEY), rtol=1e-6)
