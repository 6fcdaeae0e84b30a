"""Module summaries: ``eval_summary`` records every module method call under ``jax.eval_shape``;
``tabulate`` renders those records as a text table.

Nothing is computed: ``init`` of the function runs abstractly with a method interceptor
that notes each call's module, argument and output shapes, and the params and state the
module can see once the call returns.
"""

import dataclasses
import importlib
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from hk_core._src.core import interceptors
from hk_core._src.core import transform as transform_lib
from hk_core._src.inspect import tracing_args

_COLUMNS = {
    "module": "Module",
    "config": "Config",
    "owned_params": "Module params",
    "input": "Input",
    "output": "Output",
    "params_size": "Param count",
    "params_bytes": "Param bytes",
}
_DEFAULT_COLUMNS = tuple(_COLUMNS)
_RIGHT_ALIGNED = {"params_size": "right", "params_bytes": "right"}
# Construction, and the lookups the recorders make themselves (they would recurse).
NOT_RECORDED = frozenset({"__init__", "params_dict", "state_dict"})
_FILTERS = ("has_output", "has_params")
# Read-only, so the shared default cannot be changed by a caller.
_DEFAULT_TABULATE_KWARGS = types.MappingProxyType({"tablefmt": "grid"})


def short_dtype(dtype: Any) -> str:
    """Short dtype names: ``float32`` → ``f32``, ``int8`` → ``s8``, ``bfloat16`` → ``bf16``."""
    dtype = np.dtype(dtype)
    if dtype.name == "bfloat16":
        return "bf16"
    prefix = {"f": "f", "i": "s", "u": "u", "c": "c"}.get(dtype.kind)
    if prefix is None:
        return dtype.name
    return f"{prefix}{dtype.itemsize * 8}"


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """The shape and dtype of an array seen during a summary.

    Example:
        >>> spec = hk.experimental.ArraySpec.from_array(jnp.zeros([2, 3]))
        >>> spec.shape, str(spec)
        ((2, 3), 'f32[2,3]')
    """

    shape: tuple[int, ...]
    dtype: Any

    @classmethod
    def from_array(cls, array: Any) -> "ArraySpec":
        """Returns the spec of an array, tracer or ``jax.ShapeDtypeStruct``."""
        return cls(tuple(np.shape(array)), np.dtype(array.dtype))

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Number of bytes of an array with this spec."""
        return self.size * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{short_dtype(self.dtype)}[{','.join(str(d) for d in self.shape)}]"

    __repr__ = __str__  # Haiku's repr is the short form too: f32[2,5]


def _spec_tree(tree: Any) -> Any:
    return jax.tree.map(
        lambda leaf: ArraySpec.from_array(leaf) if hasattr(leaf, "dtype")
        and hasattr(leaf, "shape") else leaf, tree)


@dataclasses.dataclass(frozen=True)
class ModuleDetails:
    """A module, the method called on it, and the params and state it could see afterwards.

    ``params``/``state`` map ``"<module path>/<name>"`` to ``ArraySpec`` for the module's
    own entries and those of the modules it used (``Module.params_dict``).

    Example:
        >>> def f(x):
        ...     return hk.Linear(2)(x)
        >>> [call] = hk.experimental.eval_summary(f)(jnp.ones([1, 3]))
        >>> details = call.module_details
        >>> details.method_name, {k: str(v) for k, v in details.params.items()}
        ('__call__', {'linear/b': 'f32[2]', 'linear/w': 'f32[3,2]'})
    """

    module: Any
    method_name: str
    params: Mapping[str, ArraySpec]
    state: Mapping[str, Any]

    @classmethod
    def of(cls, module: Any, method_name: str) -> "ModuleDetails":
        """Reads the details now (inside the transform)."""
        # Sorted by key, as Haiku 0.0.17 gives them ({'linear/b': ..., 'linear/w': ...}).
        params = {key: _spec_tree(value) for key, value in sorted(module.params_dict().items())}
        state = {key: _spec_tree(value) for key, value in sorted(module.state_dict().items())}
        return cls(module, method_name, params, state)


@dataclasses.dataclass(frozen=True)
class MethodInvocation:
    """One module method call recorded by ``eval_summary``.

    Attributes:
        module_details: The module and method called, with params/state after the call.
        args_spec: The positional arguments, arrays replaced by ``ArraySpec``.
        kwargs_spec: The keyword arguments, likewise.
        output_spec: The return value, likewise (``None`` for methods returning nothing).
        context: The ``MethodContext`` the interceptor saw.
        call_stack: The module method calls this one ran inside, outermost first.

    Example:
        >>> calls = hk.experimental.eval_summary(lambda x: hk.nets.MLP([2])(x))(jnp.ones([1, 3]))
        >>> [(c.module_details.module.module_name, len(c.call_stack)) for c in calls]
        [('mlp', 0), ('mlp/~/linear_0', 1)]
    """

    module_details: ModuleDetails
    args_spec: Any
    kwargs_spec: Any
    output_spec: Any
    context: interceptors.MethodContext
    call_stack: Sequence[ModuleDetails]


class _Record:
    __slots__ = ("context", "args", "kwargs", "output", "details", "callers")

    def __init__(self, context, args, kwargs, callers):
        self.context, self.args, self.kwargs, self.callers = context, args, kwargs, callers
        self.output = self.details = None


def _init_fn(f: Any) -> Callable:
    if isinstance(f, (transform_lib.Transformed, transform_lib.TransformedWithState)):
        return f.init
    if isinstance(f, (transform_lib.MultiTransformed, transform_lib.MultiTransformedWithState)):
        raise TypeError("eval_summary/tabulate do not support multi_transform results; pass "
                        "the function (or an hk.transform of it) instead.")
    if not callable(f):
        raise TypeError(f"eval_summary/tabulate expect a function or an hk.transform result, "
                        f"got {type(f).__name__}.")
    return transform_lib.transform_with_state(f).init


def eval_summary(f: Callable | Any) -> Callable[..., Sequence[MethodInvocation]]:
    """Returns a function recording every module method call ``f`` makes, with shapes.

    ``f`` is a function that builds modules (or an ``hk.transform``/
    ``hk.transform_with_state`` result); the returned function takes ``f``'s arguments
    (arrays or ``jax.ShapeDtypeStruct``; other values are passed through unchanged), runs
    ``init`` under ``jax.eval_shape`` (no FLOPs, no memory) and returns one
    ``MethodInvocation`` per call, outer calls before the calls they make. Construction
    (``__init__``) is not recorded.

    Example:
        >>> f = lambda x: hk.nets.MLP([4, 2])(x)
        >>> calls = hk.experimental.eval_summary(f)(jnp.ones([8, 3]))
        >>> [(c.module_details.module.module_name, str(c.output_spec)) for c in calls]
        [('mlp', 'f32[8,2]'), ('mlp/~/linear_0', 'f32[8,4]'), ('mlp/~/linear_1', 'f32[8,2]')]
    """
    init = _init_fn(f)

    def summarize(*args, **kwargs) -> list[MethodInvocation]:
        records: list[_Record] = []
        running: list[_Record] = []

        def record(next_fun, call_args, call_kwargs, context):
            if context.method_name in NOT_RECORDED:
                return next_fun(*call_args, **call_kwargs)
            entry = _Record(context, _spec_tree(call_args), _spec_tree(call_kwargs),
                            tuple(running))
            records.append(entry)
            running.append(entry)
            try:
                out = next_fun(*call_args, **call_kwargs)
            finally:
                running.pop()
            entry.output = _spec_tree(out)
            entry.details = ModuleDetails.of(context.module, context.method_name)
            return out

        arrays, rebuild = tracing_args.split(args, kwargs)

        def run(*traced):
            call_args, call_kwargs = rebuild(list(traced))
            with interceptors.intercept_methods(record):
                init(jax.random.PRNGKey(0), *call_args, **call_kwargs)

        jax.eval_shape(run, *[tracing_args.as_abstract(a) for a in arrays])
        return [
            MethodInvocation(r.details, r.args, r.kwargs, r.output, r.context,
                             tuple(caller.details for caller in r.callers))
            for r in records
        ]

    return summarize


# ------------------------------------------------------------------------- tabulate


def _format_value(value: Any) -> str:
    if isinstance(value, ArraySpec):
        return str(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_format_value(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _format_call_args(args: tuple, kwargs: Mapping) -> str:
    parts = [_format_value(a) for a in args]
    parts += [f"{key}={_format_value(value)}" for key, value in kwargs.items()]
    return "\n".join(parts)


def _module_label(details: ModuleDetails) -> str:
    module = details.module
    method = "" if details.method_name == "__call__" else "." + details.method_name
    return f"{module.module_name} ({type(module).__name__}{method})"


def _format_bytes(num: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if num >= scale:
            return f"{num / scale:.2f} {unit}"
    return f"{num:.2f} B"  # "8.00 B", as in Haiku 0.0.17


def _cell(column: str, call: MethodInvocation) -> str:
    details = call.module_details
    if column == "module":
        callers = [" └ " + _module_label(c) for c in reversed(call.call_stack)]
        return "\n".join([_module_label(details), *callers])
    if column == "config":
        return repr(details.module)
    if column == "owned_params":
        prefix = details.module.module_name + "/"
        owned = [(key[len(prefix):], spec) for key, spec in details.params.items()
                 if key.startswith(prefix) and "/" not in key[len(prefix):]]
        # Haiku lists the largest first; equal sizes stay in name order (b before w).
        owned.sort(key=lambda item: -item[1].size)
        return "\n".join(f"{name}: {spec}" for name, spec in owned)
    if column == "input":
        return _format_call_args(call.args_spec, call.kwargs_spec)
    if column == "output":
        return "" if call.output_spec is None else _format_value(call.output_spec)
    leaves = jax.tree.leaves(dict(details.params))
    if column == "params_size":
        return f"{sum(spec.size for spec in leaves):,}" if leaves else ""
    return _format_bytes(sum(spec.nbytes for spec in leaves)) if leaves else ""


def _keep(call: MethodInvocation, filters: Sequence[str]) -> bool:
    if "has_output" in filters and call.output_spec is None:
        return False
    if "has_params" in filters and not call.module_details.params:
        return False
    return True


def tabulate(
    f: Callable | Any,
    *,
    columns: Sequence[str] | None = _DEFAULT_COLUMNS,
    filters: Sequence[str] | None = ("has_output",),
    tabulate_kwargs: Mapping[str, Any] | None = _DEFAULT_TABULATE_KWARGS,
) -> Callable[..., str]:
    """Returns a function that prints a table of the module method calls ``f`` makes.

    Needs the optional ``tabulate`` package (``pip install tabulate``). Shapes are found
    with ``eval_summary`` (abstractly, no FLOPs).

    Args:
        f: A function that builds modules, or an ``hk.transform(_with_state)`` result.
        columns: Which columns to show, in order, from ``'module'`` (path, class and
            callers), ``'config'`` (the module's repr), ``'owned_params'`` (params held by
            the module itself), ``'input'``, ``'output'``, ``'params_size'`` and
            ``'params_bytes'`` (all params the module saw, its submodules' included).
            ``None`` means all of them.
        filters: Which calls to keep: ``'has_output'`` (methods returning something) and
            ``'has_params'`` (modules that saw params). ``None`` keeps every call.
        tabulate_kwargs: Keyword arguments for ``tabulate.tabulate`` (default
            ``{'tablefmt': 'grid'}``; ``None`` means none).

    Returns:
        A function taking ``f``'s arguments and returning the table as a string.

    Raises:
        ValueError: for an unknown column or filter (when ``tabulate`` is called).
        ImportError: when the table is made without the ``tabulate`` package installed.

    Example:
        >>> f = lambda x: hk.nets.MLP([4, 2])(x)
        >>> table = hk.experimental.tabulate(f, columns=("module", "output", "params_size"))
        >>> print(table(jnp.ones([8, 3])))
        +-------------------------+----------+---------------+
        | Module                  | Output   |   Param count |
        +=========================+==========+===============+
        | mlp (MLP)               | f32[8,2] |            26 |
        +-------------------------+----------+---------------+
        | mlp/~/linear_0 (Linear) | f32[8,4] |            16 |
        |  └ mlp (MLP)            |          |               |
        +-------------------------+----------+---------------+
        | mlp/~/linear_1 (Linear) | f32[8,2] |            10 |
        |  └ mlp (MLP)            |          |               |
        +-------------------------+----------+---------------+
    """
    columns = _DEFAULT_COLUMNS if columns is None else tuple(columns)
    filters = () if filters is None else tuple(filters)
    unknown = [c for c in columns if c not in _COLUMNS]
    if unknown:
        raise ValueError(f"tabulate: unknown column(s) {unknown}; valid columns are "
                         f"{list(_COLUMNS)}.")
    unknown = [name for name in filters if name not in _FILTERS]
    if unknown:
        raise ValueError(f"tabulate: unknown filter(s) {unknown}; valid filters are "
                         f"{list(_FILTERS)}.")
    tabulate_kwargs = {} if tabulate_kwargs is None else dict(tabulate_kwargs)
    summarize = eval_summary(f)

    def make_table(*args, **kwargs) -> str:
        try:
            tabulate_lib = importlib.import_module("tabulate")
        except ImportError as e:
            raise ImportError(
                "hk.experimental.tabulate needs the optional `tabulate` package "
                "(pip install tabulate); hk.experimental.eval_summary gives the same data "
                "without it.") from e
        calls = [call for call in summarize(*args, **kwargs) if _keep(call, filters)]
        rows = [[_cell(column, call) for column in columns] for call in calls]
        headers = [_COLUMNS[column] for column in columns]
        # Haiku aligns every column itself (a caller's `colalign` is an error there too).
        colalign = [_RIGHT_ALIGNED.get(column, "left") for column in columns]
        return tabulate_lib.tabulate(rows, headers=headers, colalign=colalign,
                                     **tabulate_kwargs)

    return make_table
