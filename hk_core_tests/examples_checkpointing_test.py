"""examples/_checkpointing.py: a digits run killed mid-save resumes to the same params.

Three runs of ``examples/digits.py --quick`` (20 steps, a checkpoint every 5): one never
interrupted; one SIGKILLed right after starting the async save of step 15; and that one
started again with the same flags, which resumes from the newest complete step.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys

import chex
import pytest

from hk_core import checkpoint

_REPO = pathlib.Path(__file__).resolve().parent.parent
_KILL_ENV = "HK_CORE_EXAMPLES_KILL_AT_SAVE"  # examples/_checkpointing.py's fault injection


def _run_digits(checkpoint_dir: pathlib.Path, workdir: pathlib.Path,
                kill_at_save: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine has
    if kill_at_save is not None:
        env[_KILL_ENV] = str(kill_at_save)
    return subprocess.run(
        [sys.executable, str(_REPO / "examples" / "digits.py"), "--quick",
         f"--checkpoint_dir={checkpoint_dir}", "--checkpoint_every=5", "--log_every=5",
         f"--workdir={workdir}"],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("resume")
    uninterrupted = _run_digits(root / "a", root / "work_a")
    killed = _run_digits(root / "b", root / "work_b1", kill_at_save=15)
    steps_after_kill = sorted(e for e in os.listdir(root / "b") if e.isdigit())
    resumed = _run_digits(root / "b", root / "work_b2")
    return dict(root=root, uninterrupted=uninterrupted, killed=killed, resumed=resumed,
                steps_after_kill=steps_after_kill)


def _final_line(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _restore_last(directory: pathlib.Path):
    with checkpoint.CheckpointManager(directory) as manager:
        return manager.latest_step(), manager.restore()


def test_killed_run_died_by_sigkill_after_saving_steps_5_and_10(runs):
    assert runs["killed"].returncode == -signal.SIGKILL, runs["killed"].stderr[-3000:]
    assert {"5", "10"} <= set(runs["steps_after_kill"]) <= {"5", "10", "15"}


def test_resumed_run_continues_from_the_newest_complete_step(runs):
    newest = max(int(s) for s in runs["steps_after_kill"])
    assert f"resuming from step {newest} of " in runs["resumed"].stderr
    assert _final_line(runs["resumed"])["step"] == 20


def test_uninterrupted_run_saves_every_5_steps_keeping_the_newest_3(runs):
    _final_line(runs["uninterrupted"])
    assert sorted(int(e) for e in os.listdir(runs["root"] / "a")) == [10, 15, 20]


def test_resumed_run_ends_with_the_params_of_the_uninterrupted_run(runs):
    _final_line(runs["uninterrupted"])
    _final_line(runs["resumed"])
    step_a, state_a = _restore_last(runs["root"] / "a")
    step_b, state_b = _restore_last(runs["root"] / "b")
    assert step_a == step_b == 20
    chex.assert_trees_all_close(state_b["params"], state_a["params"], rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(state_b["opt_state"], state_a["opt_state"], rtol=1e-6, atol=1e-6)


def test_resumed_run_reports_the_final_metrics_of_the_uninterrupted_run(runs):
    a, b = _final_line(runs["uninterrupted"]), _final_line(runs["resumed"])
    assert (b["train_loss"], b["test_accuracy"]) == (a["train_loss"], a["test_accuracy"])
