"""Tests for ``hk.Bias``, ``hk.Sequential``, ``hk.BatchApply``, ``hk.expand_apply``,
``hk.one_hot`` and ``hk.multinomial`` (hk_core/_src/layers/basic.py, API.md §3.1)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk


def _bias_shape(x_shape, **kwargs):
    params = jax.eval_shape(hk.transform(lambda x: hk.Bias(**kwargs)(x)).init,
                            jax.random.PRNGKey(0), jnp.zeros(x_shape))
    return params["bias"]["b"].shape


@pytest.mark.parametrize("x_shape, bias_dims, expected", [
    ((2, 3, 4), None, (3, 4)),
    ((2, 3, 4), [], ()),
    ((2, 3, 4), [-1], (4,)),
    ((2, 5, 6, 3), [1, 2], (5, 6, 1)),
    ((1, 2, 3), [-1, -2], (2, 3)),
    ((1, 2, 3, 4), [1, 3], (2, 1, 4)),
])
def test_bias_shape_follows_bias_dims(x_shape, bias_dims, expected):
    assert _bias_shape(x_shape, bias_dims=bias_dims) == expected


class BiasValuesTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_bias_is_added_broadcast_over_other_axes(self):
        x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4))
        b = np.array([1.0, -2.0, 3.0, 0.5], np.float32)
        out = self.variant(hk.transform(lambda v: hk.Bias(bias_dims=[-1])(v)).apply)(
            {"bias": {"b": b}}, None, x)
        chex.assert_trees_all_close(out, np.asarray(x) + b)

    @chex.variants(with_jit=True, without_jit=True)
    def test_multiplier_scales_bias_before_adding(self):
        x = jnp.ones((2, 3))
        b = np.array([1.0, 2.0, 3.0], np.float32)
        out = self.variant(hk.transform(lambda v: hk.Bias()(v, multiplier=-2.0)).apply)(
            {"bias": {"b": b}}, None, x)
        chex.assert_trees_all_close(out, 1.0 - 2.0 * np.broadcast_to(b, (2, 3)))


def test_bias_init_is_zeros_in_input_dtype_and_records_shapes():
    def f(x):
        module = hk.Bias()
        module(x)
        return module.bias_shape, module.input_size

    f_t = hk.transform(f)
    x = jnp.zeros((2, 3), jnp.bfloat16)
    params = f_t.init(jax.random.PRNGKey(0), x)
    chex.assert_trees_all_equal(params, {"bias": {"b": jnp.zeros((3,), jnp.bfloat16)}})
    assert f_t.apply(params, None, x) == ((3,), (3,))


def test_bias_on_vector_raises_value_error_naming_module_and_shape():
    with pytest.raises(ValueError, match=r"bias: Rank of inputs must be at least 2, got shape "
                                         r"\(3,\)"):
        hk.transform(lambda x: hk.Bias()(x)).init(jax.random.PRNGKey(0), jnp.zeros((3,)))


@pytest.mark.parametrize("bias_dims, message", [
    ([0], r"Cannot apply bias across the minibatch dimension\."),
    ([-3], r"Cannot apply bias across the minibatch dimension\."),
    ((1, 5), r"Dimension 5 \(bias_dims=\(1, 5\)\) out of range for input of rank 3\."),
])
def test_bad_bias_dims_raise_value_error(bias_dims, message):
    with pytest.raises(ValueError, match="bias: " + message):
        _bias_shape((2, 3, 4), bias_dims=bias_dims)


@pytest.mark.parametrize("output_size", [(2, 3), [2, 2], (4,)])
def test_output_size_other_than_input_shape_tuple_raises_value_error(output_size):
    # A list never equals the shape tuple, so it is rejected like a wrong size.
    expected = str((-1, *output_size)).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"bias: Input shape must be {expected} not "
                                         r"\(2, 2, 2\)"):
        _bias_shape((2, 2, 2), output_size=output_size)


def test_output_size_equal_to_input_shape_tuple_is_accepted():
    assert _bias_shape((2, 2, 2), output_size=(2, 2)) == (2, 2)


def test_sequential_passes_extra_arguments_to_first_layer_only():
    calls = []

    def first(x, scale, *, shift):
        calls.append(("first", scale, shift))
        return x * scale + shift

    def second(x):
        calls.append(("second",))
        return x + 1

    out = hk.transform(lambda x: hk.Sequential([first, second])(x, 3.0, shift=1.0)).apply(
        {}, None, 2.0)
    assert out == 8.0 and calls == [("first", 3.0, 1.0), ("second",)]


def test_sequential_layers_built_outside_keep_names_and_inner_modules_are_prefixed():
    def f(x):
        outer = hk.Linear(2)
        inner = lambda v: hk.Linear(3)(v)  # noqa: E731 - builds its module while running
        return hk.Sequential([outer, inner])(x)

    params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    assert list(params) == ["linear", "sequential/linear"]


def test_sequential_is_named_sequential_and_empty_sequence_is_identity():
    def f(x):
        module = hk.Sequential([])
        return module.module_name, module(x)

    assert hk.transform(f).apply({}, None, 5.0) == ("sequential", 5.0)


class BatchApplyTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_batch_apply_merges_leading_dims_and_splits_outputs(self):
        x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5))
        seen = []

        def f(v, bias):
            seen.append(v.shape)
            return {"sum": v.sum(-1, keepdims=True) + bias, "row": v[:, 0]}

        out = self.variant(lambda v: hk.BatchApply(f)(v, bias=1.0))(x)
        assert seen[-1] == (12, 5)
        chex.assert_trees_all_close(out, {"sum": np.asarray(x).sum(-1, keepdims=True) + 1.0,
                                          "row": np.asarray(x)[:, :, 0]}, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_batch_apply_with_three_dims_uses_first_array_for_leading_shape(self):
        x = jnp.ones((2, 3, 4, 5))
        y = jnp.ones((2, 3, 4))
        out = self.variant(lambda a, b: hk.BatchApply(lambda u, v: u[..., 0] + v, 3)(a, b))(x, y)
        chex.assert_shape(out, (2, 3, 4))


def test_batch_apply_without_array_raises_value_error():
    with pytest.raises(ValueError, match="BatchApply: at least one argument must be an array"):
        hk.BatchApply(lambda v: v)(1.0)


def test_batch_apply_first_array_with_too_few_dims_raises_value_error_with_shape():
    with pytest.raises(ValueError, match=r"num_dims=2 axes, got shape \(3,\)"):
        hk.BatchApply(lambda v: v)(jnp.zeros((3,)))


@pytest.mark.parametrize("axis, expected_inner_shape", [(0, (1, 3)), (-1, (3, 1))])
def test_expand_apply_adds_and_removes_axis(axis, expected_inner_shape):
    seen = []

    def f(v):
        seen.append(v.shape)
        return v * 2

    out = hk.expand_apply(f, axis=axis)(jnp.ones((3,)))
    assert seen == [expected_inner_shape]
    chex.assert_trees_all_equal(out, 2 * jnp.ones((3,)))


def test_expand_apply_with_other_axis_raises_value_error_when_wrapping():
    with pytest.raises(ValueError, match=r"expand_apply currently only supports axis=0 or "
                                         r"axis=-1\. Got axis=1"):
        hk.expand_apply(lambda v: v, axis=1)


def test_one_hot_matches_numpy_eye():
    out = hk.one_hot(jnp.array([[0, 2], [1, 1]]), 3, dtype=jnp.int32)
    chex.assert_trees_all_equal(out, np.eye(3, dtype=np.int32)[[[0, 2], [1, 1]]])


def test_multinomial_has_samples_axis_last_and_follows_logits():
    logits = jnp.log(jnp.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]))
    samples = hk.multinomial(jax.random.PRNGKey(0), logits, num_samples=400)
    assert samples.shape == (2, 400) and jnp.issubdtype(samples.dtype, jnp.integer)
    assert set(np.asarray(samples[0]).tolist()) == {1}
    counts = np.bincount(np.asarray(samples[1]), minlength=3)
    assert counts[1] == 0 and 150 < counts[0] < 250


def test_multinomial_draws_are_categorical_with_samples_as_leading_shape():
    key = jax.random.PRNGKey(1)
    logits = jax.random.normal(jax.random.PRNGKey(2), (3, 5))
    expected = jax.random.categorical(key, logits, shape=(7, 3)).T
    chex.assert_trees_all_equal(hk.multinomial(key, logits, 7), expected)
