"""Checkpoints: numbered, atomic, asynchronous, verified steps, and portable params files.

Needs orbax-checkpoint (``pip install "hk_core[checkpoint]"``); ``import hk_core`` does not
import this module, so import it explicitly: ``import hk_core.checkpoint``.
"""

from hk_core._src.checkpoint.errors import CheckpointCorruptionError as CheckpointCorruptionError
from hk_core._src.checkpoint.errors import CheckpointMismatchError as CheckpointMismatchError
from hk_core._src.checkpoint.manager import CheckpointManager as CheckpointManager
from hk_core._src.checkpoint.params_file import load_params as load_params
from hk_core._src.checkpoint.params_file import save_params as save_params

__all__ = [
    "CheckpointCorruptionError",
    "CheckpointManager",
    "CheckpointMismatchError",
    "load_params",
    "save_params",
]
