"""Tests for hk_core/_src/training/train_state.py."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hk_core as hk
from hk_core import training

W = np.array([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]], np.float32)
B = np.array([0.25, -0.5], np.float32)
GRADS = {"linear": {"w": np.full((3, 2), 2.0, np.float32), "b": np.ones(2, np.float32)}}


def _model():
    return hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))


def _params():
    return {"linear": {"w": jnp.asarray(W), "b": jnp.asarray(B)}}


def _sgd_state(lr=0.5, state=None):
    return training.TrainState.create(
        apply_fn=_model().apply, params=_params(), tx=optax.sgd(lr), state=state)


def test_create_starts_at_int32_step_zero():
    ts = _sgd_state()
    assert ts.step.dtype == jnp.int32 and int(ts.step) == 0


def test_create_without_state_holds_empty_dict():
    assert _sgd_state().state == {}


def test_create_initialises_opt_state_with_tx():
    ts = training.TrainState.create(apply_fn=None, params=_params(), tx=optax.adam(1e-3))
    expected = optax.adam(1e-3).init(_params())
    chex.assert_trees_all_equal(ts.opt_state, expected)


def test_apply_gradients_updates_params_by_sgd_rule():
    ts = _sgd_state(lr=0.5).apply_gradients(grads=GRADS)
    expected = {"linear": {"w": W - 0.5 * GRADS["linear"]["w"],
                           "b": B - 0.5 * GRADS["linear"]["b"]}}
    chex.assert_trees_all_close(ts.params, expected)


def test_apply_gradients_increments_step():
    ts = _sgd_state().apply_gradients(grads=GRADS).apply_gradients(grads=GRADS)
    assert int(ts.step) == 2


def test_apply_gradients_with_state_replaces_model_state():
    ts = _sgd_state(state={"bn": {"mean": jnp.zeros(2)}})
    new = ts.apply_gradients(grads=GRADS, state={"bn": {"mean": jnp.ones(2)}})
    chex.assert_trees_all_equal(new.state, {"bn": {"mean": np.ones(2, np.float32)}})


def test_apply_gradients_without_state_keeps_model_state():
    ts = _sgd_state(state={"bn": {"mean": jnp.full(2, 3.0)}})
    new = ts.apply_gradients(grads=GRADS)
    chex.assert_trees_all_equal(new.state, {"bn": {"mean": np.full(2, 3.0, np.float32)}})


def test_apply_gradients_applies_extra_changes():
    def other_apply(params, x):
        return x

    new = _sgd_state().apply_gradients(grads=GRADS, apply_fn=other_apply)
    assert new.apply_fn is other_apply


def test_apply_gradients_with_mismatched_grads_names_both_structures():
    bad = {"linear": {"w": GRADS["linear"]["w"]}}
    with pytest.raises(ValueError, match=r"grads must have the structure of params; "
                                         r"expected .*'b'.*'w'.*, got .*'w'"):
        _sgd_state().apply_gradients(grads=bad)


def test_apply_gradients_without_tx_explains_how_to_build():
    ts = training.TrainState(step=jnp.zeros((), jnp.int32), params=_params(), state={},
                             opt_state=())
    with pytest.raises(ValueError, match=r"no optimizer \(tx is None\).*TrainState.create"):
        ts.apply_gradients(grads=GRADS)


def test_train_state_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot assign to field 'step'"):
        _sgd_state().step = 3


def test_replace_changes_only_named_field():
    ts = _sgd_state()
    new = ts.replace(step=jnp.asarray(7, jnp.int32))
    assert int(new.step) == 7 and new.params is ts.params and new.tx is ts.tx


def test_tree_leaves_are_step_params_state_and_opt_state():
    ts = training.TrainState.create(apply_fn=None, params=_params(), tx=optax.adam(1e-3),
                                    state={"bn": {"mean": jnp.zeros(2)}})
    # step 1 + params 2 + state 1 + adam (count 1, mu 2, nu 2) = 9; tx/apply_fn are static.
    assert len(jax.tree.leaves(ts)) == 9


def test_tree_util_flatten_unflatten_round_trips():
    ts = _sgd_state(state={"bn": {"mean": jnp.zeros(2)}})
    leaves, treedef = jax.tree_util.tree_flatten(ts)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert isinstance(rebuilt, training.TrainState)
    assert rebuilt.tx is ts.tx and rebuilt.apply_fn is ts.apply_fn
    chex.assert_trees_all_equal(rebuilt, ts)


def test_tree_map_keeps_static_fields():
    ts = _sgd_state()
    doubled = jax.tree.map(lambda x: x * 2, ts)
    assert doubled.tx is ts.tx and doubled.apply_fn is ts.apply_fn
    chex.assert_trees_all_close(doubled.params["linear"]["w"], 2 * W)


def test_tree_definitions_differ_when_tx_differs():
    a = jax.tree.structure(_sgd_state(lr=0.5))
    b = jax.tree.structure(training.TrainState.create(
        apply_fn=_model().apply, params=_params(), tx=optax.sgd(0.1)))
    assert a != b


def _jitted_update():
    return jax.jit(lambda ts: ts.apply_gradients(grads=GRADS), donate_argnums=0)


def test_jit_with_donation_returns_updated_state():
    new = _jitted_update()(_sgd_state(lr=0.5))
    assert isinstance(new, training.TrainState) and int(new.step) == 1
    chex.assert_trees_all_close(new.params["linear"]["b"], B - 0.5)


def test_jit_with_donation_consumes_incoming_buffers():
    ts = _sgd_state()
    _jitted_update()(ts)
    assert ts.params["linear"]["w"].is_deleted()


def test_jit_traces_once_for_repeated_steps():
    chex.clear_trace_counter()
    update = jax.jit(chex.assert_max_traces(lambda ts: ts.apply_gradients(grads=GRADS), n=1),
                     donate_argnums=0)
    ts = _sgd_state()
    for _ in range(3):  # same static fields and shapes: one compilation
        ts = update(ts)
    assert int(ts.step) == 3


def _params_holding_tx():
    """An optimizer whose state is the very params it was given (as a lookahead's slow copy)."""
    return optax.GradientTransformation(
        lambda params: {"slow": params}, lambda updates, state, params=None: (updates, state))


def test_create_copies_params_so_the_state_owns_its_buffers():
    params = _params()
    ts = training.TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.5))
    assert ts.params["linear"]["w"] is not params["linear"]["w"]
    chex.assert_trees_all_equal(ts.params, {"linear": {"w": W, "b": B}})


def test_donating_a_created_state_leaves_callers_params_and_state_alive():
    params, state = _params(), {"bn": {"mean": jnp.zeros(2)}}
    ts = training.TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.5),
                                    state=state)
    _jitted_update()(ts)
    assert ts.params["linear"]["w"].is_deleted()  # the state's copy was donated
    chex.assert_trees_all_equal(params, {"linear": {"w": W, "b": B}})
    chex.assert_trees_all_equal(state, {"bn": {"mean": np.zeros(2, np.float32)}})


def test_create_gives_optimizer_state_aliasing_params_its_own_buffers():
    ts = training.TrainState.create(apply_fn=None, params=_params(), tx=_params_holding_tx())
    assert ts.opt_state["slow"]["linear"]["w"] is not ts.params["linear"]["w"]
    new = jax.jit(lambda t: t, donate_argnums=0)(ts)  # one buffer donated twice would fail
    chex.assert_trees_all_equal(new.opt_state["slow"], {"linear": {"w": W, "b": B}})


def test_create_keeps_the_sharding_of_sharded_params():
    mesh = jax.make_mesh((jax.device_count(),), ("model",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "model"))
    w = jax.device_put(jnp.zeros((3, 2 * jax.device_count())), sharding)
    ts = training.TrainState.create(apply_fn=None, params={"m": {"w": w}}, tx=optax.sgd(0.1))
    assert ts.params["m"]["w"].sharding == sharding
