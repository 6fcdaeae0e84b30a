"""``hk.nets.ResNet`` and ResNet18/34/50/101/152/200 (He et al. 2015, v2: He et al. 2016).

Every submodule is built in a constructor, so paths carry ``~`` components, e.g.
``res_net50/~/block_group_0/~/block_0/~/conv_0``: exactly Haiku's, so checkpoints move
across unchanged.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import batch_norm
from hk_core._src.layers import conv
from hk_core._src.layers import errors
from hk_core._src.layers import linear
from hk_core._src.layers import pooling
from hk_core._src.layers import relu_kernels


_NUM_GROUPS = 4


def _conv(channels: int, kernel: int, stride: int, name: str) -> conv.Conv2D:
    return conv.Conv2D(output_channels=channels, kernel_shape=kernel, stride=stride,
                       with_bias=False, padding="SAME", name=name)


class BlockV1(hk.Module):
    """A post-activation residual block: conv → batch norm → relu, shortcut added last."""

    def __init__(self, channels: int, stride: int | Sequence[int], use_projection: bool,
                 bn_config: Mapping[str, Any], bottleneck: bool, name: str | None = None):
        """Creates the block's convolutions and batch norms.

        Args:
            channels: Output channels (a bottleneck works with ``channels // 4`` inside).
            stride: Stride of the block (on ``conv_1`` with bottleneck, else ``conv_0``).
            use_projection: Project the shortcut with a 1x1 conv (and batch norm).
            bn_config: Keyword arguments of every ``BatchNorm``.
            bottleneck: Use the 1x1 → 3x3 → 1x1 bottleneck instead of two 3x3 convs.
            name: Module name.
        """
        super().__init__(name=name)
        self.use_projection = use_projection
        bn_config = dict(bn_config)
        if use_projection:
            # Built (and later called) before conv_0: Haiku's parameter order.
            self.proj_conv = _conv(channels, 1, stride, "shortcut_conv")
            self.proj_batchnorm = batch_norm.BatchNorm(name="shortcut_batchnorm", **bn_config)
        inner = channels // 4 if bottleneck else channels
        convs = [_conv(inner, 1 if bottleneck else 3, 1 if bottleneck else stride, "conv_0"),
                 _conv(inner, 3, stride if bottleneck else 1, "conv_1")]
        if bottleneck:
            convs.append(_conv(channels, 1, 1, "conv_2"))
        norms = []
        for i in range(len(convs)):
            config = dict(bn_config)
            if bottleneck and i == 2:
                # The last norm of each residual branch starts at zero, so every block
                # starts as the identity (Goyal et al. 2017).
                config.setdefault("scale_init", jnp.zeros)
            norms.append(batch_norm.BatchNorm(name=f"batchnorm_{i}", **config))
        self.layers = tuple(zip(convs, norms))

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool) -> jax.Array:
        """Applies the block to ``inputs [N, H, W, C]``."""
        shortcut = inputs
        if self.use_projection:
            shortcut = self.proj_conv(shortcut)
            shortcut = self.proj_batchnorm(shortcut, is_training, test_local_stats)
        out = inputs
        for i, (conv_layer, norm) in enumerate(self.layers):
            out = norm(conv_layer(out), is_training, test_local_stats)
            if i < len(self.layers) - 1:
                out = relu_kernels.relu_kernel(out)
        return relu_kernels.add_relu_kernel(out, shortcut)


class BlockV2(hk.Module):
    """A pre-activation residual block: batch norm → relu → conv; no final activation."""

    def __init__(self, channels: int, stride: int | Sequence[int], use_projection: bool,
                 bn_config: Mapping[str, Any], bottleneck: bool, name: str | None = None):
        """Creates the block; arguments as for ``BlockV1`` (the shortcut has no norm)."""
        super().__init__(name=name)
        self.use_projection = use_projection
        if use_projection:
            self.proj_conv = _conv(channels, 1, stride, "shortcut_conv")
        inner = channels // 4 if bottleneck else channels
        convs = [_conv(inner, 1 if bottleneck else 3, 1 if bottleneck else stride, "conv_0"),
                 _conv(inner, 3, stride if bottleneck else 1, "conv_1")]
        if bottleneck:
            convs.append(_conv(channels, 1, 1, "conv_2"))
        norms = [batch_norm.BatchNorm(name=f"batchnorm_{i}", **bn_config)
                 for i in range(len(convs))]
        self.layers = tuple(zip(convs, norms))

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool) -> jax.Array:
        """Applies the block to ``inputs [N, H, W, C]``."""
        out = shortcut = inputs
        for i, (conv_layer, norm) in enumerate(self.layers):
            out = relu_kernels.relu_kernel(norm(out, is_training, test_local_stats))
            if i == 0 and self.use_projection:
                # The projection sees the normalized input (pre-activation design).
                shortcut = self.proj_conv(out)
            out = conv_layer(out)
        return out + shortcut


class BlockGroup(hk.Module):
    """``num_blocks`` residual blocks; only the first strides and may project."""

    def __init__(self, channels: int, num_blocks: int, stride: int | Sequence[int],
                 bn_config: Mapping[str, Any], resnet_v2: bool, bottleneck: bool,
                 use_projection: bool, name: str | None = None):
        """Creates the blocks ``block_0`` ... ``block_{num_blocks - 1}``."""
        super().__init__(name=name)
        block_cls = BlockV2 if resnet_v2 else BlockV1
        self.blocks = [
            block_cls(channels=channels, stride=(1 if i else stride),
                      use_projection=(i == 0 and use_projection), bottleneck=bottleneck,
                      bn_config=bn_config, name=f"block_{i}")
            for i in range(num_blocks)
        ]

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool) -> jax.Array:
        """Applies the blocks in order."""
        out = inputs
        for block in self.blocks:
            out = block(out, is_training, test_local_stats)
        return out


def _check_length(value: Sequence[Any], name: str, module_path: str) -> None:
    if len(value) != _NUM_GROUPS:
        raise errors.ConfigurationError(
            f"ResNet: `{name}` must be of length {_NUM_GROUPS} (one entry per block group) not "
            f"{len(value)}: {tuple(value)!r}.", module_path=module_path, argument=name,
            expected=f"length {_NUM_GROUPS}", got=tuple(value))


class ResNet(hk.Module):
    """A residual network (v1, or v2 with pre-activation blocks) for NHWC images.

    Layout: ``initial_conv`` (7x7, stride 2) → (v1) ``initial_batchnorm`` + relu → 3x3
    max pool, stride 2 → four ``block_group_{g}`` → (v2) ``final_batchnorm`` + relu →
    mean over height and width → ``logits``.

    Example:
        >>> def f(x, is_training):
        ...     net = hk.nets.ResNet([1, 1, 1, 1], num_classes=10, bottleneck=False,
        ...                          channels_per_group=(4, 8, 8, 8))
        ...     return net(x, is_training)
        >>> f = hk.transform_with_state(f)
        >>> x = jnp.ones([2, 32, 32, 3])
        >>> params, state = f.init(jax.random.PRNGKey(0), x, is_training=True)
        >>> list(params)[:2]
        ['res_net/~/initial_conv', 'res_net/~/initial_batchnorm']
        >>> list(params)[2]
        'res_net/~/block_group_0/~/block_0/~/shortcut_conv'
        >>> f.apply(params, state, None, x, is_training=False)[0].shape
        (2, 10)
    """

    BlockGroup = BlockGroup
    BlockV1 = BlockV1
    BlockV2 = BlockV2

    def __init__(
        self,
        blocks_per_group: Sequence[int],
        num_classes: int,
        bn_config: Mapping[str, Any] | None = None,
        resnet_v2: bool = False,
        bottleneck: bool = True,
        channels_per_group: Sequence[int] = (256, 512, 1024, 2048),
        use_projection: Sequence[bool] = (True, True, True, True),
        logits_config: Mapping[str, Any] | None = None,
        name: str | None = None,
        initial_conv_config: Mapping[str, Any] | None = None,
        strides: Sequence[int] = (1, 2, 2, 2),
    ):
        """Creates the network.

        Args:
            blocks_per_group: Number of blocks in each of the 4 groups.
            num_classes: Number of logits.
            bn_config: Keyword arguments of every ``BatchNorm``; fills ``decay_rate=0.9``,
                ``eps=1e-5``, ``create_scale=True``, ``create_offset=True``.
            resnet_v2: Use pre-activation (v2) blocks.
            bottleneck: Use bottleneck blocks.
            channels_per_group: Output channels of each group.
            use_projection: Whether the first block of each group projects its shortcut.
            logits_config: Keyword arguments of the final ``Linear``; fills
                ``w_init=jnp.zeros`` and ``name='logits'``.
            name: Module name; defaults to the snake-cased class name (``res_net``).
            initial_conv_config: Keyword arguments of the first ``Conv2D``; fills
                ``output_channels=64``, ``kernel_shape=7``, ``stride=2``,
                ``with_bias=False``, ``padding='SAME'``, ``name='initial_conv'``.
            strides: Stride of the first block of each group.

        Raises:
            ValueError: if a per-group argument does not have 4 entries.
        """
        super().__init__(name=name)
        self.resnet_v2 = resnet_v2
        for value, arg in ((blocks_per_group, "blocks_per_group"),
                           (channels_per_group, "channels_per_group"),
                           (use_projection, "use_projection"), (strides, "strides")):
            _check_length(value, arg, self.module_name)
        bn_config = dict(bn_config or {})
        bn_config.setdefault("decay_rate", 0.9)
        bn_config.setdefault("eps", 1e-5)
        bn_config.setdefault("create_scale", True)
        bn_config.setdefault("create_offset", True)
        logits_config = dict(logits_config or {})
        logits_config.setdefault("w_init", jnp.zeros)
        logits_config.setdefault("name", "logits")
        initial_conv_config = dict(initial_conv_config or {})
        initial_conv_config.setdefault("output_channels", 64)
        initial_conv_config.setdefault("kernel_shape", 7)
        initial_conv_config.setdefault("stride", 2)
        initial_conv_config.setdefault("with_bias", False)
        initial_conv_config.setdefault("padding", "SAME")
        initial_conv_config.setdefault("name", "initial_conv")

        self.initial_conv = conv.Conv2D(**initial_conv_config)
        if not resnet_v2:
            self.initial_batchnorm = batch_norm.BatchNorm(name="initial_batchnorm", **bn_config)
        self.block_groups = [
            BlockGroup(channels=channels_per_group[g], num_blocks=blocks_per_group[g],
                       stride=strides[g], bn_config=bn_config, resnet_v2=resnet_v2,
                       bottleneck=bottleneck, use_projection=use_projection[g],
                       name=f"block_group_{g}")
            for g in range(_NUM_GROUPS)
        ]
        if resnet_v2:
            self.final_batchnorm = batch_norm.BatchNorm(name="final_batchnorm", **bn_config)
        self.logits = linear.Linear(num_classes, **logits_config)

    def __call__(self, inputs: jax.Array, is_training: bool,
                 test_local_stats: bool = False) -> jax.Array:
        """Computes logits.

        Args:
            inputs: Images ``[N, H, W, C]``.
            is_training: Use batch statistics and update the batch-norm averages.
            test_local_stats: Use batch statistics without updating the averages.

        Returns:
            Logits ``[N, num_classes]``.
        """
        out = self.initial_conv(inputs)
        if not self.resnet_v2:
            out = self.initial_batchnorm(out, is_training, test_local_stats)
            out = relu_kernels.relu_kernel(out)
        out = pooling.max_pool(out, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1),
                               padding="SAME")
        for group in self.block_groups:
            out = group(out, is_training, test_local_stats)
        if self.resnet_v2:
            out = self.final_batchnorm(out, is_training, test_local_stats)
            out = relu_kernels.relu_kernel(out)
        out = jnp.mean(out, axis=(1, 2))
        return self.logits(out)


_CONFIGS = {
    18: dict(blocks_per_group=(2, 2, 2, 2), bottleneck=False,
             channels_per_group=(64, 128, 256, 512), use_projection=(False, True, True, True)),
    34: dict(blocks_per_group=(3, 4, 6, 3), bottleneck=False,
             channels_per_group=(64, 128, 256, 512), use_projection=(False, True, True, True)),
    50: dict(blocks_per_group=(3, 4, 6, 3), bottleneck=True,
             channels_per_group=(256, 512, 1024, 2048), use_projection=(True, True, True, True)),
    101: dict(blocks_per_group=(3, 4, 23, 3), bottleneck=True,
              channels_per_group=(256, 512, 1024, 2048), use_projection=(True, True, True, True)),
    152: dict(blocks_per_group=(3, 8, 36, 3), bottleneck=True,
              channels_per_group=(256, 512, 1024, 2048), use_projection=(True, True, True, True)),
    200: dict(blocks_per_group=(3, 24, 36, 3), bottleneck=True,
              channels_per_group=(256, 512, 1024, 2048), use_projection=(True, True, True, True)),
}


class _FixedDepthResNet(ResNet):
    _DEPTH = 0

    def __init__(self, num_classes: int, bn_config: Mapping[str, Any] | None = None,
                 resnet_v2: bool = False, logits_config: Mapping[str, Any] | None = None,
                 name: str | None = None,
                 initial_conv_config: Mapping[str, Any] | None = None,
                 strides: Sequence[int] = (1, 2, 2, 2)):
        """Creates the network; arguments as for ``ResNet`` (the depth fixes the rest)."""
        super().__init__(num_classes=num_classes, bn_config=bn_config, resnet_v2=resnet_v2,
                         logits_config=logits_config, name=name,
                         initial_conv_config=initial_conv_config, strides=strides,
                         **_CONFIGS[self._DEPTH])


class ResNet18(_FixedDepthResNet):
    """ResNet-18: basic blocks (2, 2, 2, 2), channels (64, 128, 256, 512).

    Example:
        >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet18(10)(x, is_training=True))
        >>> x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
        >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)
        >>> len(params), hk.data_structures.tree_size(params)
        (41, 11181642)
    """

    _DEPTH = 18


class ResNet34(_FixedDepthResNet):
    """ResNet-34: basic blocks (3, 4, 6, 3), channels (64, 128, 256, 512).

    Example:
        >>> import inspect
        >>> list(inspect.signature(hk.nets.ResNet34).parameters)[:3]
        ['num_classes', 'bn_config', 'resnet_v2']
    """

    _DEPTH = 34


class ResNet50(_FixedDepthResNet):
    """ResNet-50: bottleneck blocks (3, 4, 6, 3), channels (256, 512, 1024, 2048).

    Example:
        >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet50(1000)(x, is_training=True))
        >>> x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
        >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)
        >>> len(params), hk.data_structures.tree_size(params)
        (107, 25557032)
    """

    _DEPTH = 50


class ResNet101(_FixedDepthResNet):
    """ResNet-101: bottleneck blocks (3, 4, 23, 3), channels (256, 512, 1024, 2048).

    Example:
        >>> import inspect
        >>> list(inspect.signature(hk.nets.ResNet101).parameters)[:3]
        ['num_classes', 'bn_config', 'resnet_v2']
    """

    _DEPTH = 101


class ResNet152(_FixedDepthResNet):
    """ResNet-152: bottleneck blocks (3, 8, 36, 3), channels (256, 512, 1024, 2048).

    Example:
        >>> import inspect
        >>> list(inspect.signature(hk.nets.ResNet152).parameters)[:3]
        ['num_classes', 'bn_config', 'resnet_v2']
    """

    _DEPTH = 152


class ResNet200(_FixedDepthResNet):
    """ResNet-200: bottleneck blocks (3, 24, 36, 3), channels (256, 512, 1024, 2048).

    Example:
        >>> import inspect
        >>> list(inspect.signature(hk.nets.ResNet200).parameters)[:3]
        ['num_classes', 'bn_config', 'resnet_v2']
    """

    _DEPTH = 200
