"""Every ```python block of the guides (docs/*.md) runs, in page order, as a user pastes them.

Each page runs in its own fresh Python process, in an empty directory, with one CPU device
(as on a laptop) unless a block sets ``XLA_FLAGS`` itself before importing jax. The blocks
of a page share one namespace, as in one interactive session. Code that must not run (the
Flax side of the Flax guide, shell commands) is fenced as ```text or ```bash.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[2]
_DOCS = _REPO / "docs"

# Runs [[first_line, code], ...] from argv[2] in one namespace; tracebacks name argv[1] and
# its line numbers, so a failure points at the page and the line.
_DRIVER = textwrap.dedent("""
    import json, sys
    page, blocks = sys.argv[1], json.load(open(sys.argv[2]))
    namespace = {"__name__": "__main__"}
    for line, code in blocks:
        print(f"{page}:{line}: running", flush=True)
        exec(compile("\\n" * (line - 1) + code, page, "exec"), namespace)
    print("PAGE OK", flush=True)
""")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Returns ``(first code line, code)`` of each ```python block of a Markdown page."""
    return [(text[:m.start(1)].count("\n") + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, re.M | re.S)]


def _pages() -> list[pathlib.Path]:
    return sorted(p for p in _DOCS.glob("*.md")
                  if python_blocks(p.read_text(encoding="utf-8")))


def test_guides_have_code_to_run():
    names = {p.stem for p in _pages()}
    for guide in ("getting_started", "from_haiku", "from_flax", "training", "checkpoints",
                  "distribution", "export", "mixed_precision"):
        assert guide in names, f"docs/{guide}.md has no python block"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_page_code_blocks_run_in_order_in_a_fresh_process(page, tmp_path):
    blocks = tmp_path / "blocks.json"
    blocks.write_text(json.dumps(python_blocks(page.read_text(encoding="utf-8"))))
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    env = dict(os.environ, PYTHONPATH=str(_REPO), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # the test session's 8 devices are not a reader's
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, str(driver), f"docs/{page.name}", str(blocks)], cwd=work, env=env,
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    assert result.stdout.rstrip().endswith("PAGE OK"), result.stdout[-2000:]
