"""examples/transformer_lm.py --serve_from: params restored alone from a checkpoint, then sampled."""

import os
import pathlib
import re
import subprocess
import sys

_REPO = pathlib.Path(__file__).resolve().parent.parent
_SMALL = ["--seq_len=16", "--model_size=32", "--num_layers=1", "--num_heads=2"]


def _run(*flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine has
    return subprocess.run(
        [sys.executable, str(_REPO / "examples" / "transformer_lm.py"), *_SMALL, *flags],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_serve_from_restores_params_without_optimizer_state_and_samples(tmp_path):
    trained = _run("--quick", f"--checkpoint_dir={tmp_path / 'ckpt'}",
                   f"--workdir={tmp_path / 'work'}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    served = _run(f"--serve_from={tmp_path / 'ckpt'}", "--sample_chars=24")
    assert served.returncode == 0, served.stderr[-3000:]
    assert "no optimizer state" in served.stdout
    sample = re.search(r"^sample: '(.*)'$", served.stdout, re.MULTILINE)
    assert sample is not None and len(sample.group(1)) == 24, served.stdout
    assert set(sample.group(1)) <= set("abcdefghijklmnopqrstuvwxyz. "), sample.group(1)
