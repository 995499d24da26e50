"""Numba's disk cache must not serve stale kernels after an edit to a module they inline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import sgdsim._numba_cache as nc
from sgdsim.backends import sde_numba


def test_sgdsim_kernels_use_the_package_stamp():
    assert nc.REGISTERED
    from sgdsim.backends import numba_kernels

    for dispatcher in (sde_numba._em_linear, sde_numba._baoab_quadratic, numba_kernels.run_builtin):
        assert type(dispatcher._cache._impl._locator).__name__.startswith("PackageStamp")
    names = {p.name for p in nc.numba_sources()}
    assert {"_rng.py", "sde_numba.py", "numba_kernels.py"} <= names and "trajectory.py" not in names


def test_package_stamp_follows_numba_sources_only(tmp_path):
    (tmp_path / "a.py").write_text("import numba\nK = 1\n")
    (tmp_path / "b.py").write_text("X = 1\n")
    s0 = nc.package_stamp(tmp_path)
    (tmp_path / "b.py").write_text("X = 2  # no Numba here\n")
    assert nc.package_stamp(tmp_path) == s0
    (tmp_path / "a.py").write_text("import numba\nK = 1\n")  # rewritten, same content
    os.utime(tmp_path / "a.py", ns=(1, 1))
    assert nc.package_stamp(tmp_path) == s0
    (tmp_path / "a.py").write_text("import numba\nK = 2\n")
    assert nc.package_stamp(tmp_path) != s0


_HELPER = """
import numba
K = {k}

@numba.njit(inline="always")
def k():
    return K
"""

_KERNEL = """
import numba
from helper import k

@numba.njit(cache=True)
def f():
    return k()
"""

_RUN = """
import sys
from pathlib import Path
import sgdsim._numba_cache as nc
if sys.argv[2] == "stamped":
    nc.PACKAGE_ROOT = Path(sys.argv[1]).resolve()  # treat the toy package as sgdsim
sys.path.insert(0, sys.argv[1])
import kern
print(kern.f())
"""


def _run(pkg, mode: str) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": ""}
    out = subprocess.run([sys.executable, "-c", _RUN, str(pkg), mode], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_editing_an_inlined_helper_recompiles_the_kernel(tmp_path):
    """A cached kernel inlines a constant from another module; the constant changes, the kernel's
    file does not. Numba's own stamp serves the stale value (the control); the package stamp
    recompiles."""
    for mode in ("default", "stamped"):
        pkg = tmp_path / mode
        pkg.mkdir()
        (pkg / "kern.py").write_text(textwrap.dedent(_KERNEL))
        (pkg / "helper.py").write_text(_HELPER.format(k=1.0))
        assert _run(pkg, mode) == "1.0"  # compiled and cached
        (pkg / "helper.py").write_text(_HELPER.format(k=2.0))
        expect = "1.0" if mode == "default" else "2.0"  # stale vs recompiled
        assert _run(pkg, mode) == expect, mode
