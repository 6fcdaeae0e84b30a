"""Runs examples/digits.py --quick as a user would and checks what it prints and writes.

Three runs in one empty directory with the default --workdir: the first trains with a
--checkpoint_dir; the second trains again and loads its compiled programs from the
compilation cache the first one filled; the third resumes the first's finished checkpoint
(nothing left to train). The helpers of
examples/_common.py that need no run (progress bar, summary table) are tested in-process.
"""

import io
import json
import os
import pathlib
import re
import subprocess
import sys

import jax.numpy as jnp
import pytest

import hk_core as hk

_REPO = pathlib.Path(__file__).resolve().parent.parent
_EXAMPLES = _REPO / "examples"
_EXAMPLE_SCRIPTS = ["digits.py", "resnet.py", "transformer_lm.py"]

sys.path.insert(0, str(_EXAMPLES))
import _common  # noqa: E402  (examples/ is not a package)


def _run(args: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine has
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Three runs in one directory: train with checkpoints; train again; resume the first."""
    cwd = tmp_path_factory.mktemp("digits")
    quick = [str(_EXAMPLES / "digits.py"), "--quick"]
    first = _run([*quick, "--checkpoint_dir=ckpt"], cwd)
    again = _run(quick, cwd)  # the same programs: all of them from the cache
    resumed = _run([*quick, "--checkpoint_dir=ckpt"], cwd)
    return cwd, first, again, resumed


def _workdir(cwd: pathlib.Path, result: subprocess.CompletedProcess) -> pathlib.Path:
    match = re.search(r"^digits: writing to (\S+)", result.stdout, re.M)
    assert match, result.stdout[:2000]
    return cwd / match.group(1)


@pytest.mark.parametrize("run", [1, 2, 3], ids=["first", "again", "resumed"])
def test_digits_quick_exits_cleanly(digits_runs, run):
    result = digits_runs[run]
    assert result.returncode == 0, result.stderr[-3000:]


def test_digits_quick_last_stdout_line_is_json_of_final_metrics(digits_runs):
    _, first, _, _ = digits_runs
    final = json.loads(first.stdout.strip().splitlines()[-1])
    assert {"step", "train_loss", "test_accuracy", "wall_s"} <= set(final), final
    assert final["step"] == 20 and 0.0 <= final["test_accuracy"] <= 1.0


def test_digits_prints_its_default_workdir_first(digits_runs):
    cwd, first, _, _ = digits_runs
    assert first.stdout.startswith("digits: writing to runs/digits/")
    assert re.fullmatch(r"runs/digits/\d{8}-\d{6}", str(_workdir(cwd, first).relative_to(cwd)))


def test_digits_quick_writes_metrics_jsonl_and_curve_png_under_workdir(digits_runs):
    cwd, first, _, _ = digits_runs
    workdir = _workdir(cwd, first)
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 20 and "test_accuracy" in records[-1]
    assert (workdir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_quick_logs_progress_line_when_not_a_terminal(digits_runs):
    _, first, _, _ = digits_runs
    assert "step 20/20 | " in first.stderr and " steps/s" in first.stderr


def test_digits_quick_prints_model_summary_without_internals(digits_runs):
    _, first, _, _ = digits_runs
    assert "mlp/~/linear_0" in first.stdout and "85,002 parameters" in first.stdout
    assert "_LiftingModule" not in first.stdout and "Frame" not in first.stdout


def test_resuming_a_finished_run_says_nothing_is_left_to_train(digits_runs):
    _, _, _, resumed = digits_runs
    assert re.search(r"nothing left to train: the checkpoint in ckpt is at step 20 and "
                     r"--steps is 20", resumed.stdout), resumed.stdout[-2000:]
    assert "training digits for" not in resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["step"] == 20


def test_second_run_loads_every_program_from_the_compilation_cache(digits_runs):
    cwd, first, again, _ = digits_runs
    pattern = r"compilation cache runs/digits/jax_cache: (\d+) of (\d+) compiled programs"
    first_hits, first_compiles = map(int, re.search(pattern, first.stderr).groups())
    hits, compiles = map(int, re.search(pattern, again.stderr).groups())
    # A cold cache: most programs compile. (On jax 0.12 a program compiled twice in one run
    # loads the second time from the entry its first compile wrote: 2 of 22 in the first run.)
    assert first_compiles > 0 and first_hits < first_compiles
    assert hits == compiles > 0, again.stderr[-2000:]
    assert _workdir(cwd, again) != _workdir(cwd, first)  # a new run directory, one cache
    assert any((cwd / "runs" / "digits" / "jax_cache").iterdir())


def _help_flags(text: str, modules: set[str] | None = None) -> set[str]:
    """Flag names listed in absl help text (only under the given module headings, if any)."""
    names, section = set(), None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            section = line[:-1]
        elif modules is None or section in modules:
            match = re.match(r"  --(?:\[no\])?(\w+)", line)
            if match:
                names.add(match.group(1))
    return names


@pytest.mark.parametrize("script", _EXAMPLE_SCRIPTS)
def test_help_lists_every_flag_the_example_defines_shared_ones_included(script, tmp_path):
    full = _run([str(_EXAMPLES / script), "--helpfull"], tmp_path)
    short = _run([str(_EXAMPLES / script), "--help"], tmp_path)
    # absl exits with status 1 after printing help.
    assert "--workdir" in short.stdout, short.stderr[-2000:]
    assert "absl.flags:" in full.stdout, full.stderr[-2000:]
    # Sections are headed by the defining module: the script's path or a helper's name.
    headings = {line[:-1] for line in full.stdout.splitlines()
                if line.endswith(":") and not line.startswith(" ")}
    ours = {h for h in headings if h.endswith(script) or h.startswith("_")}
    defined = _help_flags(full.stdout, ours)
    assert {"steps", "workdir", "checkpoint_dir", "compilation_cache_dir", "quick"} <= defined
    assert defined <= _help_flags(short.stdout), defined - _help_flags(short.stdout)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_draws_a_bar_with_the_running_means():
    stream = _Terminal()
    progress = _common.Progress(first_step=0, total_steps=4, log_every=2, stream=stream)
    for step in range(1, 5):
        progress.update(step, {"loss": jnp.asarray(float(step))})
    progress.close()
    last = stream.getvalue().split("\r")[-1]
    assert "4/4" in last and "loss 3.5000" in last  # mean of steps 3 and 4


def test_progress_when_not_a_terminal_draws_no_bar():
    stream = io.StringIO()
    progress = _common.Progress(first_step=0, total_steps=2, log_every=1, stream=stream)
    assert progress.update(1, {"loss": jnp.asarray(1.0)}).startswith("step 1/2 | loss 1.0000")
    progress.close()
    assert stream.getvalue() == ""


def test_summary_table_of_layer_stack_shows_param_paths_not_internals():
    def forward(x):
        return hk.layer_stack(3, name="blocks")(lambda y: hk.Linear(4)(y))(x)

    table = _common.summary_table(forward, jnp.ones((2, 4)))
    row = next(line for line in table.splitlines() if line.startswith("blocks/linear "))
    assert "w: f32[3,4,4]" in row and "b: f32[3,4]" in row  # stacked over the 3 layers
    assert "60 parameters (240 B); input f32[2,4] -> output f32[2,4]" in table
    assert "Lifting" not in table and "Frame" not in table
