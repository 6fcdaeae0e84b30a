"""Padding functions (``hk.pad``): map an effective kernel size to ``(low, high)`` padding.

A ``PadFn`` takes the effective kernel size ``(k - 1) * rate + 1`` of one spatial dimension
and returns how many elements to add before and after it.
"""

import numbers
from collections.abc import Callable, Sequence
from typing import Any

from hk_core._src.layers import errors
from hk_core._src.layers import spatial_args

PadFn = Callable[[int], tuple[int, int]]
"""Maps the effective kernel size of one dimension to ``(low, high)`` padding.

Example:
    >>> hk.pad.same(3), hk.pad.causal(3), hk.pad.full(3)
    ((1, 1), (2, 0), (2, 2))
    >>> conv = hk.transform(lambda x: hk.Conv1D(1, 3, padding=hk.pad.causal)(x))
    >>> x = jnp.ones([1, 5, 1])
    >>> conv.apply(conv.init(jax.random.key(0), x), None, x).shape
    (1, 5, 1)
"""

Padding = str | tuple[int, int] | Sequence[tuple[int, int]]
"""A conv's ``padding`` as a string (``'SAME'``, ``'VALID'``) or ``(low, high)`` pairs: one
for every spatial dim, or one per dim.

Example:
    >>> f = hk.transform(lambda x: hk.Conv1D(1, 3, padding=(2, 0))(x))
    >>> x = jnp.ones([1, 5, 1])
    >>> f.apply(f.init(jax.random.key(0), x), None, x).shape
    (1, 5, 1)
"""

PaddingOrFn = Padding | PadFn | Sequence[PadFn]
"""A ``Padding`` or padding functions (one for every spatial dim, or one per dim).

Example:
    >>> f = hk.transform(lambda x: hk.Conv1D(1, 3, padding=[hk.pad.causal])(x))
    >>> x = jnp.ones([1, 5, 1])
    >>> f.apply(f.init(jax.random.key(0), x), None, x).shape
    (1, 5, 1)
"""


def valid(effective_kernel_size: int) -> tuple[int, int]:
    """No padding: the output shrinks by ``effective_kernel_size - 1``.

    Example:
        >>> hk.pad.valid(3)
        (0, 0)
    """
    del effective_kernel_size
    return (0, 0)


def same(effective_kernel_size: int) -> tuple[int, int]:
    """Pads so a stride-1 convolution keeps the size; an odd total puts the extra one after.

    Example:
        >>> hk.pad.same(3), hk.pad.same(4)
        ((1, 1), (1, 2))
    """
    low = (effective_kernel_size - 1) // 2
    return (low, effective_kernel_size - 1 - low)


def full(effective_kernel_size: int) -> tuple[int, int]:
    """Pads by ``k - 1`` on both sides, so every partial overlap produces an output.

    Example:
        >>> hk.pad.full(3)
        (2, 2)
    """
    return (effective_kernel_size - 1, effective_kernel_size - 1)


def causal(effective_kernel_size: int) -> tuple[int, int]:
    """Pads by ``k - 1`` before only, so output ``t`` sees inputs up to ``t``.

    Example:
        >>> hk.pad.causal(3)
        (2, 0)
    """
    return (effective_kernel_size - 1, 0)


def reverse_causal(effective_kernel_size: int) -> tuple[int, int]:
    """Pads by ``k - 1`` after only, so output ``t`` sees inputs from ``t`` on.

    Example:
        >>> hk.pad.reverse_causal(3)
        (0, 2)
    """
    return (0, effective_kernel_size - 1)


def create_from_padfn(
    padding: PadFn | Sequence[PadFn],
    kernel: int | Sequence[int],
    rate: int | Sequence[int],
    n: int,
) -> tuple[tuple[int, int], ...]:
    """Applies one padding function per spatial dimension to its effective kernel size.

    Args:
        padding: A ``PadFn``, or a sequence of 1 or ``n`` of them.
        kernel: Kernel size: an int, or a sequence of length 1 or ``n``.
        rate: Dilation rate: an int, or a sequence of length 1 or ``n``.
        n: Number of spatial dimensions.

    Returns:
        A tuple of ``n`` ``(low, high)`` pairs.

    Raises:
        TypeError: if ``padding``, ``kernel`` or ``rate`` is a sequence of another length.

    Example:
        >>> hk.pad.create_from_padfn(hk.pad.same, kernel=3, rate=2, n=2)
        ((2, 2), (2, 2))
    """
    padding = spatial_args.replicate(padding, n, "padding")
    kernel = spatial_args.replicate(kernel, n, "kernel")
    rate = spatial_args.replicate(rate, n, "rate")
    return tuple(fn((k - 1) * r + 1) for fn, k, r in zip(padding, kernel, rate))


def create(
    padding: PadFn | Sequence[PadFn],
    kernel: int | Sequence[int],
    rate: int | Sequence[int],
    n: int,
) -> tuple[tuple[int, int], ...]:
    """Same as ``create_from_padfn`` (the older name).

    Example:
        >>> hk.pad.create(hk.pad.causal, kernel=3, rate=1, n=1)
        ((2, 0),)
    """
    return create_from_padfn(padding, kernel, rate, n)


def create_from_tuple(
    padding: tuple[int, int] | Sequence[tuple[int, int]],
    n: int,
) -> tuple[tuple[int, int], ...]:
    """Returns ``n`` ``(low, high)`` pairs from one pair, a length-1 sequence of pairs or ``n``.

    Args:
        padding: ``(low, high)``, ``[(low, high)]`` or a sequence of ``n`` pairs.
        n: Number of spatial dimensions.

    Returns:
        A tuple of ``n`` pairs.

    Raises:
        TypeError: if ``padding`` is a sequence of pairs of another length.
        AssertionError: if ``padding`` is empty.

    Example:
        >>> hk.pad.create_from_tuple((1, 2), n=2)
        ((1, 2), (1, 2))
    """
    assert padding, f"Padding must not be empty, got {padding!r}."
    if _is_pair_of_ints(padding):
        return (tuple(padding),) * n
    if len(padding) == 1:
        return (tuple(padding[0]),) * n
    if len(padding) == n:
        return tuple(tuple(pair) for pair in padding)
    raise errors.ArgumentTypeError(
        f"Padding {padding!r} must be a Tuple[int, int] or sequence of length 1 or sequence of "
        f"length {n}.", argument="padding", expected=f"length 1 or {n}", got=padding)


def is_padfn(padding: Any) -> bool:
    """Whether ``padding`` is a padding function (or a sequence starting with one).

    Example:
        >>> hk.pad.is_padfn(hk.pad.same), hk.pad.is_padfn("SAME"), hk.pad.is_padfn((1, 1))
        (True, False, False)
    """
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        if not padding:
            return False
        padding = padding[0]
    return callable(padding)


def _is_pair_of_ints(value: Any) -> bool:
    return (isinstance(value, Sequence) and len(value) == 2
            and all(isinstance(v, numbers.Integral) for v in value))
