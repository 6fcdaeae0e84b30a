"""``hk.testing.transform_and_run``: run a test body inside init and apply."""

import functools
from collections.abc import Callable
from typing import Any

import jax

from hk_core._src.core import transform as transform_lib


def transform_and_run(f: Callable | None = None, seed: int | None = 42, run_apply: bool = True,
                      jax_transform: Callable | None = None, *,
                      map_rng: Callable | None = None) -> Any:
    """Decorator: runs ``f`` under ``init`` and then ``apply``, returning apply's output.

    Usable bare (``@hk.testing.transform_and_run``) or with arguments. ``seed=None`` runs
    without an rng; ``jax_transform`` (e.g. ``jax.jit``) is applied to init and apply;
    ``map_rng`` maps the key before each call.

    Example:
        >>> @hk.testing.transform_and_run
        ... def test_linear():
        ...     return hk.Linear(2)(jnp.ones([1, 3])).shape
        >>> test_linear()
        (1, 2)
    """
    if f is None:
        return functools.partial(transform_and_run, seed=seed, run_apply=run_apply,
                                 jax_transform=jax_transform, map_rng=map_rng)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        transformed = transform_lib.transform_with_state(lambda: f(*args, **kwargs))
        init, apply = transformed.init, transformed.apply
        if jax_transform is not None:
            init, apply = jax_transform(init), jax_transform(apply)
        key = None if seed is None else jax.random.PRNGKey(seed)
        init_key = key if map_rng is None or key is None else map_rng(key)
        params, state = init(init_key)
        if not run_apply:
            return None
        apply_key = key if map_rng is None or key is None else map_rng(key)
        out, _ = apply(params, state, apply_key)
        return out

    return wrapper
