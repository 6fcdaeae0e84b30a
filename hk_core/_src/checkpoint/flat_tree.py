"""Params and state as flat ``{"module/name[/sub...]": array}`` dicts, and back.

Both params file formats (``.safetensors`` and ``.npz``) store one array per key, the key
being the path a user sees (``mlp/~/linear_0/w``). This module owns that naming, the JSON
description of a nested tree's shape (so state holding dicts or lists round-trips), and the
check of what a file holds against the ``target`` a caller restores into.
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from hk_core._src.checkpoint import errors

# A structure is JSON: a leaf is its key (a str); containers are tagged so that a dict
# whose only key is "list" is not mistaken for a list.
Structure = Any


def _leaf_array(value: Any, key: str, where: str) -> np.ndarray:
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        raise ValueError(
            f"{where}: {key!r} is not fully addressable from this process; gather it first "
            "(jax.experimental.multihost_utils.process_allgather).")
    if not hasattr(value, "dtype") and not isinstance(value, (bool, int, float, np.generic)):
        raise TypeError(f"{where}: {key!r} is a {type(value).__name__}; leaves must be arrays, "
                        "scalars, or dicts, lists and tuples of them.")
    return np.asarray(value)


def _flatten_value(value: Any, key: str, where: str, flat: dict[str, Any],
                   to_leaf: Callable[[Any, str, str], Any]) -> Structure:
    if value is None:
        return None
    if isinstance(value, Mapping):
        out = {}
        for name, sub in value.items():
            if not isinstance(name, str) or not name or "/" in name:
                raise ValueError(f"{where}: {key!r}: key {name!r} must be a non-empty str "
                                 "without '/' (file keys join names with '/').")
            out[name] = _flatten_value(sub, f"{key}/{name}", where, flat, to_leaf)
        return {"dict": out}
    if isinstance(value, (list, tuple)):
        items = [_flatten_value(sub, f"{key}/{i}", where, flat, to_leaf)
                 for i, sub in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}
    if key in flat:
        raise ValueError(f"{where}: two values have the key {key!r}; a module path "
                         "must not equal another module's path plus a parameter name.")
    flat[key] = to_leaf(value, key, where)
    return key


def flatten(tree: Any, where: str, *, as_numpy: bool = True) -> tuple[dict[str, Any], Structure]:
    """Returns ``({key: numpy array}, structure)`` for ``{module: {name: value}}``.

    Keys are ``module/name`` for an array and ``module/name/sub/0...`` inside a nested
    state value. ``structure`` is JSON that :func:`unflatten` turns back into the tree.

    Raises:
        TypeError: if ``tree`` is not a two-level mapping of arrays (or nests of them).
        ValueError: if a name is empty or holds ``/``, or two values get the same key.
    """
    if not isinstance(tree, Mapping):
        raise TypeError(f"{where}: params must be a mapping of module -> {{name: array}}, got "
                        f"{type(tree).__name__}.")
    flat: dict[str, Any] = {}
    structure = {}
    to_leaf = _leaf_array if as_numpy else (lambda value, key, where: value)
    for module_name, bundle in tree.items():
        if not isinstance(module_name, str) or not isinstance(bundle, Mapping):
            raise TypeError(f"{where}: params[{module_name!r}] must be a mapping of name -> "
                            f"array keyed by a str module path, got {type(bundle).__name__}.")
        structure[module_name] = _flatten_value(bundle, module_name, where, flat, to_leaf)
    return flat, {"dict": structure}


def unflatten(structure: Structure, values: Mapping[str, Any]) -> Any:
    """Rebuilds the tree :func:`flatten` described, taking each leaf from ``values``."""
    if structure is None:
        return None
    if isinstance(structure, str):
        return values[structure]
    if "dict" in structure:
        return {k: unflatten(v, values) for k, v in structure["dict"].items()}
    items = [unflatten(v, values) for v in structure.get("list", structure.get("tuple", []))]
    return tuple(items) if "tuple" in structure else items


def two_level_structure(keys: list[str]) -> Structure:
    """The structure of a file without one (a foreign file): ``module/name`` per key."""
    structure: dict[str, dict[str, Any]] = {}
    for key in keys:
        module_name, _, name = key.rpartition("/")
        structure.setdefault(module_name, {"dict": {}})["dict"][name] = key
    return {"dict": structure}


def keys_of(structure: Structure) -> list[str]:
    """Every leaf key of ``structure``, in order."""
    if structure is None:
        return []
    if isinstance(structure, str):
        return [structure]
    children = structure.get("dict", {}).values() if "dict" in structure else (
        structure.get("list", structure.get("tuple", [])))
    return [key for child in children for key in keys_of(child)]


def check_target(location: str, flat: Mapping[str, np.ndarray],
                 wanted: Mapping[str, Any]) -> None:
    """Checks that ``wanted`` (key -> target leaf) asks for exactly what ``flat`` holds.

    Raises:
        CheckpointMismatchError: naming the first key that is missing, extra, or has
            another shape or dtype, with what the target expects and what the file has.
    """
    for key, leaf in wanted.items():
        if key not in flat:
            raise errors.CheckpointMismatchError(
                location, key, "missing from the file", "an array", "nothing",
                f"Keys in the file not in target: {sorted(set(flat) - set(wanted))[:8]}.")
        shape, dtype = tuple(np.shape(leaf)), np.dtype(leaf.dtype).name
        if shape != flat[key].shape:
            raise errors.CheckpointMismatchError(location, key, "shape", shape, flat[key].shape)
        if dtype != flat[key].dtype.name:
            raise errors.CheckpointMismatchError(location, key, "dtype", dtype,
                                                 flat[key].dtype.name)
    extra = sorted(set(flat) - set(wanted))
    if extra:
        raise errors.CheckpointMismatchError(
            location, extra[0], "not in target", "nothing", "an array",
            f"Keys in the file not in target: {extra[:8]}.")


def placed(value: np.ndarray, leaf: Any) -> Any:
    """Returns ``value`` as ``leaf`` holds it: numpy, or a jax.Array with its sharding."""
    if isinstance(leaf, np.ndarray):
        return value
    sharding = getattr(leaf, "sharding", None)
    return jax.device_put(value, sharding)  # None: the default device
