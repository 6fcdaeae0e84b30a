"""Tests of hk_core/_src/export/quantize.py: int8 weight-only PTQ applied through a getter."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core import checkpoint
from hk_core import export
from hk_core._src.export import quantize as quantize_lib


def _mlp(x):
    return hk.nets.MLP([256, 256, 10])(x)


def _init(fn, *args, **kwargs):
    return hk.transform(fn).init(jax.random.key(0), *args, **kwargs)


def test_quantize_array_has_symmetric_per_column_scales_and_bounded_error():
    w = np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32)
    values, scale = quantize_lib.quantize_array(w, -1)
    np.testing.assert_allclose(scale, np.abs(w).max(axis=0, keepdims=True) / 127, rtol=1e-6)
    assert values.dtype == np.int8 and np.abs(values).max() == 127
    assert np.all(np.abs(values * scale - w) <= scale / 2 + 1e-7)


def test_mlp_weights_become_int8_with_a_scale_per_output_unit():
    x = jnp.ones((2, 64))
    qparams = export.quantize_int8(_mlp, _init(_mlp, x), x)
    assert jax.tree.map(lambda a: (a.dtype.name, a.shape), qparams["mlp/~/linear_0"]) == {
        "w": ("int8", (64, 256)), "w@scale": ("float32", (1, 256)), "b": ("float32", (256,))}


def test_int8_model_matches_float_model_within_quantization_error():
    x = jax.random.normal(jax.random.key(1), (8, 64))
    params = _init(_mlp, x)
    qparams = export.quantize_int8(_mlp, params, x)
    expected = hk.transform(_mlp).apply(params, None, x)
    actual = hk.transform(export.int8_weights(_mlp)).apply(qparams, None, x)
    chex.assert_trees_all_close(actual, expected, atol=0.02 * float(jnp.abs(expected).max()))


def test_int8_model_equals_float_model_on_dequantized_weights():
    x = jax.random.normal(jax.random.key(1), (4, 64))
    qparams = export.quantize_int8(_mlp, _init(_mlp, x), x)
    dequantized = {m: {"w": np.asarray(b["w"], np.float32) * np.asarray(b["w@scale"]),
                       "b": b["b"]} for m, b in qparams.items()}
    chex.assert_trees_all_close(
        jax.jit(hk.transform(export.int8_weights(_mlp)).apply)(qparams, None, x),
        hk.transform(_mlp).apply(dequantized, None, x), rtol=1e-5, atol=1e-5)


def test_int8_weights_take_at_most_027_of_float32_bytes():
    x = jnp.ones((1, 64))
    params = _init(_mlp, x)
    qparams = export.quantize_int8(_mlp, params, x)
    f32 = sum(b["w"].nbytes for b in params.values())
    int8 = sum(b["w"].nbytes + b["w@scale"].nbytes for b in qparams.values())
    assert int8 <= 0.27 * f32, int8 / f32


@pytest.mark.parametrize("layer, scale_shape", [
    (lambda: hk.Conv2D(4, 3), (1, 1, 1, 4)),
    (lambda: hk.Conv2DTranspose(4, 3), (1, 1, 4, 1)),  # kernel + (out, in)
    (lambda: hk.DepthwiseConv2D(2, 3), (1, 1, 1, 4)),
])
def test_conv_scales_are_per_output_channel(layer, scale_shape):
    def forward(x):
        return layer()(x)

    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 2))
    params = _init(forward, x)
    qparams = export.quantize_int8(forward, params, x)
    (bundle,) = qparams.values()
    assert bundle["w@scale"].shape == scale_shape
    out = hk.transform(export.int8_weights(forward)).apply(qparams, None, x)
    expected = hk.transform(forward).apply(params, None, x)
    chex.assert_trees_all_close(out, expected, atol=0.02 * float(jnp.abs(expected).max()))


def test_attention_projections_are_quantized_and_embeddings_are_not():
    def forward(tokens):
        x = hk.Embed(11, 8)(tokens)
        return hk.MultiHeadAttention(num_heads=2, key_size=4, model_size=8,
                                     w_init=hk.initializers.VarianceScaling(1.0))(x, x, x)

    tokens = jnp.arange(6).reshape(1, 6)
    qparams = export.quantize_int8(forward, _init(forward, tokens), tokens)
    int8 = sorted(m for m, b in qparams.items() if b.get("w", jnp.zeros(())).dtype == jnp.int8)
    assert int8 == ["multi_head_attention/key", "multi_head_attention/linear",
                    "multi_head_attention/query", "multi_head_attention/value"]
    assert qparams["embed"]["embeddings"].dtype == jnp.float32


def test_layer_stack_weights_keep_a_scale_per_layer():
    def forward(x):
        return hk.layer_stack(3)(lambda x: jax.nn.relu(hk.Linear(4)(x)))(x)

    x = jax.random.normal(jax.random.key(0), (2, 4))
    params = _init(forward, x)
    (name,) = params
    params[name]["w"] = params[name]["w"] * jnp.array([1.0, 10.0, 100.0])[:, None, None]
    qparams = export.quantize_int8(forward, params, x)
    assert qparams[name]["w@scale"].shape == (3, 1, 4)
    np.testing.assert_allclose(np.asarray(qparams[name]["w@scale"]).max(axis=(1, 2)),
                               np.abs(np.asarray(params[name]["w"])).max(axis=(1, 2)) / 127,
                               rtol=1e-6)
    expected = hk.transform(forward).apply(params, None, x)
    out = hk.transform(export.int8_weights(forward)).apply(qparams, None, x)
    chex.assert_trees_all_close(out, expected, atol=0.02 * float(jnp.abs(expected).max()))


def test_batchnorm_model_with_state_quantizes_its_conv():
    def forward(x, is_training):
        x = hk.Conv2D(3, 3)(x)
        return hk.BatchNorm(True, True, 0.9)(x, is_training=is_training)

    model = hk.transform_with_state(forward)
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 1))
    params, state = model.init(jax.random.key(0), x, is_training=True)
    qparams = export.quantize_int8(forward, params, x, state=state, is_training=False)
    assert qparams["conv2_d"]["w"].dtype == jnp.int8
    assert qparams["batch_norm"] == params["batch_norm"]


def test_quantized_params_round_trip_through_safetensors(tmp_path):
    x = jax.random.normal(jax.random.key(1), (3, 64))
    qparams = export.quantize_int8(_mlp, _init(_mlp, x), x)
    path = tmp_path / "int8.safetensors"
    checkpoint.save_params(path, qparams)
    loaded = checkpoint.load_params(path)
    assert loaded["mlp/~/linear_1"]["w"].dtype == jnp.int8
    apply = hk.transform(export.int8_weights(_mlp)).apply
    chex.assert_trees_all_equal(apply(loaded, None, x), apply(qparams, None, x))


def test_int8_weights_leave_float_params_unchanged():
    x = jax.random.normal(jax.random.key(1), (2, 64))
    params = _init(_mlp, x)
    chex.assert_trees_all_equal(hk.transform(export.int8_weights(_mlp)).apply(params, None, x),
                                hk.transform(_mlp).apply(params, None, x))
