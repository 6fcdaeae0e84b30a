"""``hk.MultiHeadAttention``: Haiku's parameter layout on ``jax.nn.dot_product_attention``.

Off GPU (CPU, TPU) the attention is Haiku's explicit einsum + softmax, in Haiku's order of
operations: outputs and gradients are bit-identical to Haiku's under ``jit``. (JAX's XLA
``dot_product_attention`` gives the same forward bits but rounds the query and key
gradients differently, up to 2e-7 relative, and traced 1.4x and compiled 1.1x slower in a
12-layer GPT train step on CPU.) On GPU it runs on ``jax.nn.dot_product_attention`` with
``implementation=None``, so JAX picks its best kernel (cuDNN where it can), whenever that
function can express Haiku's semantics:

* fused path: query, key and value heads share one floating dtype, key and value heads have
  the same size (``value_size == key_size``) and the three inputs have the same leading batch
  dimensions. Any mask is turned into a boolean (Haiku's ``where(mask, ...)`` tests
  truthiness too) and broadcast over flattened batch dimensions.
* Rows whose mask is all False: Haiku writes ``-1e30`` into every logit of such a row, so its
  softmax is uniform and the row's output is the mean of the value heads. cuDNN differs
  there, so the fused path replaces those rows by that mean explicitly: every path gives
  Haiku's answer. (In float16 Haiku's ``-1e30`` overflows to ``-inf`` and such
  rows are NaN; the fused path returns the mean.)
* In bfloat16/float16, ``dot_product_attention`` forms logits and the softmax in float32,
  which is slightly more accurate than Haiku's low-precision softmax (same values to within
  the dtype's rounding).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers
from hk_core._src.layers import linear
from hk_core._src.layers.initializers import InitializerFn

# Haiku masks logits with this value (not -inf), so fully masked rows are uniform, not NaN.
_MASKED_LOGIT = -1e30


class MultiHeadAttention(hk.Module):
    """Multi-head attention (Vaswani et al., 2017) with Haiku's parameters.

    Four ``Linear`` submodules are created at the first call, in this order:
    ``query`` ``[Dq, H*key_size]``, ``key`` ``[Dk, H*key_size]``, ``value``
    ``[Dv, H*value_size]`` and ``linear`` ``[H*value_size, model_size]`` (each with ``b`` if
    ``with_bias``).

    Example:
        >>> def f(x):
        ...     mha = hk.MultiHeadAttention(num_heads=2, key_size=4,
        ...                                 w_init=hk.initializers.VarianceScaling(1.0))
        ...     return mha(x, x, x)
        >>> f = hk.transform(f)
        >>> x = jnp.ones([1, 5, 3])
        >>> params = f.init(jax.random.PRNGKey(0), x)
        >>> jax.tree.map(jnp.shape, params)["multi_head_attention/query"]
        {'b': (8,), 'w': (3, 8)}
        >>> f.apply(params, None, x).shape
        (1, 5, 8)
    """

    def __init__(self, num_heads: int, key_size: int, w_init_scale: float | None = None, *,
                 w_init: InitializerFn | None = None, with_bias: bool = True,
                 b_init: InitializerFn | None = None, value_size: int | None = None,
                 model_size: int | None = None, name: str | None = None):
        """Creates the module; parameters are made at the first call.

        Args:
            num_heads: Number of heads ``H``.
            key_size: Size of each query and key head.
            w_init_scale: Deprecated: means ``w_init=VarianceScaling(w_init_scale)``.
            w_init: Initializer of every ``w`` (required unless ``w_init_scale`` is given).
            with_bias: Whether the four projections have biases.
            b_init: Initializer of every ``b``; defaults to zeros.
            value_size: Size of each value head; defaults to ``key_size``.
            model_size: Output size; defaults to ``key_size * num_heads``.
            name: Module name; defaults to ``"multi_head_attention"``.
        """
        super().__init__(name=name)
        self.num_heads = num_heads
        self.key_size = key_size
        self.value_size = value_size or key_size
        self.model_size = model_size or key_size * num_heads
        if w_init_scale is not None:
            warnings.warn(
                "w_init_scale is deprecated; please pass an explicit weight initialiser "
                "instead (w_init=hk.initializers.VarianceScaling(w_init_scale)).",
                DeprecationWarning, stacklevel=2)
        if w_init is not None and w_init_scale is not None:
            raise errors.ConfigurationError(
                "Please provide only `w_init`, not `w_init_scale`.", module_path=self.module_name,
                argument="w_init_scale", expected="None when w_init is given", got=w_init_scale)
        if w_init is None and w_init_scale is None:
            raise errors.ConfigurationError(
                "Please provide a weight initializer: `w_init` (e.g. "
                "hk.initializers.VarianceScaling(1.0)).", module_path=self.module_name,
                argument="w_init", expected="an initializer", got=None)
        if w_init is None:
            w_init = initializers.VarianceScaling(w_init_scale)
        self.w_init = w_init
        self.with_bias = with_bias
        self.b_init = b_init

    def __call__(self, query: jax.Array, key: jax.Array, value: jax.Array,
                 mask: jax.Array | None = None) -> jax.Array:
        """Attends from ``query`` to ``key``/``value``.

        Args:
            query: ``[..., T', Dq]``.
            key: ``[..., T, Dk]``.
            value: ``[..., T, Dv]``.
            mask: Optional, broadcastable to ``[..., H, T', T]`` and of that rank; entries that
                are False (zero) are left out of the softmax.

        Returns:
            ``[..., T', model_size]``.

        Raises:
            ValueError: if an input has rank < 2, key and value lengths differ, or the mask's
                rank is not the logits' rank (messages name this module's path).
        """
        _check_inputs(self.module_name, query, key, value)
        *leading_dims, sequence_length, _ = query.shape
        query_heads = self._linear_projection(query, self.key_size, "query")
        key_heads = self._linear_projection(key, self.key_size, "key")
        value_heads = self._linear_projection(value, self.value_size, "value")
        logits_shape = _logits_shape(query_heads, key_heads)
        if mask is not None:
            mask = jnp.asarray(mask)
            _check_mask(self.module_name, mask, logits_shape)
        scale = np.sqrt(self.key_size).astype(key.dtype)
        if _may_use_cudnn() and _fused_supported(query_heads, key_heads, value_heads, mask,
                                                 logits_shape):
            attn = fused_attention(query_heads, key_heads, value_heads, mask, scale)
        else:
            attn = reference_attention(query_heads, key_heads, value_heads, mask, scale)
        attn = jnp.reshape(attn, (*leading_dims, sequence_length, -1))
        final_projection = linear.Linear(self.model_size, w_init=self.w_init,
                                         with_bias=self.with_bias, b_init=self.b_init)
        return final_projection(attn)

    @hk.transparent  # the projections are named as if created in __call__ (API.md §3.7)
    def _linear_projection(self, x: jax.Array, head_size: int, name: str) -> jax.Array:
        y = linear.Linear(self.num_heads * head_size, w_init=self.w_init,
                          with_bias=self.with_bias, b_init=self.b_init, name=name)(x)
        *leading_dims, _ = x.shape
        return y.reshape((*leading_dims, self.num_heads, head_size))


def _check_inputs(module_path: str, query, key, value) -> None:
    for arg_name, x in (("query", query), ("key", key), ("value", value)):
        if jnp.ndim(x) < 2:
            raise errors.InputShapeError(
                f"{module_path}: {arg_name} must have rank >= 2 ([..., T, D]), got "
                f"shape {jnp.shape(x)}.", module_path=module_path, argument=arg_name,
                expected="rank >= 2", got=jnp.shape(x))
    if key.shape[-2] != value.shape[-2]:
        raise errors.InputShapeError(
            f"{module_path}: key and value must have the same sequence length T, got "
            f"key shape {key.shape} (T={key.shape[-2]}) and value shape {value.shape} "
            f"(T={value.shape[-2]}).", module_path=module_path, argument="value",
            expected=f"sequence length {key.shape[-2]}", got=value.shape)


def _check_mask(module_path: str, mask: jax.Array, logits_shape: tuple[int, ...]) -> None:
    if mask.ndim != len(logits_shape):
        raise errors.InputShapeError(
            f"{module_path}: Mask dimensionality {mask.ndim} must match logits "
            f"dimensionality {len(logits_shape)}. (expected a mask broadcastable to "
            f"[..., H, T', T] = {logits_shape}, got shape {mask.shape})",
            module_path=module_path, argument="mask", expected=logits_shape, got=mask.shape)
    try:
        jnp.broadcast_shapes(mask.shape, logits_shape)
    except ValueError:
        raise errors.InputShapeError(
            f"{module_path}: mask of shape {mask.shape} does not broadcast to the "
            f"logits shape [..., H, T', T] = {logits_shape}.", module_path=module_path,
            argument="mask", expected=logits_shape, got=mask.shape) from None


def _logits_shape(query_heads: jax.Array, key_heads: jax.Array) -> tuple[int, ...]:
    batch = jnp.broadcast_shapes(query_heads.shape[:-3], key_heads.shape[:-3])
    return (*batch, query_heads.shape[-2], query_heads.shape[-3], key_heads.shape[-3])


def _fused_supported(query_heads, key_heads, value_heads, mask, logits_shape) -> bool:
    dtype = query_heads.dtype
    if mask is not None and jnp.broadcast_shapes(mask.shape, logits_shape) != logits_shape:
        return False  # a mask that widens the logits: only the explicit path broadcasts so
    return (
        jnp.issubdtype(dtype, jnp.floating)
        and key_heads.dtype == dtype and value_heads.dtype == dtype
        and key_heads.shape == value_heads.shape  # also means value_size == key_size
        and query_heads.shape[:-3] == key_heads.shape[:-3])


def reference_attention(query_heads: jax.Array, key_heads: jax.Array, value_heads: jax.Array,
                        mask: jax.Array | None, scale: np.ndarray) -> jax.Array:
    """Haiku's explicit attention: ``[..., T', H, d]`` heads in, ``[..., T', H, dv]`` out."""
    logits = jnp.einsum("...thd,...Thd->...htT", query_heads, key_heads)
    logits = logits / scale
    if mask is not None:
        logits = jnp.where(mask, logits, _MASKED_LOGIT)
    weights = jax.nn.softmax(logits)
    return jnp.einsum("...htT,...Thd->...thd", weights, value_heads)


def _may_use_cudnn() -> bool:
    """Whether ``implementation=None`` may pick cuDNN: on any backend but CPU and TPU. On
    those JAX's XLA implementation runs, whose masked logits are a large finite negative:
    fully masked rows are already uniform, as in Haiku, and need no fix-up (six ops per
    layer less to trace)."""
    return jax.default_backend() not in ("cpu", "tpu")


def fused_attention(query_heads: jax.Array, key_heads: jax.Array, value_heads: jax.Array,
                    mask: jax.Array | None, scale: np.ndarray) -> jax.Array:
    """The same attention on ``jax.nn.dot_product_attention`` (see the module docstring).

    Needs one floating dtype, ``key_heads.shape == value_heads.shape`` and equal leading
    batch dims for the three inputs.
    """
    batch_dims = query_heads.shape[:-3]
    t_query, num_heads, _ = query_heads.shape[-3:]
    # dot_product_attention takes one batch axis (or none): flatten several into one.
    flatten = len(batch_dims) > 1
    if flatten:
        query_heads, key_heads, value_heads = (
            x.reshape((-1, *x.shape[-3:])) for x in (query_heads, key_heads, value_heads))
    bool_mask = None
    if mask is not None:
        bool_mask = mask.astype(bool)
        if flatten:
            full = (*batch_dims, *bool_mask.shape[-3:])
            bool_mask = jnp.broadcast_to(bool_mask, full).reshape((-1, *bool_mask.shape[-3:]))
    may_use_cudnn = _may_use_cudnn()
    out = jax.nn.dot_product_attention(
        query_heads, key_heads, value_heads, mask=bool_mask,
        scale=float(1.0 / scale), implementation=None if may_use_cudnn else "xla")
    if bool_mask is not None and may_use_cudnn:
        # A row with nothing to attend to gets Haiku's uniform softmax: the mean value.
        row_kept = jnp.any(bool_mask, axis=-1)  # [B|1, H|1, T'|1]
        row_kept = jnp.broadcast_to(row_kept, (*row_kept.shape[:-2], num_heads, t_query))
        row_kept = jnp.swapaxes(row_kept, -1, -2)[..., None]  # [B|1, T', H, 1]
        mean_value = jnp.mean(value_heads, axis=-3, keepdims=True).astype(out.dtype)
        out = jnp.where(row_kept, out, mean_value)
    if flatten:
        out = out.reshape((*batch_dims, *out.shape[-3:]))
    return out
