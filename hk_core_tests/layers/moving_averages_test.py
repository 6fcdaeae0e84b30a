"""Tests for hk_core/_src/layers/moving_averages.py (API.md §3.4)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk


def _ema(decay, **kwargs):
    def f(x, update_stats=True):
        return hk.ExponentialMovingAverage(decay, **kwargs)(x, update_stats=update_stats)
    return hk.transform_with_state(f)


def _numpy_ema(values, decay, zero_debias=True, warmup_length=0):
    """Reference: returns (averages, hidden, counter) after feeding `values` in turn."""
    hidden = np.zeros_like(values[0])
    counter = -warmup_length
    averages = []
    for value in values:
        counter += 1
        d = 0.0 if (warmup_length > 0 and counter <= 0) else decay
        hidden = hidden * d + value * (1 - d)
        averages.append(hidden / (1 - d ** counter) if zero_debias else hidden)
    return averages, hidden, counter


class ExponentialMovingAverageTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("debiased", dict(zero_debias=True)),
        ("biased", dict(zero_debias=False)),
        ("warmup", dict(zero_debias=False, warmup_length=2)),
    )
    def test_apply_sequence_matches_numpy_reference(self, kwargs):
        decay = 0.8
        values = [np.array([1.0, -2.0], np.float32) * (i + 1) for i in range(5)]
        f = _ema(decay, **kwargs)
        params, state = f.init(None, values[0])
        apply = self.variant(f.apply)
        averages = []
        for value in values:
            average, state = apply(params, state, None, value)
            averages.append(average)
        expected, hidden, counter = _numpy_ema(values, decay, **kwargs)
        chex.assert_trees_all_close(averages, expected, rtol=1e-5)
        bundle = state["exponential_moving_average"]
        chex.assert_trees_all_close(bundle["hidden"], hidden, rtol=1e-5)
        chex.assert_trees_all_close(bundle["average"], expected[-1], rtol=1e-5)
        assert int(bundle["counter"]) == counter

    @chex.variants(with_jit=True, without_jit=True)
    def test_update_stats_false_returns_average_but_keeps_state(self):
        f = _ema(0.5)
        params, state = f.init(None, 2.0)
        average, new_state = self.variant(f.apply, static_argnums=4)(params, state, None, 4.0,
                                                                       False)
        # counter 1: hidden = 0 * .5 + 4 * .5 = 2, debiased by 1 - .5 = .5.
        chex.assert_trees_all_close(average, 4.0)
        chex.assert_trees_all_equal(new_state, state)


def test_haiku_verified_example_decay_half():
    # API.md §3.4: decay .5, value 2 -> init average 2; apply(2), apply(4) -> 2.5, 3.333, 2.
    f = _ema(0.5)
    params, state = f.init(None, jnp.float32(2.0))
    assert float(state["exponential_moving_average"]["average"]) == 2.0
    _, state = f.apply(params, state, None, jnp.float32(2.0))
    _, state = f.apply(params, state, None, jnp.float32(4.0))
    bundle = state["exponential_moving_average"]
    assert float(bundle["hidden"]) == 2.5
    np.testing.assert_allclose(float(bundle["average"]), 10 / 3, rtol=1e-6)
    assert int(bundle["counter"]) == 2


def test_init_state_order_and_initial_values():
    f = _ema(0.5)
    _, state = f.init(None, jnp.full([3], 2.0))
    bundle = state["exponential_moving_average"]
    assert list(bundle) == ["counter", "hidden", "average"]
    assert bundle["counter"].dtype == jnp.int32 and bundle["counter"].shape == ()
    assert int(bundle["counter"]) == 0
    np.testing.assert_array_equal(bundle["hidden"], np.zeros([3], np.float32))
    np.testing.assert_array_equal(bundle["average"], np.full([3], 2.0, np.float32))


def test_init_counter_starts_at_minus_warmup_length():
    _, state = _ema(0.5, zero_debias=False, warmup_length=3).init(None, 1.0)
    assert int(state["exponential_moving_average"]["counter"]) == -3


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_state_takes_value_dtype(dtype):
    _, state = _ema(0.9).init(None, jnp.ones([2], dtype))
    bundle = state["exponential_moving_average"]
    assert bundle["hidden"].dtype == dtype
    assert bundle["average"].dtype == dtype
    assert bundle["counter"].dtype == jnp.int32


def test_negative_warmup_length_raises_naming_module():
    with pytest.raises(ValueError, match=r"exponential_moving_average: `warmup_length` is -1"):
        _ema(0.5, warmup_length=-1).init(None, 1.0)


def test_warmup_with_zero_debias_raises():
    with pytest.raises(ValueError, match=r"Zero debiasing does not make sense when warming up"):
        _ema(0.5, warmup_length=2).init(None, 1.0)


def test_initialize_creates_zero_hidden_and_average_without_counter():
    def f():
        ema = hk.ExponentialMovingAverage(0.9)
        ema.initialize([2, 3], jnp.bfloat16)
        return ema.average

    average, state = hk.transform_with_state(f).apply({}, {}, None)
    assert list(state["exponential_moving_average"]) == ["hidden", "average"]
    assert average.dtype == jnp.bfloat16 and average.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(average, np.float32), np.zeros([2, 3]))


def test_initialize_keeps_existing_state():
    def f(x):
        ema = hk.ExponentialMovingAverage(0.5)
        ema(x)
        ema.initialize(x.shape, x.dtype)
        return ema.average

    average, _ = hk.transform_with_state(f).apply({}, {}, None, jnp.full([2], 4.0))
    np.testing.assert_array_equal(average, np.full([2], 4.0, np.float32))


def test_initialize_with_array_warns_and_uses_its_shape_and_dtype():
    def f():
        ema = hk.ExponentialMovingAverage(0.5)
        with pytest.warns(DeprecationWarning, match="initialize"):
            ema.initialize(jnp.ones([4], jnp.float16))
        return ema.average

    average, _ = hk.transform_with_state(f).apply({}, {}, None)
    assert average.shape == (4,) and average.dtype == jnp.float16


def test_average_before_any_value_raises():
    f = hk.transform_with_state(lambda: hk.ExponentialMovingAverage(0.5).average)
    with pytest.raises(ValueError, match=r"No value for 'average' in 'exponential_moving_average'"):
        f.init(None)


# EMAParamsTree


def _tree():
    return {
        "mlp/~/linear_0": {"w": jnp.ones([2, 3]), "b": jnp.zeros([3])},
        "lin": {"w": jnp.full([2], 2.0)},
    }


def test_ema_params_tree_mangles_names_with_trailing_tilde_underscore():
    f = hk.transform_with_state(lambda t: hk.EMAParamsTree(0.9)(t))
    _, state = f.init(None, _tree())
    assert sorted(state) == [
        "ema_params_tree/lin__w",
        "ema_params_tree/mlp___tilde___linear_0__b",
        "ema_params_tree/mlp___tilde___linear_0__w",
    ]
    assert list(state["ema_params_tree/lin__w"]) == ["counter", "hidden", "average"]


def test_ema_params_tree_ignore_regex_matches_unmangled_path_and_passes_leaf_through():
    f = hk.transform_with_state(lambda t: hk.EMAParamsTree(0.5, ignore_regex=r"mlp/~/.*/b")(t))
    tree = _tree()
    params, state = f.init(None, tree)
    assert "ema_params_tree/mlp___tilde___linear_0__b" not in state
    out, _ = f.apply(params, state, None, tree)
    assert out["mlp/~/linear_0"]["b"] is tree["mlp/~/linear_0"]["b"]


class EMAParamsTreeTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_ema_params_tree_averages_each_leaf(self):
        f = hk.transform_with_state(lambda t: hk.EMAParamsTree(0.5)(t))
        tree = _tree()
        params, state = f.init(None, tree)
        apply = self.variant(f.apply)
        _, state = apply(params, state, None, tree)  # init returned the initial (zero) state
        doubled = jax.tree.map(lambda v: 2 * v, tree)
        out, _ = apply(params, state, None, doubled)
        # Second update: hidden = .5 * (.5 v) + .5 * 2v = 1.25 v, debiased by 1 - .25.
        expected = jax.tree.map(lambda v: np.asarray(v) * 1.25 / 0.75, tree)
        chex.assert_trees_all_close(out, expected, rtol=1e-6)
        assert type(out) is dict and all(type(b) is dict for b in out.values())


def test_ema_params_tree_passes_ema_options_to_every_average():
    f = hk.transform_with_state(
        lambda t: hk.EMAParamsTree(0.5, zero_debias=False, warmup_length=1)(t))
    _, state = f.init(None, _tree())
    assert int(state["ema_params_tree/lin__w"]["counter"]) == -1
