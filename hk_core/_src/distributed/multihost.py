"""``initialize``: joins a multi-process (multi-host) JAX run, over ``jax.distributed``."""

from collections.abc import Sequence
from typing import Any

import jax


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None,
               local_device_ids: int | Sequence[int] | None = None, **kwargs: Any) -> None:
    """Connects this process to the others of a run, so ``jax.devices()`` spans them all.

    A thin layer over ``jax.distributed.initialize``; call it once per process, before any
    other JAX call. Afterwards ``make_mesh`` lays out every process's devices, ``sharded_init``
    creates params on the global mesh and ``shard_batch`` takes each process's local batch.
    On clusters JAX detects (SLURM, Cloud TPU, …) all arguments may be omitted.

    Example:
        >>> from hk_core import distributed
        >>> distributed.initialize("10.0.0.1:1234", num_processes=2,
        ...                        process_id=0)  # doctest: +SKIP
        >>> jax.process_count()  # without initialize, a run has one process
        1

    Args:
        coordinator_address: ``"host:port"`` of process 0, which every process can reach.
        num_processes: Number of processes in the run.
        process_id: This process's index, ``0 <= process_id < num_processes``.
        local_device_ids: Which of this host's devices this process uses.
        **kwargs: Further keyword arguments of ``jax.distributed.initialize`` (timeouts,
            ``cluster_detection_method``, …).

    Raises:
        RuntimeError: from JAX if already initialized or if the coordinator is unreachable.
    """
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes,
        process_id=process_id, local_device_ids=local_device_ids, **kwargs)
