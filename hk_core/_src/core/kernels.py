"""The one speed policy: how hk_core runs the pure array computations inside its layers.

A *kernel* is a pure function of arrays, marked with :func:`kernel`. Where it is called
decides how it runs:

- **eager** (no JAX trace active): as one jitted dispatch. Un-jitted ops dispatch through
  Python one by one (~10-200 µs each on CPU; ``jax.nn.relu``'s ``custom_jvp`` alone costs
  ~130 µs), while a jitted call costs ~5-30 µs.
- **under a trace, outside loop bodies** (``jit``, ``grad``, ``vmap``...): as a nested
  jitted call. JAX traces it once per input signature and reuses that trace (and its
  derivative) at every later call, so a deep unrolled model traces and compiles faster.
- **inside a loop body** (``hk.scan``, ``hk.fori_loop``, ``layer_stack``...): inlined
  into the body's jaxpr. The body is traced once anyway, so there a nested call would
  only add partial-evaluation work.

The values are the same in all three: XLA inlines nested calls before it optimizes. The one
exception is floating-point fusion *within* a kernel when it runs eagerly (XLA may contract
``a * b + c`` into an FMA inside one compiled call where op-by-op execution rounds twice),
so a computation whose eager bits must match op-by-op execution (Haiku's eager values) is
not made a kernel across that boundary; see ``layers/initializers.py``.

Nothing else in hk_core makes code fast: layers and nets mark their computations with
``kernel`` exactly as a user's own module may (``hk_core._src.core.facade``).

Example:
    >>> from hk_core._src.core import kernels
    >>> @kernels.kernel
    ... def double(x):
    ...     return 2 * x
    >>> double(3)
    Array(6, dtype=int32, weak_type=True)
    >>> kernels.is_eager()
    True
    >>> with kernels.loop_body():
    ...     print(kernels.in_loop_body())
    True
"""

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import jax

F = TypeVar("F", bound=Callable[..., Any])

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


class _LoopState(threading.local):
    def __init__(self):
        self.depth = 0


_LOOP = _LoopState()

# From jax 0.12 `inline=True` means `jax.Inline.JAX_LATE` (kept as a nested call until
# lowering); `JAX_EARLY` is the old meaning, inlined while the enclosing body is traced.
# Older jax has no `jax.Inline`, and early is all that `True` does there.
_INLINE_EARLY = jax.Inline.JAX_EARLY if hasattr(jax, "Inline") else True

_NAMES: set[str] = set()  # every kernel's name, as its nested call appears in jaxprs


@contextlib.contextmanager
def loop_body() -> Iterator[None]:
    """Marks the tracing of a loop body: kernels called inside it are inlined."""
    _LOOP.depth += 1
    try:
        yield
    finally:
        _LOOP.depth -= 1


def in_loop_body() -> bool:
    """True while a loop body (``hk.scan``, ``layer_stack``...) is being traced."""
    return _LOOP.depth > 0


def kernel_names() -> frozenset[str]:
    """The names of every kernel defined so far: tools that mirror Haiku's view of a jaxpr
    (``hk.experimental.jaxpr_info``) read through these calls, since Haiku has none."""
    return frozenset(_NAMES)


def kernel(fun: F | None = None, **jit_kwargs: Any) -> F:
    """Marks ``fun`` as a kernel: a pure array function run under the policy above.

    Use it as ``@kernel`` or ``@kernel(static_argnames=...)``; ``jit_kwargs`` go to
    ``jax.jit``. ``fun`` must be pure: it may not call ``hk.get_parameter``,
    ``hk.next_rng_key`` or other frame functions.

    Example:
        >>> from hk_core._src.core import kernels
        >>> scale = kernels.kernel(lambda x, s: s * x, static_argnames="s")
        >>> scale(jnp.ones([2]), s=3.0)
        Array([3., 3.], dtype=float32)
    """
    if fun is None:
        return functools.partial(kernel, **jit_kwargs)
    _NAMES.add(getattr(fun, "__name__", "<kernel>"))
    nested = jax.jit(fun, **jit_kwargs)  # eager: one dispatch; traced: one nested call
    inlined = jax.jit(fun, inline=_INLINE_EARLY, **jit_kwargs)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return (inlined if _LOOP.depth else nested)(*args, **kwargs)

    return call
