"""Tests of hk_core/_src/checkpoint/manager.py: save/restore, steps, targets, shardings."""

import os
import pickle
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core import checkpoint
from hk_core._src.training import train_state


def _tree(value: float = 1.0) -> dict:
    return {
        "params": {"mlp/~/linear_0": {"w": jnp.full((4, 3), value),
                                      "b": jnp.zeros(3, jnp.bfloat16)}},
        "step": jnp.asarray(int(value), jnp.int32),
    }


def _mesh(n: int) -> jax.sharding.Mesh:
    return jax.make_mesh((n,), ("d",), devices=jax.devices()[:n])


@pytest.fixture(params=[True, False], ids=["async", "sync"])
def manager(request, tmp_path):
    with checkpoint.CheckpointManager(tmp_path / "ckpt", async_save=request.param) as m:
        yield m


def test_restore_returns_saved_values_dtypes_and_structure(manager):
    manager.save(1, _tree(2.0))
    restored = manager.restore(1, target=_tree(0.0))
    chex.assert_trees_all_equal(restored, _tree(2.0))
    assert restored["params"]["mlp/~/linear_0"]["b"].dtype == jnp.bfloat16


def test_restore_without_target_returns_nested_dicts_on_default_device(manager):
    manager.save(1, _tree(2.0))
    restored = manager.restore()
    chex.assert_trees_all_equal(restored, _tree(2.0))
    assert restored["step"].sharding == jax.sharding.SingleDeviceSharding(jax.devices()[0])


def test_restore_into_train_state_target_takes_its_type(manager):
    params = {"linear": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}}
    tx = optax.adam(1e-3)
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=tx)
    state = state.apply_gradients(grads=jax.tree.map(jnp.ones_like, params))
    manager.save(1, state)
    fresh = train_state.TrainState.create(
        apply_fn=None, params=jax.tree.map(jnp.zeros_like, params), tx=tx)
    restored = manager.restore(target=fresh)
    assert isinstance(restored, train_state.TrainState) and restored.tx is tx
    chex.assert_trees_all_equal(restored, state)


def test_restore_with_shape_dtype_struct_target_returns_jax_arrays(manager):
    manager.save(1, _tree(3.0))
    target = jax.eval_shape(lambda: _tree(0.0))
    restored = manager.restore(target=target)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(restored))
    chex.assert_trees_all_equal(restored, _tree(3.0))


def test_numpy_and_scalar_leaves_come_back_as_numpy_and_scalars(manager):
    tree = {"table": np.arange(4, dtype=np.int16), "lr": 0.5, "epoch": 3}
    manager.save(1, tree)
    restored = manager.restore(target={"table": np.zeros(4, np.int16), "lr": 0.0, "epoch": 0})
    assert isinstance(restored["table"], np.ndarray) and type(restored["lr"]) is float
    assert (restored["lr"], restored["epoch"]) == (0.5, 3) and type(restored["epoch"]) is int
    np.testing.assert_array_equal(restored["table"], tree["table"])


def test_numpy_leaf_changed_after_save_returns_is_saved_unchanged(manager):
    table = np.zeros(4, np.float32)
    manager.save(1, {"table": table})
    table += 7.0  # save returned: the caller may change its arrays
    np.testing.assert_array_equal(manager.restore()["table"], np.zeros(4, np.float32))


def test_array_donated_after_async_save_returns_is_saved_unchanged(tmp_path):
    with checkpoint.CheckpointManager(tmp_path, async_save=True) as manager:
        x = jnp.arange(1024.0)
        manager.save(1, {"x": x})
        jax.jit(lambda a: a * 0 - 1, donate_argnums=0)(x)  # a train step donating its input
        manager.wait()
        np.testing.assert_array_equal(manager.restore()["x"], np.arange(1024.0))


def test_steps_are_listed_oldest_first_and_latest_is_newest(manager):
    assert manager.latest_step() is None and manager.all_steps() == []
    for step in (5, 1, 3):
        manager.save(step, _tree())
    manager.wait()
    assert manager.all_steps() == [1, 3, 5] and manager.latest_step() == 5


def test_restore_without_step_reads_the_latest(manager):
    manager.save(1, _tree(1.0))
    manager.save(2, _tree(2.0))
    chex.assert_trees_all_equal(manager.restore(target=_tree()), _tree(2.0))


def test_max_to_keep_keeps_the_newest_steps_and_deletes_older_directories(tmp_path):
    with checkpoint.CheckpointManager(tmp_path, max_to_keep=2) as manager:
        for step in range(1, 5):
            manager.save(step, _tree(float(step)))
        manager.wait()
        assert manager.all_steps() == [3, 4]
        chex.assert_trees_all_equal(manager.restore(3, target=_tree()), _tree(3.0))
    assert sorted(e for e in os.listdir(tmp_path) if e.isdigit()) == ["3", "4"]


def test_steps_survive_reopening_the_directory(tmp_path):
    with checkpoint.CheckpointManager(tmp_path) as manager:
        manager.save(7, _tree(7.0))
    with checkpoint.CheckpointManager(tmp_path) as manager:
        assert manager.all_steps() == [7]
        chex.assert_trees_all_equal(manager.restore(target=_tree()), _tree(7.0))


def test_save_of_existing_step_raises_naming_directory_and_step(tmp_path):
    with checkpoint.CheckpointManager(tmp_path) as manager:
        manager.save(1, _tree())
        with pytest.raises(ValueError, match=r"step 1 already exists; steps present: \[1\]"):
            manager.save(1, _tree())


def test_save_of_negative_step_raises_value_error(manager):
    with pytest.raises(ValueError, match=r"step must be non-negative, got -1"):
        manager.save(-1, _tree())


def test_save_of_tree_without_arrays_raises_value_error(manager):
    with pytest.raises(ValueError, match=r"save\(step=1\): the tree has no arrays to save"):
        manager.save(1, {"empty": {}})


def test_save_of_zero_size_array_raises_naming_path_and_shape(manager):
    with pytest.raises(ValueError, match=r"save\(step=1\): 'params/w' has zero size \(shape "
                                         r"\(0, 3\)\)"):
        manager.save(1, {"params": {"w": jnp.zeros((0, 3))}, "step": jnp.asarray(1)})


def test_none_leaves_are_kept_in_the_restored_structure(manager):
    manager.save(1, {"a": None, "b": jnp.ones(2)})
    restored = manager.restore()
    assert restored["a"] is None
    np.testing.assert_array_equal(restored["b"], np.ones(2))


def test_restore_of_absent_step_raises_file_not_found_listing_steps(manager):
    manager.save(1, _tree())
    with pytest.raises(FileNotFoundError, match=r"no complete step 2; steps present: \[1\]"):
        manager.restore(2)


def test_restore_from_empty_directory_raises_file_not_found(manager):
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint to restore"):
        manager.restore()


def test_max_to_keep_zero_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"max_to_keep must be None or a positive int, got 0"):
        checkpoint.CheckpointManager(tmp_path, max_to_keep=0)


def test_restore_into_target_with_other_shape_names_path_expected_and_actual(manager):
    manager.save(1, _tree())
    target = _tree()
    target["params"]["mlp/~/linear_0"]["w"] = jnp.zeros((5, 3))
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'params/mlp/~/linear_0/w': shape: target expects \(5, 3\), "
                             r"checkpoint has \(4, 3\)"):
        manager.restore(target=target)


def test_restore_into_target_with_other_dtype_names_path_expected_and_actual(manager):
    manager.save(1, _tree())
    target = _tree()
    target["step"] = jnp.zeros((), jnp.float32)
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'step': dtype: target expects float32, checkpoint has int32"):
        manager.restore(target=target)


def test_restore_into_target_with_extra_path_names_it(manager):
    manager.save(1, _tree())
    target = {**_tree(), "opt_state": {"mu": jnp.zeros(3)}}
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'opt_state/mu': missing from the checkpoint"):
        manager.restore(target=target)


def test_restore_into_target_lacking_a_saved_path_names_it(manager):
    manager.save(1, _tree())
    target = _tree()
    del target["step"]
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'step': not in target: target expects nothing, checkpoint has an "
                             r"array"):
        manager.restore(target=target)


@pytest.mark.parametrize("devices, spec", [(2, P("d")), (2, P()), (8, P(None, "d")), (1, P())],
                         ids=["2-way", "replicated-on-2", "8-way-columns", "one-device"])
def test_restore_into_another_sharding_gives_equal_values(tmp_path, devices, spec):
    value = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
    saved = jax.device_put(value, NamedSharding(_mesh(8), P("d")))  # 8 row blocks
    with checkpoint.CheckpointManager(tmp_path) as manager:
        manager.save(1, {"w": saved})
        sharding = NamedSharding(_mesh(devices), spec)
        restored = manager.restore(target={"w": jax.ShapeDtypeStruct((16, 8), jnp.float32,
                                                                     sharding=sharding)})
    assert restored["w"].sharding == sharding
    np.testing.assert_array_equal(np.asarray(restored["w"]), value)


def test_restore_never_unpickles(manager):
    manager.save(1, _tree(2.0))
    # pickle is how Python runs code on load; a restore must not reach it.
    forbidden = mock.Mock(side_effect=AssertionError("unpickling during restore"))
    with mock.patch.object(pickle, "loads", forbidden), \
            mock.patch.object(pickle, "load", forbidden), \
            mock.patch.object(pickle, "Unpickler", forbidden):
        restored = manager.restore(target=_tree())
    chex.assert_trees_all_equal(restored, _tree(2.0))
    forbidden.assert_not_called()


def test_close_waits_for_the_pending_save(tmp_path):
    manager = checkpoint.CheckpointManager(tmp_path, async_save=True)
    manager.save(1, _tree())
    manager.close()
    assert os.path.isfile(tmp_path / "1" / "manifest" / "manifest.process_0.json")
