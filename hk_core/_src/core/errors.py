"""Error types raised by hk_core, and the helpers that format their messages.

Every error subclasses the builtin exception Haiku raised in the same situation, so
``except ValueError:`` code keeps working after the switch. Messages are built only when
the error is raised, never on a hot path.
"""

from collections.abc import Iterable, Sequence


_NO_RNG = ("You must pass a non-None PRNGKey to init and/or apply if you make use of random "
           "numbers.")


class MissingRNGError(ValueError):
    """Random numbers were requested but ``init``/``apply`` was given ``rng=None``.

    The message starts with Haiku's sentence and then says which module asked for a key
    and why, when known (``where``).

    Example:
        >>> try:
        ...     hk.transform(lambda: hk.next_rng_key()).init(None)
        ... except ValueError as error:
        ...     print(type(error).__name__)
        MissingRNGError
    """

    def __init__(self, message: str | None = None, where: str | None = None):
        self.where = where
        text = message or _NO_RNG
        super().__init__(text if where is None else f"{text} {where}")


def missing_rng(bundle: str, need: str, is_init: bool) -> MissingRNGError:
    """The error for ``need`` (e.g. "`hk.next_rng_key`") run in module ``bundle`` without rng."""
    place = "at the top level" if bundle == "~" else f"in module {bundle!r}"
    call = "init" if is_init else "apply"
    return MissingRNGError(where=(
        f"{need} ran {place} during {call}, which was given rng=None: pass a key, e.g. "
        f"`{call}({'' if is_init else 'params, '}jax.random.PRNGKey(0), ...)`."))


class NonEmptyStateError(ValueError):
    """A function transformed without state created or changed state.

    Example:
        >>> f = hk.without_state(hk.transform_with_state(lambda: hk.set_state("n", 1)))
        >>> try:
        ...     f.init(None)
        ... except ValueError as error:
        ...     print(type(error).__name__)
        NonEmptyStateError
    """


def non_empty_state(message: str, state) -> NonEmptyStateError:
    """``message`` followed by the state entries (``module/name``) that were found."""
    entries = sorted(f"{bundle}/{name}" for bundle, values in state.items() for name in values)
    shown = ", ".join(repr(e) for e in entries[:8]) + (", ..." if len(entries) > 8 else "")
    return NonEmptyStateError(f"{message} State entries found: {shown}.")


class JaxUsageError(ValueError):
    """Haiku APIs were used inside a raw JAX transform (``hk.experimental.check_jax_usage``).

    Example:
        >>> previous = hk.experimental.check_jax_usage()
        >>> f = hk.transform(lambda x: jax.jit(hk.Linear(2))(x))
        >>> try:
        ...     f.init(jax.random.PRNGKey(0), jnp.ones([1, 2]))
        ... except hk.errors.JaxUsageError as error:
        ...     print(isinstance(error, ValueError))
        True
        >>> _ = hk.experimental.check_jax_usage(previous)
    """


class NotInTransformError(ValueError):
    """An hk_core API that needs a frame was called outside ``hk.transform``.

    Example:
        >>> try:
        ...     hk.get_parameter("w", [1], init=jnp.zeros)
        ... except ValueError as error:
        ...     print(type(error).__name__)
        NotInTransformError
    """


class InvalidModuleNameError(ValueError):
    """A module or name-scope name is not a valid Python identifier.

    Example:
        >>> try:
        ...     hk.transform(lambda: hk.Linear(1, name="my linear")).init(None)
        ... except ValueError as error:
        ...     print(type(error).__name__, error.name)
        InvalidModuleNameError my linear
    """

    def __init__(self, name: str):
        self.name = name
        super().__init__(
            f"'{name}' is not a valid module name (must be a valid Python identifier)")


class ParameterShapeError(ValueError):
    """A stored parameter or state value has another shape than the module asks for.

    ``module_path`` (also ``bundle``) is the module's path, ``name`` the parameter's.

    Example:
        >>> f = hk.transform(lambda x: hk.Linear(2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
        >>> try:
        ...     f.apply(params, None, jnp.ones([1, 4]))
        ... except ValueError as error:
        ...     print(error.module_path, error.name, error.expected, error.actual)
        linear w (4, 2) (3, 2)
    """

    def __init__(self, bundle: str, name: str, expected: Sequence[int], actual: Sequence[int],
                 dtype):
        self.bundle, self.name = bundle, name
        self.module_path = bundle
        self.expected, self.actual = tuple(expected), tuple(actual)
        super().__init__(
            f"'{bundle}/{name}' with retrieved shape {self.actual} does not match "
            f"shape={list(self.expected)} dtype={dtype} (module {bundle!r}, parameter "
            f"{name!r}: expected shape {self.expected}, got {self.actual}). Were the params "
            "created by init with different input shapes?")


class MissingParameterError(ValueError):
    """``apply`` needed a parameter that is not in the params it was given.

    ``module_path`` (also ``bundle``) is the module's path, ``name`` the parameter's.

    Example:
        >>> f = hk.transform(lambda x: hk.Linear(2)(x))
        >>> try:
        ...     f.apply({}, None, jnp.ones([1, 3]))
        ... except ValueError as error:
        ...     print(type(error).__name__, error.module_path, error.name)
        MissingParameterError linear w
    """

    def __init__(self, bundle: str, name: str, present_bundles: Iterable[str],
                 present_names: Iterable[str] | None):
        self.bundle, self.name = bundle, name
        self.module_path = bundle
        if present_names is None:
            modules = sorted(present_bundles)
            shown = ", ".join(repr(m) for m in modules[:8]) + (", ..." if len(modules) > 8 else "")
            detail = f"module {bundle!r} is not in the params (modules present: {shown or 'none'})"
        else:
            names = ", ".join(repr(n) for n in sorted(present_names))
            detail = f"module {bundle!r} has no parameter {name!r} (it has: {names or 'none'})"
        super().__init__(
            f"Unable to retrieve parameter {name!r} for module {bundle!r} All parameters must "
            f"be created as part of `init`. {detail}.")


def not_in_transform(what: str) -> NotInTransformError:
    """Builds the error for ``what`` (e.g. "`hk.get_parameter`") used outside a transform."""
    return NotInTransformError(
        f"{what} must be used as part of an `hk.transform`. Did you call it outside the "
        "function you passed to `hk.transform`?")
