"""hk.lift and friends (API.md §2.6): prefixes, reuse, state updaters."""

import chex
import jax
import jax.numpy as jnp
import pytest

import hk_core as hk
from hk_core._src.core import errors

X = jnp.ones([1, 3])
INNER = hk.transform(lambda x: hk.Linear(2)(x))
INNER_STATE = hk.transform_with_state(
    lambda x: (hk.set_state("n", hk.get_state("n", [], jnp.int32, init=jnp.zeros) + 1), x)[1])


def _lifted_forward(x):
    params = hk.lift(INNER.init, name="inner")(hk.next_rng_key(), x)
    return INNER.apply(params, None, x)


def test_lift_places_inner_params_under_prefix_and_apply_matches_inner():
    f = hk.transform(_lifted_forward)
    params = f.init(jax.random.PRNGKey(0), X)
    assert list(params) == ["inner/linear"]
    inner_params = {"linear": params["inner/linear"]}
    chex.assert_trees_all_close(f.apply(params, 1, X), INNER.apply(inner_params, None, X))


def test_lift_prefix_inside_module_call_and_constructor():
    class Outer(hk.Module):
        def __init__(self):
            super().__init__()
            self.lifted = hk.lift(INNER.init, name="ctor")

        def __call__(self, x):
            hk.lift(INNER.init, name="call")(hk.next_rng_key(), x)
            return self.lifted(hk.next_rng_key(), x)

    params = hk.transform(lambda x: Outer()(x)).init(jax.random.PRNGKey(0), X)
    assert sorted(params) == ["outer/call/linear", "outer/~/ctor/linear"]


def test_lift_names_are_uniquified_like_modules():
    def f(x):
        hk.lift(INNER.init, name="inner")(hk.next_rng_key(), x)
        hk.lift(INNER.init, name="inner")(hk.next_rng_key(), x)
        return hk.Linear(1, name="inner")(x)

    params = hk.transform(f).init(jax.random.PRNGKey(0), X)
    assert list(params) == ["inner/linear", "inner_1/linear", "inner_2"]


def test_calling_lifted_init_twice_is_an_error_unless_reuse_allowed():
    def f(x, allow_reuse):
        lifted = hk.lift(INNER.init, name="inner", allow_reuse=allow_reuse)
        lifted(hk.next_rng_key(), x)
        return lifted(hk.next_rng_key(), x)

    with pytest.raises(ValueError, match="already exists in the destination params"):
        hk.transform(f).init(jax.random.PRNGKey(0), X, False)
    assert list(hk.transform(f).init(jax.random.PRNGKey(0), X, True)) == ["inner/linear"]


def test_lift_of_stateful_init_raises_non_empty_state_error():
    def f(x):
        return hk.lift(INNER_STATE.init)(None, x)

    with pytest.raises(errors.NonEmptyStateError, match="lift_with_state"):
        hk.transform(f).init(None, X)


def test_transparent_lift_uses_enclosing_scope():
    class M(hk.Module):
        def __call__(self, x):
            params = hk.transparent_lift(INNER.init)(hk.next_rng_key(), x)
            return INNER.apply(params, None, x)

    f = hk.transform(lambda x: M()(x))
    params = f.init(jax.random.PRNGKey(0), X)
    assert list(params) == ["m/linear"]
    chex.assert_shape(f.apply(params, 1, X), (1, 2))


def test_transparent_lift_uses_up_lifted_name():
    def f():
        hk.transparent_lift(lambda: {})()
        with hk.name_scope("lifted"):
            return hk.current_name()

    assert hk.transform(f).apply({}, None) == "lifted_1"


def _with_state_forward(x):
    init, updater = hk.lift_with_state(INNER_STATE.init, name="inner")
    params, state = init(None, x)
    out, state = INNER_STATE.apply(params, state, None, x)
    updater.update(state)
    return out


def test_lift_with_state_init_keeps_initial_value_and_apply_updates():
    f = hk.transform_with_state(_with_state_forward)
    params, state = f.init(None, X)
    assert state == {"inner/~": {"n": 0}}
    _, state = f.apply(params, state, None, X)
    assert int(state["inner/~"]["n"]) == 1
    _, state = f.apply(params, state, None, X)
    assert int(state["inner/~"]["n"]) == 2


def test_updater_not_used_is_an_error():
    def f():
        hk.lift_with_state(INNER_STATE.init, name="inner")

    with pytest.raises(ValueError, match="must be used, call `.update"):
        hk.transform_with_state(f).init(None)


def test_updater_used_twice_is_an_error():
    def f():
        _, updater = hk.lift_with_state(INNER_STATE.init, name="inner")
        updater.ignore_update()
        updater.ignore_update()

    with pytest.raises(ValueError, match="State updater must only be used once"):
        hk.transform_with_state(f).init(None)


def test_second_updater_writes_under_requested_name_like_haiku():
    def f(x):
        for _ in range(2):
            init, updater = hk.lift_with_state(INNER_STATE.init, name="inner")
            params, state = init(None, x)
            updater.update(INNER_STATE.apply(params, state, None, x)[1])
        return x

    _, state = hk.transform_with_state(f).init(None, X)
    assert sorted(state) == ["inner/~", "inner_1/~"]
    assert int(state["inner_1/~"]["n"]) == 0
