"""ResNet: API.md §4.1 paths, orders, param counts, strides, v1/v2 blocks and errors."""

import functools
import inspect

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

KEY = jax.random.PRNGKey(0)
IMAGE_224 = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)


@functools.cache
def _abstract_init(depth: int, resnet_v2: bool = False):
    """Shapes and creation order of ResNet<depth>(1000) params/state, without computing."""
    cls = getattr(hk.nets, f"ResNet{depth}")
    f = hk.transform_with_state(lambda x: cls(1000, resnet_v2=resnet_v2)(x, is_training=True))
    seen = {}

    def init(x):
        params, state = f.init(KEY, x)
        seen["params_order"] = list(params)
        seen["state_order"] = list(state)
        seen["order_inside"] = {m: list(b) for m, b in params.items()}
        seen["state_inside"] = {m: list(b) for m, b in state.items()}
        return params, state, f.apply(params, state, None, x)[0]

    params, state, logits = jax.eval_shape(init, IMAGE_224)
    return params, state, logits, seen


def _shapes(params):
    return {m: {n: tuple(v.shape) for n, v in b.items()} for m, b in params.items()}


@pytest.mark.parametrize("depth, n_params, n_state, params_size, state_size", [
    (18, 41, 40, 11_689_512, 19_240),
    (50, 107, 106, 25_557_032, 106_346),
])
def test_bundle_counts_and_sizes_match_haiku(depth, n_params, n_state, params_size, state_size):
    params, state, _, _ = _abstract_init(depth)
    assert (len(params), len(state)) == (n_params, n_state)
    assert hk.data_structures.tree_size(params) == params_size
    assert hk.data_structures.tree_size(state) == state_size


@pytest.mark.parametrize("depth", [18, 50])
def test_logits_shape_at_224(depth):
    *_, logits, _ = _abstract_init(depth)
    assert (logits.shape, logits.dtype) == ((1, 1000), jnp.float32)


def test_resnet50_bottleneck_and_projection_shapes():
    shapes = _shapes(_abstract_init(50)[0])
    block = "res_net50/~/block_group_0/~/block_0/~/"
    assert shapes[block + "shortcut_conv"] == {"w": (1, 1, 64, 256)}
    assert shapes[block + "conv_0"] == {"w": (1, 1, 64, 64)}
    assert shapes[block + "conv_1"] == {"w": (3, 3, 64, 64)}
    assert shapes[block + "conv_2"] == {"w": (1, 1, 64, 256)}
    assert shapes[block + "batchnorm_2"] == {"scale": (1, 1, 1, 256), "offset": (1, 1, 1, 256)}
    assert shapes["res_net50/~/block_group_3/~/block_2/~/conv_2"] == {"w": (1, 1, 512, 2048)}
    assert shapes["res_net50/~/logits"] == {"w": (2048, 1000), "b": (1000,)}
    assert shapes["res_net50/~/initial_conv"] == {"w": (7, 7, 3, 64)}


def test_resnet50_state_paths_are_the_batch_norms_emas():
    _, state, _, seen = _abstract_init(50)
    first = "res_net50/~/block_group_0/~/block_0/~/shortcut_batchnorm/~/mean_ema"
    assert seen["state_order"][:3] == ["res_net50/~/initial_batchnorm/~/mean_ema",
                               "res_net50/~/initial_batchnorm/~/var_ema", first]
    assert set(state[first]) == {"counter", "hidden", "average"}


def test_v1_projection_block_creates_shortcut_before_conv_0():
    order = _abstract_init(18)[3]["params_order"]
    block = "res_net18/~/block_group_1/~/block_0/~/"
    names = [p[len(block):] for p in order if p.startswith(block)]
    assert names == ["shortcut_conv", "shortcut_batchnorm", "conv_0", "batchnorm_0", "conv_1",
                     "batchnorm_1"]


def test_v2_block_order_and_final_batchnorm():
    params, state, _, seen = _abstract_init(18, resnet_v2=True)
    order = seen["params_order"]
    block = "res_net18/~/block_group_1/~/block_0/~/"
    names = [p[len(block):] for p in order if p.startswith(block)]
    assert names == ["batchnorm_0", "shortcut_conv", "conv_0", "batchnorm_1", "conv_1"]
    assert "res_net18/~/initial_batchnorm" not in params
    assert order[-2:] == ["res_net18/~/final_batchnorm", "res_net18/~/logits"]
    assert "res_net18/~/final_batchnorm/~/mean_ema" in state


def test_inside_bundles_keep_creation_order():
    inside = _abstract_init(18)[3]["order_inside"]
    assert inside["res_net18/~/initial_batchnorm"] == ["scale", "offset"]
    assert inside["res_net18/~/logits"] == ["w", "b"]


@pytest.mark.parametrize("depth, blocks", [(34, (3, 4, 6, 3)), (101, (3, 4, 23, 3)),
                                           (152, (3, 8, 36, 3)), (200, (3, 24, 36, 3))])
def test_depth_variants_have_haiku_block_counts(depth, blocks):
    net = getattr(hk.nets, f"ResNet{depth}")
    f = hk.transform_with_state(lambda: [len(g.blocks) for g in net(10).block_groups])
    assert tuple(f.apply({}, {}, None)[0]) == blocks


def test_fixed_depth_signature_matches_haiku():
    assert list(inspect.signature(hk.nets.ResNet50).parameters) == [
        "num_classes", "bn_config", "resnet_v2", "logits_config", "name",
        "initial_conv_config", "strides"]


def test_default_names_are_snake_cased_class_names():
    f = hk.transform_with_state(lambda: (hk.nets.ResNet(
        [1, 1, 1, 1], 2).module_name, hk.nets.ResNet152(2).module_name))
    assert f.apply({}, {}, None)[0] == ("res_net", "res_net152")


def test_class_attributes_expose_block_types():
    assert hk.nets.ResNet.BlockV1.__name__ == "BlockV1"
    assert hk.nets.ResNet.BlockV2.__name__ == "BlockV2"
    assert hk.nets.ResNet.BlockGroup.__name__ == "BlockGroup"


def _tiny(x, is_training, **kwargs):
    kwargs.setdefault("channels_per_group", (8, 16, 16, 16))
    return hk.nets.ResNet([1, 1, 1, 1], num_classes=3, **kwargs)(x, is_training)


@pytest.mark.parametrize("strides, sizes", [((1, 2, 2, 2), [8, 4, 2, 1]),
                                            ((1, 1, 1, 1), [8, 8, 8, 8])])
def test_group_strides_set_output_sizes(strides, sizes):
    calls = hk.experimental.eval_summary(
        lambda x: _tiny(x, True, strides=strides))(jnp.ones([1, 32, 32, 3]))
    groups = [c for c in calls if c.module_details.module.module_name.endswith(
        tuple(f"block_group_{g}" for g in range(4)))]
    assert [c.output_spec.shape[1] for c in groups] == sizes  # 32 -conv/2-> 16 -pool/2-> 8


@pytest.mark.parametrize("arg", ["blocks_per_group", "channels_per_group", "use_projection",
                                 "strides"])
def test_per_group_arguments_need_four_entries(arg):
    kwargs = dict(blocks_per_group=(1, 1, 1, 1), num_classes=2)
    kwargs[arg] = (1, 1, 1)
    f = hk.transform_with_state(lambda: hk.nets.ResNet(**kwargs))
    with pytest.raises(ValueError, match=rf"`{arg}` must be of length 4 .*not 3"):
        f.init(None)


def test_jitted_init_runs_with_zero_logits_weights_and_zero_residual_scale():
    f = hk.transform_with_state(functools.partial(_tiny, bottleneck=True,
                                                  channels_per_group=(8, 8, 8, 8)))
    params, _ = jax.jit(f.init, static_argnums=2)(KEY, jnp.ones([1, 32, 32, 3]), True)
    block = "res_net/~/block_group_0/~/block_0/~/"
    np.testing.assert_array_equal(params[block + "batchnorm_2"]["scale"], 0.0)
    np.testing.assert_array_equal(params[block + "batchnorm_0"]["scale"], 1.0)
    np.testing.assert_array_equal(params["res_net/~/logits"]["w"], 0.0)  # logits start at 0


# ----------------------------------------------------------------------- block numerics


def _conv(x, w, stride):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _bn(x, p):
    mean = x.mean(axis=(0, 1, 2), keepdims=True)
    var = (x ** 2).mean(axis=(0, 1, 2), keepdims=True) - mean ** 2
    return (x - mean) / jnp.sqrt(var + 1e-5) * p["scale"] + p["offset"]


_BN = dict(decay_rate=0.9, eps=1e-5, create_scale=True, create_offset=True)


def _random_like(tree, seed=0):
    # Host-side values shaped like an abstract init: no compilation needed.
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), tree)


def _zeros_like(tree):
    return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), tree)


def _block_reference(x, params, resnet_v2):
    p = {k.split("/")[-1]: v for k, v in params.items()}
    if resnet_v2:
        h = jax.nn.relu(_bn(x, p["batchnorm_0"]))
        shortcut = _conv(h, p["shortcut_conv"]["w"], 2)
        h = _conv(h, p["conv_0"]["w"], 2)
        h = _conv(jax.nn.relu(_bn(h, p["batchnorm_1"])), p["conv_1"]["w"], 1)
        return h + shortcut
    shortcut = _bn(_conv(x, p["shortcut_conv"]["w"], 2), p["shortcut_batchnorm"])
    h = jax.nn.relu(_bn(_conv(x, p["conv_0"]["w"], 2), p["batchnorm_0"]))
    h = _bn(_conv(h, p["conv_1"]["w"], 1), p["batchnorm_1"])
    return jax.nn.relu(h + shortcut)


class BlockNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("v1", False), ("v2", True))
    def test_basic_block_with_projection_matches_reference(self, resnet_v2):
        block_cls = hk.nets.ResNet.BlockV2 if resnet_v2 else hk.nets.ResNet.BlockV1

        def block(x):
            return block_cls(channels=6, stride=2, use_projection=True, bn_config=_BN,
                             bottleneck=False, name="b")(x, True, False)

        f = hk.transform_with_state(block)
        x = jax.random.normal(jax.random.PRNGKey(1), [2, 6, 6, 4])
        params, state = jax.eval_shape(f.init, KEY, x)
        params, state = _random_like(params), _zeros_like(state)
        out, _ = self.variant(f.apply)(params, state, None, x)
        expected = jax.jit(_block_reference, static_argnums=2)(x, params, resnet_v2)
        chex.assert_shape(out, (2, 3, 3, 6))
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-4)
