"""Running a recurrent core over a sequence: ``static_unroll`` and ``dynamic_unroll``."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from hk_core._src.core import frame as frame_lib
from hk_core._src.core import stateful


def _swap_batch_time(tree: Any) -> Any:
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), tree)


def _check_sequence(fn_name: str, input_sequence: Any, time_major: bool) -> int:
    """Returns the number of steps; raises a clear error for leaves without a time axis."""
    leaves = jax.tree.leaves(input_sequence)
    if not leaves:
        raise ValueError(f"{fn_name}: input_sequence has no arrays to unroll over.")
    time_axis = 0 if time_major else 1
    lengths = set()
    for leaf in leaves:
        if jnp.ndim(leaf) <= time_axis:
            layout = "[T, ...]" if time_major else "[B, T, ...]"
            raise ValueError(
                f"{fn_name}: every input_sequence leaf needs a time axis ({layout} with "
                f"time_major={time_major}), got a leaf of shape {jnp.shape(leaf)}.")
        lengths.add(jnp.shape(leaf)[time_axis])
    if len(lengths) != 1:
        raise ValueError(
            f"{fn_name}: input_sequence leaves have different lengths on the time axis "
            f"{time_axis}: {sorted(lengths)}.")
    return lengths.pop()


def static_unroll(core: Callable[[Any, Any], tuple[Any, Any]], input_sequence: Any,
                  initial_state: Any, time_major: bool = True) -> tuple[Any, Any]:
    """Unrolls ``core`` with a Python loop (one traced copy of the core per step).

    Works outside ``hk.transform`` too, for cores that are plain functions.

    Args:
        core: ``(inputs, state) -> (outputs, next_state)``, e.g. an ``hk.RNNCore``.
        input_sequence: Pytree of ``[T, ...]`` arrays (``[B, T, ...]`` if not time major).
        initial_state: The state before the first step.
        time_major: Whether time is the leading axis of inputs and outputs.

    Returns:
        ``(output_sequence, final_state)``; outputs stacked on the time axis.

    Example:
        >>> def f(xs):
        ...     core = hk.LSTM(4)
        ...     return hk.static_unroll(core, xs, core.initial_state(2))
        >>> f = hk.transform(f)
        >>> xs = jnp.ones([5, 2, 3])
        >>> outs, state = f.apply(f.init(0, xs), None, xs)
        >>> outs.shape
        (5, 2, 4)
    """
    num_steps = _check_sequence("static_unroll", input_sequence, time_major)
    outputs = []
    state = initial_state
    for t in range(num_steps):
        if time_major:
            inputs = jax.tree.map(lambda x, t=t: x[t], input_sequence)
        else:
            inputs = jax.tree.map(lambda x, t=t: x[:, t], input_sequence)
        output, state = core(inputs, state)
        outputs.append(output)
    time_axis = 0 if time_major else 1
    output_sequence = jax.tree.map(lambda *steps: jnp.stack(steps, axis=time_axis), *outputs)
    return output_sequence, state


def dynamic_unroll(core: Callable[[Any, Any], tuple[Any, Any]], input_sequence: Any,
                   initial_state: Any, time_major: bool = True, reverse: bool = False,
                   return_all_states: bool = False, unroll: int = 1) -> tuple[Any, Any]:
    """Unrolls ``core`` with a scan (``hk.scan`` in a transform, ``jax.lax.scan`` outside).

    Args:
        core: ``(inputs, state) -> (outputs, next_state)``; build modules it uses outside it.
        input_sequence: Pytree of ``[T, ...]`` arrays (``[B, T, ...]`` if not time major).
        initial_state: The state before the first step.
        time_major: Whether time is the leading axis of inputs, outputs and states.
        reverse: Whether to run from the last step to the first.
        return_all_states: Return the state after every step instead of the final state.
        unroll: Steps per scan iteration (passed to the scan).

    Returns:
        ``(output_sequence, final_state)``, or ``(output_sequence, state_sequence)`` with
        ``return_all_states``.

    Example:
        >>> def f(xs):
        ...     core = hk.GRU(4)
        ...     return hk.dynamic_unroll(core, xs, core.initial_state(2))
        >>> f = hk.transform(f)
        >>> xs = jnp.ones([5, 2, 3])
        >>> outs, state = f.apply(f.init(0, xs), None, xs)
        >>> outs.shape, state.shape
        ((5, 2, 4), (2, 4))
    """
    _check_sequence("dynamic_unroll", input_sequence, time_major)
    scan = stateful.scan if frame_lib.inside_transform() else jax.lax.scan
    if not time_major:
        input_sequence = _swap_batch_time(input_sequence)

    def step(prev_state, inputs):
        outputs, next_state = core(inputs, prev_state)
        if return_all_states:
            return next_state, (outputs, next_state)
        return next_state, outputs

    final_state, scanned = scan(step, initial_state, input_sequence, reverse=reverse,
                                unroll=unroll)
    if return_all_states:
        output_sequence, state_sequence = scanned
    else:
        output_sequence, state_sequence = scanned, None
    if not time_major:
        output_sequence = _swap_batch_time(output_sequence)
        if return_all_states:
            state_sequence = _swap_batch_time(state_sequence)
    if return_all_states:
        return output_sequence, state_sequence
    return output_sequence, final_state
