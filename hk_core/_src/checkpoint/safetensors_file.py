"""Params (or state) as a ``.safetensors`` file, the format Hugging Face and most runtimes read.

Written and read with the ``safetensors`` package: an 8-byte header length, a JSON header
(each tensor's dtype, shape and byte range, plus string metadata), then raw little-endian
bytes. Nothing in it can run code. Keys are the paths a user sees (``mlp/~/linear_0/w``).
The metadata adds what the format lacks:

- ``hk_core_tree``: the tree's structure (JSON), so state holding dicts, lists or tuples
  comes back with the same shape;
- ``hk_core_crc32``: a CRC32 of every tensor's bytes, verified on load (the format has no
  checksum, so a flipped byte would otherwise load as a wrong value);
- ``hk_core_dtypes``: the true dtype of tensors stored as same-width unsigned integers
  (``float8_*``, which safetensors' numpy reader cannot give back);
- ``hk_core_version``.

A file without this metadata (written by ``safetensors.numpy.save_file`` or another
library) loads too, as ``{module: {name: array}}`` split at each key's last ``/``.
"""

import concurrent.futures
import importlib.metadata
import json
import os
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import safetensors
import safetensors.numpy

from hk_core._src.checkpoint import atomic_file
from hk_core._src.checkpoint import errors
from hk_core._src.checkpoint import flat_tree

FORMAT = "hk_core.safetensors/1"
_META_FORMAT, _META_TREE, _META_CRC = "format", "hk_core_tree", "hk_core_crc32"
_META_DTYPES, _META_VERSION = "hk_core_dtypes", "hk_core_version"
# dtypes the safetensors numpy reader returns as themselves (bfloat16 via ml_dtypes).
_NATIVE = frozenset({"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16",
                     "int8", "uint64", "uint32", "uint16", "uint8", "bool", "complex64"})


def _version() -> str:
    try:
        return importlib.metadata.version("hk_core")
    except importlib.metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown"


def crc32(array: np.ndarray) -> int:
    """CRC32 of an array's bytes in C order."""
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _crc32s(arrays: Mapping[str, np.ndarray]) -> dict[str, int]:
    # zlib releases the GIL on large buffers: one thread per core checksums in parallel.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return dict(zip(arrays, pool.map(crc32, arrays.values())))


def write(path: str, tree: Mapping[str, Any], where: str) -> None:
    """Writes ``tree`` to a ``.safetensors`` file at ``path``, atomically."""
    flat, structure = flat_tree.flatten(tree, where)
    stored, foreign_dtypes = {}, {}
    for key, array in flat.items():
        if array.dtype.name not in _NATIVE:
            foreign_dtypes[key] = array.dtype.name
            array = array.view(np.dtype(f"u{array.dtype.itemsize}"))
        stored[key] = np.asarray(array, order="C")  # ascontiguousarray makes 0-d 1-d
    metadata = {
        _META_FORMAT: FORMAT,
        _META_VERSION: _version(),
        _META_TREE: json.dumps(structure),
        _META_CRC: json.dumps(_crc32s(stored)),
        _META_DTYPES: json.dumps(foreign_dtypes),
    }
    atomic_file.write_path(
        path, lambda tmp: safetensors.numpy.save_file(stored, tmp, metadata=metadata))


def _read_header(location: str) -> dict[str, Any]:
    """Parses the JSON header and checks every tensor's bytes lie inside the file.

    Done here rather than left to ``safe_open`` so that a truncated file names the first
    tensor whose bytes are missing.
    """
    size = os.path.getsize(location)
    with open(location, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise errors.CheckpointCorruptionError(
                location, f"cannot be read as a safetensors file: {size} bytes, shorter than "
                "its 8-byte header length")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > size - 8:
            raise errors.CheckpointCorruptionError(
                location, f"cannot be read as a safetensors file: its header claims "
                f"{header_len} bytes but the file has {size - 8} after the length (truncated?)")
        try:
            header = json.loads(f.read(header_len))
        except ValueError as e:
            raise errors.CheckpointCorruptionError(
                location, f"cannot be read as a safetensors file: its header is not JSON "
                f"({e})") from e
    data_size = size - 8 - header_len
    for key, info in header.items():
        if key == "__metadata__":
            continue
        end = info.get("data_offsets", [0, 0])[1] if isinstance(info, dict) else 0
        if end > data_size:
            raise errors.CheckpointCorruptionError(
                location, f"the file is truncated: this tensor's bytes end at {end} but the "
                f"data section holds {data_size}", key)
    return header


def _metadata_json(metadata: Mapping[str, str], name: str, location: str) -> Any:
    try:
        return json.loads(metadata[name])
    except (KeyError, ValueError) as e:
        raise errors.CheckpointCorruptionError(
            location, f"its {name!r} metadata is missing or unreadable ({e})") from e


def _read_verified(location: str) -> tuple[dict[str, np.ndarray], flat_tree.Structure]:
    _read_header(location)
    try:
        with safetensors.safe_open(location, framework="numpy") as f:
            metadata = f.metadata() or {}
            flat = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:  # safetensors raises SafetensorError and OSError on bad files
        raise errors.CheckpointCorruptionError(
            location, f"cannot be read as a safetensors file ({type(e).__name__}: {e})") from e
    if metadata.get(_META_FORMAT) != FORMAT:  # a foreign file: nothing to verify against
        return flat, flat_tree.two_level_structure(list(flat))
    structure = _metadata_json(metadata, _META_TREE, location)
    checksums = _metadata_json(metadata, _META_CRC, location)
    foreign_dtypes = _metadata_json(metadata, _META_DTYPES, location)
    listed = flat_tree.keys_of(structure)
    if sorted(listed) != sorted(flat) or sorted(checksums) != sorted(flat):
        raise errors.CheckpointCorruptionError(
            location, f"its metadata lists other tensors than the file holds: "
                      f"{sorted(set(listed) ^ set(flat))[:8]}")
    actual = _crc32s(flat)
    for key, array in flat.items():
        if actual[key] != checksums[key]:
            raise errors.CheckpointCorruptionError(
                location, "its CRC32 differs from the one recorded at save: the bytes changed "
                "after saving", key)
        if key in foreign_dtypes:
            flat[key] = array.view(np.dtype(jax.numpy.dtype(foreign_dtypes[key])))
    return flat, structure


def decode(location: str, target: Any = None) -> Any:
    """Reads and verifies a ``.safetensors`` file; see ``load_params``."""
    flat, structure = _read_verified(location)
    if target is None:
        return flat_tree.unflatten(structure, {k: jax.device_put(v) for k, v in flat.items()})
    wanted, target_structure = flat_tree.flatten(target, f"{location}: target", as_numpy=False)
    flat_tree.check_target(location, flat, wanted)
    return flat_tree.unflatten(
        target_structure, {key: flat_tree.placed(flat[key], leaf) for key, leaf in wanted.items()})
