"""examples/transformer_lm.py on two ``jax.distributed`` processes: killed mid-save, resumed.

Both processes (4 CPU devices each, --mesh data=4,model=2, a small model, --quick) are
SIGKILLed right after starting the async save of step 6 (the examples' fault injection,
step 3 being saved before); started again with the same flags, both resume from the newest
complete step and finish all 10 steps.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parent.parent
_KILL_ENV = "HK_CORE_EXAMPLES_KILL_AT_SAVE"  # examples/_checkpointing.py's fault injection


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_both(root: pathlib.Path, tag: str, kill_at_save: int | None = None) -> list:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    if kill_at_save is not None:
        env[_KILL_ENV] = str(kill_at_save)
    procs = [subprocess.Popen(
        [sys.executable, str(_REPO / "examples" / "transformer_lm.py"), "--quick",
         f"--coordinator=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}",
         "--mesh=data=4,model=2", f"--checkpoint_dir={root / 'ckpt'}", "--checkpoint_every=3",
         f"--workdir={root / f'{tag}_{i}'}", "--num_layers=1", "--model_size=32",
         "--seq_len=16", "--batch_size=8"],
        cwd=_REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=600)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lm_two_processes")
    killed = _run_both(root, "killed", kill_at_save=6)
    steps_after_kill = sorted(e for e in os.listdir(root / "ckpt") if e.isdigit())
    resumed = _run_both(root, "resumed")
    return dict(killed=killed, resumed=resumed, steps_after_kill=steps_after_kill)


def test_both_processes_died_mid_save_of_step_6(runs):
    for result in runs["killed"]:
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert runs["steps_after_kill"] in (["3"], ["3", "6"])


def test_both_processes_resume_and_finish_with_the_same_loss(runs):
    finals = []
    for result in runs["resumed"]:
        assert result.returncode == 0, result.stderr[-3000:]
        newest = runs["steps_after_kill"][-1]
        assert f"resuming from step {newest} of " in result.stderr
        finals.append(json.loads(result.stdout.strip().splitlines()[-1]))
    assert finals[0]["step"] == finals[1]["step"] == 10
    assert finals[0]["eval_loss"] == finals[1]["eval_loss"]
