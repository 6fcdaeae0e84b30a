"""Tests for ``hk.ConvND`` and ``hk.Conv1D/2D/3D`` (hk_core/_src/layers/conv.py), API.md §3.2."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import hk_core as hk

# Layouts written out for lax, independent of the module's own dimension numbers.
_DN = {
    (1, "NWC"): ("NWC", "WIO", "NWC"),
    (2, "NHWC"): ("NHWC", "HWIO", "NHWC"),
    (3, "NDHWC"): ("NDHWC", "DHWIO", "NDHWC"),
    (1, "NCW"): ("NCW", "WIO", "NCW"),
    (2, "NCHW"): ("NCHW", "HWIO", "NCHW"),
}
_CLASSES = {1: hk.Conv1D, 2: hk.Conv2D, 3: hk.Conv3D}


def _random(shape, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), shape)


def _first_init_key(seed=0):
    # API.md §2.4: the first key of a sequence seeded with k is split(k)[1].
    return jax.random.split(jax.random.PRNGKey(seed))[1]


def _params(w, b=None, name="conv"):
    bundle = {"w": w}
    if b is not None:
        bundle["b"] = b
    return {name: bundle}


class ConvNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("1d_same", 1, "NWC", (2, 9, 3), 3, 1, 1, "SAME"),
        ("2d_same_stride2_even_input", 2, "NHWC", (2, 6, 6, 3), 3, 2, 1, "SAME"),
        ("2d_valid_dilated", 2, "NHWC", (1, 9, 9, 2), 3, 1, 2, "VALID"),
        ("3d_same", 3, "NDHWC", (1, 4, 5, 4, 2), (2, 3, 1), 1, 1, "SAME"),
        ("2d_channels_first", 2, "NCHW", (2, 3, 7, 7), 3, 2, 1, "VALID"),
        ("1d_channels_first", 1, "NCW", (2, 3, 8), 2, 1, 1, "SAME"),
    )
    def test_output_matches_lax_conv_with_string_padding(self, n, data_format, x_shape, kernel,
                                                         stride, rate, padding):
        # "2d_same_stride2_even_input" pads (0, 1) as lax's SAME, not hk.pad.same's (1, 1).
        x = _random(x_shape)
        channels_last = data_format.endswith("C")
        kernel = tuple(kernel) if isinstance(kernel, tuple) else (kernel,) * n
        in_channels = x_shape[-1] if channels_last else x_shape[1]
        w = _random(kernel + (in_channels, 4), seed=1)
        b = _random((4,) if channels_last else (4,) + (1,) * n, seed=2)
        f = hk.transform(lambda v: _CLASSES[n](4, kernel, stride=stride, rate=rate,
                                               padding=padding, data_format=data_format,
                                               name="conv")(v))
        out = self.variant(f.apply)(_params(w, b), None, x)
        expected = lax.conv_general_dilated(
            x, w, (stride,) * n, padding, rhs_dilation=(rate,) * n,
            dimension_numbers=_DN[(n, data_format)]) + b
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("one_pair", (1, 2), ((1, 2), (1, 2))),
        ("pair_per_dim", [(0, 1), (2, 0)], ((0, 1), (2, 0))),
        ("padfn", hk.pad.causal, ((4, 0), (4, 0))),  # causal(effective kernel 5) = (4, 0)
        ("padfn_per_dim", [hk.pad.full, hk.pad.valid], ((4, 4), (0, 0))),
    )
    def test_explicit_padding_is_resolved_per_dim(self, padding, pads):
        x = _random((1, 6, 7, 2))
        w = _random((3, 3, 2, 3), seed=1)
        f = hk.transform(lambda v: hk.Conv2D(3, 3, rate=2, padding=padding, with_bias=False,
                                             name="conv")(v))
        out = self.variant(f.apply)(_params(w), None, x)
        expected = lax.conv_general_dilated(x, w, (1, 1), pads, rhs_dilation=(2, 2),
                                            dimension_numbers=_DN[(2, "NHWC")])
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unbatched_input_gives_unbatched_output_equal_to_batched(self):
        x = _random((6, 6, 3))
        params = _params(_random((3, 3, 3, 4), seed=1), _random((4,), seed=2))
        apply = self.variant(hk.transform(lambda v: hk.Conv2D(4, 3, name="conv")(v)).apply)
        out = apply(params, None, x)
        chex.assert_shape(out, (6, 6, 4))
        chex.assert_trees_all_close(out, apply(params, None, x[None])[0], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_feature_groups_match_lax_grouped_conv(self):
        x = _random((2, 5, 5, 4))
        w = _random((3, 3, 2, 6), seed=1)
        f = hk.transform(lambda v: hk.Conv2D(6, 3, feature_group_count=2, with_bias=False,
                                             name="conv")(v))
        out = self.variant(f.apply)(_params(w), None, x)
        expected = lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                            dimension_numbers=_DN[(2, "NHWC")],
                                            feature_group_count=2)
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mask_is_multiplied_into_w(self):
        x = _random((1, 5, 5, 2))
        w = _random((3, 3, 2, 3), seed=1)
        mask = np.zeros((3, 3, 2, 3), np.float32)
        mask[1, 1] = 1.0  # keep only the centre tap: a 1x1 convolution
        f = hk.transform(lambda v: hk.Conv2D(3, 3, mask=mask, with_bias=False, name="conv")(v))
        out = self.variant(f.apply)(_params(w), None, x)
        expected = jnp.einsum("nhwi,io->nhwo", x, w[1, 1])
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make, x_shape, expected", [
    (lambda: hk.Conv1D(5, 3), (2, 8, 3), {"conv1_d": {"b": (5,), "w": (3, 3, 5)}}),
    (lambda: hk.Conv2D(5, 3), (2, 8, 8, 3), {"conv2_d": {"b": (5,), "w": (3, 3, 3, 5)}}),
    (lambda: hk.Conv3D(5, [2]), (1, 4, 4, 4, 3),
     {"conv3_d": {"b": (5,), "w": (2, 2, 2, 3, 5)}}),
    (lambda: hk.Conv2D(5, 3, data_format="NCHW"), (2, 3, 8, 8),
     {"conv2_d": {"b": (5, 1, 1), "w": (3, 3, 3, 5)}}),
    (lambda: hk.ConvND(2, 5, (1, 2), data_format="channels_first"), (2, 3, 8, 8),
     {"conv_nd": {"b": (5, 1, 1), "w": (1, 2, 3, 5)}}),
    (lambda: hk.Conv2D(6, 3, feature_group_count=3), (2, 8, 8, 9),
     {"conv2_d": {"b": (6,), "w": (3, 3, 3, 6)}}),
    (lambda: hk.Conv2D(5, 3, with_bias=False), (2, 8, 8, 3), {"conv2_d": {"w": (3, 3, 3, 5)}}),
])
def test_params_have_documented_paths_and_shapes(make, x_shape, expected):
    init = hk.transform(lambda x: make()(x)).init
    params = jax.eval_shape(init, jax.random.PRNGKey(0), jnp.zeros(x_shape))
    assert jax.tree.map(jnp.shape, params) == expected


def test_w_is_created_before_b():
    params = hk.transform(lambda x: hk.Conv1D(2, 1)(x)).init(jax.random.PRNGKey(0),
                                                             jnp.zeros((1, 2, 1)))
    assert list(params["conv1_d"]) == ["w", "b"]


@pytest.mark.parametrize("groups, fan_in", [(1, 3 * 3 * 4), (2, 3 * 3 * 2)])
def test_default_w_init_is_truncated_normal_with_stddev_one_over_sqrt_fan_in(groups, fan_in):
    f = hk.transform(lambda x: hk.Conv2D(4, 3, feature_group_count=groups)(x))
    params = f.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 5, 4)))
    shape = (3, 3, 4 // groups, 4)
    expected = jax.random.truncated_normal(_first_init_key(), -2.0, 2.0, shape) * np.float32(
        1 / np.sqrt(fan_in))
    chex.assert_trees_all_close(params["conv2_d"]["w"], expected, rtol=1e-6)
    chex.assert_trees_all_equal(params["conv2_d"]["b"], jnp.zeros((4,)))


def test_params_take_input_dtype():
    params = jax.eval_shape(hk.transform(lambda x: hk.Conv1D(2, 3)(x)).init,
                            jax.random.PRNGKey(0), jnp.zeros((1, 4, 3), jnp.bfloat16))
    assert {v.dtype for v in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("argument, kwargs", [
    ("kernel_shape", dict(kernel_shape=(3, 3))),
    ("stride", dict(kernel_shape=3, stride=(1, 2))),
    ("rate", dict(kernel_shape=3, rate=(1, 1))),
])
def test_sequence_of_wrong_length_raises_type_error_naming_module_and_argument(argument, kwargs):
    expected = (rf"conv3_d: {argument} must be a scalar or sequence of length 1 or sequence of "
                r"length 3\. Got \(.*\) \(length 2\)")
    with pytest.raises(TypeError, match=expected):
        hk.transform(lambda: hk.Conv3D(2, **kwargs)).init(None)


@pytest.mark.parametrize("x_shape", [(3,), (1, 2, 5, 5, 3)])
def test_input_of_wrong_rank_raises_value_error_with_allowed_ranks_and_shape(x_shape):
    expected = (rf"conv2_d: Input to ConvND needs to have rank in \[3, 4\], but input has shape "
                rf"{re_shape(x_shape)}")
    with pytest.raises(ValueError, match=expected):
        hk.transform(lambda x: hk.Conv2D(2, 3)(x)).init(jax.random.PRNGKey(0), jnp.zeros(x_shape))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_mask_of_other_shape_raises_value_error_with_both_shapes():
    f = hk.transform(lambda x: hk.Conv2D(2, 3, mask=np.ones((3, 3, 1, 2)))(x))
    with pytest.raises(ValueError, match=r"conv2_d: Mask needs to have the same shape as weights"
                                         r"\. Shapes are: mask \(3, 3, 1, 2\), weights "
                                         r"\(3, 3, 4, 2\)"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 5, 4)))


def test_channels_not_divisible_by_groups_raises_value_error():
    f = hk.transform(lambda x: hk.Conv2D(2, 3, feature_group_count=2)(x))
    with pytest.raises(ValueError, match=r"conv2_d: input channels \(3, .*\) must be divisible by "
                                         r"feature_group_count=2"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 5, 3)))


def test_unknown_data_format_raises_value_error_naming_module():
    with pytest.raises(ValueError, match=r"conv2_d: Unable to extract channel information from "
                                         r"data_format='NCHWC'"):
        hk.transform(lambda: hk.Conv2D(2, 3, data_format="NCHWC")).init(None)


@pytest.mark.parametrize("error_type", [ValueError, RuntimeError])
def test_unknown_padding_string_on_call_raises_value_and_runtime_error_naming_module(error_type):
    # Haiku 0.0.17 raises RuntimeError ("Unrecognized padding type ...") from lax on call.
    f = hk.transform(lambda x: hk.Conv1D(2, 3, padding="FULL")(x))
    with pytest.raises(error_type, match=r"conv1_d: padding must be 'SAME', 'VALID'.*got 'FULL'"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 1)))


def test_unknown_padding_string_is_kept_upper_cased_until_call():
    # Haiku 0.0.17 builds Conv1D(padding='full') and stores 'FULL'; only the call fails.
    assert hk.transform(lambda: hk.Conv1D(2, 3, padding="full").padding).apply({}, None) == "FULL"


def test_lower_case_padding_string_is_accepted():
    f = hk.transform(lambda x: hk.Conv1D(2, 3, padding="valid")(x))
    out = jax.eval_shape(f.init, jax.random.PRNGKey(0), jnp.zeros((1, 6, 1)))
    assert out["conv1_d"]["w"].shape == (3, 1, 2)
    assert hk.transform(lambda: hk.Conv1D(2, 3, padding="valid").padding).apply({}, None) == (
        "VALID")


def test_padding_pairs_of_wrong_count_raise_type_error_naming_module():
    with pytest.raises(TypeError, match=r"conv2_d: Padding .* sequence of length 2\."):
        hk.transform(lambda: hk.Conv2D(2, 3, padding=[(1, 1)] * 3)).init(None)


@pytest.mark.parametrize("cls", [hk.ConvND, hk.ConvNDTranspose])
def test_non_positive_num_spatial_dims_raises_value_error(cls):
    with pytest.raises(ValueError, match=r"num_spatial_dims must be a positive integer, got 0"):
        hk.transform(lambda: cls(0, 2, 3)).init(None)


def test_conv_nd_is_named_conv_nd_and_subclasses_by_class_name():
    def f():
        return [m.module_name for m in (hk.ConvND(1, 2, 3), hk.Conv1D(2, 3), hk.Conv2D(2, 3),
                                        hk.Conv3D(2, 3))]
    assert hk.transform(f).apply({}, None) == ["conv_nd", "conv1_d", "conv2_d", "conv3_d"]


def test_jitted_apply_traces_once_for_same_shapes():
    f = hk.transform(lambda x: hk.Conv2D(2, 3, name="conv")(x))
    x = jnp.ones((1, 4, 4, 1))
    params = _params(jnp.ones((3, 3, 1, 2)), jnp.zeros((2,)))
    chex.clear_trace_counter()
    apply = jax.jit(chex.assert_max_traces(f.apply, n=1))
    for scale in (1.0, 2.0):
        apply(params, None, x * scale)
