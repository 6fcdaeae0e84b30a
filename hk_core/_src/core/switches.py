"""``hk.experimental`` switches that flip one ``hk.config`` field and return its old value."""

from typing import Any

from hk_core._src.core import config as config_lib


def _switch(field: str, value: Any) -> Any:
    """Sets config ``field`` to ``value`` for this thread and returns its previous value."""
    previous = getattr(config_lib.get_config(), field)
    config_lib.set(**{field: value})
    return previous


def check_jax_usage(enabled: bool = True) -> bool:
    """Turns on (or off) the check that hk APIs are not used inside raw JAX transforms.

    When on, using module, parameter, state or RNG APIs inside a ``jax.vmap``, ``jax.jit``,
    ``jax.lax.scan``, ``jax.lax.cond``, ... that was opened *within* the transformed
    function raises ``JaxUsageError`` (a ``ValueError``): such code leaks tracers. The hk
    versions (``hk.vmap``, ``hk.scan``, ...) and JAX transforms applied to ``init``/``apply``
    stay allowed.

    Args:
        enabled: Whether to check.

    Returns:
        The previous setting.

    Example:
        >>> def f(x):
        ...     return jax.vmap(lambda row: hk.Linear(2)(row))(x)
        >>> previous = hk.experimental.check_jax_usage()
        >>> try:
        ...     hk.transform(f).init(0, jnp.ones([3, 2]))
        ... except ValueError as e:
        ...     print(type(e).__name__)
        JaxUsageError
        >>> _ = hk.experimental.check_jax_usage(previous)
    """
    return _switch("check_jax_usage", bool(enabled))


def module_auto_repr(enabled: bool) -> bool:
    """Turns the automatic ``repr`` of modules (``Linear(output_size=2)``) on or off.

    Args:
        enabled: Whether ``repr(module)`` lists the constructor arguments it was given.

    Returns:
        The previous setting.

    Example:
        >>> f = hk.transform(lambda: repr(hk.Linear(2)))
        >>> f.apply({}, None)
        'Linear(output_size=2)'
        >>> previous = hk.experimental.module_auto_repr(False)
        >>> f.apply({}, None).startswith('<')
        True
        >>> _ = hk.experimental.module_auto_repr(previous)
    """
    return _switch("module_auto_repr", bool(enabled))


def rng_reserve_size(size: int) -> int:
    """Sets how many keys an RNG sequence splits off at once when it runs out.

    Larger values make fewer ``jax.random.split`` calls, but change the values of the keys
    (so inits differ from the default of 1).

    Args:
        size: A positive number of keys.

    Returns:
        The previous size.

    Raises:
        ValueError: if ``size`` is not a positive int.

    Example:
        >>> previous = hk.experimental.rng_reserve_size(4)
        >>> seq = hk.PRNGSequence(0)
        >>> key = next(seq)
        >>> bool((key == jax.random.split(jax.random.PRNGKey(0), 5)[1]).all())
        True
        >>> hk.experimental.rng_reserve_size(previous)
        4
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"rng_reserve_size: size must be a positive int, got {size!r}.")
    return _switch("rng_reserve_size", size)
