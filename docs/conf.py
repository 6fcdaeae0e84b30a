"""Sphinx configuration of hk_core's documentation site.

Build it from the repository root (BUILD.md):

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

Guides are MyST Markdown; the API reference is generated from docstrings by autodoc and
autosummary (Google style through napoleon). Nitpicky mode is on, so every cross-reference
to an hk_core name must resolve; references that point into ``hk_core._src`` are redirected
to the public name of the same object, and names outside hk_core (jax, optax, the standard
library) are left as plain text because the site has no network access for intersphinx.
"""

import importlib
import os
import pathlib
import sys

from docutils import nodes
from sphinx.domains.python import PythonDomain
from sphinx.pycode import ModuleAnalyzer

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))  # document the checkout, not an installed copy
# One CPU device is all the docs need; set before autodoc first imports jax.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import hk_core  # noqa: E402

project = "hk_core"
author = "hk_core authors"
copyright = "hk_core authors"  # noqa: A001 (Sphinx reads this name)
release = hk_core.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md"]
templates_path = ["_templates"]

# Every hk_core cross-reference must resolve (-n on the command line turns this on too).
nitpicky = True
# No intersphinx (the build runs offline): names outside hk_core stay plain text.
nitpick_ignore_regex = [(r"py:.*", r"(?!hk_core\b).*")]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" sections become fields, so NamedTuple fields are not described twice.
napoleon_use_ivar = True

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = f"hk_core {release}"
html_favicon = "favicon.svg"  # also spares the browser a 404 on /favicon.ico
# An explicit mode: with none stored the theme's script logs a console error.
html_context = {"default_mode": "light"}
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
}

# The public modules; the API reference and its test cover each one's ``__all__``.
PUBLIC_MODULES = (
    "hk_core", "hk_core.training", "hk_core.checkpoint", "hk_core.distributed",
    "hk_core.export", "hk_core.mixed_precision", "hk_core.initializers", "hk_core.nets",
    "hk_core.experimental", "hk_core.data_structures", "hk_core.config", "hk_core.testing",
    "hk_core.pad", "hk_core.errors",
)


def _public_names() -> dict[int, str]:
    """Maps ``id(object)`` to the first public dotted name that exports it."""
    names: dict[int, str] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            names.setdefault(id(getattr(module, name)), f"{module_name}.{name}")
    return names


def _import_dotted(path: str):
    """Returns the object at ``path`` (``pkg.module.attr.attr``), or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _relabel(contnode, text: str):
    """A copy of a reference's content node that shows ``text``."""
    if isinstance(contnode, nodes.Text):
        return nodes.Text(text)
    return contnode.__class__("", text, classes=contnode.get("classes", []))


def _redirect_private_reference(app, env, node, contnode):
    """Resolves ``hk_core._src.x.Name`` (from type hints) to the public ``Name``."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("hk_core._src."):
        return None
    obj = _import_dotted(target)
    public = None if obj is None else _PUBLIC.get(id(obj))
    if public is None:
        if obj is None:
            return None  # a name that does not exist: nitpicky mode reports it
        # A helper that is not part of the API (a TypeVar, a private base class, the
        # ``FlatMap`` a function returns): shown as its short name, without a link.
        return _relabel(contnode, target.rsplit(".", 1)[-1])
    domain = env.get_domain("py")
    node["reftarget"] = public
    if contnode.astext() == target:  # show the public name, not the private path
        contnode = _relabel(contnode, public)
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], public,
                               node, contnode)


def _source_attribute_doc(obj) -> list[str] | None:
    """The ``#:`` comment or string docstring of a module-level alias in ``hk_core._src``."""
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("hk_core._src.") or module is None:
            continue
        for attr, value in vars(module).items():
            if value is not obj:
                continue
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
            if ("", attr) in docs:
                return list(docs[("", attr)])
    return None


def _alias_docstrings(app, what, name, obj, options, lines):
    """Type aliases and sentinels carry their docs in source comments, not ``__doc__``."""
    if what not in ("data", "attribute") or not name.startswith("hk_core"):
        return
    doc = _source_attribute_doc(obj)
    if doc is not None:
        lines[:] = doc


def _public_bases(app, name, obj, options, bases):
    """Shows the nearest public ancestors instead of private base classes."""

    def public(cls):
        if not cls.__module__.startswith("hk_core._src") or id(cls) in _PUBLIC:
            return [cls]
        return [b for base in cls.__bases__ for b in public(base)]

    bases[:] = list(dict.fromkeys(b for base in bases for b in public(base)))


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """NamedTuple fields are described by the class's ``Attributes:``, not once more each."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


_note_object = PythonDomain.note_object


def _note_object_once(self, name, objtype, node_id, aliased=False, location=None):
    # A class re-exported twice (``hk_core.lift`` and ``hk_core.experimental.lift``) is
    # documented on both pages, and autodoc registers its private canonical name
    # (``hk_core._src...``) from each: keep the first instead of warning about a duplicate.
    if aliased and name in self.objects and self.objects[name].aliased:
        return
    _note_object(self, name, objtype, node_id, aliased=aliased, location=location)


PythonDomain.note_object = _note_object_once
_PUBLIC: dict[int, str] = {}


def setup(app):
    _PUBLIC.update(_public_names())
    app.connect("missing-reference", _redirect_private_reference)
    app.connect("autodoc-process-docstring", _alias_docstrings)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
