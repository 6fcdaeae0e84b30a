"""N-d convolutions: ``hk.ConvND`` and ``hk.Conv1D/2D/3D``, plus helpers shared by the variants.

Every variant computes its output with ``lax.conv_general_dilated`` (or ``lax.conv_transpose``)
using explicit dimension numbers, and takes ``kernel_shape``/``stride``/``rate`` as an int or
a sequence of 1 or ``num_spatial_dims`` values (API.md §3.2).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from hk_core._src.core import facade as hk
from hk_core._src.layers import data_format as data_format_lib
from hk_core._src.layers import errors
from hk_core._src.layers import initializers
from hk_core._src.layers import pad as pad_lib
from hk_core._src.layers import spatial_args
from hk_core._src.layers.errors import UnknownPaddingError  # importable here, as before
from hk_core._src.layers.initializers import InitializerFn
from hk_core._src.layers.pad import PaddingOrFn

_STRING_PADDINGS = ("SAME", "VALID")


def channel_index(data_format: str, module_path: str) -> int:
    """``get_channel_index`` with the module path in the error message."""
    try:
        return data_format_lib.get_channel_index(data_format)
    except errors.ConfigurationError as error:
        raise error.at(module_path) from None


def dimension_numbers(num_spatial_dims: int, channels_last: bool,
                      kernel_out_first: bool = False) -> lax.ConvDimensionNumbers:
    """Dimension numbers for inputs ``N<spatial>C``/``NC<spatial>`` and a ``<spatial>IO`` kernel.

    ``kernel_out_first=True`` describes a ``<spatial>OI`` kernel instead (transposed convs).
    """
    n = num_spatial_dims
    spatial = tuple(range(n))
    if channels_last:
        image = (0, n + 1) + tuple(range(1, n + 1))
    else:
        image = (0, 1) + tuple(range(2, n + 2))
    # lax orders a kernel spec as (output features, input features, spatial...).
    kernel = (n, n + 1) + spatial if kernel_out_first else (n + 1, n) + spatial
    return lax.ConvDimensionNumbers(lhs_spec=image, rhs_spec=kernel, out_spec=image)


def string_padding(padding: str, module_path: str, with_padfn: bool = True) -> str:
    """Upper-cases ``'same'``/``'valid'``; any other string is an error naming ``module_path``.

    Raises:
        UnknownPaddingError: for another string (a ``ValueError`` and a ``RuntimeError``).
    """
    upper = padding.upper()
    if upper not in _STRING_PADDINGS:
        others = "a (low, high) pair, a sequence of pairs or a padding function" if with_padfn \
            else "a (low, high) pair or a sequence of pairs"
        raise UnknownPaddingError(
            f"{module_path}: padding must be 'SAME', 'VALID', {others}, got {padding!r}.",
            module_path=module_path, argument="padding", expected="'SAME' or 'VALID'",
            got=padding)
    return upper


def resolve_padding(padding: PaddingOrFn, kernel_shape: Sequence[int], rate: Sequence[int], n: int,
                    module_path: str) -> str | tuple[tuple[int, int], ...]:
    """Returns a padding string unchanged (checked on call, as in Haiku, by ``string_padding``),
    or explicit ``(low, high)`` pairs per dim."""
    if isinstance(padding, str):
        return padding
    try:
        if pad_lib.is_padfn(padding):
            return pad_lib.create_from_padfn(padding, kernel_shape, rate, n)
        return pad_lib.create_from_tuple(padding, n)
    except TypeError as error:  # also a padding function's own TypeError, as in Haiku
        if not isinstance(error, errors.LayerError):
            error = errors.ArgumentTypeError(str(error), argument="padding", got=padding)
        raise error.at(module_path) from None


def check_num_spatial_dims(num_spatial_dims: int, module_path: str) -> None:
    """Raises ``ValueError`` (naming ``module_path``) unless ``num_spatial_dims`` is positive."""
    if num_spatial_dims <= 0:
        raise errors.ConfigurationError(
            f"{module_path}: num_spatial_dims must be a positive integer, got {num_spatial_dims}.",
            module_path=module_path, argument="num_spatial_dims", expected="a positive integer",
            got=num_spatial_dims)


def ensure_batched(inputs: jax.Array, num_spatial_dims: int, module_path: str,
                   kind: str) -> tuple[jax.Array, bool]:
    """Adds a leading batch axis to unbatched inputs; returns ``(inputs, was_unbatched)``."""
    unbatched_rank = num_spatial_dims + 1
    if inputs.ndim == unbatched_rank:
        return jnp.expand_dims(inputs, 0), True
    if inputs.ndim == unbatched_rank + 1:
        return inputs, False
    ranks = [unbatched_rank, unbatched_rank + 1]
    raise errors.InputShapeError(
        f"{module_path}: Input to {kind} needs to have rank in {ranks}, "
        f"but input has shape {inputs.shape} (rank {inputs.ndim}).",
        module_path=module_path, argument="inputs", expected=f"rank in {ranks}", got=inputs.shape)


def weight(w_shape: tuple[int, ...], dtype: DTypeLike, w_init: InitializerFn | None, fan_in: int,
           mask: ArrayLike | None,
           module_path: str) -> jax.Array:
    """Returns the parameter ``w``, times ``mask`` if given.

    ``w_init=None`` means ``TruncatedNormal(1/sqrt(fan_in))``.

    Raises:
        ValueError: if ``mask`` does not have the shape ``w_shape`` (naming ``module_path``).
    """
    if mask is not None and tuple(np.shape(mask)) != w_shape:
        raise errors.ConfigurationError(
            f"{module_path}: Mask needs to have the same shape as weights. Shapes are: mask "
            f"{tuple(np.shape(mask))}, weights {w_shape}.",
            module_path=module_path, argument="mask", expected=w_shape, got=tuple(np.shape(mask)))
    if w_init is None:
        w_init = initializers.TruncatedNormal(stddev=1.0 / np.sqrt(fan_in))
    w = hk.get_parameter("w", w_shape, dtype, init=w_init)
    if mask is not None:
        w = w * mask
    return w


def finish(out: jax.Array, unbatched: bool, *, with_bias: bool, b_init: InitializerFn,
           channel_index: int) -> jax.Array:
    """Adds the bias ``b`` (if ``with_bias``) to the batched ``out``, then drops an added
    batch axis.

    ``b`` is ``[C]`` for channels-last data (``channel_index == -1``) and ``[C, 1, ..., 1]``
    (one 1 per spatial dim) otherwise.
    """
    if with_bias:
        output_channels = out.shape[channel_index]
        if channel_index == -1:
            shape = (output_channels,)
        else:
            shape = (output_channels,) + (1,) * (out.ndim - 2)
        b = hk.get_parameter("b", shape, out.dtype, init=b_init)
        out = out + jnp.broadcast_to(b, out.shape)
    if unbatched:
        out = jnp.squeeze(out, axis=0)
    return out


class ConvND(hk.Module):
    """A convolution over ``num_spatial_dims`` spatial dimensions.

    Parameters: ``w [*kernel_shape, in_channels // feature_group_count, output_channels]``
    (default ``TruncatedNormal(1/sqrt(fan_in))`` with ``fan_in = prod(kernel_shape) * in /
    feature_group_count``) and ``b`` (zeros): ``[output_channels]`` for channels-last data,
    ``[output_channels, 1, ..., 1]`` for channels-first.

    Example:
        >>> f = hk.transform(lambda x: hk.ConvND(1, output_channels=4, kernel_shape=3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 10, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'conv_nd': {'b': (4,), 'w': (3, 3, 4)}}
        >>> f.apply(params, None, jnp.ones([2, 10, 3])).shape
        (2, 10, 4)
    """

    def __init__(
        self,
        num_spatial_dims: int,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: PaddingOrFn = "SAME",
        with_bias: bool = True,
        w_init: InitializerFn | None = None,
        b_init: InitializerFn | None = None,
        data_format: str = "channels_last",
        mask: ArrayLike | None = None,
        feature_group_count: int = 1,
        name: str | None = None,
    ):
        """Creates the layer; parameters are made on the first call.

        Args:
            num_spatial_dims: Number of spatial dimensions (positive).
            output_channels: Number of output channels.
            kernel_shape: Kernel size: an int or a sequence of 1 or ``num_spatial_dims`` ints.
            stride: Window strides, broadcast like ``kernel_shape``. Defaults to 1.
            rate: Kernel dilation, broadcast like ``kernel_shape``. Defaults to 1.
            padding: ``'SAME'`` or ``'VALID'`` (passed as such to ``lax``), one
                ``(low, high)`` pair for every dim, a sequence of ``num_spatial_dims`` pairs,
                a padding function (``hk.pad.same`` ...) or a sequence of them.
            with_bias: Whether to add a bias ``b``.
            w_init: Initializer of ``w``; default ``TruncatedNormal(1/sqrt(fan_in))``.
            b_init: Initializer of ``b``; default zeros.
            data_format: ``'channels_last'`` (default) or ``'channels_first'``, or a layout
                string such as ``'NHWC'``.
            mask: Optional array of ``w``'s shape, multiplied into ``w`` before use.
            feature_group_count: Number of input channel groups (grouped convolution).
            name: Module name; defaults to the snake-cased class name.

        Raises:
            ValueError: if ``num_spatial_dims`` is not positive or ``data_format`` is
                unknown (an unknown padding string fails on call).
            TypeError: if ``kernel_shape``, ``stride``, ``rate`` or ``padding`` has a
                length other than 1 or ``num_spatial_dims``.
        """
        super().__init__(name=name)
        module_path = self.module_name
        check_num_spatial_dims(num_spatial_dims, module_path)
        n = num_spatial_dims
        self.num_spatial_dims = n
        self.output_channels = output_channels
        self.kernel_shape = spatial_args.replicate(kernel_shape, n, "kernel_shape", module_path)
        self.stride = spatial_args.replicate(stride, n, "stride", module_path)
        self.kernel_dilation = spatial_args.replicate(rate, n, "rate", module_path)
        self.lhs_dilation = (1,) * n
        # Haiku keeps a padding string upper-cased and an unknown one fails only on call.
        if isinstance(padding, str):
            padding = padding.upper()
        self.padding = resolve_padding(padding, self.kernel_shape, self.kernel_dilation, n,
                                       module_path)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init if b_init is not None else jnp.zeros
        self.data_format = data_format
        self.channel_index = channel_index(data_format, module_path)
        self.dimension_numbers = dimension_numbers(n, self.channel_index == -1)
        self.mask = mask
        self.feature_group_count = feature_group_count

    def __call__(self, inputs: jax.Array, *, precision: lax.Precision | None = None) -> jax.Array:
        """Convolves ``inputs`` with ``w`` and adds ``b``.

        Args:
            inputs: ``[N, *spatial, C]`` (channels-last) or ``[N, C, *spatial]``; the batch
                axis may be left out, in which case the output has none either.
            precision: Passed to ``lax.conv_general_dilated``.

        Returns:
            The output, with ``output_channels`` channels.

        Raises:
            ValueError: if the rank of ``inputs`` is not ``num_spatial_dims + 1`` or ``+ 2``,
                if the channels do not divide by ``feature_group_count``, or if ``mask``
                does not have the shape of ``w``; the message names this module's path.
            UnknownPaddingError: if ``padding`` is a string other than ``'SAME'``/``'VALID'``
                (a ``ValueError`` and, like Haiku's error, a ``RuntimeError``).
        """
        module_path = self.module_name
        inputs, unbatched = ensure_batched(inputs, self.num_spatial_dims, module_path, "ConvND")
        in_channels = inputs.shape[self.channel_index]
        groups = self.feature_group_count
        if in_channels % groups:
            raise errors.InputShapeError(
                f"{module_path}: input channels ({in_channels}, input shape {inputs.shape}) must "
                f"be divisible by feature_group_count={groups}.", module_path=module_path,
                argument="inputs", expected=f"channels divisible by {groups}", got=inputs.shape)
        w_shape = self.kernel_shape + (in_channels // groups, self.output_channels)
        w = weight(w_shape, inputs.dtype, self.w_init, int(np.prod(w_shape[:-1])), self.mask,
                   module_path)
        padding = self.padding
        if isinstance(padding, str):
            padding = string_padding(padding, module_path)
        out = lax.conv_general_dilated(
            inputs, w, window_strides=self.stride, padding=padding,
            lhs_dilation=self.lhs_dilation, rhs_dilation=self.kernel_dilation,
            dimension_numbers=self.dimension_numbers, feature_group_count=groups,
            precision=precision)
        return finish(out, unbatched, with_bias=self.with_bias, b_init=self.b_init,
                      channel_index=self.channel_index)


class Conv1D(ConvND):
    """A 1-D convolution (``ConvND`` with one spatial dimension, ``data_format='NWC'``).

    Example:
        >>> f = hk.transform(lambda x: hk.Conv1D(4, kernel_shape=3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 10, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'conv1_d': {'b': (4,), 'w': (3, 3, 4)}}
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, rate: int | Sequence[int] = 1,
                 padding: PaddingOrFn = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NWC", mask: ArrayLike | None = None,
                 feature_group_count: int = 1, name: str | None = None):
        """Creates the layer; see ``ConvND`` for the arguments. ``data_format``: NWC or NCW."""
        super().__init__(1, output_channels, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, mask=mask,
                         feature_group_count=feature_group_count, name=name)


class Conv2D(ConvND):
    """A 2-D convolution (``ConvND`` with two spatial dimensions, ``data_format='NHWC'``).

    Example:
        >>> f = hk.transform(lambda x: hk.Conv2D(5, kernel_shape=3, stride=2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 8, 8, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'conv2_d': {'b': (5,), 'w': (3, 3, 3, 5)}}
        >>> f.apply(params, None, jnp.ones([2, 8, 8, 3])).shape
        (2, 4, 4, 5)
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, rate: int | Sequence[int] = 1,
                 padding: PaddingOrFn = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NHWC", mask: ArrayLike | None = None,
                 feature_group_count: int = 1, name: str | None = None):
        """Creates the layer; see ``ConvND`` for the arguments. ``data_format``: NHWC or NCHW."""
        super().__init__(2, output_channels, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, mask=mask,
                         feature_group_count=feature_group_count, name=name)


class Conv3D(ConvND):
    """A 3-D convolution (``ConvND`` with three spatial dimensions, ``data_format='NDHWC'``).

    Example:
        >>> f = hk.transform(lambda x: hk.Conv3D(2, kernel_shape=(1, 2, 3))(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 4, 4, 4, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'conv3_d': {'b': (2,), 'w': (1, 2, 3, 3, 2)}}
    """

    def __init__(self, output_channels: int, kernel_shape: int | Sequence[int],
                 stride: int | Sequence[int] = 1, rate: int | Sequence[int] = 1,
                 padding: PaddingOrFn = "SAME", with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 data_format: str = "NDHWC", mask: ArrayLike | None = None,
                 feature_group_count: int = 1, name: str | None = None):
        """Creates the layer; see ``ConvND`` for the arguments. ``data_format``: NDHWC/NCDHW."""
        super().__init__(3, output_channels, kernel_shape, stride=stride, rate=rate,
                         padding=padding, with_bias=with_bias, w_init=w_init, b_init=b_init,
                         data_format=data_format, mask=mask,
                         feature_group_count=feature_group_count, name=name)
