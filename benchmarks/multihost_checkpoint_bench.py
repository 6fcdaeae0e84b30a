"""B10: multi-host checkpoint save/restore rate, 2 ``jax.distributed`` processes vs 1.

Workload: a TrainState-like tree (8 weight matrices each for params, Adam's mu and nu, and
a step counter), sharded by rows over a mesh of 8 CPU devices: either 2 processes on
127.0.0.1 with 4 devices each (each writes and reads its own half) or 1 process with 8
devices, the same total bytes. Measured in each run, on process 0 after a barrier:

* ``save``: a synchronous ``CheckpointManager.save`` (all shards written, CRC32 manifest,
  step finalized on every process); rate = total bytes / time.
* ``restore``: ``restore`` into the same shardings, every shard's CRC32 verified and the
  verdict agreed between processes.
* ``stall``: how long an asynchronous ``save`` blocks the caller, divided by the
  synchronous save's time (the fraction of a save a training loop waits for).

Process start-up and compilation are not timed. On a machine with fewer cores than
processes x devices the 2-process rate is bounded by the shared CPU, not by the library.

Run: ``python benchmarks/multihost_checkpoint_bench.py [--quick] [--mb 256] [--repeats 3]``.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)


def _worker(port: int, process_id: int, num_processes: int, mb: float, repeats: int,
            directory: str) -> None:
    import jax
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding, PartitionSpec as P

    sys.path.insert(0, _REPO)
    import hk_core.checkpoint
    from hk_core import distributed

    if num_processes > 1:
        distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes,
                               process_id=process_id)
    mesh = distributed.make_mesh({"data": jax.device_count()})
    width, rows = 1024, max(8, int(mb * 2**20) // (3 * 8 * 1024 * 4) // 8 * 8)
    sharding = NamedSharding(mesh, P("data", None))

    def matrix(seed):
        return jax.make_array_from_callback(
            (rows, width), sharding,
            lambda i: np.random.default_rng(seed).standard_normal(
                (rows, width), np.float32)[i])

    tree = {part: {f"layer_{i}": matrix(10 * p + i) for i in range(8)}
            for p, part in enumerate(["params", "mu", "nu"])}
    tree["step"] = jax.device_put(np.int32(0), NamedSharding(mesh, P()))
    total = sum(x.nbytes for x in jax.tree.leaves(tree))

    def barrier(name):
        if num_processes > 1:
            multihost_utils.sync_global_devices(name)

    times = {"save": [], "restore": [], "async_return": []}
    with hk_core.checkpoint.CheckpointManager(os.path.join(directory, "sync"),
                                              async_save=False, max_to_keep=1) as manager:
        for r in range(repeats + 1):  # the first round warms up (compiles, opens files)
            barrier(f"save{r}")
            start = time.perf_counter()
            manager.save(r, tree)
            saved = time.perf_counter()
            barrier(f"restore{r}")
            restart = time.perf_counter()
            manager.restore(r, target=tree)
            restored = time.perf_counter()
            if r:
                times["save"].append(saved - start)
                times["restore"].append(restored - restart)
    with hk_core.checkpoint.CheckpointManager(os.path.join(directory, "async"),
                                              async_save=True, max_to_keep=1) as manager:
        for r in range(repeats + 1):
            manager.wait()
            barrier(f"async{r}")
            start = time.perf_counter()
            manager.save(r, tree)
            if r:
                times["async_return"].append(time.perf_counter() - start)
        manager.wait()
    if process_id == 0:
        median = {k: statistics.median(v) for k, v in times.items()}
        print(json.dumps({"processes": num_processes, "bytes": total, **median}), flush=True)
    if num_processes > 1:
        jax.distributed.shutdown()


def _run(num_processes: int, mb: float, repeats: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // num_processes}"
    env["JAX_PLATFORMS"] = "cpu"
    with tempfile.TemporaryDirectory() as directory:
        procs = [subprocess.Popen(
            [sys.executable, __file__, "--_worker", str(port), str(i), str(num_processes),
             str(mb), str(repeats), directory],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(num_processes)]
        outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        if p.returncode:
            raise RuntimeError(f"worker exited with {p.returncode}:\n{err[-4000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_worker":
        port, pid, n, mb, repeats, directory = sys.argv[2:8]
        _worker(int(port), int(pid), int(n), float(mb), int(repeats), directory)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 MB, 1 repeat")
    parser.add_argument("--mb", type=float, default=256.0, help="total tree size in MiB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mb, repeats = (8.0, 1) if args.quick else (args.mb, args.repeats)
    results = {n: _run(n, mb, repeats) for n in (1, 2)}
    rows = {}
    print(f"B10: {results[1]['bytes'] / 2**20:.1f} MiB sharded over 8 CPU devices, "
          f"median of {repeats}")
    print(f"{'processes':>9} {'save GB/s':>10} {'restore GB/s':>13} {'async stall':>12}")
    for n, r in results.items():
        rows[n] = {"save_gbps": r["bytes"] / r["save"] / 1e9,
                   "restore_gbps": r["bytes"] / r["restore"] / 1e9,
                   "async_stall": r["async_return"] / r["save"]}
        print(f"{n:>9} {rows[n]['save_gbps']:>10.3f} {rows[n]['restore_gbps']:>13.3f} "
              f"{rows[n]['async_stall']:>12.1%}")
    summary = {
        "benchmark": "B10_multihost_checkpoint", "bytes": results[1]["bytes"],
        "per_processes": rows,
        "save_ratio_2_over_1": rows[2]["save_gbps"] / rows[1]["save_gbps"],
        "restore_ratio_2_over_1": rows[2]["restore_gbps"] / rows[1]["restore_gbps"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
