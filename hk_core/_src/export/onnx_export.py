"""``to_onnx``: a model's ``apply`` with bound params as an ONNX model, through ``jax2onnx``.

``jax2onnx`` converts the traced JAX program primitive by primitive. Two things are added
here:

- Before converting, every primitive of the program (inside ``jit``, ``scan``, ``cond``…)
  is checked against jax2onnx's registry, so an unsupported one fails with its name and
  the hk_core module it came from (read from the name stack hk_core's modules push),
  instead of producing a graph that onnxruntime rejects later.
- jax2onnx lowers ``reduce_window_max`` (``hk.max_pool``) to an ONNX ``MaxPool`` whose
  window spans every axis, batch and channels included; onnxruntime's MaxPool takes at most
  three spatial axes. Where the window is 1 on the first and last axes (NHWC pooling, as
  hk_core's pools use), the node is rewritten to pool the spatial axes between two
  transposes, which onnxruntime runs.

Needs the ``onnx`` extra (``pip install ".[onnx]"``): jax2onnx and onnxruntime.
"""

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from hk_core._src.checkpoint import atomic_file

_BATCH = "B"


class UnsupportedOnnxOpError(NotImplementedError):
    """The program holds a JAX primitive that jax2onnx cannot convert.

    Attributes:
        primitive: The primitive's name (e.g. ``"random_gamma_grad"``).
        module_path: The hk_core module whose code emitted it (``""`` outside modules).

    Example:
        >>> from hk_core import export
        >>> try:  # what to_onnx raises for an operation ONNX has no counterpart for
        ...     raise export.UnsupportedOnnxOpError("random_gamma_grad", "vae/~/encoder")
        ... except NotImplementedError as e:
        ...     print(e.primitive, e.module_path)
        random_gamma_grad vae/~/encoder
    """

    def __init__(self, primitive: str, module_path: str, detail: str = ""):
        self.primitive, self.module_path = primitive, module_path
        where = f"module {module_path!r}" if module_path else "code outside any module"
        detail = f" ({detail})" if detail else ""
        super().__init__(
            f"to_onnx: {where} uses the JAX operation {primitive!r}, which jax2onnx cannot "
            f"convert to ONNX{detail}. Rewrite that computation with supported operations, or "
            "export with hk_core.export.export (StableHLO) instead.")


class _Spec:
    """An input spec jax2onnx reads by ``.shape`` and ``.dtype``; ``"B"`` is symbolic."""

    def __init__(self, shape: tuple[Any, ...], dtype: Any):
        self.shape, self.dtype = shape, dtype


def _sub_jaxprs(value: Any) -> Iterator[Any]:
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _sub_jaxprs(item)


def _operations(jaxpr: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(primitive name, module path)`` of every equation, sub-programs included.

    A sub-program's name stack is relative to the equation that holds it.
    """
    for eqn in jaxpr.eqns:
        path = "/".join(p for p in (prefix, str(eqn.source_info.name_stack)) if p)
        yield eqn.primitive.name, path
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                yield from _operations(sub, path)


def _blame(operations: list[tuple[str, str]], error: Exception) -> tuple[str, str] | None:
    """The first operation whose primitive jax2onnx's error message names."""
    message = str(error)
    named = [op for op in operations if re.search(rf"\b{re.escape(op[0])}\b", message)]
    return max(named, key=lambda op: len(op[0]), default=None)


def _fix_max_pools(model: Any) -> None:
    """Rewrites all-axes MaxPool nodes into transpose -> spatial MaxPool -> transpose."""
    from onnx import helper  # the `onnx` extra; imported where needed like jax2onnx

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers = {inp: node for node in graph.node for inp in node.input}
    for pool in [n for n in graph.node if n.op_type == "MaxPool"]:
        attrs = {a.name: list(a.ints) for a in pool.attribute}
        kernel = attrs.get("kernel_shape", [])
        rank = len(kernel)
        strides = attrs.get("strides", [1] * rank)
        pads = attrs.get("pads", [0] * 2 * rank)
        unsq1 = producers.get(pool.input[0])
        unsq0 = producers.get(unsq1.input[0]) if unsq1 is not None else None
        squeeze = consumers.get(pool.output[0])
        edges = (0, rank - 1)
        if (rank < 3 or rank > 5 or unsq0 is None or unsq0.op_type != "Unsqueeze"
                or unsq1.op_type != "Unsqueeze" or squeeze is None
                or squeeze.op_type != "Squeeze"
                or any(kernel[i] != 1 or strides[i] != 1 or pads[i] or pads[rank + i]
                       for i in edges)):
            continue
        source, target = unsq0.input[0], squeeze.output[0]
        to_channels_first = [0, rank - 1, *range(1, rank - 1)]
        to_channels_last = [0, *range(2, rank), 1]
        spatial = slice(1, rank - 1)
        moved = [
            helper.make_node("Transpose", [source], [target + "_nchw"], perm=to_channels_first),
            helper.make_node("MaxPool", [target + "_nchw"], [target + "_pooled"],
                             kernel_shape=kernel[spatial], strides=strides[spatial],
                             pads=pads[spatial] + pads[rank + 1:2 * rank - 1]),
            helper.make_node("Transpose", [target + "_pooled"], [target], perm=to_channels_last),
        ]
        index = list(graph.node).index(unsq0)
        for node in (unsq0, unsq1, pool, squeeze):
            graph.node.remove(node)
        for offset, node in enumerate(moved):
            graph.node.insert(index + offset, node)


def to_onnx(apply: Callable[..., Any], params: Any, *example_args: Any,
            path: str | os.PathLike | None = None, dynamic_batch: bool = True) -> Any:
    """Converts ``apply(params, *args)`` to an ONNX model with ``params`` as constants.

    Args:
        apply: Called as ``apply(params, *args)``, e.g. the ``apply`` of
            ``hk.without_apply_rng(hk.transform(f))``; for a stateful or rng-taking model
            pass a function that binds them (``lambda p, x: model.apply(p, state, x,
            is_training=False)[0]``).
        params: The params, stored in the ONNX model as initializers.
        *example_args: Arrays (or ``jax.ShapeDtypeStruct``) giving the inputs' shapes and
            dtypes.
        path: Where to write the ``.onnx`` file (atomically); None writes nothing.
        dynamic_batch: Whether the first axis of every input is a symbolic batch size
            ``"B"``, so the model runs on any batch.

    Returns:
        The ``onnx.ModelProto``.

    Raises:
        UnsupportedOnnxOpError: (a ``NotImplementedError``) naming the JAX operation
            jax2onnx cannot convert and the hk_core module that used it.

    Example (its ONNX lines are skipped by the doctest run: the ``onnx`` extra is optional):
        >>> import hk_core.export
        >>> model = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> x = np.ones([3, 4], np.float32)
        >>> params = model.init(jax.random.key(0), x)
        >>> import onnxruntime  # doctest: +SKIP
        >>> proto = hk_core.export.to_onnx(model.apply, params, x)  # doctest: +SKIP
        >>> session = onnxruntime.InferenceSession(proto.SerializeToString())  # doctest: +SKIP
        >>> session.run(None, {session.get_inputs()[0].name: x[:1]})[0].shape  # doctest: +SKIP
        (1, 2)
    """
    import jax2onnx  # the `onnx` extra; heavy, so not imported with hk_core.export
    from jax2onnx.plugins import plugin_system

    def fn(*args: Any) -> Any:
        return apply(params, *args)

    specs = []
    for x in example_args:
        shape = tuple(np.shape(x))
        if dynamic_batch and shape:
            shape = (_BATCH, *shape[1:])
        specs.append(_Spec(shape, np.dtype(x.dtype)))
    plugin_system.import_all_plugins()
    operations = list(_operations(jax.make_jaxpr(fn)(*example_args).jaxpr))
    for primitive, module_path in operations:
        if primitive not in plugin_system.PLUGIN_REGISTRY:
            raise UnsupportedOnnxOpError(primitive, module_path)
    try:
        model = jax2onnx.to_onnx(fn, specs)
    except (NotImplementedError, ValueError, TypeError) as e:  # a lowering that gave up
        culprit = _blame(operations, e)
        if culprit is None:
            raise
        raise UnsupportedOnnxOpError(*culprit, detail=str(e)) from e
    _fix_max_pools(model)
    if path is not None:
        data = model.SerializeToString()
        atomic_file.write(os.fspath(path), lambda f: f.write(data))
    return model
