"""Checks ARCHITECTURE.md's layering by reading the imports of every module in hk_core."""

import ast
import pathlib
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parent.parent
_PACKAGE = _REPO / "hk_core"
_SRC = _PACKAGE / "_src"

_HIGHER_THAN_NETS = ("training", "checkpoint", "distributed", "export")


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(_REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: pathlib.Path) -> set[str]:
    """Returns every dotted name ``path`` imports; ``from a import b`` gives ``a`` and ``a.b``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: resolve it against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _imports(folder: pathlib.Path) -> list[tuple[str, str]]:
    """Returns ``(file relative to the repo, imported name)`` for every .py under ``folder``."""
    return [
        (str(path.relative_to(_REPO)), name)
        for path in sorted(folder.rglob("*.py"))
        for name in sorted(_imported_names(path))
    ]


def _is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _src(*layers: str) -> tuple[str, ...]:
    return tuple(f"hk_core._src.{layer}" for layer in layers)


def test_src_folder_has_python_modules():
    assert sorted(_SRC.rglob("*.py")), f"no modules found under {_SRC}"


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("core", _src("layers", "nets", *_HIGHER_THAN_NETS) + ("optax", "orbax")),
        ("layers", _src("nets", *_HIGHER_THAN_NETS)),
        ("nets", _src(*_HIGHER_THAN_NETS)),
    ],
)
def test_layer_imports_nothing_from_a_higher_layer(layer, forbidden):
    upward = [(f, name) for f, name in _imports(_SRC / layer) if _is_under(name, forbidden)]
    assert not upward, f"_src/{layer} imports from a higher layer: {upward}"


@pytest.mark.parametrize("library, home", [("optax", "training"), ("orbax", "checkpoint")])
def test_third_party_library_is_imported_only_by_its_layer(library, home):
    outside = [
        (f, name) for f, name in _imports(_PACKAGE)
        if _is_under(name, (library,)) and not f.startswith(f"hk_core/_src/{home}/")
    ]
    assert not outside, f"{library} may only be imported under _src/{home}: {outside}"


@pytest.mark.parametrize(
    "what, forbidden",
    [
        ("JAX internals", ("jax._src", "jax.interpreters")),
        ("pickle", ("pickle", "_pickle", "cPickle", "cloudpickle", "dill")),
        ("peer libraries", ("haiku", "flax", "equinox")),
    ],
)
def test_package_never_imports(what, forbidden):
    found = [(f, name) for f, name in _imports(_PACKAGE) if _is_under(name, forbidden)]
    assert not found, f"hk_core imports {what}: {found}"


def test_src_modules_never_import_the_public_package():
    # Inside _src, importing hk_core's public modules could form a cycle through __init__.
    public = [
        (f, name) for f, name in _imports(_SRC)
        if _is_under(name, ("hk_core",)) and not _is_under(name, ("hk_core._src",))
    ]
    assert not public, f"_src modules import the public hk_core package: {public}"


def test_import_hk_core_loads_neither_optax_nor_orbax():
    code = (
        "import sys, hk_core; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('optax', 'orbax')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=_REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
