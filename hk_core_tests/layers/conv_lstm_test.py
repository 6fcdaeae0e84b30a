"""Tests for hk_core/_src/layers/conv_lstm.py (API.md §3.8): against a lax.conv LSTM cell."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

_CORES = {1: hk.Conv1DLSTM, 2: hk.Conv2DLSTM, 3: hk.Conv3DLSTM}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _same_conv(x, w, b):
    """SAME, stride 1, channels-last convolution written with lax directly."""
    n = x.ndim - 2
    spatial = "DHW"[-n:] if n <= 3 else None
    dims = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    out = jax.lax.conv_general_dilated(x, w, (1,) * n, "SAME", dimension_numbers=dims,
                                       precision=jax.lax.Precision.HIGHEST)
    return np.asarray(out) + b


def _np_conv_lstm(x, h, c, params, name):
    gates = (_same_conv(x, params[f"{name}/input_to_hidden"]["w"],
                        params[f"{name}/input_to_hidden"]["b"])
             + _same_conv(h, params[f"{name}/hidden_to_hidden"]["w"],
                          params[f"{name}/hidden_to_hidden"]["b"]))
    i, g, f, o = np.split(gates, 4, axis=-1)
    c = _sigmoid(f + 1) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _step(n, input_shape, out_channels=2, kernel=3):
    def f(x, state):
        return _CORES[n](input_shape, out_channels, kernel)(x, state)
    return hk.transform(f)


@pytest.mark.parametrize("n, name", [(1, "conv1_dlstm"), (2, "conv2_dlstm"),
                                     (3, "conv3_dlstm")])
def test_params_have_haiku_names_and_conv_shapes(n, name):
    input_shape = (4,) * n
    x = jnp.ones((2, *input_shape, 3))

    def f(x):
        core = _CORES[n](input_shape, 5, 3)
        return core(x, core.initial_state(2))
    params = hk.transform(f).init(0, x)
    assert jax.tree.map(jnp.shape, params) == {
        f"{name}/input_to_hidden": {"w": (*(3,) * n, 3, 20), "b": (20,)},
        f"{name}/hidden_to_hidden": {"w": (*(3,) * n, 5, 20), "b": (20,)},
    }


@pytest.mark.parametrize("batch_size, expected", [(2, (2, 4, 5, 3)), (None, (4, 5, 3))])
def test_initial_state_is_zeros_of_spatial_shape_and_channels(batch_size, expected):
    state = hk.transform(lambda: hk.Conv2DLSTM([4, 5], 3, 3).initial_state(batch_size)).apply(
        {}, None)
    chex.assert_trees_all_equal(state, hk.LSTMState(np.zeros(expected, np.float32),
                                                    np.zeros(expected, np.float32)))


class ConvLSTMNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_conv2d_lstm_step_matches_lax_conv_cell(self):
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        x = jax.random.normal(keys[0], (2, 5, 4, 3))
        state = hk.LSTMState(jax.random.normal(keys[1], (2, 5, 4, 2)),
                             jax.random.normal(keys[2], (2, 5, 4, 2)))
        f = _step(2, (5, 4))
        params = f.init(jax.random.PRNGKey(1), x, state)
        out, new_state = self.variant(f.apply)(params, None, x, state)
        h, c = _np_conv_lstm(x, state.hidden, state.cell, params, "conv2_dlstm")
        chex.assert_trees_all_close(out, h, rtol=1e-4, atol=1e-5)
        chex.assert_trees_all_close(new_state, hk.LSTMState(h, c), rtol=1e-4, atol=1e-5)


def test_conv1d_lstm_unbatched_step_matches_batched_step():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (6, 3))
    state = hk.LSTMState(jax.random.normal(keys[1], (6, 2)), jax.random.normal(keys[2], (6, 2)))
    f = _step(1, (6,))
    params = f.init(jax.random.PRNGKey(1), x, state)
    out, _ = f.apply(params, None, x, state)
    batched, _ = f.apply(params, None, x[None], jax.tree.map(lambda s: s[None], state))
    chex.assert_trees_all_close(out, batched[0], rtol=1e-5, atol=1e-6)


def test_conv_lstm_unrolls_over_time():
    def f(xs):
        core = hk.Conv1DLSTM([6], 2, 3)
        return hk.dynamic_unroll(core, xs, core.initial_state(2))
    f = hk.transform(f)
    xs = jnp.ones([4, 2, 6, 3])
    outs, state = f.apply(f.init(0, xs), None, xs)
    chex.assert_shape(outs, (4, 2, 6, 2))
    chex.assert_shape(state.cell, (2, 6, 2))


def test_inputs_of_wrong_spatial_shape_name_module_and_shapes():
    f = _step(2, (5, 4))
    state = hk.LSTMState(jnp.zeros((2, 5, 4, 2)), jnp.zeros((2, 5, 4, 2)))
    expected = (r"conv2_dlstm: inputs must be \[batch, \*input_shape, channels\] with "
                r"input_shape=\(5, 4\), got shape \(2, 4, 4, 3\)")
    with pytest.raises(ValueError, match=expected):
        f.init(0, jnp.ones((2, 4, 4, 3)), state)
