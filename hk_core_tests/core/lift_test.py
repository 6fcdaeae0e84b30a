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


# --- lifted_prefix_name and transparent_lift closures (issue 13 item 2; values observed by
# running the same programs under Haiku 0.0.17).


class _Outer(hk.Module):
    def __init__(self, body, name=None):
        super().__init__(name=name)
        self._body = body

    def __call__(self, x):
        return self._body(x)


def _prefixes_seen(body, wrap_in_outer=True):
    """(creator prefixes, getter prefixes) seen during init of ``body``."""
    creators, getters = [], []

    def creator(next_creator, shape, dtype, init, context):
        creators.append((context.full_name, context.lifted_prefix_name))
        return next_creator(shape, dtype, init)

    def getter(next_getter, value, context):
        getters.append((context.full_name, context.lifted_prefix_name))
        return next_getter(value)

    def f(x):
        with hk.custom_creator(creator), hk.custom_getter(getter):
            return _Outer(body, name="outer")(x) if wrap_in_outer else body(x)

    hk.transform(f).init(jax.random.PRNGKey(0), X)
    return creators, getters


def _lift_body(inner_init_fn, transparent, name="inner"):
    inner = hk.transform(inner_init_fn)

    def body(x):
        lifted = hk.transparent_lift(inner.init) if transparent else hk.lift(inner.init, name=name)
        params = lifted(hk.next_rng_key(), x)
        return inner.apply(params, jax.random.PRNGKey(1), x)

    return body


_LINEAR = lambda x: hk.Linear(2)(x)  # noqa: E731


@pytest.mark.parametrize("body, expected", [
    (_lift_body(_LINEAR, transparent=False), "outer/inner/"),
    (_lift_body(_lift_body(_LINEAR, transparent=False), transparent=False),
     "outer/inner/inner/"),
    (_lift_body(_LINEAR, transparent=True), "outer/"),
    (_lift_body(_lift_body(_LINEAR, transparent=True), transparent=True), "outer/"),
    (_lift_body(_lift_body(_LINEAR, transparent=True), transparent=False), "outer/inner/"),
    (_lift_body(_lift_body(_LINEAR, transparent=False), transparent=True), "outer/inner/"),
], ids=["lift", "lift-in-lift", "transparent", "transparent-in-transparent",
        "transparent-in-lift", "lift-in-transparent"])
def test_lifted_prefix_name_inside_module(body, expected):
    creators, getters = _prefixes_seen(body)
    assert creators == [("linear/w", expected), ("linear/b", expected)]
    # The inner init's getters see the prefix; the apply that follows (outside any lift) not.
    assert getters[:2] == [("linear/w", expected), ("linear/b", expected)]
    assert getters[-2:] == [("linear/w", None), ("linear/b", None)]


@pytest.mark.parametrize("transparent, expected", [(False, "inner/"), (True, None)],
                         ids=["lift", "transparent"])
def test_lifted_prefix_name_at_top_level(transparent, expected):
    creators, _ = _prefixes_seen(_lift_body(_LINEAR, transparent), wrap_in_outer=False)
    assert creators == [("linear/w", expected), ("linear/b", expected)]


def test_lifted_prefix_name_is_none_without_lift():
    creators, getters = _prefixes_seen(_LINEAR, wrap_in_outer=False)
    assert creators == [("linear/w", None), ("linear/b", None)]
    assert getters == [("linear/w", None), ("linear/b", None)]


def test_lifted_prefix_name_reaches_state_creators_and_setters():
    seen = []

    def creator(next_creator, shape, dtype, init, context):
        seen.append(("create", context.lifted_prefix_name))
        return next_creator(shape, dtype, init)

    def setter(next_setter, value, context):
        seen.append(("set", context.lifted_prefix_name))
        return next_setter(value)

    def body(x):
        init, updater = hk.lift_with_state(INNER_STATE.init, name="inner")
        params, state = init(None, x)
        out, state = INNER_STATE.apply(params, state, None, x)
        updater.update(state)
        return out

    def f(x):
        with hk.custom_creator(creator, params=False, state=True), hk.custom_setter(setter):
            return _Outer(body, name="outer")(x)

    hk.transform_with_state(f).init(None, X)
    assert seen == [("create", "outer/inner/"), ("set", "outer/inner/"), ("set", None)]


_CLOSE_OVER = r"Module '{}' is used inside .*close over a module.*transparent_lift"


def _transparent_closure(make_module):
    def f(x):
        module = make_module()
        inner = hk.transform(lambda x: module(x))
        params = hk.transparent_lift(inner.init)(hk.next_rng_key(), x)
        return inner.apply(params, None, x)

    return f


def test_transparent_lift_closing_over_outside_module_raises():
    f = _transparent_closure(lambda: hk.Linear(2))
    with pytest.raises(ValueError, match=_CLOSE_OVER.format("linear")):
        hk.transform(f).init(jax.random.PRNGKey(0), X)


def test_transparent_lift_closing_over_module_inside_another_module_raises():
    f = _transparent_closure(lambda: hk.Linear(2))
    with pytest.raises(ValueError, match=_CLOSE_OVER.format("outer/linear")):
        hk.transform(lambda x: _Outer(f, name="outer")(x)).init(jax.random.PRNGKey(0), X)


def test_transparent_lift_closing_over_submodule_built_in_constructor_raises():
    class Owner(hk.Module):
        def __init__(self):
            super().__init__()
            self.linear = hk.Linear(2)

        def __call__(self, x):
            return _transparent_closure(lambda: self.linear)(x)

    with pytest.raises(ValueError, match=_CLOSE_OVER.format("owner/~/linear")):
        hk.transform(lambda x: Owner()(x)).init(jax.random.PRNGKey(0), X)


def test_transparent_lift_closing_over_outside_module_under_vmap_raises():
    def f(x):
        linear = hk.Linear(2)
        inner = hk.transform(lambda x: hk.vmap(lambda row: linear(row), split_rng=False)(x))
        return hk.transparent_lift(inner.init)(hk.next_rng_key(), x)

    with pytest.raises(ValueError, match=_CLOSE_OVER.format("linear")):
        hk.transform(f).init(jax.random.PRNGKey(0), X)


def test_transparent_lift_module_built_inside_used_by_closure_under_vmap_is_legal():
    def body(x):
        linear = hk.Linear(2)
        return hk.vmap(lambda row: linear(row), split_rng=False)(x)

    inner = hk.transform(body)

    class Owner(hk.Module):
        def __call__(self, x):
            params = hk.transparent_lift(inner.init)(hk.next_rng_key(), x)
            return inner.apply(params, None, x)

    params = hk.transform(lambda x: Owner()(x)).init(jax.random.PRNGKey(0), X)
    assert jax.tree.map(jnp.shape, params) == {"owner/linear": {"b": (2,), "w": (3, 2)}}


def test_plain_lift_closing_over_outside_module_is_legal():
    def f(x):
        linear = hk.Linear(2)
        inner = hk.transform(lambda x: linear(x))
        return hk.lift(inner.init)(hk.next_rng_key(), x)

    params = hk.transform(f).init(jax.random.PRNGKey(0), X)
    assert jax.tree.map(jnp.shape, params) == {"lifted/linear": {"b": (2,), "w": (3, 2)}}


def test_transparent_lift_with_state_closing_over_outside_module_is_legal():
    # Haiku 0.0.17 refuses the closure only in `transparent_lift` (observed).
    def f(x):
        linear = hk.Linear(2)
        inner = hk.transform_with_state(lambda x: linear(x))
        init, updater = hk.transparent_lift_with_state(inner.init)
        params, state = init(hk.next_rng_key(), x)
        out, state = inner.apply(params, state, None, x)
        updater.update(state)
        return out

    params, _ = hk.transform_with_state(f).init(jax.random.PRNGKey(0), X)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (2,), "w": (3, 2)}}


class _ByIndex:
    def stacked_to_flat(self, name, idx):
        return name.replace("linear", f"linear_{idx}")

    def flat_to_stacked(self, name):
        base, _, idx = name.rpartition("_")
        return (base, int(idx)) if idx.isdigit() else None


def test_transparent_layer_stack_closing_over_outside_module_is_legal():
    def f(x):
        linear = hk.Linear(3)
        return hk.layer_stack(2, transparent=True, transparency_map=_ByIndex())(
            lambda x: linear(x))(x)

    params = hk.transform(f).init(jax.random.PRNGKey(0), X)
    assert jax.tree.map(jnp.shape, params) == {
        "linear_0": {"b": (3,), "w": (3, 3)}, "linear_1": {"b": (3,), "w": (3, 3)}}
