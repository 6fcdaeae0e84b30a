"""Reading jaxprs for the inspection tools (``to_dot``, ``jaxpr_info``), public JAX API only.

``jax.make_jaxpr`` gives the program; each equation's ``source_info.name_stack`` holds the
``jax.named_scope`` names active when it was traced (hk_core opens one per module method
call). Equations of call-like primitives (``jit``, ``custom_jvp_call``, ...) are read
through: their body runs in their place, with its names relative to the call's.
"""

from typing import Any

import numpy as np

from hk_core._src.inspect import summary

# Primitives whose body maps inputs to outputs one to one, so reading through them keeps
# the data flow intact (unlike scan/while/cond, whose bodies run many times or not at all).
_CALL_PRIMITIVES = frozenset({
    "jit", "pjit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call",
    "custom_vjp_call", "custom_vjp_call_jaxpr", "custom_lin",
})
_BODY_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _jax_core():
    # jax.extend pulls in Pallas (~0.1 s); import it only when a jaxpr is actually walked so
    # that `import hk_core` stays light (benchmark B9).
    from jax.extend import core  # noqa: PLC0415

    return core


def _open(jaxpr: Any) -> Any:
    return jaxpr.jaxpr if isinstance(jaxpr, _jax_core().ClosedJaxpr) else jaxpr


def call_body(eqn: Any) -> Any | None:
    """The body ``Jaxpr`` of a call-like equation whose inputs and outputs match it, or None."""
    if eqn.primitive.name not in _CALL_PRIMITIVES:
        return None
    for key in _BODY_PARAMS:
        body = eqn.params.get(key)
        if isinstance(body, (_jax_core().ClosedJaxpr, _jax_core().Jaxpr)):
            body = _open(body)
            if len(body.invars) == len(eqn.invars) and len(body.outvars) == len(eqn.outvars):
                return body
    return None


def named_sub_jaxprs(eqn: Any) -> list[tuple[str, Any]]:
    """``(param name, jaxpr)`` for every jaxpr in ``eqn``'s params, e.g. ``('jaxpr', ...)``
    for a scan body, ``('branches[1]', ...)`` for a cond branch; jaxprs are opened."""
    found = []
    for key, value in eqn.params.items():
        if isinstance(value, (_jax_core().ClosedJaxpr, _jax_core().Jaxpr)):
            found.append((key, _open(value)))
        elif isinstance(value, (tuple, list)):
            found += [(f"{key}[{i}]", _open(v)) for i, v in enumerate(value)
                      if isinstance(v, (_jax_core().ClosedJaxpr, _jax_core().Jaxpr))]
    return found


def scope_of(eqn: Any, outer: str = "") -> str:
    """The ``/``-joined named scopes of ``eqn``, below those of an enclosing call ``outer``."""
    inner = str(eqn.source_info.name_stack)
    if not outer:
        return inner
    return f"{outer}/{inner}" if inner else outer


def is_literal(var: Any) -> bool:
    return isinstance(var, _jax_core().Literal)


def is_dropped(var: Any) -> bool:
    return isinstance(var, _jax_core().DropVar)


def aval_str(var: Any) -> str:
    """``f32[2,3]`` for an array variable; the aval's own text for tokens and others."""
    aval = var.aval
    shape, dtype = getattr(aval, "shape", None), getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return str(aval)
    try:
        return str(summary.ArraySpec(tuple(shape), np.dtype(dtype)))
    except TypeError:  # extended dtypes (PRNG keys) have no numpy equivalent
        return str(aval)


def literal_str(var: Any) -> str:
    value = np.asarray(var.val)
    return str(value.item()) if value.ndim == 0 else f"{aval_str(var)} constant"
