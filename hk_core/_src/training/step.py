"""``make_train_step``: loss → gradients → optimizer update, compiled once, buffers donated."""

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from hk_core._src.core import mesh_context
from hk_core._src.training import metrics as metrics_lib
from hk_core._src.training import train_state as train_state_lib

TrainStep = Callable[..., tuple[train_state_lib.TrainState, dict[str, jax.Array]]]


def _split_micro_batches(batch: Any, accumulation_steps: int) -> Any:
    """Reshapes every leaf ``[B, ...]`` of ``batch`` to ``[k, B // k, ...]``."""

    def split(path, leaf):
        size = leaf.shape[0] if getattr(leaf, "ndim", 0) else None
        if size is None or size % accumulation_steps:
            where = jax.tree_util.keystr(path) or "batch"
            raise ValueError(
                f"make_train_step: batch leaf {where} must have a leading batch axis divisible "
                f"by accumulation_steps={accumulation_steps}; got shape "
                f"{getattr(leaf, 'shape', ())}.")
        return leaf.reshape((accumulation_steps, size // accumulation_steps) + leaf.shape[1:])

    return jax.tree_util.tree_map_with_path(split, batch)


def _normalise_loss_output(out: Any, state: Any, has_aux: bool, has_state: bool):
    """Turns what ``loss_fn`` returned into ``(loss, (new_state, metrics))``."""
    if not (has_aux or has_state):
        return out, (state, {})
    if not isinstance(out, tuple) or len(out) != 2:
        expected = "(loss, (new_state, metrics))" if has_aux and has_state else (
            "(loss, metrics)" if has_aux else "(loss, new_state)")
        got = (f"an array of shape {tuple(out.shape)}" if hasattr(out, "shape")
               else type(out).__name__)
        raise TypeError(
            f"make_train_step: with has_aux={has_aux}, has_state={has_state} loss_fn must "
            f"return {expected}; got {got}.")
    loss, aux = out
    if has_aux and has_state:
        new_state, metrics = aux
    elif has_aux:
        new_state, metrics = state, aux
    else:
        new_state, metrics = aux, {}
    if not isinstance(metrics, Mapping):
        raise TypeError(
            "make_train_step: the metrics loss_fn returns must be a mapping of name to "
            f"scalar; got {type(metrics).__name__}.")
    return loss, (new_state, dict(metrics))


def make_train_step(
    loss_fn: Callable[..., Any],
    *,
    has_aux: bool = False,
    has_state: bool = False,
    accumulation_steps: int = 1,
    donate: bool = True,
    axis_name: str | None = None,
) -> TrainStep:
    """Builds ``train_step(train_state, batch, rng=None) -> (train_state, metrics)``.

    The step computes the loss and its gradient with respect to ``params``, then calls
    ``TrainState.apply_gradients``; all of it is compiled by one ``jax.jit``. With
    ``donate=True`` the incoming ``TrainState``'s buffers are donated, so params and
    optimizer state are updated in place and the old ``TrainState`` must not be used again.
    Only the state's own buffers are donated: ``TrainState.create`` copies the params it
    is given, so the caller's ``params`` (e.g. from ``init``) stay usable after any number
    of steps.

    ``loss_fn(params, state, rng, batch)`` receives the model state (``{}`` for a stateless
    model) and returns, depending on the flags:

    * ``loss`` (a scalar; the default),
    * ``(loss, metrics)`` with ``has_aux=True`` (``metrics``: a dict of scalars),
    * ``(loss, new_state)`` with ``has_state=True``,
    * ``(loss, (new_state, metrics))`` with both.

    With ``accumulation_steps=k`` every leaf of ``batch`` is split along its leading axis
    into ``k`` equal micro-batches, processed one after another by ``jax.lax.scan`` (so
    memory is that of one micro-batch); gradients and metrics are averaged over them and
    the model state is threaded through in order. When ``loss_fn`` returns a mean over the
    examples this is the same update as one step on the whole batch. ``rng`` is split into
    ``k`` keys, one per micro-batch.

    With ``axis_name`` the gradients and metrics are also averaged over that mapped axis
    (``jax.lax.pmean``): call the step under ``jax.shard_map``, ``jax.pmap`` or ``jax.vmap``
    with that axis name, for data parallelism.

    Args:
        loss_fn: ``(params, state, rng, batch) -> loss`` or a tuple, as above.
        has_aux: Whether ``loss_fn`` also returns a dict of metrics.
        has_state: Whether ``loss_fn`` also returns the new model state.
        accumulation_steps: Number of micro-batches per step (at least 1).
        donate: Whether to donate the incoming ``TrainState``'s buffers.
        axis_name: A mapped axis to average gradients and metrics over, or None.

    Returns:
        A jitted ``train_step(train_state, batch, rng=None)`` returning the new state and a
        dict of metrics: ``"loss"`` plus those from ``loss_fn``, averaged.

    Raises:
        ValueError: if ``accumulation_steps`` is less than 1; later, if a batch leaf's
            leading axis is not divisible by it.

    Example:
        >>> import optax
        >>> from hk_core import training
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(1)(x)))
        >>> x, y = jnp.ones([8, 3]), jnp.ones([8, 1])
        >>> def loss_fn(params, state, rng, batch):
        ...     x, y = batch
        ...     return jnp.mean((model.apply(params, x) - y) ** 2)
        >>> ts = training.TrainState.create(
        ...     apply_fn=model.apply, params=model.init(jax.random.key(0), x),
        ...     tx=optax.sgd(0.1))
        >>> step = training.make_train_step(loss_fn, accumulation_steps=2)
        >>> ts, metrics = step(ts, (x, y))
        >>> int(ts.step), sorted(metrics)
        (1, ['loss'])
    """
    if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(
            f"make_train_step: accumulation_steps must be an int >= 1; got "
            f"{accumulation_steps!r}.")

    def loss_and_aux(params, state, rng, batch):
        out = loss_fn(params, state, rng, batch)
        return _normalise_loss_output(out, state, has_aux, has_state)

    grad_fn = jax.value_and_grad(loss_and_aux, has_aux=True)

    def accumulate(params, state, rng, batch):
        micro_batches = _split_micro_batches(batch, accumulation_steps)
        keys = None if rng is None else jax.random.split(rng, accumulation_steps)

        def body(carry, inputs):
            grad_sum, state = carry
            micro_batch, key = inputs
            (loss, (state, metrics)), grads = grad_fn(params, state, key, micro_batch)
            grad_sum = jax.tree.map(jnp.add, grad_sum, grads)
            return (grad_sum, state), {**metrics, "loss": loss}

        zeros = jax.tree.map(jnp.zeros_like, params)
        (grad_sum, state), stacked = jax.lax.scan(body, (zeros, state), (micro_batches, keys))
        grads = jax.tree.map(lambda g: g / accumulation_steps, grad_sum)
        return grads, state, metrics_lib.mean_over_leading_axis(stacked)

    def train_step(train_state, batch, rng=None):
        if accumulation_steps == 1:
            # No scan for the common case: the same program as a hand-written step.
            (loss, (state, metrics)), grads = grad_fn(
                train_state.params, train_state.state, rng, batch)
            metrics = {**metrics, "loss": loss}
        else:
            grads, state, metrics = accumulate(
                train_state.params, train_state.state, rng, batch)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            metrics = jax.lax.pmean(metrics, axis_name)
        return train_state.apply_gradients(grads=grads, state=state), metrics

    # Traced under the inputs' mesh where it has Explicit axes (see core/mesh_context.py):
    # no jax.set_mesh needed around the step.
    return jax.jit(mesh_context.under_inputs_mesh(train_step),
                   donate_argnums=(0,) if donate else ())
