"""MobileNetV1: API.md §4.1 paths and shapes, use_bn, numerics without batch norm, errors."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

KEY = jax.random.PRNGKey(0)


@functools.cache
def _abstract_default():
    f = hk.transform_with_state(lambda x: hk.nets.MobileNetV1()(x, is_training=True))
    seen = {}

    def init(x):
        params, state = f.init(KEY, x)
        seen["order"] = list(params)
        return params, state

    params, state = jax.eval_shape(init, jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
    return params, state, seen["order"]


def _shapes(params):
    return {m: {n: tuple(v.shape) for n, v in b.items()} for m, b in params.items()}


def test_default_paths_in_creation_order():
    order = _abstract_default()[2]
    assert order[:6] == [
        "mobile_net_v1/conv2_d", "mobile_net_v1/batch_norm",
        "mobile_net_v1/mobile_net_v1_block/depthwise_conv",
        "mobile_net_v1/mobile_net_v1_block/batch_norm",
        "mobile_net_v1/mobile_net_v1_block/pointwise_conv",
        "mobile_net_v1/mobile_net_v1_block/batch_norm_1"]
    assert order[-2:] == ["mobile_net_v1/mobile_net_v1_block_12/batch_norm_1",
                          "mobile_net_v1/logits"]
    assert len(order) == 2 + 13 * 4 + 1


def test_default_shapes_follow_channels():
    shapes = _shapes(_abstract_default()[0])
    assert shapes["mobile_net_v1/conv2_d"] == {"w": (3, 3, 3, 32)}
    assert shapes["mobile_net_v1/batch_norm"] == {"scale": (1, 1, 1, 32),
                                                  "offset": (1, 1, 1, 32)}
    assert shapes["mobile_net_v1/mobile_net_v1_block/depthwise_conv"] == {"w": (3, 3, 1, 32)}
    assert shapes["mobile_net_v1/mobile_net_v1_block/pointwise_conv"] == {"w": (1, 1, 32, 64)}
    assert shapes["mobile_net_v1/mobile_net_v1_block_12/depthwise_conv"] == {
        "w": (3, 3, 1, 1024)}
    assert shapes["mobile_net_v1/logits"] == {"w": (1024, 1000), "b": (1000,)}


def test_every_batch_norm_has_ema_state():
    params, state, _ = _abstract_default()
    norms = [m for m in params if m.rsplit("/", 1)[-1].startswith("batch_norm")]
    assert sorted(state) == sorted(f"{m}/~/{ema}" for m in norms for ema in ("mean_ema",
                                                                               "var_ema"))


def test_without_batch_norm_convs_have_biases_and_there_is_no_state():
    f = hk.transform_with_state(
        lambda x: hk.nets.MobileNetV1(strides=(1,), channels=(8,), num_classes=3,
                                      use_bn=False)(x, is_training=True))
    params, state = jax.eval_shape(f.init, KEY, jax.ShapeDtypeStruct((1, 9, 9, 3), jnp.float32))
    assert _shapes(params) == {
        "mobile_net_v1/conv2_d": {"w": (3, 3, 3, 32), "b": (32,)},
        "mobile_net_v1/mobile_net_v1_block/depthwise_conv": {"w": (3, 3, 1, 32), "b": (32,)},
        "mobile_net_v1/mobile_net_v1_block/pointwise_conv": {"w": (1, 1, 32, 8), "b": (8,)},
        "mobile_net_v1/logits": {"w": (8, 3), "b": (3,)},
    }
    assert state == {}


def _reference(x, p, stride):
    def conv(x, w, stride, padding, groups=1):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), padding,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=groups)

    h = jax.nn.relu(conv(x, p["conv2_d"]["w"], 2, "VALID") + p["conv2_d"]["b"])
    dw = p["mobile_net_v1_block/depthwise_conv"]
    h = jax.nn.relu(conv(h, dw["w"], stride, ((1, 1), (1, 1)), groups=32) + dw["b"])
    pw = p["mobile_net_v1_block/pointwise_conv"]
    h = jax.nn.relu(conv(h, pw["w"], 1, "VALID") + pw["b"])
    return h.mean(axis=(1, 2)) @ p["logits"]["w"] + p["logits"]["b"]


class MobileNetNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_without_batch_norm_matches_reference(self):
        f = hk.transform_with_state(
            lambda x: hk.nets.MobileNetV1(strides=(2,), channels=(8,), num_classes=3,
                                          use_bn=False)(x, is_training=False))
        x = jax.random.normal(jax.random.PRNGKey(1), [2, 11, 11, 3])
        params, _ = jax.eval_shape(f.init, KEY, x)
        rng = np.random.default_rng(0)
        params = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), params)
        out, _ = self.variant(f.apply)(params, {}, None, x)
        p = {k[len("mobile_net_v1/"):]: v for k, v in params.items()}
        expected = jax.jit(_reference, static_argnums=2)(x, p, 2)
        chex.assert_shape(out, (2, 3))
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-4)


def test_initial_conv_is_valid_with_stride_two():
    calls = hk.experimental.eval_summary(
        lambda x: hk.nets.MobileNetV1(strides=(1,), channels=(8,))(x, True))(
        jnp.ones([1, 33, 33, 3]))
    [conv] = [c for c in calls if c.module_details.module.module_name == "mobile_net_v1/conv2_d"]
    assert conv.output_spec.shape == (1, 16, 16, 32)  # (33 - 3) // 2 + 1


def test_strides_and_channels_must_have_the_same_length():
    f = hk.transform_with_state(lambda: hk.nets.MobileNetV1(strides=(1, 2), channels=(8,)))
    with pytest.raises(ValueError, match=r"mobile_net_v1: .*same length.* got 2 strides and "
                                         r"1 channels"):
        f.init(None)
