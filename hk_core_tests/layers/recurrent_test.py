"""Tests for hk_core/_src/layers/recurrent.py (API.md §3.8): cells against hand-written numpy."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_lstm(x, h, c, w, b):
    """Haiku's gate order i, g, f, o, with +1 on the forget gate."""
    gates = np.concatenate([x, h], axis=-1) @ w + b
    i, g, f, o = np.split(gates, 4, axis=-1)
    c = _sigmoid(f + 1) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _np_gru(x, h, w_i, w_h, b):
    hidden = h.shape[-1]
    zr = x @ w_i[:, :2 * hidden] + h @ w_h[:, :2 * hidden] + b[:2 * hidden]
    z, r = np.split(_sigmoid(zr), 2, axis=-1)
    a = np.tanh(x @ w_i[:, 2 * hidden:] + (r * h) @ w_h[:, 2 * hidden:] + b[2 * hidden:])
    return (1 - z) * h + z * a


def _random(shape, seed):
    return np.asarray(jax.random.normal(jax.random.PRNGKey(seed), shape))


def _one_step(make_core):
    def f(x, state):
        return make_core()(x, state)
    return hk.transform(f)


def _params_with_random_values(params, seed=10):
    leaves, treedef = jax.tree.flatten(params)
    return jax.tree.unflatten(treedef, [_random(x.shape, seed + i) for i, x in enumerate(leaves)])


class CellNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("batched", (2,)), ("unbatched", ()))
    def test_lstm_step_matches_numpy_cell(self, batch):
        x, h, c = _random((*batch, 3), 0), _random((*batch, 4), 1), _random((*batch, 4), 2)
        f = _one_step(lambda: hk.LSTM(4))
        params = _params_with_random_values(f.init(0, x, hk.LSTMState(h, c)))
        out, state = self.variant(f.apply)(params, None, x, hk.LSTMState(h, c))
        w, b = params["lstm/linear"]["w"], params["lstm/linear"]["b"]
        h_new, c_new = _np_lstm(x, h, c, w, b)
        chex.assert_trees_all_close(out, h_new, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(state, hk.LSTMState(h_new, c_new), rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("batched", (2,)), ("unbatched", ()))
    def test_gru_step_matches_numpy_cell(self, batch):
        x, h = _random((*batch, 3), 0), _random((*batch, 4), 1)
        f = _one_step(lambda: hk.GRU(4))
        params = _params_with_random_values(f.init(0, x, h))
        out, state = self.variant(f.apply)(params, None, x, h)
        expected = _np_gru(x, h, params["gru"]["w_i"], params["gru"]["w_h"], params["gru"]["b"])
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(state, expected, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("double_bias", True), ("single_bias", False))
    def test_vanilla_rnn_step_is_relu_of_two_linears(self, double_bias):
        x, h = _random((2, 3), 0), _random((2, 4), 1)
        f = _one_step(lambda: hk.VanillaRNN(4, double_bias=double_bias))
        params = _params_with_random_values(f.init(0, x, h))
        out, state = self.variant(f.apply)(params, None, x, h)
        i2h, h2h = params["vanilla_rnn/linear"], params["vanilla_rnn/linear_1"]
        pre = x @ i2h["w"] + i2h["b"] + h @ h2h["w"] + (h2h["b"] if double_bias else 0.0)
        expected = np.maximum(pre, 0.0)
        chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(state, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_core, expected", [
    (lambda: hk.LSTM(4), {"lstm/linear": {"w": (7, 16), "b": (16,)}}),
    (lambda: hk.GRU(4), {"gru": {"w_i": (3, 12), "w_h": (4, 12), "b": (12,)}}),
    (lambda: hk.VanillaRNN(4), {"vanilla_rnn/linear": {"w": (3, 4), "b": (4,)},
                                "vanilla_rnn/linear_1": {"w": (4, 4), "b": (4,)}}),
    (lambda: hk.VanillaRNN(4, double_bias=False),
     {"vanilla_rnn/linear": {"w": (3, 4), "b": (4,)}, "vanilla_rnn/linear_1": {"w": (4, 4)}}),
])
def test_core_params_have_haiku_paths_shapes_and_order(make_core, expected):
    def f(x):
        core = make_core()
        return core(x, core.initial_state(2))
    params = hk.transform(f).init(0, jnp.ones([2, 3]))
    assert jax.tree.map(jnp.shape, params) == expected
    assert [(m, list(b)) for m, b in params.items()] == [(m, list(b)) for m, b in expected.items()]


def test_gru_default_inits_are_variance_scaling_then_zeros():
    def gru(x):
        core = hk.GRU(4, name="g")
        return core(x, core.initial_state(2))

    def reference():
        init = hk.initializers.VarianceScaling()
        with hk.name_scope("g"):
            hk.get_parameter("w_i", [3, 12], init=init)
            hk.get_parameter("w_h", [4, 12], init=init)
            hk.get_parameter("b", [12], init=jnp.zeros)

    key = jax.random.PRNGKey(5)
    chex.assert_trees_all_equal(hk.transform(gru).init(key, jnp.ones([2, 3])),
                                hk.transform(reference).init(key))


def test_gru_custom_inits_are_used():
    def f(x):
        core = hk.GRU(2, w_i_init=jnp.ones, w_h_init=hk.initializers.Constant(2.0),
                      b_init=hk.initializers.Constant(3.0))
        return core(x, core.initial_state(None))
    params = hk.transform(f).init(None, jnp.ones([3]))
    np.testing.assert_array_equal(params["gru"]["w_i"], np.ones((3, 6), np.float32))
    np.testing.assert_array_equal(params["gru"]["w_h"], np.full((2, 6), 2.0, np.float32))
    np.testing.assert_array_equal(params["gru"]["b"], np.full((6,), 3.0, np.float32))


@pytest.mark.parametrize("make_core, batch_size, expected", [
    (lambda: hk.LSTM(4), 3, hk.LSTMState(np.zeros((3, 4)), np.zeros((3, 4)))),
    (lambda: hk.LSTM(4), None, hk.LSTMState(np.zeros((4,)), np.zeros((4,)))),
    (lambda: hk.GRU(5), 2, np.zeros((2, 5))),
    (lambda: hk.VanillaRNN(5), None, np.zeros((5,))),
    (lambda: hk.IdentityCore(), 2, ()),
])
def test_initial_state_is_zeros_of_batch_and_hidden_shape(make_core, batch_size, expected):
    state = hk.transform(lambda: make_core().initial_state(batch_size)).apply({}, None)
    chex.assert_trees_all_equal(state, jax.tree.map(lambda x: x.astype(np.float32), expected))
    assert jax.tree.structure(state) == jax.tree.structure(expected)


@pytest.mark.parametrize("make_core, kind", [(lambda: hk.LSTM(4), "LSTM"),
                                             (lambda: hk.GRU(4), "GRU")])
def test_rank_three_input_names_module_and_shape(make_core, kind):
    def f(x):
        core = make_core()
        return core(x, core.initial_state(2))
    expected = rf"{kind.lower()}: {kind} input must be rank-1 or rank-2 .*got shape \(2, 5, 3\)"
    with pytest.raises(ValueError, match=expected):
        hk.transform(f).init(0, jnp.ones([2, 5, 3]))


def test_rnn_core_without_initial_state_cannot_be_built():
    class Incomplete(hk.RNNCore):
        def __call__(self, inputs, prev_state):
            return inputs, prev_state

    with pytest.raises(TypeError, match="initial_state"):
        hk.transform(lambda: Incomplete()).init(None)


def test_identity_core_returns_inputs_and_state_unchanged():
    out = hk.transform(lambda x, s: hk.IdentityCore()(x, s)).apply({}, None, jnp.arange(3.0),
                                                                    (jnp.ones(2),))
    chex.assert_trees_all_equal(out, (jnp.arange(3.0), (jnp.ones(2),)))


# ----------------------------------------------------------------------------- ResetCore


def _reset_lstm(x, reset, state):
    lstm = hk.LSTM(3)
    return hk.ResetCore(lstm)((x, reset), state)


class ResetCoreTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_batch_reset_zeroes_flagged_rows_before_the_step(self):
        x = _random((2, 2), 0)
        state = hk.LSTMState(_random((2, 3), 1), _random((2, 3), 2))
        reset = jnp.array([True, False])
        f = hk.transform(_reset_lstm)
        params = f.init(0, x, reset, state)
        out, new_state = self.variant(f.apply)(params, None, x, reset, state)
        w, b = params["lstm/linear"]["w"], params["lstm/linear"]["b"]
        h0 = np.where([[True], [False]], 0.0, state.hidden)
        c0 = np.where([[True], [False]], 0.0, state.cell)
        h_new, c_new = _np_lstm(x, h0, c0, w, b)
        chex.assert_trees_all_close(out, h_new, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(new_state, hk.LSTMState(h_new, c_new), rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_reset_tree_resets_each_leaf_on_its_own(self):
        x = _random((2, 2), 0)
        state = hk.LSTMState(_random((2, 3), 1), _random((2, 3), 2))
        reset = hk.LSTMState(jnp.array([True, False]), jnp.array([False, True]))
        f = hk.transform(_reset_lstm)
        params = f.init(0, x, reset, state)
        _, new_state = self.variant(f.apply)(params, None, x, reset, state)
        h0 = np.where([[True], [False]], 0.0, state.hidden)
        c0 = np.where([[False], [True]], 0.0, state.cell)
        _, c_new = _np_lstm(x, h0, c0, params["lstm/linear"]["w"], params["lstm/linear"]["b"])
        chex.assert_trees_all_close(new_state.cell, c_new, rtol=1e-5, atol=1e-6)


def test_reset_core_keeps_core_param_names():
    x, state = jnp.ones([2, 2]), hk.LSTMState(jnp.ones([2, 3]), jnp.ones([2, 3]))
    params = hk.transform(_reset_lstm).init(0, x, jnp.array([True, False]), state)
    assert list(params) == ["lstm/linear"]


def test_reset_core_on_unbatched_state_uses_unbatched_initial_state():
    def f(x, reset, state):
        return hk.ResetCore(hk.IdentityCore())((x, reset), state)[0]
    # IdentityCore's empty state is unbatched; the step is the identity on inputs.
    out = hk.transform(f).apply({}, None, jnp.ones([3]), jnp.array(True), ())
    np.testing.assert_array_equal(out, np.ones(3, np.float32))


def test_reset_core_casts_initial_state_to_the_state_dtype():
    def f(x, reset, state):
        return hk.ResetCore(hk.LSTM(3))((x, reset), state)[1]

    x, reset = jnp.ones([2, 2], jnp.bfloat16), jnp.array([True, True])
    state = hk.LSTMState(jnp.ones([2, 3], jnp.bfloat16), jnp.ones([2, 3], jnp.bfloat16))
    f = hk.transform(f)
    new_state = f.apply(f.init(0, x, reset, state), None, x, reset, state)
    assert (new_state.hidden.dtype, new_state.cell.dtype) == (jnp.bfloat16, jnp.bfloat16)


# Shapes and wording recorded from Haiku 0.0.17 (black box: ResetCore(LSTM(3)), batch 2).
@pytest.mark.parametrize("make_reset, reset_shape", [
    (lambda: jnp.array([True, False, True]), r"\(3,\)"),
    (lambda: jnp.array([[True, False]]), r"\(1, 2\)"),
    (lambda: jnp.zeros([2, 4], bool), r"\(2, 4\)"),
    (lambda: hk.LSTMState(jnp.zeros([2, 3, 1], bool), jnp.array([True, False])), r"\(2, 3, 1\)"),
    (lambda: hk.LSTMState(jnp.array([True, False]), jnp.array([True])), r"\(1,\)"),
], ids=["longer_batch", "extra_leading_axis", "wider_features", "higher_rank_leaf",
        "one_leaf_too_short"])
def test_reset_that_is_not_a_shape_prefix_names_module_and_shapes(make_reset, reset_shape):
    x, state = jnp.ones([2, 2]), hk.LSTMState(jnp.ones([2, 3]), jnp.ones([2, 3]))
    expected = (rf"reset_core: should_reset signal shape {reset_shape} is not compatible with "
                r"state shape \(2, 3\)")
    with pytest.raises(ValueError, match=expected):
        hk.transform(_reset_lstm).init(0, x, make_reset(), state)


@pytest.mark.parametrize("make_reset", [
    lambda: jnp.array([True, False]), lambda: jnp.zeros([2, 3], bool), lambda: True,
    lambda: hk.LSTMState(jnp.zeros([2, 3], bool), jnp.array([True, False])),
], ids=["batch", "full_leaf_shape", "python_bool", "per_leaf"])
def test_reset_that_conforms_to_the_state_is_accepted(make_reset):
    x, state = jnp.ones([2, 2]), hk.LSTMState(jnp.ones([2, 3]), jnp.ones([2, 3]))
    params = hk.transform(_reset_lstm).init(0, x, make_reset(), state)
    assert jax.tree.map(jnp.shape, params) == {"lstm/linear": {"b": (12,), "w": (5, 12)}}


def test_reset_with_wrong_structure_names_module():
    x, state = jnp.ones([2, 2]), hk.LSTMState(jnp.ones([2, 3]), jnp.ones([2, 3]))
    reset = (jnp.array([True, False]),) * 3
    with pytest.raises(ValueError, match=r"reset_core: should_reset must be a single array or "
                                         r"have the structure of the state"):
        hk.transform(_reset_lstm).init(0, x, reset, state)


# ----------------------------------------------------------------------------- DeepRNN


def test_deep_rnn_chains_cores_and_callables_and_returns_core_states():
    def f(x):
        lstm, gru = hk.LSTM(4), hk.GRU(5)
        core = hk.DeepRNN([lstm, jnp.tanh, gru])
        return core(x, core.initial_state(2))

    f = hk.transform(f)
    x = _random((2, 3), 0)
    initial_params = f.init(0, x)
    assert list(initial_params) == ["lstm/linear", "gru"]
    params = _params_with_random_values(initial_params)
    out, (lstm_state, gru_state) = f.apply(params, None, x)
    zeros4, zeros5 = np.zeros((2, 4)), np.zeros((2, 5))
    h, c = _np_lstm(x, zeros4, zeros4, params["lstm/linear"]["w"], params["lstm/linear"]["b"])
    g = params["gru"]
    expected = _np_gru(np.tanh(h), zeros5, g["w_i"], g["w_h"], g["b"])
    chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(lstm_state, hk.LSTMState(h, c), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(gru_state, expected, rtol=1e-5, atol=1e-6)


def test_deep_rnn_initial_state_has_one_entry_per_core():
    def f():
        return hk.DeepRNN([hk.LSTM(2), jax.nn.relu, hk.VanillaRNN(3)]).initial_state(4)
    state = hk.transform(f).apply({}, None)
    assert jax.tree.map(jnp.shape, state) == (hk.LSTMState((4, 2), (4, 2)), (4, 3))


def test_skip_connections_feed_inputs_to_every_core_and_concat_outputs():
    def f(x):
        core = hk.deep_rnn_with_skip_connections([hk.LSTM(4), hk.GRU(5)])
        return core(x, core.initial_state(2))

    f = hk.transform(f)
    x = _random((2, 3), 0)
    params = _params_with_random_values(f.init(0, x))
    assert params["gru"]["w_i"].shape == (7, 15)
    out, _ = f.apply(params, None, x)
    zeros4, zeros5 = np.zeros((2, 4)), np.zeros((2, 5))
    h, _ = _np_lstm(x, zeros4, zeros4, params["lstm/linear"]["w"], params["lstm/linear"]["b"])
    g = params["gru"]
    gru_out = _np_gru(np.concatenate([x, h], -1), zeros5, g["w_i"], g["w_h"], g["b"])
    chex.assert_trees_all_close(out, np.concatenate([h, gru_out], -1), rtol=1e-5, atol=1e-6)


def test_skip_connections_with_a_plain_callable_is_a_value_error():
    def f():
        hk.deep_rnn_with_skip_connections([hk.LSTM(4), jnp.tanh])
    with pytest.raises(ValueError, match=r"skip connections need every layer to be an "
                                         r"hk.RNNCore, got \w+"):
        hk.transform(f).init(None)


def test_rnn_core_is_an_abc_subclass_as_in_haiku():
    # Haiku 0.0.17 (black box): abc.ABC is in hk.RNNCore's MRO, so isinstance checks against
    # abc.ABC and registration through RNNCore.register work.
    import abc

    assert abc.ABC in hk.RNNCore.__mro__
    assert isinstance(hk.RNNCore, abc.ABCMeta)
