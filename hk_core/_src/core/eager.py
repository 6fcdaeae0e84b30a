"""Eager fast paths: is JAX running ops one by one right now, and cheap eager fills.

Un-jitted JAX ops dispatch through Python at ~100-200 µs each on CPU, while a jitted call
takes ~10-30 µs. Eager ``init`` (the common way to build parameters) creates every
parameter with a few such ops, so hk_core runs them as single jitted calls when no trace is
active. Under a trace (``jit``, ``grad``, ``vmap``...) the plain ops are used instead: there
they cost nothing at run time and keep users' jaxprs readable.

Example:
    >>> from hk_core._src.core import eager
    >>> eager.is_eager()
    True
    >>> jax.jit(lambda x: x + eager.is_eager())(0)
    Array(0, dtype=int32, weak_type=True)
    >>> eager.activate(jax.nn.relu, jnp.array([-1.0, 2.0]))
    Array([0., 2.], dtype=float32)
"""

import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

_STATE_NOW = None  # jax.extend.core.get_opaque_trace_state, bound on first use
_EAGER_STATE = None


def _state_in_new_thread(get_state: Callable[[], Any]) -> Any:
    """``get_state()`` as seen by a thread that has never started a trace."""
    found = []
    probe = threading.Thread(target=lambda: found.append(get_state()), name="hk_core-is-eager")
    probe.start()
    probe.join()
    return found[0]


def _bind_trace_state() -> None:
    global _STATE_NOW, _EAGER_STATE
    # jax.extend takes ~25 ms to import: only when the first transform runs, not at import.
    from jax.extend import core as jax_core  # noqa: PLC0415

    # JAX keeps the current trace per thread and a new thread starts at its eval trace, so
    # this is the eager state even when the first call comes under jit, grad or vmap here.
    # (Public API only: `jax.core.eval_context` is undocumented, and
    # `ensure_compile_time_eval` under jit keeps the jit's trace, which would invert the
    # answer.)
    eager_state = _state_in_new_thread(jax_core.get_opaque_trace_state)
    traced = []
    jax.make_jaxpr(lambda: traced.append(jax_core.get_opaque_trace_state()))()
    if traced[0] == eager_state:
        raise RuntimeError(
            f"hk_core cannot tell eager from traced execution on jax {jax.__version__}: "
            "jax.extend.core.get_opaque_trace_state() is the same inside jax.make_jaxpr as "
            "in a new thread. Please report this with your jax version.")
    _EAGER_STATE = eager_state
    _STATE_NOW = jax_core.get_opaque_trace_state


def is_eager() -> bool:
    """True when no JAX trace is active, so each op would run (and dispatch) on its own."""
    if _STATE_NOW is None:
        _bind_trace_state()
    return _STATE_NOW() == _EAGER_STATE


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


class JittedWhenEager:
    """Calls ``fun`` as one jitted dispatch when eager, and plainly under a trace.

    For small layer computations of several ops: eagerly each op would be a dispatch of
    ~40-200 µs, while under a trace the plain function keeps the user's jaxpr as it was.

    Example:
        >>> from hk_core._src.core import eager
        >>> double = eager.JittedWhenEager(lambda x: 2 * x)
        >>> double(3)
        Array(6, dtype=int32, weak_type=True)
    """

    __slots__ = ("plain", "jitted")

    def __init__(self, fun: Callable, **jit_kwargs: Any):
        self.plain = fun
        self.jitted = jax.jit(fun, **jit_kwargs)

    def __call__(self, *args, **kwargs):
        return (self.jitted if is_eager() else self.plain)(*args, **kwargs)


# jax.nn.relu and relu6 are custom_jvp functions: every un-jitted call re-derives their
# signature in Python (~200 µs on CPU, more than a matmul). Jitted, each is one ~7 µs
# dispatch of the same max/min ops, so the values are bit-identical.
_ACTIVATIONS = {jax.nn.relu: JittedWhenEager(jax.nn.relu),
                jax.nn.relu6: JittedWhenEager(jax.nn.relu6)}


def activate(activation: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """``activation(x)``; for ``jax.nn.relu``/``relu6`` one jitted call when eager."""
    for plain, fast in _ACTIVATIONS.items():
        if activation is plain:
            return fast(x)
    return activation(x)
