"""Makes every process of a multi-process restore raise the same error, or none.

A restore reads and checks each process's part of a checkpoint separately, so one process
can find a corrupt shard that the others never see. If it raised alone, the others would
return and then wait forever at their next collective. Instead every process reports its
verdict (the error it found, encoded as a small byte array) through one all-gather, and all
of them raise the error of the lowest-numbered process that found one.
"""

import json

import jax
import numpy as np
from jax.experimental import multihost_utils

from hk_core._src.checkpoint import errors

_BYTES = 8192  # the verdict's fixed size: an all-gather needs the same shape everywhere
_FIELD = 1500  # characters kept per text field, so any verdict fits in _BYTES


def _cut(text: object) -> str:
    text = str(text)
    return text if len(text) <= _FIELD else text[:_FIELD] + "..."


def _fields(error: Exception) -> dict:
    if isinstance(error, errors.CheckpointMismatchError):
        return {"kind": "mismatch", "location": _cut(error.location), "path": _cut(error.path),
                "what": _cut(error.what), "expected": _cut(error.expected),
                "actual": _cut(error.actual), "hint": _cut(error.hint)}
    if isinstance(error, errors.CheckpointCorruptionError):
        return {"kind": "corruption", "location": _cut(error.location),
                "message": _cut(error.detail), "path": error.path and _cut(error.path)}
    return {"kind": "other", "message": _cut(f"{type(error).__name__}: {error}")}


def encode(error: Exception | None) -> np.ndarray:
    """Returns ``error`` as a fixed-size uint8 array (all zeros for no error)."""
    out = np.zeros(_BYTES, np.uint8)
    if error is not None:
        raw = json.dumps(_fields(error)).encode()[:_BYTES]
        out[:len(raw)] = np.frombuffer(raw, np.uint8)
    return out


def decode(verdict: np.ndarray, location: str, process: int) -> Exception:
    """Rebuilds the error another process encoded with :func:`encode`."""
    fields = json.loads(bytes(verdict).rstrip(b"\0").decode())
    if fields["kind"] == "mismatch":
        return errors.CheckpointMismatchError(
            fields["location"], fields["path"], fields["what"], fields["expected"],
            fields["actual"], fields["hint"])
    if fields["kind"] == "corruption":
        return errors.CheckpointCorruptionError(
            fields["location"], fields["message"], fields["path"])
    return errors.CheckpointCorruptionError(
        location, f"process {process} could not restore ({fields['message']})")


def agree(location: str, error: Exception | None) -> None:
    """Raises on every process if ``error`` is set on any; returns on all otherwise.

    Every process of the run must call this at the same point. With one process it just
    raises ``error``.

    Raises:
        CheckpointCorruptionError, CheckpointMismatchError: the lowest-numbered failing
            process's error, with the same message on every process (that process raises
            its original exception).
    """
    if jax.process_count() == 1:
        if error is not None:
            raise error
        return
    verdicts = np.asarray(multihost_utils.process_allgather(encode(error)))
    failed = [p for p in range(verdicts.shape[0]) if verdicts[p].any()]
    if not failed:
        return
    if failed[0] == jax.process_index() and error is not None:
        raise error
    raise decode(verdicts[failed[0]], location, failed[0]) from error
