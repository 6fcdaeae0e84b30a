"""Pooling: ``hk.max_pool``, ``hk.avg_pool`` and their module forms ``hk.MaxPool``/``AvgPool``.

Windows and strides are given per input dimension. An int is spread over every dimension but
the leading (batch) one and the channel axis; a shorter sequence covers the trailing
dimensions (API.md §3.6).
"""

import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors


_PADDINGS = ("SAME", "VALID")


def _check_padding(padding: str, module_path: str) -> None:
    if padding not in _PADDINGS:
        raise errors.ConfigurationError(
            f"{module_path}: Invalid padding {padding!r}, must be 'SAME' or 'VALID' (upper case).",
            module_path=module_path, argument="padding", expected="'SAME' or 'VALID'",
            got=padding)


def _warn_if_int(window_shape, strides) -> None:
    # An int size pools every non-batch, non-channel axis; under vmap the batch axis is gone
    # and the int then covers the wrong axes, hence the deprecation.
    def is_unsafe(size):
        return isinstance(size, int) and size != 1

    if is_unsafe(window_shape) or is_unsafe(strides):
        warnings.warn(
            "Passing an int as window_shape or strides to pooling is deprecated (it gives wrong "
            "shapes under vmap); pass a sequence with one entry per input dimension instead.",
            DeprecationWarning, stacklevel=4)


def _prepare(value: jax.typing.ArrayLike, window_shape: int | Sequence[int],
             strides: int | Sequence[int], padding: str, channel_axis: int | None,
             module_path: str) -> tuple[jax.Array, tuple[int, ...], tuple[int, ...]]:
    """Checks the arguments of a pooling function; returns the array, window and strides."""
    _check_padding(padding, module_path)
    value = jnp.asarray(value)
    _warn_if_int(window_shape, strides)
    window = _full_shape(value, window_shape, channel_axis, "window_shape", module_path)
    strides = _full_shape(value, strides, channel_axis, "strides", module_path)
    return value, window, strides


def _full_shape(x: jax.Array, size: int | Sequence[int], channel_axis: int | None,
                name: str, module_path: str) -> tuple[int, ...]:
    """Expands ``size`` to one entry per dimension of ``x``."""
    ndim = x.ndim
    if isinstance(size, int):
        if channel_axis and not 0 <= abs(channel_axis) < ndim:
            raise errors.ConfigurationError(
                f"{module_path}: Invalid channel axis {channel_axis} for input of shape "
                f"{x.shape} (rank {ndim}).", module_path=module_path, argument="channel_axis",
                expected=f"an axis of an input of rank {ndim}", got=channel_axis)
        if channel_axis and channel_axis < 0:
            channel_axis += ndim
        return (1,) + tuple(1 if d == channel_axis else size for d in range(1, ndim))
    size = tuple(size)
    if len(size) > ndim:
        raise errors.ConfigurationError(
            f"{module_path}: {name} {size} has {len(size)} entries, more than the rank {ndim} of "
            f"the input of shape {x.shape}.", module_path=module_path, argument=name,
            expected=f"at most {ndim} entries", got=size)
    return (1,) * (ndim - len(size)) + size


def _lowest(dtype) -> np.ndarray:
    """The identity of ``max`` for ``dtype`` (-inf for floats, the minimum for ints)."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return np.array(-np.inf, dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        return np.array(jnp.iinfo(dtype).min, dtype)
    return np.array(False, dtype)


def max_pool(value: jax.typing.ArrayLike, window_shape: int | Sequence[int],
             strides: int | Sequence[int], padding: str,
             channel_axis: int | None = -1) -> jax.Array:
    """Takes the maximum over each window of ``value``.

    Args:
        value: The input array, e.g. ``[N, H, W, C]``.
        window_shape: Window size: a sequence with one entry per dimension (a shorter one
            covers the trailing dims), or an int for every non-batch, non-channel dim
            (deprecated).
        strides: Strides, in the same forms as ``window_shape``.
        padding: ``'SAME'`` or ``'VALID'``.
        channel_axis: The axis an int ``window_shape``/``strides`` leaves alone; ``None`` or
            ``0`` pools every non-leading axis.

    Returns:
        The pooled array.

    Raises:
        ValueError: for a padding other than ``'SAME'``/``'VALID'`` or a channel axis out of
            range.

    Example:
        >>> x = jnp.arange(16.0).reshape([1, 4, 4, 1])
        >>> hk.max_pool(x, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")[0, :, :, 0]
        Array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    value, window, strides = _prepare(
        value, window_shape, strides, padding, channel_axis, "max_pool")
    return lax.reduce_window(value, _lowest(value.dtype), lax.max, window, strides, padding)


def _window_counts(shape: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...],
                   padding: str) -> np.ndarray:
    """How many non-padding elements each SAME window covers, as a broadcastable array."""
    pads = lax.padtype_to_pads(shape, window, strides, padding)
    counts = np.ones([1] * len(shape), np.float64)
    for axis, (size, w, s, (low, high)) in enumerate(zip(shape, window, strides, pads)):
        starts = np.arange(0, size + low + high - w + 1, s) - low
        per_axis = np.minimum(starts + w, size) - np.maximum(starts, 0)
        counts = counts * per_axis.reshape([-1 if d == axis else 1 for d in range(len(shape))])
    return counts


def avg_pool(value: jax.typing.ArrayLike, window_shape: int | Sequence[int],
             strides: int | Sequence[int], padding: str,
             channel_axis: int | None = -1) -> jax.Array:
    """Averages over each window of ``value``; ``'SAME'`` edge windows skip the padding.

    Args:
        value: The input array, e.g. ``[N, H, W, C]``.
        window_shape: Window size, as for ``hk.max_pool``.
        strides: Strides, as for ``hk.max_pool``.
        padding: ``'SAME'`` or ``'VALID'``. With ``'SAME'`` each window is averaged over the
            input elements it covers only.
        channel_axis: As for ``hk.max_pool``.

    Returns:
        The pooled array.

    Raises:
        ValueError: for a padding other than ``'SAME'``/``'VALID'`` or a channel axis out of
            range.

    Example:
        >>> x = jnp.array([[1.0], [2.0], [3.0]])[None]  # [1, 3, 1]
        >>> hk.avg_pool(x, (1, 2, 1), (1, 2, 1), "SAME")[0, :, 0]
        Array([1.5, 3. ], dtype=float32)
    """
    value, window, strides = _prepare(
        value, window_shape, strides, padding, channel_axis, "avg_pool")
    pooled = lax.reduce_window(value, np.array(0, value.dtype), lax.add, window, strides,
                               padding)
    if padding == "VALID":
        return pooled / np.prod(window)
    counts = _window_counts(value.shape, window, strides, padding)
    count_dtype = pooled.dtype if jnp.issubdtype(pooled.dtype, jnp.inexact) else jnp.float32
    return pooled / jnp.asarray(counts, count_dtype)


class _Pool(hk.Module):
    """Stores a pooling configuration, checking the padding at construction."""

    def __init__(self, window_shape: int | Sequence[int], strides: int | Sequence[int],
                 padding: str, channel_axis: int | None = -1, name: str | None = None):
        """Stores the pooling configuration.

        Args:
            window_shape: See ``hk.max_pool``.
            strides: See ``hk.max_pool``.
            padding: ``'SAME'`` or ``'VALID'``.
            channel_axis: See ``hk.max_pool``.
            name: Module name; defaults to the snake-cased class name (``'max_pool'``,
                ``'avg_pool'``).

        Raises:
            ValueError: for a padding other than ``'SAME'``/``'VALID'``.
        """
        super().__init__(name=name)
        _check_padding(padding, self.module_name)
        self.window_shape = window_shape
        self.strides = strides
        self.padding = padding
        self.channel_axis = channel_axis


class MaxPool(_Pool):
    """Module form of ``hk.max_pool``.

    Example:
        >>> f = hk.transform(lambda x: hk.MaxPool((1, 2, 2, 1), (1, 2, 2, 1), "SAME")(x))
        >>> f.apply({}, None, jnp.ones([1, 5, 5, 3])).shape
        (1, 3, 3, 3)
    """

    def __call__(self, value: jax.Array) -> jax.Array:
        """Returns ``hk.max_pool(value, ...)`` with the stored configuration."""
        return max_pool(value, self.window_shape, self.strides, self.padding, self.channel_axis)


class AvgPool(_Pool):
    """Module form of ``hk.avg_pool``.

    Example:
        >>> f = hk.transform(lambda x: hk.AvgPool((1, 2, 2, 1), (1, 2, 2, 1), "VALID")(x))
        >>> f.apply({}, None, jnp.ones([1, 4, 4, 3])).shape
        (1, 2, 2, 3)
    """

    def __call__(self, value: jax.Array) -> jax.Array:
        """Returns ``hk.avg_pool(value, ...)`` with the stored configuration."""
        return avg_pool(value, self.window_shape, self.strides, self.padding, self.channel_axis)
