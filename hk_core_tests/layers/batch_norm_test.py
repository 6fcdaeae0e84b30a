"""Tests for hk_core/_src/layers/batch_norm.py (API.md §3.3, BatchNorm)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import hk_core as hk

EPS = 1e-5
DECAY = 0.9


def _bn(is_training=True, test_local_stats=False, **kwargs):
    kwargs.setdefault("create_scale", True)
    kwargs.setdefault("create_offset", True)
    kwargs.setdefault("decay_rate", DECAY)

    def f(x, scale=None, offset=None):
        return hk.BatchNorm(**kwargs)(x, is_training, test_local_stats=test_local_stats,
                                      scale=scale, offset=offset)
    return hk.transform_with_state(f)


def _data(shape, seed=0):
    return (np.random.default_rng(seed).normal(size=shape) * 2.0 + 0.5).astype(np.float32)


def _np_stats(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    var = (x ** 2).mean(axis=axes, keepdims=True) - mean ** 2
    return mean, var


def _np_normalize(x, mean, var, scale=1.0, offset=0.0):
    return (x - mean) / np.sqrt(var + EPS) * scale + offset


def _ema_after(values):
    """Zero-debiased EMA of `values` (as stored after one update per value)."""
    hidden = np.zeros_like(values[0])
    for count, value in enumerate(values, start=1):
        hidden = hidden * DECAY + value * (1 - DECAY)
    return hidden, hidden / (1 - DECAY ** count), count


# Trees: the checkpoint contract.


@pytest.mark.parametrize("data_format,shape,param_shape", [
    ("channels_last", (2, 4, 4, 3), (1, 1, 1, 3)),
    ("NHWC", (2, 4, 4, 3), (1, 1, 1, 3)),
    ("NCHW", (2, 3, 4, 4), (1, 3, 1, 1)),
    ("channels_first", (2, 3, 5), (1, 3, 1)),
])
def test_init_trees_have_haiku_paths_order_and_shapes(data_format, shape, param_shape):
    params, state = _bn(data_format=data_format).init(None, jnp.ones(shape))
    assert {m: {n: v.shape for n, v in b.items()} for m, b in params.items()} == {
        "batch_norm": {"scale": param_shape, "offset": param_shape}}
    assert [(m, list(b)) for m, b in params.items()] == [("batch_norm", ["scale", "offset"])]
    assert [(m, list(b)) for m, b in state.items()] == [
        ("batch_norm/~/mean_ema", ["counter", "hidden", "average"]),
        ("batch_norm/~/var_ema", ["counter", "hidden", "average"]),
    ]
    for bundle in state.values():
        assert bundle["counter"].dtype == jnp.int32 and bundle["counter"].shape == ()
        assert bundle["hidden"].shape == param_shape and bundle["average"].shape == param_shape


def test_init_state_holds_first_batch_statistics_and_zero_hidden():
    x = _data((6, 3))
    _, state = _bn().init(None, x)
    mean, var = _np_stats(x, (0,))
    assert int(state["batch_norm/~/mean_ema"]["counter"]) == 0
    np.testing.assert_array_equal(state["batch_norm/~/mean_ema"]["hidden"], np.zeros([1, 3]))
    chex.assert_trees_all_close(state["batch_norm/~/mean_ema"]["average"], mean, rtol=1e-5)
    chex.assert_trees_all_close(state["batch_norm/~/var_ema"]["average"], var, rtol=1e-5)


def test_ema_updates_run_before_scale_and_offset_are_created():
    created = []

    def record(next_creator, shape, dtype, init, context):
        created.append(context.full_name)
        return next_creator(shape, dtype, init)

    def f(x):
        with hk.custom_creator(record, params=True, state=True):
            return hk.BatchNorm(True, True, DECAY)(x, is_training=True)

    hk.transform_with_state(f).init(None, jnp.ones([2, 3]))
    assert created == [
        "batch_norm/~/mean_ema/counter", "batch_norm/~/mean_ema/hidden",
        "batch_norm/~/var_ema/counter", "batch_norm/~/var_ema/hidden",
        "batch_norm/scale", "batch_norm/offset",
    ]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_input_gives_params_and_state_of_input_dtype(dtype):
    params, state = _bn().init(None, jnp.ones([4, 3], dtype))
    assert params["batch_norm"]["scale"].dtype == dtype
    assert state["batch_norm/~/mean_ema"]["average"].dtype == dtype
    assert state["batch_norm/~/var_ema"]["hidden"].dtype == dtype


def test_eval_only_with_test_local_stats_creates_no_state():
    _, state = _bn(is_training=False, test_local_stats=True).init(None, jnp.ones([4, 3]))
    assert state == {}


def test_eval_at_init_without_averages_raises_no_value_for_average():
    with pytest.raises(ValueError, match=r"No value for 'average' in 'batch_norm/~/mean_ema'"):
        _bn(is_training=False).init(None, jnp.ones([4, 3]))


# Numerics.


class BatchNormNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("nhwc", "NHWC", (4, 3, 3, 2), (0, 1, 2)),
        ("nchw", "NCHW", (4, 2, 3, 3), (0, 2, 3)),
        ("rank2", "channels_last", (8, 5), (0,)),
    )
    def test_training_output_uses_batch_statistics(self, data_format, shape, axes):
        x = _data(shape)
        f = _bn(data_format=data_format)
        params, state = f.init(None, x)
        params = jax.tree.map(lambda p: p + 0.25, params)  # non-trivial scale and offset
        out, _ = self.variant(f.apply)(params, state, None, x)
        mean, var = _np_stats(x, axes)
        expected = _np_normalize(x, mean, var, 1.25, 0.25)
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_moving_averages_after_several_training_steps_match_numpy(self):
        f = _bn()
        batches = [_data((6, 4), seed) for seed in range(4)]
        params, state = f.init(None, batches[0])
        apply = self.variant(f.apply)
        for x in batches:
            _, state = apply(params, state, None, x)
        stats = [_np_stats(x, (0,)) for x in batches]
        for name, index in (("mean_ema", 0), ("var_ema", 1)):
            hidden, average, count = _ema_after([s[index] for s in stats])
            bundle = state[f"batch_norm/~/{name}"]
            assert int(bundle["counter"]) == count
            chex.assert_trees_all_close(bundle["hidden"], hidden, rtol=1e-5, atol=1e-6)
            chex.assert_trees_all_close(bundle["average"], average, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_eval_output_uses_moving_averages_and_leaves_state_unchanged(self):
        train, evaluate = _bn(), _bn(is_training=False)
        batches = [_data((6, 4), seed) for seed in range(3)]
        params, state = train.init(None, batches[0])
        for x in batches:
            _, state = train.apply(params, state, None, x)
        x = _data((5, 4), seed=10)
        out, new_state = self.variant(evaluate.apply)(params, state, None, x)
        mean = np.asarray(state["batch_norm/~/mean_ema"]["average"])
        var = np.asarray(state["batch_norm/~/var_ema"]["average"])
        chex.assert_trees_all_close(out, _np_normalize(x, mean, var), rtol=1e-4, atol=1e-5)
        chex.assert_trees_all_equal(new_state, state)

    @chex.variants(with_jit=True, without_jit=True)
    def test_test_local_stats_uses_batch_statistics_without_updating_state(self):
        params, state = _bn().init(None, _data((6, 4)))
        x = _data((6, 4), seed=3)
        out, new_state = self.variant(_bn(False, test_local_stats=True).apply)(
            params, state, None, x)
        mean, var = _np_stats(x, (0,))
        chex.assert_trees_all_close(out, _np_normalize(x, mean, var), rtol=1e-4, atol=1e-5)
        chex.assert_trees_all_equal(new_state, state)

    @chex.variants(with_jit=True, without_jit=True)
    def test_explicit_axis_reduces_only_those_axes(self):
        x = _data((4, 3, 2))
        f = _bn(axis=[0])
        params, state = f.init(None, x)
        assert params["batch_norm"]["scale"].shape == (1, 3, 2)
        out, _ = self.variant(f.apply)(params, state, None, x)
        mean, var = _np_stats(x, (0,))
        chex.assert_trees_all_close(out, _np_normalize(x, mean, var), rtol=1e-4, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_scale_and_offset_passed_at_call_are_used(self):
        x = _data((6, 2))
        f = _bn(create_scale=False, create_offset=False)
        params, state = f.init(None, x)
        assert params == {}
        scale, offset = np.array([2.0, 3.0], np.float32), np.array([-1.0, 1.0], np.float32)
        out, _ = self.variant(f.apply)(params, state, None, x, scale, offset)
        mean, var = _np_stats(x, (0,))
        chex.assert_trees_all_close(out, _np_normalize(x, mean, var, scale, offset),
                                    rtol=1e-4, atol=1e-5)


def test_rank0_input_has_no_reduction_axes():
    f = _bn()
    params, state = f.init(None, jnp.float32(3.0))
    assert params["batch_norm"]["scale"].shape == ()
    out, _ = f.apply(params, state, None, jnp.float32(3.0))
    assert float(out) == 0.0  # x - mean(x) over no axes


# Errors.


@pytest.mark.parametrize("what", ["scale", "offset"])
def test_init_for_uncreated_param_raises(what):
    kwargs = {f"create_{what}": False, f"{what}_init": jnp.ones}
    with pytest.raises(ValueError, match=rf"batch_norm: Cannot set `{what}_init` if "
                                         rf"`create_{what}=False`"):
        _bn(**kwargs).init(None, jnp.ones([2, 3]))


@pytest.mark.parametrize("what", ["scale", "offset"])
def test_passing_created_param_at_call_raises(what):
    f = _bn()
    with pytest.raises(ValueError, match=rf"batch_norm: Cannot pass `{what}` at call time if "
                                         rf"`create_{what}=True`"):
        f.init(None, jnp.ones([2, 3]), **{what: jnp.ones([3])})


def test_missing_is_training_raises_type_error():
    f = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, DECAY)(x))
    with pytest.raises(TypeError, match="is_training"):
        f.init(None, jnp.ones([2, 3]))


def test_eval_with_other_channel_count_names_module_and_both_shapes():
    params, state = _bn().init(None, jnp.ones([2, 3]))
    with pytest.raises(ValueError, match=r"batch_norm: the stored moving averages have shape "
                                         r"\(1, 3\), but inputs of shape \(2, 4\) need "
                                         r"statistics of shape \(1, 4\)"):
        _bn(is_training=False).apply(params, state, None, jnp.ones([2, 4]))


def test_channels_first_on_rank1_input_names_module_and_shape():
    with pytest.raises(ValueError, match=r"batch_norm: channel axis 1 does not exist in inputs "
                                         r"of shape \(3,\) \(rank 1\)"):
        _bn(data_format="channels_first").init(None, jnp.ones([3]))


def test_unknown_data_format_raises():
    with pytest.raises(ValueError, match="NCHWC"):
        _bn(data_format="NCHWC").init(None, jnp.ones([2, 3]))


# cross_replica_axis: every replica must normalize with the statistics of the whole batch
# and store the same moving averages, under vmap, pmap and shard_map alike.

REPLICAS = 4


def _replicated_setup(**kwargs):
    """Returns (apply with cross_replica_axis='i', params, state, x [R, B, C], global stats)."""
    x = _data((REPLICAS, 3, 2), seed=7)
    # Same names and shapes, no collective: init runs outside any named axis.
    params, state = _bn().init(None, x[0])
    f = _bn(cross_replica_axis="i", **kwargs)
    whole = x.reshape(-1, 2)
    return f.apply, params, state, x, _np_stats(whole, (0,))


def _check_against_whole_batch(out, new_state, state, x, stats):
    mean, var = stats
    chex.assert_trees_all_close(out, _np_normalize(x, mean, var), rtol=1e-4, atol=1e-5)
    for name, value in (("mean_ema", mean), ("var_ema", var)):
        hidden = np.asarray(state[f"batch_norm/~/{name}"]["hidden"]) * DECAY + value * (1 - DECAY)
        chex.assert_trees_all_close(new_state[f"batch_norm/~/{name}"]["hidden"], hidden,
                                    rtol=1e-5, atol=1e-6)


def test_cross_replica_under_vmap_uses_whole_batch_statistics():
    apply, params, state, x, stats = _replicated_setup()
    out, new_state = jax.vmap(apply, in_axes=(None, None, None, 0), axis_name="i")(
        params, state, None, x)
    per_replica = [jax.tree.map(lambda v, r=r: v[r], new_state) for r in range(REPLICAS)]
    for replica_state in per_replica:
        _check_against_whole_batch(out, replica_state, state, x, stats)


def test_cross_replica_under_pmap_uses_whole_batch_statistics():
    apply, params, state, x, stats = _replicated_setup()
    out, new_state = jax.pmap(apply, axis_name="i", in_axes=(None, None, None, 0),
                              devices=jax.devices()[:REPLICAS])(params, state, None, x)
    for r in range(REPLICAS):
        _check_against_whole_batch(out, jax.tree.map(lambda v: v[r], new_state), state, x, stats)


def test_cross_replica_under_shard_map_uses_whole_batch_statistics():
    apply, params, state, x, stats = _replicated_setup()
    mesh = Mesh(np.array(jax.devices()[:REPLICAS]), ("i",))
    # State comes out replicated (P()): pmean made the statistics identical on all shards.
    sharded = jax.shard_map(lambda p, s, xs: apply(p, s, None, xs[0]), mesh=mesh,
                            in_specs=(P(), P(), P("i")), out_specs=(P("i"), P()))
    out, new_state = jax.jit(sharded)(params, state, x)
    _check_against_whole_batch(out.reshape(x.shape), new_state, state, x, stats)


def test_cross_replica_index_groups_average_within_each_group_under_pmap():
    apply, params, state, x, _ = _replicated_setup(
        cross_replica_axis_index_groups=[[0, 1], [2, 3]])
    out, _ = jax.pmap(apply, axis_name="i", in_axes=(None, None, None, 0),
                      devices=jax.devices()[:REPLICAS])(params, state, None, x)
    out = np.asarray(out)
    for group in ([0, 1], [2, 3]):
        mean, var = _np_stats(x[group].reshape(-1, 2), (0,))
        chex.assert_trees_all_close(out[group], _np_normalize(x[group], mean, var),
                                    rtol=1e-4, atol=1e-5)
