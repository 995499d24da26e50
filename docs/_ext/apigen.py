"""Generate the API reference from the packages' ``__all__`` lists (a Sphinx extension).

Nothing is listed by hand: at ``builder-inited`` every importable public module of the packages
in ``apigen_packages`` (no path component starting with ``_``) that defines ``__all__`` gets one
page ``api/<module>.rst``. Each public name is documented once, on the page of the module that
defines it when that module exports it, else on the first (outermost) module that exports it;
other modules that re-export the name list it with a link to that page. So a new module, a module
moved behind a deprecation alias (its import warns and it is skipped), or a new name in an
``__all__`` shows up without editing the docs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


@dataclass
class ModulePage:
    name: str
    module: types.ModuleType
    documented: list[tuple[str, Any]] = field(default_factory=list)  # (name, object) homed here
    reexported: list[tuple[str, str]] = field(default_factory=list)  # (name, home module)


def _is_private(modname: str) -> bool:
    return any(part.startswith("_") for part in modname.split("."))


def public_modules(package: str) -> list[types.ModuleType]:
    """The package and its public submodules that import without a DeprecationWarning, sorted."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if not _is_private(info.name):
            names.append(info.name)
    mods = []
    for name in sorted(names):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            try:
                mod = importlib.import_module(name)
            except ImportError as exc:  # an optional dependency (e.g. CuPy) that is not installed
                logger.info(f"apigen: skipping {name} ({exc})")
                continue
        if any(issubclass(w.category, DeprecationWarning) and name in str(w.message) for w in caught):
            logger.info(f"apigen: skipping {name} (deprecated alias)")
            continue
        if isinstance(getattr(mod, "__all__", None), (list, tuple)):
            mods.append(mod)
    return mods


def _documentable(name: str, obj: Any) -> bool:
    return not (name.startswith("__") or isinstance(obj, types.ModuleType))


def collect(packages: list[str]) -> list[ModulePage]:
    """One page per public module with ``__all__``; each public object homed on one page."""
    pages = {m.__name__: ModulePage(m.__name__, m) for pkg in packages for m in public_modules(pkg)}
    home: dict[int, str] = {}
    # first pass: objects whose defining module is public and exports them
    for page in pages.values():
        for name in page.module.__all__:
            obj = getattr(page.module, name)
            defining = getattr(obj, "__module__", None)
            if _documentable(name, obj) and defining == page.name:
                home.setdefault(id(obj), page.name)
    # second pass: everything else is homed on the first (outermost) module exporting it
    for page in sorted(pages.values(), key=lambda p: (p.name.count("."), p.name)):
        for name in page.module.__all__:
            obj = getattr(page.module, name)
            if _documentable(name, obj):
                home.setdefault(id(obj), page.name)
    for page in pages.values():
        for name in page.module.__all__:
            obj = getattr(page.module, name)
            if not _documentable(name, obj):
                continue
            where = home[id(obj)]
            if where == page.name and all(o is not obj for _, o in page.documented):
                page.documented.append((name, obj))
            else:
                page.reexported.append((name, where))
    return sorted(pages.values(), key=lambda p: p.name)


def _directive(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def _target(name: str, home: str, obj_pages: dict[str, ModulePage]) -> str:
    obj = dict(obj_pages[home].documented).get(name)
    if obj is None:  # re-exported under another name: link the module
        return f":mod:`{home}`"
    role = "class" if inspect.isclass(obj) else ("func" if callable(obj) else "data")
    return f":py:{role}:`{home}.{name}`"


def render(page: ModulePage, pages: dict[str, ModulePage]) -> str:
    title = f"``{page.name}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {page.name}", ""]
    if page.reexported:
        lines += ["Also available here:", ""]
        for name, home in sorted(page.reexported):
            lines.append(f"- ``{name}``: {_target(name, home, pages)}")
        lines.append("")
    for name, obj in page.documented:
        opts = ["   :members:", "   :show-inheritance:"] if inspect.isclass(obj) else []
        if _directive(obj) == "autodata":
            opts = ["   :no-value:"]
        lines += [f".. {_directive(obj)}:: {page.name}.{name}", *opts, ""]
    return "\n".join(lines)


_HOME: dict[int, str] = {}  # id(object) -> the full name it is documented under


def generate(app: Sphinx) -> None:
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    pages = collect(list(app.config.apigen_packages))
    _HOME.clear()
    for page in pages:
        for name, obj in page.documented:
            _HOME[id(obj)] = f"{page.name}.{name}"
    by_name = {p.name: p for p in pages}
    wanted = set()
    for page in pages:
        path = out / f"{page.name}.rst"
        text = render(page, by_name)
        wanted.add(path.name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:  # keep mtimes stable
            path.write_text(text, encoding="utf-8")
    for stale in out.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()


@dataclass(frozen=True)
class _Field:
    """Stands for an annotated attribute that has no class-level value."""

    name: str


def _lookup(dotted: str) -> Any:
    """The object named ``dotted`` (module path, then attributes), or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if hasattr(obj, attr):
                obj = getattr(obj, attr)
            elif attr in getattr(obj, "__annotations__", {}):  # a dataclass field, no default
                obj = _Field(f"{getattr(obj, '__qualname__', '?')}.{attr}")
            else:
                return None
        return obj
    return None


def documented_name(target: str, module: str | None, klass: str | None) -> str | None:
    """The documented full name for ``target`` as written in ``module`` (or class ``klass``)."""
    scopes = [f"{module}.{klass}." if module and klass else "", f"{module}." if module else "", ""]
    for prefix in dict.fromkeys(scopes):
        parts = (prefix + target).split(".")
        scope = prefix.count(".")
        for cut in range(len(parts), scope, -1):  # the longest documented head, then attributes
            obj = _lookup(".".join(parts[:cut]))
            if obj is not None and id(obj) in _HOME:
                return ".".join([_HOME[id(obj)], *parts[cut:]])
    return None


def resolve_reexports(app: Sphinx, env: Any, node: pending_xref, contnode: nodes.Element) -> Any:
    """Resolve a reference written to a re-exported, relative or short name to where it is
    documented.

    References to private names (a component starting with ``_``) and to real objects that the
    API reference does not document render as plain code; a reference to a name that does not
    exist is left unresolved, so the nitpicky build reports it.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    if any(part.startswith("_") and not part.startswith("__") for part in target.split(".")):
        return contnode
    module, klass = node.get("py:module"), node.get("py:class")
    full = documented_name(target, module, klass)
    if full is None and "." not in target:  # a short name unique among the documented ones
        matches = [name for name in _HOME.values() if name.rsplit(".", 1)[-1] == target]
        full = matches[0] if len(matches) == 1 else None
    domain = env.get_domain("py")
    if full is not None and full != target:
        found = domain.resolve_xref(env, node["refdoc"], app.builder, "obj", full, node, contnode)
        if found is not None:
            return found
    if _exists(target, module, klass):
        # a real object that the reference does not document (an internal class, an attribute
        # without a docstring): shown as code. A name that does not exist still warns.
        return contnode
    return None


def _exists(target: str, module: str | None, klass: str | None) -> bool:
    scopes = [f"{module}.{klass}." if module and klass else "", f"{module}." if module else "", ""]
    return any(_lookup(prefix + target) is not None for prefix in scopes if prefix or "." in target)


# |x| in a docstring is an absolute value or a norm (this project writes maths in plain text), never
# a reST substitution: escape it so docutils leaves it alone.
_ABS = re.compile(r"(?<![\\|`\w])\|(?=[^\s|])([^|`\n]*?[^\s|\\])\|(?![|\w])")


def escape_bars(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        if "|" in line and not line.lstrip().startswith((">>>", "|", "+")):
            lines[i] = _ABS.sub(r"\\|\1\\|", line)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("apigen_packages", [], "env")
    app.connect("builder-inited", generate)
    app.connect("missing-reference", resolve_reexports)
    app.connect("autodoc-process-docstring", escape_bars, priority=400)
    return {"version": "1", "parallel_read_safe": True}
