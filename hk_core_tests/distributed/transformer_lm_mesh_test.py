"""examples/transformer_lm.py --mesh data=4,model=2 runs sharded and explains the rules."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mesh_run(tmp_path_factory):
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    command = [sys.executable, str(_REPO / "examples" / "transformer_lm.py"), "--quick",
               "--quick_steps=2", "--seq_len=16", "--model_size=32", "--mesh=data=4,model=2",
               f"--workdir={tmp_path_factory.mktemp('lm')}"]
    return subprocess.run(command, cwd=_REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _explain_rows(stdout):
    lines = stdout.splitlines()
    start = lines.index("sharding on mesh {'data': 4, 'model': 2}:")
    rows = {}
    for line in lines[start + 2:]:
        if line.startswith("total"):
            break
        rows[line.split()[0]] = line
    return rows


def test_sharded_run_exits_cleanly_with_final_json(mesh_run):
    assert mesh_run.returncode == 0, mesh_run.stderr[-3000:]
    assert json.loads(mesh_run.stdout.strip().splitlines()[-1])["step"] == 2


def test_explain_table_shows_column_parallel_query_at_half_bytes(mesh_run):
    row = _explain_rows(mesh_run.stdout)["blocks/multi_head_attention/query/w"]
    # [2 layers, 32, 32] float32 = 8192 bytes, split over model=2.
    assert "P(None, None, 'model')" in row and row.split()[-2:] == ["8192", "4096"]


def test_explain_table_shows_replicated_norms(mesh_run):
    row = _explain_rows(mesh_run.stdout)["final_norm/scale"]
    assert "(replicated)" in row and row.split()[-2:] == ["128", "128"]
