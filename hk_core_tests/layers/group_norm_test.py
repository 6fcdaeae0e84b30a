"""Tests for hk_core/_src/layers/group_norm.py (API.md §3.3, GroupNorm)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

EPS = 1e-5


def _data(shape, seed=0):
    return (np.random.default_rng(seed).normal(size=shape) * 2.0 - 1.0).astype(np.float32)


def _group_norm(groups, **kwargs):
    return hk.transform(lambda x, scale=None, offset=None: hk.GroupNorm(groups, **kwargs)(
        x, scale=scale, offset=offset))


def _np_group_norm_channels_last(x, groups):
    n, c = x.shape[0], x.shape[-1]
    grouped = x.reshape(n, -1, groups, c // groups)
    mean = grouped.mean(axis=(1, 3), keepdims=True)
    var = grouped.var(axis=(1, 3), keepdims=True)
    return ((grouped - mean) / np.sqrt(var + EPS)).reshape(x.shape)


@pytest.mark.parametrize("data_format,shape,param_shape", [
    ("channels_last", (2, 4, 4, 6), (6,)),
    ("NHWC", (2, 4, 4, 6), (6,)),
    ("channels_first", (2, 6, 4, 4), (6, 1, 1)),
    ("NCW", (2, 6, 5), (6, 1)),
])
def test_group_norm_param_shapes(data_format, shape, param_shape):
    params = _group_norm(2, data_format=data_format).init(None, jnp.ones(shape))
    assert {m: {n: v.shape for n, v in b.items()} for m, b in params.items()} == {
        "group_norm": {"scale": param_shape, "offset": param_shape}}
    assert list(params["group_norm"]) == ["scale", "offset"]


class GroupNormNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("two_groups", 2), ("one_group", 1), ("per_channel", 6))
    def test_group_norm_channels_last_matches_numpy(self, groups):
        x = _data((2, 3, 3, 6))
        f = _group_norm(groups)
        params = jax.tree.map(lambda p: p + 0.5, f.init(None, x))
        out = self.variant(f.apply)(params, None, x)
        expected = _np_group_norm_channels_last(x, groups) * 1.5 + 0.5
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_group_norm_channels_first_equals_transposed_channels_last(self):
        x = _data((2, 6, 3, 3))
        f = _group_norm(3, data_format="NCHW")
        out = self.variant(f.apply)(f.init(None, x), None, x)
        expected = _np_group_norm_channels_last(x.transpose(0, 2, 3, 1), 3).transpose(0, 3, 1, 2)
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_group_norm_axis_restricts_statistics(self):
        # axis=-1: statistics over the channels of each group only, per pixel.
        x = _data((2, 3, 4))
        f = _group_norm(2, axis=-1)
        out = self.variant(f.apply)(f.init(None, x), None, x)
        grouped = x.reshape(2, 3, 2, 2)
        mean = grouped.mean(axis=3, keepdims=True)
        var = grouped.var(axis=3, keepdims=True)
        expected = ((grouped - mean) / np.sqrt(var + EPS)).reshape(x.shape)
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)


def test_group_norm_scale_and_offset_passed_at_call_are_used():
    x = _data((2, 4))
    f = _group_norm(2, create_scale=False, create_offset=False)
    scale, offset = np.array([1.0, 2.0, 3.0, 4.0], np.float32), np.float32(0.5)
    out = f.apply({}, None, x, scale, offset)
    expected = _np_group_norm_channels_last(x, 2) * scale + offset
    chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)


def test_group_norm_channels_not_divisible_raises_with_counts():
    with pytest.raises(ValueError, match=r"group_norm: The number of channels must be divisible "
                                         r"by the number of groups, was channels=8, groups=5"):
        _group_norm(5).init(None, jnp.ones([2, 8]))


def test_group_norm_rank_change_between_calls_raises():
    def f(x, y):
        norm = hk.GroupNorm(2)
        norm(x)
        return norm(y)

    with pytest.raises(ValueError, match=r"group_norm: The rank of the inputs cannot change "
                                         r"between calls, the original call was rank=4 but this "
                                         r"call was rank=5"):
        hk.transform(f).init(None, jnp.ones([1, 2, 2, 4]), jnp.ones([1, 2, 2, 2, 4]))


def test_group_norm_rank1_input_raises_naming_shape():
    with pytest.raises(ValueError, match=r"group_norm: GroupNorm needs inputs with a batch and a "
                                         r"channel axis \(rank >= 2\), got shape \(4,\)"):
        _group_norm(2).init(None, jnp.ones([4]))


def test_group_norm_bad_axis_raises():
    with pytest.raises(ValueError, match=r"`axis` should be an int, slice or iterable of ints"):
        _group_norm(2, axis=1.0).init(None, jnp.ones([2, 4]))


def test_group_norm_params_take_input_dtype():
    params = _group_norm(2).init(None, jnp.ones([2, 4], jnp.bfloat16))
    assert params["group_norm"]["offset"].dtype == jnp.bfloat16
