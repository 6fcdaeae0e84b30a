"""Broadcasts per-spatial-dimension arguments (``kernel_shape``, ``stride``…) to ``n`` values."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from hk_core._src.layers import errors


def replicate(value: Any, n: int, name: str, module_path: str = "") -> tuple:
    """Returns ``value`` as a tuple of ``n`` entries.

    An int (or any non-sequence) or a length-1 sequence is repeated ``n`` times; a sequence of
    length ``n`` is kept.

    Args:
        value: A scalar or a sequence of length 1 or ``n``.
        n: Number of spatial dimensions.
        name: Argument name, used in the error message.
        module_path: Module path or function name that received the argument, for the message.

    Returns:
        A tuple of length ``n``.

    Raises:
        TypeError: if ``value`` is a sequence of another length.

    Example:
        >>> from hk_core._src.layers import spatial_args
        >>> spatial_args.replicate(3, 2, "kernel_shape"), spatial_args.replicate([2], 3, "rate")
        ((3, 3), (2, 2, 2))
    """
    is_sequence = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str)
    if not is_sequence or not np.ndim(value):
        return (value,) * n
    if len(value) == 1:
        return tuple(value) * n
    if len(value) == n:
        return tuple(value)
    prefix = f"{module_path}: " if module_path else ""
    raise errors.ArgumentTypeError(
        f"{prefix}{name} must be a scalar or sequence of length 1 or sequence of length {n}. "
        f"Got {value!r} (length {len(value)}).", module_path=module_path or None, argument=name,
        expected=f"length 1 or {n}", got=value)
