"""ReLU as kernels (core/kernels.py), for the layers and nets that apply it.

``jax.nn.relu`` and ``relu6`` are ``custom_jvp`` functions whose eager call costs ~130 µs of
Python on CPU; as kernels they are one ~5 µs dispatch of the same max/min ops, and a nested
call traced once per shape under ``jit``. The names end in ``_kernel`` so that they never
match JAX's own jitted ``relu`` in a jaxpr (``jaxpr_info`` reads through kernels by name).

Example:
    >>> from hk_core._src.layers import relu_kernels
    >>> relu_kernels.add_relu_kernel(jnp.array([1.0, -3.0]), jnp.array([1.0, 1.0]))
    Array([2., 0.], dtype=float32)
    >>> relu_kernels.as_kernel_if_relu(jax.nn.relu) is relu_kernels.relu_kernel
    True
"""

from collections.abc import Callable

import jax

from hk_core._src.core import facade as hk


@hk.kernel
def relu_kernel(x: jax.Array) -> jax.Array:
    return jax.nn.relu(x)


@hk.kernel
def relu6_kernel(x: jax.Array) -> jax.Array:
    return jax.nn.relu6(x)


@hk.kernel
def add_relu_kernel(x: jax.Array, y: jax.Array) -> jax.Array:
    """``relu(x + y)``: a residual join or a recurrent step as one kernel."""
    return jax.nn.relu(x + y)


_AS_KERNELS = ((jax.nn.relu, relu_kernel), (jax.nn.relu6, relu6_kernel))


def as_kernel_if_relu(activation: Callable[[jax.Array], jax.Array]) -> Callable:
    """The kernel for ``jax.nn.relu``/``relu6``; any other activation as given, since a
    user's activation may use hk state (a kernel must be pure)."""
    for plain, kernel in _AS_KERNELS:
        if activation is plain:
            return kernel
    return activation
