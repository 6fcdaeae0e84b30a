"""Two ``jax.distributed`` processes on 127.0.0.1 train on one global mesh to identical params."""

import os
import pathlib
import socket
import subprocess
import sys

import chex
import jax
import numpy as np

from hk_core_tests.distributed import _multiprocess_worker as worker
from hk_core_tests.distributed import models

_REPO = pathlib.Path(__file__).resolve().parents[2]
_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two_processes(out_dir: pathlib.Path) -> list[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(_REPO), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hk_core_tests.distributed._multiprocess_worker", str(port),
             str(i), str(out_dir)],
            cwd=_REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(worker.NUM_PROCESSES)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=_TIMEOUT_S)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for i, (proc, output) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"process {i} exited with {proc.returncode}:\n{output}"
    return outputs


def _load(path: pathlib.Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_two_processes_end_with_identical_params_equal_to_one_device(tmp_path):
    _run_two_processes(tmp_path)
    first, second = (_load(tmp_path / f"params_{i}.npz") for i in range(worker.NUM_PROCESSES))
    assert sorted(first) == sorted(second)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)

    data = models.batch()
    params = jax.jit(models.transformed(worker.MODEL).init)(0, data["inputs"])
    ts, losses = models.train(models.create_state(worker.MODEL, params), data, worker.STEPS)
    expected = {f"{m}/{n}": v for m, bundle in ts.params.items() for n, v in bundle.items()}
    expected["losses"] = losses
    chex.assert_trees_all_close(first, jax.device_get(expected), rtol=2e-5, atol=2e-6)
