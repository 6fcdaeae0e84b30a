"""The API reference covers every public name: listed in docs/api, then built with a page each.

The built-site tests build the docs once per session with Sphinx into a temporary folder
(about 75 s of CPU), or read an existing build named by ``HK_CORE_DOCS_HTML`` (CI builds the
site with warnings as errors first and points this variable at it). They are skipped when
Sphinx is not installed (the ``docs`` extra).
"""

import html
import importlib
import os
import pathlib
import re
import subprocess
import sys
import zlib

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[2]
_DOCS = _REPO / "docs"

# The public modules of issue 14; each one's __all__ must be in the reference.
PUBLIC_MODULES = (
    "hk_core", "hk_core.training", "hk_core.checkpoint", "hk_core.distributed",
    "hk_core.export", "hk_core.mixed_precision", "hk_core.initializers", "hk_core.nets",
    "hk_core.experimental", "hk_core.data_structures", "hk_core.config", "hk_core.testing",
    "hk_core.pad", "hk_core.errors",
)


def _public_names() -> list[tuple[str, str]]:
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names += [(module_name, name) for name in module.__all__]
    return names


def _rst_page(module_name: str) -> pathlib.Path:
    return _DOCS / "api" / f"{module_name.removeprefix('hk_core.')}.rst"


def _listed_in_sources(module_name: str) -> set[str]:
    """Names an API page lists: autosummary entries and ``:mod:`` links to submodules."""
    text = _rst_page(module_name).read_text(encoding="utf-8")
    entries = set(re.findall(r"^   ([A-Za-z_][A-Za-z0-9_]*)$", text, re.M))
    submodules = set(re.findall(rf":mod:`{re.escape(module_name)}\.(\w+)`", text))
    return entries | submodules


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_api_page_lists_exactly_the_modules_all(module_name):
    module = importlib.import_module(module_name)
    listed = _listed_in_sources(module_name)
    missing = sorted(set(module.__all__) - listed)
    stale = sorted(listed - set(module.__all__))
    assert not missing, f"{_rst_page(module_name)} lacks {missing}: add them to its autosummary"
    assert not stale, f"{_rst_page(module_name)} lists {stale}, which {module_name}.__all__ lacks"


def _read_inventory(path: pathlib.Path) -> dict[str, tuple[str, str]]:
    """Parses Sphinx's objects.inv (version 2): ``{name: (domain:role, uri)}``."""
    *header, body = path.read_bytes().split(b"\n", 4)
    assert header[0] == b"# Sphinx inventory version 2", header
    entries = {}
    for line in zlib.decompress(body).decode("utf-8").splitlines():
        match = re.match(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if match:
            name, role, _, uri, _ = match.groups()
            entries[name] = (role, uri.replace("$", name) if uri.endswith("$") else uri)
    return entries


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """The HTML folder of a docs build, and the warnings that build printed."""
    given = os.environ.get("HK_CORE_DOCS_HTML")
    if given:
        return pathlib.Path(given), ""
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    pytest.importorskip("sphinx_book_theme", reason="the docs extra is not installed")
    pytest.importorskip("myst_parser", reason="the docs extra is not installed")
    out = tmp_path_factory.mktemp("docs") / "html"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "--keep-going", "-q", "-b", "html",
         str(_DOCS), str(out)],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert (out / "objects.inv").exists(), result.stderr[-4000:]
    return out, result.stderr


def test_docs_build_has_no_warnings(built_site):
    _, warnings = built_site
    assert "WARNING" not in warnings and "ERROR" not in warnings, warnings[-4000:]


@pytest.fixture(scope="session")
def inventory(built_site) -> dict[str, tuple[str, str]]:
    return _read_inventory(built_site[0] / "objects.inv")


def _entry_html(page: str, full_name: str) -> str:
    """The HTML of one object's description: from its signature to the next signature."""
    start = page.find(f'id="{full_name}"')
    assert start != -1, f"no description with id {full_name!r}"
    end = page.find('<dt class="sig sig-object py"', start + 1)
    return page[start:end if end != -1 else None]


def _alias_target(entry: str, inventory: dict) -> str | None:
    """The documented name an ``alias of X`` entry links to, if it is one."""
    match = re.search(r'alias of <a class="reference internal" href="[^"]*#([\w.]+)"', entry)
    return match.group(1) if match and match.group(1) in inventory else None


@pytest.mark.parametrize("module_name, name", _public_names(),
                         ids=[f"{m}.{n}" for m, n in _public_names()])
def test_public_name_has_a_page_with_signature_docstring_and_example(
        built_site, inventory, module_name, name):
    full = f"{module_name}.{name}"
    obj = getattr(importlib.import_module(module_name), name)
    if isinstance(obj, type(sys)):  # a submodule: its own page, with the module docstring
        roles = {inventory.get(name, ("",))[0] for name in (full, obj.__name__)}
        assert "py:module" in roles, f"{full} has no module page"
        return
    assert full in inventory, f"{full} is not in the built API reference (objects.inv)"
    role, uri = inventory[full]
    page = (built_site[0] / uri.split("#")[0]).read_text(encoding="utf-8")
    entry = _entry_html(page, full)
    target = _alias_target(entry, inventory)
    if target is not None:  # ``ParamContext = GetterContext``: the target's page documents it
        role, uri = inventory[target]
        page = (built_site[0] / uri.split("#")[0]).read_text(encoding="utf-8")
        entry = _entry_html(page, target)
    if role == "py:function":
        assert 'class="sig-paren"' in entry, f"{full}: no signature on {uri}"
    elif role in ("py:class", "py:exception"):
        assert 'class="sig-name descname"' in entry, f"{full}: no signature on {uri}"
    text = html.unescape(re.sub(r"<[^>]+>", "", entry))
    assert len(text.split()) > 8, f"{full}: no docstring on {uri}: {text[:200]!r}"
    assert ">>>" in text, f"{full}: no >>> example on {uri}"
