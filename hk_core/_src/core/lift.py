"""Lifting (``hk.lift`` and friends): an inner transform's params become the outer frame's.

At the outer ``init`` the inner ``init`` runs and its params (and state) are stored under
the lift's prefix; at the outer ``apply`` the lifted function returns the outer entries
under that prefix, with the prefix stripped, ready for the inner ``apply``.
"""

import weakref
from collections.abc import Callable, Mapping

from hk_core._src.core import errors
from hk_core._src.core import frame as frame_lib
from hk_core._src.core import module as module_lib
from hk_core._src.core import params as params_lib


def _enclosing_prefix(frame: frame_lib.Frame) -> str:
    # scopes[-1] is the lifting module's own constructor; its creator's scope is below it.
    bundle = frame.scopes[-2].bundle
    return "" if bundle in (None, "~") else bundle


class LiftingModule(module_lib.Module):
    """Holds a lift's prefix; calling it stores or looks up the lifted entries.

    Named as Haiku's: interceptors see ``LiftingModule.__init__``/``__call__`` and nothing
    else (the helpers below are transparent).
    """

    def __init__(self, init_fn: Callable, allow_reuse: bool, transparent: bool, with_state: bool,
                 name: str):
        frame = frame_lib.current_frame("`hk.lift`")
        self._transparent_prefix = _enclosing_prefix(frame) if transparent else None
        super().__init__(name=name)
        self._init_fn = init_fn
        self._allow_reuse = allow_reuse
        self._with_state = with_state

    @property
    @module_lib.transparent
    def prefix(self) -> str:
        return self.module_name if self._transparent_prefix is None else self._transparent_prefix

    def __call__(self, *args, **kwargs):
        frame = frame_lib.current_frame("a lifted function")
        if frame.is_init:
            return self._init(frame, *args, **kwargs)
        params = _strip(frame.params, self.prefix)
        if self._with_state:
            return params, _strip(frame.state, self.prefix)
        return params

    @module_lib.transparent
    def _init(self, frame, *args, **kwargs):
        own = self.prefix
        outer = params_lib.lifted_prefix() or ""
        prefix = outer + own + "/" if own else outer
        # Only `transparent_lift` refuses modules built outside the lifted function; Haiku's
        # `transparent_lift_with_state` (and so `layer_stack`) accepts them (observed).
        guard = self._transparent_prefix is not None and not self._with_state
        saved = params_lib.enter_lift(prefix or None, guard)
        try:
            result = self._init_fn(*args, **kwargs)
        finally:
            params_lib.exit_lift(saved)
        if self._with_state:
            params, state = result
        else:
            if not isinstance(result, Mapping):
                raise errors.NonEmptyStateError(
                    "hk.lift expects an init_fn returning params only; for a "
                    "`transform_with_state(...).init` use `hk.lift_with_state`.")
            params, state = result, {}
        self._store(frame.params, params, "params")
        if state:
            self._store(frame.state, state, "state")
            self._store(frame.initial_state, state, None)
        return (params, state) if self._with_state else params

    @module_lib.transparent
    def _store(self, target: dict, tree: Mapping, kind: str | None) -> None:
        prefix = self.prefix
        for bundle, values in tree.items():
            key = f"{prefix}/{bundle}" if prefix else bundle
            if kind is not None and key in target and not self._allow_reuse:
                raise ValueError(
                    f"Key '{key}' already exists in the destination {kind}: a lifted init "
                    "function was called twice (or its names clash with existing ones). Pass "
                    "`allow_reuse=True` to hk.lift to reuse the lifted parameters.")
            target.setdefault(key, {}).update(values)


def _strip(tree: Mapping, prefix: str) -> dict:
    if not prefix:
        return {bundle: dict(values) for bundle, values in tree.items()}
    start = prefix + "/"
    cut = len(start)
    return {bundle[cut:]: dict(values) for bundle, values in tree.items()
            if bundle.startswith(start)}


def lift(init_fn: Callable, *, allow_reuse: bool = False, name: str = "lifted") -> Callable:
    """Makes ``init_fn`` (an inner transform's ``init``) create params in the outer transform.

    Example:
        >>> inner = hk.transform(lambda x: hk.Linear(2)(x))
        >>> def outer(x):
        ...     params = hk.lift(inner.init, name="inner")(hk.next_rng_key(), x)
        ...     return inner.apply(params, None, x)
        >>> list(hk.transform(outer).init(0, jnp.ones([1, 3])))
        ['inner/linear']
    """
    return LiftingModule(init_fn, allow_reuse, False, False, name=name)


def transparent_lift(init_fn: Callable, *, allow_reuse: bool = False) -> Callable:
    """Like ``lift`` with no prefix of its own: params go under the enclosing scope.

    Example:
        >>> inner = hk.transform(lambda x: hk.Linear(2)(x))
        >>> def outer(x):
        ...     params = hk.transparent_lift(inner.init)(hk.next_rng_key(), x)
        ...     return inner.apply(params, None, x)
        >>> list(hk.transform(outer).init(0, jnp.ones([1, 3])))
        ['linear']
    """
    return LiftingModule(init_fn, allow_reuse, True, False, name="lifted")


class LiftWithStateUpdater:
    """Writes an inner apply's new state back into the outer transform (once per call).

    Example:
        >>> inner = hk.transform_with_state(lambda: hk.set_state("n", 2))
        >>> def outer():
        ...     init, updater = hk.lift_with_state(inner.init, name="inner")
        ...     params, state = init(None)
        ...     updater.update(inner.apply(params, state, None)[1])
        ...     return hk.get_current_state()
        >>> hk.transform_with_state(outer).apply({}, {}, None)[0]
        {'inner/~': {'n': 2}}
    """

    def __init__(self, name: str | None):
        frame = frame_lib.current_frame("`hk.lift_with_state`")
        self._name = name
        self._frame = weakref.ref(frame)
        self._used = False
        frame.pending_updaters.append(self)

    def _check_frame(self) -> frame_lib.Frame:
        frame = frame_lib.current_frame("`LiftWithStateUpdater.update`")
        if self._frame() is not frame:
            raise ValueError(
                "This updater was created in another init/apply call: create the updater (with "
                "hk.lift_with_state) in the same transformed function that uses it.")
        if self._used:
            raise ValueError("State updater must only be used once.")
        self._used = True
        return frame

    def update(self, state: Mapping) -> None:
        """Sets the outer state's current values from the inner apply's new ``state``."""
        frame = self._check_frame()
        scope_bundle = frame.scopes[-1].bundle
        # Haiku writes under the *requested* name, not the uniquified prefix (API.md §2.6).
        if self._name is None:
            target = "" if scope_bundle in (None, "~") else scope_bundle
        else:
            target = self._name if scope_bundle in (None, "~") else f"{scope_bundle}/{self._name}"
        for bundle, values in state.items():
            key = f"{target}/{bundle}" if target else bundle
            current = frame.state.setdefault(key, {})
            initial = frame.initial_state.setdefault(key, {})
            for name, value in values.items():
                if name not in current:
                    initial.setdefault(name, value)
                current[name] = value
            if not initial:
                del frame.initial_state[key]

    def ignore_update(self) -> None:
        """Marks the updater as used without changing state."""
        self._check_frame()

    def check_used(self) -> None:
        if not self._used:
            raise ValueError(
                "A LiftWithStateUpdater from hk.lift_with_state must be used, call "
                "`.update(..)` or `.ignore_update()` before it goes out of scope.")


def lift_with_state(init_fn: Callable, *, allow_reuse: bool = False,
                    name: str = "lifted") -> tuple[Callable, LiftWithStateUpdater]:
    """Like ``lift`` for a ``transform_with_state`` init; returns ``(lifted_init, updater)``.

    Example:
        >>> inner = hk.transform_with_state(lambda: hk.set_state("n", 1))
        >>> def outer():
        ...     init, updater = hk.lift_with_state(inner.init, name="inner")
        ...     params, state = init(None)
        ...     _, state = inner.apply(params, state, None)
        ...     updater.update(state)
        >>> hk.transform_with_state(outer).init(None)[1]
        {'inner/~': {'n': 1}}
    """
    lifted = LiftingModule(init_fn, allow_reuse, False, True, name=name)
    return lifted, LiftWithStateUpdater(name)


def transparent_lift_with_state(init_fn: Callable, *, allow_reuse: bool = False
                                ) -> tuple[Callable, LiftWithStateUpdater]:
    """Like ``lift_with_state`` without a prefix of its own.

    Example:
        >>> inner = hk.transform_with_state(lambda: hk.set_state("n", 1))
        >>> def outer():
        ...     init, updater = hk.transparent_lift_with_state(inner.init)
        ...     params, state = init(None)
        ...     updater.update(inner.apply(params, state, None)[1])
        >>> hk.transform_with_state(outer).init(None)[1]
        {'~': {'n': 1}}
    """
    lifted = LiftingModule(init_fn, allow_reuse, True, True, name="lifted")
    return lifted, LiftWithStateUpdater(None)


