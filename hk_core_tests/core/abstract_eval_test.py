"""hk.experimental.fast_eval_shape inside and outside a transform."""

import jax
import jax.numpy as jnp

import hk_core as hk


def test_fast_eval_shape_outside_transform_is_jax_eval_shape():
    out = hk.experimental.fast_eval_shape(lambda x: jnp.concatenate([x, x]), jnp.ones([2, 3]))
    assert out == jax.ShapeDtypeStruct((4, 3), jnp.float32)


def test_fast_eval_shape_inside_transform_runs_module_code_and_keeps_nothing():
    shapes = []

    def f(x):
        shapes.append(hk.experimental.fast_eval_shape(lambda x: hk.Linear(5)(x), x).shape)

    params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    assert shapes == [(2, 5)] and params == {}
