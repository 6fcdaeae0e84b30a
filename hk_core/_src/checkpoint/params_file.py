"""``save_params`` / ``load_params``: params as one portable, checksummed ``.npz`` file.

The file is an ordinary NumPy ``.npz`` (a zip of ``.npy`` members, readable by any NumPy
with ``allow_pickle=False``) whose keys are ``module/param`` paths, plus one member,
``__hk_core_checksums__``, a JSON document stored as uint8 bytes that records each array's
dtype, shape and SHA-256. Dtypes NumPy cannot describe in a ``.npy`` header (``bfloat16``,
``float8_*``) are stored as unsigned integers of the same width and viewed back on load.
"""

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import jax
import numpy as np

from hk_core._src.checkpoint import errors

CHECKSUMS_KEY = "__hk_core_checksums__"
FORMAT = "hk_core.params/1"
_NATIVE_KINDS = "biufc"  # dtype kinds a .npy header describes without pickling


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def _storage_view(array: np.ndarray) -> np.ndarray:
    """Returns ``array`` as a dtype a ``.npy`` header can describe (same bytes)."""
    if array.dtype.kind in _NATIVE_KINDS:
        return array
    return array.view(np.dtype(f"u{array.dtype.itemsize}"))


def _write_atomically(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Writes ``path`` so that it holds either its old content or all of the new one."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)


def _flatten_params(params: Any, where: str) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: params must be a mapping of module -> {{name: array}}, got "
                        f"{type(params).__name__}.")
    flat = {}
    for module_name, bundle in params.items():
        if not isinstance(module_name, str) or not isinstance(bundle, Mapping):
            raise TypeError(f"{where}: params[{module_name!r}] must be a mapping of name -> "
                            f"array keyed by a str module path, got {type(bundle).__name__}.")
        for name, value in bundle.items():
            if not isinstance(name, str) or not name or "/" in name:
                raise ValueError(f"{where}: {module_name!r}: parameter name {name!r} must be "
                                 "a non-empty str without '/' (file keys are 'module/param').")
            if isinstance(value, jax.Array) and not value.is_fully_addressable:
                raise ValueError(
                    f"{where}: '{module_name}/{name}' is not fully addressable from this process; "
                    "gather it first (jax.experimental.multihost_utils.process_allgather).")
            flat[f"{module_name}/{name}"] = np.asarray(value)
    return flat


def save_params(path: str | os.PathLike, params: Mapping[str, Mapping[str, Any]]) -> None:
    """Writes params (or state) to one portable ``.npz`` file, atomically.

    The file is written to a temporary name in the same directory, flushed and fsynced,
    then renamed over ``path``: a crash leaves either the old file or the new one, never a
    partial one. Keys are ``module/param`` paths (``mlp/~/linear_0/w``); a checksum of
    every array is stored with them and verified by :func:`load_params`.

    Args:
        path: Destination file (conventionally ending in ``.npz``; used as given).
        params: A two-level mapping ``{module_path: {name: array}}``, as ``init`` returns.

    Raises:
        TypeError: if ``params`` is not a two-level mapping of arrays.
        ValueError: if a parameter name is empty or contains ``/``.

    Example:
        >>> import os, tempfile
        >>> import hk_core.checkpoint
        >>> f = hk.transform(lambda x: hk.Linear(2)(x))
        >>> params = f.init(jax.random.key(0), jnp.ones([1, 3]))
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> hk_core.checkpoint.save_params(path, params)
        >>> sorted(k for k in np.load(path) if not k.startswith("__"))
        ['linear/b', 'linear/w']
        >>> jax.tree.map(jnp.shape, hk_core.checkpoint.load_params(path))
        {'linear': {'b': (2,), 'w': (3, 2)}}
    """
    path = os.fspath(path)
    flat = _flatten_params(params, f"save_params({path!r})")
    record = {"format": FORMAT, "arrays": [
        {"key": key, "dtype": array.dtype.name, "shape": list(array.shape),
         "sha256": _sha256(array)}
        for key, array in flat.items()]}
    checksums = np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)

    def write(f: IO[bytes]) -> None:
        # Written member by member (as np.savez does) so keys need not be Python identifiers.
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, array in [*flat.items(), (CHECKSUMS_KEY, checksums)]:
                with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, _storage_view(array), allow_pickle=False)

    _write_atomically(path, write)


def _read_record(npz: Any, location: str) -> list[dict[str, Any]]:
    if CHECKSUMS_KEY not in npz.files:
        raise errors.CheckpointCorruptionError(
            location, f"has no {CHECKSUMS_KEY!r} entry; it was not written by "
            "hk_core.checkpoint.save_params (or was rewritten without it)")
    raw = npz[CHECKSUMS_KEY]
    try:
        record = json.loads(raw.tobytes().decode())
        if record["format"] != FORMAT:
            raise ValueError(f"format {record['format']!r} is not {FORMAT!r}")
        arrays = [dict(key=str(a["key"]), dtype=str(a["dtype"]), shape=tuple(a["shape"]),
                       sha256=str(a["sha256"])) for a in record["arrays"]]
    except (ValueError, KeyError, TypeError) as e:
        raise errors.CheckpointCorruptionError(
            location, f"its checksum record is unreadable ({e})") from e
    listed = {a["key"] for a in arrays} | {CHECKSUMS_KEY}
    unlisted = sorted(set(npz.files) - listed)
    if unlisted:
        raise errors.CheckpointCorruptionError(
            location, f"holds arrays its checksum record does not list: {unlisted[:8]}")
    return arrays


def _read_verified(npz: Any, location: str) -> dict[str, np.ndarray]:
    out = {}
    for entry in _read_record(npz, location):
        key = entry["key"]
        if key not in npz.files:
            raise errors.CheckpointCorruptionError(location, "listed but not in the file", key)
        stored = npz[key]
        try:
            dtype = np.dtype(jax.numpy.dtype(entry["dtype"]))  # jax knows bfloat16, float8_*
        except TypeError as e:
            raise errors.CheckpointCorruptionError(location, f"unknown dtype ({e})", key) from e
        if (stored.dtype, stored.shape) != (_storage_view(np.empty(0, dtype)).dtype,
                                            entry["shape"]):
            raise errors.CheckpointCorruptionError(
                location, f"stored as {stored.dtype}{list(stored.shape)}, recorded as "
                f"{entry['dtype']}{list(entry['shape'])}", key)
        if _sha256(stored) != entry["sha256"]:
            raise errors.CheckpointCorruptionError(
                location, "its SHA-256 differs from the one recorded at save: the bytes "
                "changed after saving", key)
        out[key] = stored.view(dtype) if stored.dtype != dtype else stored
    return out


def _check_target(location: str, flat: dict[str, np.ndarray],
                  target: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, Any]]:
    wanted = [(m, n, leaf) for m, bundle in target.items() for n, leaf in bundle.items()]
    keys = {f"{m}/{n}" for m, n, _ in wanted}
    for module_name, name, leaf in wanted:
        key = f"{module_name}/{name}"
        if key not in flat:
            raise errors.CheckpointMismatchError(
                location, key, "missing from the file", "an array", "nothing",
                f"Keys in the file not in target: {sorted(set(flat) - keys)[:8]}.")
        shape, dtype = tuple(np.shape(leaf)), np.dtype(leaf.dtype).name
        if shape != flat[key].shape:
            raise errors.CheckpointMismatchError(location, key, "shape", shape, flat[key].shape)
        if dtype != flat[key].dtype.name:
            raise errors.CheckpointMismatchError(location, key, "dtype", dtype,
                                                 flat[key].dtype.name)
    extra = sorted(set(flat) - keys)
    if extra:
        raise errors.CheckpointMismatchError(
            location, extra[0], "not in target", "nothing", "an array",
            f"Keys in the file not in target: {extra[:8]}.")
    return wanted


def _placed(value: np.ndarray, leaf: Any) -> Any:
    if isinstance(leaf, np.ndarray):
        return value
    sharding = getattr(leaf, "sharding", None)
    return jax.device_put(value, sharding) if sharding is not None else jax.numpy.asarray(value)


def load_params(path: str | os.PathLike, *,
                target: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Reads a file written by :func:`save_params`, verifying every array's checksum.

    Never unpickles: the file is read with ``allow_pickle=False``.

    Args:
        path: The ``.npz`` file.
        target: Optional ``{module: {name: array or jax.ShapeDtypeStruct}}``. The file must
            hold exactly these keys with these shapes and dtypes; the result follows its
            order and places each array like the target leaf (its sharding, or numpy for a
            numpy leaf).

    Returns:
        ``{module_path: {name: array}}`` as plain dicts; without a target, ``jax.Array``\\ s
        on the default device in the file's order.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointCorruptionError: if the file is truncated, corrupted or has no checksums.
        CheckpointMismatchError: if ``target`` has a key the file lacks (or the reverse) or
            another shape or dtype.
    """
    location = os.fspath(path)
    if not os.path.exists(location):
        raise FileNotFoundError(f"load_params: no file at {location!r}.")
    try:
        with np.load(location, allow_pickle=False) as npz:
            flat = _read_verified(npz, location)
    except errors.CheckpointCorruptionError:
        raise
    except Exception as e:  # zipfile, numpy header parsing and OS errors all mean "damaged"
        raise errors.CheckpointCorruptionError(
            location, f"cannot be read as a params file ({type(e).__name__}: {e})") from e
    if target is None:
        out: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            module_name, name = key.rsplit("/", 1)
            out.setdefault(module_name, {})[name] = jax.numpy.asarray(value)
        return out
    out = {}
    for module_name, name, leaf in _check_target(location, flat, target):
        out.setdefault(module_name, {})[name] = _placed(flat[f"{module_name}/{name}"], leaf)
    return out
