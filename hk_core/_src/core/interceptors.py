"""Method interceptors (``hk.intercept_methods``): a thread-local chain around module methods."""

import contextlib
import threading
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
    """

    module: Any
    method_name: str
    orig_method: Callable
    orig_class: type


class _ThreadInterceptors(threading.local):
    def __init__(self):
        self.stack: list[Callable] = []


_LOCAL = _ThreadInterceptors()


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
