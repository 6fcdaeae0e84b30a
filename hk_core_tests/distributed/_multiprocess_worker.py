"""One process of the two-process test: joins the run, trains a few steps, writes its params.

Run as ``python -m hk_core_tests.distributed._multiprocess_worker PORT PROCESS_ID OUT_DIR``
from the repository root; multihost_test.py starts two of them.
"""

import os
import sys

NUM_PROCESSES, STEPS, MODEL = 2, 3, "mlp"


def main(port: str, process_id: int, out_dir: str) -> None:
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    from hk_core import distributed
    from hk_core_tests.distributed import models

    distributed.initialize(f"127.0.0.1:{port}", num_processes=NUM_PROCESSES,
                           process_id=process_id)
    assert (jax.device_count(), jax.local_device_count()) == (8, 4)
    mesh = distributed.make_mesh({"data": 4, "model": 2})
    rules = models.rules(MODEL)
    data = models.batch()  # the global batch; each process feeds its own half
    rows = len(data["inputs"]) // NUM_PROCESSES
    local = {k: v[process_id * rows:(process_id + 1) * rows] for k, v in data.items()}
    params = distributed.sharded_init(models.transformed(MODEL), mesh, rules, 0, data["inputs"])
    ts = models.create_state(MODEL, params)
    ts = jax.jit(lambda t: t, out_shardings=rules.shardings(ts, mesh))(ts)
    batch = distributed.shard_batch(local, mesh)
    assert batch["inputs"].shape == data["inputs"].shape
    ts, losses = models.train(ts, batch, STEPS, models.sharded_step(ts, batch, mesh, rules))
    params, losses = multihost_utils.process_allgather((ts.params, losses), tiled=True)
    flat = {f"{m}/{n}": np.asarray(v) for m, bundle in params.items() for n, v in bundle.items()}
    np.savez(os.path.join(out_dir, f"params_{process_id}.npz"), losses=np.asarray(losses),
             **flat)
    jax.distributed.shutdown()


if __name__ == "__main__":
    # Four CPU devices per process (eight in the global mesh); set before jax is imported,
    # and only here: the test imports this module for its constants.
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
