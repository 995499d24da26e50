"""Argument checks shared across sgdsim.

Every error names the argument, the expected and the received value, so a user can fix the call
without reading the source.

One rule for numbers given as strings, everywhere: ``"0.1"`` is not a number. Every numeric check
here refuses ``str``/``bytes`` (and arrays of them) with a ``TypeError`` naming the parameter, as
NumPy-typed scientific APIs do; a ``bool`` is not accepted where a real number is expected, nor a
number where a flag is expected (:func:`check_bool`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def _real(name: str, value: Any) -> float:
    """``value`` as a Python float; TypeError naming ``name`` for strings, bools and non-numbers."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}")
    if isinstance(value, np.ndarray) and value.ndim != 0:
        raise TypeError(f"`{name}` must be a real number, got an array of shape {value.shape}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"`{name}` must be a real number, got {value!r}") from None


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (or NumPy bool); refuse ``"yes"``, ``1``, ``None``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_instance(name: str, value: Any, cls: type | tuple[type, ...]) -> Any:
    """Return ``value`` if it is an instance of ``cls``; TypeError naming ``name`` otherwise."""
    if not isinstance(value, cls):
        want = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
        raise TypeError(f"`{name}` must be of type {want}, got {type(value).__name__} {value!r:.80}")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is finite and > 0 (>= 0 with ``allow_zero``)."""
    v = _real(name, value)
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {bound}, got {value!r}")
    return v


def check_in_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as float if it lies in the interval (closed unless ``*_open``)."""
    v = _real(name, value)
    lo_ok = v > low if low_open else v >= low
    hi_ok = v < high if high_open else v <= high
    if not (np.isfinite(v) and lo_ok and hi_ok):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must lie in {interval}, got {value!r}")
    return v


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as int if it is an integer (not bool) and >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {v}")
    return v


def _same_choice(value: Any, choice: Any) -> bool:
    """``value == choice`` as one bool, never mixing strings with non-strings (an array: False)."""
    if isinstance(value, str) != isinstance(choice, str):
        return False
    try:
        eq = value == choice
    except Exception:
        return False
    return isinstance(eq, (bool, np.bool_)) and bool(eq)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; otherwise list the valid ones."""
    choices = tuple(choices)
    if not any(_same_choice(value, c) for c in choices):
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
    return value


def as_float_array(
    name: str, value: Any, *, ndim: int | None = None, shape: tuple[int | None, ...] | None = None
) -> np.ndarray:
    """Convert to a finite float64 array and check its rank/shape (``None`` = any size).

    Strings (also inside lists or object arrays) and complex values are refused with a
    ``TypeError``; NumPy would parse ``"1.0"`` silently.
    """
    bad = f"`{name}` must be array-like of real numbers, got {type(value).__name__}"
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{bad} {value!r}")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "USVcMm" or (
            raw.dtype.kind == "O" and any(isinstance(x, (str, bytes, complex)) for x in raw.flat)
        ):
            raise TypeError
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(bad) from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = tuple("?" if s is None else s for s in shape)
            raise ValueError(f"`{name}` must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite, got non-finite entries")
    return arr


def check_symmetric(name: str, mat: np.ndarray, *, rtol: float = 1e-10) -> np.ndarray:
    """Check a square symmetric matrix (relative to its largest entry) and return it symmetrized."""
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
        raise ValueError(f"`{name}` must be a square matrix, got shape {mat.shape}")
    scale = max(float(np.max(np.abs(mat))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(mat - mat.T)))
    if asym > rtol * scale:
        raise ValueError(
            f"`{name}` must be symmetric; max |{name} - {name}.T| = {asym:.3g} "
            f"(relative {asym / scale:.3g} > {rtol:g})"
        )
    return 0.5 * (mat + mat.T)


def check_psd(name: str, mat: np.ndarray, *, rtol: float = 1e-10) -> np.ndarray:
    """Check a symmetric positive semi-definite matrix; return it symmetrized."""
    mat = check_symmetric(name, mat, rtol=rtol)
    if mat.size:
        evals = np.linalg.eigvalsh(mat)
        scale = max(float(np.max(np.abs(evals))), np.finfo(float).tiny)
        if evals[0] < -rtol * scale:
            raise ValueError(
                f"`{name}` must be positive semi-definite; smallest eigenvalue {evals[0]:.6g}"
            )
    return mat


def reject_unknown(name: str, options: dict[str, Any], known: Iterable[str]) -> None:
    """Raise on keyword options that are not in ``known`` (no silent swallowing)."""
    known = set(known)
    bad = sorted(set(options) - known)
    if bad:
        raise TypeError(f"unknown {name} option(s) {bad}; valid options are {sorted(known)}")


def physical_memory_bytes() -> int | None:
    """Total physical memory of this machine in bytes (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def check_allocation(name: str, value: Any, nbytes: float, what: str) -> None:
    """Refuse, before NumPy tries, an allocation of ``nbytes`` that this machine cannot hold.

    ``ValueError`` naming the parameter ``name`` (whose value ``value`` sets the size), the
    size needed and the machine's physical memory.
    """
    total = physical_memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(
            f"`{name}`={value!r} needs {what} of {_human_bytes(nbytes)}, more than this machine's "
            f"{_human_bytes(total)} of memory"
        )
