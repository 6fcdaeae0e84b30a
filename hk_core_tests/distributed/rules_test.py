"""``ShardingRules``: first match by ``re.search``, strictness, fit errors, TrainState, explain."""

import jax
import jax.numpy as jnp
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core import distributed
from hk_core import training

PARAMS = {
    "mlp/~/linear_0": {"w": jnp.zeros((8, 16)), "b": jnp.zeros(16)},
    "mlp/~/linear_1": {"w": jnp.zeros((16, 4)), "b": jnp.zeros(4)},
}
MEGATRON = [
    (r"linear_0/w$", P(None, "model")),
    (r"linear_0/b$", P("model")),
    (r"linear_1/w$", P("model", None)),
]


@pytest.fixture(scope="module")
def mesh():
    return distributed.make_mesh({"data": 4, "model": 2})


def _specs(rules, tree, mesh):
    return jax.tree.map(lambda s: s.spec, rules.shardings(tree, mesh))


def test_first_matching_rule_wins():
    rules = distributed.ShardingRules([("linear_0/w", P("model")), ("w$", P("data"))])
    assert rules.match("mlp/~/linear_0/w") == ("linear_0/w", P("model"))
    assert rules.match("mlp/~/linear_1/w") == ("w$", P("data"))


def test_patterns_are_searched_not_fully_matched():
    rules = distributed.ShardingRules([("linear", P("model"))])
    assert rules.match("mlp/~/linear_0/w") == ("linear", P("model"))


def test_specs_given_as_tuples_or_none_become_partition_specs():
    rules = distributed.ShardingRules([("a", (None, "model")), ("b", None)])
    assert rules.rules == (("a", P(None, "model")), ("b", P()))


def test_shardings_follow_rules_and_replicate_unmatched_params(mesh):
    specs = _specs(distributed.ShardingRules(MEGATRON), PARAMS, mesh)
    assert specs == {
        "mlp/~/linear_0": {"w": P(None, "model"), "b": P("model")},
        "mlp/~/linear_1": {"w": P("model", None), "b": P()},
    }


def test_shardings_are_named_shardings_on_the_mesh(mesh):
    shardings = distributed.ShardingRules(MEGATRON).shardings(PARAMS, mesh)
    sharding = shardings["mlp/~/linear_0"]["w"]
    assert isinstance(sharding, NamedSharding) and sharding.mesh == mesh


def test_abstract_params_from_eval_shape_get_the_same_shardings(mesh):
    rules = distributed.ShardingRules(MEGATRON)
    abstract = jax.eval_shape(lambda: PARAMS)
    assert _specs(rules, abstract, mesh) == _specs(rules, PARAMS, mesh)


def test_strict_rules_reject_an_unmatched_parameter_naming_it(mesh):
    rules = distributed.ShardingRules(MEGATRON, strict=True)
    with pytest.raises(distributed.ShardingRuleError,
                       match=r"mlp/~/linear_1/b: no sharding rule matches .*shape \(4,\)"):
        rules.shardings(PARAMS, mesh)


def test_spec_that_does_not_divide_shape_names_path_shape_and_mesh_axes(mesh):
    rules = distributed.ShardingRules([("linear_1/b", P("model"))])
    params = {"mlp/~/linear_1": {"b": jnp.zeros(5)}}
    message = (r"mlp/~/linear_1/b: rule 'linear_1/b' gives P\('model'\), which does not fit "
               r"shape \(5,\) on mesh axes \{'data': 4, 'model': 2\}: dimension 0 \(size 5\) is "
               r"not divisible by 2")
    with pytest.raises(distributed.ShardingRuleError, match=message) as info:
        rules.shardings(params, mesh)
    assert (info.value.path, info.value.shape) == ("mlp/~/linear_1/b", (5,))
    assert info.value.mesh_axes == {"data": 4, "model": 2}


def test_spec_longer_than_rank_is_an_error(mesh):
    rules = distributed.ShardingRules([("b$", P(None, "model"))])
    with pytest.raises(distributed.ShardingRuleError,
                       match=r"linear_0/b: .*shape \(16,\).*2 entries but the value has rank 1"):
        rules.shardings(PARAMS, mesh)


def test_spec_naming_an_axis_not_in_the_mesh_is_an_error(mesh):
    rules = distributed.ShardingRules([("w$", P("fsdp"))])
    with pytest.raises(distributed.ShardingRuleError, match=r"w: .*axis 'fsdp' is not a mesh"):
        rules.shardings(PARAMS, mesh)


def test_invalid_regular_expression_is_a_value_error():
    with pytest.raises(ValueError, match=r"rule 0 pattern '\(' is not a valid regular"):
        distributed.ShardingRules([("(", P())])


def test_rule_that_is_not_a_pair_is_a_value_error():
    with pytest.raises(ValueError, match=r"rule 0 is 'w'; expected a \(pattern"):
        distributed.ShardingRules(["w"])


def test_multi_axis_entry_shards_over_the_product(mesh):
    rules = distributed.ShardingRules([("linear_0/w", P(None, ("data", "model")))])
    [placement] = rules.placements({"mlp/~/linear_0": {"w": jnp.zeros((8, 16))}}, mesh)
    assert placement.shard_count == 8
    assert placement.bytes_per_device == 8 * 16 * 4 // 8


def _train_state():
    return training.TrainState.create(apply_fn=None, params=PARAMS, tx=optax.adam(1e-3))


def test_train_state_params_follow_rules(mesh):
    specs = _specs(distributed.ShardingRules(MEGATRON), _train_state(), mesh)
    assert specs.params["mlp/~/linear_0"]["w"] == P(None, "model")


def test_adam_moments_take_their_params_spec(mesh):
    specs = _specs(distributed.ShardingRules(MEGATRON), _train_state(), mesh)
    adam = specs.opt_state[0]
    assert adam.mu == adam.nu == _specs(distributed.ShardingRules(MEGATRON), PARAMS, mesh)


def test_train_state_scalars_are_replicated(mesh):
    specs = _specs(distributed.ShardingRules([(".", P("model"))]), _train_state(), mesh)
    assert specs.step == P() and specs.opt_state[0].count == P()


def test_strict_rules_do_not_apply_to_model_state(mesh):
    rules = distributed.ShardingRules([("linear", P())], strict=True)
    tree = {"params": PARAMS, "state": {"batch_norm": {"mean": jnp.zeros(4)}}}
    assert _specs(rules, tree, mesh)["state"] == {"batch_norm": {"mean": P()}}


def test_optimizer_leaf_with_other_shape_than_its_param_is_replicated(mesh):
    # e.g. Adafactor's factored moments: same key as the param, but a different shape.
    tree = {"params": PARAMS, "opt_state": {"mlp/~/linear_0": {"w": jnp.zeros(8)}}}
    specs = _specs(distributed.ShardingRules(MEGATRON), tree, mesh)
    assert specs["opt_state"]["mlp/~/linear_0"]["w"] == P()


def test_explain_prints_rule_spec_and_bytes_per_device(mesh, capsys):
    text = distributed.ShardingRules(MEGATRON).explain(PARAMS, mesh)
    assert capsys.readouterr().out.strip() == text.strip()
    rows = {line.split()[0]: line for line in text.splitlines()[2:]}
    # linear_0/w: 8*16 float32 = 512 bytes, split in 2 over 'model' = 256 per device.
    assert rows["mlp/~/linear_0/w"].split()[-2:] == ["512", "256"]
    assert "'linear_0/w$'" in rows["mlp/~/linear_0/w"]
    assert "P(None, 'model')" in rows["mlp/~/linear_0/w"]
    assert "(replicated)" in rows["mlp/~/linear_1/b"]
    assert rows["mlp/~/linear_1/b"].split()[-2:] == ["16", "16"]


def test_explain_totals_bytes_and_bytes_per_device(mesh):
    text = distributed.ShardingRules(MEGATRON).explain(PARAMS, mesh, print_fn=None)
    total = text.splitlines()[-1].split()
    # all: 512 + 64 + 256 + 16 = 848 bytes; per device 256 + 32 + 128 + 16 = 432.
    assert total[-2:] == ["848", "432"]


def test_explain_marks_adam_moments_as_mirroring_params(mesh):
    text = distributed.ShardingRules(MEGATRON).explain(_train_state(), mesh, print_fn=None)
    mirrored = [line for line in text.splitlines() if "(mirrors param)" in line]
    assert len(mirrored) == 6  # mu and nu of the three sharded params


def test_explain_names_optimizer_rows_by_key_path(mesh):
    text = distributed.ShardingRules(MEGATRON).explain(_train_state(), mesh, print_fn=None)
    paths = [line.split()[0] for line in text.splitlines()[2:-1]]
    assert ".opt_state[0].nu['mlp/~/linear_0']['w']" in paths
    assert ".step" in paths and "mlp/~/linear_0/w" in paths
