"""The per-call context of ``init``/``apply``: a thread-local stack of ``Frame`` objects.

A frame holds everything one ``init`` or ``apply`` call carries: params, state, the RNG
sequence, the stack of running module methods (with their child-name counters) and the
interceptor chains. ``current_frame()`` is one attribute read and one list index.
"""

import itertools
import threading
from collections.abc import Mapping
from typing import Any

from hk_core._src.core import config as config_lib
from hk_core._src.core import errors

_CONFIG = config_lib.get_config()


class MethodScope:
    """One running module method (or name scope): the naming context for its children.

    Attributes:
        module: The module whose method runs; ``None`` for the top level of a transform.
        method_name: The method name used for naming children (``'__call__'``,
            ``'__init__'``, ...; ``hk.name_like`` may change it).
        bundle: The params/state key for ``get_parameter`` here; ``None`` while a module's
            constructor runs before ``super().__init__()`` named it.
        counters: Per-base counters for uniquifying child names (fresh per invocation).
        reserved: Child names already taken in this invocation.
    """

    __slots__ = ("module", "method_name", "bundle", "counters", "reserved")

    def __init__(self, module: Any, method_name: str | None, bundle: str | None):
        self.module = module
        self.method_name = method_name
        self.bundle = bundle
        self.counters: dict[str, int] = {}
        self.reserved: set[str] = set()


class Frame:
    """Everything one ``init``/``apply`` call reads and writes.

    ``params`` is the dict being built at init, or the mapping given to apply (read only).
    ``state`` holds current state values (a private copy, mutated in place);
    ``initial_state`` the first value of each state entry created in this call;
    ``input_state`` the state mapping given to apply.
    ``is_init`` is true in ``init``; otherwise ``params`` is read only (one flag, read on hot
    paths as a plain slot).
    """

    __slots__ = (
        "params", "state", "initial_state", "input_state", "rng", "is_init",
        "scopes", "pending_updaters", "trace_state", "name_scopes", "serial", "init_view",
        "__weakref__",
    )

    def __init__(self, params: Mapping, state: dict, input_state: Mapping, rng, is_init: bool):
        self.params = params
        self.state = state
        self.initial_state: dict[str, dict[str, Any]] = {}
        self.input_state = input_state
        self.rng = rng
        self.is_init = is_init
        self.scopes: list[MethodScope] = [MethodScope(None, None, "~")]
        self.pending_updaters: list = []
        # Modules record the serial of the frame they were built in (transparent_lift's
        # closure check); an int, so a module kept after the call does not keep the frame.
        self.serial = next(_SERIALS)
        # What `hk.get_params()`/`get_current_state()`/`get_initial_state()` show while an hk
        # wrapper (vmap, grad, cond...) runs its body at init: the params and state from
        # when the wrapper started (a stateful.FrameData), as in Haiku. None otherwise.
        self.init_view = None
        # The JAX trace this frame's code runs in; hk wrappers (hk.vmap, hk.cond, ...) swap
        # it while they trace their body. Compared only when `check_jax_usage` is on.
        # `None` when `check_jax_usage` is off. Config is read once per frame: the hot
        # paths then test frame slots, not the (thread-local) config.
        self.trace_state = opaque_trace_state() if _CONFIG.check_jax_usage else None
        self.name_scopes = _CONFIG.profiler_name_scopes

    @property
    def scope(self) -> MethodScope:
        """The innermost running method or name scope."""
        return self.scopes[-1]


_SERIALS = itertools.count()


class _ThreadFrames(threading.local):
    def __init__(self):
        self.frames: list[Frame] = []


_LOCAL = _ThreadFrames()


def frame_stack() -> list[Frame]:
    """This thread's stack of frames (innermost last). Mutate only through ``push``/``pop``."""
    return _LOCAL.frames


def current_frame(what: str = "This hk_core function") -> Frame:
    """Returns the innermost frame, or raises a clear error naming ``what`` outside a transform."""
    frames = _LOCAL.frames
    if not frames:
        raise errors.not_in_transform(what)
    frame = frames[-1]
    if frame.trace_state is not None:
        check_jax_usage(frame, what)
    return frame


def check_jax_usage(frame: Frame, what: str = "This hk_core function") -> None:
    """Raises ``JaxUsageError`` if code runs inside a raw JAX transform opened within ``frame``.

    The frame records the JAX trace that was current when it was entered (``init``/``apply``
    or an hk wrapper's body). A raw ``jax.vmap``/``jax.jit``/``lax.scan``... opened inside
    the transformed function makes a new trace current, which this detects.
    """
    if frame.trace_state is not None and frame.trace_state != opaque_trace_state():
        raise errors.JaxUsageError(
            f"{what} was used inside a raw JAX transform (jax.vmap, jax.jit, jax.lax.scan, "
            "jax.lax.cond, ...) applied within an hk.transform'ed function. Parameters, "
            "state and RNG would leak out of that transform as tracers. Use the hk_core "
            "versions (hk.vmap, hk.scan, hk.cond, hk.remat, ...) or apply the JAX transform "
            "to init/apply. (Checked because hk.experimental.check_jax_usage is enabled.)")


def opaque_trace_state():
    """JAX's current trace state (``jax.extend``, imported on first use: it is slow to import)."""
    from jax.extend import core as jax_core  # noqa: PLC0415 - only for check_jax_usage

    return jax_core.get_opaque_trace_state()


def inside_transform() -> bool:
    """Whether this thread is currently running an ``init`` or ``apply``."""
    return bool(_LOCAL.frames)


def push(frame: Frame) -> None:
    _LOCAL.frames.append(frame)


def pop() -> Frame:
    return _LOCAL.frames.pop()
