"""Switches (``hk.config``): read where they matter, set with ``set`` or ``context``.

As in Haiku, settings are per thread: ``set``/``context`` in one thread never change what
another thread's transforms see. The main thread's settings are the defaults a thread
starts from (copied when it first reads them).
"""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_DEFAULTS = {
    "check_jax_usage": False,
    "module_auto_repr": True,
    "restore_flatmap": False,
    "rng_reserve_size": 1,
    # hk_core's own switch: wrap each module method call in `jax.named_scope(<module name>)`
    # so profiler and HLO op names carry module paths (Haiku uses `jax.named_call`).
    "profiler_name_scopes": True,
}
_MAIN_VALUES = dict(_DEFAULTS)  # the main thread's current settings
_LOCK = threading.Lock()


class Config(threading.local):
    """hk_core's configuration as this thread sees it; defaults match Haiku's.

    Attributes:
        check_jax_usage: Raise on hk APIs used inside raw JAX transforms.
        module_auto_repr: ``repr(module)`` lists its constructor arguments.
        restore_flatmap: Legacy: checkpoint-restored structures use ``FlatMap``.
        rng_reserve_size: Keys an RNG sequence splits off at once.
        profiler_name_scopes: Module calls label traced ops with the module's name.

    Example:
        >>> with hk.config.context(module_auto_repr=False):
        ...     hk.config.get_config().module_auto_repr
        False
        >>> hk.config.get_config().module_auto_repr
        True
    """

    check_jax_usage: bool
    module_auto_repr: bool
    restore_flatmap: bool
    rng_reserve_size: int
    profiler_name_scopes: bool

    def __init__(self):
        # Runs once per thread, on that thread's first read.
        with _LOCK:
            self.__dict__.update(_MAIN_VALUES)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _DEFAULTS)
        return f"Config({fields})"


_CONFIG = Config()


def get_config() -> Config:
    """Returns the live configuration object (its fields are this thread's settings).

    Example:
        >>> hk.config.get_config().rng_reserve_size
        1
    """
    return _CONFIG


def _apply(values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(_CONFIG, name, value)
    if threading.current_thread() is threading.main_thread():
        with _LOCK:
            _MAIN_VALUES.update(values)


def set(  # noqa: A001 - matches hk.config.set
    *,
    check_jax_usage: bool | None = None,
    module_auto_repr: bool | None = None,
    restore_flatmap: bool | None = None,
    rng_reserve_size: int | None = None,
    profiler_name_scopes: bool | None = None,
) -> None:
    """Sets the given (non-None) fields for this thread.

    Example:
        >>> hk.config.set(module_auto_repr=True)
        >>> hk.config.get_config().module_auto_repr
        True
    """
    values = dict(
        check_jax_usage=check_jax_usage,
        module_auto_repr=module_auto_repr,
        restore_flatmap=restore_flatmap,
        rng_reserve_size=rng_reserve_size,
        profiler_name_scopes=profiler_name_scopes,
    )
    _apply({name: value for name, value in values.items() if value is not None})


@contextlib.contextmanager
def context(
    *,
    check_jax_usage: bool | None = None,
    module_auto_repr: bool | None = None,
    restore_flatmap: bool | None = None,
    rng_reserve_size: int | None = None,
    profiler_name_scopes: bool | None = None,
) -> Iterator[None]:
    """Sets the given fields for this thread inside the ``with`` block, then restores them.

    Example:
        >>> with hk.config.context(rng_reserve_size=4):
        ...     print(hk.config.get_config().rng_reserve_size)
        4
        >>> hk.config.get_config().rng_reserve_size
        1
    """
    previous = {name: getattr(_CONFIG, name) for name in _DEFAULTS}
    set(
        check_jax_usage=check_jax_usage,
        module_auto_repr=module_auto_repr,
        restore_flatmap=restore_flatmap,
        rng_reserve_size=rng_reserve_size,
        profiler_name_scopes=profiler_name_scopes,
    )
    try:
        yield
    finally:
        _apply(previous)
