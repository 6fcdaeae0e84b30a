"""B5: ResNet-50 init, jitted (lower + compile + run) and eager, against a raw-JAX twin.

The twin builds the same parameter and state tree sizes (checked: 25,557,032 params at
1000 classes) with plain ``jax.random`` calls over a dict of arrays.
Run: ``python benchmarks/resnet_init.py [--quick]``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import harness  # noqa: E402
import hk_core as hk  # noqa: E402

BLOCKS = (3, 4, 6, 3)
CHANNELS = (256, 512, 1024, 2048)


def _bottleneck_shapes(in_ch: int, out_ch: int, projection: bool) -> list[tuple[int, ...]]:
    mid = out_ch // 4
    convs = [(1, 1, in_ch, mid), (3, 3, mid, mid), (1, 1, mid, out_ch)]
    if projection:
        convs.append((1, 1, in_ch, out_ch))
    return convs


def raw_init(key, image_channels: int, num_classes: int, blocks=BLOCKS, channels=CHANNELS):
    """ResNet-v1 bottleneck params and BatchNorm state, one truncated normal per conv."""
    convs = [(7, 7, image_channels, 64)]
    norms = [64]
    in_ch = 64
    for group, (num_blocks, out_ch) in enumerate(zip(blocks, channels)):
        for block in range(num_blocks):
            shapes = _bottleneck_shapes(in_ch, out_ch, block == 0)
            convs += shapes
            norms += [s[-1] for s in shapes]
            in_ch = out_ch
    keys = jax.random.split(key, len(convs) + 1)
    params, state = {}, {}
    for index, (shape, k) in enumerate(zip(convs, keys)):
        fan_in = shape[0] * shape[1] * shape[2]
        params[f"conv_{index}"] = {"w": jax.random.truncated_normal(
            k, -2.0, 2.0, shape) / np.sqrt(fan_in)}
    for index, width in enumerate(norms):
        params[f"bn_{index}"] = {"scale": jnp.ones([1, 1, 1, width]),
                                 "offset": jnp.zeros([1, 1, 1, width])}
        for ema in ("mean", "var"):
            state[f"bn_{index}_{ema}"] = {"counter": jnp.zeros([], jnp.int32),
                                          "hidden": jnp.zeros([1, 1, 1, width]),
                                          "average": jnp.zeros([1, 1, 1, width])}
    params["logits"] = {"w": jnp.zeros([in_ch, num_classes]), "b": jnp.zeros([num_classes])}
    return params, state


def _count(tree) -> int:
    return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(tree))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    size, classes = (32, 10) if args.quick else (224, 1000)
    blocks = (1, 1, 1, 1) if args.quick else BLOCKS
    channels = (16, 32, 64, 128) if args.quick else CHANNELS
    x = jnp.ones([1, size, size, 3])
    key = jax.random.PRNGKey(0)

    def forward(x):
        net = hk.nets.ResNet(blocks, classes, bottleneck=True, channels_per_group=channels,
                             use_projection=(True,) * 4)
        return net(x, is_training=True)

    model = hk.transform_with_state(forward)
    hk_params, hk_state = jax.eval_shape(model.init, key, x)
    raw_params, raw_state = jax.eval_shape(lambda k: raw_init(k, 3, classes, blocks, channels), key)
    assert _count(hk_params) == _count(raw_params), (_count(hk_params), _count(raw_params))
    if not args.quick:
        assert _count(hk_params) == 25_557_032

    def jit_hk():
        return jax.jit(lambda k, x: model.init(k, x)).lower(key, x).compile()(key, x)

    def jit_raw():
        return jax.jit(lambda k: raw_init(k, 3, classes, blocks, channels)).lower(key).compile()(key)

    results = {
        "B5_jit_init": harness.interleaved_no_warmup(
            {"hk_core": jit_hk, "raw_jax": jit_raw}, repeats, clock=harness.wall_clock),
        "B5_eager_init": harness.interleaved_no_warmup(
            {"hk_core": lambda: model.init(key, x),
             "raw_jax": lambda: raw_init(key, 3, classes, blocks, channels)}, repeats,
            clock=harness.wall_clock, cold=False),  # warm: eager op caches kept
    }
    return harness.report("B5", results, unit="s", scale=1.0,
                          extra={"params": _count(hk_params), "state": _count(hk_state)})


if __name__ == "__main__":
    main()
