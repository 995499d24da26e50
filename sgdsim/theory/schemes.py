"""Exact algebra of the SDE discretizations on linear models: one-step maps and their moments.

For a linear model (:class:`~sgdsim.theory.langevin.LinearSDE`, or an
:class:`~sgdsim.theory.langevin.UnderdampedLangevin` in phase space) every scheme of
:mod:`sgdsim.sde` is an exact linear Gaussian recursion ``y_{k+1} = M y_k + N(0, Σ)`` in the
deviation ``y = x − x*``. This module gives ``(M, Σ)`` per scheme and, from them, the exact mean,
covariance and stationary covariance of the *discretized* chain (not only of the SDE), which the
simulators are tested against. Closed forms only: nothing here simulates.

Schemes (``h = dt``)
--------------------
* Euler–Maruyama: ``M = I − hA``, ``Σ = 2hD``.
* BAOAB (Leimkuhler & Matthews 2013): ``M = B A O A B`` with kick ``B`` (``v ← v − (h/2)Kx``),
  drift ``A`` (``x ← x + (h/2)v``) and the exact OU velocity step ``O``
  (:func:`ou_velocity_step`); the O-step noise enters through ``B A``.
* Exact OU transition: ``M = e^{−Ah}``, ``Σ(h)`` by Van Loan's block exponential
  (:meth:`~sgdsim.theory.langevin.LinearSDE.transition`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from sgdsim._validation import as_float_array, check_choice, check_int, check_positive
from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin

__all__ = [
    "ou_velocity_step",
    "scheme_moments",
    "scheme_stationary_covariance",
    "scheme_transition",
]


def ou_velocity_step(friction: np.ndarray, Dv: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """BAOAB's O step over ``dt``: ``v ← c∘v + N(0, Σ_O)``, exact for ``dv = −Γv dt + √(2D_v) dW``.

    Parameters
    ----------
    friction : ndarray (d,)
        The diagonal of Γ (1/time).
    Dv : ndarray (d, d)
        Velocity diffusion ``D_v``.
    dt : float

    Returns
    -------
    c : ndarray (d,)
        ``e^{−γ_i dt}``.
    Sigma_O : ndarray (d, d)
        ``2 D_v,ij (1 − e^{−(γ_i+γ_j)dt})/(γ_i+γ_j)`` (``2 D_v,ij dt`` where ``γ_i+γ_j = 0``).
    """
    friction = as_float_array("friction", friction, ndim=1)
    d = friction.shape[0]
    Dv = as_float_array("Dv", Dv, shape=(d, d))
    dt = check_positive("dt", dt)
    c = np.exp(-friction * dt)
    gs = friction[:, None] + friction[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(gs > 0, -np.expm1(-gs * dt) / np.where(gs > 0, gs, 1.0), dt)
    return c, 2.0 * Dv * frac


def scheme_transition(
    method: str, model: LinearSDE | UnderdampedLangevin, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-step map of a scheme on a linear model: ``y_{k+1} = M y_k + N(0, Σ)``, ``y = x − x*``.

    Parameters
    ----------
    method : {"euler_maruyama", "baoab", "exact_ou"}
        ``"baoab"`` needs an :class:`UnderdampedLangevin` (state ``(x, v)``).
    model : LinearSDE or UnderdampedLangevin
    dt : float

    Returns
    -------
    M : ndarray (n, n)
    Sigma : ndarray (n, n)
        The map and the per-step noise covariance (``n = 2d`` for an UnderdampedLangevin).
    """
    check_choice("method", method, ("euler_maruyama", "baoab", "exact_ou"))
    dt = check_positive("dt", dt)
    if not isinstance(model, (LinearSDE, UnderdampedLangevin)):
        raise TypeError(f"`model` must be a LinearSDE or an UnderdampedLangevin, got {type(model).__name__}")
    if method == "baoab":
        if not isinstance(model, UnderdampedLangevin):
            raise TypeError("`method`='baoab' needs an UnderdampedLangevin model")
        d = model.dim
        eye, zero = np.eye(d), np.zeros((d, d))
        Bm = np.block([[eye, zero], [-0.5 * dt * model.K, eye]])
        Am = np.block([[eye, 0.5 * dt * eye], [zero, eye]])
        c, sig_o = ou_velocity_step(model.friction, model.velocity_diffusion, dt)
        Om = np.block([[eye, zero], [zero, np.diag(c)]])
        post = Bm @ Am  # what acts after the O step
        M = Bm @ Am @ Om @ Am @ Bm
        SO = np.zeros((2 * d, 2 * d))
        SO[d:, d:] = sig_o
        return M, post @ SO @ post.T
    lin = model.to_linear() if isinstance(model, UnderdampedLangevin) else model
    if method == "euler_maruyama":
        return np.eye(lin.dim) - dt * lin.A, 2.0 * dt * lin.D
    return lin.transition(dt)


def scheme_stationary_covariance(
    method: str, model: LinearSDE | UnderdampedLangevin, dt: float
) -> np.ndarray:
    """Exact stationary covariance of the discretized chain: ``S = M S Mᵀ + Σ`` (discrete Lyapunov).

    Raises if the scheme is unstable at this ``dt`` (spectral radius of ``M`` >= 1).
    """
    M, sig = scheme_transition(method, model, dt)
    rho = float(np.max(np.abs(np.linalg.eigvals(M))))
    if rho >= 1.0:
        raise ValueError(f"`dt`={dt!r} is unstable for {method} here (spectral radius {rho:.6g})")
    S = sla.solve_discrete_lyapunov(M, sig)
    return 0.5 * (S + S.T)


def scheme_moments(
    method: str, model: LinearSDE | UnderdampedLangevin, dt: float, steps: int, y0=None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and covariance of the discretized chain after ``steps`` steps.

    ``y0`` is the (fixed) initial *deviation* ``x0 − x*`` in the scheme's state (default 0).
    Returns ``(mean of x, covariance)``, shapes (n,) and (n, n).
    """
    steps = check_int("steps", steps, minimum=0)
    M, sig = scheme_transition(method, model, dt)
    n = M.shape[0]
    y = np.zeros(n) if y0 is None else as_float_array("y0", y0, shape=(n,))
    cov = np.zeros((n, n))
    for _ in range(steps):
        y = M @ y
        cov = M @ cov @ M.T + sig
    lin = model.to_linear() if isinstance(model, UnderdampedLangevin) else model
    return lin.x_star + y, cov
