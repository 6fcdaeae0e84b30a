"""A process SIGKILLed during an async save loses nothing already saved and lists no partial step.

The child process saves step 1, starts an asynchronous save of step 2 and is killed from
inside that save's background commit (so the kill lands mid-save every time, not by luck
of timing). The parent then checks what a new process sees in the directory.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from hk_core import checkpoint

_REPO = pathlib.Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent("""
    import os, signal, sys, threading, time
    import jax.numpy as jnp
    import hk_core.checkpoint as checkpoint
    from hk_core._src.checkpoint import manifest, manifest_handler

    def tree(value):
        return {"w": jnp.full((512, 512), value), "b": jnp.full((512,), value)}

    save_returned = threading.Event()

    def die(*args, **kwargs):
        save_returned.wait()  # kill only once save() has handed control back to training
        os.kill(os.getpid(), signal.SIGKILL)

    manager = checkpoint.CheckpointManager(sys.argv[1], async_save=True)
    manager.save(1, tree(1.0))
    manager.wait()
    if sys.argv[2] == "while_checksumming":
        manifest.crc32 = die          # the step-2 arrays are being written meanwhile
    else:
        manifest_handler._write_durably = die  # the arrays are written, the step not final
    manager.save(2, tree(2.0))
    print("save returned", flush=True)
    save_returned.set()
    time.sleep(60)                    # the background commit kills us before this ends
""")


def _tree(value: float) -> dict:
    return {"w": jnp.full((512, 512), value), "b": jnp.full((512,), value)}


@pytest.fixture(scope="module", params=["while_checksumming", "while_writing_manifest"])
def _killed_once(request, tmp_path_factory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp(request.param)
    env = {**os.environ, "PYTHONPATH": str(_REPO), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory), request.param], env=env,
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert "save returned" in result.stdout  # the kill came after save() handed back control
    return directory


@pytest.fixture
def killed_directory(_killed_once, tmp_path) -> pathlib.Path:
    # A fresh copy per test: opening a manager cleans the directory up.
    return pathlib.Path(shutil.copytree(_killed_once, tmp_path / "ckpt"))


def test_kill_mid_save_leaves_an_unfinished_temporary_step_on_disk(killed_directory):
    entries = os.listdir(killed_directory)
    assert "2" not in entries
    assert any(e.startswith("2.") for e in entries), entries  # Orbax's temporary name


def test_kill_mid_save_lists_only_the_previous_step(killed_directory):
    with checkpoint.CheckpointManager(killed_directory) as manager:
        assert manager.all_steps() == [1] and manager.latest_step() == 1


def test_kill_mid_save_leaves_the_previous_step_restorable(killed_directory):
    with checkpoint.CheckpointManager(killed_directory) as manager:
        chex.assert_trees_all_equal(manager.restore(target=_tree(0.0)), _tree(1.0))


def test_saving_the_killed_step_again_succeeds_and_removes_the_partial_one(killed_directory):
    with checkpoint.CheckpointManager(killed_directory) as manager:
        manager.save(2, _tree(2.0))
        manager.wait()
        np.testing.assert_array_equal(manager.restore(2)["b"], np.full((512,), 2.0))
    assert sorted(os.listdir(killed_directory)) == ["1", "2"]
