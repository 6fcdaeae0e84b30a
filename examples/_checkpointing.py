"""Saving and resuming the examples' ``TrainState`` with ``--checkpoint_dir`` (not an example).

``_common.make_checkpointer`` returns an :class:`OrbaxCheckpointer` when a checkpoint
directory is given. A run started again with the same flags resumes from the newest
complete step and continues the step count, so (the batches and the dropout noise being
functions of the step) it ends with the same params as a run that was never interrupted.
"""

import logging as std_logging
import os
import signal
from typing import Any

from absl import logging

import hk_core.checkpoint

# Fault injection for the resume test: SIGKILL the process right after starting the async
# save of this step, i.e. in the middle of writing it, as a crash or preemption would.
KILL_AT_SAVE_ENV = "HK_CORE_EXAMPLES_KILL_AT_SAVE"


def _quiet_orbax(record: std_logging.LogRecord) -> bool:
    # Orbax narrates every save at INFO, the level the examples log their progress at.
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


class OrbaxCheckpointer:
    """Keeps the newest checkpoints of a run in a directory and resumes from them.

    Has the interface of ``_common.Checkpointer``: ``save_every``, ``restore``, ``save``
    and ``close``.
    """

    def __init__(self, directory: str, *, save_every: int, max_to_keep: int = 3):
        self.save_every = save_every
        logging.get_absl_handler().addFilter(_quiet_orbax)
        self._manager = hk_core.checkpoint.CheckpointManager(
            directory, max_to_keep=max_to_keep, async_save=True)
        kill_at = os.environ.get(KILL_AT_SAVE_ENV)
        self._kill_at = int(kill_at) if kill_at else None
        self._started: set[int] = set()  # steps saved by this run, maybe still in flight

    def restore(self, train_state: Any) -> Any:
        """Returns the newest saved state, or ``train_state`` when there is none."""
        step = self._manager.latest_step()
        if step is None:
            logging.info("no checkpoint in %s: starting from step 0", self._manager.directory)
            return train_state
        logging.info("resuming from step %d of %s", step, self._manager.directory)
        # The fresh state is the target: the result keeps its structure, static fields
        # (apply_fn, tx) and shardings, and any mismatch names the path.
        return self._manager.restore(step, target=train_state)

    def save(self, step: int, train_state: Any) -> None:
        """Starts saving ``step``, unless it is already saved (the last step may be twice)."""
        if step in self._started or step in self._manager.all_steps():
            return
        self._started.add(step)
        self._manager.save(step, train_state)
        if step == self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        """Waits for the last save to be complete on disk."""
        self._manager.close()
