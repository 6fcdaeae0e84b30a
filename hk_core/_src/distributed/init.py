"""``sharded_init``: params born sharded, by jitting ``init`` with ``out_shardings``."""

from typing import Any

import jax
import numpy as np

from hk_core._src.distributed import rules as rules_lib


def _split_args(args: tuple, kwargs: dict) -> tuple[list, list[bool], Any]:
    leaves, treedef = jax.tree.flatten((args, kwargs))
    # Arrays are traced; anything else (flags, strings, ints that drive Python control flow)
    # is passed to init as is, as it would be without jit.
    traced = [isinstance(leaf, (jax.Array, np.ndarray, np.generic)) for leaf in leaves]
    return leaves, traced, treedef


def sharded_init(transformed: Any, mesh: jax.sharding.Mesh, rules: rules_lib.ShardingRules,
                 rng: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs ``transformed.init`` so that every parameter is created already sharded.

    ``init`` is first traced with ``jax.eval_shape`` (no arrays are made) to get the abstract
    params; ``rules`` turn them into ``NamedSharding`` objects, and ``init`` is then jitted with
    those as ``out_shardings``, so XLA partitions the initializers and each device only ever
    materializes its own shard (no full copy on the host or on any one device). Values equal
    an unsharded ``init`` with the same ``rng`` (JAX's partitionable threefry).

    Example:
        >>> from hk_core import distributed
        >>> mesh = distributed.make_mesh({"data": -1}, devices=jax.devices()[:1])
        >>> f = hk.transform(lambda x: hk.Linear(4)(x))
        >>> params = distributed.sharded_init(f, mesh, distributed.ShardingRules([]), 0,
        ...                                   jnp.ones([2, 3]))
        >>> params["linear"]["w"].sharding.spec
        P()

    Args:
        transformed: An ``hk.transform`` or ``hk.transform_with_state`` result (anything
            whose ``init(rng, *args, **kwargs)`` returns params or ``(params, state)``).
        mesh: The mesh to place params on.
        rules: Sharding rules for params (and state, which is replicated where unmatched).
        rng: As for ``init``: a PRNG key, an int seed, or ``None``.
        *args: Example inputs for ``init``. Arrays are traced; other values are static.
        **kwargs: Keyword inputs for ``init``, treated like ``args``.

    Returns:
        What ``init`` returns (params, or ``(params, state)``), with every array sharded as
        ``rules.shardings`` says. Dict keys come back sorted, as from any jitted function.

    Raises:
        ShardingRuleError: if a rule does not fit a parameter, or (strict rules) no rule
            matches one; raised before anything is materialized.
    """
    leaves, traced, treedef = _split_args(args, kwargs)
    arrays = [leaf for leaf, is_traced in zip(leaves, traced) if is_traced]

    def init(rng, arrays):
        it = iter(arrays)
        merged = [next(it) if is_traced else leaf for leaf, is_traced in zip(leaves, traced)]
        init_args, init_kwargs = jax.tree.unflatten(treedef, merged)
        return transformed.init(rng, *init_args, **init_kwargs)

    abstract = jax.eval_shape(init, rng, arrays)
    if isinstance(abstract, tuple) and len(abstract) == 2:  # transform_with_state: (params, state)
        shardings = rules.shardings({"params": abstract[0], "state": abstract[1]}, mesh)
        out_shardings = (shardings["params"], shardings["state"])
    else:
        out_shardings = rules.shardings({"params": abstract}, mesh)["params"]
    return jax.jit(init, out_shardings=out_shardings)(rng, arrays)
