"""``CheckpointManager``: numbered, atomic, asynchronous and verified checkpoints on Orbax."""

import os
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from hk_core._src.checkpoint import agree
from hk_core._src.checkpoint import errors
from hk_core._src.checkpoint import manifest
from hk_core._src.checkpoint import manifest_handler
from hk_core._src.checkpoint import verify

_TREE, _MANIFEST = "tree", "manifest"


def _abstract_to_restore_args(leaf: Any) -> ocp.RestoreArgs:
    """Orbax restore arguments that give a value the type, dtype and sharding of ``leaf``."""
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
        sharding = leaf.sharding
        if sharding is None:
            sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        return ocp.ArrayRestoreArgs(restore_type=jax.Array, sharding=sharding,
                                    global_shape=tuple(leaf.shape), dtype=leaf.dtype)
    return ocp.RestoreArgs(restore_type=np.ndarray, dtype=np.asarray(leaf).dtype)


def _stored_to_restore_args(stored: Any) -> ocp.RestoreArgs:
    """Orbax restore arguments for a leaf restored without a target (see ``restore``)."""
    if getattr(stored, "sharding", None) is not None:  # it was saved from a jax.Array
        return ocp.ArrayRestoreArgs(
            restore_type=jax.Array, sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]),
            global_shape=tuple(stored.shape), dtype=stored.dtype)
    if isinstance(stored, ocp.metadata.ScalarMetadata):
        return ocp.RestoreArgs()  # a Python scalar comes back as one
    return ocp.RestoreArgs(restore_type=np.ndarray)


def _like_target(value: Any, target_leaf: Any) -> Any:
    """Returns a restored value with the Python type of a non-array target leaf."""
    if isinstance(target_leaf, (jax.Array, jax.ShapeDtypeStruct, np.ndarray)):
        return value
    scalar = np.asarray(value).reshape(())[()]
    return scalar if isinstance(target_leaf, np.generic) else type(target_leaf)(scalar)


class CheckpointManager:
    """Saves and restores numbered checkpoints of a pytree, atomically and verified.

    Built on Orbax's ``CheckpointManager``. ``save`` returns as soon as the arrays are
    copied to host memory (the caller may then change or donate them) while the bytes are
    written in the background. A step appears in ``all_steps`` only once it is complete:
    a process killed mid-save leaves the previous steps intact and no partial step (the
    unfinished temporary directory is removed when a manager is next opened). Each step
    stores a manifest with every array's path, shape, dtype and a CRC32 per stored shard;
    ``restore`` recomputes the checksums from what it read, so a truncated or corrupted
    file raises :class:`CheckpointCorruptionError` instead of returning wrong values.
    Nothing read from disk is ever unpickled or executed.

    Arrays are stored uncompressed: parameters rarely compress, and writing is faster.

    Example:
        >>> import tempfile
        >>> import hk_core.checkpoint
        >>> tree = {"params": {"linear": {"w": jnp.ones([2, 3])}}, "step": jnp.asarray(7)}
        >>> with hk_core.checkpoint.CheckpointManager(tempfile.mkdtemp()) as manager:
        ...     manager.save(7, tree)
        ...     manager.wait()
        ...     restored = manager.restore(target=tree)
        ...     manager.all_steps()
        [7]
        >>> jax.tree.map(jnp.shape, restored)
        {'params': {'linear': {'w': (2, 3)}}, 'step': ()}
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int | None = None,
                 async_save: bool = True):
        """Opens (and creates if needed) a checkpoint directory.

        Args:
            directory: Where steps are stored, one subdirectory per step.
            max_to_keep: How many of the newest steps to keep; older ones are deleted after
                each save. ``None`` keeps all.
            async_save: Whether ``save`` returns before the bytes are written. With
                ``False`` it returns once the step is complete on disk.

        Raises:
            ValueError: if ``max_to_keep`` is not None or a positive integer.
        """
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise ValueError(
                f"CheckpointManager: max_to_keep must be None or a positive int, got "
                f"{max_to_keep!r}.")
        self._directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            enable_async_checkpointing=async_save,
            create=True,
            cleanup_tmp_directories=True,  # what a killed save left behind
        )
        handlers = {
            _TREE: ocp.PyTreeCheckpointHandler(use_ocdbt=True, use_zarr3=True,
                                               use_compression=False),
            _MANIFEST: manifest_handler.ManifestHandler(),
        }
        self._manager = ocp.CheckpointManager(
            self._directory, options=options, item_names=(_TREE, _MANIFEST),
            item_handlers=handlers)

    @property
    def directory(self) -> str:
        """The absolute path of the checkpoint directory."""
        return self._directory

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def all_steps(self) -> list[int]:
        """Returns the complete steps on disk, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """Returns the newest (highest) complete step, or None when there is none."""
        steps = self._manager.all_steps()
        return max(steps) if steps else None

    def save(self, step: int, tree: Any) -> None:
        """Starts saving ``tree`` as ``step``; returns once its arrays are safe to change.

        Waits first for a previous asynchronous save to finish.

        Args:
            step: A new step number (non-negative int).
            tree: A pytree of jax/numpy arrays and scalars (e.g. a ``TrainState``).

        Raises:
            ValueError: if ``step`` already exists or is negative.
            TypeError: if a leaf is not an array or scalar.
        """
        step = int(step)
        if step < 0:
            raise ValueError(f"{self._directory}: step must be non-negative, got {step}.")
        self._manager.wait_until_finished()  # also surfaces an error of the previous save
        if step in self._manager.all_steps():
            raise ValueError(
                f"{self._directory}: step {step} already exists; steps present: "
                f"{self.all_steps()}.")
        tree = jax.tree.map(lambda x: np.array(x) if isinstance(x, np.ndarray) else x, tree)
        where = f"{self._directory}: save(step={step})"
        flat = manifest.flatten(tree, where)
        if not flat:
            raise ValueError(f"{where}: the tree has no arrays to save.")
        empty = next((path for path, leaf in flat if 0 in np.shape(leaf)), None)
        if empty is not None:
            raise ValueError(f"{where}: {empty!r} has zero size (shape "
                             f"{tuple(np.shape(dict(flat)[empty]))}); Orbax cannot store an "
                             "empty array. Leave it out of the saved tree.")
        pending = manifest.PendingManifest.capture(flat)
        self._manager.save(step, args=ocp.args.Composite(**{
            _TREE: ocp.args.PyTreeSave(tree),
            _MANIFEST: manifest_handler.ManifestSave(pending),
        }), force=True)

    def reached_preemption(self, step: int) -> bool:
        """Whether every process has agreed to save ``step`` because of a preemption notice.

        Call it at every training step, with the same step on every process; when it
        returns True, save ``step`` (and ``wait``) and exit. On a SIGTERM (the usual
        preemption notice) to any process of a ``jax.distributed`` run, JAX's preemption
        service picks the next step all processes reach, so they save the same one. Without
        that service (e.g. a single process) it returns False.

        Example:
            >>> import tempfile
            >>> import hk_core.checkpoint
            >>> with hk_core.checkpoint.CheckpointManager(tempfile.mkdtemp()) as manager:
            ...     manager.reached_preemption(0)
            False
        """
        return bool(self._manager.reached_preemption(int(step)))

    def wait(self) -> None:
        """Blocks until every started save is complete on disk (re-raising its error)."""
        self._manager.wait_until_finished()

    def restore(self, step: int | None = None, *, target: Any = None) -> Any:
        """Reads a step back and checks it against its manifest.

        Args:
            step: The step to read; ``None`` reads the latest complete step.
            target: Optional pytree of arrays or ``jax.ShapeDtypeStruct``\\ s (with
                shardings) with the structure, shapes and dtypes of the saved tree. The
                result takes its structure, leaf types and shardings (a restore may use
                another sharding or device count than the save). Without a target the
                saved structure is returned as nested dicts and lists, arrays saved from
                ``jax.Array``\\ s land on the default device, numpy arrays stay numpy.

        Returns:
            The restored pytree.

        Raises:
            FileNotFoundError: if there is no such step (or none at all).
            CheckpointMismatchError: if ``target`` has a path the checkpoint lacks (or the
                reverse) or another shape or dtype; the message names the path.
            CheckpointCorruptionError: if a file is unreadable or a checksum differs.
        """
        self._manager.wait_until_finished()
        step = choose_step(self._directory, self.all_steps(), step)
        location = os.path.join(self._directory, str(step))
        # Each phase ends with every process agreeing (agree.agree) on whether any of them
        # failed, so all raise the same error and none goes on to a collective alone.
        entries, target_flat, failure = {}, None, None
        try:
            entries = self._read_manifest(step, location)
            if target is not None:
                target_flat = manifest.flatten(target, f"{location}: restore target")
                verify.check_target(location, entries, target_flat)
        except (errors.CheckpointCorruptionError, errors.CheckpointMismatchError) as e:
            failure = e
        agree.agree(location, failure)
        restored = None
        try:
            restored = self._read_tree(step, location, dict(target_flat or ()))
        except errors.CheckpointCorruptionError as e:
            failure = e
        agree.agree(location, failure)
        try:
            by_path = dict(manifest.flatten(restored, location))
            for path in entries:
                if path not in by_path:
                    raise errors.CheckpointCorruptionError(
                        location, "listed in the manifest but not read back", path)
            # Collective slicing first, in the same order on every process; then the
            # local checksums, in parallel.
            uncovered = [verify.gather_uncovered(e, by_path[e.path]) for e in entries.values()]
            manifest.map_threaded(
                lambda job: verify.verify_leaf(location, job[0], by_path[job[0].path], job[1]),
                list(zip(entries.values(), uncovered)))
        except errors.CheckpointCorruptionError as e:
            failure = e
        agree.agree(location, failure)
        if target is None:
            return restored
        leaves = [_like_target(by_path[path], leaf) for path, leaf in target_flat]
        return jax.tree.unflatten(jax.tree.structure(target), leaves)

    def _read_manifest(self, step: int, location: str) -> dict[str, manifest.LeafEntry]:
        try:
            files = self._manager.restore(step, args=ocp.args.Composite(**{
                _MANIFEST: manifest_handler.ManifestRestore()}))[_MANIFEST]
        except Exception as e:  # Orbax raises many types; all mean "cannot read the step"
            raise errors.CheckpointCorruptionError(
                location, f"cannot read the manifest ({type(e).__name__}: {e})") from e
        per_process = []
        for name, raw in files:
            try:
                per_process.append(manifest.decode(raw))
            except ValueError as e:
                raise errors.CheckpointCorruptionError(
                    os.path.join(location, _MANIFEST, name), str(e)) from e
        return verify.merge_entries(location, per_process)

    def _read_tree(self, step: int, location: str, target_by_path: dict[str, Any]) -> Any:
        try:
            stored = self._manager.item_metadata(step)[_TREE].tree
            restore_args = jax.tree_util.tree_map_with_path(
                lambda kp, leaf: (
                    _abstract_to_restore_args(target_by_path[manifest.leaf_path(kp)])
                    if target_by_path else _stored_to_restore_args(leaf)),
                stored)
            with warnings.catch_warnings():
                # Orbax warns when a leaf has no target sharding; ours always has one.
                warnings.simplefilter("ignore", UserWarning)
                return self._manager.restore(step, args=ocp.args.Composite(**{
                    _TREE: ocp.args.PyTreeRestore(restore_args=restore_args)}))[_TREE]
        except KeyError as e:
            raise errors.CheckpointCorruptionError(
                location, f"the stored tree has a path the manifest lacks ({e})") from e
        except Exception as e:  # Orbax/TensorStore raise many types on damaged files
            raise errors.CheckpointCorruptionError(
                location, f"cannot read the arrays ({type(e).__name__}: {e})") from e

    def close(self) -> None:
        """Waits for pending saves, then releases Orbax's threads."""
        self._manager.close()


def choose_step(directory: str, steps: list[int], step: int | None) -> int:
    """Returns ``step`` (the newest of ``steps`` when None) if it is a complete step.

    Raises:
        FileNotFoundError: naming ``directory`` and the steps present, if it is not.
    """
    if step is None:
        if not steps:
            raise FileNotFoundError(f"{directory}: no complete checkpoint to restore.")
        return steps[-1]
    if int(step) not in steps:
        raise FileNotFoundError(
            f"{directory}: there is no complete step {step}; steps present: {steps}.")
    return int(step)
