"""``hk.layer_stack``: repeat a layer function ``n`` times with stacked parameters.

The layer function is transformed on its own (``transform_with_state``); its params and
state get a leading ``[n]`` axis and are stored in the outer transform through
``lift_with_state`` (or ``transparent_lift_with_state``), so they appear under the stack's
scope name in sorted order. Both the init and the apply run as one ``jax.lax.scan`` each,
so tracing costs the same for 2 layers or 200. The RNG algorithm is Haiku's, step for step
(API.md §3.9), so a seed gives the same init as before the switch.
"""

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from hk_core._src.core import kernels
from hk_core._src.core import lift
from hk_core._src.core import rng as rng_lib
from hk_core._src.core import transform

class LayerStackTransparencyMapping(Protocol):
    """Maps the names of stacked params to per-layer names and back (``layer_stack``).

    Example:
        >>> class Numbered:
        ...     def stacked_to_flat(self, name, idx):
        ...         return f"{name}_{idx}"
        ...     def flat_to_stacked(self, name):
        ...         base, _, idx = name.rpartition("_")
        ...         return (base, int(idx)) if idx.isdigit() else None
        >>> Numbered().flat_to_stacked(Numbered().stacked_to_flat("layer", 2))
        ('layer', 2)
    """

    def stacked_to_flat(self, stacked_module_name: str, scan_idx: int) -> str:
        """Returns the per-layer module name of layer ``scan_idx``."""

    def flat_to_stacked(self, unstacked_module_name: str) -> tuple[str, int] | None:
        """Returns ``(stacked name, layer index)``, or ``None`` for names outside the stack."""


_NO_PER_LAYER_NAME = "__layer_stack_no_per_layer"
_WITH_PER_LAYER_NAME = "__layer_stack_with_per_layer"


def _check_no_varargs(f: Callable) -> None:
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return  # builtins without a signature cannot be checked; lax.scan will complain
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters):
        raise ValueError(
            f"The function `f` should not have any `varargs` (that is *args) argument, got "
            f"{getattr(f, '__name__', f)}{inspect.signature(f)}. Please explicitly list all of "
            "its arguments: layer_stack passes the carry positionally and needs its length.")


def _split_stacked(tree: Mapping, num_layers: int,
                   transparency_map: LayerStackTransparencyMapping) -> dict:
    """``{bundle: {name: [n, ...]}}`` -> one bundle per layer, named by the mapping."""
    flat = {}
    for bundle, values in tree.items():
        for index in range(num_layers):
            flat_name = transparency_map.stacked_to_flat(bundle, index)
            flat[flat_name] = {name: value[index] for name, value in values.items()}
    return flat


def _stack_flat(tree: Mapping, num_layers: int,
                transparency_map: LayerStackTransparencyMapping) -> dict:
    """The inverse of ``_split_stacked``; bundles the mapping does not know are skipped."""
    layers: dict[str, dict[int, Mapping]] = {}
    for bundle, values in tree.items():
        found = transparency_map.flat_to_stacked(bundle)
        if found is None:
            continue
        stacked_name, index = found
        layers.setdefault(stacked_name, {})[index] = values
    stacked = {}
    for stacked_name, per_layer in layers.items():
        if sorted(per_layer) != list(range(num_layers)):
            raise ValueError(
                f"layer_stack(transparent=True): module {stacked_name!r} needs layers "
                f"0..{num_layers - 1}, got layers {sorted(per_layer)} from the transparency "
                "map's flat_to_stacked.")
        names = per_layer[0]
        stacked[stacked_name] = {
            name: jnp.stack([per_layer[i][name] for i in range(num_layers)]) for name in names}
    return stacked


class _LayerStack:
    """One configured stack of a layer function; ``__call__`` runs one call of it."""

    def __init__(self, f: Callable, num_layers: int, with_per_layer_inputs: bool, unroll: int,
                 pass_reverse_to_layer_fn: bool, transparent: bool,
                 transparency_map: LayerStackTransparencyMapping | None, name: str):
        self.f = f
        self.num_layers = num_layers
        self.with_per_layer_inputs = with_per_layer_inputs
        self.unroll = unroll
        self.pass_reverse_to_layer_fn = pass_reverse_to_layer_fn
        self.transparent = transparent
        self.transparency_map = transparency_map
        self.name = name

    def _layer_fn(self, reverse: bool) -> Callable:
        """``(carry, per_layer_slice) -> (carry, per_layer_output)`` for one layer."""
        f = self.f
        kwargs = {"reverse": reverse} if self.pass_reverse_to_layer_fn else {}
        if self.with_per_layer_inputs:
            def layer(carry, per_layer):
                return f(carry, *per_layer, **kwargs)
        else:
            def layer(carry, per_layer):
                del per_layer
                out = f(*carry, **kwargs)
                return ((out,) if len(carry) == 1 else out), None
        return layer

    def __call__(self, carry: Any, per_layer_inputs: tuple, reverse: bool) -> tuple[Any, Any]:
        num_layers = self.num_layers
        inner = transform.transform_with_state(self._layer_fn(reverse))

        def scanned_init(carry, per_layer_inputs, key):
            def init_step(scan_carry, per_layer):
                x, key = scan_carry
                if key is None:
                    init_key = next_key = apply_key = None
                else:
                    init_key, next_key, apply_key = jax.random.split(key, 3)
                params, state = inner.init(init_key, x, per_layer)
                # Haiku keeps the state after this init-time apply as the initial state.
                (x, _), state = inner.apply(params, state, apply_key, x, per_layer)
                return (x, next_key), (params, state)

            with kernels.loop_body():
                _, (params, state) = jax.lax.scan(init_step, (carry, key), per_layer_inputs,
                                                  length=num_layers)
            if self.transparent:
                params = _split_stacked(params, num_layers, self.transparency_map)
                state = _split_stacked(state, num_layers, self.transparency_map)
            return params, state

        # Two outer keys per call, at init and at apply alike (API.md §3.9).
        init_key = rng_lib.maybe_next_rng_key()
        if self.transparent:
            lifted_init, updater = lift.transparent_lift_with_state(scanned_init,
                                                                    allow_reuse=True)
        else:
            lifted_init, updater = lift.lift_with_state(scanned_init, allow_reuse=True,
                                                        name=self.name)
        params, state = lifted_init(carry, per_layer_inputs, init_key)
        if self.transparent:
            params = _stack_flat(params, num_layers, self.transparency_map)
            state = _stack_flat(state, num_layers, self.transparency_map)
        apply_key = rng_lib.maybe_next_rng_key()
        keys = None if apply_key is None else jax.random.split(apply_key, num_layers)

        def apply_step(x, sliced):
            params, state, per_layer, key = sliced
            (x, out), state = inner.apply(params, state, key, x, per_layer)
            return x, (out, state)

        with kernels.loop_body():
            carry, (outputs, states) = jax.lax.scan(
                apply_step, carry, (params, state, per_layer_inputs, keys),
                length=num_layers, reverse=reverse, unroll=self.unroll)
        if self.transparent:
            states = _split_stacked(states, num_layers, self.transparency_map)
        updater.update(states)
        return carry, outputs


def _check_per_layer_inputs(per_layer_inputs: tuple, num_layers: int) -> None:
    for leaf in jax.tree.leaves(per_layer_inputs):
        leading = jnp.shape(leaf)[:1]
        if leading != (num_layers,):
            raise AssertionError(
                f"layer_stack: every per-layer input needs a leading axis of size "
                f"num_layers={num_layers}, got a leaf of shape {jnp.shape(leaf)}.")


def layer_stack(num_layers: int, with_per_layer_inputs: bool = False, unroll: int = 1,
                pass_reverse_to_layer_fn: bool = False, transparent: bool = False,
                transparency_map: LayerStackTransparencyMapping | None = None,
                name: str | None = None) -> Callable[[Callable], Callable]:
    """Returns a decorator that applies a layer function ``num_layers`` times in a scan.

    Parameters and state the function creates get a leading ``[num_layers]`` axis and live
    under the stack's scope: ``name``, else ``__layer_stack_no_per_layer`` (or
    ``__layer_stack_with_per_layer``). Layer ``i`` is initialised on layer ``i-1``'s output.

    Without per-layer inputs ``f(*carry) -> carry`` (a tuple if ``f`` takes several args).
    With them, ``f(x, *per_layer) -> (x, per_layer_output)`` and the stacked function is
    called as ``stacked(x, *per_layer_inputs)`` (leading axis ``num_layers``) and returns
    ``(x, stacked_outputs)``. The stacked function also takes ``reverse=False``.

    Args:
        num_layers: Number of layers ``n``.
        with_per_layer_inputs: Whether ``f`` takes per-layer inputs and returns outputs.
        unroll: Passed to the apply ``lax.scan``.
        pass_reverse_to_layer_fn: Whether to pass ``reverse=`` on to ``f``.
        transparent: Store each layer's params under its own name, without the leading axis.
        transparency_map: Required with ``transparent``: maps stacked and per-layer names.
        name: The scope name of the stacked params.

    Returns:
        A decorator; the function it returns keeps ``f``'s signature (so stacks nest).

    Example:
        >>> def f(x):
        ...     def layer(x):
        ...         return jax.nn.tanh(hk.Linear(3)(x))
        ...     return hk.layer_stack(4)(layer)(x)
        >>> f = hk.transform(f)
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'__layer_stack_no_per_layer/linear': {'b': (4, 3), 'w': (4, 3, 3)}}
        >>> f.apply(params, None, jnp.ones([2, 3])).shape
        (2, 3)
    """
    if num_layers < 0:
        raise ValueError(f"layer_stack: num_layers must be >= 0, got {num_layers}.")
    if transparent and transparency_map is None:
        raise ValueError(
            "layer_stack(transparent=True) needs a `transparency_map` "
            "(an hk.LayerStackTransparencyMapping) to name each layer's params.")
    if name is None:
        name = _WITH_PER_LAYER_NAME if with_per_layer_inputs else _NO_PER_LAYER_NAME

    def decorator(f: Callable) -> Callable:
        stack = _LayerStack(f, num_layers, with_per_layer_inputs, unroll,
                            pass_reverse_to_layer_fn, transparent, transparency_map, name)
        if with_per_layer_inputs:
            @functools.wraps(f)
            def stacked_with_per_layer(x, *per_layer_inputs, reverse: bool = False):
                _check_per_layer_inputs(per_layer_inputs, num_layers)
                return stack(x, per_layer_inputs, reverse)

            return stacked_with_per_layer

        _check_no_varargs(f)

        @functools.wraps(f)
        def stacked(*args, reverse: bool = False):
            carry, _ = stack(args, (), reverse)
            return carry[0] if len(args) == 1 else carry

        return stacked

    return decorator
