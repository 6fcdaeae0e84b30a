"""The core as layers and nets see it: the names a user's own module may use, plus ``kernel``.

Layers (``_src/layers``) and nets (``_src/nets``) import the core only through this module,
as ``from hk_core._src.core import facade as hk``, so that each reads like a module a user
could write on ``import hk_core as hk``. Everything here is public API under the same name,
except :func:`kernel`, the one speed policy (``core/kernels.py``). Code that needs more of
the core than this (the frame stack, interceptors, lifts) is not a layer: it lives in
``_src/transforms``, ``_src/inspect`` or ``_src/mixed_precision``.
``hk_core_tests/layering_test.py`` checks this file by file.

Example:
    >>> from hk_core._src.core import facade as hk
    >>> class Scale(hk.Module):
    ...     def __call__(self, x):
    ...         return _times(x, hk.get_parameter("s", [], init=jnp.ones))
    >>> @hk.kernel
    ... def _times(x, s):
    ...     return x * s
    >>> f = hk.transform(lambda x: Scale()(x))
    >>> f.apply(f.init(None, 2.0), None, 2.0)
    Array(2., dtype=float32)
"""

from hk_core._src.core import data_structures as data_structures
from hk_core._src.core.kernels import kernel as kernel
from hk_core._src.core.module import Module as Module
from hk_core._src.core.module import transparent as transparent
from hk_core._src.core.params import get_parameter as get_parameter
from hk_core._src.core.params import get_state as get_state
from hk_core._src.core.params import set_state as set_state
from hk_core._src.core.rng import PRNGSequence as PRNGSequence
from hk_core._src.core.rng import maybe_next_rng_key as maybe_next_rng_key
from hk_core._src.core.rng import next_rng_key as next_rng_key
from hk_core._src.core.rng import next_rng_keys as next_rng_keys
from hk_core._src.core.transform import transform as transform
from hk_core._src.core.transform import transform_with_state as transform_with_state

__all__ = [
    "Module", "PRNGSequence", "data_structures", "get_parameter", "get_state", "kernel",
    "maybe_next_rng_key", "next_rng_key", "next_rng_keys", "set_state", "transform",
    "transform_with_state", "transparent",
]
