"""One process of the two-process checkpoint tests (multihost_checkpoint_test.py starts them).

Run as ``python -m hk_core_tests.checkpoint._multihost_worker PORT PROCESS_ID NUM_PROCESSES
DEVICES_PER_PROCESS OUT_DIR SCENARIO...``. Each scenario writes what it saw into
``OUT_DIR/<scenario>_<process_id>.json`` (or ``.npz``); the test checks those files.
"""

import json
import os
import shutil
import signal
import sys
import time

ROWS, COLS = 64, 64  # big enough that OCDBT stores the bytes as they are (not inlined)
STEPS = 4           # training steps of the resume scenarios
# The three kinds of array a corrupted byte is tested in, and the specs they are saved with
# on the {data: 4, model: 2} mesh (process 0 holds data rows 0-1, process 1 rows 2-3).
KINDS = {"split": ("data", None),          # split across processes
         "within": (None, "model"),        # sharded within each process, same in both
         "replicated": (None, None)}
# Finer, cross-process specs the same arrays are also restored into.
FINER = {"split": (("data", "model"), None), "within": ("data", "model"),
         "replicated": ("data", None)}


def kind_value(kind):
    import numpy as np
    base = {"split": 1e5, "within": 2e5, "replicated": 3e5}[kind]  # no value in two arrays
    return (np.arange(ROWS * COLS, dtype=np.float32).reshape(ROWS, COLS) + base)


class Run:
    """The distributed run, the model and helpers shared by the scenarios."""

    def __init__(self, port, process_id, num_processes, out_dir):
        import jax
        from hk_core import distributed
        from hk_core_tests.distributed import models
        self.jax, self.models, self.distributed = jax, models, distributed
        self.pid, self.nproc, self.out = process_id, num_processes, out_dir
        if num_processes > 1:
            distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes,
                                   process_id=process_id)

    def mesh(self, data, model):
        return self.distributed.make_mesh({"data": data, "model": model})

    def state(self, mesh):
        """A freshly initialised MLP TrainState (adam), sharded by the MLP rules."""
        models, jax = self.models, self.jax
        rules = models.rules("mlp")
        params = self.distributed.sharded_init(models.transformed("mlp"), mesh, rules, 0,
                                               models.batch()["inputs"])
        ts = models.create_state("mlp", params)
        return jax.jit(lambda t: t, out_shardings=rules.shardings(ts, mesh))(ts)

    def train(self, ts, mesh, steps):
        models = self.models
        data = models.batch()
        rows = len(data["inputs"]) // self.nproc
        local = {k: v[self.pid * rows:(self.pid + 1) * rows] for k, v in data.items()}
        batch = self.distributed.shard_batch(local, mesh)
        step = models.sharded_step(ts, batch, mesh, models.rules("mlp"))
        for _ in range(steps):
            ts, _ = step(ts, batch)
        return ts

    def extras(self, mesh, specs):
        from jax.sharding import NamedSharding, PartitionSpec as P
        return {k: self.jax.make_array_from_callback(
            (ROWS, COLS), NamedSharding(mesh, P(*specs[k])), lambda i, k=k: kind_value(k)[i])
            for k in KINDS}

    def tree(self, ts, mesh, specs=KINDS):
        return {"state": {"params": ts.params, "opt_state": ts.opt_state, "step": ts.step},
                "extra": self.extras(mesh, specs)}

    def host(self, tree):
        """Every leaf gathered to numpy (test-side only: the library never does this)."""
        from jax.experimental import multihost_utils
        import numpy as np
        leaves, _ = self.jax.tree_util.tree_flatten_with_path(tree)
        gather = ((lambda v: multihost_utils.process_allgather(v, tiled=True)) if self.nproc > 1
                  else self.jax.device_get)
        return {self.jax.tree_util.keystr(kp, simple=True, separator="/"): np.asarray(gather(v))
                for kp, v in leaves}

    def sync(self, name):
        if self.nproc > 1:
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices(name)

    def write(self, name, obj):
        with open(os.path.join(self.out, f"{name}_{self.pid}.json"), "w") as f:
            json.dump(obj, f)

    def savez(self, name, arrays):
        import numpy as np
        np.savez(os.path.join(self.out, f"{name}_{self.pid}.npz"), **arrays)


def _attempt(fn):
    """Runs ``fn``; returns ("ok", result) or (error type name, message)."""
    try:
        return "ok", fn()
    except Exception as e:  # the test asserts on the type and message
        return type(e).__name__, str(e)


def _flip_kind(step_dir, kind, rows):
    """Flips one byte inside ``rows`` of array ``kind`` wherever those bytes are stored."""
    needle = kind_value(kind)[rows[0], :8].tobytes()  # contiguous in any stored chunk
    hits = 0
    for root, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = bytearray(f.read())
            at = data.find(needle)
            if at >= 0:
                data[at + 5] ^= 0xFF
                with open(path, "wb") as f:
                    f.write(bytes(data))
                hits += 1
    return hits


def scenario_save_restore(run):
    """Per-process writes, async save, restores onto both meshes, corruption, mismatch."""
    from hk_core import checkpoint
    jax = run.jax
    base = os.path.join(run.out, "ckpt")
    mesh = run.mesh(4, 2)
    ts = run.state(mesh)
    tree = run.tree(ts, mesh)
    with checkpoint.CheckpointManager(base, async_save=False) as manager:
        manager.save(1, tree)
    run.savez("saved", run.host(tree))
    ts = run.train(ts, mesh, 1)
    tree2 = run.tree(ts, mesh)
    with checkpoint.CheckpointManager(base, async_save=True) as manager:
        start = time.perf_counter()
        manager.save(2, tree2)
        returned = time.perf_counter() - start
        manager.wait()
        waited = time.perf_counter() - start
    run.savez("saved2", run.host(tree2))
    report = {"async_return_s": returned, "async_complete_s": waited}
    # Restores of step 1 onto both meshes and into finer specs of the extra arrays.
    for name, (data, model), specs in [("same", (4, 2), KINDS), ("swapped", (2, 4), KINDS),
                                       ("finer", (4, 2), FINER)]:
        target_mesh = run.mesh(data, model)
        target = run.tree(run.state(target_mesh), target_mesh, specs)
        with checkpoint.CheckpointManager(base) as manager:
            restored = manager.restore(1, target=target)
        shardings_kept = all(
            r.sharding == t.sharding for r, t in zip(jax.tree.leaves(restored),
                                                     jax.tree.leaves(target)))
        run.savez(f"restored_{name}", run.host(restored))
        report[f"shardings_kept_{name}"] = shardings_kept
    # A flipped byte in each kind of array, restored into the same and a finer sharding.
    half = ROWS // 2
    where = {"split": (half, half + 1),   # a row only process 1 saved
             "within": (0, 1), "replicated": (0, 1)}
    for kind in KINDS:
        directory = os.path.join(run.out, f"corrupt_{kind}")
        if run.pid == 0:
            shutil.copytree(base, directory)
            report[f"flipped_{kind}"] = _flip_kind(os.path.join(directory, "1"), kind,
                                                   where[kind])
        run.sync(f"flipped_{kind}")
        for name, specs in [("same", KINDS), ("finer", FINER)]:
            target = run.tree(ts, mesh, specs)
            with checkpoint.CheckpointManager(directory) as manager:
                report[f"corrupt_{kind}_{name}"] = _attempt(
                    lambda: (manager.restore(1, target=target), "returned")[1])
    bad = run.tree(ts, mesh)
    bad["extra"]["split"] = jax.ShapeDtypeStruct((ROWS + 1, COLS), "float32",
                                                 sharding=bad["extra"]["split"].sharding)
    with checkpoint.CheckpointManager(base) as manager:
        report["mismatch"] = _attempt(lambda: (manager.restore(1, target=bad), "returned")[1])
    run.write("save_restore", report)


def scenario_restore_local(run):
    """Restores step 1 of the two-process checkpoint onto this one process (all devices or one)."""
    from jax.sharding import SingleDeviceSharding
    from hk_core import checkpoint
    jax = run.jax
    base = os.path.join(run.out, "ckpt")
    mesh = run.mesh(2, 4)
    target = run.tree(run.state(mesh), mesh)
    with checkpoint.CheckpointManager(base) as manager:
        restored = manager.restore(1, target=target)
        run.savez("restored_8dev", run.host(restored))
        one = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
            x.shape, x.dtype, sharding=SingleDeviceSharding(jax.devices()[0])), target)
        restored = manager.restore(1, target=one)
        assert all(len(x.sharding.device_set) == 1 for x in jax.tree.leaves(restored))
        run.savez("restored_1dev", run.host(restored))
        run.savez("restored_latest", run.host(manager.restore(target=target)))


def _die_in_commit():
    """Makes this process SIGKILL itself inside the next save's background commit."""
    from hk_core._src.checkpoint import manifest_handler

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    manifest_handler._write_durably = die  # the arrays are being written, the step not final


def scenario_train(run, name, mode):
    """Trains to STEPS saving every step, resuming from ``name``'s latest step if any.

    ``mode``: ``none``; ``kill1``/``kill2``: process 1 / both SIGKILL themselves inside the
    save of step 3; ``sigterm``: trains until the preemption sync point (the test sends
    SIGTERM once ``<name>_ready_<i>`` exists), saves that step and returns.
    """
    from hk_core import checkpoint
    directory = os.path.join(run.out, name)
    mesh = run.mesh(4, 2)
    ts = run.state(mesh)
    manager = checkpoint.CheckpointManager(directory, async_save=True)
    start = manager.latest_step() or 0
    if start:
        ts = manager.restore(target=ts)
        run.savez(f"{name}_restored", run.host(ts))
    run.write(f"{name}_start", {"start": start, "step": int(ts.step)})
    last = 10**6 if mode == "sigterm" else max(STEPS, start + 1)
    if mode == "sigterm":
        open(os.path.join(run.out, f"{name}_ready_{run.pid}"), "w").close()
    for step in range(start + 1, last + 1):
        ts = run.train(ts, mesh, 1)
        if mode == "sigterm":
            if manager.reached_preemption(step):
                manager.save(step, ts)
                manager.wait()
                run.savez(f"{name}_preempted", run.host(ts))
                run.write(f"{name}_preempted", {"step": step})
                break
            continue
        if step == 3 and (mode == "kill2" or (mode == "kill1" and run.pid == 1)):
            _die_in_commit()
        manager.save(step, ts)
    manager.wait()
    manager.close()
    if mode != "sigterm":
        run.savez(f"{name}_final", run.host(ts))


def main(port, process_id, num_processes, out_dir, scenarios):
    run = Run(port, process_id, num_processes, out_dir)
    for scenario in scenarios:
        name, *args = scenario.split(":")
        globals()[f"scenario_{name}"](run, *args)
    if num_processes > 1:
        run.jax.distributed.shutdown()


if __name__ == "__main__":
    # Set before jax is imported, and only here: the test imports this module for constants.
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={sys.argv[4]}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[5], sys.argv[6:])
