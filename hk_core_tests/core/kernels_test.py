"""The one speed policy (core/kernels.py): one dispatch when eager, a nested call under a
trace, inlined inside loop bodies; the values are the same in all three."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import kernels


def _called_names(jaxpr) -> list[str]:
    names = []
    for eqn in jaxpr.eqns:
        if "name" in eqn.params:
            names.append(str(eqn.params["name"]))
        for sub in _sub_jaxprs(eqn.params):
            names.extend(_called_names(sub))
    return names


def _sub_jaxprs(params):
    for value in params.values():
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                yield v.jaxpr
            elif hasattr(v, "eqns"):
                yield v


def test_is_eager_only_outside_every_trace():
    seen = []

    def probe(x):
        seen.append(kernels.is_eager())
        return x

    assert kernels.is_eager()
    jax.jit(probe)(1.0)
    jax.grad(probe)(1.0)
    jax.vmap(probe)(jnp.ones([2]))
    assert seen == [False, False, False]


def test_is_eager_is_right_when_first_asked_under_a_trace(monkeypatch):
    monkeypatch.setattr(kernels, "_STATE_NOW", None)  # as in a fresh process
    monkeypatch.setattr(kernels, "_EAGER_STATE", None)
    seen = []

    def probe(x):
        seen.append(kernels.is_eager())
        return x

    jax.jit(probe)(1.0)
    jax.jit(probe)(2)
    assert seen == [False, False]
    assert kernels.is_eager()


def test_is_eager_fails_loudly_when_jax_trace_state_cannot_tell_traces_apart(monkeypatch):
    from jax.extend import core as jax_core
    monkeypatch.setattr(kernels, "_STATE_NOW", None)
    monkeypatch.setattr(kernels, "_EAGER_STATE", None)
    monkeypatch.setattr(jax_core, "get_opaque_trace_state", lambda: "same everywhere")
    with pytest.raises(RuntimeError, match=r"cannot tell eager from traced execution on jax "
                                           + jax.__version__.replace(".", r"\.")):
        kernels.is_eager()


def test_is_eager_in_another_thread_while_this_one_traces():
    import threading
    seen = []

    def probe(x):
        worker = threading.Thread(target=lambda: seen.append(kernels.is_eager()))
        worker.start()
        worker.join()
        seen.append(kernels.is_eager())
        return x

    jax.jit(probe)(1.0)
    assert seen == [True, False]


def test_loop_body_flag_nests_and_resets():
    assert not kernels.in_loop_body()
    with kernels.loop_body():
        with kernels.loop_body():
            assert kernels.in_loop_body()
        assert kernels.in_loop_body()
    assert not kernels.in_loop_body()


def test_kernel_decorator_with_and_without_jit_arguments():
    @kernels.kernel
    def add(x, y):
        return x + y

    @kernels.kernel(static_argnames="power")
    def pow_(x, power):
        return x ** power

    assert add.__name__ == "add"
    np.testing.assert_array_equal(add(jnp.ones([2]), 2.0), [3.0, 3.0])
    np.testing.assert_array_equal(pow_(jnp.full([2], 3.0), power=2), [9.0, 9.0])


def test_kernel_is_one_dispatch_when_eager_nested_under_trace_inlined_in_loops():
    traces = []

    @kernels.kernel
    def double(x):
        traces.append(kernels.in_loop_body())
        return 2 * x

    double(jnp.ones([3]))
    double(jnp.zeros([3]))  # same signature: the first trace is reused
    assert traces == [False]
    jaxpr = jax.make_jaxpr(double)(jnp.ones([3])).jaxpr
    assert [str(e.params.get("name")) for e in jaxpr.eqns] == ["double"]

    def loop(x):
        with kernels.loop_body():
            return double(x)

    jaxpr = jax.make_jaxpr(loop)(jnp.ones([4])).jaxpr
    assert [e.primitive.name for e in jaxpr.eqns] == ["mul"]


def test_layer_kernels_nest_outside_loops_and_are_inlined_inside():
    def f(x):
        x = hk.Linear(3, name="outside")(x)
        inner = hk.Linear(3, name="inside")
        x, _ = hk.scan(lambda c, _: (inner(c), None), x, None, length=2)
        return x

    f_t = hk.transform(f)
    x = jnp.ones([2, 3])
    params = f_t.init(jax.random.PRNGKey(0), x)
    jaxpr = jax.make_jaxpr(lambda p: f_t.apply(p, None, x))(params).jaxpr
    top_level = [str(eqn.params.get("name")) for eqn in jaxpr.eqns]
    assert top_level.count("_affine_fn") == 1  # the Linear outside the scan
    assert _called_names(jaxpr).count("_affine_fn") == 1  # none inside the scan body
    scan = next(eqn for eqn in jaxpr.eqns if eqn.primitive.name == "scan")
    body = scan.params["jaxpr"].jaxpr
    assert "dot_general" in {eqn.primitive.name for eqn in body.eqns}  # inlined there


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.int32, jnp.bool_])
@pytest.mark.parametrize("init, fill", [(jnp.zeros, 0), (jnp.ones, 1)])
def test_zeros_and_ones_params_match_numpy_eager_and_jitted(init, fill, dtype):
    f = hk.transform(lambda: hk.get_parameter("p", [3, 2], dtype, init=init))
    for params in (f.init(None), jax.jit(f.init)(None)):
        out = params["~"]["p"]
        assert out.dtype == dtype
        np.testing.assert_array_equal(np.asarray(out), np.full([3, 2], fill, dtype))


def test_other_initializers_are_called_as_given():
    calls = []

    def init(shape, dtype):
        calls.append((tuple(shape), dtype))
        return jnp.full(shape, 7, dtype)

    params = hk.transform(lambda: hk.get_parameter("p", [2], jnp.int32, init=init)).init(None)
    np.testing.assert_array_equal(params["~"]["p"], [7, 7])
    assert calls == [((2,), jnp.int32)]


def test_init_runs_its_fills_draws_and_splits_as_kernels():
    def f(x):
        hk.get_state("count", [], jnp.int32, init=jnp.zeros)
        return hk.Linear(2)(x)

    init = hk.transform_with_state(f).init
    x = jnp.ones([1, 3])
    jaxpr = jax.make_jaxpr(init)(jax.random.PRNGKey(0), x).jaxpr
    called = [str(eqn.params.get("name")) for eqn in jaxpr.eqns]
    assert sorted(set(called) & {"_filled", "_reserve_keys", "_draw_truncated_normal"}) == [
        "_draw_truncated_normal", "_filled", "_reserve_keys"]
    eager_out = init(jax.random.PRNGKey(0), x)
    jitted = jax.jit(init)(jax.random.PRNGKey(0), x)
    jax.tree.map(np.testing.assert_array_equal, eager_out, jitted)


def test_relu_in_nets_keeps_its_values_and_zero_gradient_at_zero():
    f = hk.transform(lambda x: hk.nets.MLP([4, 1])(x))
    x = jnp.array([[-3.0, 0.0, 0.5]])
    params = f.init(jax.random.PRNGKey(0), x)
    w0, b0 = params["mlp/~/linear_0"]["w"], params["mlp/~/linear_0"]["b"]
    w1, b1 = params["mlp/~/linear_1"]["w"], params["mlp/~/linear_1"]["b"]
    expected = np.maximum(np.asarray(x) @ np.asarray(w0) + np.asarray(b0), 0) @ w1 + b1
    np.testing.assert_allclose(f.apply(params, None, x), expected, rtol=1e-6)
    np.testing.assert_array_equal(f.apply(params, None, x), jax.jit(f.apply)(params, None, x))
    grad = jax.grad(lambda v: hk.transform(
        lambda y: hk.nets.MLP([1], activate_final=True, w_init=jnp.ones,
                              b_init=jnp.zeros)(y)).apply(
        {"mlp/~/linear_0": {"w": jnp.ones([1, 1]), "b": jnp.zeros([1])}}, None, v).sum())(
        jnp.zeros([1, 1]))
    assert float(grad[0, 0]) == 0.0


def test_custom_activation_runs_as_given_and_may_use_hk_state():
    def activation(x):
        return x * hk.get_parameter("slope", [], init=jnp.ones)

    f = hk.transform(lambda x: hk.nets.MLP([2, 2], activation=activation)(x))
    params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
    assert "mlp" in params and params["mlp"]["slope"].shape == ()


def test_batch_norm_eager_matches_jit_and_debiases_the_first_update():
    f = hk.transform_with_state(
        lambda x: hk.BatchNorm(True, True, 0.9)(x, is_training=True))
    x = jax.random.normal(jax.random.PRNGKey(0), [4, 3, 3, 5])
    jitted = jax.jit(f.init)(None, x)
    params, state = f.init(None, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
                 (params, state), jitted)
    out, new_state = f.apply(params, state, None, x)
    jit_out, jit_state = jax.jit(f.apply)(params, state, None, x)
    np.testing.assert_allclose(out, jit_out, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
                 new_state, jit_state)
    # Apply makes the first counted update, debiased by 1 - decay**counter: the batch mean.
    mean = np.asarray(x).mean(axis=(0, 1, 2), keepdims=True)
    ema = new_state["batch_norm/~/mean_ema"]
    assert int(ema["counter"]) == 1
    np.testing.assert_allclose(ema["average"], mean, rtol=1e-5, atol=1e-6)
