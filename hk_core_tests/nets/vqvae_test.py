"""VectorQuantizer and VectorQuantizerEMA against numpy formulas (API.md §4.1)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

KEY = jax.random.PRNGKey(0)
BETA = 0.25
E = np.array([[0.0, 1.0, -2.0],
              [0.0, 1.0, 3.0]], np.float32)  # D=2, K=3: codes (0,0), (1,1), (-2,3)
X = np.array([[[0.1, -0.2], [0.9, 1.3]],
              [[-1.5, 2.0], [0.8, 0.7]]], np.float32)  # [2, 2, D]: 4 vectors


def _numpy_vq(x, e):
    flat = x.reshape(-1, e.shape[0])
    distances = (flat ** 2).sum(1, keepdims=True) - 2 * flat @ e + (e ** 2).sum(0, keepdims=True)
    idx = distances.argmin(1)
    q = e.T[idx].reshape(x.shape)
    counts = np.bincount(idx, minlength=e.shape[1]).astype(np.float32)
    p = counts / len(idx)
    perplexity = np.exp(-(p * np.log(p + 1e-10)).sum())
    mse = ((q - x) ** 2).mean()
    return dict(distances=distances, idx=idx.reshape(x.shape[:-1]), q=q, counts=counts,
                perplexity=perplexity, mse=mse, flat=flat)


def _vq(x, is_training=True):
    return hk.nets.VectorQuantizer(2, 3, commitment_cost=BETA)(x, is_training)


def _vq_ema(x, is_training=True):
    return hk.nets.VectorQuantizerEMA(2, 3, commitment_cost=BETA, decay=0.9,
                                      epsilon=1e-5)(x, is_training)


def test_vq_param_tree_and_uniform_variance_scaling_init():
    params = hk.transform(_vq).init(KEY, X)
    assert jax.tree.map(jnp.shape, params) == {"vector_quantizer": {"embeddings": (2, 3)}}
    embeddings = params["vector_quantizer"]["embeddings"]
    assert np.abs(embeddings).max() <= np.sqrt(3.0 / 2.0)  # fan_in = D = 2
    assert embeddings.dtype == jnp.float32


class VectorQuantizerTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_outputs_match_numpy(self):
        out = self.variant(hk.transform(_vq).apply)({"vector_quantizer": {"embeddings": E}},
                                                    None, X)
        ref = _numpy_vq(X, E)
        chex.assert_trees_all_close(out["distances"], ref["distances"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["encoding_indices"], ref["idx"])
        assert out["encoding_indices"].dtype == jnp.int32
        np.testing.assert_array_equal(out["encodings"], np.eye(3)[ref["idx"].reshape(-1)])
        chex.assert_trees_all_close(out["quantize"], ref["q"], rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_close(out["loss"], (1 + BETA) * ref["mse"], rtol=1e-5)
        chex.assert_trees_all_close(out["perplexity"], ref["perplexity"], rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_quantize_passes_gradients_straight_through(self):
        apply = hk.transform(_vq).apply
        params = {"vector_quantizer": {"embeddings": E}}
        grad = self.variant(jax.grad(lambda x: apply(params, None, x)["quantize"].sum()))(X)
        np.testing.assert_array_equal(grad, np.ones_like(X))

    @chex.variants(with_jit=True, without_jit=True)
    def test_loss_gradient_reaches_codebook_only_through_codebook_term(self):
        apply = hk.transform(_vq).apply

        def loss(e):
            return apply({"vector_quantizer": {"embeddings": e}}, None, X)["loss"]

        grad = self.variant(jax.grad(loss))(E)
        ref = _numpy_vq(X, E)
        expected = np.zeros_like(E)
        for n, k in enumerate(ref["idx"].reshape(-1)):  # d mean((q - sg(x))²) / d e_k
            expected[:, k] += 2 * (E[:, k] - ref["flat"][n]) / X.size
        chex.assert_trees_all_close(grad, expected, rtol=1e-5, atol=1e-6)


def test_vq_loss_is_the_same_when_not_training():
    apply = hk.transform(_vq).apply
    params = {"vector_quantizer": {"embeddings": E}}
    assert apply(params, None, X, True)["loss"] == apply(params, None, X, False)["loss"]


def test_vq_ema_init_state_tree_and_zero_averages():
    f = hk.transform_with_state(_vq_ema)
    params, state = f.init(KEY, X)
    assert params == {}
    assert [(m, list(b)) for m, b in state.items()] == [
        ("vector_quantizer_ema", ["embeddings"]),
        ("vector_quantizer_ema/~/ema_cluster_size", ["hidden", "average", "counter"]),
        ("vector_quantizer_ema/~/ema_dw", ["hidden", "average", "counter"])]
    assert jax.tree.map(jnp.shape, state["vector_quantizer_ema/~/ema_dw"]) == {
        "hidden": (2, 3), "average": (2, 3), "counter": ()}
    np.testing.assert_array_equal(state["vector_quantizer_ema/~/ema_cluster_size"]["average"],
                                  np.zeros(3))
    assert state["vector_quantizer_ema/~/ema_dw"]["counter"] == 0


def _fresh_state():
    zeros = lambda shape: dict(hidden=np.zeros(shape, np.float32),  # noqa: E731
                               average=np.zeros(shape, np.float32),
                               counter=np.zeros([], np.int32))
    return {"vector_quantizer_ema": {"embeddings": E},
            "vector_quantizer_ema/~/ema_cluster_size": zeros([3]),
            "vector_quantizer_ema/~/ema_dw": zeros([2, 3])}


class VectorQuantizerEMATest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_training_step_updates_codebook_with_smoothed_averages(self):
        out, state = self.variant(hk.transform_with_state(_vq_ema).apply)(
            {}, _fresh_state(), None, X)
        ref = _numpy_vq(X, E)
        # First update: zero-debiased averages equal the batch statistics.
        dw = ref["flat"].T @ np.eye(3, dtype=np.float32)[ref["idx"].reshape(-1)]
        n = ref["counts"].sum()
        smoothed = (ref["counts"] + 1e-5) / (n + 3 * 1e-5) * n
        chex.assert_trees_all_close(state["vector_quantizer_ema"]["embeddings"],
                                    dw / smoothed[None, :], rtol=1e-4, atol=1e-5)
        chex.assert_trees_all_close(state["vector_quantizer_ema/~/ema_cluster_size"]["average"],
                                    ref["counts"], rtol=1e-5)
        assert state["vector_quantizer_ema/~/ema_dw"]["counter"] == 1
        chex.assert_trees_all_close(out["loss"], BETA * ref["mse"], rtol=1e-5)
        chex.assert_trees_all_close(out["quantize"], ref["q"], rtol=1e-6, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_eval_leaves_state_unchanged(self):
        state_in = _fresh_state()
        out, state = self.variant(hk.transform_with_state(
            lambda x: _vq_ema(x, is_training=False)).apply)({}, state_in, None, X)
        chex.assert_trees_all_close(state, state_in)
        chex.assert_trees_all_close(out["loss"], BETA * _numpy_vq(X, E)["mse"], rtol=1e-5)


@pytest.mark.parametrize("decay", [-0.1, 1.5])
def test_vq_ema_decay_must_be_in_unit_interval(decay):
    f = hk.transform_with_state(lambda: hk.nets.VectorQuantizerEMA(2, 3, 0.25, decay=decay))
    with pytest.raises(ValueError, match=rf"vector_quantizer_ema: decay must be in range "
                                         rf"\[0, 1\], got {decay}"):
        f.init(None)


@pytest.mark.parametrize("fn, name", [(_vq, "vector_quantizer"),
                                      (_vq_ema, "vector_quantizer_ema")])
def test_inputs_last_axis_must_be_embedding_dim(fn, name):
    with pytest.raises(ValueError, match=rf"{name}: inputs must have a last axis of size "
                                         r"embedding_dim=2, got shape \(4, 5\)"):
        hk.transform_with_state(fn).init(KEY, jnp.ones([4, 5]))
