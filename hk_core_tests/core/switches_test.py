"""The hk.experimental switches: check_jax_usage, module_auto_repr, rng_reserve_size."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import errors

KEY = jax.random.PRNGKey(0)
X = jnp.ones([3, 2])


@pytest.fixture(autouse=True)
def _restore_config():
    with hk.config.context():  # every test may flip switches; put them back afterwards
        yield


def _linear_in_raw_vmap(x):
    return jax.vmap(lambda row: hk.Linear(2)(row))(x)


def test_check_jax_usage_returns_previous_and_sets_flag():
    assert hk.experimental.check_jax_usage() is False
    assert hk.config.get_config().check_jax_usage is True
    assert hk.experimental.check_jax_usage(False) is True
    assert hk.config.get_config().check_jax_usage is False


def test_jax_usage_error_is_a_value_error():
    assert issubclass(errors.JaxUsageError, ValueError)


def test_module_built_in_raw_vmap_raises_when_checking():
    hk.experimental.check_jax_usage()
    with pytest.raises(errors.JaxUsageError, match=r"Constructing Linear .*raw JAX transform"):
        hk.transform(_linear_in_raw_vmap).init(KEY, X)


def test_module_built_in_raw_vmap_is_allowed_when_not_checking():
    params = hk.transform(_linear_in_raw_vmap).init(KEY, X)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (2,), "w": (2, 2)}}


def test_get_parameter_in_raw_jit_raises_when_checking():
    hk.experimental.check_jax_usage()

    def f(x):
        return jax.jit(lambda x: x * hk.get_parameter("w", [], init=jnp.ones))(x)

    with pytest.raises(errors.JaxUsageError, match=r"`hk.get_parameter` was used inside"):
        hk.transform(f).init(KEY, X)


def test_module_method_in_raw_scan_raises_when_checking():
    hk.experimental.check_jax_usage()

    def f(x):
        linear = hk.Linear(2)
        return jax.lax.scan(lambda c, row: (c, linear(row)), 0.0, x)[1]

    with pytest.raises(errors.JaxUsageError, match=r"Module method Linear.__call__ was used"):
        hk.transform(f).init(KEY, X)


def test_next_rng_key_in_raw_cond_raises_when_checking():
    hk.experimental.check_jax_usage()

    def f(p):
        return jax.lax.cond(p, lambda: hk.next_rng_key(), lambda: hk.next_rng_key())

    with pytest.raises(errors.JaxUsageError, match=r"`hk.next_rng_key` was used inside"):
        hk.transform(f).apply({}, KEY, True)


def test_set_state_in_raw_vmap_raises_when_checking():
    hk.experimental.check_jax_usage()

    def f(x):
        return jax.vmap(lambda row: hk.set_state("s", row))(x)

    with pytest.raises(errors.JaxUsageError, match=r"`hk.set_state` was used inside"):
        hk.transform_with_state(f).init(KEY, X)


class CheckedWrappersTest(chex.TestCase):
    """hk wrappers and JAX transforms around init/apply stay allowed while checking."""

    def setUp(self):
        super().setUp()
        self._previous = hk.experimental.check_jax_usage()

    def tearDown(self):
        hk.experimental.check_jax_usage(self._previous)
        super().tearDown()

    @chex.variants(with_jit=True, without_jit=True)
    def test_hk_vmap_scan_and_cond_pass_the_check(self):
        def f(x):
            linear = hk.Linear(2)
            y = hk.vmap(linear, split_rng=False)(x)
            y = hk.scan(lambda c, row: (c, linear(row)), 0.0, x)[1] + y
            return hk.cond(True, lambda y: y + hk.next_rng_key()[0], lambda y: y, y)

        f = hk.transform(f)
        params = self.variant(f.init)(KEY, X)
        out = self.variant(f.apply)(params, KEY, X)
        chex.assert_shape(out, (3, 2))

    @chex.variants(with_jit=True, without_jit=True)
    def test_jax_vmap_around_apply_passes_the_check(self):
        f = hk.transform(lambda x: hk.Linear(2)(x))
        params = f.init(KEY, X)
        out = self.variant(jax.vmap(f.apply, in_axes=(None, None, 0)))(params, None, X)
        chex.assert_shape(out, (3, 2))


def test_module_auto_repr_returns_previous_and_switches_repr():
    f = hk.transform(lambda: repr(hk.Linear(2, name="q")))
    assert hk.experimental.module_auto_repr(False) is True
    assert f.apply({}, None).startswith("<")
    assert hk.experimental.module_auto_repr(True) is False
    assert f.apply({}, None) == "Linear(output_size=2, name='q')"


@pytest.mark.parametrize("switch", ["check_jax_usage", "module_auto_repr"])
def test_flag_switches_store_a_bool(switch):
    getattr(hk.experimental, switch)(0)
    assert getattr(hk.config.get_config(), switch) is False
    assert getattr(hk.experimental, switch)("yes") is False
    assert getattr(hk.config.get_config(), switch) is True


def test_rng_reserve_size_returns_previous():
    assert hk.experimental.rng_reserve_size(3) == 1
    assert hk.experimental.rng_reserve_size(1) == 3


def test_rng_reserve_size_splits_that_many_keys_at_once():
    hk.experimental.rng_reserve_size(3)
    keys = hk.transform(lambda: [hk.next_rng_key() for _ in range(4)]).apply({}, KEY)
    first = jax.random.split(KEY, 4)  # key, then 3 reserved subkeys
    second = jax.random.split(first[0], 4)
    np.testing.assert_array_equal(np.stack(keys), np.stack([*first[1:], second[1]]))


@pytest.mark.parametrize("size", [0, -2, 1.5, True])
def test_rng_reserve_size_rejects_non_positive_int(size):
    with pytest.raises(ValueError, match=rf"size must be a positive int, got {size!r}"):
        hk.experimental.rng_reserve_size(size)
