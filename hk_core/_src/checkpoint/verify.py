"""Checks a restore against the manifest: the target's paths, shapes and dtypes, and every
stored shard's CRC32 recomputed from the values read back."""

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

from hk_core._src.checkpoint import errors
from hk_core._src.checkpoint import manifest

_SHOWN = 8  # paths listed in a "missing" message before it is cut short


def _listing(paths: Iterable[str]) -> str:
    paths = sorted(paths)
    shown = ", ".join(repr(p) for p in paths[:_SHOWN])
    return shown + (f", ... ({len(paths)} in all)" if len(paths) > _SHOWN else "")


def merge_entries(location: str, per_process: list[tuple[list[manifest.LeafEntry], int, int]]
                  ) -> dict[str, manifest.LeafEntry]:
    """Joins the manifests written by each process into one entry per path.

    Raises:
        CheckpointCorruptionError: if a process's manifest is missing or they disagree.
    """
    if not per_process:
        raise errors.CheckpointCorruptionError(location, "the step has no hk_core manifest")
    count = per_process[0][2]
    indices = sorted(index for _, index, _ in per_process)
    if indices != list(range(count)) or any(c != count for _, _, c in per_process):
        raise errors.CheckpointCorruptionError(
            location, f"expected manifests from processes 0..{count - 1}, found {indices}")
    merged: dict[str, manifest.LeafEntry] = {}
    for entries, _, _ in per_process:
        for entry in entries:
            known = merged.get(entry.path)
            if known is None:
                merged[entry.path] = manifest.LeafEntry(
                    entry.path, entry.shape, entry.dtype, list(entry.shards))
            elif (known.shape, known.dtype) != (entry.shape, entry.dtype):
                raise errors.CheckpointCorruptionError(
                    location, "processes recorded different shapes or dtypes", entry.path)
            else:
                known.shards.extend(entry.shards)
    return merged


def check_target(location: str, entries: dict[str, manifest.LeafEntry],
                 target: list[tuple[str, Any]]) -> None:
    """Checks that ``target`` asks for exactly what the checkpoint holds.

    Raises:
        CheckpointMismatchError: on the first path that is missing, extra, or has another
            shape or dtype; the message names the path, expected and actual values.
    """
    target_paths = {path for path, _ in target}
    for path, leaf in target:
        entry = entries.get(path)
        if entry is None:
            raise errors.CheckpointMismatchError(
                location, path, "missing from the checkpoint", "an array", "nothing",
                f"Paths in the checkpoint not in target: {_listing(set(entries) - target_paths)}.")
        shape, dtype = manifest.shape_and_dtype(leaf)
        if shape != entry.shape:
            raise errors.CheckpointMismatchError(location, path, "shape", shape, entry.shape)
        if dtype != entry.dtype:
            raise errors.CheckpointMismatchError(location, path, "dtype", dtype, entry.dtype)
    extra = set(entries) - target_paths
    if extra:
        path = sorted(extra)[0]
        raise errors.CheckpointMismatchError(
            location, path, "not in target", "nothing", "an array",
            f"Checkpoint paths missing from target: {_listing(extra)}.")


def _contains(outer: manifest.Index, inner: manifest.Index) -> bool:
    return all(o0 <= i0 and i1 <= o1 for (o0, o1), (i0, i1) in zip(outer, inner))


def _region(host: np.ndarray, origin: manifest.Index, index: manifest.Index) -> np.ndarray:
    return host[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(index, origin))]


def _covers_globally(value: jax.Array, shape: tuple[int, ...], index: manifest.Index) -> bool:
    """Whether some device of the run (any process) holds all of ``index``."""
    return any(_contains(manifest.normalize_index(piece, shape), index)
               for piece in value.sharding.devices_indices_map(shape).values())


def gather_uncovered(entry: manifest.LeafEntry, value: Any) -> dict[int, np.ndarray]:
    """Copies out the saved shards of ``value`` that no device holds whole (a collective).

    Under a restore sharding that cuts a saved shard across devices of several processes
    (e.g. an array saved replicated, restored split over processes), no process could check
    that shard from its own pieces. Such a region is sliced out of the restored array and
    replicated to every device (one all-gather of the shard's bytes); process
    ``k % process_count`` checks saved shard ``k``. Every process must call this for the same
    leaves in the same order, since the slicing is a collective computation.

    Returns:
        ``{position in entry.shards: host copy of that region}`` for the shards this process
        must check this way (empty when every saved shard lies within one device's piece).
    """
    if not isinstance(value, jax.Array) or value.is_fully_addressable:
        return {}
    shape = tuple(value.shape)
    devices = np.array(sorted(value.sharding.device_set, key=lambda d: d.id))
    replicated = NamedSharding(Mesh(devices, ("all",)), PartitionSpec())
    out = {}
    for k, (index, _) in enumerate(entry.shards):
        if _covers_globally(value, shape, index):
            continue
        starts, stops = [a for a, _ in index], [b for _, b in index]
        region = jax.jit(lambda x, s=tuple(starts), e=tuple(stops): jax.lax.slice(x, s, e),
                         out_shardings=replicated)(value)
        if k % jax.process_count() == jax.process_index():
            out[k] = np.asarray(region.addressable_shards[0].data)
    return out


def verify_leaf(location: str, entry: manifest.LeafEntry, value: Any,
                uncovered: dict[int, np.ndarray] | None = None) -> int:
    """Recomputes the CRC32 of every stored shard of ``entry`` from the restored ``value``.

    A shard is read from the restored piece that contains it, so a restore into another
    sharding checks the bytes as they were saved. In a multi-process run, a shard held
    whole by a device of another process is left to that process, and a shard no device
    holds whole is read from ``uncovered`` (see :func:`gather_uncovered`) by the one process
    it is assigned to: every saved shard is checked by at least one process.

    Returns:
        The number of shards checked.

    Raises:
        CheckpointCorruptionError: if the shape, dtype or any checksum differs.
    """
    uncovered = uncovered or {}
    shape, dtype = manifest.shape_and_dtype(value)
    if (shape, dtype) != (entry.shape, entry.dtype):
        raise errors.CheckpointCorruptionError(
            location, f"read back as {dtype}{list(shape)}, saved as {entry.dtype}"
            f"{list(entry.shape)}", entry.path)
    if isinstance(value, jax.Array):
        pieces = [(manifest.normalize_index(s.index, shape), s) for s in value.addressable_shards]
        whole = value if value.is_fully_addressable else None
    else:
        pieces, whole = [], value
    host_cache: dict[int, np.ndarray] = {}
    checked = 0
    for k, (index, saved_crc) in enumerate(entry.shards):
        found = next((j for j, (origin, _) in enumerate(pieces) if _contains(origin, index)), None)
        if found is not None:
            origin, shard = pieces[found]
            if found not in host_cache:
                host_cache[found] = np.asarray(shard.data)
            region = _region(host_cache[found], origin, index)
        elif whole is not None:
            if -1 not in host_cache:
                host_cache[-1] = np.asarray(whole)
            region = _region(host_cache[-1], manifest.full_index(shape), index)
        elif k in uncovered:
            region = uncovered[k]
        else:
            continue  # held whole by another process's device, or assigned to another process
        actual_crc = manifest.crc32(region)
        if actual_crc != saved_crc:
            bounds = ", ".join(f"{a}:{b}" for a, b in index)
            raise errors.CheckpointCorruptionError(
                location, f"shard [{bounds}] reads back with CRC32 {actual_crc:#010x} but was "
                f"saved with {saved_crc:#010x}; the stored bytes changed after saving",
                entry.path)
        checked += 1
    return checked
