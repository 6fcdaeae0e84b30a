"""Checkpoints: numbered, atomic, asynchronous, verified steps, and portable params files.

Needs orbax-checkpoint (the ``checkpoint`` extra: ``pip install ".[checkpoint]"`` in a
checkout); ``import hk_core`` does not import this module, so import it explicitly:
``import hk_core.checkpoint``.
"""

from hk_core._src.checkpoint.errors import CheckpointCorruptionError as CheckpointCorruptionError
from hk_core._src.checkpoint.errors import CheckpointMismatchError as CheckpointMismatchError
from hk_core._src.checkpoint.inference import restore_for_inference as restore_for_inference
from hk_core._src.checkpoint.manager import CheckpointManager as CheckpointManager
from hk_core._src.checkpoint.params_file import load_params as load_params
from hk_core._src.checkpoint.params_file import save_params as save_params

__all__ = [
    "CheckpointCorruptionError",
    "CheckpointManager",
    "CheckpointMismatchError",
    "load_params",
    "restore_for_inference",
    "save_params",
]
