"""Tests for ``hk.Embed`` and ``hk.EmbedLookupStyle`` (API.md §3.5)."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

TABLE = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _embed_apply(variant, **kwargs):
    call_kwargs = kwargs.pop("call_kwargs", {})
    f = hk.transform(lambda ids: hk.Embed(4, 3, **kwargs)(ids, **call_kwargs))
    return variant(f.apply)


class EmbedLookupTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("array_index", "ARRAY_INDEX"), ("one_hot", "ONE_HOT"), ("lower_case", "one_hot"),
        ("enum", hk.EmbedLookupStyle.ONE_HOT))
    def test_lookup_returns_rows_of_table(self, style):
        ids = jnp.array([[0, 3], [2, 2], [1, 0]])
        out = _embed_apply(self.variant, lookup_style=style)({"embed": {"embeddings": TABLE}},
                                                              None, ids)
        chex.assert_trees_all_close(out, TABLE[np.asarray(ids)], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_array_index_clamps_out_of_range_and_wraps_negative_ids(self):
        out = _embed_apply(self.variant)({"embed": {"embeddings": TABLE}}, None,
                                         jnp.array([5, -1]))
        chex.assert_trees_all_close(out, TABLE[[3, 3]])

    @chex.variants(with_jit=True, without_jit=True)
    def test_call_lookup_style_overrides_constructor(self):
        apply = _embed_apply(self.variant, lookup_style="ARRAY_INDEX",
                             call_kwargs={"lookup_style": "ONE_HOT"})
        # ONE_HOT of an out-of-range id is an all-zero row, unlike the clamped ARRAY_INDEX.
        out = apply({"embed": {"embeddings": TABLE}}, None, jnp.array([1, 7]))
        chex.assert_trees_all_close(out, np.stack([TABLE[1], np.zeros(3, np.float32)]))


def test_init_creates_vocab_by_dim_table_with_truncated_normal_stddev_one():
    params = hk.transform(lambda ids: hk.Embed(vocab_size=6, embed_dim=2)(ids)).init(
        jax.random.PRNGKey(0), jnp.zeros((3,), jnp.int32))
    key = jax.random.split(jax.random.PRNGKey(0))[1]  # first key of the init sequence
    expected = jax.random.truncated_normal(key, -2.0, 2.0, (6, 2))
    assert jax.tree.map(jnp.shape, params) == {"embed": {"embeddings": (6, 2)}}
    chex.assert_trees_all_close(params["embed"]["embeddings"], expected, rtol=1e-6)


def test_output_shape_is_ids_shape_plus_embed_dim():
    f = hk.transform(lambda ids: hk.Embed(5, 7)(ids))
    out = jax.eval_shape(lambda ids: f.apply(f.init(jax.random.PRNGKey(0), ids), None, ids),
                         jnp.zeros((2, 3, 4), jnp.int32))
    assert out.shape == (2, 3, 4, 7)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_embedding_matrix_is_initial_value_and_keeps_its_dtype(dtype):
    matrix = TABLE.astype(dtype)
    params = hk.transform(lambda ids: hk.Embed(embedding_matrix=matrix)(ids)).init(
        None, jnp.zeros((1,), jnp.int32))
    table = params["embed"]["embeddings"]
    assert table.dtype == dtype
    chex.assert_trees_all_equal(np.asarray(table), matrix)


def test_embedding_matrix_sizes_must_match_given_sizes():
    with pytest.raises(ValueError, match=r"embed: An `embedding_matrix` of shape \(4, 3\) was "
                                         r"supplied but the `vocab_size` of 5 or `embed_dim` of "
                                         r"None do not match it"):
        hk.transform(lambda: hk.Embed(vocab_size=5, embedding_matrix=TABLE)).init(None)


@pytest.mark.parametrize("kwargs", [dict(vocab_size=4), dict(embed_dim=3), {}])
def test_missing_matrix_and_sizes_raises_value_error(kwargs):
    with pytest.raises(ValueError, match=r"embed: hk.Embed must be supplied either with an "
                                         r"initial `embedding_matrix` or with `embed_dim` and "
                                         r"`vocab_size`"):
        hk.transform(lambda: hk.Embed(**kwargs)).init(None)


def test_float_ids_raise_value_error_naming_module_and_dtype():
    f = hk.transform(lambda ids: hk.Embed(4, 3, name="tokens")(ids))
    with pytest.raises(ValueError, match=r"tokens: hk.Embed's __call__ method must take an array "
                                         r"of integer dtype but was called with an array of "
                                         r"float32"):
        f.init(jax.random.PRNGKey(0), jnp.zeros((2,)))


def test_unknown_lookup_style_raises_attribute_error():
    f = hk.transform(lambda ids: hk.Embed(embedding_matrix=TABLE, lookup_style="FOO")(ids))
    with pytest.raises(AttributeError, match="FOO"):
        f.init(None, jnp.zeros((1,), jnp.int32))


def test_lookup_style_enum_has_two_members():
    assert [m.name for m in hk.EmbedLookupStyle] == ["ARRAY_INDEX", "ONE_HOT"]
