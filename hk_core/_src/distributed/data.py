"""``shard_batch``: places a batch on a mesh, split along its leading axis."""

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec


def shard_batch(batch: Any, mesh: jax.sharding.Mesh,
                axis: str | tuple[str, ...] | None = "data") -> Any:
    """Splits every array of ``batch`` along its first axis over mesh axis ``axis``.

    Scalars are replicated. In a single process ``batch`` is the global batch. With several
    processes (``jax.distributed``) each process passes its own slice of the global batch
    (its local data), and the global array is their concatenation in process order
    (``jax.make_array_from_process_local_data``).

    Example:
        >>> from hk_core import distributed
        >>> mesh = distributed.make_mesh({"data": -1}, devices=jax.devices()[:1])
        >>> batch = distributed.shard_batch({"x": jnp.ones([4, 3]), "lr": 0.1}, mesh)
        >>> batch["x"].sharding.spec, batch["lr"].sharding.spec
        (P('data',), P())

    Args:
        batch: A pytree of arrays with a common leading (batch) axis.
        mesh: The mesh.
        axis: Mesh axis name (or tuple of names) to split the batch over; ``None``
            replicates the batch.

    Returns:
        The batch as global arrays (``jax.Array``) sharded ``P(axis)``.

    Raises:
        ValueError: if ``axis`` is not a mesh axis, or a leading dimension is not divisible by
            the axis size (the message names the leaf, its shape and the mesh axes).
    """
    axes = () if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    mesh_axes = {str(k): int(v) for k, v in mesh.shape.items()}
    missing = [a for a in axes if a not in mesh_axes]
    if missing:
        raise ValueError(
            f"shard_batch: axis {axis!r} is not in the mesh; mesh axes are {mesh_axes}.")
    size = int(np.prod([mesh_axes[a] for a in axes], dtype=np.int64))
    split = NamedSharding(mesh, PartitionSpec(axis) if axes else PartitionSpec())
    replicated = NamedSharding(mesh, PartitionSpec())
    multiprocess = jax.process_count() > 1

    def place(path, leaf):
        shape = np.shape(leaf)
        if not shape:
            return jax.device_put(leaf, replicated)
        if multiprocess:
            return jax.make_array_from_process_local_data(split, np.asarray(leaf))
        if shape[0] % size:
            raise ValueError(
                f"shard_batch: batch{jax.tree_util.keystr(path)} has shape {shape}; its leading "
                f"dimension {shape[0]} is not divisible by {size}, the size of mesh axis "
                f"{axis!r} (mesh axes {mesh_axes}).")
        return jax.device_put(leaf, split)

    return jax.tree_util.tree_map_with_path(place, batch)
