"""``hk.GroupNorm``: normalization over groups of channels, per example."""


import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import data_format as data_format_lib
from hk_core._src.layers import errors
from hk_core._src.layers import norm_args
from hk_core._src.layers.initializers import InitializerFn


class GroupNorm(hk.Module):
    """Splits the channels into ``groups`` and normalizes each group over ``axis``.

    Params ``scale``/``offset`` (ones/zeros, input dtype) are ``[C]`` for channels-last
    inputs and ``[C, 1, ..., 1]`` for channels-first ones.

    Example:
        >>> f = hk.transform(lambda x: hk.GroupNorm(groups=2)(x))
        >>> x = jnp.array([[1.0, 3.0, 10.0, 30.0]])
        >>> params = f.init(None, x)
        >>> jax.tree.map(jnp.shape, params)
        {'group_norm': {'offset': (4,), 'scale': (4,)}}
        >>> [round(v, 3) for v in f.apply(params, None, x)[0].tolist()]
        [-1.0, 1.0, -1.0, 1.0]
    """

    def __init__(
        self,
        groups: int,
        axis: norm_args.AxisSpec = slice(1, None),
        create_scale: bool = True,
        create_offset: bool = True,
        eps: float = 1e-5,
        scale_init: InitializerFn | None = None,
        offset_init: InitializerFn | None = None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        """Creates the layer.

        Args:
            groups: Number of channel groups; must divide the number of channels.
            axis: Axes of the input to compute statistics over (the channel axis stands for
                the channels within a group); defaults to every axis but the batch axis.
            create_scale: Whether to learn a ``scale`` (else pass ``scale`` at call, or 1).
            create_offset: Whether to learn an ``offset`` (else pass ``offset``, or 0).
            eps: Added to the variance before the square root.
            scale_init: Initializer of ``scale``; defaults to ones.
            offset_init: Initializer of ``offset``; defaults to zeros.
            data_format: ``"channels_last"``, ``"channels_first"`` or e.g. ``"NCHW"``.
            name: Module name; defaults to ``"group_norm"``.

        Raises:
            ValueError: if ``axis`` is not an int, slice or ints, or an initializer is given
                for a parameter that is not created.
        """
        super().__init__(name=name)
        norm_args.check_create_init(self.module_name, create_scale, scale_init, "scale")
        norm_args.check_create_init(self.module_name, create_offset, offset_init, "offset")
        self.groups = groups
        self._axis = norm_args.validate(axis)
        # Haiku keeps a list (or slice) as given and makes an int a 1-tuple; the first call
        # replaces it with the axes of the grouped array (see __call__).
        self.axis = axis if isinstance(axis, list) else self._axis
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.eps = eps
        # Haiku has no scale_init/offset_init attribute for a parameter it does not create.
        if create_scale:
            self.scale_init = scale_init if scale_init is not None else jnp.ones
        if create_offset:
            self.offset_init = offset_init if offset_init is not None else jnp.zeros
        self.data_format = data_format
        self.channel_index = data_format_lib.get_channel_index(data_format)
        self.rank = None

    def __call__(self, x: jax.Array, scale: jax.Array | None = None,
                 offset: jax.Array | None = None) -> jax.Array:
        """Normalizes ``x``.

        Args:
            x: Array ``[N, ..., C]`` (or ``[N, C, ...]`` for channels-first), at least 2-D;
                its rank must not change between calls.
            scale: Scale to use when ``create_scale=False`` (default 1).
            offset: Offset to use when ``create_offset=False`` (default 0).

        Returns:
            The normalized array, shaped like ``x``.

        Raises:
            ValueError: if the rank differs from the first call, the channels are not
                divisible by ``groups``, ``axis`` is out of range, or ``scale``/``offset``
                is passed while the module creates its own.
        """
        module_path = self.module_name
        norm_args.check_call_override(module_path, self.create_scale, scale, "scale")
        norm_args.check_call_override(module_path, self.create_offset, offset, "offset")
        ndim = x.ndim
        first_call = self.rank is None
        if first_call:
            if ndim < 2:
                raise errors.InputShapeError(
                    f"{module_path}: GroupNorm needs inputs with a batch and a channel axis "
                    f"(rank >= 2), got shape {x.shape}.", module_path=module_path,
                    argument="x", expected="rank >= 2", got=x.shape)
            self.rank = ndim
        elif ndim != self.rank:
            raise errors.InputShapeError(
                f"{module_path}: The rank of the inputs cannot change between calls, the "
                f"original call was rank={self.rank} but this call was rank={ndim}.",
                module_path=module_path, argument="x", expected=f"rank {self.rank}",
                got=x.shape)
        channel_index = self.channel_index % ndim
        channels = x.shape[channel_index]
        if channels % self.groups:
            raise errors.InputShapeError(
                f"{module_path}: The number of channels must be divisible by the number of "
                f"groups, was channels={channels}, groups={self.groups}", module_path=module_path,
                argument="x", expected=f"channels divisible by {self.groups}", got=x.shape)

        # The channel axis becomes (groups, channels_per_group); statistics cover the
        # requested axes, with the channel axis standing for channels_per_group.
        group_shape = (*x.shape[:channel_index], self.groups, channels // self.groups,
                       *x.shape[channel_index + 1:])
        axes = norm_args.resolve(self._axis, ndim, module_path)
        group_axes = tuple(a if a < channel_index else a + 1 for a in axes)
        if first_call:
            # The attributes Haiku 0.0.17 sets on the first call. Its stored axes keep
            # negative entries as given (they still count from the end of the grouped array).
            spec = range(ndim)[self._axis] if isinstance(self._axis, slice) else self._axis
            self.axis = tuple(a + 1 if 0 <= a and a >= channel_index else a for a in spec)
            self.first_input_shape = (-1, *x.shape[1:])
            self.group_shape = (-1, *group_shape[1:])
        grouped = x.reshape(group_shape)
        mean = jnp.mean(grouped, axis=group_axes, keepdims=True)
        var = jnp.var(grouped, axis=group_axes, keepdims=True)
        eps = jax.lax.convert_element_type(self.eps, var.dtype)
        normalized = ((grouped - mean) * jax.lax.rsqrt(var + eps)).reshape(x.shape)

        param_shape = (channels,) + (1,) * (ndim - 1 - channel_index)
        scale, offset = norm_args.scale_and_offset(self, param_shape, x.dtype, scale, offset)
        return normalized * scale + offset
