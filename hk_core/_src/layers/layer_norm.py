"""Per-example normalization: ``hk.LayerNorm``, ``hk.InstanceNorm`` and ``hk.RMSNorm``."""


import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import data_format as data_format_lib
from hk_core._src.layers import norm_args
from hk_core._src.layers.initializers import InitializerFn


class LayerNorm(hk.Module):
    """Normalizes each example over ``axis`` to zero mean and unit variance, then scales.

    ``scale``/``offset`` (ones/zeros, input dtype) span ``param_axis`` (default the last
    axis): shape ``[C]`` when that is exactly the last axis, otherwise the input's rank
    with 1s outside ``param_axis`` (``param_axis=0`` on ``[3, 4, 5, 6]`` → ``[3, 1, 1, 1]``).

    Example:
        >>> f = hk.transform(lambda x: hk.LayerNorm(-1, True, True)(x))
        >>> x = jnp.array([[1.0, 2.0, 3.0]])
        >>> params = f.init(None, x)
        >>> jax.tree.map(jnp.shape, params)
        {'layer_norm': {'offset': (3,), 'scale': (3,)}}
        >>> [round(v, 4) for v in f.apply(params, None, x)[0].tolist()]
        [-1.2247, 0.0, 1.2247]
    """

    def __init__(
        self,
        axis: norm_args.AxisSpec,
        create_scale: bool,
        create_offset: bool,
        eps: float = 1e-5,
        scale_init: InitializerFn | None = None,
        offset_init: InitializerFn | None = None,
        use_fast_variance: bool = False,
        name: str | None = None,
        *,
        param_axis: norm_args.AxisSpec | None = None,
    ):
        """Creates the layer.

        Args:
            axis: Axes to normalize over: an int, a slice or an iterable of ints.
            create_scale: Whether to learn a ``scale`` (else pass ``scale`` at call, or 1).
            create_offset: Whether to learn an ``offset`` (else pass ``offset``, or 0).
            eps: Added to the variance before the square root.
            scale_init: Initializer of ``scale``; defaults to ones.
            offset_init: Initializer of ``offset``; defaults to zeros.
            use_fast_variance: Compute the variance as ``mean(x²) - mean(x)²`` (one pass,
                less accurate) instead of ``var(x)``.
            name: Module name; defaults to ``"layer_norm"``.
            param_axis: Axes the params span (int, slice or ints); defaults to ``-1``.

        Raises:
            ValueError: if ``axis``/``param_axis`` is not an int, slice or ints, or an
                initializer is given for a parameter that is not created.
        """
        super().__init__(name=name)
        norm_args.check_create_init(self.module_name, create_scale, scale_init, "scale")
        norm_args.check_create_init(self.module_name, create_offset, offset_init, "offset")
        self.axis = norm_args.validate(axis)
        self.param_axis = norm_args.validate(-1 if param_axis is None else param_axis,
                                             "param_axis")
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.eps = eps
        self.scale_init = scale_init if scale_init is not None else jnp.ones
        self.offset_init = offset_init if offset_init is not None else jnp.zeros
        self.use_fast_variance = use_fast_variance

    def __call__(self, inputs: jax.Array, scale: jax.Array | None = None,
                 offset: jax.Array | None = None) -> jax.Array:
        """Normalizes ``inputs``.

        Args:
            inputs: Array with at least the axes named by ``axis`` and ``param_axis``.
            scale: Scale to use when ``create_scale=False`` (default 1).
            offset: Offset to use when ``create_offset=False`` (default 0).

        Returns:
            ``(inputs - mean) * rsqrt(var + eps) * scale + offset``, shaped like ``inputs``.

        Raises:
            ValueError: if ``scale``/``offset`` is passed while the module creates its own,
                or ``axis``/``param_axis`` is out of range for ``inputs``.
        """
        module_path = self.module_name
        norm_args.check_call_override(module_path, self.create_scale, scale, "scale")
        norm_args.check_call_override(module_path, self.create_offset, offset, "offset")
        ndim = inputs.ndim
        axis = norm_args.resolve(self.axis, ndim, module_path)
        shape = norm_args.param_shape(
            inputs.shape, norm_args.resolve(self.param_axis, ndim, module_path, "param_axis"))
        scale, offset = norm_args.scale_and_offset(self, shape, inputs.dtype, scale, offset)
        if isinstance(self.eps, (int, float)):
            # A kernel (core/kernels.py): traced once per input signature, reused by
            # every layer of a deep model.
            return _normalize_kernel(inputs, scale, offset, axis=axis, eps=self.eps,
                                  fast_variance=self.use_fast_variance)
        return _normalize(inputs, scale, offset, axis, self.eps, self.use_fast_variance)


def _normalize(inputs, scale, offset, axis, eps, fast_variance):
    # Haiku's order of operations, so gradients are bit-identical to Haiku's under jit:
    # `jnp.var` centres the input on its own, and the output centres it again. Sharing one
    # centred input would merge the two backward paths through the mean and round the
    # input gradient differently (up to 3e-7 relative); on a 12-layer GPT train step it
    # saved no XLA:CPU compile time (4.3 s both, benchmarks/gpt.py config).
    mean = jnp.mean(inputs, axis=axis, keepdims=True)
    if fast_variance:
        var = jnp.mean(jnp.square(inputs), axis=axis, keepdims=True) - jnp.square(mean)
    else:
        var = jnp.var(inputs, axis=axis, keepdims=True)
    eps = jax.lax.convert_element_type(eps, var.dtype)
    inv = scale * jax.lax.rsqrt(var + eps)
    return inv * (inputs - mean) + offset


_normalize_kernel = hk.kernel(
    _normalize, static_argnames=("axis", "eps", "fast_variance"))


class InstanceNorm(LayerNorm):
    """Normalizes each example and channel over the spatial axes (a ``LayerNorm``).

    Channels-last inputs ``[N, ..., C]`` get params ``[C]``; channels-first inputs
    ``[N, C, ...]`` get full-rank params ``[1, C, 1, ...]``.

    Example:
        >>> f = hk.transform(lambda x: hk.InstanceNorm(True, True)(x))
        >>> params = f.init(None, jnp.ones([2, 4, 4, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'instance_norm': {'offset': (3,), 'scale': (3,)}}
    """

    def __init__(
        self,
        create_scale: bool,
        create_offset: bool,
        eps: float = 1e-5,
        scale_init: InitializerFn | None = None,
        offset_init: InitializerFn | None = None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        """Creates the layer.

        Args:
            create_scale: Whether to learn a ``scale`` (else pass ``scale`` at call, or 1).
            create_offset: Whether to learn an ``offset`` (else pass ``offset``, or 0).
            eps: Added to the variance before the square root.
            scale_init: Initializer of ``scale``; defaults to ones.
            offset_init: Initializer of ``offset``; defaults to zeros.
            data_format: ``"channels_last"``, ``"channels_first"`` or e.g. ``"NCHW"``.
            name: Module name; defaults to ``"instance_norm"``.
        """
        if data_format_lib.get_channel_index(data_format) == -1:
            axis, param_axis = slice(1, -1), -1
        else:
            axis, param_axis = slice(2, None), 1
        super().__init__(axis, create_scale, create_offset, eps=eps, scale_init=scale_init,
                         offset_init=offset_init, name=name, param_axis=param_axis)


class RMSNorm(hk.Module):
    """Divides by the root mean square over ``axis`` (no centring), then scales.

    ``scale`` (ones) has the same shape rules as ``LayerNorm``'s; there is no offset.

    Example:
        >>> f = hk.transform(lambda x: hk.RMSNorm(-1)(x))
        >>> x = jnp.array([[3.0, 4.0]])
        >>> params = f.init(None, x)
        >>> [round(v, 4) for v in f.apply(params, None, x)[0].tolist()]
        [0.8485, 1.1314]
    """

    def __init__(
        self,
        axis: norm_args.AxisSpec,
        eps: float = 1e-5,
        scale_init: InitializerFn | None = None,
        name: str | None = None,
        create_scale: bool = True,
        *,
        param_axis: norm_args.AxisSpec | None = None,
    ):
        """Creates the layer.

        Args:
            axis: Axes to normalize over: an int, a slice or an iterable of ints.
            eps: Added to the mean square before the square root.
            scale_init: Initializer of ``scale``; defaults to ones.
            name: Module name; defaults to ``"rms_norm"``.
            create_scale: Whether to learn a ``scale`` (else the scale is 1).
            param_axis: Axes ``scale`` spans (int, slice or ints); defaults to ``-1``.

        Raises:
            ValueError: if ``axis``/``param_axis`` is not an int, slice or ints, or
                ``scale_init`` is given with ``create_scale=False``.
        """
        super().__init__(name=name)
        norm_args.check_create_init(self.module_name, create_scale, scale_init, "scale")
        self.axis = norm_args.validate(axis)
        self.param_axis = norm_args.validate(-1 if param_axis is None else param_axis,
                                             "param_axis")
        self.eps = eps
        self.create_scale = create_scale
        self.scale_init = scale_init if scale_init is not None else jnp.ones

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Normalizes ``inputs``.

        Args:
            inputs: Array with at least the axes named by ``axis`` and ``param_axis``.

        Returns:
            ``inputs * rsqrt(mean(inputs², axis) + eps) * scale``, shaped like ``inputs``.

        Raises:
            ValueError: if ``axis``/``param_axis`` is out of range for ``inputs``.
        """
        module_path = self.module_name
        ndim = inputs.ndim
        axis = norm_args.resolve(self.axis, ndim, module_path)
        mean_squared = jnp.mean(jnp.square(inputs), axis=axis, keepdims=True)
        shape = None  # param_axis is resolved (and checked) only when there is a scale
        if self.create_scale:
            shape = norm_args.param_shape(
                inputs.shape, norm_args.resolve(self.param_axis, ndim, module_path, "param_axis"))
        scale = norm_args.scale_or_offset(
            self, "scale", self.create_scale, None, shape, inputs.dtype)
        eps = jax.lax.convert_element_type(self.eps, mean_squared.dtype)
        return inputs * jax.lax.rsqrt(mean_squared + eps) * scale
