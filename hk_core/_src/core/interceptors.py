"""Method interceptors (``hk.intercept_methods``): a thread-local chain around module methods.

Each thread has its own stack. Interceptors installed with ``install_global`` (used by
``hk.mixed_precision``) sit at the bottom of every thread's stack, so they run outermost.
"""

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple


class MethodContext(NamedTuple):
    """What an interceptor knows about the module method it wraps.

    Attributes:
        module: The module whose method runs (during construction it has no
            ``module_name`` yet).
        method_name: The method's name (``'__init__'`` for construction; the property name
            for property accessors).
        orig_method: The original method, bound to ``module``.
        orig_class: The class that defined the method.

    Example:
        >>> def show(next_fun, args, kwargs, context):
        ...     print(context.method_name, context.orig_class.__name__)
        ...     return next_fun(*args, **kwargs)
        >>> def f(x):
        ...     with hk.intercept_methods(show):
        ...         return hk.Linear(1)(x)
        >>> _ = hk.transform(f).init(0, jnp.ones([1, 2]))
        __init__ Linear
        __call__ Linear
    """

    module: Any
    method_name: str
    orig_method: Callable
    orig_class: type


class _Stack(list):
    # A list that can be weakly referenced, so the registry below never keeps a finished
    # thread's stack alive.
    __slots__ = ("__weakref__",)


_GLOBAL: list[Callable] = []
_ALL_STACKS: "weakref.WeakValueDictionary[int, _Stack]" = weakref.WeakValueDictionary()
_NEXT_ID = itertools.count()
_GLOBAL_LOCK = threading.Lock()


class _ThreadInterceptors(threading.local):
    def __init__(self):
        with _GLOBAL_LOCK:
            self.stack: list[Callable] = _Stack(_GLOBAL)
            _ALL_STACKS[next(_NEXT_ID)] = self.stack


_LOCAL = _ThreadInterceptors()


def install_global(interceptor: Callable) -> None:
    """Installs ``interceptor`` for every thread, for the rest of the process.

    Global interceptors run before (outside) those of ``intercept_methods``, in the order
    they were installed. Threads that already have a stack get it inserted below their
    own entries; new threads start with all global interceptors.
    """
    with _GLOBAL_LOCK:
        position = len(_GLOBAL)
        _GLOBAL.append(interceptor)
        # Every stack starts with the global entries (intercept_methods only pushes and
        # pops at the end), so `position` is right for each of them.
        for stack in list(_ALL_STACKS.values()):
            stack.insert(position, interceptor)


def active() -> list[Callable]:
    """The interceptors in force on this thread, outermost first."""
    return _LOCAL.stack


def run(interceptors: list[Callable], bound: Callable, args: tuple, kwargs: dict,
        context: MethodContext) -> Any:
    """Calls ``bound(*args, **kwargs)`` through ``interceptors`` (outermost first)."""
    chain = tuple(interceptors)

    def call(index: int, args, kwargs):
        if index == len(chain):
            return bound(*args, **kwargs)
        return chain[index](lambda *a, **k: call(index + 1, a, k), args, kwargs, context)

    return call(0, args, kwargs)


@contextlib.contextmanager
def intercept_methods(interceptor: Callable) -> Iterator[None]:
    """Routes every module method call through ``interceptor`` while active.

    ``interceptor(next_fun, args, kwargs, context)`` must call ``next_fun(*args, **kwargs)``
    to run the method; ``context`` is a ``MethodContext``.

    Example:
        >>> seen = []
        >>> def log(next_fun, args, kwargs, context):
        ...     seen.append((context.module.module_name, context.method_name))
        ...     return next_fun(*args, **kwargs)
        >>> def f(x):
        ...     linear = hk.Linear(1)
        ...     with hk.intercept_methods(log):
        ...         return linear(x)
        >>> _ = hk.transform(f).init(0, jnp.ones([1, 1]))
        >>> seen
        [('linear', '__call__')]
    """
    _LOCAL.stack.append(interceptor)
    try:
        yield
    finally:
        _LOCAL.stack.pop()
