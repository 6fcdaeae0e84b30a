"""Packaging metadata: one version source, the license, py.typed and the changelog.

Building, `twine check` and installing the wheel and sdist into a fresh venv take minutes,
so they run in CI as `.ci/package_check.sh`; these checks read files only.
"""

import ast
import configparser
import pathlib
import re

import hk_core

_REPO = pathlib.Path(__file__).resolve().parent.parent


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(_REPO / "setup.cfg")
    return config


def test_setup_cfg_reads_the_version_from_hk_core():
    assert _setup_cfg()["metadata"]["version"] == "attr: hk_core.__version__"


def test_version_is_a_literal_setuptools_reads_without_importing_jax():
    tree = ast.parse((_REPO / "hk_core" / "__init__.py").read_text(encoding="utf-8"))
    versions = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["__version__"]]
    assert len(versions) == 1 and isinstance(versions[0], ast.Constant)
    assert versions[0].value == hk_core.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", hk_core.__version__)


def test_license_is_the_apache_2_0_text_and_declared():
    text = (_REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert _setup_cfg()["metadata"]["license"] == "Apache-2.0"


def test_py_typed_marker_exists_and_ships_as_package_data():
    assert (_REPO / "hk_core" / "py.typed").is_file()
    assert _setup_cfg()["options.package_data"]["hk_core"].split() == ["py.typed"]


def test_changelog_has_a_section_for_the_current_version():
    text = (_REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(hk_core.__version__)}\]", text, re.M)


def test_install_requires_only_what_hk_core_imports():
    requires = _setup_cfg()["options"]["install_requires"].split()
    assert requires == ["jax>=0.10.2", "jaxlib>=0.10.2", "numpy", "absl-py"]


def test_examples_extra_installs_progress_bar_and_plotting():
    examples = _setup_cfg()["options.extras_require"]["examples"].split()
    assert {"scikit-learn", "tqdm", "matplotlib"} <= set(examples)
