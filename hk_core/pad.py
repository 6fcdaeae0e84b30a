"""Padding functions for convolutions (Haiku's ``hk.pad``)."""

from hk_core._src.layers.pad import PadFn as PadFn
from hk_core._src.layers.pad import causal as causal
from hk_core._src.layers.pad import create as create
from hk_core._src.layers.pad import create_from_padfn as create_from_padfn
from hk_core._src.layers.pad import create_from_tuple as create_from_tuple
from hk_core._src.layers.pad import full as full
from hk_core._src.layers.pad import is_padfn as is_padfn
from hk_core._src.layers.pad import reverse_causal as reverse_causal
from hk_core._src.layers.pad import same as same
from hk_core._src.layers.pad import valid as valid

__all__ = [
    "PadFn", "causal", "create", "create_from_padfn", "create_from_tuple", "full", "is_padfn",
    "reverse_causal", "same", "valid",
]
