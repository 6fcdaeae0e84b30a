"""Tests for hk_core/_src/transforms/layer_stack.py (API.md §1.5, §3.9)."""

import inspect
import re

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

SEED = 7


def _sequence_keys(key, n):
    """The first ``n`` keys of an hk PRNGSequence, written from API.md §2.4."""
    keys = []
    for _ in range(n):
        key, sub = jax.random.split(key)
        keys.append(sub)
    return keys


def _linear_tanh(x):
    return jnp.tanh(hk.Linear(3)(x))


def _stack_of(layer, n, **kwargs):
    return hk.transform(lambda *args, **call_kwargs: hk.layer_stack(n, **kwargs)(layer)(
        *args, **call_kwargs))


# ----------------------------------------------------------------------------- names


def test_params_get_leading_layer_axis_under_default_scope_in_sorted_order():
    params = _stack_of(_linear_tanh, 4).init(0, jnp.ones([2, 3]))
    assert jax.tree.map(jnp.shape, params) == {
        "__layer_stack_no_per_layer/linear": {"b": (4, 3), "w": (4, 3, 3)}}
    assert list(params["__layer_stack_no_per_layer/linear"]) == ["b", "w"]


def test_name_argument_replaces_the_default_scope():
    params = _stack_of(_linear_tanh, 2, name="blocks").init(0, jnp.ones([1, 3]))
    assert list(params) == ["blocks/linear"]


def test_second_stack_gets_a_uniquified_scope():
    def f(x):
        x = hk.layer_stack(2)(_linear_tanh)(x)
        return hk.layer_stack(3)(_linear_tanh)(x)
    params = hk.transform(f).init(0, jnp.ones([1, 3]))
    assert jax.tree.map(jnp.shape, params) == {
        "__layer_stack_no_per_layer/linear": {"b": (2, 3), "w": (2, 3, 3)},
        "__layer_stack_no_per_layer_1/linear": {"b": (3, 3), "w": (3, 3, 3)}}


def test_per_layer_inputs_use_the_with_per_layer_scope():
    def layer(x, y):
        return _linear_tanh(x) + y, None
    f = hk.transform(lambda x, ys: hk.layer_stack(2, with_per_layer_inputs=True)(layer)(x, ys))
    params = f.init(0, jnp.ones([1, 3]), jnp.ones([2, 1, 3]))
    assert list(params) == ["__layer_stack_with_per_layer/linear"]


def test_nested_stacks_nest_scopes_and_axes():
    def f(x):
        inner = hk.layer_stack(2)(_linear_tanh)
        return hk.layer_stack(4)(inner)(x)
    params = hk.transform(f).init(0, jnp.ones([1, 3]))
    assert jax.tree.map(jnp.shape, params) == {
        "__layer_stack_no_per_layer/__layer_stack_no_per_layer/linear":
            {"b": (4, 2, 3), "w": (4, 2, 3, 3)}}


def test_stack_inside_a_module_is_prefixed_by_the_module_path():
    class Tower(hk.Module):
        def __call__(self, x):
            return hk.layer_stack(2)(_linear_tanh)(x)
    params = hk.transform(lambda x: Tower()(x)).init(0, jnp.ones([1, 3]))
    assert list(params) == ["tower/__layer_stack_no_per_layer/linear"]


def test_stack_params_come_after_existing_bundles():
    def f(x):
        x = hk.Linear(3, name="z_first")(x)
        return hk.layer_stack(2)(_linear_tanh)(x)
    assert list(hk.transform(f).init(0, jnp.ones([1, 3]))) == [
        "z_first", "__layer_stack_no_per_layer/linear"]


# ----------------------------------------------------------------------------- RNG algorithm


def _noise_layer(x):
    w = hk.get_parameter("w", [3], init=hk.initializers.RandomNormal())
    return x + w


def test_init_follows_haiku_key_chain_split_into_three_per_layer():
    params = _stack_of(_noise_layer, 3).init(jax.random.PRNGKey(SEED), jnp.zeros([3]))
    (k0,) = _sequence_keys(jax.random.PRNGKey(SEED), 1)
    expected, r = [], k0
    for _ in range(3):
        r_init, r, _ = jax.random.split(r, 3)
        (w_key,) = _sequence_keys(r_init, 1)  # RandomNormal draws the inner sequence's first key
        expected.append(jax.random.normal(w_key, [3]))
    chex.assert_trees_all_close(params["__layer_stack_no_per_layer/~"]["w"], jnp.stack(expected))


def test_init_runs_layer_i_on_the_output_of_layer_i_minus_1():
    def layer(x):
        hk.get_parameter("seen", x.shape, init=lambda shape, dtype: x)  # records the input
        return 2 * x
    params = _stack_of(layer, 3).init(None, jnp.ones([2]))
    np.testing.assert_array_equal(params["__layer_stack_no_per_layer/~"]["seen"],
                                  np.array([[1, 1], [2, 2], [4, 4]], np.float32))


def _key_layer(x):
    return x + jax.random.uniform(hk.next_rng_key(), x.shape)


class LayerStackApplyTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_apply_uses_split_of_second_outer_key_and_next_key_is_third(self):
        def f(x):
            return hk.layer_stack(3)(_key_layer)(x), hk.next_rng_key()

        key = jax.random.PRNGKey(SEED)
        out, after = self.variant(hk.transform(f).apply)({}, key, jnp.zeros([2]))
        _, k1, k2 = _sequence_keys(key, 3)
        expected = jnp.zeros([2])
        for layer_key in jax.random.split(k1, 3):
            (inner_key,) = _sequence_keys(layer_key, 1)
            expected = expected + jax.random.uniform(inner_key, (2,))
        chex.assert_trees_all_close(out, expected, rtol=1e-6)
        np.testing.assert_array_equal(after, k2)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("forward", False), ("reverse", True))
    def test_apply_equals_explicit_loop_over_layer_slices(self, reverse):
        f = _stack_of(_linear_tanh, 3)
        x = jax.random.normal(jax.random.PRNGKey(1), (2, 3))
        params = f.init(jax.random.PRNGKey(0), x)
        out = self.variant(lambda p, x: f.apply(p, None, x, reverse=reverse))(params, x)
        w = params["__layer_stack_no_per_layer/linear"]["w"]
        b = params["__layer_stack_no_per_layer/linear"]["b"]
        expected = np.asarray(x)
        for i in (reversed(range(3)) if reverse else range(3)):
            expected = np.tanh(expected @ w[i] + b[i])
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_per_layer_inputs_and_outputs_are_stacked(self):
        def layer(x, y):
            return x + y, x * y
        f = hk.transform(lambda x, ys: hk.layer_stack(3, with_per_layer_inputs=True)(layer)(x, ys))
        ys = jnp.array([1.0, 2.0, 3.0])
        x, outs = self.variant(f.apply)({}, None, jnp.array(1.0), ys)
        chex.assert_trees_all_close(x, 7.0)
        chex.assert_trees_all_close(outs, jnp.array([1.0, 4.0, 12.0]))

    @chex.variants(with_jit=True, without_jit=True)
    def test_state_is_stacked_and_written_back_each_apply(self):
        def layer(x):
            count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
            hk.set_state("count", count + 1)
            return x
        f = hk.transform_with_state(lambda x: hk.layer_stack(3)(layer)(x))
        params, state = f.init(None, jnp.ones([1]))
        assert jax.tree.map(jnp.shape, state) == {"__layer_stack_no_per_layer/~": {"count": (3,)}}
        # Haiku 0.0.17 (observed): the initial state is the one after the init-time apply.
        np.testing.assert_array_equal(state["__layer_stack_no_per_layer/~"]["count"], [1, 1, 1])
        apply = self.variant(f.apply)
        _, state = apply(params, state, None, jnp.ones([1]))
        _, state = apply(params, state, None, jnp.ones([1]))
        np.testing.assert_array_equal(state["__layer_stack_no_per_layer/~"]["count"], [3, 3, 3])


def test_rng_none_needs_no_keys():
    out = _stack_of(_linear_tanh, 2).apply(
        _stack_of(_linear_tanh, 2).init(0, jnp.ones([1, 3])), None, jnp.ones([1, 3]))
    chex.assert_shape(out, (1, 3))


def test_pass_reverse_to_layer_fn_passes_the_flag():
    def layer(x, reverse):
        return x + (10.0 if reverse else 1.0)
    f = _stack_of(layer, 2, pass_reverse_to_layer_fn=True)
    assert float(f.apply({}, None, 0.0, reverse=True)) == 20.0
    assert float(f.apply({}, None, 0.0)) == 2.0


def test_several_carry_args_are_threaded_as_a_tuple():
    def layer(x, y):
        return x + 1.0, y * 2.0
    out = _stack_of(layer, 3).apply({}, None, jnp.array(0.0), jnp.array(1.0))
    chex.assert_trees_all_close(out, (jnp.array(3.0), jnp.array(8.0)))


def test_zero_per_layer_inputs_are_allowed():
    def layer(x):
        return x + 1.0, None
    f = hk.transform(lambda x: hk.layer_stack(4, with_per_layer_inputs=True)(layer)(x))
    x, outs = f.apply({}, None, jnp.array(0.0))
    assert float(x) == 4.0 and outs is None


def test_unroll_gives_same_result():
    x = jnp.ones([1, 3])
    f, g = _stack_of(_linear_tanh, 4), _stack_of(_linear_tanh, 4, unroll=2)
    params = f.init(0, x)
    chex.assert_trees_all_close(f.apply(params, None, x), g.apply(params, None, x), rtol=1e-6)


def test_apply_is_a_single_scan_whose_trace_does_not_grow_with_depth():
    x = jnp.ones([1, 3])

    def count_equations(n):
        f = _stack_of(_linear_tanh, n)
        jaxpr = jax.make_jaxpr(f.apply)(f.init(0, x), None, x)
        return len(jaxpr.jaxpr.eqns), [e.primitive.name for e in jaxpr.jaxpr.eqns]

    shallow, shallow_prims = count_equations(2)
    deep, _ = count_equations(16)
    assert shallow == deep
    assert "scan" in shallow_prims


def test_stacked_function_keeps_the_layer_signature():
    def my_layer(x, y):
        return x, y
    stacked = hk.layer_stack(2)(my_layer)
    assert stacked.__name__ == "my_layer"
    assert str(inspect.signature(stacked)) == "(x, y)"


# ----------------------------------------------------------------------------- errors


def test_layer_function_with_varargs_is_a_value_error():
    def layer(*args):
        return args
    with pytest.raises(ValueError, match=r"The function `f` should not have any `varargs`"):
        hk.layer_stack(2)(layer)


def test_per_layer_input_with_wrong_leading_axis_is_an_assertion_error():
    def layer(x, y):
        return x + y, None
    f = hk.transform(lambda x, ys: hk.layer_stack(3, with_per_layer_inputs=True)(layer)(x, ys))
    expected = r"leading axis of size num_layers=3, got a leaf of shape \(2, 4\)"
    with pytest.raises(AssertionError, match=expected):
        f.init(None, jnp.ones([4]), jnp.ones([2, 4]))


def test_transparent_without_a_map_is_a_value_error():
    with pytest.raises(ValueError, match="transparent=True.*needs a `transparency_map`"):
        hk.layer_stack(2, transparent=True)


# ----------------------------------------------------------------------------- transparent


class _BlockMap:
    """Stacked ``block/linear`` <-> per-layer ``block_<i>/linear``."""

    def stacked_to_flat(self, stacked_module_name, scan_idx):
        return stacked_module_name.replace("block", f"block_{scan_idx}", 1)

    def flat_to_stacked(self, unstacked_module_name):
        match = re.match(r"block_(\d+)(/.*)?$", unstacked_module_name)
        if match is None:
            return None
        return "block" + (match.group(2) or ""), int(match.group(1))


def _block_layer(x):
    with hk.name_scope("block"):
        return jnp.tanh(hk.Linear(3)(x))


def test_transparent_stack_stores_each_layer_under_its_own_name_without_layer_axis():
    f = _stack_of(_block_layer, 3, transparent=True, transparency_map=_BlockMap())
    params = f.init(0, jnp.ones([1, 3]))
    assert jax.tree.map(jnp.shape, params) == {
        f"block_{i}/linear": {"b": (3,), "w": (3, 3)} for i in range(3)}


def test_transparent_stack_applies_like_the_stacked_one():
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 3))
    stacked = _stack_of(_block_layer, 3)
    transparent = _stack_of(_block_layer, 3, transparent=True, transparency_map=_BlockMap())
    key = jax.random.PRNGKey(0)
    stacked_params, flat_params = stacked.init(key, x), transparent.init(key, x)
    for i in range(3):
        chex.assert_trees_all_equal(
            flat_params[f"block_{i}/linear"],
            jax.tree.map(lambda v, i=i: v[i],
                         stacked_params["__layer_stack_no_per_layer/block/linear"]))
    chex.assert_trees_all_close(transparent.apply(flat_params, None, x),
                                stacked.apply(stacked_params, None, x), rtol=1e-6)
