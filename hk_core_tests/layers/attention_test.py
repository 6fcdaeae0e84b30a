"""Tests for hk_core/_src/layers/attention.py (API.md §3.7)."""

import functools
import warnings

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.layers import attention

_W_INIT = hk.initializers.VarianceScaling(1.0)


def _mha_fn(num_heads=2, key_size=3, **kwargs):
    def f(query, key, value, mask=None):
        mha = hk.MultiHeadAttention(num_heads, key_size, w_init=_W_INIT, **kwargs)
        return mha(query, key, value, mask)
    return hk.transform(f)


def _np_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _np_mha(params, query, key, value, mask, num_heads, key_size, value_size):
    """Reference written from the formula: project, softmax(q.k/sqrt(d)) over T, project."""
    p = {name.rsplit("/", 1)[-1]: {k: np.asarray(v, np.float64) for k, v in b.items()}
         for name, b in params.items()}
    query, key, value = (np.asarray(x, np.float64) for x in (query, key, value))

    def heads(x, layer, size):
        y = x @ p[layer]["w"] + p[layer]["b"]
        return y.reshape(*x.shape[:-1], num_heads, size)

    q, k, v = heads(query, "query", key_size), heads(key, "key", key_size), heads(
        value, "value", value_size)
    logits = np.einsum("...thd,...Thd->...htT", q, k) / np.sqrt(key_size)
    if mask is not None:
        logits = np.where(mask, logits, -1e30)
    out = np.einsum("...htT,...Thd->...thd", _np_softmax(logits), v)
    out = out.reshape(*out.shape[:-2], -1)
    return out @ p["linear"]["w"] + p["linear"]["b"]


def _inputs(batch=(2,), t_query=4, t_key=5, dims=(3, 6, 7), seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    query = jax.random.normal(keys[0], (*batch, t_query, dims[0]))
    key = jax.random.normal(keys[1], (*batch, t_key, dims[1]))
    value = jax.random.normal(keys[2], (*batch, t_key, dims[2]))
    return query, key, value


def _mask(shape, seed=1):
    return jax.random.bernoulli(jax.random.PRNGKey(seed), 0.6, shape)


def test_init_creates_projections_in_haiku_order_and_shapes():
    query, key, value = _inputs(dims=(3, 6, 7))
    f = _mha_fn(num_heads=2, key_size=4, value_size=5, model_size=9)
    params = f.init(jax.random.PRNGKey(0), query, key, value)
    assert list(params) == ["multi_head_attention/query", "multi_head_attention/key",
                            "multi_head_attention/value", "multi_head_attention/linear"]
    assert jax.tree.map(jnp.shape, params) == {
        "multi_head_attention/query": {"w": (3, 8), "b": (8,)},
        "multi_head_attention/key": {"w": (6, 8), "b": (8,)},
        "multi_head_attention/value": {"w": (7, 10), "b": (10,)},
        "multi_head_attention/linear": {"w": (10, 9), "b": (9,)},
    }


def test_defaults_value_size_to_key_size_and_model_size_to_heads_times_key_size():
    query, key, value = _inputs(dims=(3, 3, 3))
    params = _mha_fn(num_heads=3, key_size=2).init(0, query, key, value)
    assert params["multi_head_attention/value"]["w"].shape == (3, 6)
    assert params["multi_head_attention/linear"]["w"].shape == (6, 6)


def test_without_bias_creates_only_weights():
    query, key, value = _inputs()
    params = _mha_fn(with_bias=False).init(0, query, key, value)
    assert all(list(bundle) == ["w"] for bundle in params.values())


def test_b_init_initialises_every_bias():
    query, key, value = _inputs()
    params = _mha_fn(b_init=hk.initializers.Constant(0.5)).init(0, query, key, value)
    for bundle in params.values():
        np.testing.assert_array_equal(bundle["b"], np.full(bundle["b"].shape, 0.5, np.float32))


class MultiHeadAttentionNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("fused_no_mask", dict(), None),
        ("fused_with_mask", dict(), (2, 2, 4, 5)),
        ("fused_head_broadcast_mask", dict(), (2, 1, 4, 5)),
        ("explicit_value_and_model_size", dict(value_size=4, model_size=5), (2, 2, 4, 5)),
    )
    def test_apply_matches_explicit_softmax_reference(self, kwargs, mask_shape):
        query, key, value = _inputs()
        mask = None if mask_shape is None else _mask(mask_shape)
        f = _mha_fn(num_heads=2, key_size=3, **kwargs)
        params = f.init(jax.random.PRNGKey(0), query, key, value, mask)
        out = self.variant(f.apply)(params, None, query, key, value, mask)
        expected = _np_mha(params, query, key, value, mask, 2, 3, kwargs.get("value_size", 3))
        chex.assert_trees_all_close(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unbatched_inputs_match_reference(self):
        query, key, value = _inputs(batch=())
        f = _mha_fn()
        params = f.init(0, query, key, value)
        out = self.variant(f.apply)(params, None, query, key, value)
        chex.assert_shape(out, (4, 6))
        expected = _np_mha(params, query, key, value, None, 2, 3, 3)
        chex.assert_trees_all_close(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_several_batch_dims_with_mask_match_reference(self):
        query, key, value = _inputs(batch=(2, 3))
        mask = _mask((2, 1, 2, 4, 5))
        f = _mha_fn()
        params = f.init(0, query, key, value, mask)
        out = self.variant(f.apply)(params, None, query, key, value, mask)
        chex.assert_shape(out, (2, 3, 4, 6))
        expected = _np_mha(params, query, key, value, mask, 2, 3, 3)
        chex.assert_trees_all_close(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)


    @chex.variants(with_jit=True, without_jit=True)
    def test_fully_masked_rows_give_mean_of_values_like_haiku(self):
        query, key, value = _inputs()
        mask = _mask((2, 2, 4, 5)).at[:, :, 1, :].set(False)
        f = _mha_fn()
        params = f.init(0, query, key, value)
        out = self.variant(f.apply)(params, None, query, key, value, mask)
        expected = _np_mha(params, query, key, value, mask, 2, 3, 3)
        chex.assert_trees_all_close(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch, mask_shape", [
    ((2,), None),
    ((2,), (2, 2, 4, 5)),
    ((2,), "fully_masked_rows"),
    ((2,), (1, 1, 4, 5)),
    ((), (2, 4, 5)),
    ((3, 2), (1, 2, 2, 1, 5)),
])
@pytest.mark.parametrize("may_use_cudnn", [False, True])
def test_fused_path_equals_explicit_path(monkeypatch, batch, mask_shape, may_use_cudnn):
    # True runs the GPU-only fix-up of fully masked rows (JAX still picks XLA on CPU).
    monkeypatch.setattr(attention, "_may_use_cudnn", lambda: may_use_cudnn)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    q = jax.random.normal(keys[0], (*batch, 4, 2, 3))
    k = jax.random.normal(keys[1], (*batch, 5, 2, 3))
    v = jax.random.normal(keys[2], (*batch, 5, 2, 3))
    if mask_shape == "fully_masked_rows":
        mask = _mask((*batch, 2, 4, 5)).at[..., 0, 2, :].set(False)
    else:
        mask = None if mask_shape is None else _mask(mask_shape)
    scale = np.sqrt(3).astype(np.float32)
    fused = jax.jit(functools.partial(attention.fused_attention, scale=scale))(q, k, v, mask)
    explicit = jax.jit(functools.partial(attention.reference_attention, scale=scale))(q, k, v,
                                                                                      mask)
    chex.assert_trees_all_close(fused, explicit, rtol=1e-5, atol=1e-6)


def test_bfloat16_fused_path_is_close_to_float32_explicit_path():
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    q, k, v = (jax.random.normal(key, (2, 4, 2, 8)) for key in keys)
    expected = attention.reference_attention(q, k, v, None, np.sqrt(8).astype(np.float32))
    low = [x.astype(jnp.bfloat16) for x in (q, k, v)]
    out = attention.fused_attention(*low, None, np.sqrt(8).astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    chex.assert_trees_all_close(out.astype(jnp.float32), expected, atol=5e-2, rtol=5e-2)


def test_integer_mask_acts_like_boolean_mask():
    query, key, value = _inputs()
    mask = _mask((2, 2, 4, 5))
    f = _mha_fn()
    params = f.init(0, query, key, value)
    apply = jax.jit(f.apply)
    chex.assert_trees_all_close(apply(params, None, query, key, value, mask.astype(jnp.int32)),
                                apply(params, None, query, key, value, mask), rtol=1e-6)


@pytest.mark.parametrize("kwargs, may_use_cudnn, is_fused", [
    (dict(), True, True),
    (dict(value_size=4), True, False),  # dot_product_attention needs key and value heads alike
    (dict(), False, False),  # off GPU: Haiku's explicit einsum + softmax, Haiku's gradients
])
def test_dot_product_attention_runs_exactly_when_semantics_allow(monkeypatch, kwargs,
                                                                 may_use_cudnn, is_fused):
    monkeypatch.setattr(attention, "_may_use_cudnn", lambda: may_use_cudnn)
    calls = []
    original = jax.nn.dot_product_attention

    def spy(*args, **kw):
        calls.append(kw.get("implementation", "missing"))
        return original(*args, **kw)

    monkeypatch.setattr(jax.nn, "dot_product_attention", spy)
    query, key, value = _inputs()
    f = _mha_fn(**kwargs)
    f.apply(f.init(0, query, key, value), None, query, key, value)
    # One call at init, one at apply, letting JAX pick the kernel.
    assert calls == ([None, None] if is_fused else [])


@pytest.mark.parametrize("may_use_cudnn, fixed_up", [(False, False), (True, True)])
def test_fully_masked_row_fix_up_is_traced_only_where_cudnn_may_run(monkeypatch,
                                                                    may_use_cudnn, fixed_up):
    monkeypatch.setattr(attention, "_may_use_cudnn", lambda: may_use_cudnn)
    calls = []
    original = jax.nn.dot_product_attention

    def spy(*args, **kw):
        calls.append(kw["implementation"])
        return original(*args, **kw)

    monkeypatch.setattr(jax.nn, "dot_product_attention", spy)
    q = k = v = jnp.ones([1, 4, 2, 3])
    mask = _mask((1, 2, 4, 4))
    jaxpr = jax.make_jaxpr(lambda *a: attention.fused_attention(*a, np.float32(2.0)))(
        q, k, v, mask)
    primitives = {eqn.primitive.name for eqn in jaxpr.jaxpr.eqns}
    assert ("reduce_or" in primitives) == fixed_up  # the fix-up's jnp.any over each row
    assert calls == [None if may_use_cudnn else "xla"]


def test_bfloat16_inputs_give_bfloat16_output_close_to_float32():
    query, key, value = _inputs()
    f = _mha_fn()
    params = f.init(0, query, key, value)
    expected = f.apply(params, None, query, key, value)
    low = jax.tree.map(lambda x: x.astype(jnp.bfloat16), (params, query, key, value))
    out = f.apply(low[0], None, *low[1:])
    assert out.dtype == jnp.bfloat16
    chex.assert_trees_all_close(out.astype(jnp.float32), expected, atol=0.1, rtol=0.1)


def test_missing_w_init_is_a_value_error():
    f = hk.transform(lambda: hk.MultiHeadAttention(2, 3))
    with pytest.raises(ValueError, match="provide a weight initializer: `w_init`"):
        f.init(None)


def test_both_w_init_and_scale_is_a_value_error():
    f = hk.transform(lambda: hk.MultiHeadAttention(2, 3, 1.0, w_init=_W_INIT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="Please provide only `w_init`, not `w_init_scale`"):
            f.init(None)


def test_w_init_scale_warns_and_means_variance_scaling():
    query, key, value = _inputs()

    def with_scale(q, k, v):
        return hk.MultiHeadAttention(2, 3, 0.5)(q, k, v)

    def with_init(q, k, v):
        return hk.MultiHeadAttention(2, 3, w_init=hk.initializers.VarianceScaling(0.5))(q, k, v)

    with pytest.warns(DeprecationWarning, match="w_init_scale is deprecated"):
        scaled = hk.transform(with_scale).init(jax.random.PRNGKey(7), query, key, value)
    explicit = hk.transform(with_init).init(jax.random.PRNGKey(7), query, key, value)
    chex.assert_trees_all_equal(scaled, explicit)


def test_mask_of_wrong_rank_names_module_and_both_ranks():
    query, key, value = _inputs()
    f = _mha_fn()
    expected = r"multi_head_attention: Mask dimensionality 2 must match logits dimensionality 4"
    with pytest.raises(ValueError, match=expected):
        f.init(0, query, key, value, jnp.ones((4, 5), bool))


def test_mask_that_does_not_broadcast_names_module_and_shapes():
    query, key, value = _inputs()
    f = _mha_fn()
    expected = (r"multi_head_attention: mask of shape \(2, 2, 3, 5\) does not broadcast to the "
                r"logits shape .* = \(2, 2, 4, 5\)")
    with pytest.raises(ValueError, match=expected):
        f.init(0, query, key, value, jnp.ones((2, 2, 3, 5), bool))


def test_rank_one_query_names_module_and_shape():
    _, key, value = _inputs(batch=())
    f = _mha_fn()
    with pytest.raises(ValueError, match=r"multi_head_attention: query must have rank >= 2 .*"
                                         r"got shape \(3,\)"):
        f.init(0, jnp.ones((3,)), key, value)


def test_key_and_value_of_different_lengths_name_both_shapes():
    query, key, _ = _inputs()
    f = _mha_fn()
    with pytest.raises(ValueError, match=r"multi_head_attention: key and value must have the "
                                         r"same sequence length T, got key shape \(2, 5, 6\) "
                                         r"\(T=5\) and value shape \(2, 4, 7\) \(T=4\)"):
        f.init(0, query, key, jnp.ones((2, 4, 7)))


def test_jitted_apply_traces_once_for_same_shapes():
    chex.clear_trace_counter()
    query, key, value = _inputs()
    f = _mha_fn()
    params = f.init(0, query, key, value)
    apply = jax.jit(chex.assert_max_traces(f.apply, n=1))
    for scale in (1.0, 2.0):
        apply(params, None, scale * query, key, value)
