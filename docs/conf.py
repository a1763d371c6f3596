"""Sphinx configuration for labkit's documentation site (`make docs`).

Build: ``sphinx-build -M html docs build/docs -E -W --keep-going -n``: every
warning fails the build, and ``-n`` (nitpicky) makes every cross-reference
that does not resolve a warning, so a broken reference fails it too. ``-E``
reads every page each time: an incremental build only re-checks the pages
that changed, so it would pass on a second run after a failed one.

* The README is the home page (``index.md`` includes ``../README.md``).
* The notebooks are rendered from their committed outputs and never run
  (``nb_execution_mode = "off"``). ``docs/notebooks`` is a symlink to
  ``../notebooks``, committed as a symlink, so a fresh clone builds the
  notebooks as they are, with nothing copied into the source tree.
* The API reference (``api.md``) comes from the docstrings with autodoc.
* ``facts.md`` is the register of facts the kit relies on. The README and
  the notebooks link to its sections with paths that work in the
  repository (``docs/facts.md#slug`` from the README,
  ``../docs/facts.md#slug`` from ``notebooks/``); the include in
  ``index.md`` (``:relative-docs: docs/``) and ``_facts_links_from_notebooks``
  below make the same links resolve on the site, where every one is
  checked, its section included.

No network is used at build time: there is no intersphinx, and references
to types outside labkit (pandas, numpy, the standard library) are listed in
``nitpick_ignore_regex`` below. References to labkit's own objects are all
checked.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

ROOT = Path(__file__).resolve().parent.parent
# Document the code of this checkout, whether or not labkit is installed.
sys.path.insert(0, str(ROOT))

import labkit  # noqa: E402

project = "labkit"
author = "labkit contributors"
copyright = "labkit contributors"
release = version = labkit.__version__

extensions = [
    "myst_nb",  # Markdown (myst-parser) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # labkit.lines.read_lines has a NumPy-style docstring
]

root_doc = "index"
# Jupyter's autosaves next to the notebooks are not pages.
exclude_patterns = ["**/.ipynb_checkpoints"]

# -- Markdown ----------------------------------------------------------------------
myst_heading_anchors = 3  # the README links to its own sections (#without-a-registry)

# -- Notebooks ----------------------------------------------------------------------
nb_execution_mode = "off"  # the committed outputs are the ones shown; nothing is run
# Widgets: the saved outputs carry the widget view plus a plain-text form written to
# be read (labkit.display.show). A widget needs JavaScript from a CDN to draw itself
# from the saved state, so the site would show nothing offline (or from file://):
# show the plain text instead, and load no widget JavaScript.
nb_mime_priority_overrides = [("*", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js: dict[str, dict[str, str]] = {}

# -- API reference ------------------------------------------------------------------
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

# Nitpicky: every reference must resolve, except references to objects outside labkit
# (the standard library, pandas, ...), whose documentation is not part of this site: no
# intersphinx, since the build must not need the network. The patterns match whole
# targets (re.fullmatch): another package's module, or a dotted name inside one
# (``pandas.DataFrame``, ``socket.socket``). A bare name (``:func:`stat```) or any
# ``labkit.`` name is never ignored.
_EXTERNAL = "|".join(
    [
        *sorted(sys.stdlib_module_names),
        "pandas",
        "pd",
        "numpy",
        "np",
        "yaml",
        "kubernetes",
        "tqdm",
        "ipywidgets",
        "matplotlib",
        "IPython",
    ]
)
nitpick_ignore_regex = [
    (r"py:mod", rf"(?:{_EXTERNAL})(?:\..+)?"),
    (r"py:(?!mod$).+", rf"(?:{_EXTERNAL})\..+"),
]

# -- HTML ---------------------------------------------------------------------------
html_theme = "furo"
html_title = f"labkit {release}"


# -- Names that Python resolves but Sphinx does not ----------------------------------
# A docstring may name an object as its module sees it (``:class:`PodGone``` in
# labkit/lab.py, which imports PodGone from labkit.errors) or by a public alias
# (``labkit.Lab`` for ``labkit.lab.Lab``). Sphinx looks such names up only among the
# documented names. This handler resolves the name the way Python would, in the module
# (and class) the docstring belongs to, and links to where that very object is
# documented. A name that Python cannot resolve, or whose object is not documented,
# stays a broken reference and fails the build.


def _lookup(dotted: str) -> object | None:
    """The object ``dotted`` names (a module, or attributes of one), else None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        except Exception:
            return None
        for attr in parts[cut:]:
            obj = inspect.getattr_static(obj, attr, _MISSING)
            if obj is _MISSING:
                return None
        return obj
    return None


_MISSING = object()
_DOCUMENTED: dict[str, object] = {}  # "key": the domain's objects it was built from, "found": the map


def _unwrap(obj: object) -> object:
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    if isinstance(obj, property):
        return obj.fget
    return obj


def _documented(env: BuildEnvironment) -> dict[int, str]:
    """Documented labkit objects by the identity of the Python object they describe."""
    domain = env.get_domain("py")
    key = (id(domain.objects), len(domain.objects))
    cache = _DOCUMENTED
    if cache.get("key") != key:
        found: dict[int, str] = {}
        for name, entry in domain.objects.items():
            if not name.startswith("labkit") or entry.aliased:
                continue
            obj = _unwrap(_lookup(name))
            if obj is not None and (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
                found.setdefault(id(obj), name)
        cache.update(key=key, found=found)
    return cache["found"]


def _resolve_as_python_does(
    app: Sphinx, env: BuildEnvironment, node: nodes.Element, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    module = node.get("py:module")
    cls = node.get("py:class")
    scopes = []
    if module and cls:
        scopes.append(f"{module}.{cls}")
        owner = _lookup(f"{module}.{cls}")
        if inspect.isclass(owner):  # a class documented under an alias: look in its own module too
            scopes.append(owner.__module__)
    if module:
        scopes.append(module)
    candidates = [f"{scope}.{target}" for scope in scopes] + [target]
    documented = _documented(env)
    for candidate in candidates:
        if not candidate.startswith("labkit"):
            continue
        obj = _unwrap(_lookup(candidate))
        name = documented.get(id(obj)) if obj is not None else None
        if name is None:
            continue
        domain = env.get_domain("py")
        return domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], name, node, contnode
        ) or domain.resolve_xref(env, node["refdoc"], app.builder, "obj", name, node, contnode)
    return None


# -- Dataclass fields with a default_factory ------------------------------------------
# inspect shows their default as ``<factory>``, which is not Python: Sphinx then cannot
# parse the signature and splits it at every comma, ``tuple[int, int]`` included.
# Show the factory's call instead (``list()``), or ``...`` when it has no plain name.


def _factory_defaults(
    app: Sphinx, what: str, name: str, obj: object, options: object, signature: str | None, annotation: str | None
) -> tuple[str | None, str | None] | None:
    if not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    calls = iter(
        f"{f.default_factory.__name__}()" if f.default_factory.__name__.isidentifier() else "..."
        for f in dataclasses.fields(obj)
        if f.init and f.default_factory is not dataclasses.MISSING
    )
    return re.sub(r"<factory>", lambda _: next(calls, "..."), signature), annotation


# -- Module constants without a docstring ----------------------------------------------
# autodoc would show the docstring of their type (``dict``'s), which says nothing about
# them and is not reST; show only their value and what api.md says about them.


def _no_type_docstring(app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    if what not in ("data", "attribute") or inspect.isclass(obj) or not lines:
        return
    type_doc = inspect.getdoc(type(obj)) or ""
    if type_doc and [line.strip() for line in lines if line.strip()] == [
        line.strip() for line in type_doc.splitlines() if line.strip()
    ]:
        lines.clear()


# -- Links from the notebooks to the register of facts ----------------------------------
# A notebook links to ``../docs/facts.md#slug``: right in the repository and in JupyterLab,
# where the notebook is ``notebooks/X.ipynb``. On the site the notebook is the page
# ``notebooks/X`` (``docs/notebooks`` links to ``../notebooks``), where that path names
# ``docs/docs/facts.md`` (and ``../facts.md`` would not do either: the operating system
# takes ``..`` after following the symlink). Here it becomes ``/facts.md``, which Sphinx
# reads from the source directory, and MyST then resolves it like any link between pages,
# checking the section too (``myst_heading_anchors``): a link to a page or a section that
# does not exist fails the build.

_FACTS_FROM_NOTEBOOKS = "](../docs/facts.md"


def _facts_links_from_notebooks(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname.startswith("notebooks/"):
        source[0] = source[0].replace(_FACTS_FROM_NOTEBOOKS, "](/facts.md")


def setup(app: Sphinx) -> None:
    app.connect("source-read", _facts_links_from_notebooks)
    app.connect("autodoc-process-docstring", _no_type_docstring)
    app.connect("missing-reference", _resolve_as_python_does)
    app.connect("autodoc-process-signature", _factory_defaults)
