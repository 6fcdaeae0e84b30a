"""Errors hk_core raises: each subclasses the builtin exception Haiku raises in its place.

``except ValueError:`` (or ``TypeError``) code keeps working; the classes add fields that say
which module and which argument were wrong (``module_path``, ``argument``, ``expected``,
``got`` on the layer errors).
"""

from hk_core._src.core.errors import InvalidModuleNameError as InvalidModuleNameError
from hk_core._src.core.errors import JaxUsageError as JaxUsageError
from hk_core._src.core.errors import MissingParameterError as MissingParameterError
from hk_core._src.core.errors import MissingRNGError as MissingRNGError
from hk_core._src.core.errors import NonEmptyStateError as NonEmptyStateError
from hk_core._src.core.errors import NotInTransformError as NotInTransformError
from hk_core._src.core.errors import ParameterShapeError as ParameterShapeError
from hk_core._src.layers.errors import ArgumentTypeError as ArgumentTypeError
from hk_core._src.layers.errors import ConfigurationError as ConfigurationError
from hk_core._src.layers.errors import InputShapeError as InputShapeError
from hk_core._src.layers.errors import LayerError as LayerError
from hk_core._src.layers.errors import UnknownPaddingError as UnknownPaddingError

__all__ = [
    "ArgumentTypeError", "ConfigurationError", "InputShapeError", "InvalidModuleNameError",
    "JaxUsageError", "LayerError", "MissingParameterError", "MissingRNGError",
    "NonEmptyStateError", "NotInTransformError", "ParameterShapeError", "UnknownPaddingError",
]
