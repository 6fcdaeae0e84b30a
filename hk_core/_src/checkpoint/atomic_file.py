"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one."""

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO


def write_path(path: str, write_to: Callable[[str], None]) -> None:
    """Has ``write_to`` write a temporary file, then moves it over ``path`` durably.

    The temporary file is in the same directory; it is fsynced and renamed over ``path``,
    and the directory is fsynced so the rename itself is durable. For writers that take a
    file name (``safetensors.numpy.save_file``).
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        write_to(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write(path: str, write_to: Callable[[IO[bytes]], None]) -> None:
    """Like :func:`write_path`, for writers that take an open binary file."""

    def write_file(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write_to(f)

    write_path(path, write_file)
