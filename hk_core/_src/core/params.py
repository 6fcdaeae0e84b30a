"""Parameters and state: ``get_parameter``, ``get_state``, ``set_state`` and their interceptors.

The fast path of ``get_parameter`` (no creators or getters installed, the parameter exists,
its shape matches) is two dict lookups and a shape comparison. Contexts for creators and
getters are built only when some are installed; error messages only when raised.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import errors
from hk_core._src.core import frame as frame_lib
from hk_core._src.core import kernels


@kernels.kernel(static_argnums=(0, 1, 2))
def _filled(shape: tuple[int, ...], dtype: Any, fill: int) -> jax.Array:
    return jnp.full(shape, fill, dtype)


_FILLS = {id(jnp.zeros): 0, id(jnp.ones): 1}


def _initial_value(init: Callable, shape: Sequence[int], dtype: Any) -> Any:
    """``init(shape, dtype)``; ``jnp.zeros``/``jnp.ones`` run as a kernel (core/kernels.py)."""
    fill = _FILLS.get(id(init))
    if fill is not None:
        try:
            return _filled(tuple(shape), jnp.dtype(dtype), fill)
        except (TypeError, ValueError):  # an odd shape or dtype: let `init` say what is wrong
            pass
    return init(shape, dtype)


class _Interceptors(threading.local):
    """This thread's creator/getter/setter chains (outermost first).

    They live outside any frame, like Haiku's: a ``custom_getter`` opened in an outer
    transform also sees the params of inner transforms (``hk.lift``, ``hk.layer_stack``).
    """

    def __init__(self):
        self.param_creators: list = []
        self.state_creators: list = []
        self.param_getters: list = []
        self.state_getters: list = []
        self.setters: list = []
        # Inner inits of running lifts, by the depth of the frame they run in:
        # depth -> (`lifted_prefix_name` there, e.g. 'outer/inner/', and whether it is a
        # `transparent_lift`, whose inner modules must be built inside it).
        self.lifts: dict[int, tuple[str | None, bool]] = {}


_CHAINS = _Interceptors()


def _depth() -> int:
    return len(frame_lib._LOCAL.frames)


def lifted_prefix() -> str | None:
    """The ``lifted_prefix_name`` of contexts in the current frame (None outside lifts)."""
    lift = _CHAINS.lifts.get(_depth()) if _CHAINS.lifts else None
    return None if lift is None else lift[0]


def enter_lift(prefix: str | None, guard: bool):
    """Marks the frame an inner init is about to push; returns what ``exit_lift`` restores.

    ``guard``: refuse modules built outside the lifted function (``transparent_lift``).
    """
    depth = _depth() + 1
    saved = depth, _CHAINS.lifts.get(depth)
    _CHAINS.lifts[depth] = (prefix, guard)
    return saved


def exit_lift(saved) -> None:
    depth, previous = saved
    if previous is None:
        del _CHAINS.lifts[depth]
    else:
        _CHAINS.lifts[depth] = previous


def _check_lift_closure(frame) -> None:
    """Inside a transparent lift's inner init, every module on the stack must be built there.

    A module built outside would name its params by its outer path, and the lift would
    store them under the enclosing scope a second time. Checked only when a value is
    created, so the read path pays nothing.
    """
    lift = _CHAINS.lifts.get(_depth())
    if lift is None or not lift[1]:
        return
    serial = frame.serial
    for scope in frame.scopes:
        if getattr(scope.module, "_hk_frame_serial", serial) != serial:
            raise ValueError(
                f"Module {scope.module.module_name!r} is used inside the function wrapped in "
                "hk.transparent_lift (or hk.layer_stack) but was created outside it. You "
                "can't functionally close over a module which has been initialized outside "
                "of the function wrapped in hk.transparent_lift or hk.layer_stack: create the "
                "module inside that function.")


class _DoNotStore:
    """Sentinel type of ``DO_NOT_STORE``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DO_NOT_STORE"


DO_NOT_STORE = _DoNotStore()
"""Returned by a ``custom_setter`` to skip storing a state value.

Example:
    >>> def skip(next_setter, value, context):
    ...     return hk.DO_NOT_STORE
    >>> def f():
    ...     with hk.custom_setter(skip):
    ...         hk.set_state("s", jnp.ones([1]))
    >>> hk.transform_with_state(f).init(None)[1]
    {}
"""


class GetterContext(NamedTuple):
    """What a custom creator or getter knows about the value it handles.

    Example:
        >>> def show(next_getter, value, context):
        ...     print(context.full_name, context.module_name, context.name)
        ...     return next_getter(value)
        >>> def f(x):
        ...     with hk.custom_getter(show):
        ...         return hk.Linear(1, with_bias=False)(x)
        >>> _ = hk.transform(f).init(0, jnp.ones([1, 2]))
        linear/w linear w

    Attributes:
        full_name: ``"<module path>/<name>"``, e.g. ``"linear/w"``.
        module: The owning module; ``None`` at the top level outside name scopes.
        original_dtype: The dtype the caller asked for.
        original_shape: The shape the caller asked for.
        original_init: The initializer the caller gave.
        lifted_prefix_name: The prefix added by an enclosing ``hk.lift``, if any.
    """

    full_name: str
    module: Any
    original_dtype: Any
    original_shape: Sequence[int]
    original_init: Callable | None
    lifted_prefix_name: str | None

    @property
    def module_name(self) -> str:
        """The module path (the params key), e.g. ``"mlp/~/linear_0"``."""
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        """The parameter name, e.g. ``"w"``."""
        return self.full_name.rsplit("/", 1)[1]


class SetterContext(NamedTuple):
    """What a custom setter knows about the state value being set.

    Example:
        >>> def show(next_setter, value, context):
        ...     print(context.full_name, context.original_shape)
        ...     return next_setter(value)
        >>> def f():
        ...     with hk.custom_setter(show):
        ...         hk.set_state("s", jnp.zeros([2]))
        >>> _ = hk.transform_with_state(f).init(None)
        ~/s (2,)
    """
    full_name: str
    module: Any
    original_dtype: Any
    original_shape: Any
    lifted_prefix_name: str | None

    @property
    def module_name(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[1]


def _bundle_of(scope: frame_lib.MethodScope) -> str:
    bundle = scope.bundle
    if bundle is None:
        raise ValueError(
            "The super constructor must be called before you create parameters or submodules.")
    return bundle


def _create(creators: list, shape, dtype, init, context: GetterContext):
    def call(index: int, shape, dtype, init):
        if index == len(creators):
            return _initial_value(init, shape, dtype)
        return creators[index](
            lambda s, d, i: call(index + 1, s, d, i), shape, dtype, init, context)

    return call(0, shape, dtype, init)


def _get(getters: list, value, context):
    def call(index: int, value):
        if index == len(getters):
            return value
        return getters[index](lambda v: call(index + 1, v), value, context)

    return call(0, value)


def _context(frame, scope, bundle, name, dtype, shape, init) -> GetterContext:
    module = scope.module
    return GetterContext(f"{bundle}/{name}", module, dtype, shape, init, lifted_prefix())


def get_parameter(
    name: str,
    shape: Sequence[int],
    dtype: Any = jnp.float32,
    init: Callable | None = None,
) -> jax.Array:
    """Returns the parameter ``name`` of the current module, creating it at ``init``.

    Args:
        name: Parameter name inside the current module (e.g. ``"w"``).
        shape: Expected shape; a stored value of another shape is an error.
        dtype: Dtype passed to ``init``. Not checked against stored values.
        init: ``init(shape, dtype) -> array``; needed whenever the value is missing.

    Returns:
        The stored (or newly created) array, after any custom getters.

    Raises:
        ValueError: outside a transform, without ``init`` for a missing value, for a
            parameter missing at apply, or on a shape mismatch (naming path and shapes).

    Example:
        >>> f = hk.transform(lambda: hk.get_parameter("w", [2], init=jnp.ones))
        >>> f.init(None)
        {'~': {'w': Array([1., 1.], dtype=float32)}}
    """
    frames = frame_lib._LOCAL.frames
    if not frames:
        raise errors.not_in_transform("`hk.get_parameter`")
    frame = frames[-1]
    if frame.trace_state is not None:
        frame_lib.check_jax_usage(frame, "`hk.get_parameter`")
    scope = frame.scopes[-1]
    bundle_name = scope.bundle
    if bundle_name is None:
        _bundle_of(scope)
    bundle = frame.params.get(bundle_name)
    value = None if bundle is None else bundle.get(name)
    if dtype is None:
        dtype = jnp.float32
    if value is None:
        value = _create_parameter(frame, scope, bundle_name, name, shape, dtype, init)
    if _CHAINS.param_getters:
        value = _get(_CHAINS.param_getters, value,
                     _context(frame, scope, bundle_name, name, dtype, shape, init))
        if value is None:
            raise ValueError("Parameters cannot be `None`.")
    if value.shape != tuple(shape):
        raise errors.ParameterShapeError(bundle_name, name, shape, value.shape, dtype)
    return value


def _create_parameter(frame, scope, bundle_name, name, shape, dtype, init):
    if init is None:
        raise ValueError(
            f"Initializer must be specified. (module {bundle_name!r}, parameter {name!r} is "
            "missing and no `init` was given.)")
    value = _new_value(frame, scope, _CHAINS.param_creators, "parameter", bundle_name, name,
                       shape, dtype, init)
    if value is DO_NOT_STORE:
        return value
    if not frame.is_init:
        raise _missing_parameter(frame, bundle_name, name)
    frame.params.setdefault(bundle_name, {})[name] = value
    return value


def _new_value(frame, scope, creators: list, kind: str, bundle_name: str, name: str, shape,
               dtype, init):
    """Runs the creators and ``init`` for a missing parameter or state value (slow path)."""
    if _CHAINS.lifts:
        _check_lift_closure(frame)
    # `shape` goes to creators and `init` exactly as the caller gave it (a list stays a
    # list), as in Haiku.
    try:
        if creators:
            context = _context(frame, scope, bundle_name, name, dtype, shape, init)
            return _create(creators, shape, dtype, init, context)
        return _initial_value(init, shape, dtype)
    except errors.MissingRNGError:
        if kind == "parameter" and not frame.is_init:
            # The parameter is what is missing; the key was needed only because apply tried
            # to create it, so that error is not the cause to show (issue 13).
            raise _missing_parameter(frame, bundle_name, name) from None
        raise errors.missing_rng(
            bundle_name, f"Creating {kind} {name!r} (its initializer draws random numbers)",
            frame.is_init) from None


def _missing_parameter(frame, bundle_name: str, name: str) -> errors.MissingParameterError:
    bundle = frame.params.get(bundle_name)
    return errors.MissingParameterError(
        bundle_name, name, frame.params.keys(), None if bundle is None else bundle.keys())


def get_state(
    name: str,
    shape: Sequence[int] | None = None,
    dtype: Any = jnp.float32,
    init: Callable | None = None,
) -> Any:
    """Returns the current value of state ``name`` of the current module, creating it if new.

    Example:
        >>> def counter():
        ...     count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
        ...     hk.set_state("count", count + 1)
        ...     return count
        >>> f = hk.transform_with_state(counter)
        >>> params, state = f.init(None)
        >>> f.apply(params, state, None)
        (Array(0, dtype=int32), {'~': {'count': Array(1, dtype=int32)}})
    """
    frame = frame_lib.current_frame("`hk.get_state`")
    scope = frame.scopes[-1]
    bundle_name = _bundle_of(scope)
    bundle = frame.state.get(bundle_name)
    if bundle is not None and name in bundle:
        value = bundle[name]
    else:
        if init is None:
            raise ValueError(
                f"No value for {name!r} in {bundle_name!r}, perhaps set an init function?")
        if shape is None or dtype is None:
            raise ValueError(
                f"Must provide shape and dtype to initialize state {name!r} in {bundle_name!r}.")
        value = _new_value(frame, scope, _CHAINS.state_creators, "state", bundle_name, name,
                           shape, dtype, init)
        if value is not DO_NOT_STORE:
            frame.state.setdefault(bundle_name, {})[name] = value
            frame.initial_state.setdefault(bundle_name, {})[name] = value
    if _CHAINS.state_getters:
        value = _get(_CHAINS.state_getters, value,
                     _context(frame, scope, bundle_name, name, dtype, shape, init))
    return value


def _leaf_attr(value, attr):
    return jax.tree.map(lambda leaf: getattr(leaf, attr, None), value)


def set_state(name: str, value: Any) -> None:
    """Sets state ``name`` of the current module to ``value`` (any pytree of arrays).

    Example:
        >>> f = hk.transform_with_state(lambda: hk.set_state("seen", jnp.ones([2])))
        >>> f.init(None)[1]
        {'~': {'seen': Array([1., 1.], dtype=float32)}}
    """
    frame = frame_lib.current_frame("`hk.set_state`")
    scope = frame.scopes[-1]
    bundle_name = _bundle_of(scope)
    if _CHAINS.setters:
        context = SetterContext(
            f"{bundle_name}/{name}", scope.module, _leaf_attr(value, "dtype"),
            _leaf_attr(value, "shape"), lifted_prefix())
        value = _get(_CHAINS.setters, value, context)
        if value is DO_NOT_STORE:
            return
    bundle = frame.state.setdefault(bundle_name, {})
    if name not in bundle:
        initial = frame.initial_state.setdefault(bundle_name, {})
        initial.setdefault(name, value)
    bundle[name] = value


def get_params() -> dict[str, dict[str, jax.Array]]:
    """Returns all parameters of the current transform (a snapshot, two levels of dicts).

    Example:
        >>> def f(x):
        ...     hk.Linear(1)(x)
        ...     return list(hk.get_params())
        >>> hk.transform(f).apply(hk.transform(f).init(0, jnp.ones([1, 1])), None, jnp.ones([1, 1]))
        ['linear']
    """
    frame = frame_lib.current_frame("`hk.get_params`")
    params = frame.params if frame.init_view is None else frame.init_view.params
    return {bundle: dict(values) for bundle, values in params.items()}


def get_current_state() -> dict[str, dict[str, Any]]:
    """Returns the current values of all state in the current transform.

    Example:
        >>> def f():
        ...     hk.set_state("s", 1.0)
        ...     return hk.get_current_state()
        >>> hk.transform_with_state(f).apply({}, {}, None)[0]
        {'~': {'s': 1.0}}
    """
    frame = frame_lib.current_frame("`hk.get_current_state`")
    state = frame.state if frame.init_view is None else frame.init_view.state
    return {bundle: dict(values) for bundle, values in state.items()}


def get_initial_state() -> dict[str, dict[str, Any]]:
    """Returns the initial values of all state in the current transform.

    Example:
        >>> def f():
        ...     hk.set_state("s", 1.0)
        ...     hk.set_state("s", 2.0)
        ...     return hk.get_initial_state()
        >>> hk.transform_with_state(f).apply({}, {}, None)[0]
        {'~': {'s': 1.0}}
    """
    frame = frame_lib.current_frame("`hk.get_initial_state`")
    out = {bundle: dict(values) for bundle, values in frame.input_state.items()}
    initial = frame.initial_state if frame.init_view is None else frame.init_view.initial_state
    for bundle, values in initial.items():
        out.setdefault(bundle, {}).update(values)
    return out


@contextlib.contextmanager
def _pushed(lists: list[list], item) -> Iterator[None]:
    for target in lists:
        target.append(item)
    try:
        yield
    finally:
        for target in lists:
            target.pop()


def custom_creator(creator: Callable, *, params: bool = True, state: bool = False):
    """Routes parameter (and optionally state) creation through ``creator``.

    ``creator(next_creator, shape, dtype, init, context)`` must return the value, usually by
    calling ``next_creator(shape, dtype, init)``. The outermost creator runs first.

    Example:
        >>> def bf16_creator(next_creator, shape, dtype, init, context):
        ...     return next_creator(shape, jnp.bfloat16, init)
        >>> def f(x):
        ...     with hk.custom_creator(bf16_creator):
        ...         return hk.Linear(2)(x)
        >>> params = hk.transform(f).init(0, jnp.ones([1, 3]))
        >>> params["linear"]["w"].dtype
        dtype(bfloat16)
    """
    frame_lib.current_frame("`hk.custom_creator`")  # only inside a transform, as in Haiku
    lists = (([_CHAINS.param_creators] if params else [])
             + ([_CHAINS.state_creators] if state else []))
    return _pushed(lists, creator)


def custom_getter(getter: Callable, *, params: bool = True, state: bool = False):
    """Routes every parameter (and optionally state) read through ``getter``.

    ``getter(next_getter, value, context)`` returns the value to use; the stored value is
    unchanged. The outermost getter runs first.

    Example:
        >>> def doubled(next_getter, value, context):
        ...     return next_getter(value * 2)
        >>> def f():
        ...     with hk.custom_getter(doubled):
        ...         return hk.get_parameter("w", [1], init=jnp.ones)
        >>> hk.transform(f).apply({"~": {"w": jnp.ones([1])}}, None)
        Array([2.], dtype=float32)
    """
    frame_lib.current_frame("`hk.custom_getter`")  # only inside a transform, as in Haiku
    lists = (([_CHAINS.param_getters] if params else [])
             + ([_CHAINS.state_getters] if state else []))
    return _pushed(lists, getter)


def custom_setter(setter: Callable):
    """Routes every ``set_state`` through ``setter(next_setter, value, context)``.

    Returning ``DO_NOT_STORE`` from a setter skips storing the value.

    Example:
        >>> def skip(next_setter, value, context):
        ...     return hk.DO_NOT_STORE
        >>> def f():
        ...     with hk.custom_setter(skip):
        ...         hk.set_state("s", jnp.ones([1]))
        >>> hk.transform_with_state(f).init(None)[1]
        {}
    """
    frame_lib.current_frame("`hk.custom_setter`")  # only inside a transform, as in Haiku
    return _pushed([_CHAINS.setters], setter)


def shape_dtype_of(value: Any) -> tuple[tuple[int, ...], Any]:
    """Returns ``(shape, dtype)`` of an array-like, for messages and contexts."""
    return tuple(np.shape(value)), getattr(value, "dtype", None)
