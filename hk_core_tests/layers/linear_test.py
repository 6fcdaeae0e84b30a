"""hk.Linear (API.md §3.1)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import hk_core as hk


class LinearTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("vector", (3,)), ("batch", (2, 3)), ("rank3", (4, 2, 3)))
    def test_output_is_inputs_matmul_w_plus_b(self, shape):
        f = hk.transform(lambda x: hk.Linear(5)(x))
        x = jax.random.normal(jax.random.PRNGKey(0), shape)
        params = f.init(jax.random.PRNGKey(1), x)
        out = self.variant(f.apply)(params, None, x)
        w, b = np.asarray(params["linear"]["w"]), np.asarray(params["linear"]["b"])
        chex.assert_shape(out, shape[:-1] + (5,))
        chex.assert_trees_all_close(out, np.asarray(x) @ w + b, rtol=1e-5, atol=1e-6)


def test_params_shapes_and_default_init_scale():
    f = hk.transform(lambda x: hk.Linear(400)(x))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 100]))
    w, b = params["linear"]["w"], params["linear"]["b"]
    assert w.shape == (100, 400) and b.shape == (400,)
    np.testing.assert_array_equal(b, np.zeros(400))
    assert float(jnp.abs(w).max()) <= 2 / np.sqrt(100)
    assert abs(float(w.std()) - 0.88 / np.sqrt(100)) < 0.01


def test_without_bias_has_only_w():
    params = hk.transform(lambda x: hk.Linear(2, with_bias=False)(x)).init(0, jnp.ones([1, 3]))
    assert list(params["linear"]) == ["w"]


def test_param_dtype_follows_input():
    params = hk.transform(lambda x: hk.Linear(2)(x)).init(0, jnp.ones([1, 3], jnp.bfloat16))
    assert params["linear"]["w"].dtype == jnp.bfloat16


def test_custom_initializers():
    f = hk.transform(lambda x: hk.Linear(2, w_init=jnp.ones, b_init=jnp.ones)(x))
    out = f.apply(f.init(None, jnp.ones([1, 3])), None, jnp.ones([1, 3]))
    chex.assert_trees_all_close(out, jnp.full([1, 2], 4.0))


def test_scalar_input_is_an_error_naming_module():
    with pytest.raises(ValueError, match="linear: Linear input must not be a scalar"):
        hk.transform(lambda x: hk.Linear(2)(x)).init(0, jnp.ones([]))


def test_input_size_attribute_set_at_call():
    def f(x):
        lin = hk.Linear(2)
        lin(x)
        return lin.input_size, lin.output_size

    assert hk.transform(f).apply(hk.transform(f).init(0, jnp.ones([1, 7])), None,
                                 jnp.ones([1, 7])) == (7, 2)


def test_wrong_input_width_at_apply_names_path_and_shapes():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    params = f.init(0, jnp.ones([1, 3]))
    with pytest.raises(ValueError, match=r"'linear/w' with retrieved shape \(3, 2\) does not "
                                         r"match shape=\[4, 2\]"):
        f.apply(params, None, jnp.ones([1, 4]))


def test_eager_output_is_bitwise_the_plain_formula():
    # Linear runs as one jitted function; eagerly its values are the same bits as
    # `jnp.dot(x, w) + b` evaluated op by op (what Haiku computes).
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 2, 3), jnp.bfloat16)
    f = hk.transform(lambda x: hk.Linear(5)(x))
    params = f.init(jax.random.PRNGKey(1), x)
    w, b = params["linear"]["w"], params["linear"]["b"]
    np.testing.assert_array_equal(np.asarray(f.apply(params, None, x), np.float32),
                                  np.asarray(jnp.dot(x, w) + b, np.float32))


def test_precision_argument_reaches_the_matmul():
    f = hk.transform(lambda x: hk.Linear(2)(x, precision=jax.lax.Precision.HIGHEST))
    x = jnp.ones([1, 3])
    params = f.init(jax.random.PRNGKey(0), x)
    jaxpr = jax.make_jaxpr(lambda p: f.apply(p, None, x))(params)
    assert "precision=(Precision.HIGHEST, Precision.HIGHEST)" in str(jaxpr)


def test_precision_given_as_a_list_pair_is_accepted():
    x = jnp.ones([1, 3])
    f = hk.transform(lambda x: hk.Linear(2)(x, precision=[jax.lax.Precision.HIGHEST] * 2))
    params = f.init(jax.random.PRNGKey(0), x)
    w, b = params["linear"]["w"], params["linear"]["b"]
    chex.assert_trees_all_close(f.apply(params, None, x), x @ w + b, rtol=1e-6)
