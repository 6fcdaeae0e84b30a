"""Global switches (``hk.config``): read once where they matter, set with ``set`` or ``context``."""

import contextlib
import dataclasses
import threading
from collections.abc import Iterator


@dataclasses.dataclass
class Config:
    """hk_core's global configuration; field defaults match Haiku's."""

    check_jax_usage: bool = False
    module_auto_repr: bool = True
    restore_flatmap: bool = False
    rng_reserve_size: int = 1
    # hk_core's own switch: wrap each module method call in `jax.named_scope(<module name>)`
    # so profiler and HLO op names carry module paths (Haiku uses `jax.named_call`).
    profiler_name_scopes: bool = True


_CONFIG = Config()
_LOCK = threading.Lock()


def get_config() -> Config:
    """Returns the live configuration object (do not keep copies of its fields)."""
    return _CONFIG


def set(  # noqa: A001 - matches hk.config.set
    *,
    check_jax_usage: bool | None = None,
    module_auto_repr: bool | None = None,
    restore_flatmap: bool | None = None,
    rng_reserve_size: int | None = None,
    profiler_name_scopes: bool | None = None,
) -> None:
    """Sets the given (non-None) fields globally.

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
    with _LOCK:
        for name, value in values.items():
            if value is not None:
                setattr(_CONFIG, name, value)


@contextlib.contextmanager
def context(
    *,
    check_jax_usage: bool | None = None,
    module_auto_repr: bool | None = None,
    restore_flatmap: bool | None = None,
    rng_reserve_size: int | None = None,
    profiler_name_scopes: bool | None = None,
) -> Iterator[None]:
    """Sets the given fields inside the ``with`` block and restores them after it.

    Example:
        >>> with hk.config.context(rng_reserve_size=4):
        ...     print(hk.config.get_config().rng_reserve_size)
        4
        >>> hk.config.get_config().rng_reserve_size
        1
    """
    previous = dataclasses.replace(_CONFIG)
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
        with _LOCK:
            for field in dataclasses.fields(Config):
                setattr(_CONFIG, field.name, getattr(previous, field.name))
