"""Sphinx configuration for the sgdsim documentation (build: see docs/index.md)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("SGDSIM_QUICK", "1")  # notebooks executed here run at their quick sizes

import sgdsim  # noqa: E402

project = "sgdsim"
author = "the sgdsim developers"
copyright = "2026, the sgdsim developers"
release = version = sgdsim.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "apigen",
]
apigen_packages = ["sgdsim", "paper_checks"]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_theme_options = {"description": "SGD dynamics: simulation next to exact theory", "fixed_sidebar": True}
html_static_path: list[str] = []

# --- API reference ------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types, with shapes and units
autodoc_default_options = {"exclude-members": "__init__, __new__"}
numpydoc_show_class_members = False  # autodoc's :members: lists them once
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- warnings are errors (-W), every cross-reference must resolve (-n) ----------------------------
nitpicky = True
# types from other projects: no intersphinx (the build runs offline), so these are left unlinked
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|sympy|sp|xarray|xr|torch|cupy|dask|distributed|matplotlib|plt"
     r"|numba|nbformat|collections|typing|pathlib|concurrent|os|types|enum|abc|dataclasses)\..*"),
    (r"py:.*", r"(zip|range|map|dict|list|tuple|set|str|int|float|bool|callable|object|Exception"
     r"|ValueError|TypeError|RuntimeError|KeyError)"),
]
suppress_warnings = ["myst.header"]  # notebooks start at "#" and use "###" freely

# --- notebooks: rendered with outputs -------------------------------------------------------------
# The test run (`pytest --overwrite`, as .ci/run does) executes the notebooks at quick sizes and
# writes their outputs; the docs render those as they are. A notebook that has not been executed
# (a local build without that test run: some code cell has no execution count) is executed here,
# at quick sizes. (myst-nb's "auto" mode would re-execute any notebook with one silent cell.)
nb_execution_mode = "force"
nb_execution_excludepatterns: list[str] = []  # the executed ones, filled by _copy_notebooks
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3


def _copy_notebooks() -> None:
    """Mirror ``notebooks/*.ipynb`` into ``docs/notebooks/`` (found by glob, so new ones appear)."""
    dest = DOCS / "notebooks"
    dest.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))}
    for old in dest.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    for name, src in wanted.items():
        target = dest / name
        if not target.exists() or target.read_bytes() != src.read_bytes():
            shutil.copyfile(src, target)
        if _executed(target):
            nb_execution_excludepatterns.append(f"notebooks/{name}")


def _executed(path: Path) -> bool:
    """Every code cell of the notebook at ``path`` has run (nbclient sets its execution count)."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return all(c.get("execution_count") for c in cells if c.get("cell_type") == "code")


_copy_notebooks()
