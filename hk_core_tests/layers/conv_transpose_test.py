"""Tests for ``hk.ConvNDTranspose`` and ``hk.Conv1D/2D/3DTranspose`` (API.md §3.2)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import hk_core as hk

# Kernel layout <spatial>OI, written out for lax independently of the module.
_DN = {
    "NWC": ("NWC", "WOI", "NWC"),
    "NHWC": ("NHWC", "HWOI", "NHWC"),
    "NCHW": ("NCHW", "HWOI", "NCHW"),
}


def _random(shape, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), shape)


def _apply(variant, module_fn, w, b, x):
    params = {"deconv": {"w": w} if b is None else {"w": w, "b": b}}
    return variant(hk.transform(module_fn).apply)(params, None, x)


class ConvTransposeNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("1d_same_stride2", hk.Conv1DTranspose, "NWC", (2, 5, 3), 3, 2, "SAME", (2, 10, 4)),
        ("1d_valid_stride2", hk.Conv1DTranspose, "NWC", (2, 5, 3), 3, 2, "VALID", (2, 11, 4)),
        ("1d_valid_stride3_small_kernel", hk.Conv1DTranspose, "NWC", (1, 4, 2), 2, 3, "VALID",
         (1, 12, 4)),
        ("2d_same_stride1", hk.Conv2DTranspose, "NHWC", (1, 4, 5, 2), 3, 1, "SAME",
         (1, 4, 5, 4)),
        ("2d_channels_first", hk.Conv2DTranspose, "NCHW", (1, 2, 3, 3), 2, 2, "VALID",
         (1, 4, 6, 6)),
    )
    def test_output_matches_lax_conv_transpose_and_documented_size(
            self, cls, data_format, x_shape, kernel, stride, padding, out_shape):
        # Sizes: SAME -> in * stride; VALID -> in * stride + max(kernel - stride, 0).
        n = len(x_shape) - 2
        channels_last = data_format.endswith("C")
        in_channels = x_shape[-1] if channels_last else x_shape[1]
        x = _random(x_shape)
        w = _random((kernel,) * n + (4, in_channels), seed=1)
        b = _random((4,) if channels_last else (4,) + (1,) * n, seed=2)
        out = _apply(self.variant, lambda v: cls(4, kernel, stride=stride, padding=padding,
                                                 data_format=data_format, name="deconv")(v),
                     w, b, x)
        chex.assert_shape(out, out_shape)
        expected = lax.conv_transpose(x, w, (stride,) * n, padding,
                                      dimension_numbers=_DN[data_format]) + b
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("same_odd_output", "SAME", 5, 3, 2, 9),
        ("same_exact", "SAME", 4, 4, 2, 8),
        ("valid_larger_output", "VALID", 4, 3, 2, 10),
    )
    def test_output_shape_pads_to_exact_size_by_documented_formula(self, padding, size_in,
                                                                   kernel, stride, size_out):
        x = _random((2, size_in, 3))
        w = _random((kernel, 2, 3), seed=1)
        out = _apply(self.variant, lambda v: hk.Conv1DTranspose(
            2, kernel, stride=stride, output_shape=size_out, padding=padding, with_bias=False,
            name="deconv")(v), w, None, x)
        chex.assert_shape(out, (2, size_out, 2))
        if padding == "VALID":
            before = 0
        else:
            before = max(0, (size_in - 1) * stride + kernel - size_out) // 2
        low = kernel - 1 - before
        high = (size_out + kernel - 1) - ((size_in - 1) * stride + 1) - low
        expected = lax.conv_general_dilated(x, w, (1,), [(low, high)], lhs_dilation=(stride,),
                                            dimension_numbers=_DN["NWC"])
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("same", "SAME", 10), ("valid", "VALID", 11))
    def test_output_shape_equal_to_default_size_gives_default_output(self, padding, size_out):
        x = _random((1, 5, 2))
        w = _random((3, 2, 2), seed=1)

        def both(v):
            a = hk.Conv1DTranspose(2, 3, stride=2, padding=padding, with_bias=False,
                                   name="deconv")(v)
            b = hk.Conv1DTranspose(2, 3, stride=2, padding=padding, output_shape=[size_out],
                                   with_bias=False, name=hk.force_name("deconv"))(v)
            return a, b

        params = {"deconv": {"w": w}}
        plain, shaped = self.variant(hk.transform(both).apply)(params, None, x)
        chex.assert_trees_all_close(shaped, plain, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_explicit_padding_pairs_go_unchanged_to_lax(self):
        x = _random((1, 4, 2))
        w = _random((3, 2, 2), seed=1)
        out = _apply(self.variant, lambda v: hk.Conv1DTranspose(
            2, 3, stride=2, padding=(1, 0), with_bias=False, name="deconv")(v), w, None, x)
        expected = lax.conv_transpose(x, w, (2,), [(1, 0)], dimension_numbers=_DN["NWC"])
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unbatched_input_gives_unbatched_output_equal_to_batched(self):
        x = _random((4, 4, 3))
        params = {"deconv": {"w": _random((3, 3, 2, 3), seed=1), "b": _random((2,), seed=2)}}
        apply = self.variant(hk.transform(
            lambda v: hk.Conv2DTranspose(2, 3, stride=2, name="deconv")(v)).apply)
        out = apply(params, None, x)
        chex.assert_shape(out, (8, 8, 2))
        chex.assert_trees_all_close(out, apply(params, None, x[None])[0], rtol=1e-6)


@pytest.mark.parametrize("make, x_shape, expected", [
    (lambda: hk.Conv1DTranspose(5, 3), (2, 8, 3),
     {"conv1_d_transpose": {"b": (5,), "w": (3, 5, 3)}}),
    (lambda: hk.Conv2DTranspose(5, (2, 3)), (2, 8, 8, 3),
     {"conv2_d_transpose": {"b": (5,), "w": (2, 3, 5, 3)}}),
    (lambda: hk.Conv3DTranspose(5, 2, with_bias=False), (1, 2, 2, 2, 3),
     {"conv3_d_transpose": {"w": (2, 2, 2, 5, 3)}}),
    (lambda: hk.ConvNDTranspose(2, 5, 3, data_format="channels_first"), (2, 3, 4, 4),
     {"conv_nd_transpose": {"b": (5, 1, 1), "w": (3, 3, 5, 3)}}),
])
def test_params_have_documented_paths_and_shapes(make, x_shape, expected):
    params = jax.eval_shape(hk.transform(lambda x: make()(x)).init, jax.random.PRNGKey(0),
                            jnp.zeros(x_shape))
    assert jax.tree.map(jnp.shape, params) == expected


def test_default_w_init_is_truncated_normal_with_stddev_one_over_sqrt_kernel_times_in():
    params = hk.transform(lambda x: hk.Conv1DTranspose(2, 3)(x)).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 4, 5)))
    key = jax.random.split(jax.random.PRNGKey(0))[1]  # first key of the init sequence
    expected = jax.random.truncated_normal(key, -2.0, 2.0, (3, 2, 5)) * np.float32(
        1 / np.sqrt(3 * 5))
    chex.assert_trees_all_close(params["conv1_d_transpose"]["w"], expected, rtol=1e-6)
    assert list(params["conv1_d_transpose"]) == ["w", "b"]


def test_output_shape_with_explicit_padding_raises_value_error():
    with pytest.raises(ValueError, match=r"conv1_d_transpose: When specifying output_shape, "
                                         r"ensure that padding is 'VALID' or 'SAME', got "
                                         r"padding=\(1, 1\)"):
        hk.transform(lambda: hk.Conv1DTranspose(2, 3, output_shape=8, padding=(1, 1))).init(None)


@pytest.mark.parametrize("padding, size_in, expected_in", [("SAME", 4, 5), ("VALID", 5, 4)])
def test_input_size_that_cannot_give_output_shape_raises_value_error(padding, size_in,
                                                                     expected_in):
    # SAME: in must be ceil(9 / 2) = 5; VALID: in must be (9 - 3 + 2) // 2 = 4.
    f = hk.transform(lambda x: hk.Conv1DTranspose(2, 3, stride=2, output_shape=9,
                                                  padding=padding)(x))
    with pytest.raises(ValueError, match=rf"conv1_d_transpose: The expected input size "
                                         rf"{expected_in} doesn't match the actual input size "
                                         rf"{size_in}"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, size_in, 1)))


def test_padding_function_raises_type_error_naming_module():
    with pytest.raises(TypeError, match=r"conv2_d_transpose: ConvNDTranspose takes padding "
                                        r"'SAME', 'VALID' or \(low, high\) pairs"):
        hk.transform(lambda: hk.Conv2DTranspose(2, 3, padding=hk.pad.same)).init(None)


def test_input_of_wrong_rank_raises_value_error_with_allowed_ranks_and_shape():
    f = hk.transform(lambda x: hk.Conv1DTranspose(2, 3)(x))
    with pytest.raises(ValueError, match=r"conv1_d_transpose: Input to ConvNDTranspose needs to "
                                         r"have rank in \[2, 3\], but input has shape "
                                         r"\(1, 2, 3, 4\)"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 2, 3, 4)))


def test_mask_of_other_shape_raises_value_error_with_both_shapes():
    f = hk.transform(lambda x: hk.Conv1DTranspose(2, 3, mask=np.ones((3, 1, 2)))(x))
    with pytest.raises(ValueError, match=r"Mask needs to have the same shape as weights\. Shapes "
                                         r"are: mask \(3, 1, 2\), weights \(3, 2, 1\)"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 1)))


def test_output_shape_of_wrong_length_raises_type_error_naming_argument():
    with pytest.raises(TypeError, match=r"conv2_d_transpose: output_shape must be a scalar or "
                                        r"sequence of length 1 or sequence of length 2\."):
        hk.transform(lambda: hk.Conv2DTranspose(2, 3, output_shape=(4, 4, 4))).init(None)


@pytest.mark.parametrize("error_type", [ValueError, RuntimeError])
def test_unknown_padding_string_on_call_raises_value_and_runtime_error_naming_module(error_type):
    # Haiku 0.0.17 builds the layer and raises RuntimeError from lax when it is called.
    f = hk.transform(lambda x: hk.Conv1DTranspose(2, 3, padding="FULL")(x))
    with pytest.raises(error_type, match=r"conv1_d_transpose: padding must be 'SAME', 'VALID', a "
                                         r"\(low, high\) pair or a sequence of pairs, got 'FULL'"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 1)))


def test_padding_is_stored_as_given():
    # Haiku 0.0.17 keeps a transposed conv's padding unchanged: case and list included.
    f = hk.transform(lambda: (hk.Conv1DTranspose(2, 3, padding="same").padding,
                              hk.Conv2DTranspose(2, 3, padding=[(1, 2)]).padding))
    assert f.apply({}, None) == ("same", [(1, 2)])
