"""Numba's on-disk cache, made aware of sgdsim's cross-module inlining.

Numba stamps a cached kernel with its *own* source file only. sgdsim's kernels inline helpers
from other modules (the random streams of :mod:`sgdsim._rng`, the BAOAB sub-steps, the problem
oracles), and module-level tables become compile-time constants, so after an edit to a helper
module (a ``git pull`` on an editable install) a kernel in an untouched file would keep loading
stale machine code: the same seed would give different numbers on machines with and without
an old cache. This module registers a cache locator, first in Numba's list, for functions defined
inside the sgdsim package: it stores the cache where Numba's in-tree locator would, but stamps it
with a hash of *every* sgdsim source file that uses Numba, so any such edit invalidates all of
sgdsim's kernels (they recompile once). Functions outside sgdsim are untouched.

Registration uses ``numba.core.caching.CacheImpl._locator_classes``; if a Numba version lacks it,
sgdsim falls back to Numba's default stamps (and says so in :data:`REGISTERED`).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def numba_sources(root: Path | None = None) -> list[Path]:
    """The ``.py`` files under ``root`` (default: the sgdsim package) that mention Numba."""
    root = PACKAGE_ROOT if root is None else root
    return [p for p in sorted(root.rglob("*.py")) if "numba" in p.read_text(encoding="utf-8")]


def package_stamp(root: Path | None = None) -> bytes:
    """SHA-256 over the relative paths and contents of :func:`numba_sources` (re-read only when
    a file's modification time or size changed)."""
    root = PACKAGE_ROOT if root is None else root
    state = []
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        state.append((str(p), st.st_mtime_ns, st.st_size))
    return _stamp(str(root), tuple(state))


@functools.lru_cache(maxsize=8)
def _stamp(root: str, state: tuple[tuple[str, int, int], ...]) -> bytes:
    h = hashlib.sha256()
    for p in numba_sources(Path(root)):
        h.update(os.path.relpath(p, root).encode())
        h.update(p.read_bytes())
    return h.digest()


def _register() -> bool:
    try:
        from numba.core import caching
    except ImportError:
        return False
    if not hasattr(caching.CacheImpl, "_locator_classes"):
        return False

    class _PackageStamp:
        """For functions defined in sgdsim: the base locator's cache place, the package stamp."""

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.realpath(py_file).startswith(os.path.realpath(PACKAGE_ROOT) + os.sep):
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return package_stamp()

    # Numba's own order: NUMBA_CACHE_DIR if set, else in-tree __pycache__, else the user-wide dir
    bases = [getattr(caching, n, None) for n in
             ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")]  # fmt: skip
    ours = [type(f"PackageStamp{b.__name__}", (_PackageStamp, b), {}) for b in bases if b is not None]
    existing = caching.CacheImpl._locator_classes
    if not any(c.__name__.startswith("PackageStamp") for c in existing):
        existing[:0] = ours
    return True


#: whether the package-stamp locator is active (False: Numba's default stamps, see above)
REGISTERED = _register()
