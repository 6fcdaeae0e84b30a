"""Tests for hk_core/_src/layers/spectral_norm.py (API.md §3.3: SpectralNorm, SNParamsTree)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

SN_EPS = 1e-4


def _sn(n_steps=1, **call_kwargs):
    return hk.transform_with_state(
        lambda w: hk.SpectralNorm(n_steps=n_steps)(w, **call_kwargs))


def _np_power_iteration(w, u, n_steps):
    """Reference power iteration: returns (u, sigma) for matrix `w` starting from `u`."""
    def l2n(x):
        return x / np.sqrt((x ** 2).sum() + SN_EPS)
    for _ in range(n_steps):
        v = l2n(u @ w.T)
        u = l2n(v @ w)
    return u, (v @ w @ u.T)[0, 0]


def _matrix(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_state_tree_is_u0_then_sigma():
    _, state = _sn().init(jax.random.PRNGKey(0), jnp.ones([3, 4]))
    assert [(m, list(b)) for m, b in state.items()] == [("spectral_norm", ["u0", "sigma"])]
    assert state["spectral_norm"]["u0"].shape == (1, 4)
    assert state["spectral_norm"]["sigma"].shape == ()


def test_u0_is_random_normal_from_the_first_key():
    w = _matrix((3, 4))
    f = _sn(update_stats=False)
    _, state = f.init(jax.random.PRNGKey(1), w)
    first_key = jax.random.split(jax.random.PRNGKey(1))[1]
    chex.assert_trees_all_close(state["spectral_norm"]["u0"],
                                jax.random.normal(first_key, (1, 4)), rtol=1e-6)


def test_init_state_holds_initial_u0_and_computed_sigma_not_one():
    w = _matrix((3, 4))
    _, state = _sn().init(jax.random.PRNGKey(0), w)
    u0 = np.asarray(jax.random.normal(jax.random.split(jax.random.PRNGKey(0))[1], (1, 4)))
    _, sigma = _np_power_iteration(w, u0, 1)
    chex.assert_trees_all_close(state["spectral_norm"]["sigma"], sigma, rtol=1e-5)
    chex.assert_trees_all_close(state["spectral_norm"]["u0"], u0, rtol=1e-6)


class SpectralNormNumericsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("one_step", 1), ("three_steps", 3))
    def test_apply_matches_numpy_power_iteration(self, n_steps):
        w = _matrix((5, 3))
        f = _sn(n_steps)
        params, state = f.init(jax.random.PRNGKey(0), w)
        out, new_state = self.variant(f.apply)(params, state, None, w)
        u, sigma = _np_power_iteration(w, np.asarray(state["spectral_norm"]["u0"]), n_steps)
        chex.assert_trees_all_close(out, w / sigma, rtol=1e-5)
        chex.assert_trees_all_close(new_state["spectral_norm"]["u0"], u, rtol=1e-5)
        chex.assert_trees_all_close(new_state["spectral_norm"]["sigma"], sigma, rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_repeated_updates_converge_to_largest_singular_value(self):
        w = _matrix((4, 4))
        f = _sn(5)
        params, state = f.init(jax.random.PRNGKey(0), w)
        apply = self.variant(f.apply)
        for _ in range(4):
            _, state = apply(params, state, None, w)
        np.testing.assert_allclose(float(state["spectral_norm"]["sigma"]),
                                   np.linalg.svd(w, compute_uv=False)[0], rtol=1e-3)

    @chex.variants(with_jit=True, without_jit=True)
    def test_rank3_input_is_normalized_as_flattened_matrix(self):
        w = _matrix((2, 3, 4))
        f = _sn()
        params, state = f.init(jax.random.PRNGKey(0), w)
        out, _ = self.variant(f.apply)(params, state, None, w)
        _, sigma = _np_power_iteration(w.reshape(6, 4), np.asarray(state["spectral_norm"]["u0"]),
                                       1)
        chex.assert_shape(out, (2, 3, 4))
        chex.assert_trees_all_close(out, w / sigma, rtol=1e-5)


def test_update_stats_false_leaves_state_unchanged():
    w = _matrix((3, 3))
    params, state = _sn().init(jax.random.PRNGKey(0), w)
    _, new_state = _sn(update_stats=False).apply(params, state, None, w)
    chex.assert_trees_all_equal(new_state, state)


def test_no_gradient_flows_through_power_iteration():
    w = _matrix((3, 3))
    f = _sn()
    params, state = f.init(jax.random.PRNGKey(0), w)
    u0 = np.asarray(state["spectral_norm"]["u0"])
    grad = jax.grad(lambda w: f.apply(params, state, None, w)[0].sum())(w)
    u, sigma = _np_power_iteration(w, u0, 1)
    v = u0 @ w.T
    v = v / np.sqrt((v ** 2).sum() + SN_EPS)
    # d/dw sum(w / (v w uᵀ)) with u, v held constant.
    expected = np.ones_like(w) / sigma - w.sum() / sigma ** 2 * (v.T @ u)
    chex.assert_trees_all_close(grad, expected, rtol=1e-4, atol=1e-6)


def test_sigma_property_defaults_to_one_and_u0_property_reads_state():
    def f(w):
        sn = hk.SpectralNorm()
        before = sn.sigma
        sn(w)
        return before, sn.u0

    (before, u0), state = hk.transform_with_state(f).apply({}, {}, jax.random.PRNGKey(0),
                                                           jnp.eye(2))
    assert float(before) == 1.0
    chex.assert_trees_all_equal(u0, state["spectral_norm"]["u0"])


@pytest.mark.parametrize("shape", [(), (3,)])
def test_scalar_or_vector_raises_naming_module_and_shape(shape):
    with pytest.raises(ValueError, match=r"spectral_norm: Spectral normalization is not well "
                                         r"defined for scalar or vector inputs"):
        _sn().init(jax.random.PRNGKey(0), jnp.ones(shape))


def test_rank3_with_error_on_non_matrix_raises():
    with pytest.raises(ValueError, match=r"spectral_norm: Input is 3D but error_on_non_matrix is "
                                         r"True \(shape \(2, 3, 4\)"):
        _sn(error_on_non_matrix=True).init(jax.random.PRNGKey(0), jnp.ones([2, 3, 4]))


def test_zero_steps_raises():
    with pytest.raises(ValueError, match=r"spectral_norm: `n_steps` must be at least 1, got 0"):
        _sn(0).init(jax.random.PRNGKey(0), jnp.ones([2, 2]))


# SNParamsTree


def _tree():
    return {"mlp/~/linear_0": {"w": _matrix((2, 3)), "b": np.zeros([3], np.float32)},
            "lin": {"w": _matrix((3, 3), seed=1)}}


def test_sn_params_tree_mangles_names_without_trailing_underscore():
    f = hk.transform_with_state(lambda t: hk.SNParamsTree(ignore_regex=".*/b")(t))
    _, state = f.init(jax.random.PRNGKey(0), _tree())
    assert sorted(state) == ["sn_params_tree/lin__w", "sn_params_tree/mlp___tilde__linear_0__w"]
    assert list(state["sn_params_tree/lin__w"]) == ["u0", "sigma"]


def test_sn_params_tree_normalizes_leaves_and_passes_ignored_ones_through():
    f = hk.transform_with_state(lambda t: hk.SNParamsTree(ignore_regex="mlp/~/linear_0/b")(t))
    tree = _tree()
    params, state = f.init(jax.random.PRNGKey(0), tree)
    out, _ = f.apply(params, state, None, tree)
    u0 = np.asarray(state["sn_params_tree/lin__w"]["u0"])
    _, sigma = _np_power_iteration(tree["lin"]["w"], u0, 1)
    chex.assert_trees_all_close(out["lin"]["w"], tree["lin"]["w"] / sigma, rtol=1e-5)
    assert out["mlp/~/linear_0"]["b"] is tree["mlp/~/linear_0"]["b"]
    assert type(out) is dict and all(type(b) is dict for b in out.values())


def test_sn_params_tree_vector_leaf_raises_unless_ignored():
    f = hk.transform_with_state(lambda t: hk.SNParamsTree()(t))
    with pytest.raises(ValueError, match=r"sn_params_tree/mlp___tilde__linear_0__b: Spectral "
                                         r"normalization is not well defined"):
        f.init(jax.random.PRNGKey(0), _tree())
