"""Tests for hk_core/_src/transforms/unroll.py: static_unroll and dynamic_unroll (API.md §3.8)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk


def _running_sum(x, state):
    """A plain-function core: output = new state = state + x."""
    new = state + x
    return new, new


def _np_running_sum(xs, state, reverse=False):
    outs = []
    steps = range(xs.shape[0])
    for t in (reversed(steps) if reverse else steps):
        state = state + xs[t]
        outs.append(state)
    if reverse:
        outs = outs[::-1]
    return np.stack(outs), state


XS = np.arange(12, dtype=np.float32).reshape(4, 3)  # [T=4, features=3]
STATE = np.ones(3, np.float32)


def _lstm_unroll(unroll_fn, **kwargs):
    def f(xs):
        core = hk.LSTM(4)
        batch = xs.shape[1] if kwargs.get("time_major", True) else xs.shape[0]
        return unroll_fn(core, xs, core.initial_state(batch), **kwargs)
    return hk.transform(f)


class UnrollTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("forward", False), ("reverse", True))
    def test_dynamic_unroll_of_function_core_matches_numpy_loop(self, reverse):
        def f(xs, state):
            return hk.dynamic_unroll(_running_sum, xs, state, reverse=reverse)
        outs, final = self.variant(hk.transform(f).apply)({}, None, XS, STATE)
        expected_outs, expected_final = _np_running_sum(XS, STATE, reverse)
        chex.assert_trees_all_close(outs, expected_outs)
        chex.assert_trees_all_close(final, expected_final)

    @chex.variants(with_jit=True, without_jit=True)
    def test_static_unroll_of_function_core_matches_numpy_loop(self):
        def f(xs, state):
            return hk.static_unroll(_running_sum, xs, state)
        outs, final = self.variant(hk.transform(f).apply)({}, None, XS, STATE)
        expected_outs, expected_final = _np_running_sum(XS, STATE)
        chex.assert_trees_all_close(outs, expected_outs)
        chex.assert_trees_all_close(final, expected_final)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("time_major", True), ("batch_major", False))
    def test_dynamic_and_static_unroll_of_lstm_agree(self, time_major):
        xs = jax.random.normal(jax.random.PRNGKey(0), (5, 2, 3))
        if not time_major:
            xs = jnp.swapaxes(xs, 0, 1)
        dynamic = _lstm_unroll(hk.dynamic_unroll, time_major=time_major)
        static = _lstm_unroll(hk.static_unroll, time_major=time_major)
        params = dynamic.init(jax.random.PRNGKey(1), xs)
        assert jax.tree.map(jnp.shape, params) == jax.tree.map(
            jnp.shape, static.init(jax.random.PRNGKey(1), xs))
        outs, state = self.variant(dynamic.apply)(params, None, xs)
        expected_outs, expected_state = static.apply(params, None, xs)
        chex.assert_shape(outs, xs.shape[:2] + (4,))
        chex.assert_trees_all_close(outs, expected_outs, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(state, expected_state, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("unroll_fn", [hk.static_unroll, hk.dynamic_unroll])
def test_unroll_outside_transform_runs_function_cores(unroll_fn):
    outs, final = unroll_fn(_running_sum, XS, STATE)
    expected_outs, expected_final = _np_running_sum(XS, STATE)
    chex.assert_trees_all_close((outs, final), (expected_outs, expected_final))


@pytest.mark.parametrize("unroll_fn", [hk.static_unroll, hk.dynamic_unroll])
def test_batch_major_inputs_give_batch_major_outputs(unroll_fn):
    xs = np.stack([XS, -XS], axis=1)  # [T, B, F]
    state = np.ones((2, 3), np.float32)
    outs, final = unroll_fn(_running_sum, np.swapaxes(xs, 0, 1), state, time_major=False)
    expected_outs, expected_final = _np_running_sum(xs, state)
    chex.assert_trees_all_close(outs, np.swapaxes(expected_outs, 0, 1))
    chex.assert_trees_all_close(final, expected_final)


def test_return_all_states_returns_state_sequence_instead_of_final_state():
    def core(x, state):
        return 2 * x, state + x
    outs, states = hk.dynamic_unroll(core, XS, STATE, return_all_states=True)
    chex.assert_trees_all_close(outs, 2 * XS)
    chex.assert_trees_all_close(states, _np_running_sum(XS, STATE)[0])


def test_return_all_states_batch_major_swaps_state_sequence_too():
    xs = np.ones((2, 4, 3), np.float32)  # [B, T, F]
    _, states = hk.dynamic_unroll(_running_sum, xs, np.zeros((2, 3), np.float32),
                                  time_major=False, return_all_states=True)
    chex.assert_shape(states, (2, 4, 3))
    chex.assert_trees_all_close(states[0, :, 0], np.arange(1.0, 5.0, dtype=np.float32))


def test_unroll_argument_gives_same_result():
    outs, final = hk.dynamic_unroll(_running_sum, XS, STATE, unroll=2)
    chex.assert_trees_all_close((outs, final), _np_running_sum(XS, STATE))


def test_dynamic_unroll_creates_params_once_with_haiku_names():
    xs = jnp.ones([3, 2, 5])
    params = _lstm_unroll(hk.dynamic_unroll).init(0, xs)
    assert jax.tree.map(jnp.shape, params) == {"lstm/linear": {"w": (9, 16), "b": (16,)}}


def test_jitted_dynamic_unroll_traces_once_for_same_shapes():
    chex.clear_trace_counter()
    xs = jnp.ones([3, 2, 5])
    f = _lstm_unroll(hk.dynamic_unroll)
    params = f.init(0, xs)
    apply = jax.jit(chex.assert_max_traces(f.apply, n=1))
    for scale in (1.0, 2.0):
        apply(params, None, scale * xs)


@pytest.mark.parametrize("unroll_fn", [hk.static_unroll, hk.dynamic_unroll])
def test_inputs_without_time_axis_name_function_and_shape(unroll_fn):
    expected = (rf"{unroll_fn.__name__}: every input_sequence leaf needs a time axis "
                r"\(\[B, T, \.\.\.\] with time_major=False\), got a leaf of shape \(3,\)")
    with pytest.raises(ValueError, match=expected):
        unroll_fn(_running_sum, np.ones(3), STATE, time_major=False)


def test_inputs_with_different_lengths_name_the_lengths():
    with pytest.raises(ValueError, match=r"different lengths on the time axis 0: \[3, 4\]"):
        hk.static_unroll(lambda x, s: (x, s), (np.ones((3, 2)), np.ones((4, 2))), ())
