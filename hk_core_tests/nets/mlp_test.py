"""hk.nets.MLP (API.md §4.1)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

X = jax.random.normal(jax.random.PRNGKey(0), [2, 3])


def test_paths_and_shapes():
    params = hk.transform(lambda x: hk.nets.MLP([4, 5, 6])(x)).init(0, X)
    assert jax.tree.map(jnp.shape, params) == {
        "mlp/~/linear_0": {"w": (3, 4), "b": (4,)}, "mlp/~/linear_1": {"w": (4, 5), "b": (5,)},
        "mlp/~/linear_2": {"w": (5, 6), "b": (6,)}}


def test_forward_is_relu_between_layers_not_after_last():
    f = hk.transform(lambda x: hk.nets.MLP([4, 2])(x))
    params = f.init(0, X)
    p0, p1 = params["mlp/~/linear_0"], params["mlp/~/linear_1"]
    expected = np.maximum(np.asarray(X) @ p0["w"] + p0["b"], 0) @ p1["w"] + p1["b"]
    chex.assert_trees_all_close(f.apply(params, None, X), expected, rtol=1e-5)


def test_activate_final_applies_activation_to_output():
    f = hk.transform(lambda x: hk.nets.MLP([2], activation=jnp.tanh, activate_final=True)(x))
    params = f.init(0, X)
    p = params["mlp/~/linear_0"]
    chex.assert_trees_all_close(f.apply(params, None, X), np.tanh(X @ p["w"] + p["b"]),
                                rtol=1e-5)


def test_dropout_argument_rules():
    f = hk.transform(lambda x, rate, rng: hk.nets.MLP([2, 2])(x, rate, rng))
    with pytest.raises(ValueError, match="When using dropout an rng key must be passed"):
        f.init(0, X, 0.5, None)
    with pytest.raises(ValueError, match="RNG should only be passed when using dropout"):
        f.init(0, X, None, jax.random.PRNGKey(0))


def test_b_init_without_bias_is_an_error():
    with pytest.raises(ValueError, match=r"When with_bias=False b_init must not be set"):
        hk.transform(lambda x: hk.nets.MLP([2], with_bias=False, b_init=jnp.ones)(x)).init(0, X)


def test_reverse_mirrors_sizes_and_names():
    def f(x):
        mlp = hk.nets.MLP([5, 4])
        y = mlp(x)
        return mlp.reverse()(y)

    g = hk.transform(f)
    params = g.init(0, X)
    assert jax.tree.map(jnp.shape, params)["mlp/~reverse/mlp_reversed/~/linear_0"]["w"] == (4, 5)
    assert jax.tree.map(jnp.shape, params)["mlp/~reverse/mlp_reversed/~/linear_1"]["w"] == (5, 3)
    chex.assert_shape(g.apply(params, None, X), (2, 3))


def test_reverse_before_call_is_an_error():
    with pytest.raises(ValueError, match="cannot reverse an MLP until it has been called"):
        hk.transform(lambda: hk.nets.MLP([2]).reverse()).init(None)


def test_reverse_before_call_names_the_mlp_in_a_typed_error():
    with pytest.raises(hk.errors.ConfigurationError, match="cannot reverse an MLP") as info:
        hk.transform(lambda: hk.nets.MLP([2], name="encoder").reverse()).init(None)
    assert info.value.module_path == "encoder"


def test_output_size_property():
    assert hk.transform(lambda: hk.nets.MLP([3, 7]).output_size).apply({}, None) == 7
