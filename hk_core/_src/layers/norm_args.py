"""Arguments shared by the normalization layers: axes, ``create_*`` checks, scale/offset."""

from collections.abc import Iterable, Sequence

import numpy as np
from jax.typing import ArrayLike, DTypeLike

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers.initializers import InitializerFn


AxisSpec = int | slice | Sequence[int]


def validate(axis: AxisSpec, what: str = "axis") -> slice | tuple[int, ...]:
    """Returns ``axis`` as a slice or a tuple of ints (an int ``-1`` becomes ``(-1,)``).

    The tuple is what Haiku stores as ``LayerNorm``/``RMSNorm``'s ``axis`` and ``param_axis``
    (real code reads ``self.param_axis[0]``).

    Raises:
        ValueError: for anything else (e.g. a float or a list of strings).
    """
    if isinstance(axis, slice):
        return axis
    if isinstance(axis, int):
        return (axis,)
    if isinstance(axis, Iterable) and not isinstance(axis, (str, bytes)):
        axes = tuple(axis)
        if all(isinstance(a, int) for a in axes):
            return axes
    raise errors.ConfigurationError(
        f"`{what}` should be an int, slice or iterable of ints; got {axis!r}.", argument=what,
        expected="an int, slice or iterable of ints", got=axis)


def resolve(axis: int | slice | tuple[int, ...], ndim: int, module_path: str, what: str = "axis"
            ) -> tuple[int, ...]:
    """Returns the sorted non-negative axes ``axis`` names in an array of rank ``ndim``.

    Raises:
        ValueError: if an axis is out of range (naming ``module_path``, the axis and the rank).
    """
    if isinstance(axis, slice):
        return tuple(range(ndim)[axis])
    axes = (axis,) if isinstance(axis, int) else axis
    for a in axes:
        if not -ndim <= a < ndim:
            raise errors.ConfigurationError(
                f"{module_path}: `{what}`={a!r} is out of range for inputs of rank {ndim}.",
                module_path=module_path, argument=what,
                expected=f"an axis of inputs of rank {ndim}", got=a)
    return tuple(sorted({a % ndim for a in axes}))


def param_shape(shape: Sequence[int], param_axes: tuple[int, ...]) -> tuple[int, ...]:
    """Scale/offset shape: ``[C]`` when ``param_axes`` is just the last axis, else full rank.

    Outside ``param_axes`` the full-rank shape has 1s, so it broadcasts against the input.
    """
    ndim = len(shape)
    if param_axes == (ndim - 1,):
        return (shape[-1],)
    return tuple(shape[i] if i in param_axes else 1 for i in range(ndim))


def check_create_init(module_path: str, create: bool, init: InitializerFn | None,
                      what: str) -> None:
    """Raises ``ValueError`` when an initializer is given for a parameter that is not created."""
    if not create and init is not None:
        raise errors.ConfigurationError(
            f"{module_path}: Cannot set `{what}_init` if `create_{what}=False` (got "
            f"{what}_init={init!r}).", module_path=module_path, argument=f"{what}_init",
            expected=f"None when create_{what}=False", got=init)


def check_call_override(module_path: str, create: bool, value: ArrayLike | None,
                        what: str) -> None:
    """Raises ``ValueError`` when a call passes ``what`` that the module creates itself."""
    if create and value is not None:
        raise errors.ConfigurationError(
            f"{module_path}: Cannot pass `{what}` at call time if `create_{what}=True`.",
            module_path=module_path, argument=what, expected=f"None when create_{what}=True",
            got=value)


def scale_and_offset(layer: hk.Module, shape: Sequence[int], dtype: DTypeLike,
                     scale: ArrayLike | None, offset: ArrayLike | None
                     ) -> tuple[ArrayLike, ArrayLike]:
    """Returns the ``scale`` and ``offset`` to normalize with (see ``scale_or_offset``)."""
    return (scale_or_offset(layer, "scale", layer.create_scale, scale, shape, dtype),
            scale_or_offset(layer, "offset", layer.create_offset, offset, shape, dtype))


def scale_or_offset(layer: hk.Module, what: str, create: bool, value: ArrayLike | None,
                    shape: Sequence[int] | None, dtype: DTypeLike) -> ArrayLike:
    """Returns the parameter ``what`` (``"scale"`` or ``"offset"``) of ``shape`` and ``dtype``
    when ``create``, else ``value`` (passed at call time), else 1 / 0 as a scalar of ``dtype``.

    ``shape`` and ``layer``'s ``<what>_init`` are read only when ``create`` (a ``GroupNorm``
    without a scale has no ``scale_init``, as in Haiku).
    """
    if create:
        return hk.get_parameter(what, shape, dtype, init=getattr(layer, what + "_init"))
    if value is not None:
        return value
    return (np.ones if what == "scale" else np.zeros)([], dtype=dtype)
