"""Tests for ``hk.get_channel_index`` (hk_core/_src/layers/data_format.py)."""

import pytest

import hk_core as hk


@pytest.mark.parametrize("data_format, expected", [
    ("channels_last", -1), ("channels_first", 1), ("NCHW", 1), ("NCW", 1), ("NCDHW", 1),
    ("NHWC", -1), ("NWC", -1), ("NDHWC", -1), ("BTHWD", -1), ("TBD", -1),
])
def test_get_channel_index_of_known_format(data_format, expected):
    assert hk.get_channel_index(data_format) == expected


@pytest.mark.parametrize("data_format", ["NCHWC", "BTHWC", "HWC", "nhwc", ""])
def test_get_channel_index_of_unknown_format_raises_value_error_naming_it(data_format):
    with pytest.raises(ValueError, match=f"data_format='{data_format}'"):
        hk.get_channel_index(data_format)
