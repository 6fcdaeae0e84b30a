"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one."""

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO


def write(path: str, write_to: Callable[[IO[bytes]], None]) -> None:
    """Writes ``path`` so that it holds either its old content or all of the new one.

    ``write_to`` gets a temporary file in the same directory, which is flushed, fsynced and
    renamed over ``path``; the directory is fsynced so the rename itself is durable.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_to(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
