"""Post-training int8 weight-only quantization, for any hk_core model without changing its code.

The weights ``w`` of ``Linear`` (so also ``MultiHeadAttention``'s projections and
``nets.MLP``), ``ConvND``, ``ConvNDTranspose`` and ``DepthwiseConvND`` are stored as int8
with one float32 scale per output channel (symmetric: ``w ≈ int8 * scale``, ``scale =
max|w| / 127`` over the channel's other axes), as two entries of the module's params:
``w`` (int8) and ``w@scale`` (float32, ``w``'s shape with 1 on the reduced axes). They
stay a plain ``{module: {name: array}}`` dict, so ``checkpoint.save_params`` writes them
to ``.safetensors`` as they are.

At ``apply``, :func:`int8_weights` wraps the model's function with a custom getter that
turns each int8 ``w`` back into ``int8 * scale`` in the dtype the layer asked for; the
multiply sits next to the matmul in the compiled program, so the f32 copy is transient.

Why not a library: Google's qwix integrates by intercepting Flax (Linen/NNX) modules, and
AQT (``aqtp``) by passing its ``dot_general`` into each layer (Flax's ``dot_general=``
argument) with int8 serving weights kept by Flax's variable collections; hk_core's layers
take no ``dot_general`` and its params are plain dicts. A getter is the hook hk_core has.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import params as params_lib
from hk_core._src.core import transform as transform_lib
from hk_core._src.layers import conv
from hk_core._src.layers import conv_transpose
from hk_core._src.layers import depthwise_conv
from hk_core._src.layers import linear

SCALE_SUFFIX = "@scale"
_CHANNELS_LAST = (linear.Linear, conv.ConvND, depthwise_conv.DepthwiseConvND)
_QMAX = 127.0


def _channel_axis(module: Any) -> int | None:
    """The output-channel axis of a quantized module's ``w``, or None if not quantized."""
    if isinstance(module, conv_transpose.ConvNDTranspose):
        return -2  # kernel + (output_channels, input_channels)
    if isinstance(module, _CHANNELS_LAST):
        return -1  # [..., input, output]
    return None


def _scale_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    out = [1] * len(shape)
    out[axis] = shape[axis]
    return tuple(out)


def _dequantizing_getter(next_getter: Callable[[Any], Any], value: Any,
                         context: params_lib.GetterContext) -> Any:
    if context.name != "w" or getattr(value, "dtype", None) != jnp.int8:
        return next_getter(value)
    axis = _channel_axis(context.module)
    if axis is None:
        return next_getter(value)
    scale = params_lib.get_parameter(context.name + SCALE_SUFFIX,
                                     _scale_shape(tuple(value.shape), axis), jnp.float32)
    return next_getter((value.astype(jnp.float32) * scale).astype(context.original_dtype))


def int8_weights(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a model function so that it runs on params from :func:`quantize_int8`.

    Pass the result to ``hk.transform`` (or ``transform_with_state``) in place of ``fn``.
    Params that are not int8 pass through unchanged, so the wrapped model also runs on
    float params.

    Example:
        >>> import hk_core.export
        >>> forward = lambda x: hk.Linear(3)(x)
        >>> x = jnp.ones([2, 4])
        >>> params = hk.transform(forward).init(jax.random.key(0), x)
        >>> qparams = hk_core.export.quantize_int8(forward, params, x)
        >>> model = hk.transform(hk_core.export.int8_weights(forward))
        >>> model.apply(qparams, None, x).shape
        (2, 3)
    """

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with params_lib.custom_getter(_dequantizing_getter):
            return fn(*args, **kwargs)

    return wrapped


def _quantized_weights(fn: Callable[..., Any], params: Any, state: Any, args: tuple,
                       kwargs: dict) -> dict[str, tuple[int, int]]:
    """Maps each quantizable ``w``'s getter name to (per-layer rank, channel axis).

    Found by tracing ``apply`` (nothing is computed) with a getter that reads the module
    each parameter belongs to.
    """
    found: dict[str, tuple[int, int]] = {}

    def record(next_getter, value, context):
        axis = _channel_axis(context.module)
        if context.name == "w" and axis is not None:
            found[context.full_name] = (len(context.original_shape), axis)
        return next_getter(value)

    def recording(*a, **k):
        with params_lib.custom_getter(record):
            return fn(*a, **k)

    model = transform_lib.transform_with_state(recording)
    jax.eval_shape(functools.partial(model.apply, **kwargs), params, state or {},
                   jax.random.key(0), *args)
    return found


def _storage_match(key: str, found: Mapping[str, Any]) -> Any:
    """The getter name ``key`` is stored under: equal, or its longest ``/``-suffix.

    ``layer_stack`` and ``lift`` store params under a prefix the getter does not see.
    """
    best = None
    for name in found:
        if (key == name or key.endswith("/" + name)) and (best is None or len(name) > len(best)):
            best = name
    return None if best is None else found[best]


def quantize_array(w: Any, axis: int, stacked_axes: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(int8 values, float32 scale)`` with one scale per channel along ``axis``.

    Leading ``stacked_axes`` (``layer_stack``'s layer axis) keep a scale per entry too.
    """
    w = np.asarray(w, np.float32)
    axis = axis % w.ndim
    reduce = tuple(a for a in range(stacked_axes, w.ndim) if a != axis)
    scale = np.max(np.abs(w), axis=reduce, keepdims=True) / _QMAX
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)  # an all-zero channel
    values = np.clip(np.rint(w / scale), -_QMAX, _QMAX).astype(np.int8)
    return values, scale


def quantize_int8(fn: Callable[..., Any], params: Mapping[str, Mapping[str, Any]],
                  *example_args: Any, state: Any = None, **example_kwargs: Any
                  ) -> dict[str, dict[str, Any]]:
    """Quantizes a trained model's weights to int8 with per-output-channel scales.

    Args:
        fn: The model function given to ``hk.transform`` (not the transformed pair): it is
            traced once, without computing, to learn which params are the weights of
            ``Linear``, ``Conv*`` and ``MultiHeadAttention`` modules.
        params: The float params from ``init`` or training.
        *example_args: Arguments for ``fn`` (arrays or ``jax.ShapeDtypeStruct``).
        state: The model state, for ``transform_with_state`` models.
        **example_kwargs: Keyword arguments for ``fn`` (e.g. ``is_training=False``).

    Returns:
        A copy of ``params`` where each such ``w`` is int8 and a ``w@scale`` entry sits
        beside it; other params are unchanged. Apply it with :func:`int8_weights`.

    Example:
        >>> import hk_core.export
        >>> forward = lambda x: hk.nets.MLP([8, 2])(x)
        >>> x = jnp.ones([1, 4])
        >>> params = hk.transform(forward).init(jax.random.key(0), x)
        >>> qparams = hk_core.export.quantize_int8(forward, params, x)
        >>> jax.tree.map(lambda a: (a.dtype.name, a.shape), qparams["mlp/~/linear_0"])
        {'b': ('float32', (8,)), 'w': ('int8', (4, 8)), 'w@scale': ('float32', (1, 8))}
    """
    found = _quantized_weights(fn, params, state, example_args, example_kwargs)
    out: dict[str, dict[str, Any]] = {}
    for module_name, bundle in params.items():
        out[module_name] = dict(bundle)
        match = _storage_match(f"{module_name}/w", found) if "w" in bundle else None
        if match is None:
            continue
        rank, axis = match
        w = bundle["w"]
        values, scale = quantize_array(w, axis, stacked_axes=np.ndim(w) - rank)
        out[module_name]["w"] = jnp.asarray(values)
        out[module_name]["w" + SCALE_SUFFIX] = jnp.asarray(scale)
    return out
