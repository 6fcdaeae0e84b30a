"""Tests of hk_core/_src/export/onnx_export.py: models converted by jax2onnx, run by onnxruntime.

jax2onnx imports Flax and Equinox while converting (it patches their modules); where they
are not installed these tests skip. hk_core itself never imports them.
"""

import importlib.util
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core import export

_MISSING = [m for m in ("jax2onnx", "onnxruntime", "flax") if importlib.util.find_spec(m) is None]
if _MISSING and os.environ.get("HK_CORE_REQUIRE_ONNX"):  # CI's ONNX leg (.ci/onnx_leg.sh)
    raise ImportError(f"HK_CORE_REQUIRE_ONNX is set but {_MISSING} are not installed")
if _MISSING:
    pytest.skip("needs the onnx extra (jax2onnx, onnxruntime and the Flax it converts with)",
                allow_module_level=True)

import onnxruntime  # noqa: E402  (after the skip)

_EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _run(proto, *inputs):
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))[0]


def _digits_mlp(images):
    return hk.nets.MLP([256, 256, 10])(hk.Flatten()(images))


def _convnet_with_batchnorm(images, is_training):
    x = images
    for channels in (16, 32):
        x = hk.Conv2D(channels, kernel_shape=3)(x)
        x = hk.BatchNorm(True, True, 0.9)(x, is_training=is_training)
        x = hk.max_pool(jax.nn.relu(x), window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1),
                        padding="SAME")
    return hk.Linear(10)(hk.Flatten()(x))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((7, 8, 8, 1), np.float32)


@pytest.mark.parametrize("batch", [1, 7])
def test_digits_mlp_matches_apply_at_any_batch(images, batch):
    model = hk.without_apply_rng(hk.transform(_digits_mlp))
    params = model.init(jax.random.key(0), images)
    proto = export.to_onnx(model.apply, params, images)
    np.testing.assert_allclose(_run(proto, images[:batch]),
                               model.apply(params, images[:batch]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7])
def test_convnet_with_batchnorm_in_eval_mode_matches_apply(images, batch):
    model = hk.without_apply_rng(hk.transform_with_state(_convnet_with_batchnorm))
    params, state = model.init(jax.random.key(0), images, is_training=True)
    _, state = model.apply(params, state, images, is_training=True)  # non-trivial averages

    def apply(params, x):
        return model.apply(params, state, x, is_training=False)[0]

    proto = export.to_onnx(apply, params, images)
    np.testing.assert_allclose(_run(proto, images[:batch]), apply(params, images[:batch]),
                               rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def language_model():
    sys.path.insert(0, str(_EXAMPLES))
    import transformer_lm  # noqa: PLC0415  (examples/ is not a package)
    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # the example's defaults: 2 layers, width 64
    return transformer_lm


@pytest.mark.parametrize("batch", [1, 7])
def test_transformer_lm_forward_matches_apply(language_model, batch):
    model = hk.without_apply_rng(hk.transform(language_model.model_fn(vocab_size=30)))
    tokens = np.random.default_rng(1).integers(0, 30, (7, 64)).astype(np.int32)
    params = model.init(jax.random.key(0), tokens)
    proto = export.to_onnx(model.apply, params, tokens)
    np.testing.assert_allclose(_run(proto, tokens[:batch]), model.apply(params, tokens[:batch]),
                               rtol=1e-5, atol=1e-5)


def test_static_batch_and_file_written(tmp_path, images):
    model = hk.without_apply_rng(hk.transform(_digits_mlp))
    params = model.init(jax.random.key(0), images)
    path = tmp_path / "mlp.onnx"
    export.to_onnx(model.apply, params, images, path=path, dynamic_batch=False)
    session = onnxruntime.InferenceSession(str(path))
    assert session.get_inputs()[0].shape == [7, 8, 8, 1]


class _PlatformSpecific(hk.Module):
    def __call__(self, x):
        return jax.lax.platform_dependent(x, cpu=lambda x: x + 1, default=lambda x: x - 1)


class _RandomNoise(hk.Module):
    def __call__(self, x):
        return x + jax.random.uniform(jax.random.key(0), x.shape)


@pytest.mark.parametrize("layer, op", [(_PlatformSpecific, "platform_index"),
                                       (_RandomNoise, "random_bits")])
def test_unconvertible_op_error_names_the_op_and_module_path(layer, op):
    def forward(x):
        return hk.Sequential([hk.Linear(3), layer(name="odd")], name="head")(x)

    model = hk.without_apply_rng(hk.transform(forward))
    x = jnp.ones((2, 4))
    params = model.init(jax.random.key(0), x)
    with pytest.raises(export.UnsupportedOnnxOpError,
                       match=rf"module 'head/odd' uses the JAX operation '{op}'"):
        export.to_onnx(model.apply, params, x)
