"""Checkpoints of two ``jax.distributed`` processes on 127.0.0.1 (4 CPU devices each).

One launch of two processes saves an MLP TrainState (adam) plus three 64x64 arrays (split
across the processes, sharded within each, replicated) on the mesh {data: 4, model: 2},
restores it several ways, flips a byte in each extra array and restores again. A second,
single-process launch restores the same checkpoint onto 8 devices and onto 1. Process
start-up is the slow part, so each launch runs many scenarios; each test reads its part of
what the workers wrote (see _multihost_worker.py).
"""

import json
import os
import pathlib
import socket
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hk_core_tests.checkpoint import _multihost_worker as worker

_REPO = pathlib.Path(__file__).resolve().parents[2]
_TIMEOUT_S = 420  # generous: 2 processes x 4 devices on a shared 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out_dir: pathlib.Path, num_processes: int, devices: int, *scenarios: str,
           expect_rc: int | None = 0, sigterm_when: str | None = None) -> list[int]:
    """Runs the worker in ``num_processes`` processes and returns their exit codes.

    When one process dies, the others are SIGKILLed, as a cluster scheduler restarts the
    whole job. With ``sigterm_when``, every process gets SIGTERM once each has created
    ``<out_dir>/<sigterm_when>_<process id>``.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(_REPO), env.get("PYTHONPATH", "")])
    logs = [out_dir / f"log_{port}_{i}.txt" for i in range(num_processes)]
    procs = []
    for i, log in enumerate(logs):
        with open(log, "w") as f:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "hk_core_tests.checkpoint._multihost_worker", str(port),
                 str(i), str(num_processes), str(devices), str(out_dir), *scenarios],
                cwd=_REPO, env=env, stdout=f, stderr=subprocess.STDOUT))
    deadline, signalled = time.monotonic() + _TIMEOUT_S, False
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            if (sigterm_when and not signalled and
                    all((out_dir / f"{sigterm_when}_{i}").exists() for i in range(len(procs)))):
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                signalled = True
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    codes = [p.returncode for p in procs]
    if expect_rc is not None:
        for i, (code, log) in enumerate(zip(codes, logs)):
            assert code == expect_rc, f"process {i} exited with {code}:\n{log.read_text()[-6000:]}"
    return codes


def load(path: pathlib.Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("multihost_checkpoint")
    launch(directory, 2, 4, "save_restore")
    launch(directory, 1, 8, "restore_local")
    return directory


def _reports(out: pathlib.Path) -> list[dict]:
    return [json.loads((out / f"save_restore_{i}.json").read_text()) for i in range(2)]


def _assert_equal(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def test_each_process_writes_only_its_own_shards(out):
    files = [json.loads((out / "ckpt" / "1" / "manifest" / f"manifest.process_{i}.json")
                        .read_text())["manifest"]["leaves"] for i in range(2)]
    saved = load(out / "saved_0.npz")
    written = [{leaf["path"]: [tuple(map(tuple, s["index"])) for s in leaf["shards"]]
                for leaf in leaves} for leaves in files]
    for path, value in saved.items():
        shards = written[0][path] + written[1][path]
        # Together the processes wrote every element exactly once: no shard twice, nothing
        # gathered into one host beyond the array's own pieces.
        assert sum(int(np.prod([b - a for a, b in index])) for index in shards) == value.size
        if path == "extra/split":  # split across processes: each wrote only its half
            assert written[0][path] == [((0, 16), (0, 64)), ((16, 32), (0, 64))]
            assert written[1][path] == [((32, 48), (0, 64)), ((48, 64), (0, 64))]
        if path.endswith("linear_0/w"):  # split over 'model': no process wrote it whole
            assert all(index[1] != (0, value.shape[1]) for index in shards), path
    # And each process's own storage holds about its share of the bytes, not the tree.
    sizes = [sum(f.stat().st_size for f in (out / "ckpt" / "1" / "tree" / f"ocdbt.process_{i}")
                 .rglob("*") if f.is_file()) for i in range(2)]
    total = sum(v.nbytes for v in saved.values())
    assert all(0 < size < total for size in sizes), (sizes, total)


def test_async_save_returns_before_it_completes_and_restores_exactly(out):
    for report in _reports(out):
        assert report["async_return_s"] <= report["async_complete_s"]
    _assert_equal(load(out / "restored_latest_0.npz"), load(out / "saved2_0.npz"))


@pytest.mark.parametrize("name", ["same", "swapped", "finer"])
def test_two_process_restores_equal_saved_values_with_target_shardings(out, name):
    saved = load(out / "saved_0.npz")
    for i, report in enumerate(_reports(out)):
        assert report[f"shardings_kept_{name}"]
        _assert_equal(load(out / f"restored_{name}_{i}.npz"), saved)


@pytest.mark.parametrize("name", ["8dev", "1dev"])
def test_single_process_restores_equal_saved_values(out, name):
    _assert_equal(load(out / f"restored_{name}_0.npz"), load(out / "saved_0.npz"))


@pytest.mark.parametrize("kind, shard", [
    ("split", "[32:48, 0:64]"),        # only process 1 holds and checks it
    ("within", "[0:64, 0:32]"),
    ("replicated", "[0:64, 0:64]"),
])
@pytest.mark.parametrize("target", ["same", "finer"])
def test_flipped_byte_raises_the_same_corruption_error_on_every_process(out, kind, shard,
                                                                        target):
    first, second = _reports(out)
    assert first[f"flipped_{kind}"] == 1
    outcomes = [report[f"corrupt_{kind}_{target}"] for report in (first, second)]
    assert outcomes[0] == outcomes[1]
    error_type, message = outcomes[0]
    assert error_type == "CheckpointCorruptionError"
    assert f"corrupt_{kind}/1, array 'extra/{kind}': shard {shard} reads back" in message


def test_tree_mismatch_raises_on_every_process(out):
    outcomes = [report["mismatch"] for report in _reports(out)]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "CheckpointMismatchError"
    assert "'extra/split': shape: target expects (65, 64), checkpoint has (64, 64)." in (
        outcomes[0][1])


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> tuple[pathlib.Path, list[list[int]]]:
    """An uninterrupted run, and runs killed or preempted mid-way then resumed (4 launches)."""
    directory = tmp_path_factory.mktemp("multihost_resume")
    codes = [
        launch(directory, 2, 4, "train:ref:none", "train:k1:kill1", expect_rc=None),
        launch(directory, 2, 4, "train:k1:none", "train:k2:kill2", expect_rc=None),
        launch(directory, 2, 4, "train:k2:none", "train:pre:sigterm",
               sigterm_when="pre_ready"),
        launch(directory, 2, 4, "train:pre:none"),
    ]
    return directory, codes


@pytest.mark.parametrize("name, launch_index, killed", [
    ("k1", 0, [1]),       # process 1 SIGKILLed mid-save (process 0 then killed by the "scheduler")
    ("k2", 1, [0, 1]),    # both SIGKILLed mid-save
])
def test_sigkill_mid_save_then_resume_equals_an_uninterrupted_run(resumed, name, launch_index,
                                                                  killed):
    out, codes = resumed
    # Each process in `killed` SIGKILLs itself inside the save. When both do, the second may
    # first see its peer's death: JAX's distributed runtime then aborts it (SIGABRT), which
    # leaves its save just as unfinished.
    died = [codes[launch_index][i] for i in killed]
    assert -signal.SIGKILL in died
    assert set(died) <= {-signal.SIGKILL, -signal.SIGABRT}
    steps = sorted(int(p.name) for p in (out / name).iterdir() if p.name.isdigit())
    assert steps == [1, 2, 3, 4]  # the partial step 3 was dropped, then saved again
    for i in range(2):
        assert json.loads((out / f"{name}_start_{i}.json").read_text()) == {"start": 2, "step": 2}
        _assert_equal(load(out / f"{name}_final_{i}.npz"), load(out / "ref_final_0.npz"))


def test_sigterm_saves_an_agreed_step_exits_zero_and_resumes_from_it(resumed):
    out, codes = resumed
    assert codes[2] == [0, 0]
    preempted = [json.loads((out / f"pre_preempted_{i}.json").read_text())["step"]
                 for i in range(2)]
    assert preempted[0] == preempted[1] > 0
    step = preempted[0]
    for i in range(2):
        assert json.loads((out / f"pre_start_{i}.json").read_text()) == {"start": step,
                                                                          "step": step}
        _assert_equal(load(out / f"pre_restored_{i}.npz"), load(out / "pre_preempted_0.npz"))
        assert int(load(out / f"pre_final_{i}.npz")["step"]) == step + 1
