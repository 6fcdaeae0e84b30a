"""Checks ARCHITECTURE.md's layering by reading the imports of every module in hk_core."""

import ast
import pathlib
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parent.parent
_PACKAGE = _REPO / "hk_core"
_SRC = _PACKAGE / "_src"


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


def test_src_folder_has_python_modules():
    assert sorted(_SRC.rglob("*.py")), f"no modules found under {_SRC}"


# What each room under _src may import from the others (docs/architecture.md draws it).
# Rooms not listed as keys (training, checkpoint, distributed, export) sit on top and may
# import any room below them.
_ROOMS = ("core", "transforms", "layers", "nets", "inspect", "mixed_precision", "training",
          "checkpoint", "distributed", "export")
_MAY_IMPORT = {
    "core": ("core",),
    "transforms": ("core", "transforms"),
    "mixed_precision": ("core", "mixed_precision"),
    "layers": ("core", "layers"),
    "nets": ("core", "layers", "nets"),
    "inspect": ("core", "layers", "inspect"),
}
# Layers and nets see the core only through its facade, as a user's module sees `hk`.
_FACADE = "hk_core._src.core.facade"
_THROUGH_FACADE = ("layers", "nets")


def _room_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["hk_core", "_src"] else None


@pytest.mark.parametrize("room", sorted(_MAY_IMPORT))
def test_room_imports_only_the_rooms_below_it(room):
    allowed = _MAY_IMPORT[room] + ("__init__",)
    upward = [(f, name) for f, name in _imports(_SRC / room)
              if _room_of(name) not in (None, *allowed)]
    assert not upward, f"_src/{room} may import only {allowed}: {upward}"


@pytest.mark.parametrize("room", _THROUGH_FACADE)
def test_layers_and_nets_reach_the_core_only_through_its_facade(room):
    around = [(f, name) for f, name in _imports(_SRC / room)
              if _room_of(name) == "core"
              and name not in ("hk_core._src.core", _FACADE) and not name.startswith(_FACADE + ".")]
    assert not around, f"_src/{room} files import core internals, not {_FACADE}: {around}"


def test_every_room_is_known():
    rooms = {p.name for p in _SRC.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert rooms == set(_ROOMS), f"add a new room to _ROOMS and _MAY_IMPORT: {rooms}"


def _facade_attributes(path: pathlib.Path) -> set[tuple[str, ...]]:
    """Every ``hk.a`` or ``hk.a.b`` read in a file that imports the facade as ``hk``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            chain, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id == "hk":
                found.add(tuple(reversed(chain))[:2])
    return found


def test_facade_holds_only_public_names_and_kernel():
    import hk_core
    from hk_core._src.core import facade
    for name in facade.__all__:
        if name == "kernel":
            continue
        public = getattr(hk_core, name)
        if name == "data_structures":
            continue  # a module: its names are checked where layers use them, below
        assert public is getattr(facade, name), f"facade.{name} is not hk_core.{name}"


@pytest.mark.parametrize("room", _THROUGH_FACADE)
def test_layers_and_nets_use_only_public_names_of_the_facade(room):
    import hk_core
    from hk_core._src.core import facade
    used = set().union(*(_facade_attributes(p) for p in (_SRC / room).rglob("*.py")))
    private = []
    for chain in sorted(used):
        head = chain[0]
        if head not in facade.__all__:
            private.append(chain)
        elif head == "data_structures" and len(chain) > 1:
            if not hasattr(hk_core.data_structures, chain[1]):
                private.append(chain)
    assert not private, f"_src/{room} uses names hk_core does not export: {private}"


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
