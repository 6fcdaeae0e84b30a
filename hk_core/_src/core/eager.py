"""Eager fast paths: is JAX running ops one by one right now, and cheap eager fills.

Un-jitted JAX ops dispatch through Python at ~100-200 µs each on CPU, while a jitted call
takes ~10-30 µs. Eager ``init`` (the common way to build parameters) creates every
parameter with a few such ops, so hk_core runs them as single jitted calls when no trace is
active. Under a trace (``jit``, ``grad``, ``vmap``...) the plain ops are used instead, so
users' jaxprs hold no nested calls.

Example:
    >>> from hk_core._src.core import eager
    >>> eager.is_eager()
    True
    >>> jax.jit(lambda x: x + eager.is_eager())(0)
    Array(0, dtype=int32, weak_type=True)
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

try:  # JAX has no public "is a trace active" query; without this, the plain ops are used.
    from jax._src import core as _jax_core
    _TRACE_CTX = _jax_core.trace_ctx
    _EVAL_TRACE = _jax_core.EvalTrace
    _TRACE_CTX.trace  # noqa: B018 (fails here, not per call, if the attribute moved)
except (ImportError, AttributeError):
    _TRACE_CTX = None
    _EVAL_TRACE = None


def is_eager() -> bool:
    """True when no JAX trace is active, so each op would run (and dispatch) on its own."""
    return _TRACE_CTX is not None and type(_TRACE_CTX.trace) is _EVAL_TRACE


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _filled(shape: tuple[int, ...], dtype: Any, fill: int) -> jax.Array:
    return jnp.full(shape, fill, dtype)


def call_initializer(init: Callable, shape: tuple[int, ...], dtype: Any) -> Any:
    """``init(shape, dtype)``, with ``jnp.zeros``/``jnp.ones`` as one jitted call when eager."""
    fill = 0 if init is jnp.zeros else 1 if init is jnp.ones else None
    if fill is not None and is_eager():
        try:
            return _filled(tuple(shape), jnp.dtype(dtype), fill)
        except (TypeError, ValueError):  # an odd shape or dtype: let `init` say what is wrong
            pass
    return init(shape, dtype)
