"""The errors a checkpoint raises when what is on disk cannot be trusted or does not fit.

Both subclass ``ValueError`` (the exception a bad value raises in the rest of hk_core), so
code that catches ``ValueError`` around a restore keeps working.
"""


class CheckpointCorruptionError(ValueError):
    """A checkpoint or params file is truncated, corrupted or otherwise unreadable.

    Raised instead of returning values that differ from the ones saved: a stored checksum
    does not match, a file is cut short, or the storage layer could not decode a file.

    Attributes:
        location: The file or step directory that could not be trusted.
        path: The tree path of the array concerned (e.g. ``params/linear/w``), or None when
            the failure is not tied to one array.

    Example:
        >>> import os, tempfile
        >>> from hk_core import checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> checkpoint.save_params(path, {"linear": {"w": jnp.ones([3, 2])}})
        >>> with open(path, "r+b") as f:
        ...     _ = f.truncate(100)  # cut short, as by a crash mid-copy
        >>> try:
        ...     checkpoint.load_params(path)
        ... except checkpoint.CheckpointCorruptionError as e:
        ...     print(e.location == path, e.path)
        True None
    """

    def __init__(self, location: str, message: str, path: str | None = None):
        self.location, self.path = location, path
        self.detail = message  # kept so other processes can raise the same error (see agree.py)
        where = f"{location}" if path is None else f"{location}, array {path!r}"
        super().__init__(f"{where}: {message}")


class CheckpointMismatchError(ValueError):
    """What a checkpoint holds does not fit the ``target`` it is restored into.

    Attributes:
        path: The tree path that differs (e.g. ``params/linear/w``).
        expected: What ``target`` asks for at ``path`` (a shape, a dtype, or "present").
        actual: What the checkpoint holds there.

    Example:
        >>> import os, tempfile
        >>> from hk_core import checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> checkpoint.save_params(path, {"linear": {"w": jnp.ones([3, 2])}})
        >>> try:
        ...     checkpoint.load_params(path, target={"linear": {"w": jnp.ones([4, 2])}})
        ... except checkpoint.CheckpointMismatchError as e:
        ...     print(e.path, e.expected, e.actual)
        linear/w (4, 2) (3, 2)
    """

    def __init__(self, location: str, path: str, what: str, expected: object, actual: object,
                 hint: str = ""):
        self.location, self.path, self.expected, self.actual = location, path, expected, actual
        self.what, self.hint = what, hint
        super().__init__(
            f"{location}: {path!r}: {what}: target expects {expected}, checkpoint has "
            f"{actual}.{' ' + hint if hint else ''}")
