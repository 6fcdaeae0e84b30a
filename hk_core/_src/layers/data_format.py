"""``hk.get_channel_index``: where the channel axis is for a data-format string."""

import re

from hk_core._src.layers import errors

# Full-string patterns (API.md §3): batch first then channels, batch first and channels
# last, or a batch/time pair and channels last under the name D.
_CHANNELS_FIRST = re.compile(r"^NC[^C]*$")
_CHANNELS_LAST = re.compile(r"^N[^C]*C$")
_TIME_MAJOR_OR_MINOR = re.compile(r"^((BT)|(TB))[^D]*D$")


def get_channel_index(data_format: str) -> int:
    """Returns the index of the channel axis for ``data_format``: ``1`` or ``-1``.

    Accepts ``'channels_last'``, ``'channels_first'`` and layout strings such as ``'NHWC'``,
    ``'NCHW'``, ``'NWC'`` or ``'TBD'``.

    Args:
        data_format: The data format string.

    Returns:
        ``-1`` for channels-last formats, ``1`` for channels-first ones.

    Raises:
        ValueError: if ``data_format`` is none of the forms above.

    Example:
        >>> hk.get_channel_index("NCHW"), hk.get_channel_index("channels_last")
        (1, -1)
    """
    if data_format == "channels_last":
        return -1
    if data_format == "channels_first":
        return 1
    if isinstance(data_format, str):
        if _CHANNELS_FIRST.match(data_format):
            return 1
        if _CHANNELS_LAST.match(data_format) or _TIME_MAJOR_OR_MINOR.match(data_format):
            return -1
    raise errors.ConfigurationError(
        f"Unable to extract channel information from data_format={data_format!r}: expected "
        "'channels_last', 'channels_first' or a layout such as 'NHWC', 'NCHW', 'NWC', 'NCW', "
        "'NDHWC', 'NCDHW' or 'TBD'.", argument="data_format",
        expected="'channels_last', 'channels_first' or a layout such as 'NHWC'", got=data_format)
