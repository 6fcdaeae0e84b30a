"""``hk.Module``: naming at construction and the wrapping of public methods.

The metaclass wraps each public method once, when the class is created. A wrapped call
pushes a ``MethodScope`` (the naming context for children), runs interceptors only if
some are registered, pops, and records the module as used by its callers (for
``params_dict``). Construction is wrapped once as method ``__init__``.
"""

import abc
import functools
import inspect
import pprint
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import jax

from hk_core._src.core import config as config_lib
from hk_core._src.core import frame as frame_lib
from hk_core._src.core import interceptors
from hk_core._src.core import kernels
from hk_core._src.core import naming

_NOT_IN_TRANSFORM = "All `hk.Module`s must be initialized inside an `hk.transform`."
_CONFIG = config_lib.get_config()
_FRAMES = frame_lib._LOCAL
_INTERCEPTORS = interceptors._LOCAL
_is_eager = kernels.is_eager

F = TypeVar("F", bound=Callable)


def transparent(method: F) -> F:
    """Leaves ``method`` unwrapped: it runs in its caller's naming scope, unseen by interceptors.

    Example:
        >>> class Net(hk.Module):
        ...     @hk.transparent
        ...     def project(self, x):
        ...         return hk.Linear(2)(x)
        ...     def __call__(self, x):
        ...         return self.project(x)
        >>> params = hk.transform(lambda x: Net()(x)).init(0, jnp.ones([1, 3]))
        >>> list(params)
        ['net/linear']
    """
    method._hk_transparent = True
    return method


def name_like(method_name: str) -> Callable[[F], F]:
    """Names submodules created in the decorated method as if created in ``method_name``.

    Example:
        >>> class Net(hk.Module):
        ...     @hk.name_like("__call__")
        ...     def encode(self, x):
        ...         return hk.Linear(2)(x)
        >>> params = hk.transform(lambda x: Net().encode(x)).init(0, jnp.ones([1, 3]))
        >>> list(params)
        ['net/linear']
    """
    def decorator(method: F) -> F:
        method._hk_name_like = method_name
        return method

    return decorator


def _wrap(method: Callable, method_name: str, owner: type) -> Callable:
    naming_method = getattr(method, "_hk_name_like", method_name)
    scope_name_suffix = "" if method_name == "__call__" else "." + method_name

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        frames = _FRAMES.frames
        if not frames:
            raise ValueError(_NOT_IN_TRANSFORM)
        frame = frames[-1]
        if frame.trace_state is not None:
            frame_lib.check_jax_usage(frame, f"Module method {owner.__name__}.{method_name}")
        scopes = frame.scopes
        module_name = self.module_name
        scopes.append(frame_lib.MethodScope(self, naming_method, module_name))
        try:
            chain = _INTERCEPTORS.stack
            # Name scopes only label traced ops (HLO op names); eager ops never see them.
            if frame.name_scopes and not _is_eager():
                with jax.named_scope(self.name + scope_name_suffix):
                    if chain:
                        out = _intercepted(chain, method, method_name, owner, self, args, kwargs)
                    else:
                        out = method(self, *args, **kwargs)
            elif chain:
                out = _intercepted(chain, method, method_name, owner, self, args, kwargs)
            else:
                out = method(self, *args, **kwargs)
        except TypeError as error:  # costs nothing unless raised
            _explain_dtype_error(error, self, frame, method_name, args, kwargs)
            raise
        finally:
            scopes.pop()
        for scope in scopes:
            caller = scope.module
            if caller is not None:
                caller._submodules[module_name] = self
        return out

    wrapped._hk_wrapped = method
    return wrapped


def _explain_dtype_error(error: TypeError, module, frame, method_name: str, args, kwargs):
    """Adds the module path and its parameters' dtypes to a dtype error JAX raised inside.

    Only JAX's plain ``TypeError`` that mentions dtypes, raised while the innermost module
    that owns parameters runs; outer modules leave it as it is.
    """
    if type(error) is not TypeError or getattr(error, "_hk_explained", False):
        return
    message = error.args[0] if error.args and isinstance(error.args[0], str) else None
    if message is None or "dtype" not in message:
        return
    try:
        bundle = frame.params.get(module.module_name)
    except AttributeError:
        return
    if not bundle:
        return
    arrays = [leaf for leaf in jax.tree.leaves((args, kwargs)) if hasattr(leaf, "dtype")]
    input_dtypes = sorted({str(leaf.dtype) for leaf in arrays})
    owned = {name: str(getattr(value, "dtype", type(value).__name__))
             for name, value in bundle.items()}
    odd = {name: dtype for name, dtype in owned.items() if dtype not in input_dtypes}
    path = module.module_name
    shown = odd or owned
    listed = ", ".join(f"'{path}/{name}' ({dtype})" for name, dtype in shown.items())
    inputs = ", ".join(input_dtypes) or "no arrays"
    detail = (f"In module {path!r} ({type(module).__name__}.{method_name}): parameter"
              f"{'s' if len(shown) > 1 else ''} {listed}, inputs {inputs}. Parameters whose "
              "dtype differs from the inputs' make this op fail: were the params (or the "
              "inputs) cast or loaded with another dtype?")
    error.args = (f"{message}\n\n{detail}", *error.args[1:])
    error._hk_explained = True


def _intercepted(chain, method, method_name, owner, module, args, kwargs):
    bound = types.MethodType(method, module)
    context = interceptors.MethodContext(module, method_name, bound, owner)
    return interceptors.run(chain, bound, args, kwargs, context)


def _wrap_class_members(cls: type, clsdict: dict) -> None:
    for key, value in clsdict.items():
        if key.startswith("__") and key != "__call__":
            continue
        if key == "module_name":
            continue
        if isinstance(value, property):
            accessors = [
                _wrap(f, key, cls) if f is not None and not getattr(f, "_hk_transparent", False)
                else f
                for f in (value.fget, value.fset, value.fdel)
            ]
            setattr(cls, key, property(*accessors, doc=value.__doc__))
        elif inspect.isfunction(value) and not getattr(value, "_hk_transparent", False):
            setattr(cls, key, _wrap(value, key, cls))


def _module_repr(module: Any) -> str:
    """``Class(arg=value, ...)`` when ``module_auto_repr`` is on, else ``object``'s repr."""
    ctor = module.__dict__.get("_hk_ctor_args")
    if not _CONFIG.module_auto_repr or ctor is None:
        return object.__repr__(module)
    return _auto_repr(module, *ctor)


_REPR_WIDTH = 80  # Haiku's: a longer one-line repr is laid out one argument per line


def _same_as_default(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty:
        return False
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001 - arrays, tracers: ambiguous means "show it"
        return False


def _auto_repr(module: Any, args: tuple, kwargs: dict) -> str:
    """``Class(arg=value, ...)`` from the constructor arguments that differ from defaults."""
    try:
        signature = inspect.signature(type(module).__init__)
        bound = signature.bind(module, *args, **kwargs)
    except (TypeError, ValueError):
        return object.__repr__(module)
    shown: list[tuple[str, Any]] = []  # (prefix, value); the prefix is '' for *args
    for name, param in list(signature.parameters.items())[1:]:
        if name not in bound.arguments:
            continue
        value = bound.arguments[name]
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            shown.extend(("", item) for item in value)
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            shown.extend((f"{key}=", item) for key, item in value.items())
        elif not _same_as_default(value, param.default):
            shown.append((f"{name}=", value))
    class_name = type(module).__name__
    line = f"{class_name}({', '.join(prefix + repr(value) for prefix, value in shown)})"
    if len(line) <= _REPR_WIDTH:
        return line
    lines = []
    for prefix, value in shown:
        head = "    " + prefix
        text = pprint.pformat(value).replace("\n", "\n" + " " * len(head))
        lines.append(f"{head}{text},")
    return class_name + "(\n" + "\n".join(lines) + "\n)"


class ModuleMetaclass(type(typing.Protocol)):
    """Wraps public methods at class creation and construction at instance creation.

    It derives from the metaclass of ``typing.Protocol`` (itself an ``abc.ABCMeta``), so a
    module class may also list a Protocol or ``abc.ABC`` among its bases, and an
    unimplemented ``@abc.abstractmethod`` makes the class uninstantiable, as in Haiku.
    """

    # Modules are never protocols: skip the protocol checks of `typing`'s metaclass.
    __instancecheck__ = abc.ABCMeta.__instancecheck__

    def __new__(mcs, name, bases, clsdict, **kwargs):
        cls = super().__new__(mcs, name, bases, clsdict, **kwargs)
        if any(isinstance(base, ModuleMetaclass) for base in bases):
            _wrap_class_members(cls, clsdict)
        if "__repr__" not in clsdict:
            # Every class gets the automatic repr in its own __dict__, as in Haiku: a later
            # @dataclasses.dataclass keeps it, and a parent's hand-written __repr__ is not
            # inherited (a subclass has other constructor arguments).
            cls.__repr__ = _module_repr
        return cls

    def __call__(cls, *args, **kwargs):
        # `object.__new__` first: an abstract class fails with Python's own TypeError,
        # inside a transform or not (as in Haiku).
        module = cls.__new__(cls) if cls.__new__ is object.__new__ else cls.__new__(
            cls, *args, **kwargs)
        frames = _FRAMES.frames
        if not frames:
            raise ValueError(_NOT_IN_TRANSFORM)
        if frames[-1].trace_state is not None:
            frame_lib.check_jax_usage(frames[-1], f"Constructing {cls.__name__}")
        module._hk_ctor_args = (args, kwargs)  # before __init__: repr works inside it
        scopes = frames[-1].scopes
        scopes.append(frame_lib.MethodScope(module, "__init__", None))
        try:
            chain = _INTERCEPTORS.stack
            if chain:
                init = cls.__init__
                context = interceptors.MethodContext(
                    module, "__init__", types.MethodType(init, module), cls)
                interceptors.run(chain, types.MethodType(init, module), args, kwargs, context)
            else:
                cls.__init__(module, *args, **kwargs)
        finally:
            scopes.pop()
        if "module_name" not in module.__dict__:
            raise ValueError(
                f"Constructing an hk.Module without calling the super constructor is not "
                f"supported. Add `super().__init__(name=name)` to {cls.__qualname__}.__init__.")
        return module

    @property
    def __signature__(cls) -> inspect.Signature:
        signature = inspect.signature(cls.__init__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])


class Module(metaclass=ModuleMetaclass):
    """Base class of every hk_core module: gives it a unique path and wraps its methods.

    Subclasses call ``super().__init__(name=name)`` first, then may create submodules;
    parameters are created with ``hk.get_parameter`` in any method.

    Example:
        >>> class Scale(hk.Module):
        ...     def __call__(self, x):
        ...         return x * hk.get_parameter("s", [], init=jnp.ones)
        >>> f = hk.transform(lambda x: Scale()(x))
        >>> f.init(0, 2.0)
        {'scale': {'s': Array(1., dtype=float32)}}
    """

    def __init__(self, name: str | None = None):
        """Names the module in its creation context (API.md §1.2).

        Args:
            name: The name stem; defaults to the snake-cased class name.
        """
        if name is None:
            name = getattr(self, "name", None)  # a dataclass field
            if name is None:
                name = naming.snake_case(type(self).__name__)
        frames = _FRAMES.frames
        if not frames:
            raise ValueError(_NOT_IN_TRANSFORM)
        scopes = frames[-1].scopes
        own = scopes[-1]
        parent = scopes[-2] if own.module is self else own
        module_name = naming.unique_child_name(parent, name)
        self.module_name = module_name
        self.name = module_name.rsplit("/", 1)[-1]
        self._submodules: dict[str, Any] = {}
        self._hk_frame_serial = frames[-1].serial
        if own.module is self:
            own.bundle = module_name

    def __post_init__(self):
        Module.__init__(self)

    def params_dict(self) -> dict[str, jax.Array]:
        """Returns ``{"<module path>/<name>": value}`` for params of this module and those it used.

        Example:
            >>> def f(x):
            ...     lin = hk.Linear(1)
            ...     lin(x)
            ...     return sorted(lin.params_dict())
            >>> f_t = hk.transform(f)
            >>> f_t.apply(f_t.init(0, jnp.ones([1, 2])), None, jnp.ones([1, 2]))
            ['linear/b', 'linear/w']
        """
        frame = frame_lib.current_frame("`Module.params_dict`")
        return _owned_entries(frame.params, self)

    def state_dict(self) -> dict[str, Any]:
        """Returns ``{"<module path>/<name>": value}`` for current state of this module.

        Example:
            >>> class Counter(hk.Module):
            ...     def __call__(self):
            ...         hk.set_state("n", 1)
            ...         return self.state_dict()
            >>> hk.transform_with_state(lambda: Counter()()).apply({}, {}, None)[0]
            {'counter/n': 1}
        """
        frame = frame_lib.current_frame("`Module.state_dict`")
        return _owned_entries(frame.state, self)


# Haiku's metaclass wraps these two as well: interceptors see them (orig_class Module), and
# `hk.current_name()` inside them is the module's path.
_wrap_class_members(Module, {"params_dict": Module.params_dict, "state_dict": Module.state_dict})


def _owned_entries(tree, module) -> dict[str, Any]:
    roots = [module.module_name, *module._submodules]
    prefixes = tuple(root + "/" for root in roots)
    roots = set(roots)
    out = {}
    for bundle, values in tree.items():
        if bundle in roots or bundle.startswith(prefixes):
            for name, value in values.items():
                out[f"{bundle}/{name}"] = value
    return out


def to_module(f: Callable) -> type[Module]:
    """Wraps a function as a Module class whose ``__call__`` runs ``f``.

    Example:
        >>> def double(x):
        ...     return 2 * x
        >>> Double = hk.to_module(double)
        >>> hk.transform(lambda x: Double()(x)).apply({}, None, 3.0)
        6.0
    """

    class ToModuleWrapper(Module):
        def __init__(self, name=None):
            if name is not None and not isinstance(name, str):
                raise TypeError(
                    f"Expected a string name as the first argument to the module constructor, "
                    f"got: {name!r}. `hk.to_module({getattr(f, '__name__', 'fn')})` returns a "
                    "class: instantiate it, then call the instance: `cls = hk.to_module(fn); "
                    "mod = cls(); out = mod(x)`.")
            super().__init__(name=name if name is not None else f.__name__)

        def __call__(self, *args, **kwargs):
            return f(*args, **kwargs)

    ToModuleWrapper.__doc__ = f.__doc__ or "Module produced by `hk.to_module`."
    return ToModuleWrapper
