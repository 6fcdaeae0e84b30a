"""Tests for hk_core/_src/training/step.py."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hk_core as hk
from hk_core import training

_X = np.random.RandomState(0).normal(size=(8, 3)).astype(np.float32)
_TRUE_W = np.array([[1.0], [-2.0], [0.5]], np.float32)
_Y = _X @ _TRUE_W + 0.3


def _model():
    return hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([4, 1])(x)))


def _mse(params, state, rng, batch):
    x, y = batch
    return jnp.mean((_model().apply(params, x) - y) ** 2)


def _mse_with_metrics(params, state, rng, batch):
    x, y = batch
    return _mse(params, state, rng, batch), {"x_mean": jnp.mean(x), "y_max": jnp.max(y)}


def _fresh_state(tx=None):
    model = _model()
    return training.TrainState.create(
        apply_fn=model.apply, params=model.init(jax.random.key(0), _X),
        tx=optax.sgd(0.1) if tx is None else tx)


def test_loss_falls_on_fixed_regression_problem():
    step = training.make_train_step(_mse)
    ts = _fresh_state(optax.adam(0.05))
    first = None
    for _ in range(100):
        ts, metrics = step(ts, (_X, _Y))
        first = float(metrics["loss"]) if first is None else first
    assert float(metrics["loss"]) < 0.1 * first


def test_step_returns_loss_before_the_update():
    ts = _fresh_state()
    expected = float(_mse(ts.params, {}, None, (_X, _Y)))
    _, metrics = training.make_train_step(_mse, donate=False)(ts, (_X, _Y))
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-6)


def test_step_applies_plain_gradient_with_sgd():
    ts = _fresh_state(optax.sgd(0.1))
    grads = jax.grad(_mse)(ts.params, {}, None, (_X, _Y))
    expected = jax.tree.map(lambda p, g: np.asarray(p) - 0.1 * np.asarray(g), ts.params, grads)
    new, _ = training.make_train_step(_mse, donate=False)(ts, (_X, _Y))
    chex.assert_trees_all_close(new.params, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_accumulating_k_micro_batches_equals_one_big_batch(k):
    big, _ = training.make_train_step(_mse, donate=False)(_fresh_state(), (_X, _Y))
    step = training.make_train_step(_mse, accumulation_steps=k, donate=False)
    accumulated, _ = step(_fresh_state(), (_X, _Y))
    chex.assert_trees_all_close(accumulated.params, big.params, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [2, 4])
def test_accumulated_loss_metric_equals_big_batch_loss(k):
    ts = _fresh_state()
    expected = float(_mse(ts.params, {}, None, (_X, _Y)))
    step = training.make_train_step(_mse, accumulation_steps=k, donate=False)
    _, metrics = step(ts, (_X, _Y))
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)


def test_has_aux_metrics_are_returned_with_loss():
    step = training.make_train_step(_mse_with_metrics, has_aux=True, donate=False)
    _, metrics = step(_fresh_state(), (_X, _Y))
    assert sorted(metrics) == ["loss", "x_mean", "y_max"]
    np.testing.assert_allclose(float(metrics["x_mean"]), _X.mean(), rtol=1e-5)


def test_has_aux_metrics_are_averaged_over_micro_batches():
    step = training.make_train_step(_mse_with_metrics, has_aux=True, accumulation_steps=4,
                                    donate=False)
    _, metrics = step(_fresh_state(), (_X, _Y))
    micro_max = _Y.reshape(4, 2, 1).max(axis=(1, 2))  # y_max of each micro-batch of 2
    np.testing.assert_allclose(float(metrics["y_max"]), micro_max.mean(), rtol=1e-6)


def _counting_loss(params, state, rng, batch):
    x, y = batch
    count = state["counter"]["n"]
    return _mse(params, state, rng, batch), {"counter": {"n": count + 1}}


def _counter_state(tx=None):
    return _fresh_state(tx).replace(state={"counter": {"n": jnp.zeros((), jnp.int32)}})


def test_has_state_returns_new_model_state():
    step = training.make_train_step(_counting_loss, has_state=True, donate=False)
    new, _ = step(_counter_state(), (_X, _Y))
    assert int(new.state["counter"]["n"]) == 1


def test_accumulation_threads_model_state_through_each_micro_batch():
    step = training.make_train_step(_counting_loss, has_state=True, accumulation_steps=4,
                                    donate=False)
    new, _ = step(_counter_state(), (_X, _Y))
    assert int(new.state["counter"]["n"]) == 4


def test_has_state_and_has_aux_return_state_and_metrics():
    def loss_fn(params, state, rng, batch):
        loss, new_state = _counting_loss(params, state, rng, batch)
        return loss, (new_state, {"n": new_state["counter"]["n"]})

    step = training.make_train_step(loss_fn, has_aux=True, has_state=True, donate=False)
    new, metrics = step(_counter_state(), (_X, _Y))
    assert int(new.state["counter"]["n"]) == 1 and int(metrics["n"]) == 1


def _rng_loss(params, state, rng, batch):
    x, _ = batch
    noise = jax.random.normal(rng, ())
    return _mse(params, state, rng, batch), {"noise": noise}


def test_rng_is_passed_to_loss_fn_unchanged_without_accumulation():
    key = jax.random.key(3)
    step = training.make_train_step(_rng_loss, has_aux=True, donate=False)
    _, metrics = step(_fresh_state(), (_X, _Y), key)
    np.testing.assert_allclose(float(metrics["noise"]), float(jax.random.normal(key, ())))


def test_rng_is_split_into_one_key_per_micro_batch():
    key = jax.random.key(3)
    step = training.make_train_step(_rng_loss, has_aux=True, accumulation_steps=2,
                                    donate=False)
    _, metrics = step(_fresh_state(), (_X, _Y), key)
    keys = jax.random.split(key, 2)
    expected = np.mean([float(jax.random.normal(k, ())) for k in keys])
    np.testing.assert_allclose(float(metrics["noise"]), expected, rtol=1e-6)


def test_donate_true_consumes_incoming_train_state():
    ts = _fresh_state()
    training.make_train_step(_mse)(ts, (_X, _Y))
    assert ts.params["mlp/~/linear_0"]["w"].is_deleted()


def test_donate_false_keeps_incoming_train_state():
    ts = _fresh_state()
    training.make_train_step(_mse, donate=False)(ts, (_X, _Y))
    assert not ts.params["mlp/~/linear_0"]["w"].is_deleted()


def test_step_traces_once_for_repeated_calls():
    chex.clear_trace_counter()
    step = training.make_train_step(chex.assert_max_traces(_mse, n=1))
    ts = _fresh_state()
    for _ in range(3):
        ts, _ = step(ts, (_X, _Y))
    assert int(ts.step) == 3


def test_axis_name_averages_gradients_across_shards():
    big, _ = training.make_train_step(_mse, donate=False)(_fresh_state(), (_X, _Y))
    step = training.make_train_step(_mse, donate=False, axis_name="data")
    shards = (_X.reshape(2, 4, 3), _Y.reshape(2, 4, 1))
    sharded, _ = jax.vmap(step, in_axes=(None, 0), axis_name="data")(_fresh_state(), shards)
    first_replica = jax.tree.map(lambda leaf: leaf[0], sharded.params)
    chex.assert_trees_all_close(first_replica, big.params, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [0, -1, 1.5])
def test_invalid_accumulation_steps_names_value(k):
    with pytest.raises(ValueError, match=rf"accumulation_steps must be an int >= 1; got {k}"):
        training.make_train_step(_mse, accumulation_steps=k)


def test_batch_not_divisible_by_accumulation_steps_names_leaf_and_shape():
    step = training.make_train_step(_mse, accumulation_steps=3, donate=False)
    with pytest.raises(ValueError, match=r"batch leaf \[0\] must have a leading batch axis "
                                         r"divisible by accumulation_steps=3; got shape "
                                         r"\(8, 3\)"):
        step(_fresh_state(), (_X, _Y))


def test_has_aux_with_bare_loss_says_what_to_return():
    step = training.make_train_step(_mse, has_aux=True, donate=False)
    with pytest.raises(TypeError, match=r"has_aux=True, has_state=False loss_fn must return "
                                        r"\(loss, metrics\); got an array of shape \(\)"):
        step(_fresh_state(), (_X, _Y))


def test_non_mapping_metrics_are_rejected():
    def loss_fn(params, state, rng, batch):
        return _mse(params, state, rng, batch), [1.0]

    step = training.make_train_step(loss_fn, has_aux=True, donate=False)
    with pytest.raises(TypeError, match=r"metrics loss_fn returns must be a mapping of name "
                                        r"to scalar; got list"):
        step(_fresh_state(), (_X, _Y))


def test_donating_steps_never_delete_the_params_given_to_create():
    model = _model()
    params = model.init(jax.random.key(0), _X)
    ts = training.TrainState.create(apply_fn=model.apply, params=params, tx=optax.sgd(0.1))
    step = training.make_train_step(_mse)
    for _ in range(2):
        ts, _ = step(ts, (_X, _Y))
    chex.assert_trees_all_equal(params, model.init(jax.random.key(0), _X))
