"""``export`` / ``load``: a model's ``apply`` as serialized StableHLO, run without its code.

Built on ``jax.export``: the function is traced once with example arguments, lowered to
StableHLO and serialized (this needs the ``flatbuffers`` package: the ``export`` extra,
``pip install ".[export]"`` in a checkout). The bytes hold the computation and, when
params are bound, the params themselves as constants. Loading needs only JAX: the model's
Python code, hk_core's modules and the original process are not involved.
"""

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np


def _spec(x: Any) -> Any:
    """Returns the abstract value of an example argument (a ShapeDtypeStruct passes as is)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    x = x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x)
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _describe(tree: Any) -> str:
    """Formats a tree of arrays or avals as a call signature, e.g. ``(None, f32[1,3])``."""

    def short(leaf: Any) -> str:
        aval = leaf if hasattr(leaf, "str_short") else jax.typeof(leaf)
        return aval.str_short(short_dtypes=True)

    args, kwargs = jax.tree.map(short, tree)
    parts = [repr(a).replace("'", "") for a in args]
    parts += [f"{k}={v!r}".replace("'", "") for k, v in kwargs.items()]
    return f"({', '.join(parts)})"


def _checked_call(exported: jax.export.Exported, what: str, args: tuple) -> Any:
    """Calls ``exported`` after checking that ``args`` have the exported structure."""
    if jax.tree.structure((args, {})) != exported.in_tree:
        expected = jax.tree.unflatten(exported.in_tree, exported.in_avals)
        raise TypeError(
            f"hk_core.export: {what} takes {_describe(expected)}; got {_describe((args, {}))}. "
            "It takes the arguments given to export() after params (None stays None; pass "
            "params first when they were not bound).")
    return exported.call(*args)


class Loaded:
    """A loaded export, called with the arguments given to ``export`` after ``params``.

    With bound params (the default) ``f(*args)``; otherwise ``f(params, *args)``. Calls
    work eagerly and under ``jax.jit``; shapes and dtypes must match the exported ones.

    Example:
        >>> import hk_core.export
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> x = jnp.ones([4, 3])
        >>> params = model.init(jax.random.key(0), x)
        >>> predict = hk_core.export.load(hk_core.export.export(model.apply, params, x).serialize())
        >>> predict
        Loaded((f32[4,3]) -> f32[4,2])
        >>> predict(x).shape
        (4, 2)
    """

    def __init__(self, exported: jax.export.Exported):
        self._exported = exported

    @property
    def jax_exported(self) -> jax.export.Exported:
        """The underlying ``jax.export.Exported`` (avals, platforms, StableHLO text)."""
        return self._exported

    def __call__(self, *args: Any) -> Any:
        """Runs the exported computation on ``args``.

        Raises:
            TypeError: if ``args`` do not have the exported structure (number of
                arguments, ``None`` placeholders, nesting); the message shows both.
            ValueError: if an array's shape or dtype differs from the exported one.
        """
        return _checked_call(self._exported, "the loaded function", args)

    def __repr__(self) -> str:
        exported = self._exported
        inputs = jax.tree.unflatten(exported.in_tree, exported.in_avals)
        outputs = jax.tree.unflatten(exported.out_tree, exported.out_avals)
        out = jax.tree.map(lambda aval: aval.str_short(short_dtypes=True), outputs)
        return f"Loaded({_describe(inputs)} -> {repr(out).replace(chr(39), '')})"


class Exported:
    """A model function exported with ``jax.export``, ready to serialize or call.

    Example:
        >>> import hk_core.export
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> x = jnp.ones([4, 3])
        >>> params = model.init(jax.random.key(0), x)
        >>> exported = hk_core.export.export(model.apply, params, x)
        >>> f = hk_core.export.load(exported.serialize())
        >>> bool(jnp.allclose(f(x), model.apply(params, x)))
        True
    """

    def __init__(self, exported: jax.export.Exported, bind_params: bool):
        self._exported = exported
        self._bind_params = bind_params

    @property
    def jax_exported(self) -> jax.export.Exported:
        """The underlying ``jax.export.Exported`` (avals, platforms, StableHLO text)."""
        return self._exported

    @property
    def bind_params(self) -> bool:
        """Whether the params are part of the export (call ``f(*args)``) or an argument."""
        return self._bind_params

    def serialize(self) -> bytes:
        """Returns the serialized export (``jax.export``'s format)."""
        return bytes(self._exported.serialize())

    def save(self, path: str | os.PathLike) -> None:
        """Writes :meth:`serialize`'s bytes to ``path`` atomically (temp file, then rename)."""
        path = os.fspath(path)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.serialize())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def __call__(self, *args: Any) -> Any:
        """Runs the exported computation (``f(*args)`` or ``f(params, *args)``)."""
        return _checked_call(self._exported, "the exported function", args)


def export(apply_fn: Callable[..., Any], params: Any, *example_args: Any,
           bind_params: bool = True, platforms: Sequence[str] | None = None) -> Exported:
    """Exports ``apply_fn(params, *args)`` as StableHLO with ``jax.export``.

    Args:
        apply_fn: The function to export, called as ``apply_fn(params, *args)`` (e.g. the
            ``apply`` of ``hk.without_apply_rng(hk.transform(f))``; pass the rng or state
            as example arguments, or bind them with a lambda).
        params: The params. With ``bind_params`` they are embedded in the export as
            constants; otherwise only their shapes and dtypes are, and they are passed at
            each call.
        *example_args: Arrays or ``jax.ShapeDtypeStruct``\\ s giving the shapes and dtypes
            of the remaining arguments (symbolic shapes from ``jax.export.symbolic_shape``
            are allowed).
        bind_params: Whether to embed the params (the loaded function is ``f(*args)``) or
            take them as the first argument (``f(params, *args)``).
        platforms: Platforms to lower for (e.g. ``["cpu", "cuda"]``); defaults to the
            current backend.

    Returns:
        An :class:`Exported`.

    Example:
        >>> from hk_core import export
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> x = jnp.ones([4, 3])
        >>> params = model.init(jax.random.key(0), x)
        >>> exported = export.export(model.apply, params, x)
        >>> export.load(exported.serialize())(x).shape
        (4, 2)
        >>> unbound = export.export(model.apply, params, x, bind_params=False)
        >>> export.load(unbound.serialize())(params, x).shape
        (4, 2)
    """
    specs = [jax.tree.map(_spec, a) for a in example_args]
    if bind_params:
        def fn(*args: Any) -> Any:
            return apply_fn(params, *args)  # params are closed over: lowered as constants
    else:
        fn, specs = apply_fn, [jax.tree.map(_spec, params), *specs]
    exported = jax.export.export(jax.jit(fn), platforms=platforms)(*specs)
    return Exported(exported, bind_params)


def load(path_or_bytes: str | os.PathLike | bytes | bytearray) -> Loaded:
    """Loads an export written by :meth:`Exported.save` or :meth:`Exported.serialize`.

    Args:
        path_or_bytes: A file path, or the serialized bytes.

    Returns:
        A :class:`Loaded` callable taking the arguments given to :func:`export` after
        ``params``: ``f(*args)`` if params were bound, ``f(params, *args)`` otherwise,
        with the exported shapes and dtypes.

    Raises:
        ValueError: if the bytes are not a ``jax.export`` serialization.

    Example:
        >>> import os, tempfile
        >>> from hk_core import export
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> x = jnp.ones([1, 3])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> export.export(model.apply, model.init(jax.random.key(0), x), x).save(path)
        >>> predict = export.load(path)
        >>> predict
        Loaded((f32[1,3]) -> f32[1,2])
        >>> predict(x).shape
        (1, 2)
    """
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data, where = bytes(path_or_bytes), "the given bytes"
    else:
        where = os.fspath(path_or_bytes)
        with open(where, "rb") as f:
            data = f.read()
    try:
        exported = jax.export.deserialize(bytearray(data))
    except Exception as e:  # flatbuffers raises assorted errors on bytes it cannot parse
        raise ValueError(
            f"hk_core.export.load: {where} is not a jax.export serialization "
            f"({type(e).__name__}: {e}).") from e
    return Loaded(exported)
