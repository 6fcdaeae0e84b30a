"""Type aliases and protocols shared by every layer of hk_core."""

import abc
from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol, runtime_checkable

import jax

Array = jax.Array
PRNGKey = jax.Array
# State values are arrays in Haiku's aliases too (a pytree is allowed at run time).
Params = Mapping[str, Mapping[str, jax.Array]]
"""Parameters as ``init`` returns them: ``{module path: {name: array}}``.

Example:
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> params: hk.Params = f.init(jax.random.key(0), jnp.ones([1, 3]))
    >>> jax.tree.map(jnp.shape, params)
    {'linear': {'b': (2,), 'w': (3, 2)}}
"""
State = Mapping[str, Mapping[str, jax.Array]]
"""Model state (``hk.set_state``), laid out like ``Params``.

Example:
    >>> f = hk.transform_with_state(lambda: hk.set_state("count", jnp.zeros([])))
    >>> params, state = f.init(None)
    >>> state
    {'~': {'count': Array(0., dtype=float32)}}
"""
MutableParams = MutableMapping[str, MutableMapping[str, jax.Array]]
"""A ``Params`` whose dicts may be changed in place, as ``to_mutable_dict`` returns.

Example:
    >>> params = {"linear": {"w": jnp.ones([3, 2])}}
    >>> mutable: hk.MutableParams = hk.data_structures.to_mutable_dict(params)
    >>> mutable["linear"]["w"] = jnp.zeros([3, 2])
"""
MutableState = MutableMapping[str, MutableMapping[str, jax.Array]]
"""A ``State`` whose dicts may be changed in place.

Example:
    >>> state: hk.MutableState = {"counter": {"n": jnp.zeros([])}}
    >>> state["counter"]["n"] += 1
"""


class _StrictProtocol(Protocol):
    """A Protocol that only other Protocols may subclass (as in Haiku).

    Implementations are checked structurally (``isinstance``); a concrete class that lists
    the protocol as a base would silently inherit nothing useful, so it is refused.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_is_protocol", False):
            bases = ", ".join(base.__name__ for base in cls.__bases__)
            raise TypeError(
                f"{cls.__name__} is a Protocol and should not be subclassed by a non-Protocol "
                "type. To define a protocol that extends it, add Protocol to its bases: "
                f"`class {cls.__name__}({bases}, Protocol)`.")


@runtime_checkable
class ModuleProtocol(_StrictProtocol, Protocol):
    """Anything that looks like an ``hk.Module``: a name, a path and its params/state.

    Subclass it only to extend the protocol (``class P(hk.ModuleProtocol, Protocol)``).

    Example:
        >>> hk.transform(lambda: isinstance(hk.Linear(1), hk.ModuleProtocol)).apply({}, None)
        True
    """

    @property
    def module_name(self) -> str: ...

    @property
    def name(self) -> str: ...

    @abc.abstractmethod
    def params_dict(self) -> Mapping[str, jax.Array]:
        """The params of the module (and the modules it used), keyed by full name."""

    @abc.abstractmethod
    def state_dict(self) -> Mapping[str, jax.Array]:
        """The current state of the module, keyed by full name."""


@runtime_checkable
class SupportsCall(ModuleProtocol, Protocol):
    """A module-like object that is callable.

    Example:
        >>> hk.transform(lambda: isinstance(hk.Linear(1), hk.SupportsCall)).apply({}, None)
        True
    """

    @abc.abstractmethod
    def __call__(self, *args, **kwargs) -> Any:
        """Runs the module."""
