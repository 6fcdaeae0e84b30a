"""Splits call arguments into arrays (to trace) and Python values (to keep static).

The inspection tools (``tabulate``, ``eval_summary``, ``to_dot``, ``jaxpr_info``) trace a
function on example arguments. Tracing every leaf would turn flags such as
``is_training=True`` into tracers and break ``if is_training:``; tracing none would reject
``jax.ShapeDtypeStruct`` inputs. So array-like leaves are traced and the rest stay static.
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def is_array_like(value: Any) -> bool:
    """Whether ``value`` is an array or an abstract array (``jax.ShapeDtypeStruct``)."""
    return isinstance(value, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct))


def split(args: tuple, kwargs: dict) -> tuple[list, Callable[[list], tuple[tuple, dict]]]:
    """Returns ``(arrays, rebuild)``; ``rebuild(arrays)`` gives back ``(args, kwargs)``.

    ``rebuild`` accepts replacements for the arrays (e.g. tracers) in the same order.
    """
    leaves, treedef = jax.tree.flatten((args, kwargs))
    positions = [i for i, leaf in enumerate(leaves) if is_array_like(leaf)]
    arrays = [leaves[i] for i in positions]

    def rebuild(new_arrays: list) -> tuple[tuple, dict]:
        merged = list(leaves)
        for position, array in zip(positions, new_arrays):
            merged[position] = array
        return jax.tree.unflatten(treedef, merged)

    return arrays, rebuild


def as_abstract(value: Any) -> Any:
    """Returns a ``jax.ShapeDtypeStruct`` for an array-like leaf, ``value`` otherwise."""
    if is_array_like(value):
        return jax.ShapeDtypeStruct(np.shape(value), value.dtype)
    return value


def array_labels(args: tuple, kwargs: dict) -> list[str]:
    """Names for the array leaves ``split`` returns, e.g. ``args[0]['linear']['w']``."""
    with_paths, _ = jax.tree_util.tree_flatten_with_path((args, kwargs))
    labels = []
    for path, leaf in with_paths:
        if is_array_like(leaf):
            root = "args" if path[0].idx == 0 else "kwargs"
            labels.append(root + jax.tree_util.keystr(path[1:]))
    return labels
