"""``hk.transform`` and friends: turn a function that builds modules into pure init/apply.

``init(rng, *args)`` runs the function in a fresh ``Frame`` that creates parameters and
state; ``apply(params, state, rng, *args)`` runs it again in a frame whose parameters are
frozen. Nothing escapes a frame, so both compose with every JAX transformation.
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Optional, TypeVar, Union

import jax

from hk_core._src.core import errors
from hk_core._src.core import frame as frame_lib
from hk_core._src.core import rng as rng_lib
from hk_core._src.core.typing import MutableParams, MutableState, Params, State

_INIT_RNG_ERROR = (
    "Init must be called with an RNG as the first argument, the required signature is: "
    "`init(rng, *a, **k)`.")
_APPLY_RNG_ERROR = (
    "Apply must be called with an RNG as the {position} argument, the required signature is: "
    "`apply({signature}rng, *a, **k)`.")
_APPLY_RNG_ERROR_STATELESS = _APPLY_RNG_ERROR.format(position="second", signature="params, ")
_APPLY_RNG_ERROR_STATEFUL = _APPLY_RNG_ERROR.format(
    position="third", signature="params, state, ")
_STATE_WITHOUT_STATE = (
    "If your transformed function uses `hk.{get,set}_state` then use "
    "`hk.transform_with_state`.")
_STATE_IN_MULTI = (
    "If your transformed function uses `hk.{get,set}_state` then use "
    "`hk.multi_transform_with_state`.")
_TRACER_HINT = (
    "\n\nhk_core hint: a JAX transform (jax.vmap, jax.lax.scan, jax.jit, ...) applied inside "
    "an `hk.transform`ed function leaked a tracer. Use the stateful versions instead "
    "(hk.vmap, hk.scan, hk.cond, hk.remat, ...), or apply JAX transforms to `init`/`apply`.")

# The annotations `inspect.signature(init/apply)` shows, spelled as Haiku's (typing.Union
# and Optional), so tools that read them see the same objects.
RngArg = Union[jax.Array, int, None]
_PARAMS_ARG = Optional[Params]
_STATE_ARG = Optional[State]
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
T = TypeVar("T")


class Transformed(NamedTuple):
    """A pair of pure functions: ``init(rng, *a, **k) -> params``, ``apply(params, rng, ...)``.

    Example:
        >>> f = hk.transform(lambda x: hk.Linear(1)(x))
        >>> isinstance(f, hk.Transformed), f.apply(f.init(0, jnp.ones([1, 2])), None,
        ...                                        jnp.ones([1, 2])).shape
        (True, (1, 1))
    """

    init: Callable[..., Any]
    apply: Callable[..., Any]


class TransformedWithState(NamedTuple):
    """``init(rng, ...) -> (params, state)``; ``apply(params, state, rng, ...) -> (out, state)``.

    Example:
        >>> f = hk.transform_with_state(lambda: hk.set_state("s", 1))
        >>> isinstance(f, hk.TransformedWithState), f.init(None)
        (True, ({}, {'~': {'s': 1}}))
    """

    init: Callable[..., Any]
    apply: Callable[..., Any]


class MultiTransformed(NamedTuple):
    """``init`` and a pytree of ``apply`` functions sharing one set of params.

    Example:
        >>> f = hk.multi_transform(lambda: (lambda: None, (lambda: 1, lambda: 2)))
        >>> isinstance(f, hk.MultiTransformed), [a({}, None) for a in f.apply]
        (True, [1, 2])
    """

    init: Callable[..., Any]
    apply: Any


class MultiTransformedWithState(NamedTuple):
    """``init`` and a pytree of stateful ``apply`` functions sharing params and state.

    Example:
        >>> f = hk.multi_transform_with_state(lambda: (lambda: None, {"one": lambda: 1}))
        >>> isinstance(f, hk.MultiTransformedWithState), f.apply["one"]({}, {}, None)
        (True, (1, {}))
    """

    init: Callable[..., Any]
    apply: Any


def _as_mapping(value: Any, what: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{what} argument does not appear valid. It should be a mapping (e.g. the dict "
            f"returned by `init`) but is of type {type(value).__name__}.")
    return value


def run_in_frame(frame: frame_lib.Frame, f: Callable, args: tuple, kwargs: dict) -> Any:
    """Runs ``f`` with ``frame`` as the current frame, then checks lift updaters were used."""
    frame_lib.push(frame)
    try:
        out = f(*args, **kwargs)
    except jax.errors.UnexpectedTracerError as e:
        raise jax.errors.UnexpectedTracerError(str(e) + _TRACER_HINT) from e
    finally:
        frame_lib.pop()
    for updater in frame.pending_updaters:
        updater.check_used()
    return out


def _check_not_jitted(f: Any) -> None:
    if type(f).__name__ in ("PjitFunction", "PmapFunction") or (
            hasattr(f, "lower") and hasattr(f, "trace") and not inspect.isfunction(f)):
        raise ValueError(
            "A common error with hk_core (as with Haiku) is to pass a jitted function to "
            "`hk.transform`: jit the transformed functions instead, e.g. "
            "`jax.jit(hk.transform(f).apply)`.")


def _signature_of(f: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(f)
    except (TypeError, ValueError):
        return None


def _set_signature(fn: Callable, f: Callable | inspect.Signature | None,
                   leading: list[tuple[str, Any]], returns: Any = inspect.Signature.empty,
                   drop: tuple[str, ...] = ()) -> None:
    """Gives ``fn`` the signature ``(<leading>, <f's parameters but drop>) -> returns``.

    ``leading`` entries are ``(name, annotation)``; an annotation of ``Parameter.empty``
    leaves the parameter unannotated. Left as is when ``f``'s signature cannot be read or
    does not combine (e.g. ``f`` has its own ``rng`` parameter).
    """
    signature = f if isinstance(f, inspect.Signature) or f is None else _signature_of(f)
    if signature is None:
        return
    added = [inspect.Parameter(name, _POS, annotation=annotation) for name, annotation in leading]
    rest = [p for name, p in signature.parameters.items() if name not in drop]
    try:
        fn.__signature__ = signature.replace(parameters=added + rest,
                                             return_annotation=returns)
    except ValueError:
        pass


def _derived_signature(fn: Callable, source: Callable, *, drop: int = 0,
                       leading: list[tuple[str, Any]] = (), returns: Any = None) -> None:
    """Sets ``fn``'s signature from ``source``'s: its first ``drop`` parameters replaced by
    ``leading`` and, if given, another return annotation."""
    signature = getattr(source, "__signature__", None)
    if signature is None:
        return
    kept = list(signature.parameters.values())[drop:]
    _set_signature(fn, signature.replace(parameters=kept), list(leading),
                   signature.return_annotation if returns is None else returns)


def transform_with_state(f: Callable) -> TransformedWithState:
    """Transforms ``f`` into pure ``init`` and ``apply`` functions that also carry state.

    Example:
        >>> def f(x):
        ...     count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
        ...     hk.set_state("count", count + 1)
        ...     return hk.Linear(2)(x)
        >>> f = hk.transform_with_state(f)
        >>> params, state = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
        >>> out, state = f.apply(params, state, None, jnp.ones([1, 3]))
        >>> out.shape, state
        ((1, 2), {'~': {'count': Array(1, dtype=int32)}})
    """
    _check_not_jitted(f)

    def init_fn(rng: RngArg = None, *args, **kwargs) -> tuple[MutableParams, MutableState]:
        key = rng_lib.as_key(rng, _INIT_RNG_ERROR)
        seq = None if key is None else rng_lib.PRNGSequence(key)
        frame = frame_lib.Frame({}, {}, {}, seq, True)
        run_in_frame(frame, f, args, kwargs)
        return frame.params, frame.initial_state

    def apply_fn(params: Params | None, state: State | None, rng: RngArg = None, *args,
                 **kwargs) -> tuple[Any, MutableState]:
        params = _as_mapping(params, "params")
        state = _as_mapping(state, "state")
        key = rng_lib.as_key(rng, _APPLY_RNG_ERROR_STATEFUL)
        seq = None if key is None else rng_lib.PRNGSequence(key)
        current = {bundle: dict(values) for bundle, values in state.items()}
        frame = frame_lib.Frame(params, current, state, seq, False)
        out = run_in_frame(frame, f, args, kwargs)
        return out, frame.state

    _set_signature(init_fn, f, [("rng", RngArg)], tuple[Params, State])
    _set_signature(apply_fn, f, [("params", _PARAMS_ARG), ("state", _STATE_ARG),
                                 ("rng", RngArg)], tuple[Any, State])
    return TransformedWithState(init_fn, apply_fn)


def without_state(f: TransformedWithState) -> Transformed:
    """Drops state from a stateful transform; raises if the function uses state.

    Example:
        >>> f = hk.without_state(hk.transform_with_state(lambda x: hk.Linear(1)(x)))
        >>> params = f.init(0, jnp.ones([1, 2]))
        >>> f.apply(params, None, jnp.ones([1, 2])).shape
        (1, 1)
    """

    def init_fn(*args, **kwargs) -> MutableParams:
        params, state = f.init(*args, **kwargs)
        if state:
            raise errors.non_empty_state(_STATE_WITHOUT_STATE, state)
        return params

    def apply_fn(params: Params | None, rng: RngArg = None, *args, **kwargs) -> Any:
        if "state" in kwargs:
            raise TypeError(
                "hk_core adds the arguments (params, state, rng) to apply: pass your function's "
                "`state` argument positionally (e.g. `f.apply(params, rng, my_state)`), not as "
                "the keyword `state=`.")
        key = rng_lib.as_key(rng, _APPLY_RNG_ERROR_STATELESS)
        out, state = f.apply(params, None, key, *args, **kwargs)
        if state:
            raise errors.non_empty_state(_STATE_WITHOUT_STATE, state)
        return out

    _derived_signature(init_fn, f.init, returns=Params)
    _derived_signature(apply_fn, f.apply, drop=2, leading=[("params", _PARAMS_ARG)],
                       returns=Any)
    return Transformed(init_fn, apply_fn)


def transform(f: Callable, *, apply_rng: bool = True) -> Transformed:
    """Transforms ``f`` into a pair of pure functions ``init`` and ``apply``.

    Example:
        >>> def forward(x):
        ...     return hk.nets.MLP([4, 2])(x)
        >>> f = hk.transform(forward)
        >>> params = f.init(jax.random.PRNGKey(42), jnp.ones([1, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'mlp/~/linear_0': {'b': (4,), 'w': (3, 4)}, 'mlp/~/linear_1': {'b': (2,), 'w': (4, 2)}}
        >>> f.apply(params, None, jnp.ones([1, 3])).shape
        (1, 2)
    """
    if not apply_rng:
        raise ValueError(
            "The apply_rng argument has been removed and non-None rng is now always required "
            "by apply: use `hk.without_apply_rng(hk.transform(f))` instead.")
    return without_state(transform_with_state(f))


def with_empty_state(f: Transformed) -> TransformedWithState:
    """Wraps a stateless transform so it has the stateful signature (with empty state).

    Example:
        >>> f = hk.with_empty_state(hk.transform(lambda x: hk.Linear(1)(x)))
        >>> params, state = f.init(0, jnp.ones([1, 2]))
        >>> state
        {}
    """

    def init_fn(*args, **kwargs) -> tuple[MutableParams, MutableState]:
        return f.init(*args, **kwargs), {}

    def apply_fn(params: Params, state: State | None, *args, **kwargs) -> tuple[Any, MutableState]:
        del state
        return f.apply(params, *args, **kwargs), {}

    _derived_signature(init_fn, f.init, returns=tuple[Params, State])
    # Haiku 0.0.17 names the first parameter `param` in this signature (observed).
    _derived_signature(apply_fn, f.apply, drop=1, leading=[("param", Params), ("state", State)],
                       returns=tuple[Any, State])
    return TransformedWithState(init_fn, apply_fn)


def without_apply_rng(f: T) -> T:
    """Removes the ``rng`` argument from ``apply`` (it is passed as ``None``).

    Example:
        >>> f = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(1)(x)))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
        >>> f.apply(params, jnp.ones([1, 2])).shape
        (1, 1)
    """
    if isinstance(f, TransformedWithState):
        return TransformedWithState(f.init, _stateful_without_rng(f.apply))
    if isinstance(f, Transformed):
        return Transformed(f.init, _stateless_without_rng(f.apply))
    if isinstance(f, MultiTransformedWithState):
        return MultiTransformedWithState(
            f.init, jax.tree.map(_multi_without_rng(_stateful_without_rng), f.apply))
    if isinstance(f, MultiTransformed):
        return MultiTransformed(
            f.init, jax.tree.map(_multi_without_rng(_stateless_without_rng), f.apply))
    raise ValueError(
        "hk.without_apply_rng expects the result of hk.transform, hk.transform_with_state, "
        f"hk.multi_transform or hk.multi_transform_with_state, got {type(f).__name__}.")


def _stateless_without_rng(apply: Callable, keep_signature: bool = True) -> Callable:
    def apply_fn(params, *args, **kwargs):
        return apply(params, None, *args, **kwargs)

    if keep_signature:
        _derived_signature(apply_fn, apply, drop=2, leading=[("params", _PARAMS_ARG)])
    return apply_fn


def _stateful_without_rng(apply: Callable, keep_signature: bool = True) -> Callable:
    def apply_fn(params, state, *args, **kwargs):
        return apply(params, state, None, *args, **kwargs)

    if keep_signature:
        _derived_signature(apply_fn, apply, drop=3,
                           leading=[("params", _PARAMS_ARG), ("state", _STATE_ARG)])
    return apply_fn


def _multi_without_rng(without_rng: Callable) -> Callable:
    # Haiku's multi-transform applies lose their annotations here: `(params, *args, **kwargs)`.
    return lambda apply: without_rng(apply, keep_signature=False)


def _apply_structure(f: Callable[[], tuple[Callable, Any]]):
    treedef = None

    def probe():
        nonlocal treedef
        frame = frame_lib.Frame({}, {}, {}, None, True)
        frame_lib.push(frame)
        try:
            _, fns = f()
        finally:
            frame_lib.pop()
        treedef = jax.tree.structure(fns)
        return ()

    jax.eval_shape(probe)
    return treedef


def multi_transform_with_state(
        f: Callable[[], tuple[Callable, Any]]) -> MultiTransformedWithState:
    """Transforms several functions that share modules (built by ``f()``) and state.

    ``f()`` returns ``(template_fn, pytree_of_fns)``; ``init`` runs ``template_fn`` and each
    ``apply`` leaf runs the matching function, re-running ``f()`` so modules get the same
    names every time.

    Example:
        >>> def f():
        ...     encoder, decoder = hk.Linear(2, name="enc"), hk.Linear(3, name="dec")
        ...     return (lambda x: decoder(encoder(x))), (encoder, decoder)
        >>> f = hk.multi_transform_with_state(f)
        >>> params, state = f.init(0, jnp.ones([1, 3]))
        >>> encode, decode = f.apply
        >>> encode(params, state, None, jnp.ones([1, 3]))[0].shape
        (1, 2)
    """
    treedef = _apply_structure(f)

    def template(*args, **kwargs):
        template_fn, _ = f()
        return template_fn(*args, **kwargs)

    init_fn = transform_with_state(template).init

    def apply_for(index: int) -> Callable:
        def run(*args, **kwargs):
            _, fns = f()
            return jax.tree.leaves(fns)[index](*args, **kwargs)

        return transform_with_state(run).apply

    applies = [apply_for(i) for i in range(treedef.num_leaves)]
    return MultiTransformedWithState(init_fn, jax.tree.unflatten(treedef, applies))


def multi_transform(f: Callable[[], tuple[Callable, Any]]) -> MultiTransformed:
    """Like ``multi_transform_with_state`` for functions without state.

    Example:
        >>> def f():
        ...     encoder, decoder = hk.Linear(2, name="enc"), hk.Linear(3, name="dec")
        ...     return (lambda x: decoder(encoder(x))), (encoder, decoder)
        >>> f = hk.multi_transform(f)
        >>> params = f.init(0, jnp.ones([1, 3]))
        >>> sorted(params)
        ['dec', 'enc']
    """
    stateful = multi_transform_with_state(f)

    def init_fn(rng, *args, **kwargs) -> MutableParams:
        params, state = stateful.init(rng, *args, **kwargs)
        if state:
            raise ValueError(_STATE_IN_MULTI)
        return params

    def stateless(apply):
        def apply_fn(params: Params, rng=None, *args, **kwargs):
            out, state = apply(params, None, rng, *args, **kwargs)
            if state:
                raise ValueError(_STATE_IN_MULTI)
            return out

        # As Haiku's: `(params: Params, rng, *args, **kwargs)`, no return annotation.
        _set_signature(apply_fn, inspect.signature(lambda *args, **kwargs: None),
                       [("params", Params), ("rng", inspect.Parameter.empty)])
        return apply_fn

    return MultiTransformed(init_fn, jax.tree.map(stateless, stateful.apply))


def running_init() -> bool:
    """Whether the current transform is running ``init`` (False inside ``apply``).

    Example:
        >>> f = hk.transform(lambda: hk.running_init())
        >>> f.init(None), f.apply({}, None)
        ({}, False)
    """
    return frame_lib.current_frame("`hk.running_init`").is_init
