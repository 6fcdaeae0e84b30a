"""Data- and tensor-parallel (Megatron) train steps on 8 devices equal the 1-device step."""

import functools

import chex
import jax
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

from hk_core import distributed
from hk_core import training
from hk_core_tests.distributed import models

STEPS = 2
DATA = models.batch()
# Sharded reductions add in another order than one device does.
TOLERANCE = {"rtol": 2e-5, "atol": 2e-6}

# (mesh axes as hashable items, whether to use the Megatron rules)
MESHES = {
    "data_parallel": ((("data", 8),), False),  # replicated params, batch split 8 ways
    "tensor_parallel": ((("model", 8),), True),  # Megatron rules, whole batch on every device
    "data_and_tensor": ((("data", 4), ("model", 2)), True),
}
# The transformer compiles slowly on CPU: it runs data and tensor parallelism at once only.
CASES = [("mlp", "data_parallel"), ("mlp", "tensor_parallel"), ("mlp", "data_and_tensor"),
         ("transformer", "data_and_tensor")]


@functools.cache
def _one_device(model):
    params = jax.jit(models.transformed(model).init)(0, DATA["inputs"])
    return models.train(models.create_state(model, params), DATA, STEPS)


@functools.cache
def _sharded(model, mesh_axes, use_rules):
    mesh_axes = dict(mesh_axes)
    mesh = distributed.make_mesh(mesh_axes)
    rules = models.rules(model) if use_rules else distributed.ShardingRules([])
    params = distributed.sharded_init(models.transformed(model), mesh, rules, 0, DATA["inputs"])
    ts = models.create_state(model, params)
    ts = jax.device_put(ts, rules.shardings(ts, mesh))
    batch = distributed.shard_batch(DATA, mesh) if "data" in mesh_axes else DATA
    step = models.sharded_step(ts, batch, mesh, rules)
    return mesh, models.train(ts, batch, STEPS, step)


@pytest.mark.parametrize("model, layout", CASES)
def test_sharded_train_steps_equal_one_device(model, layout):
    expected_ts, expected_losses = _one_device(model)
    _, (ts, losses) = _sharded(model, *MESHES[layout])
    chex.assert_trees_all_close(losses, expected_losses, **TOLERANCE)
    chex.assert_trees_all_close(jax.device_get(ts.params), expected_ts.params, **TOLERANCE)
    chex.assert_trees_all_close(jax.device_get(ts.opt_state), expected_ts.opt_state, **TOLERANCE)


def test_loss_falls_over_the_sharded_steps():
    _, (_, losses) = _sharded("transformer", *MESHES["data_and_tensor"])
    assert float(losses[-1]) < float(losses[0])


def test_params_and_adam_moments_stay_sharded_after_steps():
    _, (ts, _) = _sharded("transformer", *MESHES["data_and_tensor"])
    assert ts.params["block/mlp_in"]["w"].sharding.spec == P(None, "model")
    assert ts.opt_state[0].mu["block/mlp_in"]["w"].sharding.spec == P(None, "model")
    assert ts.opt_state[0].nu["block/attn_out"]["w"].sharding.spec == P("model", None)
    assert ts.step.sharding.spec == P()


@pytest.mark.parametrize("model, layout", [("mlp", "tensor_parallel"),
                                           ("transformer", "data_and_tensor")])
def test_every_sharded_param_holds_total_over_shard_count_per_device(model, layout):
    mesh, (ts, _) = _sharded(model, *MESHES[layout])
    rules = models.rules(model)
    for module, bundle in ts.params.items():
        for name, value in bundle.items():
            spec = rules.match(f"{module}/{name}")[1]
            count = mesh.shape["model"] if "model" in spec else 1  # rules use 'model' only
            sizes = {s.data.nbytes for s in value.addressable_shards}
            assert sizes == {value.nbytes // count}, (module, name, spec, sizes)


def test_tensor_parallel_first_mlp_weight_is_an_eighth_per_device():
    _, (ts, _) = _sharded("mlp", *MESHES["tensor_parallel"])
    w = ts.params["mlp/~/linear_0"]["w"]  # [8*16, 32] float32 = 16384 bytes over model=8
    assert w.nbytes == 16384
    assert {s.data.nbytes for s in w.addressable_shards} == {2048}


def _library_steps(mesh, rules):
    """STEPS of make_train_step on params and batch sharded over ``mesh``."""
    params = distributed.sharded_init(models.transformed("mlp"), mesh, rules, 0, DATA["inputs"])
    ts = models.create_state("mlp", params)
    ts = jax.device_put(ts, rules.shardings(ts, mesh))
    step = training.make_train_step(
        lambda p, state, rng, data: models.loss_fn(ts.apply_fn, p, data))
    batch = distributed.shard_batch(DATA, mesh)
    losses = []
    for _ in range(STEPS):
        ts, metrics = step(ts, batch)
        losses.append(metrics["loss"])
    return ts, losses


def test_data_parallel_library_step_on_explicit_mesh_equals_one_device():
    # Explicit axes, no jax.set_mesh: on jax >= 0.12 a plain jitted step fails here with
    # ShardingTypeError in the gradient of the loss's `take`; make_train_step traces under
    # the inputs' mesh itself.
    expected_ts, expected_losses = _one_device("mlp")
    mesh = distributed.make_mesh({"data": 8}, axis_types="explicit")
    ts, losses = _library_steps(mesh, distributed.ShardingRules([]))
    chex.assert_trees_all_close(losses, list(expected_losses), **TOLERANCE)
    chex.assert_trees_all_close(jax.device_get(ts.params), expected_ts.params, **TOLERANCE)
    assert ts.params["mlp/~/linear_0"]["w"].sharding.mesh.axis_types == (AxisType.Explicit,)


def test_library_train_step_runs_on_sharded_state():
    # make_train_step's plain jax.jit takes its shardings from the sharded inputs.
    expected_ts, expected_losses = _one_device("mlp")
    mesh = distributed.make_mesh({"data": 4, "model": 2})
    ts, losses = _library_steps(mesh, models.rules("mlp"))
    chex.assert_trees_all_close(losses, list(expected_losses), **TOLERANCE)
    chex.assert_trees_all_close(jax.device_get(ts.params), expected_ts.params, **TOLERANCE)
