"""Common networks (Haiku's ``hk.nets``)."""

from hk_core._src.nets.mlp import MLP as MLP

__all__ = ["MLP"]
