"""The manifest of a checkpoint step: every array's path, shape, dtype and per-shard CRC32.

At save time the manifest is captured from host copies of the arrays (so the caller may
change or donate them as soon as ``save`` returns) and its checksums are computed in the
background; at restore time the same checksums are recomputed from the values read back.
The storage layer underneath (Orbax/TensorStore) does not checksum array bytes: an
uncompressed chunk with a flipped byte decodes to a wrong value without complaint.

Paths are the tree's key path joined by ``/`` (``params/mlp/~/linear_0/w``,
``opt_state/0/mu/...``): dict keys, attribute names and sequence indices all print the same
way, so a tree saved as a dataclass and read back as nested dicts has the same paths.
"""

import concurrent.futures
import dataclasses
import json
import os
import zlib
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

FORMAT = "hk_core.checkpoint.manifest/1"

# An index is one (start, stop) pair per dimension of the array.
Index = tuple[tuple[int, int], ...]


def leaf_path(key_path: Sequence[Any]) -> str:
    """Returns the ``/``-joined string form of a JAX key path."""
    return jax.tree_util.keystr(tuple(key_path), simple=True, separator="/")


def flatten(tree: Any, what: str) -> list[tuple[str, Any]]:
    """Returns ``(path, leaf)`` for every leaf of ``tree``, in ``jax.tree`` order.

    Args:
        tree: A pytree of arrays (jax or numpy), ``jax.ShapeDtypeStruct``\\ s or scalars.
        what: How errors name the tree (e.g. "save(step=3)").

    Raises:
        ValueError: if two leaves print to the same path (e.g. keys ``"a/b"`` and ``a``→``b``).
        TypeError: if a leaf is a typed PRNG key or not array-like.
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    seen: set[str] = set()
    out = []
    for key_path, leaf in flat:
        path = leaf_path(key_path)
        if path in seen:
            raise ValueError(
                f"{what}: two leaves have the path {path!r}; checkpoint paths join keys with "
                "'/', so keys that contain '/' must not also exist as nested keys.")
        seen.add(path)
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            raise TypeError(
                f"{what}: {path!r} is a typed PRNG key array ({dtype}); store "
                "jax.random.key_data(key) and rebuild it with jax.random.wrap_key_data.")
        if dtype is None and not isinstance(leaf, (bool, int, float, complex, np.generic)):
            raise TypeError(
                f"{what}: {path!r} is a {type(leaf).__name__}; checkpoint leaves must be "
                "arrays (jax or numpy), jax.ShapeDtypeStruct or Python/numpy scalars.")
        out.append((path, leaf))
    return out


def shape_and_dtype(leaf: Any) -> tuple[tuple[int, ...], str]:
    """Returns a leaf's shape and canonical dtype name (``"float32"``, ``"bfloat16"``)."""
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return tuple(int(d) for d in leaf.shape), np.dtype(leaf.dtype).name
    value = np.asarray(leaf)
    return value.shape, value.dtype.name


def normalize_index(index: tuple[slice, ...], shape: tuple[int, ...]) -> Index:
    """Turns a shard's tuple of slices (``None`` bounds allowed) into explicit bounds."""
    return tuple(
        (0 if s.start is None else int(s.start), size if s.stop is None else int(s.stop))
        for s, size in zip(index, shape))


def full_index(shape: tuple[int, ...]) -> Index:
    """Returns the index covering a whole array."""
    return tuple((0, size) for size in shape)


def crc32(host_array: np.ndarray) -> int:
    """Returns the CRC32 of an array's bytes in C order."""
    flat = np.ascontiguousarray(host_array).reshape(-1).view(np.uint8)
    return zlib.crc32(flat)  # zlib releases the GIL on large buffers: hashing runs in parallel


def map_threaded(fn: Any, items: Sequence[Any]) -> list[Any]:
    """Returns ``[fn(x) for x in items]``, computed on up to one thread per CPU core.

    Worth it because the work is CRC32 of large buffers, during which zlib releases the GIL.
    The first exception raised by ``fn`` propagates.
    """
    workers = min(8, os.cpu_count() or 1, len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hk_core_crc") as pool:
        return list(pool.map(fn, items))


def host_shards(leaf: Any) -> list[tuple[Index, np.ndarray]]:
    """Returns host copies of the shards of ``leaf`` this process must checksum.

    For a ``jax.Array`` these are its addressable shards with ``replica_id == 0`` (each
    distinct piece once, in whichever process holds its first replica); anything else is
    one piece covering the whole value (the caller copies numpy leaves it might change). On
    CPU the host copy of a jax.Array is a read-only view holding a reference to the buffer,
    which is enough: JAX does not donate a buffer that something else still references.
    """
    if isinstance(leaf, jax.Array):
        shards = [shard for shard in leaf.addressable_shards if shard.replica_id == 0]
        for shard in shards:  # start every device-to-host transfer before waiting on any
            shard.data.copy_to_host_async()
        shape = tuple(leaf.shape)
        return [(normalize_index(shard.index, shape), np.asarray(shard.data)) for shard in shards]
    value = np.asarray(leaf)
    return [(full_index(value.shape), value)]


@dataclasses.dataclass
class LeafEntry:
    """What the manifest knows about one leaf.

    Attributes:
        path: The leaf's ``/``-joined key path.
        shape: Its global shape.
        dtype: Its dtype name.
        shards: ``(index, crc32)`` for every stored piece this manifest covers.
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    shards: list[tuple[Index, int]]


@dataclasses.dataclass
class PendingManifest:
    """A manifest captured at save time whose checksums are computed later.

    Holding only host copies, it can be finished on a background thread while training
    changes (or donates) the device arrays it was taken from.
    """

    leaves: list[tuple[str, tuple[int, ...], str, list[tuple[Index, np.ndarray]]]]
    process_index: int
    process_count: int

    @classmethod
    def capture(cls, flat: list[tuple[str, Any]]) -> "PendingManifest":
        """Takes host copies of every shard this process must checksum."""
        leaves = [(path, *shape_and_dtype(leaf), host_shards(leaf)) for path, leaf in flat]
        return cls(leaves, jax.process_index(), jax.process_count())

    def to_json(self) -> str:
        """Computes every checksum and returns the manifest file's text."""
        crcs = iter(map_threaded(crc32, [host for *_, pieces in self.leaves
                                         for _, host in pieces]))
        entries = [
            LeafEntry(path, shape, dtype, [(index, next(crcs)) for index, _ in pieces])
            for path, shape, dtype, pieces in self.leaves
        ]
        return encode(entries, self.process_index, self.process_count)


def _body(entries: list[LeafEntry], process_index: int, process_count: int) -> dict:
    return {
        "format": FORMAT,
        "process_index": process_index,
        "process_count": process_count,
        "leaves": [
            {"path": e.path, "shape": list(e.shape), "dtype": e.dtype,
             "shards": [{"index": [list(b) for b in index], "crc32": crc}
                        for index, crc in e.shards]}
            for e in entries
        ],
    }


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def encode(entries: list[LeafEntry], process_index: int, process_count: int) -> str:
    """Returns the manifest as JSON that carries a CRC32 of its own content."""
    body = _body(entries, process_index, process_count)
    # The manifest guards the arrays; its own checksum guards the manifest, so a flipped
    # byte in a shape or a path cannot pass for a different but valid checkpoint.
    return json.dumps({"manifest": body, "crc32": zlib.crc32(_canonical(body))},
                      separators=(",", ":"))


def decode(text: str | bytes) -> tuple[list[LeafEntry], int, int]:
    """Parses and checks a manifest file written by :func:`encode`.

    Returns:
        ``(entries, process_index, process_count)``.

    Raises:
        ValueError: if the text is not a well-formed manifest or its checksum differs.
    """
    try:
        outer = json.loads(text)
        body = outer["manifest"]
        if zlib.crc32(_canonical(body)) != outer["crc32"]:
            raise ValueError("its content does not match its own checksum")
        if body["format"] != FORMAT:
            raise ValueError(f"format {body['format']!r} is not {FORMAT!r}")
        entries = [
            LeafEntry(
                path=str(leaf["path"]),
                shape=tuple(int(d) for d in leaf["shape"]),
                dtype=str(leaf["dtype"]),
                shards=[(tuple((int(a), int(b)) for a, b in shard["index"]), int(shard["crc32"]))
                        for shard in leaf["shards"]],
            )
            for leaf in body["leaves"]
        ]
        return entries, int(body["process_index"]), int(body["process_count"])
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"not a valid hk_core checkpoint manifest ({e})") from e
