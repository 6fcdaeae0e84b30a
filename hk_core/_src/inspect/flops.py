"""A default FLOP estimate per jaxpr equation, for ``jaxpr_info``.

Rough by design, like any count made before compilation: a multiply-add counts as two
FLOPs in matrix products and convolutions; an elementwise op costs one FLOP per output
element; a reduction one per input element; moving or reshaping data costs nothing.
"""

import math
from typing import Any

from hk_core._src.inspect import jaxpr_walk

_FREE = frozenset({
    "reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims", "rev",
    "convert_element_type", "bitcast_convert_type", "reduce_precision", "slice",
    "dynamic_slice", "dynamic_update_slice", "gather", "concatenate", "pad", "split", "iota",
    "copy", "copy_p", "device_put", "sharding_constraint", "stop_gradient", "optimization_barrier",
    "random_wrap", "random_unwrap", "random_seed", "random_bits", "pjit", "jit",
})
_REDUCTIONS = frozenset({
    "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or",
    "reduce_xor", "argmax", "argmin", "cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp",
    "reduce_precision_sum",
})


def _size(var: Any) -> int:
    shape = getattr(var.aval, "shape", ())
    return math.prod(shape)


def _dot_general(eqn: Any) -> int:
    (lhs_contracting, _), _ = eqn.params["dimension_numbers"]
    lhs_shape = eqn.invars[0].aval.shape
    contracted = math.prod(lhs_shape[d] for d in lhs_contracting)
    return 2 * _size(eqn.outvars[0]) * contracted


def _conv(eqn: Any) -> int:
    rhs_shape = eqn.invars[1].aval.shape
    out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    # Each output element is a dot product over the kernel window and (grouped) input
    # features: every rhs element except the output-feature axis.
    per_output = math.prod(rhs_shape) // max(rhs_shape[out_feature_dim], 1)
    return 2 * _size(eqn.outvars[0]) * per_output


def estimate_flops(eqn: Any) -> int:
    """Returns the estimated FLOPs of one equation without sub-jaxprs.

    Example:
        >>> from hk_core._src.inspect import flops
        >>> jaxpr = jax.make_jaxpr(jnp.dot)(jnp.ones([2, 3]), jnp.ones([3, 4])).jaxpr
        >>> flops.estimate_flops(jaxpr.eqns[0])  # 2 * 2 * 4 * 3
        48
    """
    name = eqn.primitive.name
    if name == "dot_general":
        return _dot_general(eqn)
    if name == "conv_general_dilated":
        return _conv(eqn)
    if name in _FREE:
        return 0
    if name in _REDUCTIONS:
        return sum(_size(v) for v in eqn.invars if not jaxpr_walk.is_literal(v))
    return sum(_size(v) for v in eqn.outvars)
