"""Errors a layer raises for a bad input or argument, with fields that say which and why.

Each class subclasses the builtin exception Haiku raises in the same situation, so
``except ValueError:`` keeps working. The message is given as written at the raise site (tests
pin Haiku's texts); the fields stand beside it for code that inspects the error.
"""

from typing import Any


class LayerError(Exception):
    """Base (a mixin) of the errors about a layer's input or arguments.

    Attributes:
        module_path: The module's path (e.g. ``'mlp/~/linear_0'``), or the name of the function
            or helper class the message names (e.g. ``'max_pool'``); None if it names none.
        argument: The argument that is wrong (e.g. ``'inputs'``, ``'kernel_shape'``).
        expected: What was expected: a value, a shape, or a short description.
        got: What was given (a value, a shape, a dtype).

    Example:
        >>> try:
        ...     hk.transform(lambda x: hk.Linear(2)(x)).init(None, jnp.float32(1))
        ... except hk.errors.LayerError as error:
        ...     print(error.module_path, error.argument, error.got)
        linear inputs ()
    """

    def __init__(self, message: str, *, module_path: str | None = None,
                 argument: str | None = None, expected: Any = None, got: Any = None):
        # Keyword fields with defaults: pickling rebuilds the error from its message alone
        # and then restores the fields from ``__dict__``.
        super().__init__(message)
        self.module_path = module_path
        self.argument = argument
        self.expected = expected
        self.got = got

    def at(self, module_path: str) -> "LayerError":
        """The same error, with its message prefixed by ``module_path`` (a helper's error
        re-raised by the module that called it).

        Example:
            >>> from hk_core._src.layers import errors
            >>> error = errors.ConfigurationError("bad", argument="x").at("conv2_d")
            >>> str(error), error.module_path, error.argument
            ('conv2_d: bad', 'conv2_d', 'x')
        """
        return type(self)(f"{module_path}: {self}", module_path=module_path,
                          argument=self.argument, expected=self.expected, got=self.got)


class InputShapeError(LayerError, ValueError):
    """An input's shape, rank or dtype does not fit the layer (a ``ValueError``).

    Example:
        >>> try:
        ...     hk.transform(lambda x: hk.Conv1D(2, 3)(x)).init(None, jnp.ones([3]))
        ... except ValueError as error:
        ...     print(type(error).__name__, error.module_path, error.expected, error.got)
        InputShapeError conv1_d rank in [2, 3] (3,)
    """


class ConfigurationError(LayerError, ValueError):
    """A constructor or call argument has a value the layer rejects (a ``ValueError``).

    Example:
        >>> try:
        ...     hk.transform(lambda x: hk.Reshape([-1, -1])(x)).init(None, jnp.ones([2, 3]))
        ... except ValueError as error:
        ...     print(type(error).__name__, error.module_path, error.argument)
        ConfigurationError reshape output_shape
    """


class ArgumentTypeError(LayerError, TypeError):
    """An argument or input has the wrong kind or length (a ``TypeError``, as in Haiku).

    Example:
        >>> try:
        ...     hk.transform(lambda: hk.Conv2D(4, kernel_shape=(3, 3, 3))).init(None)
        ... except TypeError as error:
        ...     print(type(error).__name__, error.argument, error.expected, error.got)
        ArgumentTypeError kernel_shape length 1 or 2 (3, 3, 3)
    """


class UnknownPaddingError(ConfigurationError, RuntimeError):
    """A conv's padding string is neither ``'SAME'`` nor ``'VALID'`` (any case).

    Haiku 0.0.17 lets ``lax`` reject it when the layer is called, with a ``RuntimeError``;
    this error is raised at the same point and is both that type and a ``ValueError``.

    Example:
        >>> conv = hk.transform(lambda x: hk.Conv1D(2, 3, padding="full")(x))
        >>> try:
        ...     conv.init(jax.random.PRNGKey(0), jnp.ones([1, 5, 1]))
        ... except RuntimeError as error:
        ...     print(isinstance(error, ValueError), error.module_path, error.argument)
        True conv1_d padding
    """
