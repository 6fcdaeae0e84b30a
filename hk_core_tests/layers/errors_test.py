"""Typed layer errors (hk.errors): the class, its fields, and the builtin type it still is."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.layers import conv

_KEY = jax.random.PRNGKey(0)


def _init(f, *args):
    return hk.transform_with_state(f).init(_KEY, *args)


def _mlp_dropout_without_rng(x):
    return hk.nets.MLP([2])(x, dropout_rate=0.5)


# (id, raising call, builtin type, error class, match, module_path, argument, expected, got)
_CASES = [
    ("linear_scalar", lambda: _init(lambda x: hk.Linear(2)(x), jnp.ones([])),
     ValueError, hk.errors.InputShapeError, "Linear input must not be a scalar",
     "linear", "inputs", "rank >= 1", ()),
    ("conv2d_input_rank", lambda: _init(lambda x: hk.Conv2D(2, 3)(x), jnp.ones([4, 4])),
     ValueError, hk.errors.InputShapeError, r"Input to ConvND needs to have rank in \[3, 4\]",
     "conv2_d", "inputs", "rank in [3, 4]", (4, 4)),
    ("conv2d_kernel_shape", lambda: _init(lambda: hk.Conv2D(2, kernel_shape=(3, 3, 3))),
     TypeError, hk.errors.ArgumentTypeError,
     "conv2_d: kernel_shape must be a scalar or sequence of length 1 or sequence of length 2",
     "conv2_d", "kernel_shape", "length 1 or 2", (3, 3, 3)),
    ("conv2d_padding_pairs", lambda: _init(lambda: hk.Conv2D(2, 3, padding=[(1, 1)] * 3)),
     TypeError, hk.errors.ArgumentTypeError, r"conv2_d: Padding \[\(1, 1\), \(1, 1\), \(1, 1\)\]",
     "conv2_d", "padding", "length 1 or 2", [(1, 1)] * 3),
    ("conv2d_data_format", lambda: _init(lambda: hk.Conv2D(2, 3, data_format="XYZ")),
     ValueError, hk.errors.ConfigurationError,
     "conv2_d: Unable to extract channel information from data_format='XYZ'",
     "conv2_d", "data_format",
     "'channels_last', 'channels_first' or a layout such as 'NHWC'", "XYZ"),
    ("layer_norm_axis", lambda: _init(
        lambda x: hk.LayerNorm(axis=3, create_scale=False, create_offset=False)(x),
        jnp.ones([2, 3])),
     ValueError, hk.errors.ConfigurationError, "`axis`=3 is out of range for inputs of rank 2",
     "layer_norm", "axis", "an axis of inputs of rank 2", 3),
    ("batch_norm_channel_axis", lambda: _init(
        lambda x: hk.BatchNorm(True, True, 0.9, data_format="channels_first")(x, True),
        jnp.ones([3])),
     ValueError, hk.errors.InputShapeError, "channel axis 1 does not exist in inputs of shape",
     "batch_norm", "inputs", "a channel axis 1", (3,)),
    ("attention_query_rank", lambda: _init(
        lambda q: hk.MultiHeadAttention(2, 4, w_init=jnp.ones)(q, q, q), jnp.ones([4])),
     ValueError, hk.errors.InputShapeError, r"query must have rank >= 2",
     "multi_head_attention", "query", "rank >= 2", (4,)),
    ("mlp_dropout_without_rng", lambda: _init(_mlp_dropout_without_rng, jnp.ones([1, 3])),
     ValueError, hk.errors.ConfigurationError, "When using dropout an rng key must be passed",
     "mlp", "rng", "a key when dropout_rate is set", None),
    ("reshape_two_unknowns", lambda: _init(lambda x: hk.Reshape([-1, -1])(x), jnp.ones([2, 6])),
     ValueError, hk.errors.ConfigurationError, "-1 can only occur once in `output_shape`",
     "reshape", "output_shape", "at most one -1", (-1, -1)),
    ("reshape_incompatible", lambda: _init(lambda x: hk.Reshape([4])(x), jnp.ones([2, 6])),
     TypeError, hk.errors.ArgumentTypeError, "cannot reshape the trailing axes",
     "reshape", "inputs", "trailing axes of size 4", (2, 6)),
    ("max_pool_padding", lambda: _init(
        lambda x: hk.MaxPool([1, 2, 1], [1, 2, 1], "same")(x), jnp.ones([1, 4, 1])),
     ValueError, hk.errors.ConfigurationError, "Invalid padding 'same', must be 'SAME' or 'VALID'",
     "max_pool", "padding", "'SAME' or 'VALID'", "same"),
    ("avg_pool_function_window", lambda: hk.avg_pool(jnp.ones([4, 4]), [1, 2, 2], [1, 1], "SAME"),
     ValueError, hk.errors.ConfigurationError, "avg_pool: window_shape",
     "avg_pool", "window_shape", "at most 2 entries", (1, 2, 2)),
    ("embed_float_ids", lambda: _init(lambda i: hk.Embed(4, 2)(i), jnp.ones([3])),
     ValueError, hk.errors.InputShapeError, "must take an array of integer dtype",
     "embed", "ids", "an integer dtype", jnp.dtype("float32")),
    ("get_channel_index", lambda: hk.get_channel_index("XYZ"),
     ValueError, hk.errors.ConfigurationError, "Unable to extract channel information",
     None, "data_format", "'channels_last', 'channels_first' or a layout such as 'NHWC'", "XYZ"),
]


@pytest.mark.parametrize(
    "call, builtin, cls, match, module_path, argument, expected, got",
    [case[1:] for case in _CASES], ids=[case[0] for case in _CASES])
def test_layer_raises_typed_error_with_fields(call, builtin, cls, match, module_path, argument,
                                              expected, got):
    with pytest.raises(builtin, match=match) as info:  # caught as the builtin, as before
        call()
    error = info.value
    assert type(error) is cls
    assert isinstance(error, hk.errors.LayerError)
    assert (error.module_path, error.argument, error.expected, error.got) == (
        module_path, argument, expected, got)


def test_unknown_padding_is_value_and_runtime_error_with_fields():
    f = lambda x: hk.Conv1D(2, 3, padding="full")(x)  # noqa: E731
    with pytest.raises(RuntimeError, match="conv1_d: padding must be 'SAME', 'VALID'") as info:
        _init(f, jnp.ones([1, 5, 1]))
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, hk.errors.ConfigurationError)
    assert (error.module_path, error.argument, error.expected) == (
        "conv1_d", "padding", "'SAME' or 'VALID'")


def test_unknown_padding_is_still_importable_from_conv():
    assert conv.UnknownPaddingError is hk.errors.UnknownPaddingError


def test_nested_module_path_names_the_inner_module():
    f = lambda x: hk.nets.MLP([2, 3])(x)  # noqa: E731
    with pytest.raises(ValueError, match="Linear input must not be a scalar") as info:
        _init(f, jnp.ones([]))
    assert info.value.module_path == "mlp/~/linear_0"


def test_typed_error_pickles_with_its_fields():
    with pytest.raises(ValueError, match="Linear input must not be a scalar") as info:
        _init(lambda x: hk.Linear(2)(x), jnp.ones([]))
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is hk.errors.InputShapeError
    assert str(copy) == str(info.value)
    assert (copy.module_path, copy.argument, copy.expected, copy.got) == (
        "linear", "inputs", "rank >= 1", ())


def test_parameter_shape_error_has_module_path():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    params = f.init(_KEY, jnp.ones([1, 3]))
    with pytest.raises(ValueError, match="'linear/w' with retrieved shape") as info:
        f.apply(params, None, jnp.ones([1, 4]))
    assert type(info.value) is hk.errors.ParameterShapeError
    assert info.value.module_path == info.value.bundle == "linear"


def test_missing_parameter_error_has_module_path():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    with pytest.raises(ValueError, match="Unable to retrieve parameter 'w'") as info:
        f.apply({}, None, np.ones([1, 3]))
    assert type(info.value) is hk.errors.MissingParameterError
    assert info.value.module_path == info.value.bundle == "linear"
