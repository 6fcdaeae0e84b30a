"""Runs examples/digits.py --quick as a user would and checks what it prints and writes."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("digits")
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine has
    result = subprocess.run(
        [sys.executable, str(_REPO / "examples" / "digits.py"), "--quick",
         f"--workdir={workdir}"],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return result, workdir


def test_digits_quick_exits_cleanly(digits_run):
    result, _ = digits_run
    assert result.returncode == 0, result.stderr[-3000:]


def test_digits_quick_last_stdout_line_is_json_of_final_metrics(digits_run):
    result, _ = digits_run
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"step", "train_loss", "test_accuracy", "wall_s"} <= set(final), final
    assert final["step"] == 20 and 0.0 <= final["test_accuracy"] <= 1.0


def test_digits_quick_writes_metrics_jsonl(digits_run):
    _, workdir = digits_run
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 20 and "test_accuracy" in records[-1]


def test_digits_quick_logs_progress_line(digits_run):
    result, _ = digits_run
    assert "step 20/20 | " in result.stderr and " steps/s" in result.stderr


def test_digits_quick_prints_model_summary(digits_run):
    result, _ = digits_run
    assert "mlp/~/linear_0" in result.stdout
