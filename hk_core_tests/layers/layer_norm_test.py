"""Tests for hk_core/_src/layers/layer_norm.py (API.md §3.3: LayerNorm, InstanceNorm, RMSNorm)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

EPS = 1e-5
SHAPE = (3, 4, 5, 6)


def _data(shape, seed=0):
    return (np.random.default_rng(seed).normal(size=shape) * 3.0 + 1.0).astype(np.float32)


def _np_layer_norm(x, axes, scale=1.0, offset=0.0):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * scale + offset


def _shapes(params):
    return {m: {n: v.shape for n, v in b.items()} for m, b in params.items()}


def _layer_norm(axis=-1, create_scale=True, create_offset=True, **kwargs):
    return hk.transform(lambda x, scale=None, offset=None: hk.LayerNorm(
        axis, create_scale, create_offset, **kwargs)(x, scale=scale, offset=offset))


# LayerNorm


@pytest.mark.parametrize("param_axis,expected", [
    (None, (6,)),
    (-1, (6,)),
    (3, (6,)),
    (0, (3, 1, 1, 1)),
    (-2, (1, 1, 5, 1)),
    (slice(1, 3), (1, 4, 5, 1)),
    ([1, 2, 3], (1, 4, 5, 6)),
])
def test_layer_norm_param_shape_follows_param_axis(param_axis, expected):
    f = _layer_norm(axis=-1, param_axis=param_axis)
    params = f.init(None, jnp.ones(SHAPE))
    assert _shapes(params) == {"layer_norm": {"scale": expected, "offset": expected}}
    assert list(params["layer_norm"]) == ["scale", "offset"]


def test_layer_norm_non_final_axis_without_param_axis_keeps_last_axis_params():
    params = _layer_norm(axis=0).init(None, jnp.ones(SHAPE))
    assert _shapes(params) == {"layer_norm": {"scale": (6,), "offset": (6,)}}


def test_layer_norm_params_take_input_dtype():
    params = _layer_norm().init(None, jnp.ones([2, 3], jnp.bfloat16))
    assert params["layer_norm"]["scale"].dtype == jnp.bfloat16


class LayerNormNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("last", -1, (3,)),
        ("slice", slice(1, None), (1, 2, 3)),
        ("list", [1, 2], (1, 2)),
        ("first", 0, (0,)),
    )
    def test_layer_norm_matches_numpy(self, axis, np_axes):
        x = _data(SHAPE)
        f = _layer_norm(axis=axis)
        params = jax.tree.map(lambda p: p + 0.5, f.init(None, x))
        out = self.variant(f.apply)(params, None, x)
        chex.assert_trees_all_close(out, _np_layer_norm(x, np_axes, 1.5, 0.5), rtol=1e-4,
                                    atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_fast_variance_matches_numpy(self):
        x = _data((4, 8))
        f = _layer_norm(use_fast_variance=True)
        out = self.variant(f.apply)(f.init(None, x), None, x)
        chex.assert_trees_all_close(out, _np_layer_norm(x, (1,)), rtol=1e-4, atol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_scale_and_offset_passed_at_call_are_used(self):
        x = _data((4, 3))
        f = _layer_norm(create_scale=False, create_offset=False)
        scale, offset = np.array([1.0, 2.0, 3.0], np.float32), np.float32(-1.0)
        out = self.variant(f.apply)({}, None, x, scale, offset)
        chex.assert_trees_all_close(out, _np_layer_norm(x, (1,), scale, offset), rtol=1e-4,
                                    atol=1e-5)


@pytest.mark.parametrize("axis", [1.5, "a", [0, "b"], None])
def test_layer_norm_bad_axis_raises_in_constructor(axis):
    with pytest.raises(ValueError, match=r"`axis` should be an int, slice or iterable of ints"):
        _layer_norm(axis=axis).init(None, jnp.ones([2, 3]))


def test_layer_norm_bad_param_axis_raises():
    with pytest.raises(ValueError, match=r"`param_axis` should be an int, slice or iterable"):
        _layer_norm(param_axis=2.0).init(None, jnp.ones([2, 3]))


def test_layer_norm_axis_out_of_range_names_module_and_rank():
    with pytest.raises(ValueError, match=r"layer_norm: `axis`=3 is out of range for inputs of "
                                         r"rank 2"):
        _layer_norm(axis=3).init(None, jnp.ones([2, 3]))


@pytest.mark.parametrize("what", ["scale", "offset"])
def test_layer_norm_init_for_uncreated_param_raises(what):
    f = _layer_norm(**{f"create_{what}": False, f"{what}_init": jnp.ones})
    with pytest.raises(ValueError, match=rf"layer_norm: Cannot set `{what}_init` if "
                                         rf"`create_{what}=False`"):
        f.init(None, jnp.ones([2, 3]))


def test_layer_norm_passing_created_scale_at_call_raises():
    with pytest.raises(ValueError, match=r"layer_norm: Cannot pass `scale` at call time"):
        _layer_norm().init(None, jnp.ones([2, 3]), scale=jnp.ones([3]))


# InstanceNorm


@pytest.mark.parametrize("data_format,shape,param_shape", [
    ("channels_last", (2, 4, 4, 3), (3,)),
    ("NHWC", (2, 4, 4, 3), (3,)),
    ("channels_first", (2, 3, 4, 4), (1, 3, 1, 1)),
    ("NCW", (2, 3, 5), (1, 3, 1)),
])
def test_instance_norm_param_shapes(data_format, shape, param_shape):
    f = hk.transform(lambda x: hk.InstanceNorm(True, True, data_format=data_format)(x))
    params = f.init(None, jnp.ones(shape))
    assert _shapes(params) == {"instance_norm": {"scale": param_shape, "offset": param_shape}}


def test_instance_norm_is_a_layer_norm():
    assert issubclass(hk.InstanceNorm, hk.LayerNorm)


class InstanceNormNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("channels_last", "NHWC", (2, 3, 4, 2), (1, 2)),
        ("channels_first", "NCHW", (2, 2, 3, 4), (2, 3)),
    )
    def test_instance_norm_normalizes_spatial_axes_per_example_and_channel(
            self, data_format, shape, np_axes):
        x = _data(shape)
        f = hk.transform(lambda x: hk.InstanceNorm(True, True, data_format=data_format)(x))
        out = self.variant(f.apply)(f.init(None, x), None, x)
        chex.assert_trees_all_close(out, _np_layer_norm(x, np_axes), rtol=1e-4, atol=1e-5)


# RMSNorm


def _rms_norm(axis=-1, **kwargs):
    return hk.transform(lambda x: hk.RMSNorm(axis, **kwargs)(x))


class RMSNormNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("last", -1, (3,)), ("spatial", slice(1, 3), (1, 2)))
    def test_rms_norm_matches_numpy(self, axis, np_axes):
        x = _data(SHAPE)
        f = _rms_norm(axis)
        params = jax.tree.map(lambda p: p * 2.0, f.init(None, x))
        out = self.variant(f.apply)(params, None, x)
        expected = x / np.sqrt((x ** 2).mean(axis=np_axes, keepdims=True) + EPS) * 2.0
        chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("param_axis,expected", [(None, (6,)), (0, (3, 1, 1, 1)),
                                                 (slice(1, 3), (1, 4, 5, 1))])
def test_rms_norm_scale_shape_follows_param_axis(param_axis, expected):
    params = _rms_norm(param_axis=param_axis).init(None, jnp.ones(SHAPE))
    assert _shapes(params) == {"rms_norm": {"scale": expected}}


def test_rms_norm_without_scale_has_no_params():
    x = _data((2, 4))
    f = _rms_norm(create_scale=False)
    params = f.init(None, x)
    assert params == {}
    expected = x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + EPS)
    chex.assert_trees_all_close(f.apply(params, None, x), expected, rtol=1e-5)


def test_rms_norm_without_scale_ignores_param_axis():
    # param_axis only shapes the scale; without one it is not resolved, so any value works.
    x = _data((2, 4))
    f = _rms_norm(create_scale=False, param_axis=5)
    expected = x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + EPS)
    chex.assert_trees_all_close(f.apply(f.init(None, x), None, x), expected, rtol=1e-5)


def test_rms_norm_scale_init_without_scale_raises():
    with pytest.raises(ValueError, match=r"rms_norm: Cannot set `scale_init` if "
                                         r"`create_scale=False`"):
        _rms_norm(create_scale=False, scale_init=jnp.ones).init(None, jnp.ones([2, 3]))


def test_rms_norm_bad_axis_raises():
    with pytest.raises(ValueError, match=r"`axis` should be an int, slice or iterable of ints"):
        _rms_norm(axis="last").init(None, jnp.ones([2, 3]))


def test_layer_norm_accepts_an_array_eps():
    # A Python eps takes the jitted path; an array eps the inline one: same result.
    x = _data(SHAPE)
    f_float = hk.transform(lambda x: hk.LayerNorm(-1, True, True, eps=1e-3)(x))
    f_array = hk.transform(lambda x: hk.LayerNorm(-1, True, True, eps=jnp.asarray(1e-3))(x))
    params = f_float.init(None, x)
    chex.assert_trees_all_close(f_array.apply(params, None, x), f_float.apply(params, None, x),
                                rtol=1e-6)


def test_deep_stack_of_layer_norms_traces_each_signature_once():
    # Every LayerNorm of one input signature reuses one traced computation: the jaxpr
    # holds one call per layer, each to the same inner jaxpr.
    def f(x):
        for _ in range(4):
            x = hk.LayerNorm(-1, True, True)(x)
        return x

    x = _data((2, 6))
    params = hk.transform(f).init(None, x)
    jaxpr = jax.make_jaxpr(lambda p: hk.transform(f).apply(p, None, x))(params).jaxpr
    inner = [eqn.params["jaxpr"] for eqn in jaxpr.eqns if "jaxpr" in eqn.params]
    assert len(inner) == 4
    assert all(j is inner[0] for j in inner)
