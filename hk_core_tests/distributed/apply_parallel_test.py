"""``pmap`` and ``shard_map`` over ``apply`` agree with the unsharded result (8 host devices)."""

import functools

import chex
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import hk_core as hk
from hk_core import distributed
from hk_core_tests.distributed import models

DATA = models.batch()
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


@functools.cache
def _model(name):
    f = models.transformed(name)
    params = jax.jit(f.init)(0, DATA["inputs"])
    return f, params, jax.jit(f.apply)(params, DATA["inputs"])


@pytest.mark.parametrize("name", ["mlp", "transformer"])
def test_pmap_over_apply_agrees_with_unsharded(name):
    f, params, expected = _model(name)
    tokens = DATA["inputs"].reshape(8, 2, -1)  # one slice of the batch per device
    out = jax.pmap(f.apply, in_axes=(None, 0))(params, tokens)
    chex.assert_trees_all_close(out.reshape(expected.shape), expected, **TOLERANCE)


@pytest.mark.parametrize("name", ["mlp", "transformer"])
def test_data_parallel_shard_map_over_apply_agrees_with_unsharded(name):
    f, params, expected = _model(name)
    mesh = distributed.make_mesh({"data": 8})
    apply = jax.shard_map(f.apply, mesh=mesh, in_specs=(P(), P("data")), out_specs=P("data"))
    chex.assert_trees_all_close(jax.jit(apply)(params, DATA["inputs"]), expected, **TOLERANCE)


def _megatron_mlp(x, hidden):
    h = jax.nn.relu(hk.Linear(hidden, name="up")(x))
    return hk.Linear(4, with_bias=False, name="down")(h)


MEGATRON = distributed.ShardingRules([
    ("up/w$", P(None, "model")), ("up/b$", P("model")), ("down/w$", P("model", None))])


def test_tensor_parallel_shard_map_with_rules_specs_agrees_with_unsharded():
    # Each device applies its column/row slice of the MLP (hidden 16 / model 2) and the
    # partial outputs are summed over 'model': Megatron's forward with an explicit psum.
    mesh = distributed.make_mesh({"data": 4, "model": 2})
    x = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
    full = hk.without_apply_rng(hk.transform(functools.partial(_megatron_mlp, hidden=16)))
    params = full.init(0, x)
    local = hk.without_apply_rng(hk.transform(functools.partial(_megatron_mlp, hidden=8)))

    def body(p, x):
        return jax.lax.psum(local.apply(p, x), "model")

    specs = MEGATRON.specs(params, mesh)
    assert specs["up"] == {"w": P(None, "model"), "b": P("model")}
    apply = jax.shard_map(body, mesh=mesh, in_specs=(specs, P("data")), out_specs=P("data"))
    w_up, b_up = params["up"]["w"], params["up"]["b"]
    expected = np.maximum(x @ w_up + b_up, 0) @ params["down"]["w"]  # numpy reference
    chex.assert_trees_all_close(jax.jit(apply)(params, x), expected, **TOLERANCE)
