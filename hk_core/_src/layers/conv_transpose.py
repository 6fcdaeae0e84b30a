"""Transposed convolutions: ``hk.ConvNDTranspose`` and ``hk.Conv1D/2D/3DTranspose``.

The kernel is stored as ``[*kernel_shape, output_channels, in_channels]`` and used without a
flip by ``lax.conv_transpose``. An ``output_shape`` is turned into explicit padding so the
output has exactly that spatial size (API.md §3.2).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from hk_core._src.core import facade as hk
from hk_core._src.layers import conv
from hk_core._src.layers import errors
from hk_core._src.layers import pad as pad_lib
from hk_core._src.layers import spatial_args
from hk_core._src.layers.initializers import InitializerFn
from hk_core._src.layers.pad import Padding


def _explicit_padding(size_in: int, size_out: int, kernel: int, stride: int, padding: str,
                      module_path: str) -> tuple[int, int]:
    """Padding for ``lax.conv_transpose`` that maps ``size_in`` to exactly ``size_out``."""
    if padding == "VALID":
        expected_in = (size_out - kernel + stride) // stride
        before = 0
    else:
        expected_in = (size_out + stride - 1) // stride
        before = max(0, (size_in - 1) * stride + kernel - size_out) // 2
    if size_in != expected_in:
        raise errors.InputShapeError(
            f"{module_path}: The expected input size {expected_in} doesn't match the actual "
            f"input size {size_in} for output_shape size {size_out}, kernel {kernel}, stride "
            f"{stride} and {padding} padding.", module_path=module_path, argument="inputs",
            expected=f"spatial size {expected_in}", got=size_in)
    # The stride dilates the input to (in - 1) * s + 1 elements; a kernel of size k then
    # needs out + k - 1 elements in total to produce `out` outputs.
    low = kernel - 1 - before
    high = (size_out + kernel - 1) - ((size_in - 1) * stride + 1) - low
    return (low, high)


class ConvNDTranspose(hk.Module):
    """A transposed convolution over ``num_spatial_dims`` spatial dimensions.

    Parameters: ``w [*kernel_shape, output_channels, in_channels]`` (default
    ``TruncatedNormal(1/sqrt(prod(kernel_shape) * in_channels))``) and ``b`` (zeros), shaped as
    for ``ConvND``. With ``'SAME'`` padding the output size is ``in * stride``; with
    ``'VALID'`` it is ``in * stride + max(kernel - stride, 0)``; ``output_shape`` picks it.

    Example:
        >>> f = hk.transform(lambda x: hk.ConvNDTranspose(1, 4, kernel_shape=3, stride=2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 5, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'conv_nd_transpose': {'b': (4,), 'w': (3, 4, 3)}}
        >>> f.apply(params, None, jnp.ones([2, 5, 3])).shape
        (2, 10, 4)
    """

    def __init__(
        self,
        num_spatial_dims: int,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        output_shape: int | Sequence[int] | None = None,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: InitializerFn | None = None,
        b_init: InitializerFn | None = None,
        data_format: str = "channels_last",
        mask: ArrayLike | None = None,
        name: str | None = None,
    ):
        """Creates the layer; parameters are made on the first call.

        Args:
            num_spatial_dims: Number of spatial dimensions (positive).
            output_channels: Number of output channels.
            kernel_shape: Kernel size: an int or a sequence of 1 or ``num_spatial_dims`` ints.
            stride: Strides (input dilation), broadcast like ``kernel_shape``.
            output_shape: Spatial output size, broadcast like ``kernel_shape``; needs
                ``'SAME'`` or ``'VALID'`` padding. Default: decided by the padding.
            padding: ``'SAME'``, ``'VALID'``, one ``(low, high)`` pair or one per dim.
            with_bias: Whether to add a bias ``b``.
            w_init: Initializer of ``w``; default ``TruncatedNormal(1/sqrt(fan_in))``.
            b_init: Initializer of ``b``; default zeros.
            data_format: ``'channels_last'`` (default), ``'channels_first'`` or a layout
                string such as ``'NHWC'``.
            mask: Optional array of ``w``'s shape, multiplied into ``w`` before use.
            name: Module name; defaults to the snake-cased class name.

        Raises:
            ValueError: if ``num_spatial_dims`` is not positive, ``data_format`` is unknown, or
                ``output_shape`` is given with explicit padding (an unknown padding string
                fails on call, as in Haiku).
            TypeError: if ``kernel_shape``, ``stride``, ``output_shape`` or ``padding`` has
                a length other than 1 or ``num_spatial_dims``, or ``padding`` is a function.
        """
        super().__init__(name=name)
        module_path = self.module_name
        conv.check_num_spatial_dims(num_spatial_dims, module_path)
        n = num_spatial_dims
        self.num_spatial_dims = n
        self.output_channels = output_channels
        self.kernel_shape = spatial_args.replicate(kernel_shape, n, "kernel_shape", module_path)
        self.stride = spatial_args.replicate(stride, n, "stride", module_path)
        self.output_shape = output_shape
        if output_shape is not None:
            self.output_shape = spatial_args.replicate(
                output_shape, n, "output_shape", module_path)
            if not isinstance(padding, str):
                raise errors.ConfigurationError(
                    f"{module_path}: When specifying output_shape, ensure that padding is "
                    f"'VALID' or 'SAME', got padding={padding!r}.", module_path=module_path,
                    argument="padding", expected="'VALID' or 'SAME'", got=padding)
        if pad_lib.is_padfn(padding):
            raise errors.ArgumentTypeError(
                f"{module_path}: ConvNDTranspose takes padding 'SAME', 'VALID' or (low, high) "
                f"pairs, not a padding function (got {padding!r}).", module_path=module_path,
                argument="padding", expected="'SAME', 'VALID' or (low, high) pairs",
                got=padding)
        # Haiku keeps padding as given (a string's case too); strings are checked on call.
        self.padding = padding
        self._padding = conv.resolve_padding(padding, self.kernel_shape, (1,) * n, n, module_path)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init if b_init is not None else jnp.zeros
        self.data_format = data_format
        self.channel_index = conv.channel_index(data_format, module_path)
        self.dimension_numbers = conv.dimension_numbers(
            n, self.channel_index == -1, kernel_out_first=True)
        self.mask = mask

    def __call__(self, inputs: jax.Array, *, precision: lax.Precision | None = None) -> jax.Array:
        """Applies the transposed convolution and adds ``b``.

        Args:
            inputs: ``[N, *spatial, C]`` (channels-last) or ``[N, C, *spatial]``; the batch
                axis may be left out, in which case the output has none either.
            precision: Passed to ``lax.conv_transpose``.

        Returns:
            The output, with ``output_channels`` channels.

        Raises:
            ValueError: if the rank of ``inputs`` is not ``num_spatial_dims + 1`` or ``+ 2``,
                ``mask`` does not have the shape of ``w``, or the input size cannot produce
                ``output_shape``; the message names this module's path.
            UnknownPaddingError: if ``padding`` is a string other than ``'SAME'``/``'VALID'``
                (a ``ValueError`` and, like Haiku's error, a ``RuntimeError``).
        """
        module_path = self.module_name
        inputs, unbatched = conv.ensure_batched(
            inputs, self.num_spatial_dims, module_path, "ConvNDTranspose")
        in_channels = inputs.shape[self.channel_index]
        w_shape = self.kernel_shape + (self.output_channels, in_channels)
        fan_in = int(np.prod(self.kernel_shape)) * in_channels
        w = conv.weight(w_shape, inputs.dtype, self.w_init, fan_in, self.mask, module_path)
        padding = self._padding
        if isinstance(padding, str):
            padding = conv.string_padding(padding, module_path, with_padfn=False)
        if self.output_shape is not None:
            channels_last = self.channel_index == -1
            spatial_in = inputs.shape[1:-1] if channels_last else inputs.shape[2:]
            padding = tuple(
                _explicit_padding(size_in, size_out, k, s, padding, module_path)
                for size_in, size_out, k, s in zip(
                    spatial_in, self.output_shape, self.kernel_shape, self.stride))
        out = lax.conv_transpose(
            inputs, w, strides=self.stride, padding=padding,
            dimension_numbers=self.dimension_numbers, precision=precision)
        return conv.finish(out, unbatched, with_bias=self.with_bias, b_init=self.b_init,
                           channel_index=self.channel_index)


class Conv1DTranspose(ConvNDTranspose):
    """A 1-D transposed convolution (``data_format='NWC'``); see ``ConvNDTranspose``.

    Example:
        >>> f = hk.transform(lambda x: hk.Conv1DTranspose(4, kernel_shape=3, stride=2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 5, 3]))
        >>> f.apply(params, None, jnp.ones([2, 5, 3])).shape
        (2, 10, 4)
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, output_shape: int | Sequence[int] | None = None,
                 padding: Padding = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NWC", mask: ArrayLike | None = None, name: str | None = None):
        """Creates the layer; see ``ConvNDTranspose``. ``data_format``: NWC or NCW."""
        super().__init__(1, output_channels, kernel_shape, stride=stride,
                         output_shape=output_shape, padding=padding, with_bias=with_bias,
                         w_init=w_init, b_init=b_init, data_format=data_format, mask=mask,
                         name=name)


class Conv2DTranspose(ConvNDTranspose):
    """A 2-D transposed convolution (``data_format='NHWC'``); see ``ConvNDTranspose``.

    Example:
        >>> f = hk.transform(lambda x: hk.Conv2DTranspose(4, kernel_shape=3, stride=2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 4, 4, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'conv2_d_transpose': {'b': (4,), 'w': (3, 3, 4, 3)}}
        >>> f.apply(params, None, jnp.ones([1, 4, 4, 3])).shape
        (1, 8, 8, 4)
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, output_shape: int | Sequence[int] | None = None,
                 padding: Padding = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NHWC", mask: ArrayLike | None = None, name: str | None = None):
        """Creates the layer; see ``ConvNDTranspose``. ``data_format``: NHWC or NCHW."""
        super().__init__(2, output_channels, kernel_shape, stride=stride,
                         output_shape=output_shape, padding=padding, with_bias=with_bias,
                         w_init=w_init, b_init=b_init, data_format=data_format, mask=mask,
                         name=name)


class Conv3DTranspose(ConvNDTranspose):
    """A 3-D transposed convolution (``data_format='NDHWC'``); see ``ConvNDTranspose``.

    Example:
        >>> f = hk.transform(lambda x: hk.Conv3DTranspose(2, kernel_shape=2, stride=2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2, 2, 2, 3]))
        >>> f.apply(params, None, jnp.ones([1, 2, 2, 2, 3])).shape
        (1, 4, 4, 4, 2)
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, output_shape: int | Sequence[int] | None = None,
                 padding: Padding = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NDHWC", mask: ArrayLike | None = None,
                 name: str | None = None):
        """Creates the layer; see ``ConvNDTranspose``. ``data_format``: NDHWC or NCDHW."""
        super().__init__(3, output_channels, kernel_shape, stride=stride,
                         output_shape=output_shape, padding=padding, with_bias=with_bias,
                         w_init=w_init, b_init=b_init, data_format=data_format, mask=mask,
                         name=name)
