"""Tests for ``hk.DepthwiseConv1D/2D/3D`` and ``hk.SeparableDepthwiseConv2D`` (API.md §3.2)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import hk_core as hk


def _random(shape, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), shape)


def _depthwise_reference(x, w, stride, padding, rate=1, dn=("NHWC", "HWIO", "NHWC")):
    # One filter group per input channel: lax's grouped conv with groups = in channels.
    channels = x.shape[dn[0].index("C")]
    n = w.ndim - 2
    return lax.conv_general_dilated(x, w, (stride,) * n if isinstance(stride, int) else stride,
                                    padding, rhs_dilation=(rate,) * n, dimension_numbers=dn,
                                    feature_group_count=channels)


class DepthwiseNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("multiplier1_same", 1, 1, 1, "SAME"),
        ("multiplier2_stride2", 2, 2, 1, "SAME"),
        ("multiplier3_valid_dilated", 3, 1, 2, "VALID"),
    )
    def test_2d_output_matches_lax_grouped_conv(self, multiplier, stride, rate, padding):
        x = _random((2, 7, 7, 3))
        w = _random((3, 3, 1, 3 * multiplier), seed=1)
        b = _random((3 * multiplier,), seed=2)
        f = hk.transform(lambda v: hk.DepthwiseConv2D(multiplier, 3, stride=stride, rate=rate,
                                                      padding=padding, name="dw")(v))
        out = self.variant(f.apply)({"dw": {"w": w, "b": b}}, None, x)
        expected = _depthwise_reference(x, w, stride, padding, rate) + b
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_channels_first_matches_lax_and_uses_broadcast_bias(self):
        x = _random((1, 2, 5, 5))
        w = _random((3, 3, 1, 4), seed=1)
        b = _random((4, 1, 1), seed=2)
        f = hk.transform(lambda v: hk.DepthwiseConv2D(2, 3, data_format="NCHW", name="dw")(v))
        out = self.variant(f.apply)({"dw": {"w": w, "b": b}}, None, x)
        expected = _depthwise_reference(x, w, 1, "SAME", dn=("NCHW", "HWIO", "NCHW")) + b
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_1d_with_padding_function_matches_lax_with_resolved_pairs(self):
        x = _random((1, 6, 2))
        w = _random((3, 1, 2), seed=1)
        f = hk.transform(lambda v: hk.DepthwiseConv1D(1, 3, padding=hk.pad.causal,
                                                      with_bias=False, name="dw")(v))
        out = self.variant(f.apply)({"dw": {"w": w}}, None, x)
        expected = _depthwise_reference(x, w, 1, [(2, 0)], dn=("NWC", "WIO", "NWC"))
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_separable_is_kh_by_1_conv_with_stride_then_1_by_kw_conv_with_bias(self):
        x = _random((1, 6, 6, 2))
        w1 = _random((3, 1, 1, 4), seed=1)
        w2 = _random((1, 3, 1, 4), seed=2)
        b = _random((4,), seed=3)
        params = {"separable_depthwise_conv2_d/~/depthwise_conv2_d": {"w": w1},
                  "separable_depthwise_conv2_d/~/depthwise_conv2_d_1": {"w": w2, "b": b}}
        f = hk.transform(lambda v: hk.SeparableDepthwiseConv2D(2, 3, stride=2)(v))
        out = self.variant(f.apply)(params, None, x)
        expected = _depthwise_reference(_depthwise_reference(x, w1, 2, "SAME"), w2, 1,
                                        "SAME") + b
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make, x_shape, expected", [
    (lambda: hk.DepthwiseConv1D(2, 3), (1, 6, 4), {"depthwise_conv1_d": {"b": (8,),
                                                                        "w": (3, 1, 8)}}),
    (lambda: hk.DepthwiseConv2D(1, (2, 3)), (1, 6, 6, 4),
     {"depthwise_conv2_d": {"b": (4,), "w": (2, 3, 1, 4)}}),
    (lambda: hk.DepthwiseConv3D(3, 2, data_format="NCDHW"), (1, 2, 3, 3, 3),
     {"depthwise_conv3_d": {"b": (6, 1, 1, 1), "w": (2, 2, 2, 1, 6)}}),
    (lambda: hk.DepthwiseConv2D(2, 3, with_bias=False), (1, 5, 5, 3),
     {"depthwise_conv2_d": {"w": (3, 3, 1, 6)}}),
    (lambda: hk.SeparableDepthwiseConv2D(2, (3, 5)), (1, 6, 6, 3),
     {"separable_depthwise_conv2_d/~/depthwise_conv2_d": {"w": (3, 1, 1, 6)},
      "separable_depthwise_conv2_d/~/depthwise_conv2_d_1": {"b": (6,), "w": (1, 5, 1, 6)}}),
])
def test_params_have_documented_paths_and_shapes(make, x_shape, expected):
    params = jax.eval_shape(hk.transform(lambda x: make()(x)).init, jax.random.PRNGKey(0),
                            jnp.zeros(x_shape))
    assert jax.tree.map(jnp.shape, params) == expected


def test_default_w_init_is_truncated_normal_with_stddev_one_over_sqrt_kernel_size():
    params = hk.transform(lambda x: hk.DepthwiseConv2D(2, (2, 3))(x)).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 5)))
    key = jax.random.split(jax.random.PRNGKey(0))[1]  # first key of the init sequence
    expected = jax.random.truncated_normal(key, -2.0, 2.0, (2, 3, 1, 10)) * np.float32(
        1 / np.sqrt(6))
    chex.assert_trees_all_close(params["depthwise_conv2_d"]["w"], expected, rtol=1e-6)
    assert list(params["depthwise_conv2_d"]) == ["w", "b"]


def test_separable_stride_goes_to_first_conv_only():
    def f():
        m = hk.SeparableDepthwiseConv2D(1, 3, stride=(2, 3))
        return m._conv1.stride, m._conv2.stride
    assert hk.transform(f).apply({}, None) == ((2, 3), (1, 1))


def test_input_of_wrong_rank_raises_value_error_naming_module_and_shape():
    f = hk.transform(lambda x: hk.DepthwiseConv2D(1, 3)(x))
    with pytest.raises(ValueError, match=r"depthwise_conv2_d: Input to DepthwiseConvND needs to "
                                         r"have rank in \[3, 4\], but input has shape \(4, 4\)"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((4, 4)))


def test_kernel_shape_of_wrong_length_raises_type_error_naming_argument():
    with pytest.raises(TypeError, match=r"depthwise_conv1_d: kernel_shape must be a scalar or "
                                        r"sequence of length 1 or sequence of length 1\."):
        hk.transform(lambda: hk.DepthwiseConv1D(1, (3, 3))).init(None)


@pytest.mark.parametrize("error_type", [ValueError, RuntimeError])
def test_unknown_padding_string_on_call_raises_value_and_runtime_error_naming_module(error_type):
    # Haiku 0.0.17 builds the layer and raises RuntimeError from lax when it is called.
    f = hk.transform(lambda x: hk.DepthwiseConv2D(1, 3, padding="FULL")(x))
    with pytest.raises(error_type, match=r"depthwise_conv2_d: padding must be 'SAME', 'VALID'.*"
                                         r"got 'FULL'"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))
