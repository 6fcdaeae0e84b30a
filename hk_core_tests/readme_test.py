"""README.md as a user meets it: every Python block runs, in order, as pasted into one session.

The blocks run in a fresh process (no test fixtures, no conftest device flags), in an empty
directory, one after another. Each block sees the variables earlier blocks defined but not
the modules they imported, so a block that forgot an import fails here as it would for a
user who pastes only that block after defining the variables it uses.
"""

import ast
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

import hk_core

_REPO = pathlib.Path(__file__).resolve().parent.parent
_README = _REPO / "README.md"

# Runs [[first_line, code], ...] from the JSON file in argv[1]; line numbers in tracebacks
# are README.md's.
_DRIVER = textwrap.dedent("""
    import ast, json, sys
    variables = {}
    for line, code in json.load(open(sys.argv[1])):
        # Each block gets the variables of the earlier ones but not their imports; functions
        # it defines keep its own namespace (its imports) as their globals.
        namespace = {"__name__": "__main__", **variables}
        print(f"README.md:{line}: running", flush=True)
        exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), namespace)
        imported = {(a.asname or a.name).split(".")[0] for node in ast.walk(ast.parse(code))
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
        variables.update({k: v for k, v in namespace.items()
                          if k not in imported and not k.startswith("__")})
    print("README OK", flush=True)
""")


def _python_blocks(text: str) -> list[tuple[int, str]]:
    """Returns ``(first code line, code)`` of each fenced python block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, re.M | re.S):
        blocks.append((text[:match.start(1)].count("\n") + 1, match.group(1)))
    return blocks


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _run_readme(tmp_path: pathlib.Path, device_count: int) -> subprocess.CompletedProcess:
    blocks = tmp_path / "blocks.json"
    blocks.write_text(json.dumps(_python_blocks(_README.read_text(encoding="utf-8"))))
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # as a user's machine: one CPU device unless asked for more
    if device_count > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
    work = tmp_path / "work"
    work.mkdir()
    return subprocess.run([sys.executable, str(driver), str(blocks)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_readme_has_python_blocks_for_usage_training_checkpoints_export_and_mesh():
    codes = [code for _, code in _python_blocks(_README.read_text(encoding="utf-8"))]
    for needle in ("hk.transform", "make_train_step", "CheckpointManager", "export.load",
                   "make_mesh"):
        assert any(needle in code for code in codes), needle


@pytest.mark.parametrize("device_count", [1, 8], ids=["one_device", "eight_devices"])
def test_every_python_block_runs_in_order_in_a_fresh_process(tmp_path, device_count):
    result = _run_readme(tmp_path, device_count)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    assert result.stdout.rstrip().endswith("README OK"), result.stdout[-2000:]


def test_each_block_imports_the_modules_it_uses():
    # The driver removes earlier imports; this names the offender without running anything.
    for line, code in _python_blocks(_README.read_text(encoding="utf-8")):
        tree = ast.parse(code)
        imported = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
        used = {node.value.id for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)}
        modules = {"hk", "jax", "jnp", "np", "optax", "training", "checkpoint", "export",
                   "distributed"}
        missing = sorted((used & modules) - imported)
        assert not missing, f"README.md:{line}: uses {missing} without importing them"


def test_quickstart_is_two_commands_install_and_run_example_then_install_and_test():
    quickstart = _section(_README.read_text(encoding="utf-8"), "Quickstart")
    commands = re.findall(r"^```bash\n(.*?)^```$", quickstart, re.M | re.S)
    assert len(commands) == 2, commands
    assert all(c.count("\n") == 1 for c in commands), commands  # one line each
    example, tests = commands
    assert 'pip install ".[all]"' in example and "python examples/digits.py" in example
    assert 'pip install ".[all,test]"' in tests and "python -m pytest hk_core_tests" in tests


def test_pip_installs_hk_core_from_a_checkout_or_a_built_wheel_never_an_index():
    text = _README.read_text(encoding="utf-8")
    targets = re.findall(r"pip install ([^\s`]+)", text)
    assert targets
    for target in targets:
        assert target.strip("\"'").startswith((".", "dist/", "build")), target
    assert "hk_core[" not in text


def test_wheel_named_in_readme_is_the_one_this_version_builds():
    wheels = re.findall(r"dist/(hk_core-\d[^\s\[\"]*\.whl)", _README.read_text(encoding="utf-8"))
    assert wheels == [f"hk_core-{hk_core.__version__}-py3-none-any.whl"] * len(wheels)
    assert wheels
