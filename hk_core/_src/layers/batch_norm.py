"""``hk.BatchNorm``: normalization with batch statistics and their moving averages."""

from collections.abc import Hashable, Sequence

import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import moving_averages
from hk_core._src.layers import data_format as data_format_lib
from hk_core._src.layers import errors
from hk_core._src.layers import norm_args
from hk_core._src.layers.initializers import InitializerFn


class BatchNorm(hk.Module):
    """Normalizes with the batch mean and variance; tracks their moving averages for eval.

    When training (or with ``test_local_stats``) the statistics are those of the batch,
    averaged over ``cross_replica_axis`` if given; otherwise the moving averages are used.
    Training updates the averages, kept by the submodules ``mean_ema`` and ``var_ema``
    (state ``<name>/~/mean_ema`` and ``<name>/~/var_ema``: ``counter``, ``hidden``,
    ``average``). Params ``scale`` (ones) and ``offset`` (zeros) have the input's shape with
    the reduced axes set to 1, e.g. ``[1, 1, 1, C]`` for NHWC inputs.

    Example:
        >>> bn = lambda x, t: hk.BatchNorm(True, True, decay_rate=0.9)(x, is_training=t)
        >>> f = hk.transform_with_state(bn)
        >>> x = jnp.arange(8.0).reshape([4, 2])
        >>> params, state = f.init(None, x, True)
        >>> jax.tree.map(jnp.shape, params)
        {'batch_norm': {'offset': (1, 2), 'scale': (1, 2)}}
        >>> list(state)
        ['batch_norm/~/mean_ema', 'batch_norm/~/var_ema']
        >>> out, state = f.apply(params, state, None, x, True)
        >>> [round(v, 3) for v in out[:, 0].tolist()]
        [-1.342, -0.447, 0.447, 1.342]
    """

    def __init__(
        self,
        create_scale: bool,
        create_offset: bool,
        decay_rate: float,
        eps: float = 1e-5,
        scale_init: InitializerFn | None = None,
        offset_init: InitializerFn | None = None,
        axis: Sequence[int] | None = None,
        cross_replica_axis: Hashable | Sequence[Hashable] | None = None,
        cross_replica_axis_index_groups: Sequence[Sequence[int]] | None = None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        """Creates the layer and its two moving averages.

        Args:
            create_scale: Whether to learn a ``scale`` (else pass ``scale`` at call, or 1).
            create_offset: Whether to learn an ``offset`` (else pass ``offset``, or 0).
            decay_rate: Decay of the moving averages of mean and variance.
            eps: Added to the variance before the square root.
            scale_init: Initializer of ``scale``; defaults to ones.
            offset_init: Initializer of ``offset``; defaults to zeros.
            axis: Axes to reduce over; defaults to every axis but the channel axis.
            cross_replica_axis: Named axis (or axes) of ``jax.vmap``/``pmap``/``shard_map``
                over which batch statistics are averaged, so every replica normalizes
                with the statistics of the whole batch.
            cross_replica_axis_index_groups: Passed to ``jax.lax.pmean`` as
                ``axis_index_groups``: statistics are averaged within each group (supported
                by ``jax.pmap``; used only with ``cross_replica_axis``).
            data_format: ``"channels_last"``, ``"channels_first"`` or a string such as
                ``"NHWC"``/``"NCHW"``; gives the channel axis.
            name: Module name; defaults to ``"batch_norm"``.

        Raises:
            ValueError: if an initializer is given for a parameter that is not created.
        """
        super().__init__(name=name)
        norm_args.check_create_init(self.module_name, create_scale, scale_init, "scale")
        norm_args.check_create_init(self.module_name, create_offset, offset_init, "offset")
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.eps = eps
        self.scale_init = scale_init if scale_init is not None else jnp.ones
        self.offset_init = offset_init if offset_init is not None else jnp.zeros
        self.axis = axis  # kept as given (a list stays a list), as in Haiku
        self.cross_replica_axis = cross_replica_axis
        self.cross_replica_axis_index_groups = cross_replica_axis_index_groups
        self.channel_index = data_format_lib.get_channel_index(data_format)
        self.mean_ema = moving_averages.ExponentialMovingAverage(decay_rate, name="mean_ema")
        self.var_ema = moving_averages.ExponentialMovingAverage(decay_rate, name="var_ema")

    def __call__(
        self,
        inputs: jax.Array,
        is_training: bool,
        test_local_stats: bool = False,
        scale: jax.Array | None = None,
        offset: jax.Array | None = None,
    ) -> jax.Array:
        """Normalizes ``inputs``.

        Args:
            inputs: Array of any rank; the channel axis comes from ``data_format``.
            is_training: Use batch statistics and update the moving averages.
            test_local_stats: Use batch statistics without updating the averages.
            scale: Scale to use when ``create_scale=False`` (default 1).
            offset: Offset to use when ``create_offset=False`` (default 0).

        Returns:
            ``(inputs - mean) * rsqrt(var + eps) * scale + offset``, shaped like ``inputs``.

        Raises:
            ValueError: if ``scale``/``offset`` is passed while the module creates its own,
                if the channel axis or ``axis`` does not exist in ``inputs``, or if the
                stored averages do not match the input's statistics shape.
        """
        module_path = self.module_name
        norm_args.check_call_override(module_path, self.create_scale, scale, "scale")
        norm_args.check_call_override(module_path, self.create_offset, offset, "offset")
        ndim = inputs.ndim
        channel_index = self.channel_index
        if channel_index < 0:
            # `+ ndim`, not `% ndim`: a rank-0 input then has no reduction axes.
            channel_index += ndim
        if self.axis is not None:
            axis = norm_args.resolve(self.axis, ndim, module_path)
        else:
            if ndim and not 0 <= channel_index < ndim:
                raise errors.InputShapeError(
                    f"{module_path}: channel axis {self.channel_index} does not exist in inputs "
                    f"of shape {inputs.shape} (rank {ndim}); check `data_format`.",
                    module_path=module_path, argument="inputs",
                    expected=f"a channel axis {self.channel_index}", got=inputs.shape)
            axis = tuple(i for i in range(ndim) if i != channel_index)
        stats_shape = tuple(1 if i in axis else inputs.shape[i] for i in range(ndim))

        if is_training or test_local_stats:
            mean, mean_of_squares = _moments(inputs, axis)
            if self.cross_replica_axis is not None:
                # One collective for both moments; E[x²] - E[x]² of the whole batch.
                mean, mean_of_squares = jax.lax.pmean(
                    (mean, mean_of_squares), axis_name=self.cross_replica_axis,
                    axis_index_groups=self.cross_replica_axis_index_groups)
            var = mean_of_squares - jnp.square(mean)
        else:
            mean = self.mean_ema.average
            var = self.var_ema.average
            if mean.shape != stats_shape:
                raise errors.InputShapeError(
                    f"{module_path}: the stored moving averages have shape {mean.shape}, but "
                    f"inputs of shape {inputs.shape} need statistics of shape {stats_shape}. Were "
                    "the params and state created by init with other inputs?",
                    module_path=module_path, argument="inputs",
                    expected=f"statistics of shape {mean.shape}", got=inputs.shape)
            mean = mean.astype(inputs.dtype)
            var = var.astype(inputs.dtype)

        if is_training:
            self.mean_ema(mean)
            self.var_ema(var)

        scale, offset = norm_args.scale_and_offset(self, stats_shape, inputs.dtype, scale, offset)

        return _normalize(inputs, mean, var, scale, offset, self.eps)


def _moments_fn(inputs: jax.Array, axis: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """``E[x]`` and ``E[x²]`` over ``axis``, keeping dims."""
    mean = jnp.mean(inputs, axis, keepdims=True)
    return mean, jnp.mean(jnp.square(inputs), axis, keepdims=True)


def _normalize_fn(inputs, mean, var, scale, offset, eps):
    eps = jax.lax.convert_element_type(eps, var.dtype)
    inv = scale * jax.lax.rsqrt(var + eps)
    return (inputs - mean) * inv + offset


_moments = hk.kernel(_moments_fn, static_argnums=(1,))
_normalize = hk.kernel(_normalize_fn)
