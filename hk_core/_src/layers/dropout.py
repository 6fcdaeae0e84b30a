"""``hk.dropout``: zero entries at random and rescale the rest."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from hk_core._src.layers import errors


def dropout(rng: jax.Array, rate: float, x: jax.Array,
            broadcast_dims: Sequence[int] = ()) -> jax.Array:
    """Zeroes each entry of ``x`` with probability ``rate`` and scales the rest by ``1/(1-rate)``.

    Args:
        rng: The key for the Bernoulli mask.
        rate: Probability of dropping an entry, in ``[0, 1)``; 0 returns ``x``.
        x: The array.
        broadcast_dims: Axes along which the mask is shared (size 1 in the mask).

    Returns:
        An array like ``x``.

    Example:
        >>> y = hk.dropout(jax.random.PRNGKey(0), 0.5, jnp.ones([1000]))
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
    """
    if not isinstance(rate, jax.core.Tracer):
        if rate < 0 or rate >= 1:
            raise errors.ConfigurationError("rate must be in [0, 1).", argument="rate",
                                            expected="in [0, 1)", got=rate)
        if rate == 0.0:
            return x
    keep_rate = 1.0 - rate
    mask_shape = list(x.shape)
    for dim in broadcast_dims:
        if dim > x.ndim:
            raise errors.ConfigurationError(
                f"Broadcast dimension does not exist: got {dim} for an input of rank {x.ndim} "
                f"(shape {x.shape}).", argument="broadcast_dims",
                expected=f"axes of an input of rank {x.ndim}", got=dim)
        mask_shape[dim] = 1
    keep = jax.random.bernoulli(rng, keep_rate, shape=mask_shape)
    keep = jnp.broadcast_to(keep, x.shape)
    return jnp.where(keep, x / keep_rate, jnp.zeros_like(x))
