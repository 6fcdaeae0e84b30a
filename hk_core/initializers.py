"""Initializers: callables ``(shape, dtype) -> array`` (Haiku's ``hk.initializers``)."""

from hk_core._src.layers.initializers import Constant as Constant
from hk_core._src.layers.initializers import Identity as Identity
from hk_core._src.layers.initializers import Initializer as Initializer
from hk_core._src.layers.initializers import Orthogonal as Orthogonal
from hk_core._src.layers.initializers import RandomNormal as RandomNormal
from hk_core._src.layers.initializers import RandomUniform as RandomUniform
from hk_core._src.layers.initializers import TruncatedNormal as TruncatedNormal
from hk_core._src.layers.initializers import UniformScaling as UniformScaling
from hk_core._src.layers.initializers import VarianceScaling as VarianceScaling

__all__ = [
    "Constant", "Identity", "Initializer", "Orthogonal", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "UniformScaling", "VarianceScaling",
]
