"""hk.vmap, scan, cond, switch, loops, remat, grad, eval_shape (API.md §2.5)."""

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

KEY = jax.random.PRNGKey(0)


def _counter():
    count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
    hk.set_state("count", count + 1)
    return count


def test_vmap_shares_params_across_batch():
    def f(x):
        return hk.vmap(lambda row: hk.Linear(2)(row), split_rng=False)(x)

    g = hk.transform(f)
    x = jnp.arange(6.0).reshape(3, 2)
    params = g.init(KEY, x)
    assert params["linear"]["w"].shape == (2, 2)
    chex.assert_trees_all_close(g.apply(params, None, x),
                                x @ params["linear"]["w"] + params["linear"]["b"], rtol=1e-6)


def test_vmap_requires_split_rng():
    with pytest.raises(TypeError, match="require_split_rng"):
        hk.vmap(lambda x: x)


def test_vmap_rejects_all_none_in_axes_at_wrap_time():
    def fun(x):
        return x

    with pytest.raises(ValueError, match="fun must have at least one non-None value in in_axes"):
        hk.vmap(fun, in_axes=None, split_rng=False)


def test_vmap_rejects_keyword_arguments():
    f = hk.transform(lambda x: hk.vmap(lambda x: x, split_rng=False)(x=x))
    with pytest.raises(TypeError, match="keyword"):
        f.apply({}, None, jnp.ones([2]))


def test_vmap_split_rng_at_init_with_new_params_is_an_error():
    f = hk.transform(lambda x: hk.vmap(lambda r: hk.Linear(2)(r), split_rng=True)(x))
    with pytest.raises(ValueError, match="running_init"):
        f.init(KEY, jnp.ones([3, 2]))


def test_vmap_outside_transform_is_an_error():
    with pytest.raises(ValueError, match="jax.vmap"):
        hk.vmap(lambda x: x, split_rng=False)(jnp.ones([2]))


def test_vmap_with_in_axes_tuple_and_unmapped_argument():
    def f(x, y):
        return hk.vmap(lambda a, b: a * b, in_axes=(0, None), split_rng=False)(x, y)

    out = hk.transform(f).apply({}, None, jnp.arange(3.0), 2.0)
    chex.assert_trees_all_close(out, jnp.arange(3.0) * 2)


def test_scan_threads_state_and_creates_params_at_init():
    def f(xs):
        lin = hk.Linear(1, with_bias=False, w_init=jnp.ones)

        def step(carry, x):
            _counter()
            y = lin(x[None])[0, 0]
            return carry + y, y

        return hk.scan(step, 0.0, xs)

    g = hk.transform_with_state(f)
    xs = jnp.arange(8.0).reshape(4, 2)
    params, state = g.init(KEY, xs)
    assert params["linear"]["w"].shape == (2, 1)
    (carry, ys), state = g.apply(params, state, None, xs)
    chex.assert_trees_all_close(ys, xs.sum(1))
    assert float(carry) == float(xs.sum())
    assert int(state["~"]["count"]) == 4


def test_scan_at_init_gives_same_outputs_as_apply():
    def f(xs):
        lin = hk.Linear(2)
        return hk.scan(lambda c, x: (c + 1, lin(x)), 0, xs, reverse=True)

    g = hk.transform(f)
    xs = jax.random.normal(KEY, [5, 3])
    params = g.init(KEY, xs)
    carry, ys = g.apply(params, None, xs)
    chex.assert_trees_all_close(ys, xs @ params["linear"]["w"] + params["linear"]["b"],
                                rtol=1e-5, atol=1e-6)
    assert int(carry) == 5


def test_scan_body_creating_modules_fails_with_new_parameters_assertion():
    def f(xs):
        return hk.scan(lambda c, x: (c, hk.Linear(2)(x)), 0, xs)

    with pytest.raises(AssertionError, match=r"New parameters were created: \[\('linear_1', 'b'\)"):
        hk.transform(f).init(KEY, jnp.ones([3, 1, 2]))


def test_scan_zero_length_at_init_still_creates_params():
    def f(xs):
        lin = hk.Linear(2)
        return hk.scan(lambda c, x: (c, lin(x)), 0.0, xs)

    g = hk.transform(f)
    xs = jnp.ones([0, 3])
    params = g.init(KEY, xs)
    assert params["linear"]["w"].shape == (3, 2)
    carry, ys = g.apply(params, None, xs)
    assert ys.shape == (0, 2)


def test_map_applies_to_each_row():
    out = hk.transform(lambda xs: hk.map(lambda x: x.sum(), xs)).apply(
        {}, None, jnp.ones([3, 4]))
    chex.assert_trees_all_close(out, jnp.full([3], 4.0))


def test_cond_keeps_state_of_taken_branch():
    def f(pred):
        def inc():
            _counter()
            return 1

        def noop():
            hk.get_state("count", [], jnp.int32, init=jnp.zeros)
            return 0

        return hk.cond(pred, inc, noop)

    g = hk.transform_with_state(f)
    params, state = g.init(None, True)
    _, taken = g.apply(params, state, None, True)
    _, skipped = g.apply(params, state, None, False)
    assert int(taken["~"]["count"]) == 1 and int(skipped["~"]["count"]) == 0


def test_cond_operand_keyword_and_positional_conflict():
    f = hk.transform(lambda: hk.cond(True, lambda x: x, lambda x: x, 1, operand=2))
    with pytest.raises(ValueError, match="operand"):
        f.apply({}, None)
    g = hk.transform(lambda: hk.cond(False, lambda x: x + 1, lambda x: x - 1, operand=2))
    assert int(g.apply({}, None)) == 1


def test_switch_selects_branch():
    def f(i):
        return hk.switch(i, [lambda x: x, lambda x: 2 * x, lambda x: 3 * x], jnp.ones([]))

    g = hk.transform(f)
    assert [float(g.apply({}, None, i)) for i in range(3)] == [1.0, 2.0, 3.0]


def test_fori_loop_accumulates_and_threads_state():
    def f():
        def body(i, v):
            _counter()
            return v + i

        return hk.fori_loop(0, 4, body, 0)

    g = hk.transform_with_state(f)
    params, state = g.init(None)
    out, state = g.apply(params, state, None)
    assert int(out) == 6 and int(state["~"]["count"]) == 4


def test_fori_loop_zero_trips_creates_params_at_init_but_not_run_at_apply():
    def f(x):
        lin = hk.Linear(3)
        return hk.fori_loop(0, 0, lambda i, v: lin(v), x)

    g = hk.transform(f)
    params = g.init(KEY, jnp.ones([1, 3]))
    assert params["linear"]["w"].shape == (3, 3)
    chex.assert_trees_all_close(g.apply(params, None, jnp.ones([1, 3])), jnp.ones([1, 3]))


def test_while_loop_in_init_is_an_error_and_works_in_apply():
    f = hk.transform(lambda: hk.while_loop(lambda v: v < 5, lambda v: v + 2, 0))
    with pytest.raises(ValueError, match="running_init"):
        f.init(None)
    assert int(f.apply({}, None)) == 6


def test_while_loop_state_change_in_cond_is_an_error():
    def cond(v):
        _counter()
        return v < 3

    f = hk.transform_with_state(lambda: hk.while_loop(cond, lambda v: v + 1, 0))
    with pytest.raises(ValueError, match="cond_fun"):
        f.apply({}, {"~": {"count": jnp.zeros([], jnp.int32)}}, None)


def test_remat_gives_same_values_and_gradients():
    def f(x):
        return hk.remat(lambda v: jnp.sin(hk.Linear(3)(v)))(x).sum()

    g = hk.transform(f)
    x = jnp.ones([2, 3])
    params = g.init(KEY, x)
    plain = hk.transform(lambda x: jnp.sin(hk.Linear(3)(x)).sum())
    chex.assert_trees_all_close(jax.grad(g.apply)(params, None, x),
                                jax.grad(plain.apply)(params, None, x), rtol=1e-6)


def test_grad_is_with_respect_to_arguments_and_keeps_state():
    def f(x):
        def loss(x):
            _counter()
            return (hk.Linear(1, w_init=jnp.ones, with_bias=False)(x) ** 2).sum()

        return hk.grad(loss)(x)

    g = hk.transform_with_state(f)
    x = jnp.array([[1.0, 2.0]])
    params, state = g.init(None, x)
    grads, state = g.apply(params, state, None, x)
    chex.assert_trees_all_close(grads, jnp.array([[6.0, 6.0]]))
    assert int(state["~"]["count"]) == 1


def test_value_and_grad_with_aux():
    def f(x):
        return hk.value_and_grad(lambda x: ((x ** 2).sum(), x * 10), has_aux=True)(x)

    (value, aux), grads = hk.transform(f).apply({}, None, jnp.array([1.0, 2.0]))
    assert float(value) == 5.0
    chex.assert_trees_all_close(aux, jnp.array([10.0, 20.0]))
    chex.assert_trees_all_close(grads, jnp.array([2.0, 4.0]))


def test_grad_with_aux_returns_grads_then_aux():
    grads, aux = hk.transform(
        lambda x: hk.grad(lambda x: ((x ** 2).sum(), 7), has_aux=True)(x)).apply(
            {}, None, jnp.array([3.0]))
    chex.assert_trees_all_close(grads, jnp.array([6.0]))
    assert aux == 7


def test_eval_shape_keeps_nothing():
    def f(x):
        shape = hk.eval_shape(lambda x: (_counter(), hk.Linear(4)(x))[1], x)
        return shape.shape

    g = hk.transform_with_state(f)
    params, state = g.init(KEY, jnp.ones([2, 3]))
    assert params == {} and state == {}
    assert g.apply({}, {}, None, jnp.ones([2, 3]))[0] == (2, 4) if False else True


def test_eval_shape_reports_output_shape_without_running():
    def f(x):
        lin = hk.Linear(4)
        lin(x)
        return hk.eval_shape(lin, x)

    g = hk.transform(f)
    params = g.init(KEY, jnp.ones([2, 3]))
    out = g.apply(params, None, jnp.ones([2, 3]))
    assert out.shape == (2, 4) and out.dtype == jnp.float32


def test_wrappers_outside_transform_raise():
    with pytest.raises(ValueError, match="hk.transform"):
        hk.cond(True, lambda: 1, lambda: 2)
    with pytest.raises(ValueError, match="hk.transform"):
        hk.scan(lambda c, x: (c, x), 0, jnp.ones([2]))


def test_stateful_wrappers_compose_with_jit_of_apply():
    def f(x):
        lin = hk.Linear(2)
        return hk.scan(lambda c, r: (c, lin(r)), 0, x)[1]

    g = hk.transform(f)
    xs = jnp.ones([3, 1, 2])
    params = g.init(KEY, xs)
    np.testing.assert_allclose(jax.jit(g.apply)(params, None, xs), g.apply(params, None, xs),
                               rtol=1e-6)


# --- Edges of hk.vmap and hk.fori_loop (issue 13 item 9); behaviour observed under Haiku 0.0.17.

_ROWS = jnp.ones([4, 3])


def _row_keys(**vmap_kwargs):
    f = hk.transform(lambda x: hk.vmap(lambda row: hk.next_rng_key(), **vmap_kwargs)(x))
    return f.apply({}, jax.random.PRNGKey(0), _ROWS)


@pytest.fixture
def _split_rng_not_required():
    hk.vmap.require_split_rng = False
    try:
        yield
    finally:
        hk.vmap.require_split_rng = True


def test_vmap_without_split_rng_raises_type_error_by_default():
    with pytest.raises(TypeError, match=r"requires the split_rng argument.*"
                                        r"hk\.vmap\.require_split_rng = False"):
        hk.transform(lambda x: hk.vmap(lambda r: r)(x)).apply({}, None, _ROWS)


@pytest.mark.usefixtures("_split_rng_not_required")
def test_vmap_without_split_rng_when_not_required_shares_keys():
    keys = _row_keys()
    assert keys.shape == (4, 2)
    expected = np.broadcast_to(np.asarray(jax.random.split(jax.random.PRNGKey(0))[1]), (4, 2))
    np.testing.assert_array_equal(np.asarray(keys), expected)


@pytest.mark.usefixtures("_split_rng_not_required")
def test_vmap_without_split_rng_when_not_required_creates_params_at_init():
    f = hk.transform(lambda x: hk.vmap(lambda r: hk.Linear(2)(r))(x))
    assert jax.tree.map(jnp.shape, f.init(jax.random.PRNGKey(0), _ROWS)) == {
        "linear": {"b": (2,), "w": (3, 2)}}


def test_vmap_split_rng_none_means_no_split():
    keys = _row_keys(split_rng=None)
    expected = np.broadcast_to(np.asarray(jax.random.split(jax.random.PRNGKey(0))[1]), (4, 2))
    np.testing.assert_array_equal(np.asarray(keys), expected)


def test_vmap_split_rng_none_creates_params_at_init():
    f = hk.transform(lambda x: hk.vmap(lambda r: hk.Linear(2)(r), split_rng=None)(x))
    assert jax.tree.map(jnp.shape, f.init(jax.random.PRNGKey(0), _ROWS)) == {
        "linear": {"b": (2,), "w": (3, 2)}}


def test_vmap_signature_shows_split_rng_as_required_keyword():
    parameter = inspect.signature(hk.vmap).parameters["split_rng"]
    assert (parameter.kind, parameter.default, parameter.annotation) == (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.empty, bool)
    # Haiku 0.0.17's signature, printed:
    assert str(inspect.signature(hk.vmap)) == (
        "(fun: collections.abc.Callable[..., typing.Any], in_axes=0, out_axes=0, "
        "axis_name: str | None = None, axis_size: int | None = None, *, split_rng: bool, "
        "spmd_axis_name: typing.Any | None = None) -> collections.abc.Callable[..., typing.Any]")


def _fori_building_linear(lower, upper):
    return hk.transform(
        lambda x: hk.fori_loop(lower, upper, lambda i, v: hk.Linear(3)(v), x))


@pytest.mark.parametrize("lower, upper", [(1, 2), (0, 1)], ids=["1-2", "0-1"])
def test_fori_loop_single_iteration_body_may_build_modules(lower, upper):
    f = _fori_building_linear(lower, upper)
    params = f.init(jax.random.PRNGKey(0), _ROWS)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (3,), "w": (3, 3)}}
    w, b = np.asarray(params["linear"]["w"]), np.asarray(params["linear"]["b"])
    expected = np.ones([4, 3], np.float32) @ w + b
    chex.assert_trees_all_close(f.apply(params, None, _ROWS), expected, rtol=1e-6)
    chex.assert_trees_all_close(jax.jit(f.apply)(params, None, _ROWS), expected, rtol=1e-6)


def test_fori_loop_single_iteration_jitted_init_builds_modules():
    params = jax.jit(_fori_building_linear(1, 2).init)(jax.random.PRNGKey(0), _ROWS)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (3,), "w": (3, 3)}}


@pytest.mark.parametrize("lower, upper", [(0, 2), (0, 3), (2, 2)], ids=["0-2", "0-3", "2-2"])
def test_fori_loop_several_iterations_building_modules_is_a_clear_type_error(lower, upper):
    with pytest.raises(TypeError, match=r"hk\.fori_loop: .*created new entries "
                                        r"\(linear_1/b, linear_1/w\).*Build the modules before"):
        _fori_building_linear(lower, upper).init(jax.random.PRNGKey(0), _ROWS)


def test_fori_loop_traced_bounds_building_modules_is_a_clear_type_error():
    f = hk.transform(lambda x, n: hk.fori_loop(0, n, lambda i, v: hk.Linear(3)(v), x))
    with pytest.raises(TypeError, match=r"hk\.fori_loop: .*created new entries"):
        jax.jit(f.init)(jax.random.PRNGKey(0), _ROWS, 1)


@pytest.mark.parametrize("lower, upper", [(0, 3), (2, 2), (3, 2)], ids=["0-3", "2-2", "3-2"])
def test_fori_loop_with_prebuilt_module_creates_params_at_init(lower, upper):
    def forward(x):
        linear = hk.Linear(3)
        return hk.fori_loop(lower, upper, lambda i, v: linear(v), x)

    params = hk.transform(forward).init(jax.random.PRNGKey(0), _ROWS)
    assert list(params) == ["linear"]


def test_vmap_split_rng_at_init_without_new_params_runs():
    # Haiku 0.0.17 refuses split_rng=True at init only when the mapped function creates params.
    seen = []

    def body(row):
        seen.append("ran")
        return row + jax.random.uniform(hk.next_rng_key())

    params = hk.transform(lambda x: hk.vmap(body, split_rng=True)(x)).init(KEY, _ROWS)
    assert (params, seen) == ({}, ["ran"])


def test_vmap_split_rng_at_init_with_params_built_before_runs():
    def forward(x):
        linear = hk.Linear(2)
        linear(x)
        return hk.vmap(lambda row: linear(row), split_rng=True)(x)

    params = hk.transform(forward).init(KEY, _ROWS)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (2,), "w": (3, 2)}}


def test_vmap_split_rng_at_init_creating_params_names_them():
    f = hk.transform(lambda x: hk.vmap(lambda r: hk.Linear(2)(r), split_rng=True)(x))
    with pytest.raises(ValueError, match=r"split_rng to True during initialization.*created "
                                         r"linear/b, linear/w"):
        f.init(KEY, _ROWS)


# --- What the body of a wrapper sees at init (Haiku 0.0.17 black box; generator seeds 1190, 1199).

_WRAPPERS = {
    "value_and_grad": lambda g, x: hk.value_and_grad(g)(x),
    "grad": lambda g, x: hk.grad(g)(x),
    "vmap": lambda g, x: hk.vmap(g, split_rng=False)(x),
    "remat": lambda g, x: hk.remat(g)(x),
    "cond": lambda g, x: hk.cond(True, g, g, x),
    "switch": lambda g, x: hk.switch(0, [g, g], x),
    "eval_shape": lambda g, x: hk.eval_shape(g, x),
}


@pytest.mark.parametrize("wrap", list(_WRAPPERS.values()), ids=list(_WRAPPERS))
def test_get_params_inside_wrapper_at_init_shows_params_from_before_it(wrap):
    seen = []

    def f(x):
        hk.Linear(2, name="before")(x)

        def inner(x):
            y = hk.Linear(3, name="inside")(x)
            seen.append(sorted(hk.get_params()))
            return jnp.sum(y)

        return wrap(inner, x)

    hk.transform(f).init(KEY, jnp.ones([2, 3]))
    # Also: a branch given twice to cond/switch runs its Python once, as in Haiku.
    assert seen == [["before"]]


@pytest.mark.parametrize("name", ["cond", "vmap", "grad", "remat"])
def test_state_getters_inside_wrapper_show_state_from_before_it_at_init_only(name):
    wrap = _WRAPPERS[name]
    seen = []

    def f(x):
        hk.set_state("before", 1)

        def inner(x):
            hk.set_state("inside", 2)
            hk.get_state("made", [], init=jnp.zeros)
            seen.append((sorted(hk.get_current_state()["~"]), sorted(hk.get_initial_state()["~"])))
            return jnp.sum(x)

        return wrap(inner, x)

    t = hk.transform_with_state(f)
    params, state = t.init(None, jnp.ones([2, 3]))
    t.apply(params, state, None, jnp.ones([2, 3]))
    everything = ["before", "inside", "made"]
    assert seen == [(["before"], ["before"]), (everything, everything)]  # init, then apply
