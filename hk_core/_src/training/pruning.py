"""Magnitude pruning as an optax transformation: any model trains with a growing sparsity.

Gradual magnitude pruning (Zhu & Gupta, 2017, "To prune, or not to prune"): at each step
the chosen weights whose magnitude is among the smallest ``sparsity(step)`` fraction of
their tensor are set to zero, with ``sparsity`` rising from 0 to its target along a
polynomial (cubic) curve: ``optax.polynomial_schedule(0.0, target, power=3, ...)``.

A pruned weight never comes back: the new mask is computed among the weights the old mask
kept, so once zero a weight stays zero through every later step (Adam's momentum would
otherwise regrow it).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class MagnitudePruningState(NamedTuple):
    """The state of :func:`magnitude_pruning`.

    Example:
        >>> from hk_core import training
        >>> state = training.magnitude_pruning(0.5).init({"linear": {"w": jnp.ones([2, 2])}})
        >>> int(state.count), state.masks["linear"]["w"].tolist()
        (0, [[True, True], [True, True]])
    """

    count: jax.Array  # int32 []: steps taken
    masks: Any  # like params: bool arrays for pruned weights, a bool scalar True elsewhere


def _default_include(module_name: str, name: str, value: Any) -> bool:
    """Weights of Linear and Conv* layers (``w``, at least 2-D); not biases, norms, embeddings."""
    del module_name
    return name == "w" and jnp.ndim(value) >= 2


def _prune(value: jax.Array, keep: jax.Array, sparsity: jax.Array) -> jax.Array:
    """Returns a mask keeping the largest ``1 - sparsity`` of ``|value|`` among ``keep``."""
    flat = jnp.where(keep, jnp.abs(value), -1.0).reshape(-1)  # pruned ones sort first
    num_pruned = jnp.floor(sparsity * flat.size).astype(jnp.int32)
    ranks = jnp.argsort(jnp.argsort(flat))  # 0 = smallest magnitude
    return (ranks >= num_pruned).reshape(value.shape) & keep


def magnitude_pruning(
    sparsity: Callable[[jax.Array], jax.Array] | float,
    *,
    include: Callable[[str, str, Any], bool] | None = None,
) -> optax.GradientTransformation:
    """Prunes the smallest-magnitude weights of each chosen tensor, to a scheduled sparsity.

    Chain it last, after the optimizer: it turns the optimizer's updates into ones that
    land the chosen params on ``(params + updates) * mask``.

    Args:
        sparsity: The fraction of each chosen tensor's entries to zero, as a function of
            the step (an optax schedule) or a constant. The pruning literature's schedule
            is ``optax.polynomial_schedule(0.0, target, power=3, transition_steps=...,
            transition_begin=...)``.
        include: ``(module_name, name, value) -> bool`` choosing the params to prune.
            Defaults to the ``w`` of Linear and Conv* layers (biases, norms and
            embeddings are left dense).

    Returns:
        An optax transformation; its ``update`` needs ``params``.

    Example:
        >>> import optax
        >>> from hk_core import training
        >>> params = {"linear": {"w": jnp.arange(1.0, 9.0).reshape(4, 2), "b": jnp.ones(2)}}
        >>> tx = optax.chain(optax.sgd(0.0), training.magnitude_pruning(0.5))
        >>> state = tx.init(params)
        >>> updates, state = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
        >>> optax.apply_updates(params, updates)["linear"]["w"].tolist()
        [[0.0, 0.0], [0.0, 0.0], [5.0, 6.0], [7.0, 8.0]]
    """
    include = include or _default_include
    schedule = sparsity if callable(sparsity) else (lambda count: jnp.asarray(sparsity))

    def chosen(params: Any) -> Any:
        return {m: {n: bool(include(m, n, v)) for n, v in bundle.items()}
                for m, bundle in params.items()}

    def init_fn(params: Any) -> MagnitudePruningState:
        masks = jax.tree.map(
            lambda pick, v: jnp.ones(jnp.shape(v), bool) if pick else jnp.asarray(True),
            chosen(params), params)
        return MagnitudePruningState(count=jnp.zeros([], jnp.int32), masks=masks)

    def update_fn(updates: Any, state: MagnitudePruningState, params: Any = None
                  ) -> tuple[Any, MagnitudePruningState]:
        if params is None:
            raise ValueError("magnitude_pruning: update needs params (the weights to prune "
                             "are chosen by the magnitude of params + updates).")
        target = schedule(state.count)
        candidate = optax.apply_updates(params, updates)
        masks = jax.tree.map(
            lambda pick, v, keep: _prune(v, keep, target) if pick else keep,
            chosen(params), candidate, state.masks)
        # Unchosen params keep their updates as they are (v - p would round them).
        new_updates = jax.tree.map(
            lambda pick, u, v, p, keep: jnp.where(keep, v, 0) - p if pick else u,
            chosen(params), updates, candidate, params, masks)
        return new_updates, MagnitudePruningState(count=state.count + 1, masks=masks)

    return optax.GradientTransformation(init_fn, update_fn)


def sparsity_of(params: Any, include: Callable[[str, str, Any], bool] | None = None) -> float:
    """The fraction of exact zeros among the params :func:`magnitude_pruning` would prune.

    Example:
        >>> from hk_core import training
        >>> training.sparsity_of({"linear": {"w": jnp.array([[0.0, 1.0], [0.0, 0.0]]),
        ...                                  "b": jnp.zeros(2)}})
        0.75
    """
    include = include or _default_include
    picked = [v for m, bundle in params.items() for n, v in bundle.items() if include(m, n, v)]
    total = sum(int(jnp.size(v)) for v in picked)
    zeros = sum(int(jnp.sum(v == 0)) for v in picked)
    return zeros / total if total else 0.0
