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

from hk_core._src.core import interceptors
from hk_core._src.layers import flops as flops_lib
from hk_core._src.layers import jaxpr_walk
from hk_core._src.layers import tracing_args

ComputeFlopsFn = Callable[[Any, "Expression"], int]

_TOKENS = itertools.count()


@dataclasses.dataclass
class Expression:
    """One primitive application.

    Attributes:
        primitive: The primitive's name, e.g. ``'dot_general'``.
        invars: The inputs, as ``'f32[2,3]'`` (literals as their value).
        outvars: The outputs, likewise.
        flops: Estimated FLOPs (for scan/cond/while: of their bodies, see ``submodule``).
        details: The primitive's simple parameters, e.g. ``'axes=(1,)'``.
        submodule: For control flow (scan, cond, while), the tree of its bodies.
    """

    primitive: str
    invars: list[str]
    outvars: list[str]
    flops: int | None
    details: str = ""
    submodule: "Module | None" = None


@dataclasses.dataclass
class Module:
    """A module method call (or named scope, or control-flow body) and what it ran.

    Attributes:
        name: ``'<module path> (<Class>)'`` (``(<Class>.<method>)`` for other methods),
            the scope name, or the function name at the root.
        flops: Estimated FLOPs of everything below, submodules included.
        expressions: Operations and submodule calls, in program order.
        params: Number of parameter elements the module can see (its own and its
            submodules'); at the root, of all params seen by recorded modules.
    """

    name: str
    flops: int = 0
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
    return jaxpr_walk.literal_str(var) if jaxpr_walk.is_literal(var) else jaxpr_walk.aval_str(var)


class _Call:
    """A module method call seen by the interceptor."""

    __slots__ = ("label", "params")

    def __init__(self, label: str):
        self.label, self.params = label, {}


class _Builder:
    """Places each equation in the ``Module`` of the innermost scope it ran in."""

    def __init__(self, calls: dict[str, _Call] | None, compute_flops: ComputeFlopsFn):
        self.calls = calls  # None: every named scope is a node
        self.compute_flops = compute_flops
        self.children: dict[tuple[int, str], Module] = {}

    def module_at(self, root: Module, scope: str) -> Module:
        module = root
        for part in scope.split("/") if scope else []:
            if self.calls is not None:
                call = self.calls.get(part)
                if call is None:
                    continue  # hk_core's own per-module scopes, user scopes: not nodes here
                name = call.label
            else:
                name = part
            key = (id(module), part)
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = Module(name=name)
                if self.calls is not None:
                    child.params = sum(spec_size for spec_size in call.params.values())
                module.expressions.append(child)
            module = child
        return module

    def add(self, jaxpr: Any, root: Module, outer_scope: str) -> None:
        for eqn in jaxpr.eqns:
            scope = jaxpr_walk.scope_of(eqn, outer_scope)
            body = jaxpr_walk.call_body(eqn)
            if body is not None:
                self.add(body, root, scope)
                continue
            expression = Expression(
                primitive=eqn.primitive.name,
                invars=[_var_str(v) for v in eqn.invars],
                outvars=[_var_str(v) for v in eqn.outvars],
                flops=None,
                details=_details(eqn),
            )
            bodies = jaxpr_walk.named_sub_jaxprs(eqn)
            if bodies:
                expression.submodule = Module(name=eqn.primitive.name)
                for body_name, sub in bodies:
                    child = Module(name=body_name)
                    expression.submodule.expressions.append(child)
                    self.add(sub, child, "")
                expression.flops = _control_flow_flops(eqn, expression.submodule)
            else:
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
            total += item.flops or 0
    module.flops = total
    return total


def _control_flow_flops(eqn: Any, bodies: Module) -> int:
    per_body = [_total(body) for body in bodies.expressions]
    _total(bodies)
    name = eqn.primitive.name
    if name == "scan":
        return sum(per_body) * int(eqn.params.get("length", 1))
    if name == "cond":
        return max(per_body, default=0)  # only one branch runs: count the dearest
    return sum(per_body)  # while: one trip through cond and body (trip count unknown)


def _default_flops(eqn: Any, expression: Expression) -> int:
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
            sub-jaxprs (``eqn`` is a ``jax.extend.core.JaxprEqn``). Defaults to a rough
            estimate: 2 FLOPs per multiply-add in matmuls/convs, 1 per element otherwise.
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
        >>> info = jaxpr_info.make_model_info(f.apply)(params, None, x)
        >>> [(m.name, m.flops, m.params) for m in info.expressions]
        [('mlp (MLP)', 44, 23)]
    """
    compute = _default_flops if compute_flops is None else compute_flops
    root_name = name if name is not None else getattr(f, "__name__", type(f).__name__)

    def model_info(*args, **kwargs) -> Module:
        calls: dict[str, _Call] = {}
        seen_params: dict[str, int] = {}

        def record(next_fun, call_args, call_kwargs, context):
            if context.method_name == "__init__":
                return next_fun(*call_args, **call_kwargs)
            token = f"hk_call_{next(_TOKENS)}"
            module = context.module
            method = "" if context.method_name == "__call__" else "." + context.method_name
            call = calls[token] = _Call(f"{module.module_name} ({type(module).__name__}{method})")
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
        _total(root)
        root.params = sum(seen_params.values())
        return root

    return model_info


def _format_expression(expression: Expression, indent: str) -> list[str]:
    flops = "" if expression.flops is None else f"  flops: {expression.flops:,}"
    line = (f"{indent}{expression.primitive} in {', '.join(expression.invars)} "
            f"out {', '.join(expression.outvars)}{flops}")
    lines = [line]
    if expression.submodule is not None:
        lines += format_module(expression.submodule, len(indent) // 2 + 1).splitlines()
    return lines


def format_module(module: Module, depth: int = 0) -> str:
    """Formats a ``Module`` tree as indented text, one line per module and operation.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> info = jaxpr_info.make_model_info(lambda x: jnp.sin(x) * 2)(jnp.ones([3]))
        >>> print(jaxpr_info.format_module(info))
        <lambda> flops: 6
          sin in f32[3] out f32[3]  flops: 3
          mul in f32[3], 2.0 out f32[3]  flops: 3
    """
    indent = "  " * depth
    params = f" params: {module.params:,}" if module.params else ""
    lines = [f"{indent}{module.name} flops: {module.flops:,}{params}"]
    for item in module.expressions:
        if isinstance(item, Module):
            lines.append(format_module(item, depth + 1))
        else:
            lines += _format_expression(item, indent + "  ")
    return "\n".join(lines)
