"""Mixed precision (``hk.mixed_precision``): a dtype policy per module class or module path.

A policy is any object with ``jmp.Policy``'s interface (``param_dtype``, ``compute_dtype``,
``output_dtype``, ``cast_to_compute``, ``cast_to_output``); ``Policy`` is hk_core's own.

Mechanism: the first ``set_policy`` installs one global method interceptor. For every
intercepted method of a module with a policy it casts the arguments to ``compute_dtype``
and the result to ``output_dtype``. The outermost such call in a transform also installs a
custom creator (parameters are created in ``param_dtype``) and a custom getter (parameters
and state are read in ``compute_dtype``); both follow the innermost active policy.

Targets:

* a ``Module`` subclass: its instances (exact class; subclasses do not inherit), including
  their construction;
* a module path string such as ``"mlp/~/linear_0"``: the one module with that path;
* a compiled ``re.Pattern``: every module whose path it ``fullmatch``-es.

A path or pattern policy wins over a class policy; among patterns the latest set wins.
Path policies apply from the end of construction on (the path is known only then).
"""

import contextlib
import re
import threading
from collections.abc import Hashable, Iterator
from typing import Any

from hk_core._src.core import frame as frame_lib
from hk_core._src.core import interceptors
from hk_core._src.core import params as params_lib
from hk_core._src.mixed_precision import policy as policy_lib

Target = type | str | re.Pattern

_CLASS_POLICIES: dict[Hashable, Any] = {}
_PATH_POLICIES: dict[str, Any] = {}
_PATTERN_POLICIES: dict[re.Pattern, Any] = {}
_RESOLVED_PATHS: dict[str, Any] = {}  # module path -> path/pattern policy or None
_CLASS_KEYS: dict[type, Hashable] = {}
_LOCK = threading.Lock()
_INSTALLED = False


class _Active(threading.local):
    def __init__(self):
        # (policy, frame) for each running policy-bearing method, innermost last.
        self.stack: list[tuple[Any, Any]] = []


_ACTIVE = _Active()


def _class_key(cls: type) -> Hashable:
    key = _CLASS_KEYS.get(cls)
    if key is None:
        qualname = cls.__qualname__
        # Classes defined in a function are not unique by name: key them by identity.
        key = cls if "<locals>" in qualname else (cls.__module__, qualname)
        _CLASS_KEYS[cls] = key
    return key


def _registry(target: Target) -> tuple[dict, Hashable]:
    if isinstance(target, type):
        return _CLASS_POLICIES, _class_key(target)
    if isinstance(target, str):
        return _PATH_POLICIES, target
    if isinstance(target, re.Pattern):
        return _PATTERN_POLICIES, target
    raise TypeError(
        "A mixed-precision policy target must be a Module class, a module path string or a "
        f"compiled re.Pattern; got {type(target).__name__} {target!r}.")


def _as_policy(policy: Any) -> Any:
    if isinstance(policy, str):
        return policy_lib.Policy.from_string(policy)
    missing = [name for name in ("param_dtype", "compute_dtype", "cast_to_compute",
                                 "cast_to_output") if not hasattr(policy, name)]
    if missing:
        raise TypeError(
            f"{policy!r} is not a mixed-precision policy: it lacks {', '.join(missing)}. Use "
            "hk.mixed_precision.Policy, a policy string such as "
            "'params=float32,compute=bfloat16,output=float32', or a jmp.Policy.")
    return policy


def _path_policy(path: str) -> Any:
    try:
        return _RESOLVED_PATHS[path]
    except KeyError:
        pass
    policy = _PATH_POLICIES.get(path)
    if policy is None:
        for pattern, candidate in reversed(_PATTERN_POLICIES.items()):
            if pattern.fullmatch(path):
                policy = candidate
                break
    _RESOLVED_PATHS[path] = policy
    return policy


def _policy_of(module: Any) -> Any:
    if _PATH_POLICIES or _PATTERN_POLICIES:
        path = getattr(module, "module_name", None)  # None while being constructed
        if path is not None:
            policy = _path_policy(path)
            if policy is not None:
                return policy
    if _CLASS_POLICIES:
        return _CLASS_POLICIES.get(_class_key(type(module)))
    return None


def _creator(next_creator, shape, dtype, init, context):
    policy = current_policy()
    if policy is not None:
        dtype = policy.param_dtype
    return next_creator(shape, dtype, init)


def _getter(next_getter, value, context):
    policy = current_policy()
    if policy is not None:
        value = policy.cast_to_compute(value)
    return next_getter(value)


def _interceptor(next_fun, args, kwargs, context):
    policy = _policy_of(context.module)
    if policy is None:
        return next_fun(*args, **kwargs)
    args, kwargs = policy.cast_to_compute((args, kwargs))
    frame = frame_lib.current_frame()
    active = _ACTIVE.stack
    # Creator and getter are installed once per frame (a lifted transform has its own).
    install = not active or active[-1][1] is not frame
    active.append((policy, frame))
    try:
        if install:
            with params_lib.custom_creator(_creator), \
                    params_lib.custom_getter(_getter, state=True):
                out = next_fun(*args, **kwargs)
        else:
            out = next_fun(*args, **kwargs)
    finally:
        active.pop()
    return policy.cast_to_output(out)


def _install_once() -> None:
    global _INSTALLED
    with _LOCK:
        if not _INSTALLED:
            interceptors.install_global(_interceptor)
            _INSTALLED = True


def set_policy(target: Target, policy: Any) -> None:
    """Uses ``policy`` for the modules ``target`` names (a class, a path or a pattern).

    Args:
        target: A ``Module`` subclass, a module path (``"mlp/~/linear_0"``) or a compiled
            ``re.Pattern`` matched (``fullmatch``) against module paths.
        policy: A ``Policy``, a policy string (``"p=f32,c=bf16,o=f32"``) or any object
            with ``jmp.Policy``'s interface.

    Raises:
        TypeError: for another kind of target, or a policy without the interface.

    Example:
        >>> policy = "params=float32,compute=bfloat16,output=float16"
        >>> hk.mixed_precision.set_policy(hk.Linear, policy)
        >>> f = hk.transform(lambda x: hk.Linear(2)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
        >>> params["linear"]["w"].dtype, f.apply(params, None, jnp.ones([1, 3])).dtype
        (dtype('float32'), dtype('float16'))
        >>> hk.mixed_precision.clear_policy(hk.Linear)
    """
    policy = _as_policy(policy)
    registry, key = _registry(target)
    _install_once()
    with _LOCK:
        registry[key] = policy
        _RESOLVED_PATHS.clear()


def get_policy(target: Target) -> Any:
    """Returns the policy set for exactly ``target`` (class, path or pattern), or ``None``.

    Example:
        >>> hk.mixed_precision.get_policy(hk.Linear) is None
        True
    """
    registry, key = _registry(target)
    return registry.get(key)


def clear_policy(target: Target) -> None:
    """Removes the policy set for ``target``, if any.

    Example:
        >>> hk.mixed_precision.set_policy("mlp/~/linear_0", "bf16")
        >>> hk.mixed_precision.clear_policy("mlp/~/linear_0")
        >>> hk.mixed_precision.get_policy("mlp/~/linear_0") is None
        True
    """
    registry, key = _registry(target)
    with _LOCK:
        registry.pop(key, None)
        _RESOLVED_PATHS.clear()


def _running_targets(registry: dict, key: Hashable) -> bool:
    if not frame_lib.inside_transform():
        return False
    for scope in frame_lib.current_frame().scopes:
        module = scope.module
        if module is None:
            continue
        if registry is _CLASS_POLICIES:
            if _class_key(type(module)) == key:
                return True
        else:
            path = getattr(module, "module_name", None)
            if path is not None and (path == key if registry is _PATH_POLICIES
                                     else key.fullmatch(path)):
                return True
    return False


@contextlib.contextmanager
def push_policy(target: Target, policy: Any) -> Iterator[None]:
    """Sets ``policy`` for ``target`` inside the ``with`` block, then restores the old one.

    Raises:
        ValueError: if used inside a method of a module that ``target`` names.

    Example:
        >>> def f(x):
        ...     with hk.mixed_precision.push_policy(hk.Linear, "c=bf16"):
        ...         return hk.Linear(2)(x)
        >>> hk.transform(f).apply({"linear": {"w": jnp.ones([3, 2]), "b": jnp.ones([2])}},
        ...                       None, jnp.ones([1, 3])).dtype
        dtype('float32')
        >>> hk.mixed_precision.get_policy(hk.Linear) is None
        True
    """
    registry, key = _registry(target)
    if _running_targets(registry, key):
        if registry is _CLASS_POLICIES:
            raise ValueError(
                "Pushing a policy inside a method on the same class is not supported.")
        raise ValueError(
            f"Pushing a policy for {target!r} inside a method of a module it names is not "
            "supported.")
    previous = registry.get(key)
    set_policy(target, policy)
    try:
        yield
    finally:
        if previous is None:
            clear_policy(target)
        else:
            set_policy(target, previous)


def current_policy() -> Any:
    """Returns the policy of the innermost running module method that has one, else ``None``.

    Example:
        >>> hk.mixed_precision.current_policy() is None
        True
    """
    active = _ACTIVE.stack
    return active[-1][0] if active else None
