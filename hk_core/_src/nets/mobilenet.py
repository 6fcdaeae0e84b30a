"""``hk.nets.MobileNetV1`` (Howard et al. 2017): depthwise-separable convolution blocks.

Submodules are built in ``__call__`` (no ``~`` in paths): ``mobile_net_v1/conv2_d``,
``mobile_net_v1/mobile_net_v1_block_3/pointwise_conv``, ``mobile_net_v1/logits``...
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import batch_norm
from hk_core._src.layers import conv
from hk_core._src.layers import depthwise_conv
from hk_core._src.layers import errors
from hk_core._src.layers import linear
from hk_core._src.layers import relu_kernels
from hk_core._src.layers import reshape


_BN_DECAY = 0.999


def _batch_norm() -> batch_norm.BatchNorm:
    return batch_norm.BatchNorm(create_scale=True, create_offset=True, decay_rate=_BN_DECAY)


class MobileNetV1Block(hk.Module):
    """A 3x3 depthwise conv and a 1x1 pointwise conv, each followed by batch norm and relu."""

    def __init__(self, output_channels: int, stride: int, use_bn: bool = True,
                 name: str | None = None):
        """Stores the configuration.

        Args:
            output_channels: Channels of the pointwise conv.
            stride: Stride of the depthwise conv.
            use_bn: Batch norm after each conv (convs then have no bias).
            name: Module name; defaults to ``"mobile_net_v1_block"``.
        """
        super().__init__(name=name)
        self.output_channels = output_channels
        self.stride = stride
        self.use_bn = use_bn

    def __call__(self, inputs: jax.Array, is_training: bool) -> jax.Array:
        """Applies the block to ``inputs [N, H, W, C]``."""
        depthwise = depthwise_conv.DepthwiseConv2D(
            channel_multiplier=1, kernel_shape=3, stride=self.stride,
            padding=((1, 1), (1, 1)), with_bias=not self.use_bn, name="depthwise_conv")
        pointwise = conv.Conv2D(
            output_channels=self.output_channels, kernel_shape=(1, 1), stride=1,
            padding="VALID", with_bias=not self.use_bn, name="pointwise_conv")
        out = depthwise(inputs)
        if self.use_bn:
            out = _batch_norm()(out, is_training)
        out = relu_kernels.relu_kernel(out)
        out = pointwise(out)
        if self.use_bn:
            out = _batch_norm()(out, is_training)
        return relu_kernels.relu_kernel(out)


class MobileNetV1(hk.Module):
    """MobileNet v1 for NHWC images: a strided 3x3 conv, separable blocks, mean pool, logits.

    Example:
        >>> def f(x, is_training):
        ...     net = hk.nets.MobileNetV1(strides=(1, 2), channels=(8, 16), num_classes=5)
        ...     return net(x, is_training)
        >>> f = hk.transform_with_state(f)
        >>> x = jnp.ones([2, 33, 33, 3])
        >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
        >>> list(params)[:2]
        ['mobile_net_v1/conv2_d', 'mobile_net_v1/batch_norm']
        >>> list(params)[2]
        'mobile_net_v1/mobile_net_v1_block/depthwise_conv'
        >>> f.apply(params, state, None, x, False)[0].shape
        (2, 5)
    """

    def __init__(
        self,
        strides: Sequence[int] = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1),
        channels: Sequence[int] = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024,
                                   1024),
        num_classes: int = 1000,
        use_bn: bool = True,
        name: str | None = None,
    ):
        """Stores the configuration.

        Args:
            strides: Stride of each block's depthwise conv.
            channels: Output channels of each block.
            num_classes: Number of logits.
            use_bn: Batch norm after every conv (convs then have no bias).
            name: Module name; defaults to ``"mobile_net_v1"``.

        Raises:
            ValueError: if ``strides`` and ``channels`` differ in length.
        """
        super().__init__(name=name)
        if len(strides) != len(channels):
            raise errors.ConfigurationError(
                f"{self.module_name}: `strides` and `channels` must have the same length (one "
                f"entry per block), got {len(strides)} strides and {len(channels)} channels.",
                module_path=self.module_name, argument="strides",
                expected=f"length {len(channels)}", got=len(strides))
        self.strides = tuple(strides)
        self.channels = tuple(channels)
        self.num_classes = num_classes
        self.use_bn = use_bn
        self.with_bias = not use_bn  # Haiku's attribute: convs have a bias only without BN

    def __call__(self, inputs: jax.Array, is_training: bool) -> jax.Array:
        """Computes logits ``[N, num_classes]`` from images ``[N, H, W, C]``."""
        out = conv.Conv2D(output_channels=32, kernel_shape=(3, 3), stride=2, padding="VALID",
                          with_bias=self.with_bias)(inputs)
        if self.use_bn:
            out = _batch_norm()(out, is_training)
        out = relu_kernels.relu_kernel(out)
        for stride, channels in zip(self.strides, self.channels):
            out = MobileNetV1Block(channels, stride, self.use_bn)(out, is_training)
        out = jnp.mean(out, axis=(1, 2))
        out = reshape.Flatten()(out)
        return linear.Linear(self.num_classes, name="logits")(out)
