"""``hk.Deferred``: build a module on first use, named as if built where the ``Deferred`` was."""

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from hk_core._src.core import frame as frame_lib

T = TypeVar("T")

_OWN_ATTRIBUTES = frozenset({"_factory", "_call_methods", "_target", "_scopes"})


class Deferred(Generic[T]):
    """Creates a module with ``factory`` the first time it is used.

    The naming context (enclosing modules, methods and name scopes) is captured when the
    ``Deferred`` is built and restored while ``factory`` runs, so a ``Deferred`` made in
    ``outer.__init__`` creates ``outer/~/linear`` even if first called from ``outer.__call__``.
    Once the target exists, attribute reads, writes and deletes go to it.

    Example:
        >>> def f(x):
        ...     with hk.name_scope("encoder"):
        ...         lazy = hk.Deferred(lambda: hk.Linear(2))
        ...     return lazy(x)
        >>> params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
        >>> list(params)
        ['encoder/linear']
    """

    def __init__(self, factory: Callable[[], T], call_methods: Sequence[str] = ("__call__",)):
        """Captures the current naming context.

        Args:
            factory: Builds the target module; called once, on first use.
            call_methods: Method names forwarded to the target (creating it first). Names
                other than ``'__call__'`` become attributes of this object.
        """
        init = object.__setattr__
        init(self, "_factory", factory)
        init(self, "_call_methods", tuple(call_methods))
        init(self, "_target", None)
        frames = frame_lib.frame_stack()
        init(self, "_scopes", list(frames[-1].scopes) if frames else None)
        for method_name in self._call_methods:
            if method_name != "__call__":
                init(self, method_name, self._forwarder(method_name))

    def _forwarder(self, method_name: str) -> Callable[..., Any]:
        def call(*args, **kwargs):
            return getattr(self.target, method_name)(*args, **kwargs)

        call.__name__ = method_name
        return call

    @property
    def target(self) -> T:
        """The module, created by ``factory`` if this is the first use."""
        target = self._target
        if target is None:
            target = self._create()
        return target

    def _create(self) -> T:
        scopes = self._scopes
        if scopes is None or not frame_lib.inside_transform():
            target = self._factory()
        else:
            # Swap the contents, not the list: running methods hold a reference to it.
            live = frame_lib.current_frame().scopes
            saved = live[:]
            live[:] = scopes
            try:
                target = self._factory()
            finally:
                live[:] = saved
        object.__setattr__(self, "_target", target)
        return target

    def __call__(self, *args, **kwargs) -> Any:
        """Creates the target if needed and calls it.

        Raises:
            TypeError: if ``'__call__'`` is not in ``call_methods``.
        """
        if "__call__" not in self._call_methods:
            raise TypeError(
                f"This Deferred is not callable: '__call__' is not in its call_methods "
                f"{self._call_methods}.")
        return self.target(*args, **kwargs)

    def __str__(self) -> str:
        return f"Deferred({self.target!s})"

    def __repr__(self) -> str:
        return f"Deferred({self.target!r})"

    def __getattr__(self, name: str) -> Any:
        if name in _OWN_ATTRIBUTES:  # not set yet (e.g. during copying): no forwarding
            raise AttributeError(name)
        target = self._target
        if target is None:
            raise AttributeError(
                f"Deferred has no attribute {name!r} yet: the target module is created on "
                "first use (a call, or `.target`).")
        return getattr(target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        target = self._target
        if name in _OWN_ATTRIBUTES or target is None:
            object.__setattr__(self, name, value)
        else:
            setattr(target, name, value)

    def __delattr__(self, name: str) -> None:
        target = self._target
        if name in _OWN_ATTRIBUTES or target is None:
            object.__delattr__(self, name)
        else:
            delattr(target, name)
