"""Restoring part of a checkpoint step, e.g. ``params`` and ``state`` for serving.

A training checkpoint holds the optimizer state too, often two or three times the bytes
of the params (Adam keeps two moments per param). A server needs none of it. Orbax's
partial restore reads only the arrays asked for: with OCDBT storage each array is a byte
range of its own, so the optimizer's ranges are never read. The manifest's CRC32s are
verified for what was read, as ``CheckpointManager.restore`` does for a whole step.
"""

import os
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from hk_core._src.checkpoint import errors
from hk_core._src.checkpoint import manager as manager_lib
from hk_core._src.checkpoint import manifest
from hk_core._src.checkpoint import manifest_handler
from hk_core._src.checkpoint import verify


def _step_directory(checkpoint: "manager_lib.CheckpointManager | str | os.PathLike",
                    step: int | None) -> tuple[str, int]:
    if isinstance(checkpoint, manager_lib.CheckpointManager):
        checkpoint.wait()
        directory = checkpoint.directory
    else:
        directory = os.path.abspath(os.fspath(checkpoint))
    # A step is complete once Orbax renamed it to its number (temporaries carry a suffix).
    steps = sorted(int(n) for n in os.listdir(directory) if n.isdigit()) if os.path.isdir(
        directory) else []
    step = manager_lib.choose_step(directory, steps, step)
    return os.path.join(directory, str(step)), step


def _read_entries(location: str) -> dict[str, manifest.LeafEntry]:
    raw_files = manifest_handler.ManifestHandler().restore(os.path.join(location, "manifest"))
    per_process = []
    for name, raw in raw_files:
        try:
            per_process.append(manifest.decode(raw))
        except ValueError as e:
            raise errors.CheckpointCorruptionError(
                os.path.join(location, "manifest", name), str(e)) from e
    return verify.merge_entries(location, per_process)


def restore_for_inference(
    checkpoint: "manager_lib.CheckpointManager | str | os.PathLike",
    step: int | None = None,
    *,
    target: Mapping[str, Any],
) -> dict[str, Any]:
    """Reads only some top-level fields of a step (``params``, ``state``), nothing else.

    The optimizer state saved beside them is not read from disk: restoring the params of
    an Adam-trained ``TrainState`` reads about a third of the step's bytes.

    Args:
        checkpoint: A :class:`CheckpointManager` or its directory.
        step: The step to read; ``None`` reads the latest complete step.
        target: ``{field: tree}`` for the fields to read, e.g. ``{"params": ...,
            "state": ...}``, each tree of arrays or ``jax.ShapeDtypeStruct``\\ s with the
            saved shapes and dtypes. Each array is placed with its target leaf's sharding
            (a server may use another device count or layout than training did).

    Returns:
        ``{field: tree}`` with the structure of ``target``.

    Raises:
        FileNotFoundError: if there is no such step.
        CheckpointMismatchError: if a field's tree has a path the step lacks (or the
            reverse), or another shape or dtype; the message names the path.
        CheckpointCorruptionError: if the arrays read back differ from their checksums.

    Example:
        >>> import tempfile, optax
        >>> import hk_core.checkpoint
        >>> from hk_core.training import TrainState
        >>> f = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2)(x)))
        >>> params = f.init(jax.random.key(0), jnp.ones([1, 3]))
        >>> ts = TrainState.create(apply_fn=f.apply, params=params, tx=optax.adam(1e-3))
        >>> directory = tempfile.mkdtemp()
        >>> with hk_core.checkpoint.CheckpointManager(directory) as manager:
        ...     manager.save(10, ts)
        >>> abstract = jax.eval_shape(lambda: params)
        >>> out = hk_core.checkpoint.restore_for_inference(directory, target={"params": abstract})
        >>> jax.tree.map(jnp.shape, out)
        {'params': {'linear': {'b': (2,), 'w': (3, 2)}}}
    """
    location, _ = _step_directory(checkpoint, step)
    target = dict(target)
    entries = _read_entries(location)
    wanted = {path: entry for path, entry in entries.items()
              if path.split("/", 1)[0] in target}
    target_flat = manifest.flatten(target, f"{location}: restore target")
    verify.check_target(location, wanted, target_flat)
    restore_args = jax.tree.map(manager_lib._abstract_to_restore_args, target)  # noqa: SLF001
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Orbax's missing-metadata notes
            restored = ocp.PyTreeCheckpointer().restore(
                os.path.join(location, "tree"), args=ocp.args.PyTreeRestore(
                    item=target, restore_args=restore_args, partial_restore=True))
    except Exception as e:  # Orbax/TensorStore raise many types on damaged files
        raise errors.CheckpointCorruptionError(
            location, f"cannot read the arrays ({type(e).__name__}: {e})") from e
    by_path = dict(manifest.flatten(restored, location))
    manifest.map_threaded(lambda e: verify.verify_leaf(location, e, by_path[e.path]),
                          list(wanted.values()))
    return {field: restored[field] for field in target}
