"""Module names: default stems, the ``~`` rule, per-scope uniquification and ``name_scope``.

A module's path is computed once, when it is constructed (API.md §1.2): the stem (``name=``
or the snake-cased class name), prefixed by the enclosing module and method, then made
unique with counters that live in the enclosing method invocation's ``MethodScope``.
"""

import functools
import re
import types
from typing import Any

from hk_core._src.core import errors
from hk_core._src.core import frame as frame_lib
from hk_core._src.core import interceptors

FORCE_PREFIX = "FORCE:"
_IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FORCED_COMPONENT = re.compile(r"^~?([a-zA-Z_][a-zA-Z0-9_]*)?$")
_SUPER_NOT_CALLED = (
    "The super constructor must be called before you create parameters or submodules.")


@functools.lru_cache(maxsize=4096)
def snake_case(class_name: str) -> str:
    """Converts a class name to Haiku's default module stem (``Conv2D`` -> ``conv2_d``).

    Example:
        >>> from hk_core._src.core import naming
        >>> naming.snake_case("MyHTTPModule"), naming.snake_case("Conv1DLSTM")
        ('my_http_module', 'conv1_dlstm')
    """
    out = []
    last = len(class_name) - 1
    for i, ch in enumerate(class_name):
        if ch.isupper() and i > 0:
            prev = class_name[i - 1]
            after_lower_or_digit = prev.islower() or prev.isdigit()
            before_lower = i < last and class_name[i + 1].islower()
            if after_lower_or_digit or before_lower:
                out.append("_")
        out.append(ch)
    return "".join(out).lower()


def force_name(name: str) -> str:
    """Marks ``name`` to be used verbatim as a module path (shares params by name).

    Example:
        >>> hk.force_name("encoder/~/linear")
        'FORCE:encoder/~/linear'
    """
    return FORCE_PREFIX + name


def validate_stem(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise errors.InvalidModuleNameError(name)


def _validate_forced(path: str) -> None:
    for component in path.split("/"):
        if not component or not _FORCED_COMPONENT.match(component):
            raise errors.InvalidModuleNameError(path)


def _numeric_suffix(name: str) -> tuple[str, int] | None:
    base, sep, digits = name.rpartition("_")
    if sep and digits.isdigit() and digits.isascii() and (digits == "0" or digits[0] != "0"):
        return base, int(digits)
    return None


def _reserve(scope: frame_lib.MethodScope, base: str, number: int, name: str) -> None:
    scope.reserved.add(name)
    counters = scope.counters
    if counters.get(base, 0) <= number:
        counters[base] = number + 1


def prefix_for(scope: frame_lib.MethodScope) -> str:
    """The path prefix for a child created in ``scope`` ('' at the top level)."""
    module = scope.module
    if module is None:
        return ""
    parent = getattr(module, "module_name", None)
    if parent is None:
        raise ValueError(_SUPER_NOT_CALLED)
    method = scope.method_name
    if method == "__call__":
        return parent + "/"
    if method == "__init__":
        return parent + "/~/"
    return f"{parent}/~{method}/"


def unique_child_name(scope: frame_lib.MethodScope, name: str) -> str:
    """Returns the full path of a child called ``name`` created in ``scope``, and reserves it.

    ``name`` is a stem (validated), or a ``force_name`` path used verbatim.
    """
    if name.startswith(FORCE_PREFIX):
        path = name[len(FORCE_PREFIX):]
        _validate_forced(path)
        parsed = _numeric_suffix(path)
        base, number = parsed if parsed is not None else (path, 0)
        _reserve(scope, base, number, path)
        return path
    validate_stem(name)
    candidate = prefix_for(scope) + name
    parsed = _numeric_suffix(candidate)
    if parsed is None:
        base = candidate
        number = scope.counters.get(base, 0)
        final = base if number == 0 else f"{base}_{number}"
    else:
        base, number = parsed
        final = candidate
    if final in scope.reserved:
        raise ValueError(f"Module name '{final}' is not unique.")
    _reserve(scope, base, number, final)
    return final


class NameScopeModule:
    """The stand-in module that a ``name_scope`` pushes; params inside go under its path."""

    def __init__(self, module_name: str):
        self.module_name = module_name
        self.name = module_name.rsplit("/", 1)[-1]
        self._submodules: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"NameScopeModule({self.module_name!r})"


def _scope_module(frame: frame_lib.Frame, parent: frame_lib.MethodScope,
                  component: str) -> NameScopeModule:
    """Builds the stand-in module of one scope component, seen by method interceptors.

    As in Haiku, interceptors see its construction (``'__init__'`` with ``name=component``)
    and, inside, ``hk.current_name()`` is the scope's path once it is named.
    """
    chain = interceptors.active()
    if not chain:
        return NameScopeModule(unique_child_name(parent, component))
    module = NameScopeModule.__new__(NameScopeModule)
    construction = frame_lib.MethodScope(module, "__init__", None)

    def build(name: str) -> None:
        path = unique_child_name(parent, name)
        NameScopeModule.__init__(module, path)
        construction.bundle = path

    context = interceptors.MethodContext(
        module, "__init__", types.MethodType(NameScopeModule.__init__, module), NameScopeModule)
    frame.scopes.append(construction)
    try:
        interceptors.run(chain, build, (), {"name": component}, context)
    finally:
        frame.scopes.pop()
    return module


class _NameScope:
    """The object ``hk.name_scope`` returns: names are reserved on creation, single use."""

    def __init__(self, scopes: list[frame_lib.MethodScope]):
        self._scopes = scopes
        self._state = "new"
        self._frame: frame_lib.Frame | None = None

    def __enter__(self) -> None:
        if self._state == "active":
            raise ValueError(
                f"name_scope is not reentrant: the scope {self._scopes[-1].bundle!r} is already "
                "active; open a new hk.name_scope for the inner block.")
        if self._state == "done":
            raise ValueError(
                f"name_scope is not reusable: the scope {self._scopes[-1].bundle!r} was already "
                "entered and exited; call hk.name_scope again for each `with` (a new call "
                "gives a new, uniquified name).")
        self._state = "active"
        self._frame = frame_lib.current_frame("`hk.name_scope`")
        self._frame.scopes.extend(self._scopes)

    def __exit__(self, *exc_info) -> None:
        scopes = self._frame.scopes
        del scopes[len(scopes) - len(self._scopes):]
        self._state = "done"


def name_scope(name: str, *, method_name: str = "__call__") -> _NameScope:
    """Runs the code inside as if in method ``method_name`` of a module called ``name``.

    Parameters created directly inside go under the scope's path; modules inside are named
    below it. ``'a/b'`` opens nested scopes. The name is reserved when ``name_scope`` is
    called, and the returned object can be entered once.

    Example:
        >>> def f(x):
        ...     with hk.name_scope("encoder"):
        ...         return hk.Linear(2)(x)
        >>> params = hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
        >>> list(params)
        ['encoder/linear']
    """
    frame = frame_lib.current_frame("`hk.name_scope`")
    if not name or name.startswith("/"):
        raise ValueError(f"Name scopes must not be empty or start with '/', got {name!r}.")
    if name.startswith(FORCE_PREFIX):
        components = [name]
    else:
        components = name.split("/")
    parent = frame.scopes[-1]
    pushed = []
    for component in components:
        module = _scope_module(frame, parent, component)
        path = module.module_name
        scope = frame_lib.MethodScope(module, method_name, path)
        pushed.append(scope)
        parent = scope
    return _NameScope(pushed)


def current_name() -> str:
    """Returns the params key ``get_parameter`` would use here: ``'~'`` at the top level.

    Example:
        >>> class Net(hk.Module):
        ...     def __call__(self):
        ...         return hk.current_name()
        >>> hk.transform(lambda: (hk.current_name(), Net()())).apply({}, None)
        ('~', 'net')
    """
    bundle = frame_lib.current_frame("`hk.current_name`").scopes[-1].bundle
    if bundle is None:
        raise ValueError(_SUPER_NOT_CALLED)
    return bundle
