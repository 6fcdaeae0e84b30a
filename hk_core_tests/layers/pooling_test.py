"""Tests for ``hk.max_pool``/``avg_pool`` and ``hk.MaxPool``/``AvgPool`` (API.md §3.6)."""

import warnings

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk


def _pads(size, window, stride, padding):
    if padding == "VALID":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _np_pool_hw(x, window, strides, padding, reduce):
    """Pools axes 1 and 2 of ``x`` [N, H, W, C] over in-bounds elements only."""
    x = np.asarray(x)
    starts = []
    for axis, (w, s) in enumerate(zip(window, strides)):
        low, high = _pads(x.shape[axis + 1], w, s, padding)
        starts.append(range(-low, x.shape[axis + 1] + high - w + 1, s))
    out = np.empty((x.shape[0], len(starts[0]), len(starts[1]), x.shape[3]), x.dtype)
    for i, r in enumerate(starts[0]):
        for j, c in enumerate(starts[1]):
            rows = slice(max(r, 0), min(r + window[0], x.shape[1]))
            cols = slice(max(c, 0), min(c + window[1], x.shape[2]))
            out[:, i, j, :] = reduce(x[:, rows, cols, :], axis=(1, 2))
    return out


def _x(shape=(2, 5, 6, 3)):
    return jax.random.normal(jax.random.PRNGKey(0), shape)


class PoolingNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("valid_2x2_stride2", (2, 2), (2, 2), "VALID"),
        ("same_3x3_stride2", (3, 3), (2, 2), "SAME"),
        ("same_2x3_stride1", (2, 3), (1, 1), "SAME"),
    )
    def test_max_pool_matches_numpy_window_max(self, window, strides, padding):
        x = _x()
        pool = self.variant(lambda v: hk.max_pool(v, (1, *window, 1), (1, *strides, 1), padding))
        chex.assert_trees_all_close(pool(x), _np_pool_hw(x, window, strides, padding, np.max))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("valid_2x2_stride2", (2, 2), (2, 2), "VALID"),
        ("same_3x3_stride2", (3, 3), (2, 2), "SAME"),
        ("same_2x3_stride1", (2, 3), (1, 1), "SAME"),
    )
    def test_avg_pool_averages_over_in_bounds_elements_only(self, window, strides, padding):
        x = _x()
        pool = self.variant(lambda v: hk.avg_pool(v, (1, *window, 1), (1, *strides, 1), padding))
        chex.assert_trees_all_close(pool(x), _np_pool_hw(x, window, strides, padding, np.mean),
                                    rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_avg_pool_same_edge_window_of_ones_is_one(self):
        pool = self.variant(lambda v: hk.avg_pool(v, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"))
        chex.assert_trees_all_close(pool(jnp.ones((1, 4, 5, 1))), jnp.ones((1, 2, 3, 1)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_max_pool_of_integers_uses_integer_minimum_as_padding(self):
        x = -jnp.arange(1, 7, dtype=jnp.int32).reshape((1, 3, 2, 1))
        out = self.variant(lambda v: hk.max_pool(v, (1, 2, 2, 1), (1, 2, 2, 1), "SAME"))(x)
        chex.assert_trees_all_equal(out, jnp.array([[[[-1]], [[-5]]]], jnp.int32))


@pytest.mark.parametrize("channel_axis, expected_shape", [
    (-1, (2, 3, 3, 3)),  # int window covers H and W only
    (None, (2, 3, 3, 2)),  # every non-leading axis, channel included
    (0, (2, 3, 3, 2)),  # 0 is falsy: same as None
    (1, (2, 6, 3, 2)),  # NCHW-style channel axis at 1 (here size 6)
])
def test_int_window_spreads_over_non_batch_non_channel_axes(channel_axis, expected_shape):
    x = jnp.zeros((2, 6, 6, 3))
    with pytest.warns(DeprecationWarning):
        out = hk.max_pool(x, 2, 2, "SAME", channel_axis=channel_axis)
    assert out.shape == expected_shape


def test_short_window_sequence_is_left_padded_and_ignores_channel_axis():
    # (2, 2) covers the two trailing axes (W and C), as API.md §3.6 documents.
    out = hk.max_pool(jnp.zeros((2, 8, 8, 3)), (2, 2), (1,), "VALID")
    assert out.shape == (2, 8, 7, 2)


def test_int_window_of_one_and_sequences_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hk.avg_pool(jnp.zeros((1, 4, 4, 1)), 1, (1, 2, 2, 1), "VALID")


@pytest.mark.parametrize("pool", [hk.max_pool, hk.avg_pool])
def test_lower_case_padding_raises_value_error(pool):
    with pytest.raises(ValueError, match=rf"{pool.__name__}: Invalid padding 'same', must be "
                                         r"'SAME' or 'VALID'"):
        pool(jnp.zeros((1, 4, 4, 1)), (1, 2, 2, 1), (1, 2, 2, 1), "same")


def test_channel_axis_out_of_range_for_int_window_raises_value_error_with_shape():
    with pytest.raises(ValueError, match=r"Invalid channel axis 4 for input of shape "
                                         r"\(1, 4, 4, 1\)"):
        hk.max_pool(jnp.zeros((1, 4, 4, 1)), 1, 1, "VALID", channel_axis=4)


def test_window_longer_than_rank_raises_value_error_with_shape():
    with pytest.raises(ValueError, match=r"window_shape \(1, 1, 2, 2, 1\) has 5 entries, more "
                                         r"than the rank 4"):
        hk.avg_pool(jnp.zeros((1, 4, 4, 1)), (1, 1, 2, 2, 1), (1,), "VALID")


def test_value_goes_through_asarray():
    out = hk.avg_pool(np.ones((1, 2, 2, 1), np.float32), (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    assert isinstance(out, jax.Array) and out.tolist() == [[[[1.0]]]]


@pytest.mark.parametrize("cls, fn", [(hk.MaxPool, hk.max_pool), (hk.AvgPool, hk.avg_pool)])
def test_module_matches_function_and_has_default_name(cls, fn):
    x = _x((1, 4, 4, 2))

    def f(v):
        module = cls((1, 2, 2, 1), (1, 1, 1, 1), "SAME")
        return module.module_name, module(v)

    name, out = hk.transform(f).apply({}, None, x)
    assert name == fn.__name__
    chex.assert_trees_all_close(out, fn(x, (1, 2, 2, 1), (1, 1, 1, 1), "SAME"))


@pytest.mark.parametrize("cls", [hk.MaxPool, hk.AvgPool])
def test_module_with_bad_padding_raises_value_error_naming_module(cls):
    with pytest.raises(ValueError, match=r"pool: Invalid padding 'FULL'"):
        hk.transform(lambda: cls(2, 2, "FULL", name="pool")).init(None)
