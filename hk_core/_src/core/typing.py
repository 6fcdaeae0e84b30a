"""Type aliases shared by every layer of hk_core."""

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax

Array = jax.Array
PRNGKey = jax.Array
Initializer = Callable[[Sequence[int], Any], jax.Array]
Params = Mapping[str, Mapping[str, jax.Array]]
State = Mapping[str, Mapping[str, Any]]
MutableParams = MutableMapping[str, MutableMapping[str, jax.Array]]
MutableState = MutableMapping[str, MutableMapping[str, Any]]


@runtime_checkable
class ModuleProtocol(Protocol):
    """Anything that looks like an ``hk.Module``: it has a ``module_name``.

    Example:
        >>> hk.transform(lambda: isinstance(hk.Linear(1), hk.ModuleProtocol)).apply({}, None)
        True
    """

    @property
    def module_name(self) -> str: ...


@runtime_checkable
class SupportsCall(ModuleProtocol, Protocol):
    """A module-like object that is callable.

    Example:
        >>> hk.transform(lambda: isinstance(hk.Linear(1), hk.SupportsCall)).apply({}, None)
        True
    """

    def __call__(self, *args, **kwargs) -> Any: ...
