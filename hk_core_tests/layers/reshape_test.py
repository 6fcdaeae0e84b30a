"""Tests for ``hk.Reshape`` and ``hk.Flatten`` (API.md §3.1)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk


def _shape_after(module_fn, x_shape):
    return hk.transform(lambda x: module_fn()(x)).apply({}, None, jnp.zeros(x_shape)).shape


@pytest.mark.parametrize("module_fn, x_shape, expected", [
    (lambda: hk.Flatten(), (2, 8, 8, 3), (2, 192)),
    (lambda: hk.Flatten(preserve_dims=2), (2, 8, 8, 3), (2, 8, 24)),
    (lambda: hk.Flatten(preserve_dims=2), (2, 3), (2, 3)),  # ndim <= preserve_dims: unchanged
    (lambda: hk.Flatten(preserve_dims=-1), (2, 3, 4), (2, 3, 4)),
    (lambda: hk.Flatten(preserve_dims=-2), (2, 3, 4), (2, 12)),
    (lambda: hk.Reshape((-1, 4)), (2, 3, 8), (2, 6, 4)),
    (lambda: hk.Reshape((4, -1)), (2, 3, 8), (2, 4, 6)),
    (lambda: hk.Reshape((6, 4), preserve_dims=1), (2, 24), (2, 6, 4)),
    (lambda: hk.Reshape((-1, 5), preserve_dims=-1), (2, 3, 4, 6, 5), (2, 3, 4, 6, 1, 5)),
    (lambda: hk.Reshape((3,), preserve_dims=3), (2, 3), (2, 3)),
])
def test_output_shape_keeps_preserved_dims_and_reshapes_rest(module_fn, x_shape, expected):
    assert _shape_after(module_fn, x_shape) == expected


class ReshapeValuesTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_values_are_those_of_numpy_reshape(self):
        x = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape((2, 3, 4))
        out = self.variant(hk.transform(lambda v: hk.Reshape((4, 3))(v)).apply)({}, None, x)
        chex.assert_trees_all_equal(out, np.arange(24, dtype=np.float32).reshape((2, 4, 3)))


def test_preserve_dims_zero_raises_value_error_naming_module():
    with pytest.raises(ValueError, match=r"flatten: Argument preserve_dims should be non-zero"):
        hk.transform(lambda: hk.Flatten(preserve_dims=0)).init(None)


def test_two_minus_ones_raise_value_error_with_shape():
    with pytest.raises(ValueError, match=r"reshape: -1 can only occur once in `output_shape`, got "
                                         r"\(-1, -1\)"):
        hk.transform(lambda: hk.Reshape((-1, -1))).init(None)


def test_incompatible_size_raises_type_error_with_both_shapes():
    f = hk.transform(lambda x: hk.Reshape((-1, 4))(x))
    with pytest.raises(TypeError, match=r"reshape: cannot reshape the trailing axes \(10,\) of "
                                        r"input shape \(2, 10\) \(size 10\) to output_shape "
                                        r"\(-1, 4\)"):
        f.apply({}, None, jnp.zeros((2, 10)))


def test_flatten_is_a_reshape_with_default_names():
    def f():
        return [type(m).__mro__[1].__name__ + ":" + m.module_name
                for m in (hk.Flatten(), hk.Reshape((2,)))]
    assert hk.transform(f).apply({}, None) == ["Reshape:flatten", "Module:reshape"]


def test_reshape_creates_no_params():
    params = hk.transform(lambda x: hk.Flatten()(x)).init(jax.random.PRNGKey(0),
                                                         jnp.zeros((2, 3, 4)))
    assert params == {}
