"""Eager fast paths: taken only when no trace is active, and the values are unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import eager


def test_is_eager_only_outside_every_trace():
    seen = []

    def probe(x):
        seen.append(eager.is_eager())
        return x

    assert eager.is_eager()
    jax.jit(probe)(1.0)
    jax.grad(probe)(1.0)
    jax.vmap(probe)(jnp.ones([2]))
    assert seen == [False, False, False]


def test_is_eager_is_right_when_first_asked_under_a_trace(monkeypatch):
    monkeypatch.setattr(eager, "_STATE_NOW", None)  # as in a fresh process
    monkeypatch.setattr(eager, "_EAGER_STATE", None)
    seen = []

    def probe(x):
        seen.append(eager.is_eager())
        return x

    jax.jit(probe)(1.0)
    jax.jit(probe)(2)
    assert seen == [False, False]
    assert eager.is_eager()


def test_is_eager_fails_loudly_when_jax_trace_state_cannot_tell_traces_apart(monkeypatch):
    from jax.extend import core as jax_core
    monkeypatch.setattr(eager, "_STATE_NOW", None)
    monkeypatch.setattr(eager, "_EAGER_STATE", None)
    monkeypatch.setattr(jax_core, "get_opaque_trace_state", lambda: "same everywhere")
    with pytest.raises(RuntimeError, match=r"cannot tell eager from traced execution on jax "
                                           + jax.__version__.replace(".", r"\.")):
        eager.is_eager()


def test_is_eager_in_another_thread_while_this_one_traces():
    import threading
    seen = []

    def probe(x):
        worker = threading.Thread(target=lambda: seen.append(eager.is_eager()))
        worker.start()
        worker.join()
        seen.append(eager.is_eager())
        return x

    jax.jit(probe)(1.0)
    assert seen == [True, False]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.int32, jnp.bool_])
@pytest.mark.parametrize("init, fill", [(jnp.zeros, 0), (jnp.ones, 1)])
def test_zeros_and_ones_fills_match_numpy(init, fill, dtype):
    out = eager.call_initializer(init, [3, 2], dtype)
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out), np.full([3, 2], fill, dtype))


def test_other_initializers_are_called_as_given():
    calls = []

    def init(shape, dtype):
        calls.append((shape, dtype))
        return jnp.full(shape, 7, dtype)

    np.testing.assert_array_equal(eager.call_initializer(init, (2,), jnp.int32), [7, 7])
    assert calls == [((2,), jnp.int32)]


def test_params_and_state_created_in_jit_stay_plain_ops():
    def f(x):
        hk.get_state("count", [], jnp.int32, init=jnp.zeros)
        return hk.Linear(2)(x)

    init = hk.transform_with_state(f).init
    jaxpr = jax.make_jaxpr(init)(jax.random.PRNGKey(0), jnp.ones([1, 3]))
    called = {str(eqn.params.get("name")) for eqn in jaxpr.jaxpr.eqns}
    fast_paths = {"_filled", "_split_ahead", "_scaled_truncated_normal"}
    assert not called & fast_paths, called
    assert "random_split" in {eqn.primitive.name for eqn in jaxpr.jaxpr.eqns}


def test_eager_init_uses_the_fast_paths_and_jit_does_not(monkeypatch):
    from hk_core._src.core import rng
    from hk_core._src.layers import initializers
    calls = []

    def spy(module, name):
        original = getattr(module, name)

        def wrapper(*args):
            calls.append(name)
            return original(*args)

        monkeypatch.setattr(module, name, wrapper)

    spy(eager, "_filled")
    spy(rng, "_split_ahead")
    spy(initializers, "_scaled_truncated_normal")

    def f(x):
        hk.get_state("count", [], jnp.int32, init=jnp.zeros)
        return hk.Linear(2)(x)

    init = hk.transform_with_state(f).init
    x = jnp.ones([1, 3])
    jitted = jax.jit(init)(jax.random.PRNGKey(0), x)
    assert calls == []
    eager_out = init(jax.random.PRNGKey(0), x)
    assert sorted(calls) == ["_filled", "_filled", "_scaled_truncated_normal", "_split_ahead"]
    jax.tree.map(np.testing.assert_array_equal, eager_out, jitted)


@pytest.mark.parametrize("activation", [jax.nn.relu, jax.nn.relu6])
def test_relu_activations_are_jitted_when_eager_with_identical_values(activation):
    x = jnp.array([-3.0, -0.0, 0.0, 0.5, 5.0, 7.0, jnp.inf, -jnp.inf, jnp.nan])
    eager_out = eager.activate(activation, x)
    np.testing.assert_array_equal(np.asarray(eager_out), np.asarray(activation(x)))
    jaxpr = jax.make_jaxpr(lambda v: eager.activate(activation, v))(x).jaxpr
    # Under a trace the plain function runs: its custom_jvp rule is kept, no extra jit.
    assert [eqn.primitive.name for eqn in jaxpr.eqns] == ["custom_jvp_call"]


def test_relu_keeps_its_zero_gradient_at_zero_through_activate():
    grad = jax.grad(lambda v: eager.activate(jax.nn.relu, v))(0.0)
    assert grad == 0.0


def test_other_activations_are_called_as_given():
    calls = []

    def activation(x):
        calls.append(x)
        return 2 * x

    assert eager.activate(activation, 3.0) == 6.0
    assert calls == [3.0]


def test_mlp_eager_apply_dispatches_relu_jitted_and_matches_jit(monkeypatch):
    jitted_relus = []
    for fast in eager._ACTIVATIONS.values():
        monkeypatch.setattr(fast, "jitted", (lambda j: lambda x: jitted_relus.append(1) or
                                             j(x))(fast.jitted))
    f = hk.transform(lambda x: hk.nets.MLP([4, 3, 2])(x))
    x = jax.random.normal(jax.random.PRNGKey(1), [5, 3])
    params = f.init(jax.random.PRNGKey(0), x)
    jitted_relus.clear()
    eager_out = f.apply(params, None, x)
    assert len(jitted_relus) == 2  # after linear_0 and linear_1, not after the last layer
    np.testing.assert_array_equal(np.asarray(eager_out),
                                  np.asarray(jax.jit(f.apply)(params, None, x)))


def test_batch_norm_eager_runs_jitted_steps_and_matches_jit(monkeypatch):
    from hk_core._src.layers import batch_norm, moving_averages
    calls = []
    for name, fast in (("_moments_jitted", batch_norm._moments),
                       ("_normalize_jitted", batch_norm._normalize),
                       ("_step_jitted", moving_averages._step)):
        monkeypatch.setattr(fast, "jitted", (lambda n, f: lambda *a, **k: calls.append(n) or
                                             f(*a, **k))(name, fast.jitted))

    f = hk.transform_with_state(
        lambda x: hk.BatchNorm(True, True, 0.9)(x, is_training=True))
    x = jax.random.normal(jax.random.PRNGKey(0), [4, 3, 3, 5])
    jitted = jax.jit(f.init)(None, x)
    assert calls == []  # under a trace the plain functions run
    params, state = f.init(None, x)
    assert sorted(calls) == ["_moments_jitted", "_normalize_jitted", "_step_jitted",
                             "_step_jitted"]
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
