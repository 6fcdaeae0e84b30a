"""Key splitting (API.md §2.4): pinned against jax.random calls written out here."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import errors

KEY = jax.random.PRNGKey(42)


def _split_chain(key, n):
    """The i-th key Haiku draws: split(k)[1], then split(split(k)[0])[1], ..."""
    keys = []
    for _ in range(n):
        key, sub = jax.random.split(key)
        keys.append(sub)
    return keys


def test_next_rng_key_sequence_matches_split_chain():
    f = hk.transform(lambda: [hk.next_rng_key() for _ in range(3)])
    chex.assert_trees_all_equal(f.apply({}, KEY), _split_chain(KEY, 3))


def test_next_rng_keys_splits_missing_keys_in_one_call():
    f = hk.transform(lambda: (hk.next_rng_key(), hk.next_rng_keys(3)))
    first, rest = f.apply({}, KEY)
    k1, k2 = jax.random.split(KEY)
    np.testing.assert_array_equal(first, k2)
    expected = jax.random.split(k1, 4)[1:]
    np.testing.assert_array_equal(rest, expected)
    assert rest.shape == (3, 2)


def test_prng_sequence_from_int_matches_apply_keys():
    seq = hk.PRNGSequence(42)
    chex.assert_trees_all_equal([next(seq) for _ in range(3)], _split_chain(KEY, 3))


def test_reserve_pre_splits_in_one_call():
    seq = hk.PRNGSequence(KEY)
    seq.reserve(2)
    ks = jax.random.split(KEY, 3)
    chex.assert_trees_all_equal(seq.take(2), (ks[1], ks[2]))
    chex.assert_trees_all_equal(next(seq), jax.random.split(ks[0])[1])


def test_with_rng_draws_from_new_sequence_even_without_transform_rng():
    def f():
        with hk.with_rng(jax.random.PRNGKey(3)):
            return hk.next_rng_key()

    np.testing.assert_array_equal(hk.transform(f).apply({}, None),
                                  jax.random.split(jax.random.PRNGKey(3))[1])


def test_typed_keys_split_like_raw_keys():
    typed = jax.random.key(42)
    out = hk.transform(lambda: hk.next_rng_key()).apply({}, typed)
    np.testing.assert_array_equal(jax.random.key_data(out), _split_chain(KEY, 1)[0])


def test_maybe_next_rng_key_is_none_without_rng():
    assert hk.transform(lambda: hk.maybe_next_rng_key()).apply({}, None) is None


def test_next_rng_key_without_rng_raises_missing_rng():
    with pytest.raises(errors.MissingRNGError,
                       match=r"You must pass a non-None PRNGKey to init and/or apply"):
        hk.transform(lambda: hk.next_rng_key()).apply({}, None)


def test_next_rng_key_outside_transform_raises():
    with pytest.raises(ValueError, match="hk.transform"):
        hk.next_rng_key()


def test_replace_rng_sequence_state_without_rng_raises():
    with pytest.raises(errors.MissingRNGError, match="replace_rng_sequence_state"):
        hk.transform(lambda: hk.replace_rng_sequence_state((KEY, ()))).apply({}, None)


def test_control_flow_drops_reserved_keys_beyond_reserve_size():
    def f():
        hk.reserve_rng_keys(3)
        hk.cond(True, lambda: None, lambda: None)
        return hk.next_rng_keys(3)

    keys = hk.transform(f).apply({}, KEY)
    ks = jax.random.split(KEY, 4)
    np.testing.assert_array_equal(keys[0], ks[1])  # kept: within rng_reserve_size (1)
    fresh = jax.random.split(ks[0], 3)  # keys 2-3 come from a new split of the sequence key
    np.testing.assert_array_equal(keys[1:], fresh[1:])


def test_rng_reserve_size_config_changes_split_width():
    with hk.config.context(rng_reserve_size=2):
        keys = hk.transform(lambda: [hk.next_rng_key() for _ in range(2)]).apply({}, KEY)
    ks = jax.random.split(KEY, 3)
    chex.assert_trees_all_equal(keys, [ks[1], ks[2]])


def test_vmap_split_rng_gives_each_row_its_own_key_and_continues_outer_sequence():
    def f(x):
        rows = hk.vmap(lambda _: hk.next_rng_key(), split_rng=True)(x)
        return rows, hk.next_rng_key()

    rows, after = hk.transform(f).apply({}, KEY, jnp.zeros([3]))
    k1, k2 = jax.random.split(KEY, 4)[0], jax.random.split(KEY, 4)[1:]
    expected_rows = jnp.stack([jax.random.split(k)[1] for k in k2])
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(after, jax.random.split(k1)[1])


def test_vmap_without_split_shares_keys_and_advances_outer_sequence():
    def f(x):
        rows = hk.vmap(lambda _: hk.next_rng_key(), split_rng=False)(x)
        return rows, hk.next_rng_key()

    rows, after = hk.transform(f).apply({}, KEY, jnp.zeros([2]))
    first, second = _split_chain(KEY, 2)
    np.testing.assert_array_equal(rows, jnp.stack([first, first]))
    np.testing.assert_array_equal(after, second)


def test_dropout_in_apply_uses_next_key():
    def f(x):
        return hk.dropout(hk.next_rng_key(), 0.5, x)

    x = jnp.ones([64])
    out = hk.transform(f).apply({}, KEY, x)
    mask = jax.random.bernoulli(_split_chain(KEY, 1)[0], 0.5, (64,))
    np.testing.assert_array_equal(out, np.where(mask, 2.0, 0.0))


def test_eager_sequence_matches_split_chain_across_refills():
    # Eager draws come from batches of precomputed steps (2, 8, then 32 at a time); 45 keys
    # cross every refill size.
    seq = hk.PRNGSequence(KEY)
    chex.assert_trees_all_equal([next(seq) for _ in range(45)], _split_chain(KEY, 45))


def test_eager_sequence_state_is_the_chain_key_after_each_draw():
    seq = hk.PRNGSequence(KEY)
    key = KEY
    for _ in range(5):
        next(seq)
        key, _ = jax.random.split(key)
        state_key, queued = seq.internal_state
        np.testing.assert_array_equal(state_key, key)
        assert queued == ()


def test_eager_sequence_changing_reserve_width_or_state_restarts_from_current_key():
    seq = hk.PRNGSequence(KEY)
    first = next(seq)  # precomputes a step ahead for width 1
    k1, k2 = jax.random.split(KEY)
    np.testing.assert_array_equal(first, k2)
    three = seq.take(3)  # width 3 from the current key, not the precomputed width-1 step
    ks = jax.random.split(k1, 4)
    chex.assert_trees_all_equal(three, tuple(ks[1:]))
    other = jax.random.PRNGKey(7)
    seq.replace_internal_state((other, ()))
    chex.assert_trees_all_equal([next(seq), next(seq)], _split_chain(other, 2))


def test_eager_and_jitted_apply_draw_identical_keys():
    f = hk.transform(lambda: [hk.next_rng_key() for _ in range(12)])
    chex.assert_trees_all_equal(f.apply({}, KEY), jax.jit(f.apply)({}, KEY))
