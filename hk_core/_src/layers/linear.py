"""``hk.Linear``: an affine map over the last axis."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers
from hk_core._src.layers.initializers import InitializerFn


class Linear(hk.Module):
    """Computes ``inputs @ w + b`` over the last axis of ``inputs``.

    Parameters: ``w [input_size, output_size]`` (default ``TruncatedNormal(1/sqrt(input_size))``)
    and ``b [output_size]`` (zeros), created at the first call with the input's dtype.

    Example:
        >>> f = hk.transform(lambda x: hk.Linear(3)(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 4]))
        >>> jax.tree.map(jnp.shape, params)
        {'linear': {'b': (3,), 'w': (4, 3)}}
    """

    def __init__(self, output_size: int, with_bias: bool = True,
                 w_init: InitializerFn | None = None, b_init: InitializerFn | None = None,
                 name: str | None = None):
        """Creates the layer.

        Args:
            output_size: Size of the last axis of the output.
            with_bias: Whether to add a bias ``b``.
            w_init: Initializer of ``w``; defaults to ``TruncatedNormal(1/sqrt(input_size))``.
            b_init: Initializer of ``b``; defaults to zeros.
            name: Module name; defaults to ``"linear"``.
        """
        super().__init__(name=name)
        self.input_size = None
        self.output_size = output_size
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init if b_init is not None else jnp.zeros

    def __call__(self, inputs: jax.Array, *, precision: jax.lax.PrecisionLike = None) -> jax.Array:
        """Applies the layer.

        Args:
            inputs: Array of shape ``[..., input_size]`` (at least 1-D).
            precision: Passed to ``jnp.dot``.

        Returns:
            Array of shape ``[..., output_size]``.

        Raises:
            ValueError: if ``inputs`` is a scalar (the message names the module).
        """
        if not inputs.shape:
            raise errors.InputShapeError(
                f"{self.module_name}: Linear input must not be a scalar (got shape ()); it "
                "needs a last axis of features.", module_path=self.module_name,
                argument="inputs", expected="rank >= 1", got=inputs.shape)
        input_size = self.input_size = inputs.shape[-1]
        output_size = self.output_size
        dtype = inputs.dtype
        w_init = self.w_init
        if w_init is None:
            w_init = initializers.TruncatedNormal(stddev=1.0 / np.sqrt(input_size))
        w = hk.get_parameter("w", [input_size, output_size], dtype, init=w_init)
        b = None
        if self.with_bias:
            b = hk.get_parameter("b", [output_size], dtype, init=self.b_init)
        # A keyword `precision=None` would leave jit's C++ fast path: ~2x eager dispatch.
        if precision is None:
            return _affine(inputs, w, b)
        if isinstance(precision, list):  # jnp.dot takes a pair as a list; a static arg must hash
            precision = tuple(precision)
        return _affine(inputs, w, b, precision=precision)


def _affine_fn(inputs: jax.Array, w: jax.Array, b: jax.Array | None,
               precision: jax.lax.PrecisionLike = None):
    """``inputs @ w (+ b)``, a kernel (see core/kernels.py): traced once per input
    signature and reused by every layer of the same shapes; eagerly one dispatch."""
    *leading, input_size = inputs.shape
    if len(leading) > 1:
        # One [N, input_size] matmul: XLA:CPU compiles the 2-D dot's gradient (a plain
        # matmul, not a two-axis contraction) to far less code; the values are the same.
        inputs = inputs.reshape(math.prod(leading), input_size)
    out = jnp.dot(inputs, w, precision=precision)
    if len(leading) > 1:
        out = out.reshape(*leading, w.shape[1])
    return out if b is None else out + b


_affine = hk.kernel(_affine_fn, static_argnames=("precision",))
