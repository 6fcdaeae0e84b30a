"""Depthwise convolutions: ``hk.DepthwiseConv1D/2D/3D`` and ``hk.SeparableDepthwiseConv2D``.

Each input channel is convolved with its own ``channel_multiplier`` filters
(``feature_group_count = in_channels``), so ``w`` is ``[*kernel_shape, 1, in * multiplier]``.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from hk_core._src.core import facade as hk
from hk_core._src.layers import conv
from hk_core._src.layers import spatial_args
from hk_core._src.layers.initializers import InitializerFn
from hk_core._src.layers.pad import PaddingOrFn


class DepthwiseConvND(hk.Module):
    """A depthwise convolution over ``num_spatial_dims`` spatial dimensions.

    Parameters: ``w [*kernel_shape, 1, in_channels * channel_multiplier]`` (default
    ``TruncatedNormal(1/sqrt(prod(kernel_shape)))``) and ``b [in_channels * channel_multiplier]``
    (zeros; ``[C, 1, ..., 1]`` for channels-first data).

    Example:
        >>> f = hk.transform(lambda x: hk.DepthwiseConv1D(2, kernel_shape=3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 6, 4]))
        >>> jax.tree.map(jnp.shape, params)
        {'depthwise_conv1_d': {'b': (8,), 'w': (3, 1, 8)}}
    """

    def __init__(
        self,
        num_spatial_dims: int,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: PaddingOrFn = "SAME",
        with_bias: bool = True,
        w_init: InitializerFn | None = None,
        b_init: InitializerFn | None = None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        """Creates the layer; parameters are made on the first call.

        Args:
            num_spatial_dims: Number of spatial dimensions (positive).
            channel_multiplier: Output channels per input channel.
            kernel_shape: Kernel size: an int or a sequence of 1 or ``num_spatial_dims`` ints.
            stride: Window strides, broadcast like ``kernel_shape``.
            rate: Kernel dilation, broadcast like ``kernel_shape``.
            padding: As for ``hk.ConvND``: ``'SAME'``, ``'VALID'``, pairs or padding functions.
            with_bias: Whether to add a bias ``b``.
            w_init: Initializer of ``w``; default ``TruncatedNormal(1/sqrt(prod(kernel)))``.
            b_init: Initializer of ``b``; default zeros.
            data_format: ``'channels_last'``, ``'channels_first'`` or a layout string.
            name: Module name; defaults to the snake-cased class name.

        Raises:
            ValueError: for a non-positive ``num_spatial_dims`` or an unknown data format (an
                unknown padding string fails on call, as in Haiku).
            TypeError: if ``kernel_shape``, ``stride``, ``rate`` or ``padding`` has a length
                other than 1 or ``num_spatial_dims``.
        """
        super().__init__(name=name)
        module_path = self.module_name
        conv.check_num_spatial_dims(num_spatial_dims, module_path)
        n = num_spatial_dims
        self.num_spatial_dims = n
        self.channel_multiplier = channel_multiplier
        self.kernel_shape = spatial_args.replicate(kernel_shape, n, "kernel_shape", module_path)
        self.stride = spatial_args.replicate(stride, n, "stride", module_path)
        self.lhs_dilation = (1,) * n
        self.rhs_dilation = spatial_args.replicate(rate, n, "rate", module_path)
        # Haiku keeps padding as given (a string's case, a padding function); hk_core also
        # accepts padding functions and pairs, resolved once here. Strings are checked on call.
        self.padding = padding
        self._padding = conv.resolve_padding(
            padding, self.kernel_shape, self.rhs_dilation, n, module_path)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init if b_init is not None else jnp.zeros
        self.data_format = data_format
        self.channel_index = conv.channel_index(data_format, module_path)
        self._dimension_numbers = conv.dimension_numbers(n, self.channel_index == -1)
        # Haiku's public layout triple, e.g. ('NHWC', 'HWIO', 'NHWC').
        spatial = "".join(c for c in data_format if c not in "NC")
        if len(spatial) != n:  # 'channels_last' and the like
            spatial = "DHW"[-n:]
        self.dn = (data_format, f"{spatial}IO", data_format)

    def __call__(self, inputs: jax.Array, *, precision: lax.Precision | None = None) -> jax.Array:
        """Convolves each channel of ``inputs`` separately and adds ``b``.

        Args:
            inputs: ``[N, *spatial, C]`` (channels-last) or ``[N, C, *spatial]``; the batch
                axis may be left out, in which case the output has none either.
            precision: Passed to ``lax.conv_general_dilated``.

        Returns:
            The output, with ``C * channel_multiplier`` channels.

        Raises:
            ValueError: if the rank of ``inputs`` is not ``num_spatial_dims + 1`` or ``+ 2``
                (the message names this module's path).
            UnknownPaddingError: if ``padding`` is a string other than ``'SAME'``/``'VALID'``
                (a ``ValueError`` and, like Haiku's error, a ``RuntimeError``).
        """
        module_path = self.module_name
        n = self.num_spatial_dims
        inputs, unbatched = conv.ensure_batched(inputs, n, module_path, "DepthwiseConvND")
        in_channels = inputs.shape[self.channel_index]
        out_channels = in_channels * self.channel_multiplier
        w_shape = self.kernel_shape + (1, out_channels)
        fan_in = int(np.prod(self.kernel_shape))
        w = conv.weight(w_shape, inputs.dtype, self.w_init, fan_in, None, module_path)
        padding = self._padding
        if isinstance(padding, str):
            padding = conv.string_padding(padding, module_path)
        out = lax.conv_general_dilated(
            inputs, w, window_strides=self.stride, padding=padding,
            lhs_dilation=self.lhs_dilation, rhs_dilation=self.rhs_dilation,
            dimension_numbers=self._dimension_numbers, feature_group_count=in_channels,
            precision=precision)
        return conv.finish(out, unbatched, with_bias=self.with_bias, b_init=self.b_init,
                           channel_index=self.channel_index)


class DepthwiseConv1D(DepthwiseConvND):
    """A 1-D depthwise convolution (``data_format='NWC'``); see ``DepthwiseConvND``.

    Example:
        >>> f = hk.transform(lambda x: hk.DepthwiseConv1D(1, kernel_shape=3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 6, 4]))
        >>> f.apply(params, None, jnp.ones([1, 6, 4])).shape
        (1, 6, 4)
    """

    def __init__(self, channel_multiplier: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, rate: int | Sequence[int] = 1,
                 padding: PaddingOrFn = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NWC", name: str | None = None):
        """Creates the layer; see ``DepthwiseConvND``. ``data_format``: NWC or NCW."""
        super().__init__(1, channel_multiplier, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, name=name)


class DepthwiseConv2D(DepthwiseConvND):
    """A 2-D depthwise convolution (``data_format='NHWC'``); see ``DepthwiseConvND``.

    Example:
        >>> f = hk.transform(lambda x: hk.DepthwiseConv2D(2, kernel_shape=3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 5, 5, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'depthwise_conv2_d': {'b': (6,), 'w': (3, 3, 1, 6)}}
    """

    def __init__(self, channel_multiplier: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, rate: int | Sequence[int] = 1,
                 padding: PaddingOrFn = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NHWC", name: str | None = None):
        """Creates the layer; see ``DepthwiseConvND``. ``data_format``: NHWC or NCHW."""
        super().__init__(2, channel_multiplier, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, name=name)


class DepthwiseConv3D(DepthwiseConvND):
    """A 3-D depthwise convolution (``data_format='NDHWC'``); see ``DepthwiseConvND``.

    Example:
        >>> f = hk.transform(lambda x: hk.DepthwiseConv3D(1, kernel_shape=2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3, 3, 3, 2]))
        >>> jax.tree.map(jnp.shape, params)
        {'depthwise_conv3_d': {'b': (2,), 'w': (2, 2, 2, 1, 2)}}
    """

    def __init__(self, channel_multiplier: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, rate: int | Sequence[int] = 1,
                 padding: PaddingOrFn = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NDHWC", name: str | None = None):
        """Creates the layer; see ``DepthwiseConvND``. ``data_format``: NDHWC or NCDHW."""
        super().__init__(3, channel_multiplier, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, name=name)


class SeparableDepthwiseConv2D(hk.Module):
    """A 2-D depthwise convolution split into a ``[kh, 1]`` and a ``[1, kw]`` depthwise conv.

    Submodules (built in the constructor): ``depthwise_conv2_d`` (``channel_multiplier``,
    kernel ``[kh, 1]``, the whole ``stride``, no bias) and ``depthwise_conv2_d_1`` (multiplier
    1, kernel ``[1, kw]``, stride 1, with the bias).

    Example:
        >>> f = hk.transform(lambda x: hk.SeparableDepthwiseConv2D(2, kernel_shape=3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 5, 5, 3]))
        >>> jax.tree.map(jnp.shape, params)  # doctest: +NORMALIZE_WHITESPACE
        {'separable_depthwise_conv2_d/~/depthwise_conv2_d': {'w': (3, 1, 1, 6)},
         'separable_depthwise_conv2_d/~/depthwise_conv2_d_1': {'b': (6,), 'w': (1, 3, 1, 6)}}
    """

    def __init__(self, channel_multiplier: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: PaddingOrFn = "SAME",
                 with_bias: bool = True, w_init: InitializerFn | None = None,
                 b_init: InitializerFn | None = None, data_format: str = "NHWC",
                 name: str | None = None):
        """Creates the two depthwise convolutions.

        Args:
            channel_multiplier: Output channels per input channel (applied by the first conv).
            kernel_shape: ``(kh, kw)``, or an int or length-1 sequence used for both.
            stride: Strides, all applied by the first conv.
            padding: As for ``hk.DepthwiseConv2D``; used by both convs.
            with_bias: Whether the second conv adds a bias.
            w_init: Initializer of both ``w``; default ``TruncatedNormal(1/sqrt(prod(kernel)))``.
            b_init: Initializer of the bias; default zeros.
            data_format: ``'NHWC'`` (default) or ``'NCHW'``.
            name: Module name; defaults to ``'separable_depthwise_conv2_d'``.
        """
        super().__init__(name=name)
        kernel_h, kernel_w = spatial_args.replicate(
            kernel_shape, 2, "kernel_shape", self.module_name)
        self._conv1 = DepthwiseConv2D(
            channel_multiplier, [kernel_h, 1], stride=stride, padding=padding,
            with_bias=False, w_init=w_init, data_format=data_format)
        self._conv2 = DepthwiseConv2D(
            1, [1, kernel_w], stride=1, padding=padding, with_bias=with_bias, w_init=w_init,
            b_init=b_init, data_format=data_format)

    def __call__(self, inputs: jax.Array, *, precision: lax.Precision | None = None) -> jax.Array:
        """Applies the ``[kh, 1]`` conv, then the ``[1, kw]`` conv.

        Args:
            inputs: ``[N, H, W, C]`` (or ``[N, C, H, W]`` for NCHW), batch axis optional.
            precision: Passed to both convolutions.

        Returns:
            The output, with ``C * channel_multiplier`` channels.
        """
        return self._conv2(self._conv1(inputs, precision=precision), precision=precision)
