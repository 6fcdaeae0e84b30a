"""hk.dropout (API.md §3.1)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

KEY = jax.random.PRNGKey(0)


def test_dropout_masks_with_bernoulli_keep_and_rescales():
    x = jnp.arange(1.0, 101.0)
    out = hk.dropout(KEY, 0.25, x)
    keep = jax.random.bernoulli(KEY, 0.75, (100,))
    np.testing.assert_allclose(out, np.where(keep, np.asarray(x) / 0.75, 0.0), rtol=1e-6)


def test_dropped_entries_are_zero_even_for_inf_and_nan():
    x = jnp.array([jnp.inf, jnp.nan] * 50)
    out = hk.dropout(KEY, 0.5, x)
    keep = np.asarray(jax.random.bernoulli(KEY, 0.5, (100,)))
    assert (np.asarray(out)[~keep] == 0).all()


def test_rate_zero_returns_input():
    x = jnp.ones([3])
    assert hk.dropout(KEY, 0.0, x) is x


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_out_of_range_is_an_error(rate):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        hk.dropout(KEY, rate, jnp.ones([3]))


def test_broadcast_dims_share_mask():
    out = hk.dropout(KEY, 0.5, jnp.ones([4, 6]), broadcast_dims=(0,))
    chex.assert_trees_all_equal(*[out[i] for i in range(4)])


def test_broadcast_dim_beyond_rank_is_an_error():
    with pytest.raises(ValueError, match="Broadcast dimension does not exist"):
        hk.dropout(KEY, 0.5, jnp.ones([4]), broadcast_dims=(3,))


def test_traced_rate_skips_checks():
    out = jax.jit(lambda rate: hk.dropout(KEY, rate, jnp.ones([8])))(0.5)
    chex.assert_shape(out, (8,))
