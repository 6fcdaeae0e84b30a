"""An Orbax checkpoint item that writes the manifest inside the step before it is finalized.

Orbax writes every item of a step into a temporary directory and renames it into place
only after all items' commit futures finish, so the manifest appears exactly when the
arrays do: a step is never visible without it, and a process killed mid-save leaves only a
temporary directory that Orbax ignores and removes. Each process writes its own file
(``manifest.process_<i>.json``) holding the checksums of the shards it stored.
"""

import asyncio
import dataclasses
import os
import re
from typing import Any

import orbax.checkpoint as ocp
from etils import epath

from hk_core._src.checkpoint import manifest

_FILE = re.compile(r"manifest\.process_(\d+)\.json")


def _write_durably(path: epath.Path, text: str) -> None:
    local = os.fspath(path)
    if os.path.isdir(os.path.dirname(local)):
        # fsync so the manifest is on disk before Orbax renames the step into place.
        with open(local, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    else:  # a remote file system (e.g. gs://): its writes are durable on close
        path.write_text(text)


class ManifestHandler(ocp.AsyncCheckpointHandler):
    """Saves a :class:`manifest.PendingManifest`; restores the list of per-process manifests."""

    async def _commit(self, directory: epath.Path, pending: manifest.PendingManifest) -> None:
        # This coroutine runs alone on a thread of its own (Orbax's commit future), so it
        # may block: the checksums are computed here while the arrays are being written.
        text = pending.to_json()
        _write_durably(epath.Path(directory) / f"manifest.process_{pending.process_index}.json",
                       text)

    async def async_save(self, directory: epath.Path, args: "ManifestSave") -> list[Any]:
        """Returns the commit future that computes the checksums and writes the file."""
        return [ocp.future.CommitFutureAwaitingContractedSignals(
            self._commit(directory, args.pending), name="hk_core_manifest_save")]

    def save(self, directory: epath.Path, args: "ManifestSave") -> None:
        """Writes the manifest and waits for it."""
        for commit in asyncio.run(self.async_save(directory, args)):
            commit.result()

    def restore(self, directory: epath.Path, args: "ManifestRestore | None" = None
                ) -> list[tuple[str, bytes]]:
        """Returns ``(file name, raw bytes)`` of every process's manifest, sorted by name."""
        del args
        directory = epath.Path(directory)
        names = sorted(p.name for p in directory.iterdir() if _FILE.fullmatch(p.name))
        return [(name, (directory / name).read_bytes()) for name in names]

    def metadata(self, directory: epath.Path) -> None:
        """The manifest has no separate metadata."""
        del directory

    def finalize(self, directory: epath.Path) -> None:
        """Nothing to do once the step is complete."""
        del directory

    def close(self) -> None:
        """Holds no resources."""


@ocp.args.register_with_handler(ManifestHandler, for_save=True)
@dataclasses.dataclass
class ManifestSave(ocp.args.CheckpointArgs):
    """Orbax save arguments for :class:`ManifestHandler`."""

    pending: manifest.PendingManifest


@ocp.args.register_with_handler(ManifestHandler, for_restore=True)
@dataclasses.dataclass
class ManifestRestore(ocp.args.CheckpointArgs):
    """Orbax restore arguments for :class:`ManifestHandler` (none are needed)."""
