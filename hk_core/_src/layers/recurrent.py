"""Recurrent cores: ``RNNCore`` and the vanilla, LSTM and GRU cells, plus core combinators.

A core maps ``(inputs, prev_state) -> (outputs, next_state)`` for one time step; the unroll
functions (``unroll.py``) run it over a sequence. Gate orders and parameter layouts follow
Haiku exactly (API.md §3.8), so checkpoints move across unchanged.
"""

import abc
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers
from hk_core._src.layers import linear
from hk_core._src.layers import relu_kernels
from hk_core._src.layers.initializers import InitializerFn


def add_batch(tree: Any, batch_size: int | None) -> Any:
    """Broadcasts every leaf of ``tree`` to a new leading axis of ``batch_size`` (None: as is)."""
    if batch_size is None:
        return tree
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (batch_size, *jnp.shape(x))), tree)


class RNNCore(hk.Module, abc.ABC):
    """Base class of recurrent cores: one step ``(inputs, prev_state) -> (output, next_state)``.

    Example:
        >>> class Counter(hk.RNNCore):
        ...     def __call__(self, inputs, prev_state):
        ...         return inputs, prev_state + 1
        ...     def initial_state(self, batch_size):
        ...         return jnp.zeros([] if batch_size is None else [batch_size])
        >>> f = hk.transform(lambda xs: hk.dynamic_unroll(Counter(), xs, jnp.zeros([2]))[1])
        >>> f.apply({}, None, jnp.ones([3, 2]))
        Array([3., 3.], dtype=float32)
    """

    @abc.abstractmethod
    def __call__(self, inputs: Any, prev_state: Any) -> tuple[Any, Any]:
        """Runs one step; returns ``(output, next_state)``."""

    @abc.abstractmethod
    def initial_state(self, batch_size: int | None) -> Any:
        """Returns the state before the first step (unbatched when ``batch_size`` is None)."""


class VanillaRNN(RNNCore):
    """``h' = relu(linear(x) + linear_1(h))``; the output is the new state.

    Example:
        >>> def f(x):
        ...     core = hk.VanillaRNN(4)
        ...     return core(x, core.initial_state(2))
        >>> params = hk.transform(f).init(0, jnp.ones([2, 3]))
        >>> jax.tree.map(jnp.shape, params)["vanilla_rnn/linear_1"]
        {'b': (4,), 'w': (4, 4)}
    """

    def __init__(self, hidden_size: int, double_bias: bool = True, name: str | None = None):
        """Creates the core.

        Args:
            hidden_size: Size of the hidden state ``H``.
            double_bias: Whether the hidden-to-hidden ``linear_1`` has a bias too.
            name: Module name; defaults to ``"vanilla_rnn"``.
        """
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.double_bias = double_bias

    def __call__(self, inputs: jax.Array, prev_state: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Runs one step on ``inputs [..., in]`` and ``prev_state [..., H]``."""
        input_to_hidden = linear.Linear(self.hidden_size)
        hidden_to_hidden = linear.Linear(self.hidden_size, with_bias=self.double_bias)
        out = relu_kernels.add_relu_kernel(input_to_hidden(inputs), hidden_to_hidden(prev_state))
        return out, out

    def initial_state(self, batch_size: int | None) -> jax.Array:
        """Zeros of shape ``[batch_size, H]`` (``[H]`` when ``batch_size`` is None)."""
        return add_batch(jnp.zeros([self.hidden_size]), batch_size)


class LSTMState(NamedTuple):
    """The state of an ``LSTM``: ``hidden`` (also the output) and ``cell``.

    Example:
        >>> state = hk.LSTMState(hidden=jnp.zeros([2, 4]), cell=jnp.ones([2, 4]))
        >>> state.cell.shape
        (2, 4)
    """

    hidden: jax.Array
    cell: jax.Array


def _check_rank_1_or_2(module_path: str, kind: str, inputs: jax.Array) -> None:
    if inputs.ndim not in (1, 2):
        raise errors.InputShapeError(
            f"{module_path}: {kind} input must be rank-1 or rank-2 ([batch, features] or "
            f"[features]), got shape {inputs.shape} (rank {inputs.ndim}).",
            module_path=module_path, argument="inputs", expected="rank 1 or 2", got=inputs.shape)


def lstm_update(gates: jax.Array, prev_cell: jax.Array) -> tuple[jax.Array, LSTMState]:
    """The LSTM cell update from pre-activation ``gates`` split in Haiku's order i, g, f, o."""
    i, g, f, o = jnp.split(gates, indices_or_sections=4, axis=-1)
    # The forget gate is biased by +1 so a fresh LSTM starts by remembering (Jozefowicz 2015).
    f = jax.nn.sigmoid(f + 1)
    c = f * prev_cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, LSTMState(h, c)


class LSTM(RNNCore):
    """Long short-term memory: one ``Linear`` on ``[x, h]`` gives gates i, g, f, o.

    Example:
        >>> def f(x):
        ...     core = hk.LSTM(4)
        ...     return core(x, core.initial_state(2))
        >>> f = hk.transform(f)
        >>> params = f.init(0, jnp.ones([2, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'lstm/linear': {'b': (16,), 'w': (7, 16)}}
        >>> out, state = f.apply(params, None, jnp.ones([2, 3]))
        >>> out.shape, state.cell.shape
        ((2, 4), (2, 4))
    """

    def __init__(self, hidden_size: int, name: str | None = None):
        """Creates the core.

        Args:
            hidden_size: Size of the hidden and cell states ``H``.
            name: Module name; defaults to ``"lstm"``.
        """
        super().__init__(name=name)
        self.hidden_size = hidden_size

    def __call__(self, inputs: jax.Array, prev_state: LSTMState) -> tuple[jax.Array, LSTMState]:
        """Runs one step.

        Args:
            inputs: ``[batch, in]`` or ``[in]``.
            prev_state: ``LSTMState`` with leaves ``[batch, H]`` (or ``[H]``).

        Returns:
            ``(h, LSTMState(h, c))``.

        Raises:
            ValueError: if ``inputs`` is not rank 1 or 2 (the message names this module).
        """
        _check_rank_1_or_2(self.module_name, "LSTM", inputs)
        x_and_h = jnp.concatenate([inputs, prev_state.hidden], axis=-1)
        gates = linear.Linear(4 * self.hidden_size)(x_and_h)
        return lstm_update(gates, prev_state.cell)

    def initial_state(self, batch_size: int | None) -> LSTMState:
        """Zero hidden and cell states, ``[batch_size, H]`` (``[H]`` when None)."""
        state = LSTMState(hidden=jnp.zeros([self.hidden_size]),
                          cell=jnp.zeros([self.hidden_size]))
        return add_batch(state, batch_size)


class GRU(RNNCore):
    """Gated recurrent unit (Cho et al., 2014) with params ``w_i``, ``w_h``, ``b`` on ``gru``.

    Columns ``[:2H]`` hold the update and reset gates z, r; ``[2H:]`` the candidate.

    Example:
        >>> def f(x):
        ...     core = hk.GRU(4)
        ...     return core(x, core.initial_state(2))
        >>> params = hk.transform(f).init(0, jnp.ones([2, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'gru': {'b': (12,), 'w_h': (4, 12), 'w_i': (3, 12)}}
    """

    def __init__(self, hidden_size: int, w_i_init: InitializerFn | None = None,
                 w_h_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 name: str | None = None):
        """Creates the core.

        Args:
            hidden_size: Size of the hidden state ``H``.
            w_i_init: Initializer of ``w_i [in, 3H]``; defaults to ``VarianceScaling()``.
            w_h_init: Initializer of ``w_h [H, 3H]``; defaults to ``VarianceScaling()``.
            b_init: Initializer of ``b [3H]``; defaults to zeros.
            name: Module name; defaults to ``"gru"``.
        """
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.w_i_init = w_i_init or initializers.VarianceScaling()
        self.w_h_init = w_h_init or initializers.VarianceScaling()
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs: jax.Array, state: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Runs one step on ``inputs [batch, in]`` (or ``[in]``); returns ``(h', h')``.

        Raises:
            ValueError: if ``inputs`` is not rank 1 or 2 (the message names this module).
        """
        _check_rank_1_or_2(self.module_name, "GRU", inputs)
        hidden_size = self.hidden_size
        dtype = inputs.dtype
        w_i = hk.get_parameter("w_i", [inputs.shape[-1], 3 * hidden_size], dtype,
                                       init=self.w_i_init)
        w_h = hk.get_parameter("w_h", [hidden_size, 3 * hidden_size], dtype,
                                       init=self.w_h_init)
        b = hk.get_parameter("b", [3 * hidden_size], dtype, init=self.b_init)
        w_h_zr, w_h_a = jnp.split(w_h, indices_or_sections=[2 * hidden_size], axis=1)
        b_zr, b_a = jnp.split(b, indices_or_sections=[2 * hidden_size], axis=0)
        zr_x, a_x = jnp.split(jnp.matmul(inputs, w_i), indices_or_sections=[2 * hidden_size],
                              axis=-1)
        zr_h = jnp.matmul(state, w_h_zr)
        zr = zr_x + zr_h + jnp.broadcast_to(b_zr, zr_h.shape)
        z, r = jnp.split(jax.nn.sigmoid(zr), indices_or_sections=2, axis=-1)
        a_h = jnp.matmul(r * state, w_h_a)
        a = jnp.tanh(a_x + a_h + jnp.broadcast_to(b_a, a_h.shape))
        next_state = (1 - z) * state + z * a
        return next_state, next_state

    def initial_state(self, batch_size: int | None) -> jax.Array:
        """Zeros of shape ``[batch_size, H]`` (``[H]`` when ``batch_size`` is None)."""
        return add_batch(jnp.zeros([self.hidden_size]), batch_size)


class IdentityCore(RNNCore):
    """A core that returns its inputs and leaves its (empty) state unchanged.

    Example:
        >>> f = hk.transform(lambda x: hk.IdentityCore()(x, ()))
        >>> f.apply({}, None, jnp.ones([2]))
        (Array([1., 1.], dtype=float32), ())
    """

    def __call__(self, inputs: Any, state: Any) -> tuple[Any, Any]:
        """Returns ``(inputs, state)``."""
        return inputs, state

    def initial_state(self, batch_size: int | None) -> tuple:
        """The empty state ``()``."""
        del batch_size
        return ()


class ResetCore(RNNCore):
    """Resets a core's state to its initial state where ``should_reset`` is True.

    Called as ``reset_core((inputs, should_reset), state)``. ``should_reset`` is one array
    (used for every state leaf) or a pytree like the state; each of its arrays must be a
    prefix of the shape of its state leaf (e.g. ``[batch]``).

    Example:
        >>> def f(x, reset):
        ...     core = hk.ResetCore(hk.VanillaRNN(2))
        ...     state = jnp.ones([2, 2])
        ...     return core((x, reset), state)[0]
        >>> f = hk.transform(f)
        >>> x, reset = jnp.ones([2, 3]), jnp.array([True, False])
        >>> f.apply(f.init(0, x, reset), None, x, reset).shape
        (2, 2)
    """

    def __init__(self, core: RNNCore, name: str | None = None):
        """Wraps ``core``.

        Args:
            core: The core to reset; its params keep its own name.
            name: Module name; defaults to ``"reset_core"``.
        """
        super().__init__(name=name)
        self.core = core

    def __call__(self, inputs: tuple[Any, Any], state: Any) -> tuple[Any, Any]:
        """Resets ``state`` where ``should_reset`` is True, then runs the core.

        Raises:
            ValueError: if ``should_reset`` matches neither one array nor the state's structure,
                or one of its arrays is not a prefix of its state leaf's shape.
        """
        inputs, should_reset = inputs
        state_tree = jax.tree.structure(state)
        if jax.tree.structure(should_reset) != state_tree:
            reset_leaves = jax.tree.leaves(should_reset)
            if len(reset_leaves) != 1:
                raise errors.InputShapeError(
                    f"{self.module_name}: should_reset must be a single array or have the "
                    f"structure of the state {state_tree}, got {jax.tree.structure(should_reset)}.",
                    module_path=self.module_name, argument="should_reset", expected=state_tree,
                    got=jax.tree.structure(should_reset))
            should_reset = jax.tree.map(lambda _: reset_leaves[0], state)
        batch_size = jax.tree.leaves(inputs)[0].shape[0] if self._is_batched(state) else None
        initial_state = jax.tree.map(lambda s, i: i.astype(s.dtype), state,
                                     self.core.initial_state(batch_size))
        module_path = self.module_name
        state = jax.tree.map(lambda r, i, s: _reset_leaf(module_path, r, i, s),
                             should_reset, initial_state, state)
        return self.core(inputs, state)

    @hk.transparent
    def _is_batched(self, state: Any) -> bool:
        leaves = jax.tree.leaves(state)
        if not leaves:
            return False  # an empty state has no batch to speak of
        batched = jax.tree.leaves(self.core.initial_state(1))
        return all(jnp.ndim(s) == jnp.ndim(b) and jnp.shape(s)[1:] == jnp.shape(b)[1:]
                   for s, b in zip(leaves, batched))

    def initial_state(self, batch_size: int | None) -> Any:
        """The wrapped core's initial state."""
        return self.core.initial_state(batch_size)


def _reset_leaf(module_path: str, reset: Any, initial: jax.Array, state: jax.Array) -> jax.Array:
    reset = jnp.asarray(reset)
    if state.shape[:reset.ndim] != reset.shape:
        # Haiku 0.0.17's wording, then what the shape must be.
        raise errors.InputShapeError(
            f"{module_path}: should_reset signal shape {reset.shape} is not compatible with "
            f"state shape {state.shape} (it must be a prefix of the state leaf's shape).",
            module_path=module_path, argument="should_reset",
            expected=f"a prefix of {state.shape}", got=reset.shape)
    # Padded on the right: a [batch] reset covers every feature of that batch row.
    reset = jnp.reshape(reset, reset.shape + (1,) * (state.ndim - reset.ndim))
    return jnp.where(reset, initial, state)


class _DeepRNN(RNNCore):
    """Stacks cores (and plain callables); optionally with skip connections."""

    def __init__(self, layers: Sequence[Any], skip_connections: bool, name: str | None = None):
        super().__init__(name=name)
        # Kept as given (a list stays a list), as Haiku does.
        self.layers = layers if isinstance(layers, (list, tuple)) else tuple(layers)
        self.skip_connections = skip_connections
        if skip_connections:
            for layer in self.layers:
                if not isinstance(layer, RNNCore):
                    raise errors.ConfigurationError(
                        f"{self.module_name}: skip connections need every layer to be an "
                        f"hk.RNNCore, got {type(layer).__name__} in {list(self.layers)}.",
                        module_path=self.module_name, argument="layers",
                        expected="hk.RNNCore layers", got=type(layer).__name__)

    def __call__(self, inputs: Any, state: Sequence[Any]) -> tuple[Any, tuple]:
        """Runs every layer in turn; returns ``(output, tuple of core states)``."""
        current_inputs = inputs
        next_states = []
        outputs = []
        state_index = 0
        for index, layer in enumerate(self.layers):
            if self.skip_connections and index > 0:
                current_inputs = jax.tree.map(_concat, inputs, current_inputs)
            if isinstance(layer, RNNCore):
                current_inputs, next_state = layer(current_inputs, state[state_index])
                outputs.append(current_inputs)
                next_states.append(next_state)
                state_index += 1
            else:
                current_inputs = layer(current_inputs)
        output = jax.tree.map(_concat, *outputs) if self.skip_connections else current_inputs
        return output, tuple(next_states)

    def initial_state(self, batch_size: int | None) -> tuple:
        """A tuple of the initial states of the ``RNNCore`` layers, in order."""
        return tuple(layer.initial_state(batch_size) for layer in self.layers
                     if isinstance(layer, RNNCore))


def _concat(*arrays: jax.Array) -> jax.Array:
    return jnp.concatenate(arrays, axis=-1)


class DeepRNN(_DeepRNN):
    """Runs layers one after another; plain callables are applied too but have no state.

    Example:
        >>> def f(x):
        ...     core = hk.DeepRNN([hk.LSTM(4), jax.nn.relu, hk.GRU(5)])
        ...     return core(x, core.initial_state(2))
        >>> f = hk.transform(f)
        >>> out, state = f.apply(f.init(0, jnp.ones([2, 3])), None, jnp.ones([2, 3]))
        >>> out.shape, len(state)
        ((2, 5), 2)
    """

    def __init__(self, layers: Sequence[RNNCore | Callable[[Any], Any]], name: str | None = None):
        """Creates the stack.

        Args:
            layers: Cores and callables, applied in order; they keep their own names.
            name: Module name; defaults to ``"deep_rnn"``.
        """
        super().__init__(layers, skip_connections=False, name=name)


def deep_rnn_with_skip_connections(layers: Sequence[RNNCore], name: str | None = None
                                   ) -> RNNCore:
    """Stacks cores; each after the first sees ``concat([inputs, previous output])``.

    The output is the concatenation of every core's output.

    Example:
        >>> def f(x):
        ...     core = hk.deep_rnn_with_skip_connections([hk.LSTM(4), hk.GRU(5)])
        ...     return core(x, core.initial_state(2))[0]
        >>> params = hk.transform(f).init(0, jnp.ones([2, 3]))
        >>> params["gru"]["w_i"].shape
        (7, 15)
    """
    return _DeepRNN(layers, skip_connections=True, name=name)
