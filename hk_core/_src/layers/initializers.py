"""Initializers (``hk.initializers``): callables ``(shape, dtype) -> array``.

Random initializers draw exactly one ``hk.next_rng_key()`` each, so parameters created in
the same order from the same seed get the same values as under Haiku (API.md §4.2).
"""

import abc
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors

InitializerFn = Callable[[Sequence[int], DTypeLike], jax.Array]
"""What layers take as ``w_init``, ``b_init``, ...: any ``(shape, dtype) -> array`` callable.

An ``Initializer`` or a plain function such as ``jnp.zeros``.

Example:
    >>> f = hk.transform(lambda x: hk.Linear(2, b_init=jnp.ones)(x))
    >>> f.init(jax.random.key(0), jnp.ones([1, 3]))["linear"]["b"]
    Array([1., 1.], dtype=float32)
"""


# std of a unit normal truncated to [-2, 2]; VarianceScaling divides by it so the truncated
# draw has the intended variance.
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def _as_scalar(value: Any, dtype: Any) -> Any:
    # Host-side rounding of Python/numpy scalars (the same rounding XLA's convert does) keeps
    # eager init to one device op per multiply; arrays and tracers convert on device.
    if isinstance(value, (int, float, np.number, np.ndarray)):
        return np.asarray(value, dtype)
    return jax.lax.convert_element_type(value, dtype)


def _is_python_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 0


# A draw and its scaling form one kernel (core/kernels.py): eagerly one dispatch, ~2x faster
# for a small parameter on CPU. XLA compiles the scaling into the same loop as the draw, and
# for the truncated normal and the uniform that gives exactly the op-by-op bits (Haiku's
# eager values). For `normal` it does not (XLA folds `stddev` into the draw's last multiply),
# so RandomNormal scales outside its kernel.
@hk.kernel(static_argnums=(4, 5, 6))
def _draw_truncated_normal(key, stddev, lower, upper, shape, dtype, is_complex):
    unscaled = jax.random.truncated_normal(key, lower, upper, shape, dtype)
    if is_complex:
        unscaled = unscaled[0] + 1j * unscaled[1]
    return stddev * unscaled


@hk.kernel(static_argnums=(3, 4))
def _draw_uniform(key, minval, maxval, shape, dtype):
    return jax.random.uniform(key, shape, dtype, minval, maxval)


class Initializer(abc.ABC):
    """Base class: an initializer is called with ``(shape, dtype)`` and returns an array.

    Example:
        >>> class Twos(hk.initializers.Initializer):
        ...     def __call__(self, shape, dtype):
        ...         return jnp.full(shape, 2, dtype)
        >>> Twos()([2], jnp.float32)
        Array([2., 2.], dtype=float32)
    """

    @abc.abstractmethod
    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        """Returns an array of ``shape`` and ``dtype``."""


class Constant(Initializer):
    """Fills with a constant (a scalar or an array broadcastable to the shape).

    Example:
        >>> hk.initializers.Constant(3.0)([2], jnp.float32)
        Array([3., 3.], dtype=float32)
    """

    def __init__(self, constant: ArrayLike):
        self.constant = constant

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        return jnp.broadcast_to(jnp.asarray(self.constant), shape).astype(dtype)


class RandomNormal(Initializer):
    """Draws from ``N(mean, stddev²)``.

    Example:
        >>> f = hk.transform(lambda: hk.initializers.RandomNormal(2.0)([3], jnp.float32))
        >>> f.apply({}, jax.random.PRNGKey(0)).shape
        (3,)
    """

    def __init__(self, stddev: float = 1.0, mean: float = 0.0):
        self.stddev = stddev
        self.mean = mean

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        m = _as_scalar(self.mean, dtype)
        s = _as_scalar(self.stddev, dtype)
        key = hk.next_rng_key()
        out = s * jax.random.normal(key, shape, dtype)
        if _is_python_zero(self.mean):
            return out  # as in TruncatedNormal: `0 + x` changes no value
        return m + out


class TruncatedNormal(Initializer):
    """Draws from a normal truncated to ``[mean + lower·stddev, mean + upper·stddev]``.

    Example:
        >>> init = hk.initializers.TruncatedNormal(stddev=0.1)
        >>> w = hk.transform(lambda: init([1000], jnp.float32)).apply({}, jax.random.PRNGKey(0))
        >>> bool(jnp.abs(w).max() <= 0.2)
        True
    """

    def __init__(self, stddev: float | jax.Array = 1.0, mean: float | jax.Array = 0.0,
                 lower: float = -2.0, upper: float = 2.0):
        self.stddev = stddev
        self.mean = mean
        self.lower = lower
        self.upper = upper

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        real_dtype = jnp.finfo(dtype).dtype
        s = _as_scalar(self.stddev, real_dtype)
        is_complex = jnp.issubdtype(dtype, jnp.complexfloating)
        draw_shape = (2, *shape) if is_complex else tuple(shape)
        key = hk.next_rng_key()
        out = _draw_truncated_normal(key, s, self.lower, self.upper, draw_shape,
                                       real_dtype, is_complex)
        if _is_python_zero(self.mean):
            return out  # `+ 0` changes no value; skipping it saves an op per parameter
        return out + _as_scalar(self.mean, dtype)


class RandomUniform(Initializer):
    """Draws uniformly from ``[minval, maxval)``.

    Example:
        >>> f = hk.transform(lambda: hk.initializers.RandomUniform(-1, 1)([4], jnp.float32))
        >>> bool((jnp.abs(f.apply({}, jax.random.PRNGKey(0))) <= 1).all())
        True
    """

    def __init__(self, minval: float = 0.0, maxval: float = 1.0):
        self.minval = minval
        self.maxval = maxval

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        key = hk.next_rng_key()
        return _draw_uniform(key, self.minval, self.maxval, tuple(shape), jnp.dtype(dtype))


def _compute_fans(shape: Sequence[int], fan_in_axes: Sequence[int] | None = None):
    # As in Haiku, `fan_in_axes` only counts for rank > 2: a matrix is always
    # (fan_in, fan_out) = shape. Axes are matched as written, so a negative axis counts in
    # fan_in and, since `i` never equals it, in fan_out too (Haiku black box, (3,4,6) with
    # (-1,): fan_in 6, fan_out 72).
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    if fan_in_axes is not None:
        fan_in = int(np.prod([shape[i] for i in fan_in_axes]))
        fan_out = int(np.prod([d for i, d in enumerate(shape) if i not in fan_in_axes]))
        return fan_in, fan_out
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(Initializer):
    """Scales the draw's variance to ``scale / fan`` (He/Glorot/LeCun families).

    Args of the constructor: ``scale`` (≥ 0), ``mode`` in ``fan_in``/``fan_out``/``fan_avg``,
    ``distribution`` in ``truncated_normal``/``normal``/``uniform``, and ``fan_in_axes``.

    Example:
        >>> init = hk.initializers.VarianceScaling(2.0, "fan_in", "uniform")
        >>> w = hk.transform(lambda: init([100, 10], jnp.float32)).apply({}, 0)
        >>> bool(jnp.abs(w).max() <= jnp.sqrt(3 * 2.0 / 100))
        True
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal",
                 fan_in_axes: Sequence[int] | None = None):
        if scale < 0.0:
            raise errors.ConfigurationError(
                f"`scale` must be a non-negative value, got {scale}.", argument="scale",
                expected="non-negative", got=scale)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise errors.ConfigurationError(
                f"Invalid `mode` argument {mode!r}: use fan_in, fan_out or fan_avg.",
                argument="mode", expected="fan_in, fan_out or fan_avg", got=mode)
        distribution = distribution.lower()
        if distribution not in ("normal", "truncated_normal", "uniform"):
            raise errors.ConfigurationError(
                f"Invalid `distribution` argument {distribution!r}: use truncated_normal, "
                "normal or uniform.", argument="distribution",
                expected="truncated_normal, normal or uniform", got=distribution)
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.fan_in_axes = fan_in_axes

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        fan_in, fan_out = _compute_fans(shape, self.fan_in_axes)
        if self.mode == "fan_in":
            fan = fan_in
        elif self.mode == "fan_out":
            fan = fan_out
        else:
            fan = (fan_in + fan_out) / 2.0
        scale = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            # Rounding the constant to the param dtype first keeps inits bit-identical to Haiku.
            stddev = np.sqrt(scale) / np.asarray(_TRUNCATED_NORMAL_STD, dtype=dtype)
            return TruncatedNormal(stddev=stddev)(shape, dtype)
        if self.distribution == "normal":
            return RandomNormal(np.sqrt(scale))(shape, dtype)
        limit = np.sqrt(3.0 * scale)
        return RandomUniform(minval=-limit, maxval=limit)(shape, dtype)


class UniformScaling(Initializer):
    """Uniform in ``±scale·sqrt(3 / fan_in)`` with ``fan_in = prod(shape[:-1])``.

    Example:
        >>> w = hk.transform(lambda: hk.initializers.UniformScaling()([3, 2], jnp.float32))
        >>> bool((jnp.abs(w.apply({}, 0)) <= 1.0).all())
        True
    """

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        input_size = np.prod(shape[:-1])
        max_val = np.sqrt(3 / input_size) * self.scale
        return RandomUniform(-max_val, max_val)(shape, dtype)


class Orthogonal(Initializer):
    """An orthogonal matrix (QR of a normal draw), reshaped along ``axis``, times ``scale``.

    Example:
        >>> w = hk.transform(lambda: hk.initializers.Orthogonal()([3, 3], jnp.float32))
        >>> q = w.apply({}, 0)
        >>> bool(jnp.allclose(q @ q.T, jnp.eye(3), atol=1e-5))
        True
    """

    def __init__(self, scale: float = 1.0, axis: int = -1):
        self.scale = scale
        self.axis = axis

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        if len(shape) < 2:
            raise errors.InputShapeError(
                f"Orthogonal initializer requires at least a 2D shape, got shape {tuple(shape)}.",
                argument="shape", expected="at least 2 dimensions", got=tuple(shape))
        n_rows = shape[self.axis]
        n_cols = int(np.prod(shape)) // n_rows
        matrix_shape = (n_rows, n_cols) if n_rows > n_cols else (n_cols, n_rows)
        norm_dst = jax.random.normal(hk.next_rng_key(), matrix_shape, dtype)
        q_mat, r_mat = jnp.linalg.qr(norm_dst)
        q_mat *= jnp.sign(jnp.diag(r_mat))
        if n_rows < n_cols:
            q_mat = q_mat.T
        q_mat = jnp.reshape(q_mat, (n_rows,) + tuple(np.delete(shape, self.axis)))
        q_mat = jnp.moveaxis(q_mat, 0, self.axis)
        return jax.lax.convert_element_type(self.scale, dtype) * q_mat


class Identity(Initializer):
    """The identity matrix on the last two axes (broadcast over the rest), times ``gain``.

    Example:
        >>> hk.initializers.Identity(2.0)([2, 2], jnp.float32)
        Array([[2., 0.],
               [0., 2.]], dtype=float32)
    """

    def __init__(self, gain: float | jax.Array = 1.0):
        self.gain = gain

    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> jax.Array:
        shape = tuple(shape)
        if len(shape) < 2:
            raise errors.InputShapeError(
                f"Identity initializer requires at least a 2D shape, got {shape}.",
                argument="shape", expected="at least 2 dimensions", got=shape)
        eye = jnp.eye(shape[-2], shape[-1], dtype=dtype)
        if eye.shape != shape:
            eye = jnp.broadcast_to(eye, shape)
        gain = jax.lax.convert_element_type(self.gain, dtype)
        return gain * eye
