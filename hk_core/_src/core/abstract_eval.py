"""``hk.experimental.fast_eval_shape``: ``jax.eval_shape`` that also accepts module code."""

from collections.abc import Callable
from typing import Any

import jax

from hk_core._src.core import frame as frame_lib
from hk_core._src.core import stateful


def fast_eval_shape(fun: Callable, *args, **kwargs) -> Any:
    """Returns the output shapes of ``fun(*args, **kwargs)`` without computing anything.

    Inside a transform this is ``hk.eval_shape`` (module code may run; nothing it creates
    is kept); outside, ``jax.eval_shape``. Kept for Haiku compatibility (Haiku exposes it
    in ``hk.experimental`` but not in ``__all__``).

    Example:
        >>> hk.experimental.fast_eval_shape(lambda x: x @ x.T, jnp.ones([2, 3])).shape
        (2, 2)
    """
    if frame_lib.inside_transform():
        return stateful.eval_shape(fun, *args, **kwargs)
    return jax.eval_shape(fun, *args, **kwargs)
