"""``jaxpr_info.make_model_info``: a per-module tree of operations, FLOPs and parameters.

``f`` is traced with ``jax.make_jaxpr``. With ``include_module_info`` a method interceptor
opens a uniquely named ``jax.named_scope`` around each module method call and notes the
module and the params it can see; the scope names in each equation's name stack then say
which call the equation belongs to. Without it, every named scope becomes a node.
"""

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any, Union

import jax
import numpy as np

from hk_core._src.core import interceptors
from hk_core._src.core import kernels as kernels_lib
from hk_core._src.inspect import flops as flops_lib
from hk_core._src.inspect import jaxpr_walk
from hk_core._src.inspect import summary
from hk_core._src.inspect import tracing_args

ComputeFlopsFn = Callable[[Any, "Expression"], int]

_TOKENS = itertools.count()


@dataclasses.dataclass
class Expression:
    """One primitive application.

    Attributes:
        primitive: The primitive's name, e.g. ``'dot_general'``.
        invars: The inputs, as ``'f32[2,3]'`` (literals as their value).
        outvars: The outputs, likewise.
        flops: FLOPs from ``compute_flops``; for a scan or while loop, of one trip through
            its body (``submodule``); a scan counts ``length`` times in its parent's total.
        details: The primitive's simple parameters, e.g. ``'axes=(1,)'``; for a scan
            ``'length=5 unroll=1'`` as Haiku shows it.
        submodule: For a scan or while loop, the tree of its body.
    """

    primitive: str
    invars: list[str]
    outvars: list[str]
    flops: int | None = None
    details: str = ""
    submodule: "Module | None" = None
    # A scan's flops are per step, as Haiku shows them; its parent counts them this often.
    repeats: int = dataclasses.field(default=1, repr=False)


@dataclasses.dataclass
class Module:
    """A module method call (or named scope, or control-flow body) and what it ran.

    Attributes:
        name: The module's name (the last component of its path), as Haiku names the
            node; a method other than ``__call__`` adds a node named after the method
            around it. Also a jitted function's name, ``custom_jvp``/``custom_vjp``, a scope
            name, or the function name at the root.
        flops: FLOPs of everything below, submodules included; None without
            ``compute_flops`` (as in Haiku).
        expressions: Operations and submodule calls, in program order.
        params: Number of parameter elements the module can see (its own and its
            submodules'); at the root, of all params seen by recorded modules.
    """

    name: str
    flops: int | None = None
    expressions: list[Union["Module", Expression]] = dataclasses.field(default_factory=list)
    params: int = 0


_SIMPLE = (int, float, bool, str)


def _details(eqn: Any) -> str:
    parts = []
    for key, value in eqn.params.items():
        if isinstance(value, _SIMPLE) or (
                isinstance(value, tuple) and all(isinstance(v, _SIMPLE) for v in value)):
            parts.append(f"{key}={value}")
    text = " ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."


def _var_str(var: Any) -> str:
    """Haiku's spelling: ``f32[1,3]``, ``bf16[2]``, but ``int32[]``, ``bool[]`` (only
    ``float`` is shortened); literals too (0.0 is ``f32[]``)."""
    shape, dtype = getattr(var.aval, "shape", None), getattr(var.aval, "dtype", None)
    try:
        name = np.dtype(dtype).name.replace("float", "f")
    except TypeError:  # tokens, PRNG keys: the aval's own text
        return jaxpr_walk.aval_str(var)
    return f"{name}[{','.join(str(d) for d in shape)}]"


def _call_node_name(eqn: Any, kernels: frozenset[str]) -> str | None:
    """The node Haiku shows for a call-like equation, or None to read through it."""
    name = eqn.primitive.name
    if name == "custom_jvp_call":
        return "custom_jvp"
    if name in ("custom_vjp_call", "custom_vjp_call_jaxpr"):
        return "custom_vjp"
    if name in ("jit", "pjit"):
        fun_name = str(eqn.params.get("name", name))
        return None if fun_name in kernels else fun_name
    return None


class _Call:
    """A module method call seen by the interceptor: its node names and visible params."""

    __slots__ = ("labels", "params")

    def __init__(self, labels: tuple[str, ...]):
        self.labels, self.params = labels, {}


class _Builder:
    """Places each equation in the ``Module`` of the innermost scope it ran in."""

    def __init__(self, calls: dict[str, _Call] | None, compute_flops: ComputeFlopsFn | None):
        self.calls = calls  # None: every named scope is a node
        self.compute_flops = compute_flops
        self.children: dict[tuple[int, str, int], Module] = {}
        self.kernels = kernels_lib.kernel_names()

    def module_at(self, root: Module, scope: str) -> Module:
        module = root
        for part in scope.split("/") if scope else []:
            if self.calls is not None:
                call = self.calls.get(part)
                if call is None:
                    continue  # hk_core's own per-module scopes, user scopes: not nodes here
                names = call.labels
            else:
                call, names = None, (part,)
            for depth, name in enumerate(names):
                key = (id(module), part, depth)
                child = self.children.get(key)
                if child is None:
                    child = self.children[key] = Module(name=name)
                    if call is not None and depth == len(names) - 1:
                        child.params = sum(spec_size for spec_size in call.params.values())
                    module.expressions.append(child)
                module = child
        return module

    def add(self, jaxpr: Any, root: Module, outer_scope: str) -> None:
        for eqn in jaxpr.eqns:
            scope = jaxpr_walk.scope_of(eqn, outer_scope)
            body = jaxpr_walk.call_body(eqn)
            if body is not None:
                node_name = _call_node_name(eqn, self.kernels)
                if node_name is None:
                    self.add(body, root, scope)
                else:  # a user's jitted function or custom derivative: a node, as in Haiku
                    node = Module(name=node_name)
                    self.module_at(root, scope).expressions.append(node)
                    self.add(body, node, "")
                continue
            expression = Expression(
                primitive=eqn.primitive.name,
                invars=[_var_str(v) for v in eqn.invars],
                outvars=[_var_str(v) for v in eqn.outvars],
                flops=None,
                details=_details(eqn),
            )
            bodies = _shown_bodies(eqn)
            if eqn.primitive.name == "scan":
                expression.details = (f"length={eqn.params.get('length')} "
                                      f"unroll={eqn.params.get('unroll')}")
                expression.repeats = int(eqn.params.get("length", 1))
            elif eqn.primitive.name == "while":
                expression.details = ""  # Haiku shows a bare "while"
            if bodies:
                expression.submodule = Module(name=eqn.primitive.name)
                for body_name, sub in bodies:
                    child = Module(name=body_name)
                    expression.submodule.expressions.append(child)
                    self.add(sub, child, "")
                if self.compute_flops is not None:
                    expression.flops = _control_flow_flops(eqn, expression.submodule)
            elif self.compute_flops is not None:
                expression.flops = self.compute_flops(eqn, expression)
            self.module_at(root, scope).expressions.append(expression)


def _total(module: Module) -> int:
    total = 0
    for item in module.expressions:
        if isinstance(item, Module):
            total += _total(item)
        else:
            if item.submodule is not None:
                _total(item.submodule)
            total += (item.flops or 0) * item.repeats
    module.flops = total
    return total


def _shown_bodies(eqn: Any) -> list[tuple[str, Any]]:
    """The bodies Haiku lists under a control-flow operation: a scan's body, a while loop's
    body (not its condition); a cond is one plain operation (its branches are not listed)."""
    name = eqn.primitive.name
    if name == "cond":
        return []
    bodies = jaxpr_walk.named_sub_jaxprs(eqn)
    if name == "while":
        return [(key, body) for key, body in bodies if key == "body_jaxpr"]
    return bodies


def _control_flow_flops(eqn: Any, bodies: Module) -> int:
    """One trip through the bodies (a scan's total counts it ``length`` times, as Haiku's
    root total does; a while loop's trip count is unknown)."""
    del eqn
    per_body = [_total(body) for body in bodies.expressions]
    _total(bodies)
    return sum(per_body)


def estimated_flops(eqn: Any, expression: Expression) -> int:
    """A ``compute_flops`` for ``make_model_info``: 2 FLOPs per multiply-add in matmuls and
    convolutions, 1 per output element otherwise (rough)."""
    del expression
    return flops_lib.estimate_flops(eqn)


def make_model_info(
    f: Callable,
    name: str | None = None,
    include_module_info: bool = True,
    compute_flops: ComputeFlopsFn | None = None,
    axis_env: Sequence[tuple[Any, int]] | None = None,
) -> Callable[..., Module]:
    """Returns a function computing ``f``'s tree of modules, operations, FLOPs and params.

    Args:
        f: The function to inspect, usually ``hk.transform(...).apply`` (or ``init``).
        name: Name of the root ``Module``; defaults to ``f.__name__``.
        include_module_info: Group operations by hk module method call (labelled with
            module path and class, with param counts). If False, group by named scope.
        compute_flops: ``compute_flops(eqn, expression) -> int`` for primitives without
            sub-jaxprs (``eqn`` is a ``jax.extend.core.JaxprEqn``). None (the default, as
            in Haiku) counts no FLOPs: every ``flops`` is None.
        axis_env: ``(axis_name, size)`` pairs for collectives, passed to
            ``jax.make_jaxpr``.

    Returns:
        A function taking ``f``'s arguments (arrays or ``jax.ShapeDtypeStruct``; other
        values are passed through) and returning the root ``Module``.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
        >>> x = jnp.ones([1, 4])
        >>> params = f.init(jax.random.PRNGKey(0), x)
        >>> info = jaxpr_info.make_model_info(f.apply, compute_flops=lambda eqn, e: 1)(
        ...     params, None, x)
        >>> [(m.name, m.flops, m.params) for m in info.expressions]
        [('mlp', 7, 23)]
    """
    compute = compute_flops
    root_name = name if name is not None else getattr(f, "__name__", type(f).__name__)

    def model_info(*args, **kwargs) -> Module:
        calls: dict[str, _Call] = {}
        seen_params: dict[str, int] = {}

        def record(next_fun, call_args, call_kwargs, context):
            if context.method_name in summary.NOT_RECORDED:
                return next_fun(*call_args, **call_kwargs)
            token = f"hk_call_{next(_TOKENS)}"
            module = context.module
            # Haiku's nodes: the module's name, inside one named after any other method.
            labels = (module.name,) if context.method_name == "__call__" else (
                context.method_name, module.name)
            call = calls[token] = _Call(labels)
            with jax.named_scope(token):
                out = next_fun(*call_args, **call_kwargs)
            for key, value in module.params_dict().items():
                call.params[key] = seen_params[key] = value.size
            return out

        arrays, rebuild = tracing_args.split(args, kwargs)

        def flat_fun(*traced):
            call_args, call_kwargs = rebuild(list(traced))
            if not include_module_info:
                return f(*call_args, **call_kwargs)
            with interceptors.intercept_methods(record):
                return f(*call_args, **call_kwargs)

        closed = jax.make_jaxpr(flat_fun, axis_env=axis_env)(
            *[tracing_args.as_abstract(a) for a in arrays])
        root = Module(name=root_name)
        builder = _Builder(calls if include_module_info else None, compute)
        builder.add(closed.jaxpr, root, "")
        if compute is not None:
            _total(root)
        root.params = sum(seen_params.values())
        return root

    return model_info


def _count(value: int, unit: str) -> str:
    """Haiku's counts: ``7 flops``, ``2.997 kflops``, ``37.04 Mflops``, ``301 kparams``."""
    for prefix in ("", "k", "M", "G", "T", "P"):
        if abs(value) < 1000 or prefix == "P":
            break
        value /= 1000
    return f"{value} {unit}" if prefix == "" else f"{value:.4g} {prefix}{unit}"


def _format_lines(module: Module, depth: int, is_root: bool) -> list[str]:
    indent = "  " * depth
    line = f"{indent}{module.name}"
    # Haiku shows the root's FLOPs even when 0, a submodule's only when non-zero.
    if module.flops is not None and (is_root or module.flops):
        line += " " + _count(module.flops, "flops")
    if module.params and not is_root:
        line += " " + _count(module.params, "params")
    lines = [line]
    for item in module.expressions:
        lines += _item_lines(item, depth + 1)
    return lines


def _item_lines(item: Union[Module, Expression], depth: int) -> list[str]:
    if isinstance(item, Module):
        return _format_lines(item, depth, False)
    indent = "  " * depth
    flops = "" if item.flops is None else " " + _count(item.flops, "flops")
    if item.submodule is None:
        return [f"{indent}{item.primitive}{flops} in {', '.join(item.invars)}, "
                f"out {', '.join(item.outvars)}"]
    # Control flow: the operations of its bodies, one level in.
    details = f" {item.details}" if item.details else ""
    lines = [f"{indent}{item.primitive}{details}{flops}"]
    for body in item.submodule.expressions:
        for body_item in body.expressions:
            lines += _item_lines(body_item, depth + 1)
    return lines


def format_module(module: Module, depth: int = 0) -> str:
    """Formats a ``Module`` tree as Haiku 0.0.17 does: one line per module and operation.

    Modules show FLOPs and params (``2.997 kflops``, ``301 kparams``), operations their FLOPs
    and input/output specs; the text ends with a newline.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> info = jaxpr_info.make_model_info(lambda x: jnp.sin(x) * 2,
        ...                                   compute_flops=lambda eqn, e: 3)(jnp.ones([3]))
        >>> print(jaxpr_info.format_module(info), end="")
        <lambda> 6 flops
          sin 3 flops in f32[3], out f32[3]
          mul 3 flops in f32[3], f32[], out f32[3]
    """
    return "\n".join(_format_lines(module, depth, depth == 0)) + "\n"
