"""Traces a function under the mesh its inputs are sharded on, where the mesh has Explicit axes.

With ``jax.sharding.AxisType.Explicit`` axes every array's type carries its sharding, and
since jax 0.12 some ops need a mesh in context to type their results: the gradient of a
``take`` (optax's ``softmax_cross_entropy_with_integer_labels``) scatters a batch-sharded
update into a freshly made array and raises ``ShardingTypeError`` unless ``jax.set_mesh``
is active. hk_core's jitted steps enter the inputs' mesh themselves while they are traced,
so users need no ``jax.set_mesh`` of their own. A mesh already in context is kept.

Example:
    >>> from hk_core._src.core import mesh_context
    >>> f = jax.jit(mesh_context.under_inputs_mesh(lambda x: x + 1))
    >>> f(jnp.ones([2]))
    Array([2., 2.], dtype=float32)
"""

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import AxisType


def explicit_mesh_of(tree: Any) -> jax.sharding.AbstractMesh | None:
    """The first Explicit-axes mesh an array of ``tree`` is sharded on, or None."""
    for leaf in jax.tree.leaves(tree):
        try:
            sharding = getattr(jax.typeof(leaf), "sharding", None)
        except TypeError:  # not an array type (a static value passed through)
            continue
        mesh = getattr(sharding, "mesh", None)
        if mesh is not None and not mesh.empty and AxisType.Explicit in mesh.axis_types:
            return mesh
    return None


def inputs_mesh(tree: Any) -> contextlib.AbstractContextManager:
    """Enters the Explicit-axes mesh ``tree`` is sharded on, unless a mesh is already set."""
    if not jax.sharding.get_abstract_mesh().empty:
        return contextlib.nullcontext()
    mesh = explicit_mesh_of(tree)
    if mesh is None:
        return contextlib.nullcontext()
    return jax.sharding.use_abstract_mesh(mesh)


def under_inputs_mesh(fun: Callable) -> Callable:
    """Wraps ``fun`` (to be jitted) to trace under its inputs' Explicit-axes mesh."""

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with inputs_mesh((args, kwargs)):
            return fun(*args, **kwargs)

    return wrapped
