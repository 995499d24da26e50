"""The ``>>>`` examples in sgdsim's and paper_checks' docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import paper_checks
import sgdsim


def _modules() -> list[str]:
    names = []
    for pkg in (sgdsim, paper_checks):
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            if "cupy_backend" not in info.name:  # imports CuPy only when used, but tested apart
                names.append(info.name)
    return names


def _with_examples() -> list[str]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    out = []
    for name in _modules():
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            try:
                mod = importlib.import_module(name)
            except DeprecationWarning:  # a deprecated alias (sgdsim.theory.sde): nothing of its own
                continue
        if any(t.examples for t in finder.find(mod, name)):
            out.append(name)
    return out


def test_some_modules_have_examples():
    assert len(_with_examples()) >= 3


@pytest.mark.parametrize("name", _with_examples())
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
