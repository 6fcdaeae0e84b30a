"""B7: checkpoint save/restore throughput against numpy, and the train-step stall of an async save.

Workload: a TrainState-like tree (params, Adam's mu and nu, a step counter) of about 1 GB
(``--quick``: about 12 MB) on the default device. Contenders, interleaved with the order
rotated each repetition:

* ``hk_core``: ``hk_core.checkpoint.CheckpointManager`` (Orbax + per-shard CRC32 manifest),
  synchronous save; restore into the tree's own shardings, checksums verified.
* ``numpy``: ``np.save`` of every leaf (after its device-to-host copy) to its own ``.npy``,
  each file fsynced and the directory fsynced: the same durability as the checkpoint, whose
  TensorStore writes are fsynced. Restore is ``np.load`` + ``jax.device_put``. The same
  writes without fsync are reported too, as ``numpy_nosync`` (not a ratio basis).
* ``safetensors``: ``hk_core.checkpoint.save_params`` to one ``.safetensors`` file (atomic,
  fsynced, a CRC32 per tensor); ``load_params`` into the tree's shardings, CRC32s verified.
  Its rates are reported next to numpy's (B11: safetensors >= 1.0x numpy).

Async stall: how long ``save`` blocks with ``async_save=True`` (the time a training loop
waits), divided by a synchronous save's time. While the async write runs, a jitted
train-like step (an update of every leaf, buffers donated) keeps running; its step time
is compared with the step time when no save is running.

Restores read files the page cache still holds, for both contenders alike.

Run: ``python benchmarks/checkpoint_bench.py [--quick] [--gb 1.0] [--repeats 3]``.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import hk_core.checkpoint  # noqa: E402  (after the path fix, for runs from a checkout)


def device_name() -> str:
    device = jax.devices()[0]
    if device.platform == "cpu":
        return "cpu"
    return f"{device.platform}:{device.device_kind}"


def make_tree(total_bytes: int) -> dict:
    """A TrainState-like tree: params, Adam mu and nu (a third of the bytes each), a step."""
    width = 1024
    per_part = total_bytes // 3
    rows = max(1, per_part // (8 * width * 4))  # 8 weight matrices per part
    key = jax.random.key(0)

    def part(scale):
        return {f"layer_{i}": {"w": scale * jax.random.normal(jax.random.fold_in(key, i),
                                                              (rows, width)),
                               "b": jnp.zeros((width,))}
                for i in range(8)}

    tree = {"step": jnp.asarray(0, jnp.int32), "params": part(1.0),
            "opt_state": {"mu": part(0.1), "nu": part(0.01)}}
    return jax.block_until_ready(tree)


def tree_bytes(tree) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree))


def numpy_save(directory: str, tree, sync: bool) -> None:
    os.makedirs(directory, exist_ok=True)
    for i, leaf in enumerate(jax.tree.leaves(tree)):
        with open(os.path.join(directory, f"{i}.npy"), "wb") as f:
            np.save(f, np.asarray(leaf))
            if sync:
                f.flush()
                os.fsync(f.fileno())
    if sync:
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def numpy_restore(directory: str, tree):
    leaves, treedef = jax.tree.flatten(tree)
    loaded = [jax.device_put(np.load(os.path.join(directory, f"{i}.npy")), leaf.sharding)
              for i, leaf in enumerate(leaves)]
    return jax.block_until_ready(jax.tree.unflatten(treedef, loaded))


def as_params(tree) -> dict:
    """The tree as ``{module: {name: leaf}}``, the layout ``save_params`` takes."""
    out = {}
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        module, _, name = jax.tree_util.keystr(key_path, simple=True, separator="/").rpartition("/")
        out.setdefault(module or "~", {})[name] = leaf
    return out


def _update(tree):
    return jax.tree.map(lambda x: x * 0.999 + 0.001 if x.dtype != jnp.int32 else x + 1, tree)


train_step = jax.jit(_update, donate_argnums=0)  # stands in for a train step: reads, writes all


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 12 MB, 2 repetitions")
    parser.add_argument("--gb", type=float, default=1.0, help="tree size in GB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    total = int(12e6) if args.quick else int(args.gb * 1e9)
    repeats = 2 if args.quick else args.repeats
    tree = make_tree(total)
    nbytes = tree_bytes(tree)
    abstract = jax.eval_shape(lambda: tree)
    abstract = jax.tree.map(lambda a, x: jax.ShapeDtypeStruct(a.shape, a.dtype,
                                                              sharding=x.sharding), abstract, tree)
    root = tempfile.mkdtemp(prefix="hk_core_b7_")
    samples = {k: [] for k in ("save/hk_core", "save/numpy", "save/numpy_nosync",
                               "restore/hk_core", "restore/numpy", "async/stall",
                               "save/safetensors", "restore/safetensors",
                               "async/total", "step/idle", "step/during_async_save")}
    try:
        sync_manager = hk_core.checkpoint.CheckpointManager(
            os.path.join(root, "sync"), max_to_keep=1, async_save=False)
        async_manager = hk_core.checkpoint.CheckpointManager(
            os.path.join(root, "async"), max_to_keep=1, async_save=True)
        state = train_step(jax.tree.map(jnp.copy, tree))  # compile once, before timing
        jax.block_until_ready(state)
        step_number = 0
        params_tree, params_target = as_params(tree), as_params(abstract)
        safetensors_path = os.path.join(root, "params.safetensors")
        # hk_core first: the budget
        contenders = ["hk_core", "async", "numpy", "numpy_nosync", "safetensors"]
        for rep in range(repeats):
            order = contenders[rep % len(contenders):] + contenders[:rep % len(contenders)]
            for name in order:
                step_number += 1
                if name == "hk_core":
                    samples["save/hk_core"].append(
                        timed(lambda: sync_manager.save(step_number, tree)))
                    samples["restore/hk_core"].append(timed(lambda: jax.block_until_ready(
                        sync_manager.restore(step_number, target=abstract))))
                elif name == "safetensors":
                    samples["save/safetensors"].append(timed(
                        lambda: hk_core.checkpoint.save_params(safetensors_path, params_tree)))
                    samples["restore/safetensors"].append(timed(lambda: jax.block_until_ready(
                        hk_core.checkpoint.load_params(safetensors_path, params_target))))
                    os.remove(safetensors_path)
                elif name.startswith("numpy"):
                    directory = os.path.join(root, name)
                    samples[f"save/{name}"].append(
                        timed(lambda: numpy_save(directory, tree, sync=name == "numpy")))
                    if name == "numpy":
                        samples["restore/numpy"].append(
                            timed(lambda: numpy_restore(directory, tree)))
                    shutil.rmtree(directory)
                else:
                    # Idle step time first, then steps while the async write runs.
                    idle = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        state = jax.block_until_ready(train_step(state))
                        idle.append(time.perf_counter() - t0)
                    samples["step/idle"].append(min(idle))
                    start = time.perf_counter()
                    async_manager.save(step_number, state)
                    samples["async/stall"].append(time.perf_counter() - start)
                    # Keep stepping for half a synchronous save's time: the write is running.
                    budget = 0.5 * statistics.median(samples["save/hk_core"] or [1.0])
                    during = []
                    while len(during) < 3 or time.perf_counter() - start < budget:
                        t0 = time.perf_counter()
                        state = jax.block_until_ready(train_step(state))
                        during.append(time.perf_counter() - t0)
                    async_manager.wait()
                    samples["async/total"].append(time.perf_counter() - start)
                    samples["step/during_async_save"].append(statistics.median(during))
        sync_manager.close()
        async_manager.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def stats(values, to_rate=True):
        if to_rate:  # seconds -> GB/s (best = min time)
            return {"min_s": min(values), "median_s": statistics.median(values),
                    "best_gb_per_s": nbytes / min(values) / 1e9,
                    "median_gb_per_s": nbytes / statistics.median(values) / 1e9}
        return {"min_s": min(values), "median_s": statistics.median(values)}

    results = {
        "save": {k: stats(samples[f"save/{k}"])
                 for k in ("hk_core", "numpy", "numpy_nosync", "safetensors")},
        "restore": {k: stats(samples[f"restore/{k}"]) for k in ("hk_core", "numpy", "safetensors")},
        "async_save": {"stall": stats(samples["async/stall"], False),
                       "total": stats(samples["async/total"]),
                       "step_idle": stats(samples["step/idle"], False),
                       "step_during_async_save": stats(samples["step/during_async_save"],
                                                       False)},
        "tree_bytes": nbytes,
    }
    ratios = {
        # >= 0.8 is the target: hk_core's save bytes/s over numpy's (fsynced) bytes/s.
        "save_throughput_vs_numpy": min(samples["save/numpy"]) / min(samples["save/hk_core"]),
        "save_throughput_vs_numpy_nosync": (min(samples["save/numpy_nosync"])
                                            / min(samples["save/hk_core"])),
        "restore_throughput_vs_numpy": (min(samples["restore/numpy"])
                                        / min(samples["restore/hk_core"])),
        # B11, >= 1.0 is the target: save_params(.safetensors) bytes/s over numpy's (fsynced).
        "safetensors_save_vs_numpy": min(samples["save/numpy"]) / min(samples["save/safetensors"]),
        "safetensors_restore_vs_numpy": (min(samples["restore/numpy"])
                                         / min(samples["restore/safetensors"])),
        # <= 0.1 is the target: time an async save blocks / a synchronous save's time.
        "async_stall_vs_sync_save": (statistics.median(samples["async/stall"])
                                     / statistics.median(samples["save/hk_core"])),
        "step_time_during_async_save_vs_idle": (statistics.median(samples["step/during_async_save"])
                                                / statistics.median(samples["step/idle"])),
    }
    ratios = {k: round(v, 3) for k, v in ratios.items()}

    print(f"B7 on {device_name()}: tree of {nbytes / 1e6:.1f} MB, {repeats} repetitions "
          "(best = fastest repetition)")
    print(f"  {'operation':<28} {'contender':<14} {'best GB/s':>10} {'median GB/s':>12}")
    for op in ("save", "restore"):
        for name, r in results[op].items():
            print(f"  {op:<28} {name:<14} {r['best_gb_per_s']:10.3f} {r['median_gb_per_s']:12.3f}")
    a = results["async_save"]
    print(f"  {'async save: blocks for':<28} {'hk_core':<14} {a['stall']['median_s'] * 1e3:9.1f} ms"
          f"  (sync save {statistics.median(samples['save/hk_core']) * 1e3:.1f} ms; total "
          f"{a['total']['median_s'] * 1e3:.1f} ms)")
    print(f"  {'train step: idle / during':<28} {'':<14} {a['step_idle']['median_s'] * 1e3:9.2f} ms"
          f" / {a['step_during_async_save']['median_s'] * 1e3:.2f} ms")
    for k, v in ratios.items():
        print(f"  ratio {k:<40} {v:8.3f}")
    payload = {"benchmark": "B7", "device": device_name(), "results": results,
               "ratios": ratios}
    print(json.dumps(payload))
    return payload


if __name__ == "__main__":
    main()
