"""Functions over two-level params/state dicts: ``hk.data_structures``."""

from hk_core._src.core.data_structures import filter as filter  # noqa: A004
from hk_core._src.core.data_structures import is_subset as is_subset
from hk_core._src.core.data_structures import map as map  # noqa: A004
from hk_core._src.core.data_structures import merge as merge
from hk_core._src.core.data_structures import partition as partition
from hk_core._src.core.data_structures import partition_n as partition_n
from hk_core._src.core.data_structures import to_haiku_dict as to_haiku_dict
from hk_core._src.core.data_structures import to_immutable_dict as to_immutable_dict
from hk_core._src.core.data_structures import to_mutable_dict as to_mutable_dict
from hk_core._src.core.data_structures import traverse as traverse
from hk_core._src.core.data_structures import tree_bytes as tree_bytes
from hk_core._src.core.data_structures import tree_size as tree_size

__all__ = [
    "filter",
    "is_subset",
    "map",
    "merge",
    "partition",
    "partition_n",
    "to_haiku_dict",
    "to_immutable_dict",
    "to_mutable_dict",
    "traverse",
    "tree_bytes",
    "tree_size",
]
