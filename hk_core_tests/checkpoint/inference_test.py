"""Tests of hk_core/_src/checkpoint/inference.py: params and state without the optimizer's bytes."""

import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core import checkpoint
from hk_core.training import TrainState

_RNG = np.random.default_rng(0)
_PARAMS = {"mlp/~/linear_0": {"w": _RNG.standard_normal((512, 256)).astype(np.float32),
                              "b": np.zeros(256, np.float32)}}
_STATE = {"batch_norm/~/mean_ema": {"average": np.full((256,), 0.5, np.float32),
                                    "counter": np.asarray(7, np.int32)}}


def _read_bytes() -> int:
    """Bytes this process has read through read-like system calls (Linux /proc)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def _abstract(tree, sharding=None):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("ckpt")
    ts = TrainState.create(apply_fn=None, params=jax.tree.map(jnp.asarray, _PARAMS),
                           state=jax.tree.map(jnp.asarray, _STATE), tx=optax.adam(1e-3))
    with checkpoint.CheckpointManager(path, async_save=False) as manager:
        manager.save(3, ts)
    return path


def test_restores_params_and_state_with_saved_values(directory):
    out = checkpoint.restore_for_inference(
        directory, target={"params": _abstract(_PARAMS), "state": _abstract(_STATE)})
    chex.assert_trees_all_equal(out, {"params": _PARAMS, "state": _STATE})


def test_reads_about_a_third_of_the_bytes_of_a_full_restore(directory):
    target = {"params": _abstract(_PARAMS), "state": _abstract(_STATE)}
    checkpoint.restore_for_inference(directory, target=target)  # warm imports and caches
    before = _read_bytes()
    checkpoint.restore_for_inference(directory, target=target)
    params_only = _read_bytes() - before
    with checkpoint.CheckpointManager(directory) as manager:
        before = _read_bytes()
        manager.restore(3)
        full = _read_bytes() - before
    params_bytes = sum(x.nbytes for x in jax.tree.leaves(_PARAMS))
    # Adam's mu and nu double the params: a full restore reads >= 3x what serving needs.
    assert full >= 3 * params_bytes
    assert params_only < 1.2 * params_bytes, (params_only, full)


def test_places_params_with_the_shardings_given(directory):
    sharding = NamedSharding(jax.make_mesh((8,), ("model",)), P(None, "model"))
    target = _abstract(_PARAMS)
    target["mlp/~/linear_0"]["w"] = jax.ShapeDtypeStruct((512, 256), jnp.float32,
                                                         sharding=sharding)
    out = checkpoint.restore_for_inference(directory, 3, target={"params": target})
    w = out["params"]["mlp/~/linear_0"]["w"]
    assert w.sharding == sharding and w.addressable_shards[0].data.shape == (512, 32)
    np.testing.assert_array_equal(np.asarray(w), _PARAMS["mlp/~/linear_0"]["w"])


def test_target_of_other_shape_names_the_path(directory):
    target = _abstract(_PARAMS)
    target["mlp/~/linear_0"]["w"] = jax.ShapeDtypeStruct((512, 128), jnp.float32)
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'params/mlp/~/linear_0/w': shape: target expects \(512, 128\), "
                             r"checkpoint has \(512, 256\)"):
        checkpoint.restore_for_inference(directory, target={"params": target})


def test_missing_step_raises_file_not_found_listing_steps(directory):
    with pytest.raises(FileNotFoundError, match=r"no complete step 4; steps present: \[3\]"):
        checkpoint.restore_for_inference(directory, 4, target={"params": _abstract(_PARAMS)})
