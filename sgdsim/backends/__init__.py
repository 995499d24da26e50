"""Backend registry: the one place where a backend name becomes an implementation."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["array_namespace", "available_backends", "get_backend"]


def _numpy():
    from sgdsim.backends.array_backend import ArrayRunner

    return ArrayRunner


def _numba():
    from sgdsim.backends.numba_backend import NumbaRunner

    return NumbaRunner


def _cupy():
    from sgdsim.backends.cupy_backend import CupyRunner  # raises a clear error without a GPU

    return CupyRunner


_REGISTRY: dict[str, Callable[[], type]] = {"numpy": _numpy, "numba": _numba, "cupy": _cupy}


def available_backends() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"`backend` must be one of {available_backends()}, got {name!r}")


def get_backend(name: str) -> type:
    """Return the runner class of backend ``name`` ("numpy", "numba" or "cupy")."""
    _check(name)
    return _REGISTRY[name]()


def array_namespace(name: str):
    """The array module behind backend ``name``: ``numpy``, ``cupy`` (a clear RuntimeError
    without a GPU), or None for the compiled ``"numba"`` backend. Used by the code that is written
    once for NumPy and CuPy outside :func:`~sgdsim.simulate` (the SDE integrators)."""
    _check(name)
    if name == "numpy":
        import numpy

        return numpy
    if name == "cupy":
        from sgdsim.backends.cupy_backend import cupy_or_error

        return cupy_or_error()
    return None
