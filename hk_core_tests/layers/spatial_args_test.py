"""Tests for hk_core/_src/layers/spatial_args.py: per-dimension argument broadcasting."""

import numpy as np
import pytest

from hk_core._src.layers import spatial_args


@pytest.mark.parametrize("value, expected", [
    (3, (3, 3, 3)),
    ([2], (2, 2, 2)),
    ((1, 2, 3), (1, 2, 3)),
    (np.array([4, 5, 6]), (4, 5, 6)),
    (np.int64(7), (7, 7, 7)),
])
def test_replicate_broadcasts_scalar_or_length_one_and_keeps_length_n(value, expected):
    assert tuple(int(v) for v in spatial_args.replicate(value, 3, "kernel_shape")) == expected


def test_replicate_of_other_length_raises_type_error_naming_where_argument_and_length():
    with pytest.raises(TypeError, match=r"conv: stride must be a scalar or sequence of length 1 "
                                        r"or sequence of length 3\. Got \(1, 2\) \(length 2\)"):
        spatial_args.replicate((1, 2), 3, "stride", "conv")
