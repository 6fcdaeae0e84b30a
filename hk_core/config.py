"""Global configuration (Haiku's ``hk.config``): ``set``, ``context``, ``get_config``."""

from hk_core._src.core.config import Config as Config
from hk_core._src.core.config import context as context
from hk_core._src.core.config import get_config as get_config
from hk_core._src.core.config import set as set  # noqa: A004 - Haiku's name

__all__ = ["Config", "context", "get_config", "set"]
