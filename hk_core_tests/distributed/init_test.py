"""``sharded_init``: params born sharded, equal to a plain init, each device holding its shard."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import hk_core as hk
from hk_core import distributed
from hk_core_tests.distributed import models

TOKENS = models.batch()["inputs"]


@pytest.fixture(scope="module")
def mesh():
    return distributed.make_mesh({"data": 4, "model": 2})


@pytest.fixture(scope="module")
def sharded(mesh):
    f = models.transformed("transformer")
    return distributed.sharded_init(f, mesh, models.rules("transformer"), 0, TOKENS)


def test_sharded_init_equals_plain_init_with_same_seed(sharded):
    plain = jax.jit(models.transformed("transformer").init)(0, TOKENS)  # one device
    chex.assert_trees_all_equal(jax.device_get(sharded), plain)


def test_every_param_has_the_spec_its_rule_gives(sharded, mesh):
    rules = models.rules("transformer")
    for module, bundle in sharded.items():
        for name, value in bundle.items():
            assert value.sharding.spec == rules.match(f"{module}/{name}")[1], (module, name)
            assert value.sharding.mesh == mesh


def _shard_count(spec, mesh):
    axes = [a for entry in spec if entry is not None
            for a in (entry if isinstance(entry, tuple) else (entry,))]
    return int(np.prod([mesh.shape[a] for a in axes]))


def test_each_device_holds_only_total_bytes_over_shard_count(sharded, mesh):
    for module, bundle in sharded.items():
        for name, value in bundle.items():
            expected = value.nbytes // _shard_count(value.sharding.spec, mesh)
            sizes = {shard.data.nbytes for shard in value.addressable_shards}
            assert sizes == {expected}, (module, name, sizes, expected)
            assert len(value.addressable_shards) == 8


def test_column_parallel_query_weight_is_halved_per_device(sharded):
    # query/w is [16, 16] float32 = 1024 bytes; P(None, 'model') on model=2 leaves 512.
    w = sharded["block/query"]["w"]
    assert w.nbytes == 1024
    assert {s.data.shape for s in w.addressable_shards} == {(16, 8)}
    assert {s.data.nbytes for s in w.addressable_shards} == {512}


def test_replicated_bias_is_whole_on_every_device(sharded):
    b = sharded["block/attn_out"]["b"]
    assert {s.data.nbytes for s in b.addressable_shards} == {16 * 4}


def test_params_keep_the_init_tree(sharded):
    plain = jax.eval_shape(models.transformed("transformer").init, 0, TOKENS)
    assert jax.tree.map(jnp.shape, sharded) == jax.tree.map(jnp.shape, plain)


def test_transform_with_state_returns_sharded_params_and_replicated_state(mesh):
    def f(x):
        hk.set_state("calls", jnp.zeros([4]))
        return hk.Linear(4, name="up")(x)

    rules = distributed.ShardingRules([("up/w$", P(None, "model"))])
    params, state = distributed.sharded_init(hk.transform_with_state(f), mesh, rules, 0,
                                             jnp.ones([2, 3]))
    assert params["up"]["w"].sharding.spec == P(None, "model")
    assert state["~"]["calls"].sharding.spec == P()


def test_non_array_arguments_are_static(mesh):
    def f(x, double):
        y = hk.Linear(2)(x)
        return 2 * y if double else y  # Python control flow on a static flag

    params = distributed.sharded_init(hk.transform(f), mesh, distributed.ShardingRules([]), 0,
                                      jnp.ones([2, 3]), double=True)
    assert params["linear"]["w"].shape == (3, 2)


def test_strict_rules_fail_before_anything_is_created(mesh):
    rules = distributed.ShardingRules(models.TRANSFORMER_RULES, strict=True)
    with pytest.raises(distributed.ShardingRuleError, match=r"block/attn_out/b: no sharding rule"):
        distributed.sharded_init(models.transformed("transformer"), mesh, rules, 0, TOKENS)


def test_rule_that_does_not_fit_names_path_and_shape(mesh):
    rules = distributed.ShardingRules([("unembed/b$", P("model"))])
    f = hk.transform(lambda x: hk.Linear(3, name="unembed")(x))
    with pytest.raises(distributed.ShardingRuleError,
                       match=r"unembed/b: .*shape \(3,\) on mesh axes \{'data': 4, 'model': 2\}"):
        distributed.sharded_init(f, mesh, rules, 0, jnp.ones([2, 4]))


def test_sharded_init_works_on_explicit_mesh():
    mesh = distributed.make_mesh({"data": 4, "model": 2}, axis_types="explicit")
    f = models.transformed("mlp")
    params = distributed.sharded_init(f, mesh, models.rules("mlp"), 0, TOKENS)
    assert params["mlp/~/linear_0"]["w"].sharding.spec == P(None, "model")
    chex.assert_trees_all_equal(jax.device_get(params), jax.jit(f.init)(0, TOKENS))
