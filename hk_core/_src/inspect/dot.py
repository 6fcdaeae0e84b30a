"""``to_dot``/``abstract_to_dot``: a Graphviz DOT graph of a function's computation.

Built from ``jax.make_jaxpr``: one node per primitive (read through ``jit`` and other
calls), one per input and output, an edge for every value passed on, and one cluster per
named scope, so each module method call (hk_core opens ``jax.named_scope(module.name)``
around it) is a box holding its operations. Render with ``dot -Tsvg``.
"""

import functools
from collections.abc import Callable
from typing import Any

import jax

from hk_core._src.inspect import jaxpr_walk
from hk_core._src.inspect import tracing_args


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class _Graph:
    """Nodes grouped by scope, and edges; rendered as DOT text."""

    def __init__(self):
        self.nodes: list[tuple[str, str, str, str]] = []  # (id, scope, label, style)
        self.edges: list[tuple[str, str]] = []

    def add_node(self, scope: str, label: str, style: str) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append((node_id, scope, label, style))
        return node_id

    def render(self, title: str) -> str:
        lines = ["digraph G {", "  rankdir=TD;", "  compound=true;",
                 f"  label={_quote(title)};", "  labelloc=t;",
                 '  node [shape=box, style="rounded,filled", fillcolor="#f2f2f2", '
                 'fontname="monospace", fontsize=10];']
        tree: dict = {}
        for node in self.nodes:
            scope = node[1]
            branch = tree
            for part in scope.split("/") if scope else []:
                branch = branch.setdefault(part, {})
            branch.setdefault(None, []).append(node)
        self._render_cluster(tree, lines, "  ", [0])
        lines += [f"  {src} -> {dst};" for src, dst in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _render_cluster(self, branch: dict, lines: list, indent: str, counter: list) -> None:
        for node_id, _, label, style in branch.get(None, []):
            lines.append(f"{indent}{node_id} [label={_quote(label)}{style}];")
        for name, child in branch.items():
            if name is None:
                continue
            counter[0] += 1
            lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
            lines.append(f'{indent}  label={_quote(name)}; style="rounded"; color="#4a7ab5";')
            self._render_cluster(child, lines, indent + "  ", counter)
            lines.append(f"{indent}}}")


_INPUT_STYLE = ', shape=ellipse, fillcolor="#cde4f7"'
_OUTPUT_STYLE = ', shape=ellipse, fillcolor="#d5f0d0"'
_LITERAL_STYLE = ', shape=plaintext, style=""'


def _add_jaxpr(graph: _Graph, jaxpr: Any, inputs: list, outer_scope: str) -> list:
    """Adds ``jaxpr``'s equations; ``inputs`` are the node ids feeding its invars."""
    env = dict(zip(jaxpr.invars, inputs))
    for var in jaxpr.constvars:
        env[var] = graph.add_node(outer_scope, f"constant\n{jaxpr_walk.aval_str(var)}",
                                  _LITERAL_STYLE)

    def source(var):
        if jaxpr_walk.is_literal(var):
            return graph.add_node(outer_scope, jaxpr_walk.literal_str(var), _LITERAL_STYLE)
        return env[var]

    for eqn in jaxpr.eqns:
        scope = jaxpr_walk.scope_of(eqn, outer_scope)
        feeding = [source(var) for var in eqn.invars]
        body = jaxpr_walk.call_body(eqn)
        if body is not None:
            outputs = _add_jaxpr(graph, body, feeding, scope)
        else:
            shapes = ", ".join(jaxpr_walk.aval_str(v) for v in eqn.outvars)
            node = graph.add_node(scope, f"{eqn.primitive.name}\n{shapes}", "")
            graph.edges.extend((src, node) for src in feeding)
            outputs = [node] * len(eqn.outvars)
        for var, node in zip(eqn.outvars, outputs):
            if not jaxpr_walk.is_dropped(var):
                env[var] = node
    return [source(var) for var in jaxpr.outvars]


def _dot(fun: Callable, args: tuple, kwargs: dict) -> str:
    arrays, rebuild = tracing_args.split(args, kwargs)
    labels = tracing_args.array_labels(args, kwargs)

    def flat_fun(*traced):
        call_args, call_kwargs = rebuild(list(traced))
        return fun(*call_args, **call_kwargs)

    closed, out_shape = jax.make_jaxpr(flat_fun, return_shape=True)(
        *[tracing_args.as_abstract(a) for a in arrays])
    graph = _Graph()
    inputs = [graph.add_node("", f"{label}\n{jaxpr_walk.aval_str(var)}", _INPUT_STYLE)
              for label, var in zip(labels, closed.jaxpr.invars)]
    results = _add_jaxpr(graph, closed.jaxpr, inputs, "")
    out_paths = [jax.tree_util.keystr(path) for path, _ in
                 jax.tree_util.tree_flatten_with_path(out_shape)[0]]
    for path, var, node in zip(out_paths, closed.jaxpr.outvars, results):
        out = graph.add_node("", f"output{path}\n{jaxpr_walk.aval_str(var)}", _OUTPUT_STYLE)
        graph.edges.append((node, out))
    return graph.render(getattr(fun, "__name__", type(fun).__name__))


def abstract_to_dot(fun: Callable) -> Callable[..., str]:
    """Returns a function giving the DOT graph of ``fun`` for arguments of given shapes.

    Arguments may be arrays or ``jax.ShapeDtypeStruct``; nothing is computed. Python
    values (flags, sizes) are passed to ``fun`` unchanged.

    Example:
        >>> f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
        >>> x = jax.ShapeDtypeStruct((1, 4), jnp.float32)
        >>> params = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)
        >>> dot = hk.experimental.abstract_to_dot(f.apply)(params, None, x)
        >>> dot.splitlines()[0], 'label="linear_0"' in dot
        ('digraph G {', True)
    """

    @functools.wraps(fun)
    def make_dot(*args, **kwargs) -> str:
        return _dot(fun, args, kwargs)

    return make_dot


def to_dot(fun: Callable) -> Callable[..., str]:
    """Returns a function giving the Graphviz DOT graph of ``fun`` on example arguments.

    Each primitive is a node labelled with its output shapes; inputs (by argument path)
    and outputs are ellipses; edges follow the data; each module method call is a cluster
    named after the module (via the ``jax.named_scope`` hk_core opens around it, so it
    needs ``hk.config.profiler_name_scopes``, on by default). The graph is built from
    ``jax.make_jaxpr``, so values are never computed (same as ``abstract_to_dot``).

    Example:
        >>> f = hk.transform(lambda x: hk.Linear(2)(x))
        >>> x = jnp.ones([1, 3])
        >>> dot = hk.to_dot(f.apply)(f.init(jax.random.PRNGKey(0), x), None, x)
        >>> print(dot.splitlines()[0])
        digraph G {
        >>> 'subgraph cluster_1' in dot and 'dot_general' in dot
        True
    """
    return abstract_to_dot(fun)
