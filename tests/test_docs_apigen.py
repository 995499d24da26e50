"""The API reference generator (docs/_ext/apigen.py): every public name documented once, found
from the ``__all__`` lists, and references to re-exported names resolved to where they live."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
import apigen

import sgdsim


@pytest.fixture(scope="module")
def pages():
    pages = apigen.collect(["sgdsim", "paper_checks"])
    apigen._HOME.clear()
    for page in pages:
        for name, obj in page.documented:
            apigen._HOME[id(obj)] = f"{page.name}.{name}"
    return {p.name: p for p in pages}


def test_every_public_name_documented_exactly_once(pages):
    homes = {}
    for page in pages.values():
        for name, obj in page.documented:
            assert id(obj) not in homes, f"{name} documented on {homes[id(obj)]} and {page.name}"
            homes[id(obj)] = page.name
    for page in pages.values():  # every exported (non-module) name has a home
        for name in page.module.__all__:
            obj = getattr(page.module, name)
            if apigen._documentable(name, obj):
                assert id(obj) in homes, f"{page.name}.{name} has no page"


def test_names_live_where_they_are_defined(pages):
    assert "Quadratic" in dict(pages["sgdsim.problems.quadratic"].documented)
    assert ("Quadratic", "sgdsim.problems.quadratic") in pages["sgdsim"].reexported
    assert "sgdsim._rng" not in pages and "sgdsim.backends.numba_kernels" not in pages


def test_reference_resolution(pages):
    assert apigen.documented_name("sgdsim.Quadratic", None, None) == \
        "sgdsim.problems.quadratic.Quadratic"
    assert apigen.documented_name("Trajectory", "sgdsim.simulate", None) == \
        "sgdsim.trajectory.Trajectory"
    assert apigen.documented_name("sgdsim.NoSuchThing", None, None) is None
    assert not apigen._exists("sgdsim.NoSuchThing", None, None)  # a typo still warns
    assert apigen._exists("eigenvalues", "sgdsim.theory.lyapunov", "NoisyQuadraticMoments")
    assert sgdsim.simulate  # the package imported the modules walked above
