"""Backend registry: the one place where a backend name becomes an implementation."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["array_namespace", "available_backends", "get_backend", "get_sde_backend"]


def _numpy():
    from sgdsim.backends.array_backend import ArrayRunner

    return ArrayRunner


def _numba():
    from sgdsim.backends.numba_backend import NumbaRunner

    return NumbaRunner


def _cupy():
    from sgdsim.backends.cupy_backend import CupyRunner  # raises a clear error without a GPU

    return CupyRunner


def _numpy_sde():
    from sgdsim.backends.sde_array import ArraySDERunner

    return ArraySDERunner


def _numba_sde():
    from sgdsim.backends.sde_numba import NumbaSDERunner

    return NumbaSDERunner


def _cupy_sde():
    from sgdsim.backends.cupy_backend import CupySDERunner

    return CupySDERunner


_REGISTRY: dict[str, Callable[[], type]] = {"numpy": _numpy, "numba": _numba, "cupy": _cupy}
_SDE_REGISTRY: dict[str, Callable[[], type]] = {"numpy": _numpy_sde, "numba": _numba_sde, "cupy": _cupy_sde}


def available_backends() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"`backend` must be one of {available_backends()}, got {name!r}")


def get_backend(name: str) -> type:
    """Return the runner class of backend ``name`` ("numpy", "numba" or "cupy")."""
    _check(name)
    return _REGISTRY[name]()


def get_sde_backend(name: str) -> type:
    """Return the SDE runner class of backend ``name`` (:mod:`sgdsim.sde`'s engines)."""
    _check(name)
    return _SDE_REGISTRY[name]()


def array_namespace(name: str):
    """The array module behind backend ``name``: ``numpy``, ``cupy`` (a clear RuntimeError
    without a GPU), or None for the compiled ``"numba"`` backend. (The engines themselves get
    runner classes: :func:`get_backend`, :func:`get_sde_backend`.)"""
    _check(name)
    if name == "numpy":
        import numpy

        return numpy
    if name == "cupy":
        from sgdsim.backends.cupy_backend import cupy_or_error

        return cupy_or_error()
    return None
