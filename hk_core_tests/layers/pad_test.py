"""Tests for ``hk.pad`` (hk_core/_src/layers/pad.py): API.md §3.2 padding functions."""

import pytest

import hk_core as hk


@pytest.mark.parametrize("fn, kernel, expected", [
    (hk.pad.valid, 3, (0, 0)),
    (hk.pad.same, 3, (1, 1)),
    (hk.pad.same, 4, (1, 2)),
    (hk.pad.same, 1, (0, 0)),
    (hk.pad.full, 3, (2, 2)),
    (hk.pad.causal, 3, (2, 0)),
    (hk.pad.reverse_causal, 3, (0, 2)),
])
def test_padfn_of_effective_kernel_gives_documented_pair(fn, kernel, expected):
    assert fn(kernel) == expected


def test_create_from_padfn_uses_effective_kernel_size_and_returns_tuple_of_pairs():
    # kernel 3 with rate 2 covers (3 - 1) * 2 + 1 = 5 elements: same(5) = (2, 2).
    assert hk.pad.create_from_padfn(hk.pad.same, kernel=3, rate=2, n=2) == ((2, 2), (2, 2))


def test_create_from_padfn_takes_one_padfn_kernel_and_rate_per_dim():
    out = hk.pad.create_from_padfn((hk.pad.causal, hk.pad.valid), kernel=(3, 4), rate=(1, 2), n=2)
    assert out == ((2, 0), (0, 0))


def test_create_is_create_from_padfn():
    assert hk.pad.create(hk.pad.full, kernel=[2], rate=1, n=3) == ((1, 1),) * 3


@pytest.mark.parametrize("argument, kwargs", [
    ("padding", dict(padding=(hk.pad.same,) * 2, kernel=3, rate=1)),
    ("kernel", dict(padding=hk.pad.same, kernel=(3, 3), rate=1)),
    ("rate", dict(padding=hk.pad.same, kernel=3, rate=(1, 1))),
])
def test_create_from_padfn_with_wrong_length_raises_type_error_naming_argument(argument, kwargs):
    with pytest.raises(TypeError, match=rf"{argument} must be a scalar or sequence of length 1 or "
                                        r"sequence of length 3\. Got .*length 2"):
        hk.pad.create_from_padfn(n=3, **kwargs)


@pytest.mark.parametrize("padding, expected", [
    ((1, 2), ((1, 2), (1, 2))),
    ([(3, 4)], ((3, 4), (3, 4))),
    (((1, 2), (3, 4)), ((1, 2), (3, 4))),
])
def test_create_from_tuple_broadcasts_one_pair_or_keeps_n_pairs(padding, expected):
    assert hk.pad.create_from_tuple(padding, n=2) == expected


def test_create_from_tuple_with_other_length_raises_type_error():
    with pytest.raises(TypeError, match=r"Padding .* must be a Tuple\[int, int\] or sequence of "
                                        r"length 1 or sequence of length 2\."):
        hk.pad.create_from_tuple(((1, 1), (1, 1), (1, 1)), n=2)


def test_create_from_tuple_empty_raises_assertion_error():
    with pytest.raises(AssertionError, match=r"Padding must not be empty"):
        hk.pad.create_from_tuple((), n=2)


@pytest.mark.parametrize("value, expected", [
    (hk.pad.same, True),
    ([hk.pad.causal, hk.pad.same], True),
    ("SAME", False),
    ((1, 1), False),
    ([(1, 1)], False),
    ([], False),
])
def test_is_padfn_tests_value_or_first_entry(value, expected):
    assert hk.pad.is_padfn(value) is expected


def test_pad_module_exports_documented_names():
    names = {"PadFn", "valid", "same", "full", "causal", "reverse_causal", "create",
             "create_from_padfn", "create_from_tuple", "is_padfn"}
    assert set(hk.pad.__all__) == names
    assert all(hasattr(hk.pad, name) for name in names)
