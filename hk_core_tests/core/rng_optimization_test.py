"""hk.experimental.optimize_rng_use: keys counted abstractly, then reserved in one split."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import errors

KEY = jax.random.PRNGKey(7)


class OptimizeRngUseTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_keys_come_from_one_split_of_the_sequence_key(self):
        @hk.experimental.optimize_rng_use
        def draw():
            return hk.next_rng_key(), hk.next_rng_keys(2), hk.maybe_next_rng_key()

        one, two, three = self.variant(hk.transform(draw).apply)({}, KEY)
        expected = jax.random.split(KEY, 5)[1:]  # 4 keys counted -> split(key, 4 + 1)
        np.testing.assert_array_equal(np.stack([one, *two, three]), expected)

    @chex.variants(with_jit=True, without_jit=True)
    def test_keys_drawn_after_continue_from_reserved_key(self):
        def f():
            hk.experimental.optimize_rng_use(lambda: hk.next_rng_key())()
            return hk.next_rng_key()

        after = self.variant(hk.transform(f).apply)({}, KEY)
        reserved_key = jax.random.split(KEY, 2)[0]
        np.testing.assert_array_equal(after, jax.random.split(reserved_key)[1])

    @chex.variants(with_jit=True, without_jit=True)
    def test_init_creates_same_param_tree_and_counts_initializer_keys(self):
        f = hk.transform(hk.experimental.optimize_rng_use(lambda x: hk.nets.MLP([3, 2])(x)))
        params = self.variant(f.init)(KEY, jnp.ones([1, 4]))
        assert jax.tree.map(jnp.shape, params) == {
            "mlp/~/linear_0": {"w": (4, 3), "b": (3,)},
            "mlp/~/linear_1": {"w": (3, 2), "b": (2,)},
        }
        first_w = jax.random.split(KEY, 3)[1]  # two `w` initializers -> one split of 3
        expected = jax.random.truncated_normal(first_w, -2.0, 2.0, (4, 3)) / np.sqrt(4.0)
        chex.assert_trees_all_close(params["mlp/~/linear_0"]["w"], expected, rtol=1e-6)


def test_python_arguments_stay_static_during_counting():
    @hk.experimental.optimize_rng_use
    def draw(x, use_rng):
        return x + hk.next_rng_key()[0] if use_rng else x

    out = hk.transform(draw).apply({}, KEY, jnp.zeros([], jnp.uint32), True)
    np.testing.assert_array_equal(out, jax.random.split(KEY, 2)[1][0])


def test_without_rng_runs_when_no_keys_are_drawn():
    f = hk.transform(hk.experimental.optimize_rng_use(lambda x: 2 * x))
    assert f.apply({}, None, 3.0) == 6.0


def test_without_rng_drawing_keys_raises_missing_rng():
    f = hk.transform(hk.experimental.optimize_rng_use(lambda: hk.next_rng_key()))
    with pytest.raises(errors.MissingRNGError, match="non-None PRNGKey"):
        f.apply({}, None)


def test_outside_transform_raises_naming_the_function():
    with pytest.raises(ValueError, match=r"optimize_rng_use` must be used as part of"):
        hk.experimental.optimize_rng_use(lambda: 1)()
