"""Linear stability of (momentum) gradient descent on quadratics.

On a quadratic mode with curvature ``a = λ + λ_wd`` every PyTorch-style SGD variant is a linear
recursion on the state ``z_k = (θ_k, buf_k)``. With momentum ``β``, dampening ``τ`` and the
Nesterov flag, one step reads (PyTorch ``torch.optim.SGD`` form)::

    g      = a·θ + ξ
    buf'   = β·buf + c_g·g                 c_g = 1 − τ  (c_g = 1 on PyTorch's first step)
    θ'     = θ − η·(n_g·g + n_b·buf')      (n_g, n_b) = (1, β) if nesterov else (0, 1)

so ``z' = A z + p ξ`` with (``s = n_g + n_b·c_g``)::

    A = [[1 − η a s, −η n_b β],      p = [−η s,
         [c_g a,      β      ]]            c_g ]

The named methods are: ``"gd"`` (β = 0), ``"heavy_ball"`` (τ = 0), ``"nesterov"`` (τ = 0,
Nesterov) and ``"ema"`` (dampened momentum ``v ← βv + (1−β)g``, i.e. τ = β). The iteration is
stable iff the spectral radius of ``A`` is < 1. Closed forms (Jury conditions on
``z² − tr(A) z + det(A)``; re-derived in :mod:`sgdsim.theory.symbolic`), unstable iff:

* GD: ``ηa > 2``;
* heavy ball: ``ηa > 2 + 2β``;
* Nesterov: ``ηa > (2 + 2β)/(1 + 2β)``;
* EMA: ``ηa > (2 + 2β)/(1 − β)``.

Also here: the bisection threshold on the spectral radius (independent of the closed forms), the
largest stable learning rate for a spectrum and nudged SGD (NSGD). The mean-square stability of
minibatch SGD on linear regression is in :mod:`sgdsim.theory.linreg_moments`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sgdsim._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_positive,
)

__all__ = [
    "METHODS",
    "companion_matrix",
    "lr_threshold",
    "lr_threshold_numeric",
    "max_stable_lr",
    "method_params",
    "nsgd_is_stable",
    "nsgd_max_stable_lr",
    "spectral_radius",
    "step_matrices",
    "threshold",
]

METHODS = ("gd", "heavy_ball", "nesterov", "ema")


def method_params(method: str, momentum: float = 0.0) -> dict[str, float | bool]:
    """PyTorch SGD parameters ``(momentum, dampening, nesterov)`` of a named method.

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov", "ema"}
    momentum : float
        β in [0, 1); must be 0 for ``"gd"`` (plain gradient descent has no momentum: a non-zero
        β is refused rather than ignored).

    Returns
    -------
    dict with keys ``momentum``, ``dampening``, ``nesterov``.
    """
    check_choice("method", method, METHODS)
    beta = check_in_range("momentum", momentum, 0.0, 1.0, high_open=True)
    if method == "gd" and beta != 0.0:
        raise ValueError(
            f"`momentum`={momentum!r} given with method='gd', which has no momentum; pass "
            "momentum=0, or name the momentum method ('heavy_ball', 'nesterov' or 'ema')"
        )
    if method == "gd":
        return {"momentum": 0.0, "dampening": 0.0, "nesterov": False}
    if method == "heavy_ball":
        return {"momentum": beta, "dampening": 0.0, "nesterov": False}
    if method == "nesterov":
        return {"momentum": beta, "dampening": 0.0, "nesterov": True}
    return {"momentum": beta, "dampening": beta, "nesterov": False}


def step_matrices(
    curvature: float | np.ndarray,
    lr: float,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    first_step: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-mode transition matrix ``A`` and noise vector ``p`` of one SGD step.

    One step maps ``z = (θ, buf)`` to ``z' = A z + p ξ`` where ``ξ`` is the gradient noise of
    that mode (see the module docstring for the recursion).

    Parameters
    ----------
    curvature : float or array, shape ``(m,)``
        ``a = λ + λ_wd`` per mode (units 1/lr).
    lr : float
        Learning rate η > 0.
    momentum, dampening : float
        β and τ in [0, 1].
    nesterov : bool
        PyTorch Nesterov form ``θ ← θ − η(g + β·buf)``.
    first_step : bool
        PyTorch's first step sets ``buf = g`` (no dampening, no β·buf). With ``buf_0 = 0`` this
        differs from a regular step only when ``dampening > 0``.

    Returns
    -------
    A : ndarray, shape ``(..., 2, 2)``
    p : ndarray, shape ``(..., 2)``
    """
    a = as_float_array("curvature", curvature)
    eta = check_positive("lr", lr)
    beta = check_in_range("momentum", momentum, 0.0, 1.0)
    tau = check_in_range("dampening", dampening, 0.0, 1.0)
    nesterov = check_bool("nesterov", nesterov)
    first_step = check_bool("first_step", first_step)
    if first_step:
        c_g, beta_buf = 1.0, 0.0
    else:
        c_g, beta_buf = 1.0 - tau, beta
    n_g, n_b = (1.0, beta) if nesterov else (0.0, 1.0)
    s = n_g + n_b * c_g
    A = np.empty((*a.shape, 2, 2))
    A[..., 0, 0] = 1.0 - eta * a * s
    A[..., 0, 1] = -eta * n_b * beta_buf
    A[..., 1, 0] = c_g * a
    A[..., 1, 1] = beta_buf
    p = np.empty((*a.shape, 2))
    p[..., 0] = -eta * s
    p[..., 1] = c_g
    return A, p


def companion_matrix(
    curvature: float | np.ndarray,
    lr: float,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
) -> np.ndarray:
    """Transition matrix ``A`` (shape ``(..., 2, 2)``) of the noise-free recursion on a mode.

    See :func:`step_matrices`; for GD (β = 0) the buffer row is inert and the only non-zero
    eigenvalue is ``1 − ηa``.
    """
    return step_matrices(
        curvature, lr, momentum=momentum, dampening=dampening, nesterov=nesterov
    )[0]


def spectral_radius(
    curvature: float | np.ndarray,
    lr: float,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
) -> np.ndarray:
    """Spectral radius of :func:`companion_matrix` per mode (eigenvalues by LAPACK)."""
    A = companion_matrix(curvature, lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
    return np.max(np.abs(np.linalg.eigvals(A)), axis=-1)


def threshold(method: str, momentum: float = 0.0) -> float:
    """Closed-form critical ``ηa``: the mode is unstable iff ``ηa`` exceeds this value.

    GD 2; heavy ball ``2 + 2β``; Nesterov ``(2 + 2β)/(1 + 2β)``; EMA ``(2 + 2β)/(1 − β)``.
    """
    p = method_params(method, momentum)
    beta = float(p["momentum"])
    if method == "gd":
        return 2.0
    if method == "heavy_ball":
        return 2.0 + 2.0 * beta
    if method == "nesterov":
        return (2.0 + 2.0 * beta) / (1.0 + 2.0 * beta)
    return (2.0 + 2.0 * beta) / (1.0 - beta)


def lr_threshold(curvature: float, method: str = "gd", momentum: float = 0.0) -> float:
    """Closed-form largest stable learning rate ``threshold(method, β)/a`` for curvature a > 0.

    ``momentum`` must be 0 for ``"gd"``. Raises ``ValueError`` when the threshold overflows
    float64 (a curvature so small, e.g. subnormal, that ``threshold/a`` is not representable).
    """
    a = check_positive("curvature", curvature)
    eta = threshold(method, momentum) / a
    if not np.isfinite(eta):
        raise ValueError(
            f"`curvature`={curvature!r} is too small: the threshold {threshold(method, momentum):g}"
            f"/curvature overflows float64"
        )
    return eta


def lr_threshold_numeric(
    curvature: float,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    rtol: float = 1e-13,
) -> float:
    """Critical learning rate by bisection on the spectral radius of the companion matrix.

    Independent of the closed forms: the stable set is ``(0, η*)`` and ``η*`` is bracketed by
    doubling from ``1/a`` until the spectral radius exceeds 1, then bisected to a bracket of
    relative width ``rtol`` (in [1e-15, 1)), whose midpoint is returned: within ``rtol/2``
    (relative) of ``η*`` (so ``η*·a`` is the critical ``ηa``).
    """
    a = check_positive("curvature", curvature)
    rtol = _check_rtol(rtol)
    check_in_range("momentum", momentum, 0.0, 1.0, high_open=True)  # β = 1 is never stable
    kw = {"momentum": momentum, "dampening": dampening, "nesterov": check_bool("nesterov", nesterov)}

    def stable(eta: float) -> bool:
        return not spectral_radius(a, eta, **kw) > 1.0

    return _bisect_stable(
        stable, 1.0 / a, rtol, error="no instability found below lr = 1e12/curvature"
    )


def max_stable_lr(
    eigenvalues: np.ndarray,
    method: str = "gd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> float:
    """Largest learning rate at which every mode of a quadratic is stable.

    ``min_i threshold(method, β)/(λ_i + λ_wd)`` over modes with positive curvature; a mode with
    zero curvature is marginal (eigenvalue 1) for every lr and does not constrain it. Returns
    ``0.0`` if some curvature is negative (no lr is stable) and ``inf`` if all are zero;
    ``ValueError`` if the bound overflows float64 (a subnormal largest curvature).
    """
    lam = as_float_array("eigenvalues", eigenvalues, ndim=1)
    wd = check_positive("weight_decay", weight_decay, allow_zero=True)
    crit = threshold(method, momentum)  # validates method and momentum whatever the spectrum
    a = lam + wd
    if np.any(a < 0):
        return 0.0
    a = a[a > 0]
    if a.size == 0:
        return float("inf")
    eta = crit / float(np.max(a))
    if not np.isfinite(eta):
        raise ValueError(
            f"`eigenvalues`: the largest curvature {float(np.max(a))!r} is too small, the stable "
            "learning-rate bound overflows float64"
        )
    return eta


def _nsgd_checked(eigenvalues, gamma, top_k):
    lam = as_float_array("eigenvalues", eigenvalues, ndim=1)
    g = check_positive("gamma", gamma)
    k = check_int("top_k", top_k, minimum=0)
    if k > lam.size:
        raise ValueError(f"`top_k` must be <= len(eigenvalues) = {lam.size}, got {k}")
    lam = np.sort(lam)[::-1]
    return lam, g, k


def nsgd_max_stable_lr(eigenvalues: np.ndarray, gamma: float, top_k: int) -> float:
    """Largest stable lr of nudged SGD ``θ ← θ − η(I − (1−γ)EEᵀ)∇L`` on a quadratic.

    E spans the top-K eigenvectors (largest algebraic eigenvalues): those modes step with γη,
    the rest with η, so the bound is ``min(min_{i≤K} 2/(γλ_i), min_{i>K} 2/λ_i)`` (only modes
    with λ > 0 constrain; 0.0 if any λ < 0).
    """
    lam, g, k = _nsgd_checked(eigenvalues, gamma, top_k)
    if np.any(lam < 0):
        return 0.0
    scale = np.where(np.arange(lam.size) < k, g, 1.0) * lam
    scale = scale[scale > 0]
    return float("inf") if scale.size == 0 else 2.0 / float(np.max(scale))


def nsgd_is_stable(eigenvalues: np.ndarray, lr: float, gamma: float, top_k: int) -> bool:
    """Whether NSGD is stable: ``γηλ_i < 2`` for i ≤ K and ``ηλ_i < 2`` for i > K (all λ_i ≥ 0)."""
    lam, g, k = _nsgd_checked(eigenvalues, gamma, top_k)
    eta = check_positive("lr", lr)
    step = np.where(np.arange(lam.size) < k, g * eta, eta)
    return bool(np.all(lam >= 0) and np.all(step * lam < 2.0))


def _check_rtol(rtol: float) -> float:
    """Bisection tolerance: relative, in [1e-15, 1) (below float64 resolution it cannot be met)."""
    return check_in_range("rtol", rtol, 1e-15, 1.0, high_open=True)


def _bisect_stable(
    is_stable: Callable[[float], bool],
    start: float,
    rtol: float,
    error: str = "no instability found",
) -> float:
    """Edge ``η*`` of a stable interval ``(0, η*)``: double from ``start`` until unstable
    (``ValueError(error)`` past ``1e12·start``), then bisect until the bracket's relative width is
    at most ``rtol``; the midpoint is returned, so ``|η − η*| ≤ rtol·η*/2`` when ``is_stable``
    is exact. Stops early if the bracket reaches adjacent floats."""
    lo, hi = 0.0, start
    while is_stable(hi):
        lo, hi = hi, 2.0 * hi
        if hi > 1e12 * start:
            raise ValueError(error)
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):  # adjacent floats: the bracket cannot shrink further
            break
        if is_stable(mid):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
