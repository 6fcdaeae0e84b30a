"""Checks on the test files themselves: every ``pytest.raises`` names the message it expects.

An exception type alone passes for the wrong error; ``match=`` pins which one. The check
reads the syntax tree (``match=`` is often on the next line, so grep would miss it).
"""

import ast
import pathlib

_TESTS = pathlib.Path(__file__).resolve().parent


def _raises_without_match(source: str) -> list[int]:
    """Returns the line of every ``raises(...)`` call in ``source`` that has no ``match=``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "raises" and not any(k.arg == "match" for k in node.keywords):
            lines.append(node.lineno)
    return sorted(lines)


def test_scan_finds_raises_without_match_in_any_form():
    source = (
        "with pt.raises(ValueError):\n    f()\n"
        "with pytest.raises(\n    ValueError,\n    match='x'):\n    f()\n"
        "with raises(KeyError):\n    f()\n"
        "pytest.raises(TypeError, f, 1)\n"
    )
    assert _raises_without_match(source) == [1, 7, 9]


def test_every_pytest_raises_in_the_tests_has_a_match():
    missing = [f"{path.relative_to(_TESTS)}:{line}"
               for path in sorted(_TESTS.rglob("*.py"))
               for line in _raises_without_match(path.read_text(encoding="utf-8"))]
    assert not missing, f"pytest.raises without match= at {missing}"
