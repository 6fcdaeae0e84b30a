"""How layers call their compute kernels: as nested jitted calls, or inlined in loop bodies.

Layers such as ``Linear`` and ``LayerNorm`` compute through module-level jitted kernels.
JAX traces a jitted function once per input signature and reuses that trace (and its
derivative) at every call, so a deep unrolled model traces ~30% faster and compiles faster
on XLA:CPU. Inside a loop body (``hk.scan``, ``layer_stack``, ``fori_loop``) the body is
traced once anyway and nested calls only add partial-evaluation work, so there the
kernels are inlined into the body's jaxpr instead.

Example:
    >>> from hk_core._src.core import layer_calls
    >>> double = layer_calls.kernel(lambda x: 2 * x)
    >>> double(3)
    Array(6, dtype=int32, weak_type=True)
    >>> with layer_calls.loop_body():
    ...     print(layer_calls.in_loop_body())
    True
"""

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax


class _State(threading.local):
    def __init__(self):
        self.loop_depth = 0


_STATE = _State()

# Inlined while the enclosing body is traced, so the body's jaxpr holds the kernel's ops.
# From jax 0.12 `inline=True` means `jax.Inline.JAX_LATE` (kept as a nested call until
# lowering); `JAX_EARLY` is the old meaning. Older jax has no `jax.Inline` and early is all
# that `True` does there.
_INLINE_EARLY = jax.Inline.JAX_EARLY if hasattr(jax, "Inline") else True


@contextlib.contextmanager
def loop_body() -> Iterator[None]:
    """Marks the tracing of a loop body: kernels called inside it are inlined."""
    _STATE.loop_depth += 1
    try:
        yield
    finally:
        _STATE.loop_depth -= 1


def in_loop_body() -> bool:
    return _STATE.loop_depth > 0


def kernel(fun: Callable, **jit_kwargs: Any) -> Callable:
    """Returns ``fun`` jitted: a nested call normally, inlined inside a loop body."""
    nested = jax.jit(fun, **jit_kwargs)
    inlined = jax.jit(fun, inline=_INLINE_EARLY, **jit_kwargs)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return (inlined if _STATE.loop_depth else nested)(*args, **kwargs)

    return call
