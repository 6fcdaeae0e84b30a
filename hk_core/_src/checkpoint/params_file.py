"""``save_params`` / ``load_params``: params as one portable, checksummed file.

``.safetensors`` files are written and read by ``safetensors_file``. The ``.npz`` file,
kept for files already written, is an ordinary NumPy ``.npz`` (a zip of ``.npy`` members,
readable by any NumPy with ``allow_pickle=False``) whose keys are ``module/param`` paths,
plus one member,
``__hk_core_checksums__``, a JSON document stored as uint8 bytes that records each array's
dtype, shape and SHA-256. Dtypes NumPy cannot describe in a ``.npy`` header (``bfloat16``,
``float8_*``) are stored as unsigned integers of the same width and viewed back on load.
"""

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import jax
import numpy as np

from hk_core._src.checkpoint import atomic_file
from hk_core._src.checkpoint import errors
from hk_core._src.checkpoint import flat_tree
from hk_core._src.checkpoint import safetensors_file

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


def _save_npz(path: str, params: Mapping[str, Mapping[str, Any]]) -> None:
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

    atomic_file.write(path, write)


def save_params(path: str | os.PathLike, params_or_state: Mapping[str, Mapping[str, Any]]
                ) -> None:
    """Writes params (or state) to one portable file, atomically; the suffix picks the format.

    ``.safetensors`` (the default, for any suffix but ``.npz``) writes the format Hugging
    Face and most runtimes read, with the ``safetensors`` package; its metadata records
    the tree's structure (state holding dicts or lists round-trips), the hk_core version
    and a CRC32 per tensor. ``.npz`` writes the NumPy zip kept for files already in that
    form (two-level trees only), with a SHA-256 per array. Either way keys are the paths
    a user sees (``mlp/~/linear_0/w``), dtypes are kept (``bfloat16`` included), and the
    file is written to a temporary name in the same directory, fsynced, then renamed over
    ``path``: a crash leaves the old file or the new one, never a partial one.

    Args:
        path: Destination file, ending in ``.safetensors`` or ``.npz``.
        params_or_state: ``{module_path: {name: array}}`` as ``init`` returns; with
            ``.safetensors`` a value may also be a dict, list or tuple of arrays.

    Raises:
        TypeError: if ``params_or_state`` is not a mapping of module -> mapping of arrays.
        ValueError: if a name is empty or contains ``/``.

    Example:
        >>> import os, tempfile
        >>> import hk_core.checkpoint
        >>> from safetensors.numpy import load_file
        >>> f = hk.transform(lambda x: hk.Linear(2)(x))
        >>> params = f.init(jax.random.key(0), jnp.ones([1, 3]))
        >>> path = os.path.join(tempfile.mkdtemp(), "params.safetensors")
        >>> hk_core.checkpoint.save_params(path, params)
        >>> sorted(load_file(path))
        ['linear/b', 'linear/w']
        >>> jax.tree.map(jnp.shape, hk_core.checkpoint.load_params(path))
        {'linear': {'b': (2,), 'w': (3, 2)}}
    """
    path = os.fspath(path)
    if path.endswith(".npz"):
        _save_npz(path, params_or_state)
        return
    safetensors_file.write(path, params_or_state, f"save_params({path!r})")


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


def _load_npz(location: str, target: Any) -> dict[str, dict[str, Any]]:
    with open(location, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        # np.load would try the file as a pickle and advise enabling pickles: never that.
        what = "it is empty" if not head else "it does not start as a zip archive does"
        raise errors.CheckpointCorruptionError(
            location, f"cannot be read as a params file: {what} (an .npz params file is a "
            "zip archive written by hk_core.checkpoint.save_params)")
    try:
        with np.load(location, allow_pickle=False) as npz:
            flat = _read_verified(npz, location)
    except errors.CheckpointCorruptionError:
        raise
    except Exception as e:  # zipfile, numpy header parsing and OS errors all mean "damaged"
        reason = f"{type(e).__name__}: {e}"
        if "pickle" in reason:  # numpy's advice to unpickle is never the fix here
            reason = "a member holds pickled Python objects, which params files never do"
        raise errors.CheckpointCorruptionError(
            location, f"cannot be read as a params file ({reason})") from e
    if target is None:
        out: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            module_name, name = key.rsplit("/", 1)
            out.setdefault(module_name, {})[name] = jax.device_put(value)
        return out
    wanted, structure = flat_tree.flatten(target, f"{location}: target", as_numpy=False)
    flat_tree.check_target(location, flat, wanted)
    return flat_tree.unflatten(
        structure, {key: flat_tree.placed(flat[key], leaf) for key, leaf in wanted.items()})


def load_params(path: str | os.PathLike, target: Any = None) -> dict[str, Any]:
    """Reads a file written by :func:`save_params`, verifying every array's checksum.

    A file named ``.npz`` or starting as a zip does is read as ``.npz``; any other as
    ``.safetensors``. Never
    executes code: ``.npz`` is read with ``allow_pickle=False``, and a ``.safetensors``
    file is a JSON header and raw bytes. A ``.safetensors`` file written elsewhere (e.g.
    by ``safetensors.numpy.save_file``) with ``module/name`` keys loads too; it has no
    checksums to verify.

    Args:
        path: The ``.safetensors`` or ``.npz`` file.
        target: Optional tree like the saved one, of arrays or ``jax.ShapeDtypeStruct``\\ s.
            The file must hold exactly its keys with its shapes and dtypes; the result
            takes its structure and places each array like the target leaf (its sharding,
            or numpy for a numpy leaf).

    Returns:
        ``{module_path: {name: array}}`` as plain dicts (nested state as saved); without
        a target, ``jax.Array``\\ s on the default device in the file's order.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointCorruptionError: if the file is truncated or corrupted (naming the
            tensor where one is to blame) or an hk_core file lacks its checksums.
        CheckpointMismatchError: if ``target`` has a key the file lacks (or the reverse) or
            another shape or dtype; the message names the key.

    Example:
        >>> import os, tempfile
        >>> from hk_core import checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> checkpoint.save_params(path, {"linear": {"w": jnp.ones([3, 2])}})
        >>> params = checkpoint.load_params(path)
        >>> jax.tree.map(jnp.shape, params)
        {'linear': {'w': (3, 2)}}
    """
    location = os.fspath(path)
    if not os.path.exists(location):
        raise FileNotFoundError(f"load_params: no file at {location!r}.")
    with open(location, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip or location.endswith(".npz"):
        return _load_npz(location, target)
    return safetensors_file.decode(location, target)
