"""get_parameter / get_state / set_state and their interceptors (API.md §2.3)."""

import chex
import jax
import jax.numpy as jnp
import pytest

import hk_core as hk


def test_get_parameter_returns_stored_value_on_repeat():
    def f():
        a = hk.get_parameter("w", [2], init=hk.initializers.RandomNormal())
        b = hk.get_parameter("w", [2], init=hk.initializers.RandomNormal())
        return a, b

    a, b = hk.transform(f).apply(hk.transform(f).init(0), 0)
    chex.assert_trees_all_equal(a, b)


def test_missing_initializer_is_an_error():
    with pytest.raises(ValueError, match="Initializer must be specified"):
        hk.transform(lambda: hk.get_parameter("w", [2])).init(None)


def test_dtype_none_means_float32():
    params = hk.transform(lambda: hk.get_parameter("w", [2], None, init=jnp.ones)).init(None)
    assert params["~"]["w"].dtype == jnp.float32


def test_custom_creator_can_change_dtype_and_sees_context():
    seen = []

    def creator(next_creator, shape, dtype, init, context):
        seen.append((context.full_name, context.module_name, context.name, tuple(shape)))
        return next_creator(shape, jnp.bfloat16, init)

    def f(x):
        with hk.custom_creator(creator):
            return hk.Linear(2)(x)

    params = hk.transform(f).init(0, jnp.ones([1, 3]))
    assert params["linear"]["w"].dtype == jnp.bfloat16
    assert seen == [("linear/w", "linear", "w", (3, 2)), ("linear/b", "linear", "b", (2,))]


def test_nested_creators_run_outermost_first():
    order = []

    def make(tag):
        def creator(next_creator, shape, dtype, init, context):
            order.append(tag)
            return next_creator(shape, dtype, init)
        return creator

    def f():
        with hk.custom_creator(make("outer")), hk.custom_creator(make("inner")):
            hk.get_parameter("w", [], init=jnp.ones)

    hk.transform(f).init(None)
    assert order == ["outer", "inner"]


def test_creator_changing_shape_fails_shape_check():
    def creator(next_creator, shape, dtype, init, context):
        return next_creator([5], dtype, init)

    def f():
        with hk.custom_creator(creator):
            return hk.get_parameter("w", [2], init=jnp.ones)

    with pytest.raises(ValueError, match=r"'~/w' with retrieved shape \(5,\)"):
        hk.transform(f).init(None)


def test_custom_getter_changes_value_not_storage():
    def getter(next_getter, value, context):
        return next_getter(value * 3)

    def f():
        with hk.custom_getter(getter):
            return hk.get_parameter("w", [1], init=jnp.ones)

    out = hk.transform(f).apply({"~": {"w": jnp.ones([1])}}, None)
    chex.assert_trees_all_close(out, jnp.array([3.0]))
    assert float(hk.transform(f).init(None)["~"]["w"][0]) == 1.0


def test_state_getter_only_with_state_flag():
    def getter(next_getter, value, context):
        return next_getter(value + 10)

    def f():
        with hk.custom_getter(getter, params=False, state=True):
            return hk.get_state("s", [], init=jnp.zeros)

    out, _ = hk.transform_with_state(f).apply({}, {"~": {"s": jnp.array(1.0)}}, None)
    assert float(out) == 11.0


def test_do_not_store_creator_with_getter_supplies_value_with_empty_params():
    def creator(next_creator, shape, dtype, init, context):
        return hk.DO_NOT_STORE

    def getter(next_getter, value, context):
        return jnp.full(context.original_shape, 7.0)

    def f():
        with hk.custom_creator(creator), hk.custom_getter(getter):
            return hk.get_parameter("w", [2], init=jnp.ones)

    params = hk.transform(f).init(None)
    assert params == {}
    chex.assert_trees_all_close(hk.transform(f).apply({}, None), jnp.full([2], 7.0))


def test_getter_returning_none_is_an_error():
    def f():
        with hk.custom_getter(lambda next_getter, value, context: None):
            return hk.get_parameter("w", [1], init=jnp.ones)

    with pytest.raises(ValueError, match="cannot be `None`"):
        hk.transform(f).init(None)


def test_custom_setter_sees_context_and_can_skip_storing():
    seen = []

    def setter(next_setter, value, context):
        seen.append((context.full_name, context.original_shape))
        return hk.DO_NOT_STORE if context.name == "skip" else next_setter(value)

    def f():
        with hk.custom_setter(setter):
            hk.set_state("keep", jnp.ones([2]))
            hk.set_state("skip", jnp.ones([3]))

    _, state = hk.transform_with_state(f).init(None)
    assert list(state["~"]) == ["keep"]
    assert seen == [("~/keep", (2,)), ("~/skip", (3,))]


def test_get_state_without_init_names_state_and_module():
    with pytest.raises(ValueError, match="No value for 's' in '~', perhaps set an init function"):
        hk.transform_with_state(lambda: hk.get_state("s")).init(None)


def test_get_state_without_shape_is_an_error():
    with pytest.raises(ValueError, match="Must provide shape and dtype"):
        hk.transform_with_state(lambda: hk.get_state("s", init=jnp.zeros)).init(None)


def test_new_state_in_apply_is_returned():
    f = hk.transform_with_state(lambda: hk.get_state("s", [], init=jnp.ones))
    _, state = f.apply({}, {}, None)
    assert float(state["~"]["s"]) == 1.0


def test_state_may_be_a_pytree():
    f = hk.transform_with_state(lambda: hk.set_state("s", {"a": jnp.ones([2]), "b": (1, 2)}))
    _, state = f.init(None)
    assert state["~"]["s"]["b"] == (1, 2)


def test_get_params_snapshot_lists_all_params():
    def f(x):
        hk.Linear(2)(x)
        return {m: sorted(b) for m, b in hk.get_params().items()}

    g = hk.transform(f)
    assert g.apply(g.init(0, jnp.ones([1, 2])), None, jnp.ones([1, 2])) == {"linear": ["b", "w"]}


def test_get_parameter_in_init_before_super_init_is_an_error():
    class Bad(hk.Module):
        def __init__(self):
            hk.get_parameter("w", [], init=jnp.ones)
            super().__init__()

    with pytest.raises(ValueError, match="super constructor must be called before"):
        hk.transform(lambda: Bad()).init(None)


def test_params_created_in_any_method_go_under_module_name():
    class M(hk.Module):
        def __init__(self):
            super().__init__()
            hk.get_parameter("a", [], init=jnp.ones)

        def encode(self):
            return hk.get_parameter("b", [], init=jnp.ones)

    params = hk.transform(lambda: M().encode()).init(None)
    assert params == {"m": {"a": jnp.ones([]), "b": jnp.ones([])}}


def test_initializer_receives_shape_and_dtype():
    calls = []

    def init(shape, dtype):
        calls.append((tuple(shape), jnp.dtype(dtype)))
        return jnp.zeros(shape, dtype)

    hk.transform(lambda: hk.get_parameter("w", [2, 3], jnp.float16, init=init)).init(None)
    assert calls == [((2, 3), jnp.dtype(jnp.float16))]


def test_jitted_apply_traces_once_for_same_shapes():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    params = f.init(0, jnp.ones([1, 3]))
    chex.clear_trace_counter()
    apply = jax.jit(chex.assert_max_traces(f.apply, n=1))
    for value in (1.0, 2.0):
        apply(params, None, jnp.full([1, 3], value))


def test_custom_getter_outside_lift_sees_lifted_params():
    inner = hk.transform(lambda: hk.get_parameter("w", [1], init=jnp.ones))
    seen = []

    def getter(next_getter, value, context):
        seen.append(context.full_name)
        return next_getter(value)

    def f():
        with hk.custom_getter(getter):
            params = hk.lift(inner.init, name="inner")(None)
            return inner.apply(params, None)

    hk.transform(f).init(None)
    assert seen == ["~/w", "~/w"]  # the inner init's get, then the inner apply's get


# --- The shape creators and initializers receive (issue 13 item 3; Haiku 0.0.17 passes it
# through unchanged: a list stays a list).


def _record_shapes():
    seen = []

    def creator(next_creator, shape, dtype, init, context):
        seen.append(("creator", type(shape).__name__, shape, type(context.original_shape).__name__))
        return next_creator(shape, dtype, init)

    def state_creator(next_creator, shape, dtype, init, context):
        seen.append(("state_creator", type(shape).__name__, shape))
        return next_creator(shape, dtype, init)

    def init(shape, dtype):
        seen.append(("init", type(shape).__name__, shape))
        return jnp.zeros(shape, dtype)

    def f():
        with hk.custom_creator(creator), hk.custom_creator(state_creator, params=False,
                                                          state=True):
            hk.get_parameter("w", [2, 3], init=init)
            hk.get_parameter("v", (4,), init=init)
            hk.get_state("s", [5], init=init)

    hk.transform_with_state(f).init(None)
    return seen


def test_creators_and_initializers_receive_shape_as_passed():
    assert _record_shapes() == [
        ("creator", "list", [2, 3], "list"), ("init", "list", [2, 3]),
        ("creator", "tuple", (4,), "tuple"), ("init", "tuple", (4,)),
        ("state_creator", "list", [5]), ("init", "list", [5]),
    ]
