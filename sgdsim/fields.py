"""Whole-ensemble field oracles written once against an array namespace ``xp`` (NumPy or CuPy).

The drifts, gradients and noise maps that the array runners of :mod:`sgdsim.simulate` and
:mod:`sgdsim.sde` apply to a state of shape (R, d), and that
:meth:`~sgdsim.problems.random_potential.GaussianRandomPotential.grad` evaluates: one formula per
field, in one place. Pure array arithmetic: nothing here draws random numbers or knows a backend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sgdsim._validation import as_float_array, check_bool

__all__ = ["linear_field", "noise_map", "rff_field", "rff_gradient", "rff_phases"]


def _check_namespace(xp) -> None:
    """``xp`` must be an array module (NumPy, CuPy): a clear TypeError instead of an
    AttributeError deep in a runner."""
    if not all(hasattr(xp, f) for f in ("asarray", "einsum", "sin")):
        raise TypeError(f"`xp` must be an array namespace such as numpy or cupy, got {xp!r}")


def _check_arrays(**arrays) -> None:
    """Cheap per-call check (these run every step): each value is an array of ``xp``."""
    for name, a in arrays.items():
        if not hasattr(a, "ndim") or not hasattr(a, "shape"):
            raise TypeError(f"`{name}` must be an array of the namespace `xp`, got {type(a).__name__}")


def _rff_arrays(W, b, amp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host random-feature arrays, validated: ``W`` (M, d) or (R, M, d), ``b`` ``W.shape[:-1]``,
    ``amp`` (M,) or ``W.shape[:-1]``."""
    W = as_float_array("W", W)
    if W.ndim not in (2, 3):
        raise ValueError(f"`W` must have shape (M, d) or (R, M, d), got {W.shape}")
    b = as_float_array("b", b, shape=W.shape[:-1])
    amp = as_float_array("amp", amp)
    if amp.shape not in (W.shape[-2:-1], W.shape[:-1]):
        raise ValueError(f"`amp` must have shape {W.shape[-2:-1]} or {W.shape[:-1]}, got {amp.shape}")
    return W, b, amp


def linear_field(xp, M: np.ndarray, x_star: np.ndarray, dtype=np.float64) -> Callable:
    """``X ↦ (X − x*) Mᵀ`` row-wise, the gradient of ``½(x − x*)ᵀM(x − x*)`` for symmetric M
    (an elementwise product when ``M`` is diagonal). ``M`` (d, d), ``x_star`` (d,); X (R, d)."""
    _check_namespace(xp)
    M = as_float_array("M", M, ndim=2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"`M` must be square (d, d), got {M.shape}")
    x_star = as_float_array("x_star", x_star, shape=(M.shape[0],))
    xs = xp.asarray(x_star, dtype=dtype)
    if not np.any(M - np.diag(np.diag(M))):
        diag = xp.asarray(np.diag(M).copy(), dtype=dtype)
        return lambda X: (X - xs) * diag
    m_t = xp.asarray(np.ascontiguousarray(M.T), dtype=dtype)
    return lambda X: (X - xs) @ m_t


def noise_map(xp, nd: np.ndarray, nf: np.ndarray, diag: bool, dtype=np.float64) -> Callable:
    """``Z ↦ Z Nᵀ`` row-wise for the factor ``N = diag(nd)`` if ``diag`` else ``nf`` (d, d):
    turns standard normals Z (R, d) into noise of covariance ``N Nᵀ``."""
    _check_namespace(xp)
    if check_bool("diag", diag):
        scale = xp.asarray(as_float_array("nd", nd, ndim=1), dtype=dtype)
        return lambda z: z * scale
    nf = as_float_array("nf", nf, ndim=2)
    if nf.shape[0] != nf.shape[1]:
        raise ValueError(f"`nf` must be square (d, d), got {nf.shape}")
    nf_t = xp.asarray(np.ascontiguousarray(nf.T), dtype=dtype)
    return lambda z: z @ nf_t


def rff_phases(xp, X, W, b):
    """Phases ``W_m·x + b_m`` of a random-feature field, shape (R, M).

    ``X`` (R, d); a shared field: ``W`` (M, d), ``b`` (M,); one field per row of X:
    ``W`` (R, M, d), ``b`` (R, M).
    """
    _check_namespace(xp)
    _check_arrays(X=X, W=W, b=b)
    if W.ndim == 3:
        return xp.einsum("rmd,rd->rm", W, X) + b
    return X @ W.T + b


def rff_gradient(xp, X, W, b, amp):
    """``∇f(x) = −Σ_m amp_m sin(W_m·x + b_m) W_m`` row-wise for ``f = Σ_m amp_m cos(W_m·x + b_m)``;
    shapes as :func:`rff_phases` (``amp`` (M,) or (R, M)). Returns (R, d)."""
    _check_namespace(xp)
    _check_arrays(amp=amp)
    s = -amp * xp.sin(rff_phases(xp, X, W, b))
    return xp.einsum("rm,rmd->rd", s, W) if W.ndim == 3 else s @ W


def rff_field(xp, W: np.ndarray, b: np.ndarray, amp: np.ndarray, dtype=np.float64) -> Callable:
    """:func:`rff_gradient` of a fixed field as a function ``X ↦ ∇f(X)``, arrays moved to ``xp``."""
    _check_namespace(xp)
    w, bb, a = (xp.asarray(v, dtype=dtype) for v in _rff_arrays(W, b, amp))
    return lambda X: rff_gradient(xp, X, w, bb, a)
