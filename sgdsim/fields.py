"""Whole-ensemble field oracles written once against an array namespace ``xp`` (NumPy or CuPy).

The drifts, gradients and noise maps that the array runners of :mod:`sgdsim.simulate` and
:mod:`sgdsim.sde` apply to a state of shape (R, d), and that
:meth:`~sgdsim.problems.random_potential.GaussianRandomPotential.grad` evaluates: one formula per
field, in one place. Pure array arithmetic: nothing here draws random numbers or knows a backend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["linear_field", "noise_map", "rff_field", "rff_gradient", "rff_phases"]


def linear_field(xp, M: np.ndarray, x_star: np.ndarray, dtype=np.float64) -> Callable:
    """``X ↦ (X − x*) Mᵀ`` row-wise, the gradient of ``½(x − x*)ᵀM(x − x*)`` for symmetric M
    (an elementwise product when ``M`` is diagonal). ``M`` (d, d), ``x_star`` (d,); X (R, d)."""
    xs = xp.asarray(x_star, dtype=dtype)
    if not np.any(M - np.diag(np.diag(M))):
        diag = xp.asarray(np.diag(M).copy(), dtype=dtype)
        return lambda X: (X - xs) * diag
    m_t = xp.asarray(np.ascontiguousarray(M.T), dtype=dtype)
    return lambda X: (X - xs) @ m_t


def noise_map(xp, nd: np.ndarray, nf: np.ndarray, diag: bool, dtype=np.float64) -> Callable:
    """``Z ↦ Z Nᵀ`` row-wise for the factor ``N = diag(nd)`` if ``diag`` else ``nf`` (d, d):
    turns standard normals Z (R, d) into noise of covariance ``N Nᵀ``."""
    if diag:
        scale = xp.asarray(nd, dtype=dtype)
        return lambda z: z * scale
    nf_t = xp.asarray(np.ascontiguousarray(nf.T), dtype=dtype)
    return lambda z: z @ nf_t


def rff_phases(xp, X, W, b):
    """Phases ``W_m·x + b_m`` of a random-feature field, shape (R, M).

    ``X`` (R, d); a shared field: ``W`` (M, d), ``b`` (M,); one field per row of X:
    ``W`` (R, M, d), ``b`` (R, M).
    """
    if W.ndim == 3:
        return xp.einsum("rmd,rd->rm", W, X) + b
    return X @ W.T + b


def rff_gradient(xp, X, W, b, amp):
    """``∇f(x) = −Σ_m amp_m sin(W_m·x + b_m) W_m`` row-wise for ``f = Σ_m amp_m cos(W_m·x + b_m)``;
    shapes as :func:`rff_phases` (``amp`` (M,) or (R, M)). Returns (R, d)."""
    s = -amp * xp.sin(rff_phases(xp, X, W, b))
    return xp.einsum("rm,rmd->rd", s, W) if W.ndim == 3 else s @ W


def rff_field(xp, W: np.ndarray, b: np.ndarray, amp: np.ndarray, dtype=np.float64) -> Callable:
    """:func:`rff_gradient` of a fixed field as a function ``X ↦ ∇f(X)``, arrays moved to ``xp``."""
    w, bb, a = (xp.asarray(v, dtype=dtype) for v in (W, b, amp))
    return lambda X: rff_gradient(xp, X, w, bb, a)
