"""Tests of hk_core/_src/training/pruning.py: magnitude pruning as an optax transformation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hk_core as hk
from hk_core import training


def _params():
    rng = np.random.default_rng(0)
    return {"linear": {"w": jnp.asarray(rng.standard_normal((8, 5)), jnp.float32),
                       "b": jnp.asarray(rng.standard_normal(5), jnp.float32)}}


def _step(tx, params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def test_constant_sparsity_zeroes_the_smallest_magnitudes_of_each_weight():
    params = _params()
    tx = optax.chain(optax.sgd(0.0), training.magnitude_pruning(0.25))
    pruned, _ = _step(tx, params, tx.init(params), jax.tree.map(jnp.zeros_like, params))
    w = np.asarray(params["linear"]["w"])
    threshold = np.sort(np.abs(w).ravel())[10]  # 25% of 40 entries: the 10 smallest go
    np.testing.assert_array_equal(np.asarray(pruned["linear"]["w"]),
                                  np.where(np.abs(w) >= threshold, w, 0.0))


def test_biases_get_the_optimizer_updates_unchanged():
    params = _params()
    grads = jax.tree.map(jnp.ones_like, params)
    tx = optax.chain(optax.adam(0.1), training.magnitude_pruning(0.5))
    pruned, _ = _step(tx, params, tx.init(params), grads)
    reference, _ = _step(optax.adam(0.1), params, optax.adam(0.1).init(params), grads)
    chex.assert_trees_all_equal(pruned["linear"]["b"], reference["linear"]["b"])


def test_sparsity_follows_the_polynomial_schedule():
    params = _params()
    schedule = optax.polynomial_schedule(0.0, 0.8, power=3, transition_steps=10)
    tx = optax.chain(optax.sgd(0.01), training.magnitude_pruning(schedule))
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for step in range(12):
        params, state = _step(tx, params, state, grads)
        expected = np.floor((0.8 - 0.8 * (1 - min(step, 10) / 10) ** 3) * 40) / 40
        assert training.sparsity_of(params) == pytest.approx(expected), step


def test_pruned_weights_stay_zero_through_further_adam_steps():
    model = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([16, 3])(x)))
    x = jax.random.normal(jax.random.key(0), (32, 6))
    y = jax.random.randint(jax.random.key(1), (32,), 0, 3)
    params = model.init(jax.random.key(2), x)
    schedule = optax.polynomial_schedule(0.0, 0.6, power=3, transition_steps=20)
    tx = optax.chain(optax.adam(0.05), training.magnitude_pruning(schedule))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
            model.apply(p, x), y).mean())(params)
        return _step(tx, params, state, grads)

    for _ in range(25):  # past the end of the schedule: sparsity stays 0.6
        params, state = step(params, state)
    zeros = jax.tree.map(lambda w: np.asarray(w) == 0, params)
    for _ in range(20):
        params, state = step(params, state)
    for module_name in ("mlp/~/linear_0", "mlp/~/linear_1"):
        w = np.asarray(params[module_name]["w"])
        assert np.all(w[zeros[module_name]["w"]] == 0), module_name
    assert training.sparsity_of(params) == pytest.approx(0.6, abs=0.01)


def test_update_without_params_raises_value_error():
    tx = training.magnitude_pruning(0.5)
    params = _params()
    with pytest.raises(ValueError, match=r"magnitude_pruning: update needs params"):
        tx.update(params, tx.init(params))
