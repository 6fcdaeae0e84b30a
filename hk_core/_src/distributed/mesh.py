"""``make_mesh``: a named device mesh from a ``{axis: size}`` dict, over ``jax.make_mesh``."""

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType

AxisTypes = AxisType | str | Sequence[AxisType | str] | Mapping[str, AxisType | str] | None

_TYPE_NAMES = {t.name.lower(): t for t in AxisType}


def _axis_type(value: AxisType | str, axis: str) -> AxisType:
    if isinstance(value, AxisType):
        return value
    if isinstance(value, str) and value.lower() in _TYPE_NAMES:
        return _TYPE_NAMES[value.lower()]
    raise ValueError(
        f"make_mesh: axis {axis!r} has axis type {value!r}; expected a jax.sharding.AxisType "
        f"or one of {sorted(_TYPE_NAMES)}.")


def _axis_types(axis_types: AxisTypes, names: tuple[str, ...]) -> tuple[AxisType, ...]:
    # Auto by default (jax.make_mesh defaults to Explicit): under Explicit axes a matmul whose
    # contracting dimension is sharded (a row-parallel Linear) raises ShardingTypeError unless
    # the layer names its output sharding, which Haiku-style layers do not do.
    if axis_types is None:
        return (AxisType.Auto,) * len(names)
    if isinstance(axis_types, (AxisType, str)):
        return (_axis_type(axis_types, "*"),) * len(names)
    if isinstance(axis_types, Mapping):
        unknown = sorted(set(axis_types) - set(names))
        if unknown:
            raise ValueError(
                f"make_mesh: axis_types names axes {unknown} that are not mesh axes {list(names)}.")
        return tuple(_axis_type(axis_types.get(n, AxisType.Auto), n) for n in names)
    types = tuple(axis_types)
    if len(types) != len(names):
        raise ValueError(
            f"make_mesh: got {len(types)} axis types {types} for {len(names)} axes {list(names)}.")
    return tuple(_axis_type(t, n) for t, n in zip(types, names))


def _axis_sizes(axes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
    sizes = list(axes.values())
    for name, size in axes.items():
        if not isinstance(size, (int, np.integer)) or (size < 1 and size != -1):
            raise ValueError(
                f"make_mesh: axis {name!r} has size {size!r}; expected a positive int or -1.")
    wildcards = [i for i, s in enumerate(sizes) if s == -1]
    if len(wildcards) > 1:
        raise ValueError(f"make_mesh: at most one axis may be -1, got {dict(axes)}.")
    known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
    if wildcards:
        if num_devices % known:
            raise ValueError(
                f"make_mesh: {dict(axes)} cannot use all {num_devices} devices: the other axes "
                f"multiply to {known}, which does not divide {num_devices}.")
        sizes[wildcards[0]] = num_devices // known
    elif known != num_devices:
        raise ValueError(
            f"make_mesh: axis sizes {dict(axes)} multiply to {known}, but there are "
            f"{num_devices} devices; use -1 for one axis to take the remaining devices.")
    return tuple(int(s) for s in sizes)


def make_mesh(axes: Mapping[str, int], *, axis_types: AxisTypes = None,
              devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """Builds a ``jax.sharding.Mesh`` with named axes over all (or the given) devices.

    A thin layer over ``jax.make_mesh``: the dict's order is the mesh's axis order, and one
    axis may be ``-1`` to take the devices the other axes leave.

    Example:
        >>> from hk_core import distributed
        >>> mesh = distributed.make_mesh({"data": -1}, devices=jax.devices()[:1])
        >>> dict(mesh.shape)
        {'data': 1}
        >>> mesh.axis_types
        (Auto,)

    Args:
        axes: Axis name → size, in mesh order, e.g. ``{"data": 4, "model": 2}``; one size
            may be ``-1``.
        axis_types: ``None`` (every axis ``AxisType.Auto``: XLA propagates shardings, so
            hk_core's layers work under any sharding rules), one ``jax.sharding.AxisType``
            (or its name, ``"explicit"``…) for all axes, a sequence with one per axis, or a
            dict axis name → type (missing axes are Auto). Under ``Explicit`` axes a matmul
            whose contracting dimension is sharded (a row-parallel ``hk.Linear``) raises
            JAX's ``ShardingTypeError``; data parallelism works under both.
        devices: Devices to lay out; defaults to ``jax.devices()`` (every process's).

    Returns:
        The mesh.

    Raises:
        ValueError: if the sizes are invalid or do not multiply to the number of devices.
    """
    if not axes:
        raise ValueError("make_mesh: axes must name at least one axis, got {}.")
    names = tuple(axes)
    devices = list(jax.devices() if devices is None else devices)
    sizes = _axis_sizes(axes, len(devices))
    return jax.make_mesh(sizes, names, axis_types=_axis_types(axis_types, names),
                         devices=devices)
