"""``hk.experimental.optimize_rng_use``: split all the keys a function will draw at once."""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from hk_core._src.core import frame as frame_lib
from hk_core._src.core import rng as rng_lib
from hk_core._src.core import stateful

F = TypeVar("F", bound=Callable[..., Any])


def optimize_rng_use(fun: F) -> F:
    """Makes ``fun`` reserve every key it draws in one ``jax.random.split``.

    Before each call, ``fun`` is traced abstractly (with ``hk.eval_shape``: nothing is
    computed or kept) to count the keys it draws with ``hk.next_rng_key``,
    ``hk.next_rng_keys`` and ``hk.maybe_next_rng_key``; that many keys are then reserved at
    once and ``fun`` runs for real. Compilation gets one split instead of one per key, but
    the keys differ from those of an unoptimized call. Keys drawn inside hk control flow
    in ``fun`` are counted too (possibly more than are drawn, e.g. both ``hk.cond``
    branches); extra reserved keys are simply used by later draws.

    Args:
        fun: A function that runs inside ``hk.transform`` and draws keys.

    Returns:
        ``fun`` wrapped; same signature and outputs.

    Example:
        >>> @hk.experimental.optimize_rng_use
        ... def noise():
        ...     return [hk.next_rng_key() for _ in range(3)]
        >>> keys = hk.transform(noise).apply({}, jax.random.PRNGKey(0))
        >>> expected = jax.random.split(jax.random.PRNGKey(0), 4)[1:]
        >>> bool((jnp.stack(keys) == expected).all())
        True
    """

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        frame = frame_lib.current_frame("`hk.experimental.optimize_rng_use`")
        if frame.rng is not None:
            with rng_lib.counting_keys() as count:
                # Closing over the arguments keeps Python values (flags, sizes) static.
                stateful.eval_shape(lambda: fun(*args, **kwargs))
            if count():
                frame.rng.reserve(count())
        return fun(*args, **kwargs)

    return wrapper
