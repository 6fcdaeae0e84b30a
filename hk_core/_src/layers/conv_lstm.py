"""Convolutional LSTMs (``Conv1DLSTM``, ``Conv2DLSTM``, ``Conv3DLSTM``; Shi et al., 2015).

The LSTM gate math is ``recurrent.lstm_update``; the two affine maps are ``ConvND`` layers
(``input_to_hidden`` and ``hidden_to_hidden``, SAME padding, channels last).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from hk_core._src.layers import conv
from hk_core._src.layers import errors
from hk_core._src.layers import recurrent


class _ConvNDLSTM(recurrent.RNNCore):
    """The LSTM of ``recurrent.LSTM`` with convolutions instead of matrix products."""

    def __init__(self, num_spatial_dims: int, input_shape: Sequence[int], output_channels: int,
                 kernel_shape: int | Sequence[int], name: str | None = None):
        super().__init__(name=name)
        self.num_spatial_dims = num_spatial_dims
        self.input_shape = tuple(input_shape)
        self.output_channels = output_channels
        self.kernel_shape = kernel_shape

    def __call__(self, inputs: jax.Array, state: recurrent.LSTMState
                 ) -> tuple[jax.Array, recurrent.LSTMState]:
        """Runs one step.

        Args:
            inputs: ``[batch, *input_shape, in_channels]`` (or without the batch axis).
            state: ``LSTMState`` with leaves ``[batch, *input_shape, output_channels]``.

        Returns:
            ``(h, LSTMState(h, c))``.

        Raises:
            ValueError: if the spatial shape of ``inputs`` is not ``input_shape`` (the message
                names this module).
        """
        n = self.num_spatial_dims
        spatial = tuple(inputs.shape[-(n + 1):-1]) if inputs.ndim >= n + 1 else None
        if spatial != self.input_shape:
            raise errors.InputShapeError(
                f"{self.module_name}: inputs must be [batch, *input_shape, channels] with "
                f"input_shape={self.input_shape}, got shape {inputs.shape}.",
                module_path=self.module_name, argument="inputs",
                expected=("batch", *self.input_shape, "channels"), got=inputs.shape)
        input_to_hidden = conv.ConvND(n, output_channels=4 * self.output_channels,
                                      kernel_shape=self.kernel_shape, name="input_to_hidden")
        hidden_to_hidden = conv.ConvND(n, output_channels=4 * self.output_channels,
                                       kernel_shape=self.kernel_shape, name="hidden_to_hidden")
        gates = input_to_hidden(inputs) + hidden_to_hidden(state.hidden)
        return recurrent.lstm_update(gates, state.cell)

    def initial_state(self, batch_size: int | None) -> recurrent.LSTMState:
        """Zeros of shape ``[batch_size, *input_shape, output_channels]`` for h and c."""
        shape = (*self.input_shape, self.output_channels)
        state = recurrent.LSTMState(jnp.zeros(shape), jnp.zeros(shape))
        return recurrent.add_batch(state, batch_size)


class Conv1DLSTM(_ConvNDLSTM):
    """A 1-D convolutional LSTM.

    Example:
        >>> def f(x):
        ...     core = hk.Conv1DLSTM(input_shape=[8], output_channels=4, kernel_shape=3)
        ...     return core(x, core.initial_state(2))
        >>> params = hk.transform(f).init(0, jnp.ones([2, 8, 3]))
        >>> jax.tree.map(jnp.shape, params)["conv1_dlstm/input_to_hidden"]
        {'b': (16,), 'w': (3, 3, 16)}
    """

    def __init__(self, input_shape: Sequence[int], output_channels: int,
                 kernel_shape: int | Sequence[int], name: str | None = None):
        """Creates the core.

        Args:
            input_shape: Spatial shape of the inputs (no batch or channel axes).
            output_channels: Channels of the hidden and cell states.
            kernel_shape: Kernel shape of both convolutions.
            name: Module name; defaults to ``"conv1_dlstm"``.
        """
        super().__init__(1, input_shape, output_channels, kernel_shape, name=name)


class Conv2DLSTM(_ConvNDLSTM):
    """A 2-D convolutional LSTM.

    Example:
        >>> def f(x):
        ...     core = hk.Conv2DLSTM(input_shape=[4, 4], output_channels=2, kernel_shape=3)
        ...     return core(x, core.initial_state(1))
        >>> f = hk.transform(f)
        >>> x = jnp.ones([1, 4, 4, 3])
        >>> out, state = f.apply(f.init(0, x), None, x)
        >>> out.shape
        (1, 4, 4, 2)
    """

    def __init__(self, input_shape: Sequence[int], output_channels: int,
                 kernel_shape: int | Sequence[int], name: str | None = None):
        """Creates the core; see ``Conv1DLSTM``. ``name`` defaults to ``"conv2_dlstm"``."""
        super().__init__(2, input_shape, output_channels, kernel_shape, name=name)


class Conv3DLSTM(_ConvNDLSTM):
    """A 3-D convolutional LSTM.

    Example:
        >>> core_state = hk.transform(
        ...     lambda: hk.Conv3DLSTM([2, 3, 4], 5, kernel_shape=1).initial_state(2))
        >>> core_state.apply({}, None).hidden.shape
        (2, 2, 3, 4, 5)
    """

    def __init__(self, input_shape: Sequence[int], output_channels: int,
                 kernel_shape: int | Sequence[int], name: str | None = None):
        """Creates the core; see ``Conv1DLSTM``. ``name`` defaults to ``"conv3_dlstm"``."""
        super().__init__(3, input_shape, output_channels, kernel_shape, name=name)
