"""``TrainState``: the step counter, params, model state and optimizer state as one pytree."""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax


def _owned(tree: Any, seen: set[int], *, copy_all: bool) -> Any:
    """Copies ``tree``'s ``jax.Array`` leaves (all, or those already in ``seen``), recording ids.

    A donated buffer must belong to one leaf of the donated pytree only; identity of the
    Python objects is what can be checked cheaply (JAX returns one object per buffer).
    """

    def own(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array):
            return leaf
        if copy_all or id(leaf) in seen:
            leaf = leaf.copy()
        seen.add(id(leaf))
        return leaf

    return jax.tree.map(own, tree)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Everything a training step reads and replaces, as one pytree.

    ``step``, ``params``, ``state`` and ``opt_state`` are pytree children, so a whole
    ``TrainState`` passes through ``jax.jit`` (with its buffers donated), ``jax.tree.map``
    and checkpointing like any nest of arrays. ``apply_fn`` and the optax transformation
    ``tx`` are static fields: they travel in the tree definition, are never traced, and a
    jitted step recompiles only if they change.

    ``state`` is the model state of ``hk.transform_with_state`` (e.g. BatchNorm averages);
    it is ``{}`` for stateless models.

    **The state owns its buffers.** :meth:`create` copies the ``params`` and ``state``
    it is given (and any optimizer-state array that would share a buffer with them), so a
    train step that donates the ``TrainState`` (``make_train_step``'s default) frees only
    the state's own arrays: the caller's ``params`` stay usable. The copy costs one more
    params-sized allocation until the caller drops its own reference. A ``TrainState``
    built directly (``TrainState(...)``) or through :meth:`replace` holds the arrays it is
    given as they are; a donating step consumes them.

    Example:
        >>> import optax
        >>> from hk_core.training import TrainState
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> params = model.init(jax.random.key(0), jnp.ones([1, 3]))
        >>> ts = TrainState.create(apply_fn=model.apply, params=params, tx=optax.sgd(0.5))
        >>> grads = jax.tree.map(jnp.ones_like, ts.params)
        >>> ts = ts.apply_gradients(grads=grads)
        >>> int(ts.step), ts.params["linear"]["b"].tolist()
        (1, [-0.5, -0.5])
    """

    step: jax.Array
    params: Any
    state: Any
    opt_state: Any
    apply_fn: Callable[..., Any] | None = dataclasses.field(
        default=None, metadata={"static": True})
    tx: optax.GradientTransformation | None = dataclasses.field(
        default=None, metadata={"static": True})

    @classmethod
    def create(cls, *, apply_fn: Callable[..., Any] | None, params: Any,
               tx: optax.GradientTransformation, state: Any = None) -> "TrainState":
        """Starts training: step 0 and a fresh optimizer state for ``params``.

        Args:
            apply_fn: The model's ``apply`` (kept for the user's loss function; may be None).
            params: The model's parameters, e.g. from ``init``.
            tx: The optax transformation that turns gradients into updates.
            state: The model state from ``transform_with_state``'s ``init``; None means
                ``{}`` (a stateless model).

        Returns:
            A ``TrainState`` with ``step`` an int32 zero that owns its buffers: ``params``
            and ``state`` are copied, so donating the result never deletes the caller's
            arrays.

        Example:
            >>> import optax
            >>> from hk_core.training import TrainState
            >>> params = {"linear": {"w": jnp.ones([2, 2])}}
            >>> ts = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.1))
            >>> ts.params["linear"]["w"] is params["linear"]["w"]
            False
        """
        seen: set[int] = set()
        params = _owned(params, seen, copy_all=True)
        state = _owned({} if state is None else state, seen, copy_all=True)
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            state=state,
            # Some transformations keep a params-shaped array in their state that may be the
            # very array they were given (or one another leaf holds): never donate one
            # buffer twice.
            opt_state=_owned(tx.init(params), seen, copy_all=False),
            apply_fn=apply_fn,
            tx=tx,
        )

    def apply_gradients(self, *, grads: Any, state: Any = None, **changes: Any) -> "TrainState":
        """Returns the state after one optimizer update.

        Args:
            grads: Gradients with the structure of ``params``.
            state: The new model state (e.g. from ``apply`` of a ``transform_with_state``);
                None keeps the current one.
            **changes: Other fields to replace in the result (e.g. ``apply_fn``).

        Returns:
            A new ``TrainState``: ``step + 1``, params updated with
            ``optax.apply_updates``, the new optimizer state and the new model state.

        Raises:
            ValueError: if ``grads`` does not have the structure of ``params``.
        """
        if self.tx is None:
            raise ValueError(
                "TrainState.apply_gradients: this state has no optimizer (tx is None); build "
                "it with TrainState.create(apply_fn=..., params=..., tx=...).")
        params_def = jax.tree.structure(self.params)
        grads_def = jax.tree.structure(grads)
        if grads_def != params_def:
            raise ValueError(
                "TrainState.apply_gradients: grads must have the structure of params; "
                f"expected {params_def}, got {grads_def}.")
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return dataclasses.replace(
            self,
            step=self.step + 1,
            params=optax.apply_updates(self.params, updates),
            state=self.state if state is None else state,
            opt_state=opt_state,
            **changes,
        )

    def replace(self, **changes: Any) -> "TrainState":
        """Returns a copy with the given fields replaced (``dataclasses.replace``).

        Example:
            >>> import optax
            >>> from hk_core.training import TrainState
            >>> ts = TrainState.create(apply_fn=None, params={"m": {"w": jnp.ones(2)}},
            ...                        tx=optax.sgd(1.0))
            >>> int(ts.replace(step=jnp.asarray(7)).step)
            7
        """
        return dataclasses.replace(self, **changes)
