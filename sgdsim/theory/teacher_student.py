"""Online SGD of a two-layer soft committee machine in the teacher–student setup (Saad–Solla ODEs).

The model (Saad & Solla, Phys. Rev. E 52, 4225 (1995); Goldt, Advani, Saxe, Krzakala &
Zdeborová, NeurIPS 2019 / arXiv:1906.08632, Eq. (1) and Sec. 2). Inputs ``x ~ N(0, I_N)``;
teacher ``y = Σ_m v*_m g(ν_m) + σζ`` with ``ν_m = w*_m·x/√N`` and ``ζ ~ N(0, 1)``; student
``φ(x) = Σ_k v_k g(λ_k)``, ``λ_k = w_k·x/√N``; activation ``g(u) = erf(u/√2)``. Online SGD on
``½(φ − y)²`` with a fresh sample at every step ``μ``:

.. math::
    w_k \\leftarrow w_k - \\frac{\\eta}{\\sqrt N}\\, v_k\\, \\Delta\\, g'(\\lambda_k)\\, x, \\qquad
    v_k \\leftarrow v_k - \\frac{\\eta_v}{N}\\, g(\\lambda_k)\\, \\Delta, \\qquad \\Delta = \\varphi(x) - y

(Goldt et al., the SGD updates of Sec. 2; ``η_v = 0``: the soft committee machine of Saad & Solla
with a fixed second layer). With the order parameters ``Q_ik = w_i·w_k/N``, ``R_in = w_i·w*_n/N``,
``T_nm = w*_n·w*_m/N`` the local fields ``(λ, ν)`` are jointly Gaussian with covariance
``C = [[Q, R], [Rᵀ, T]]``, and as ``N → ∞`` with time ``α = μ/N`` the order parameters follow
the deterministic ODEs (Saad & Solla 1995, their equations of motion for R and Q; Goldt et al.
2019, Sec. 2, who prove them asymptotically exact, with O(1/√N) fluctuations at finite N):

.. math::
    \\frac{dR_{in}}{d\\alpha} = -\\eta v_i \\sum_a u_a I_3(i, n, a),\\qquad
    \\frac{dQ_{ik}}{d\\alpha} = -\\eta v_i \\sum_a u_a I_3(i, k, a) - \\eta v_k \\sum_a u_a I_3(k, i, a)
      + \\eta^2 v_i v_k \\Big[\\sum_{ab} u_a u_b I_4(i, k, a, b) + \\sigma^2 J_2(i, k)\\Big],

.. math::
    \\frac{dv_i}{d\\alpha} = -\\eta_v \\sum_a u_a I_2(i, a),

where ``a, b`` run over all ``K + M`` hidden units (students first), ``u = (v, −v*)`` so that
``Δ = Σ_a u_a g(h_a) − σζ``, and the Gaussian averages (``h ~ N(0, C)``, indices into ``C``)

* ``I_2(a, b) = E[g(h_a) g(h_b)] = (2/π) arcsin(C_ab / √((1+C_aa)(1+C_bb)))``,
* ``I_3(a, b, c) = E[g'(h_a) h_b g(h_c)]``, ``I_4(a, b, c, d) = E[g'(h_a) g'(h_b) g(h_c) g(h_d)]``,
* ``J_2(a, b) = E[g'(h_a) g'(h_b)] = (2/π) / √((1+C_aa)(1+C_bb) − C_ab²)``

have the closed forms of Saad & Solla 1995 (their appendix; used again by Goldt et al.) given in
:func:`i3` and :func:`i4`. The generalisation error (Goldt et al.'s definition, the noiseless
``ε_g = ½ E[(φ(x) − Σ v*_m g(ν_m))²]``; Saad & Solla's ``ε_g`` for ``v = v* = 1``) is
``ε_g = ½ Σ_ab u_a u_b I_2(a, b)`` (:func:`generalisation_error`).

The symmetric plateau (Saad & Solla 1995, the symmetric phase; Saad & Solla PRL 74, 4337
(1995)): for ``K = M``, ``T = I``, ``v = v* = 1`` and small ``η`` the dynamics is trapped near
the fixed point with all ``Q_ii = Q``, ``Q_{i≠k} = C``, ``R_in = R`` where
``Q = C = 1/(2K−1)``, ``R = 1/√(K(2K−1))`` and ``ε_g = (K/π)(π/6 − K arcsin(1/(2K)))``
(:func:`plateau_error_small_lr`); :func:`symmetric_fixed_point` finds it at any ``η`` by solving
the fixed-point equations of the reduced ODEs numerically instead.

Everything here is deterministic (closed forms, ODE integration, root finding, bisection): the
simulator of the networks themselves is :mod:`sgdsim.teacher_student`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, root

from sgdsim._validation import as_float_array, check_int, check_positive

__all__ = [
    "OrderParameterCurve",
    "SymmetricFixedPoint",
    "committee_covariance",
    "generalisation_error",
    "i2",
    "i3",
    "i4",
    "integrate_order_parameters",
    "j2",
    "learning_lr_threshold",
    "order_parameter_rhs",
    "perfect_learning_lr_threshold",
    "plateau_error_small_lr",
    "symmetric_fixed_point",
]

_TWO_PI = 2.0 / math.pi
_FOUR_PI2 = 4.0 / math.pi**2


def _positive(name: str, value, *, allow_zero: bool = False) -> float:
    """``check_positive`` that also refuses strings and booleans (TypeError naming ``name``)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"`{name}` must be a real number, got {value!r}")
    return check_positive(name, value, allow_zero=allow_zero)


# --- Gaussian averages of g(u) = erf(u/√2) -----------------------------------------------------
def _entries(C: np.ndarray, n: int, name: str) -> np.ndarray:
    C = as_float_array(name, C)
    if C.shape[-2:] != (n, n):
        raise ValueError(f"`{name}` must have shape (..., {n}, {n}), got {C.shape}")
    return C


def i2(C) -> np.ndarray:
    """``E[g(h_1) g(h_2)]`` for ``h ~ N(0, C)``, ``C`` shape ``(..., 2, 2)``: the arcsin law
    ``(2/π) arcsin(C12/√((1+C11)(1+C22)))`` (Saad & Solla 1995, appendix)."""
    C = _entries(C, 2, "C")
    return _i2(C[..., 0, 0], C[..., 0, 1], C[..., 1, 1])


def _i2(c11, c12, c22):
    return _TWO_PI * np.arcsin(np.clip(c12 / np.sqrt((1.0 + c11) * (1.0 + c22)), -1.0, 1.0))


def i3(C) -> np.ndarray:
    """``E[g'(h_1) h_2 g(h_3)]`` for ``h ~ N(0, C)``, ``C`` shape ``(..., 3, 3)``:
    ``(2/π) (C23(1+C11) − C12 C13) / ((1+C11) √Λ3)``, ``Λ3 = (1+C11)(1+C33) − C13²``
    (Saad & Solla 1995, appendix)."""
    C = _entries(C, 3, "C")
    return _i3(C[..., 0, 0], C[..., 0, 1], C[..., 0, 2], C[..., 1, 2], C[..., 2, 2])


def _i3(c11, c12, c13, c23, c33):
    lam3 = (1.0 + c11) * (1.0 + c33) - c13 * c13
    return _TWO_PI * (c23 * (1.0 + c11) - c12 * c13) / ((1.0 + c11) * np.sqrt(lam3))


def i4(C) -> np.ndarray:
    """``E[g'(h_1) g'(h_2) g(h_3) g(h_4)]`` for ``h ~ N(0, C)``, ``C`` shape ``(..., 4, 4)``:
    ``(4/π²) Λ4^{-1/2} arcsin(Λ0/√(Λ1Λ2))`` with ``Λ4 = (1+C11)(1+C22) − C12²`` and
    ``Λ0, Λ1, Λ2`` the cofactor combinations of Saad & Solla 1995 (appendix)."""
    C = _entries(C, 4, "C")
    g = C.__getitem__
    return _i4(g((..., 0, 0)), g((..., 0, 1)), g((..., 0, 2)), g((..., 0, 3)), g((..., 1, 1)),
               g((..., 1, 2)), g((..., 1, 3)), g((..., 2, 2)), g((..., 2, 3)), g((..., 3, 3)))


def _i4(c11, c12, c13, c14, c22, c23, c24, c33, c34, c44):
    lam4 = (1.0 + c11) * (1.0 + c22) - c12 * c12
    lam0 = (lam4 * c34 - c23 * c24 * (1.0 + c11) - c13 * c14 * (1.0 + c22)
            + c12 * c13 * c24 + c12 * c14 * c23)
    lam1 = lam4 * (1.0 + c33) - c23 * c23 * (1.0 + c11) - c13 * c13 * (1.0 + c22) + 2.0 * c12 * c13 * c23
    lam2 = lam4 * (1.0 + c44) - c24 * c24 * (1.0 + c11) - c14 * c14 * (1.0 + c22) + 2.0 * c12 * c14 * c24
    # |Λ0| ≤ √(Λ1Λ2) for any PSD C (Cauchy–Schwarz); clipping only absorbs rounding when C is
    # singular up to round-off (a student equal to its teacher: Q = R = T at perfect learning)
    ratio = lam0 / np.sqrt(np.maximum(lam1 * lam2, 1e-300))
    return _FOUR_PI2 / np.sqrt(lam4) * np.arcsin(np.clip(ratio, -1.0, 1.0))


def j2(C) -> np.ndarray:
    """``E[g'(h_1) g'(h_2)]`` for ``h ~ N(0, C)``, ``C`` shape ``(..., 2, 2)``:
    ``(2/π) / √((1+C11)(1+C22) − C12²)`` (the output-noise term, Saad & Solla NIPS 1996)."""
    C = _entries(C, 2, "C")
    return _j2(C[..., 0, 0], C[..., 0, 1], C[..., 1, 1])


def _j2(c11, c12, c22):
    return _TWO_PI / np.sqrt((1.0 + c11) * (1.0 + c22) - c12 * c12)


# --- order parameters -------------------------------------------------------------------------
def committee_covariance(Q, R, T) -> np.ndarray:
    """The covariance ``C = [[Q, R], [Rᵀ, T]]`` of the local fields ``(λ_1..λ_K, ν_1..ν_M)``,
    shape ``(K+M, K+M)``; checks shapes, symmetry, finiteness and positive semi-definiteness."""
    Q = as_float_array("Q", Q, ndim=2)
    R = as_float_array("R", R, ndim=2)
    T = as_float_array("T", T, ndim=2)
    K, M = R.shape
    if Q.shape != (K, K):
        raise ValueError(f"`Q` must have shape ({K}, {K}) to match `R` {R.shape}, got {Q.shape}")
    if T.shape != (M, M):
        raise ValueError(f"`T` must have shape ({M}, {M}) to match `R` {R.shape}, got {T.shape}")
    for name, mat in (("Q", Q), ("T", T)):
        if not np.allclose(mat, mat.T, rtol=1e-10, atol=1e-12):
            raise ValueError(f"`{name}` must be symmetric")
    C = np.block([[Q, R], [R.T, T]])
    _check_psd(C)
    return C


def _check_psd(C: np.ndarray) -> None:
    """Overlaps of real weight vectors form a PSD matrix: refuse ``C`` (..., n, n) otherwise."""
    low = float(np.min(np.linalg.eigvalsh(C))) if C.size else 0.0
    if low < -1e-6 * max(1.0, float(np.max(np.abs(C)))):  # room for ODE output (rtol-level errors)
        raise ValueError(f"[[Q, R], [Rᵀ, T]] must be positive semi-definite (overlaps of real weight "
                         f"vectors); its smallest eigenvalue is {low:.3g}")


def _second_layers(v, v_star, K: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    v = np.ones(K) if v is None else as_float_array("v", v, shape=(K,))
    v_star = np.ones(M) if v_star is None else as_float_array("v_star", v_star, shape=(M,))
    return v, v_star


def generalisation_error(Q, R, T, v=None, v_star=None) -> float | np.ndarray:
    """Closed-form ``ε_g = ½ E[(Σ_k v_k g(λ_k) − Σ_m v*_m g(ν_m))²]`` over ``x ~ N(0, I)``.

    ``ε_g = (1/π)[Σ_ik v_i v_k arcsin(Q_ik/√((1+Q_ii)(1+Q_kk))) + Σ_nm v*_n v*_m arcsin(T_nm/…)
    − 2 Σ_in v_i v*_n arcsin(R_in/√((1+Q_ii)(1+T_nn)))]`` (Saad & Solla 1995; Goldt et al. 2019,
    Sec. 2), the noiseless error (output noise adds σ²/2 to the test loss).

    Parameters
    ----------
    Q : (..., K, K), R : (..., K, M), T : (M, M)
        Order parameters (overlaps divided by N); leading dimensions of ``Q``, ``R`` (and ``v``)
        are batch dimensions, e.g. (records, replicas).
    v : (..., K), v_star : (M,), optional
        Second-layer weights (default ones: the soft committee machine).

    Returns
    -------
    float, or an array of the batch shape
    """
    Q = as_float_array("Q", Q)
    R = as_float_array("R", R)
    T = as_float_array("T", T, ndim=2)
    if Q.ndim < 2 or R.ndim != Q.ndim or Q.shape[-1] != Q.shape[-2] or R.shape[-2] != Q.shape[-1] \
            or T.shape != (R.shape[-1], R.shape[-1]) or Q.shape[:-2] != R.shape[:-2]:
        raise ValueError(f"shapes of `Q` {Q.shape}, `R` {R.shape}, `T` {T.shape} do not fit "
                         "(..., K, K), (..., K, M), (M, M)")
    K, M = R.shape[-2:]
    v = np.ones(K) if v is None else as_float_array("v", v)
    if v.shape[-1:] != (K,):
        raise ValueError(f"`v` must have shape (..., {K}), got {v.shape}")
    v_star = np.ones(M) if v_star is None else as_float_array("v_star", v_star, shape=(M,))
    Tb = np.broadcast_to(T, (*R.shape[:-2], M, M))
    top = np.concatenate([Q, R], -1)
    _check_psd(np.concatenate([top, np.concatenate([np.swapaxes(R, -1, -2), Tb], -1)], -2))
    return _generalisation_error(Q, R, T, v, v_star)


def _generalisation_error(Q, R, T, v, v_star):
    """:func:`generalisation_error` without validation (NaN entries give NaN)."""
    dq = np.diagonal(Q, axis1=-2, axis2=-1)
    dt = np.diag(T)
    ss = np.einsum("...i,...ik,...k->...", v, _i2(dq[..., :, None], Q, dq[..., None, :]), v)
    st = v_star @ _i2(dt[:, None], T, dt[None, :]) @ v_star
    cross = np.einsum("...i,...in,n->...", v, _i2(dq[..., :, None], R, dt), v_star)
    # a sum of squares: clip the rounding-level negatives (~1e-17) at perfect learning
    out = np.maximum(0.5 * (ss + st - 2.0 * cross), 0.0)
    return float(out) if out.ndim == 0 else out


def order_parameter_rhs(Q, R, T, lr: float, *, v=None, v_star=None, noise_std: float = 0.0,
                        lr_second: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Right-hand side of the order-parameter ODEs in time ``α = steps/N``.

    Implements the Saad–Solla equations of motion (module docstring; Saad & Solla 1995, and with
    the second layer trained Goldt et al. 2019, Sec. 2), all ``I_3`` and ``I_4`` terms
    at once by broadcasting.

    Parameters
    ----------
    Q : (K, K), R : (K, M), T : (M, M)
        Order parameters.
    lr : float
        First-layer learning rate ``η`` (the SGD step is ``η/√N · v_k Δ g'(λ_k) x``).
    v : (K,), v_star : (M,), optional
        Second-layer weights (default ones).
    noise_std : float
        Output-noise standard deviation ``σ`` of the teacher.
    lr_second : float
        Second-layer learning rate ``η_v`` (0: fixed second layer, the soft committee machine).

    Returns
    -------
    dQ : (K, K), dR : (K, M), dv : (K,)
        ``dQ/dα``, ``dR/dα`` and ``dv/dα``.
    """
    C = committee_covariance(Q, R, T)
    K, M = np.shape(R)
    v, v_star = _second_layers(v, v_star, K, M)
    return _rhs(C, K, v, v_star, _positive("lr", lr), _positive("noise_std", noise_std, allow_zero=True),
                _positive("lr_second", lr_second, allow_zero=True))


def _rhs(C, K, v, v_star, lr, noise_std, lr_second):
    u = np.concatenate([v, -v_star])
    d = np.diag(C)
    s = slice(0, K)
    # I3(i, b, a) = E[g'(h_i) h_b g(h_a)] for student i, any b, a: shape (K, L, L)
    i3_all = _i3(d[s, None, None], C[s, :, None], C[s, None, :], C[None, :, :], d[None, None, :])
    drive = i3_all @ u  # (K, L): Σ_a u_a I3(i, b, a) = E[g'(λ_i) h_b Δ]
    dR = -lr * v[:, None] * drive[:, K:]
    first = -lr * v[:, None] * drive[:, s]
    dQ = first + first.T
    # I4(i, k, a, b) for students i, k and any a, b: shape (K, K, L, L)
    ci = (slice(None), None, None, None)
    ck = (None, slice(None), None, None)
    ca = (None, None, slice(None), None)
    cb = (None, None, None, slice(None))
    Cs = C[s, s]
    Ck = C[s, :]
    i4_all = _i4(d[s][ci], Cs[:, :, None, None], Ck[:, None, :, None], Ck[:, None, None, :],
                 d[s][ck], Ck[None, :, :, None], Ck[None, :, None, :], d[ca], C[None, None, :, :],
                 d[cb])
    second = np.einsum("ikab,a,b->ik", i4_all, u, u)
    if noise_std:
        second = second + noise_std**2 * _j2(d[s, None], Cs, d[None, s])
    dQ = dQ + lr * lr * np.outer(v, v) * second
    if lr_second:
        dv = -lr_second * (_i2(d[s, None], C[s, :], d[None, :]) @ u)
    else:
        dv = np.zeros(K)
    return dQ, dR, dv


# --- integration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderParameterCurve:
    """A solution of the order-parameter ODEs on a grid of times.

    Attributes
    ----------
    alpha : (n,)
        Times ``α = steps/N``.
    Q : (n, K, K), R : (n, K, M), v : (n, K)
        Order parameters and second-layer weights at those times.
    T : (M, M), v_star : (M,)
        The teacher (fixed).
    eps_g : (n,)
        Generalisation error (closed form, :func:`generalisation_error`).
    lr, lr_second, noise_std : float
    """

    alpha: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    v: np.ndarray
    T: np.ndarray
    v_star: np.ndarray
    eps_g: np.ndarray
    lr: float
    lr_second: float
    noise_std: float


def integrate_order_parameters(Q0, R0, T, lr: float, alpha_max: float, *, v0=None, v_star=None,
                               noise_std: float = 0.0, lr_second: float = 0.0, alphas=None,
                               n_points: int = 201, rtol: float = 1e-8,
                               atol: float = 1e-10) -> OrderParameterCurve:  # fmt: skip
    """Integrate the Saad–Solla / Goldt et al. ODEs from ``(Q0, R0, v0)`` to ``α = alpha_max``.

    Scheme: SciPy's adaptive Dormand–Prince 8(5,3) (``solve_ivp(method="DOP853")``) on the
    ``K(K+1)/2 + KM (+K)`` independent unknowns, error controlled by ``rtol``/``atol``.

    Parameters
    ----------
    Q0 : (K, K), R0 : (K, M), T : (M, M)
        Initial order parameters and the teacher's ``T`` (fixed).
    lr : float
        First-layer learning rate ``η`` (> 0).
    alpha_max : float
        Final time ``α = steps/N``.
    v0 : (K,), v_star : (M,), optional
        Initial student and teacher second layers (default ones).
    noise_std, lr_second : float
        Teacher output noise ``σ`` and second-layer learning rate ``η_v`` (0: not trained).
    alphas : array, optional
        Output times (sorted, within [0, alpha_max]); default ``n_points`` evenly spaced.
    rtol, atol : float
        Integrator tolerances.

    Returns
    -------
    OrderParameterCurve
    """
    lr = _positive("lr", lr)
    alpha_max = _positive("alpha_max", alpha_max)
    noise_std = _positive("noise_std", noise_std, allow_zero=True)
    lr_second = _positive("lr_second", lr_second, allow_zero=True)
    rtol, atol = _positive("rtol", rtol), _positive("atol", atol)  # solve_ivp's tolerances
    C0 = committee_covariance(Q0, R0, T)
    K, M = np.shape(R0)
    v0, v_star = _second_layers(v0, v_star, K, M)
    T = np.asarray(T, dtype=float)
    if alphas is None:
        n_points = check_int("n_points", n_points, minimum=2)
        alphas = np.linspace(0.0, alpha_max, n_points)
    else:
        alphas = as_float_array("alphas", alphas, ndim=1)
        if np.any(np.diff(alphas) < 0) or alphas[0] < 0 or alphas[-1] > alpha_max:
            raise ValueError(f"`alphas` must be sorted and lie in [0, {alpha_max}]")
    iu = np.triu_indices(K)

    def pack(Q, R, v):
        return np.concatenate([Q[iu], R.ravel(), v])

    def unpack(y):
        Q = np.empty((K, K))
        Q[iu] = y[: iu[0].size]
        Q.T[iu] = y[: iu[0].size]
        R = y[iu[0].size : iu[0].size + K * M].reshape(K, M)
        return Q, R, y[iu[0].size + K * M :]

    def f(_a, y):
        Q, R, v = unpack(y)
        C = np.block([[Q, R], [R.T, T]])
        dQ, dR, dv = _rhs(C, K, v, v_star, lr, noise_std, lr_second)
        return pack(dQ, dR, dv)

    sol = solve_ivp(f, (0.0, alpha_max), pack(C0[:K, :K], C0[:K, K:], v0), method="DOP853",
                    t_eval=alphas, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"ODE integration failed at α={sol.t[-1]:.4g}: {sol.message}")
    n = sol.t.size
    Qs, Rs, vs = np.empty((n, K, K)), np.empty((n, K, M)), np.empty((n, K))
    for j in range(n):
        Qs[j], Rs[j], vs[j] = unpack(sol.y[:, j])
    # no PSD check here: near perfect learning C is singular and the integrator's O(rtol) errors
    # can make it indefinite at the 1e-9 level
    eps = _generalisation_error(Qs, Rs, T, vs, v_star)
    return OrderParameterCurve(sol.t, Qs, Rs, vs, T, v_star, eps, lr, lr_second, noise_std)


# --- the symmetric plateau ----------------------------------------------------------------------
@dataclass(frozen=True)
class SymmetricFixedPoint:
    """The permutation-symmetric fixed point for ``K = M``, ``T = I``, ``v = v* = 1``:
    ``Q_ii = Q``, ``Q_{i≠k} = C``, ``R_in = R`` (all student–teacher overlaps equal).

    ``eps_g`` is its generalisation error; ``escape_rate`` the largest eigenvalue of the full ODE
    Jacobian there (the plateau is left along that direction, as ``exp(escape_rate·α)``)."""

    K: int
    lr: float
    Q: float
    C: float
    R: float
    eps_g: float
    escape_rate: float


def _symmetric_matrices(K: int, q: float, c: float, r: float):
    Q = np.full((K, K), c) + (q - c) * np.eye(K)
    return Q, np.full((K, K), r), np.eye(K)


def _symmetric_residual(p, K, lr):
    q, c, r = p
    Q, R, T = _symmetric_matrices(K, q, c, r)
    C = np.block([[Q, R], [R.T, T]])
    dQ, dR, _ = _rhs(C, K, np.ones(K), np.ones(K), lr, 0.0, 0.0)
    # the residual is O(η): dividing by η keeps its scale, and the solver's tolerance, η-free
    return np.array([dQ[0, 0], dQ[0, 1] if K > 1 else q - c, dR[0, 0]]) / lr


def plateau_error_small_lr(K: int) -> float:
    """Saad & Solla's (1995) symmetric-plateau error in the limit η → 0:
    ``ε_g = (K/π)(π/6 − K arcsin(1/(2K)))`` (at ``Q = C = 1/(2K−1)``, ``R = 1/√(K(2K−1))``)."""
    K = check_int("K", K, minimum=1)
    return K / math.pi * (math.pi / 6 - K * math.asin(1.0 / (2 * K)))


def symmetric_fixed_point(K: int, lr: float, *, guess=None) -> SymmetricFixedPoint:
    """Solve the fixed-point equations ``dQ_11 = dQ_12 = dR_11 = 0`` of the ODEs restricted to
    the symmetric subspace (``K = M``, ``T = I``, fixed second layers of ones) at learning rate
    ``lr``, by Levenberg–Marquardt (``scipy.optimize.root(method="lm")``: as η → 0 the equations
    for ``Q`` and ``C`` become degenerate, the Jacobian's smallest singular value is O(η), which
    defeats Powell's hybrid method). The branch is followed from small η: solves at 12
    geometrically spaced η from 1e-3 up to ``lr``, each started from the previous root, the first
    from ``guess`` (default: the η → 0 values ``Q = C = 1/(2K−1)``, ``R = 1/√(K(2K−1))`` perturbed
    by 20%, so the root is found, not assumed). The escape rate is the largest real eigenvalue of
    the Jacobian of the full (unrestricted) ODEs there, by central finite differences (step 1e-6).
    """
    K = check_int("K", K, minimum=2)
    lr = _positive("lr", lr)
    if guess is None:
        guess = np.array([1.2 / (2 * K - 1), 0.8 / (2 * K - 1), 1.2 / math.sqrt(K * (2 * K - 1))])
    x = np.asarray(guess, float)
    for eta in (np.geomspace(1e-3, lr, 12) if lr > 1e-3 else [lr]):
        sol = root(_symmetric_residual, x, args=(K, float(eta)), method="lm", tol=1e-14)
        if not sol.success or np.max(np.abs(sol.fun)) > 1e-10:
            raise RuntimeError(f"symmetric fixed point not found for K={K} at lr={eta:.4g}: {sol.message}")
        x = sol.x
    q, c, r = (float(v) for v in x)
    Q, R, T = _symmetric_matrices(K, q, c, r)
    return SymmetricFixedPoint(K, lr, q, c, r, generalisation_error(Q, R, T),
                               float(np.max(np.linalg.eigvals(_jacobian(Q, R, T, lr)).real)))


def perfect_learning_lr_threshold(T) -> float:
    """Largest learning rate at which the perfect solution ``Q = R = T`` (student = teacher,
    ``K = M``, second layers of ones, no output noise) is linearly stable.

    The Jacobian of the ODEs there is ``J(η) = ηA + η²B`` (the O(η) drift and the O(η²) SGD-noise
    term), so stability is lost where the largest real eigenvalue of ``A + ηB`` crosses zero
    (Saad & Solla 1995, the asymptotic phase). ``A`` and ``B`` come from central-difference
    Jacobians at η = 1 and 2; the crossing is found by a scan and Brent's method. For ``K = M = 1``,
    ``T = 1`` it equals ``π√(5/3)`` (derived in SymPy in the tests).

    Parameters
    ----------
    T : (M, M)
        Teacher overlaps (positive definite).

    Returns
    -------
    float
        η_c; ``inf`` if no crossing below η = 50.
    """
    T = as_float_array("T", T, ndim=2)
    J1, J2 = _jacobian(T, T, T, 1.0), _jacobian(T, T, T, 2.0)
    B = 0.5 * (J2 - 2.0 * J1)
    A = J1 - B

    def top(eta):
        return float(np.max(np.linalg.eigvals(A + eta * B).real))

    grid = np.geomspace(1e-2, 50.0, 400)
    values = np.array([top(e) for e in grid])
    if values[0] >= 0:
        raise ValueError("the perfect solution is not stable for small η: is `T` positive definite?")
    above = np.flatnonzero(values > 0)
    if above.size == 0:
        return math.inf
    j = int(above[0])
    return float(brentq(top, grid[j - 1], grid[j], xtol=1e-12))


def _jacobian(Q, R, T, lr, h=1e-6):
    """Central-difference Jacobian of the (Q upper triangle, R) flow at (Q, R)."""
    K, M = R.shape
    iu = np.triu_indices(K)
    y0 = np.concatenate([Q[iu], R.ravel()])
    n_q = iu[0].size

    def f(y):
        Qy = np.empty((K, K))
        Qy[iu] = y[:n_q]
        Qy.T[iu] = y[:n_q]
        Ry = y[n_q:].reshape(K, M)
        dQ, dR, _ = _rhs(np.block([[Qy, Ry], [Ry.T, T]]), K, np.ones(K), np.ones(M), lr, 0.0, 0.0)
        return np.concatenate([dQ[iu], dR.ravel()])

    J = np.empty((y0.size, y0.size))
    for j in range(y0.size):
        e = np.zeros_like(y0)
        e[j] = h
        J[:, j] = (f(y0 + e) - f(y0 - e)) / (2 * h)
    return J


# --- the learning-rate threshold ------------------------------------------------------------------
def learning_lr_threshold(Q0, R0, T, *, alpha_max: float, tol: float = 1e-3,
                          lr_bracket: tuple[float, float] = (0.1, 20.0),
                          learned_below: float = 1e-3) -> float:  # fmt: skip
    """The learning rate above which the ODE no longer learns from ``(Q0, R0)``, by bisection.

    "Learns" means ``ε_g(alpha_max) < learned_below · ε_g(0)`` for the ODE integrated from
    ``(Q0, R0)`` with fixed second layers of ones and no output noise. The bracket must hold one
    learning rate that learns (low end) and one that does not (high end); the bisection (Brent's
    method on the sign of ``log(ε_g(α_max)/ε_g(0)) − log(learned_below)``) stops at relative
    width ``tol``.
    """
    alpha_max = _positive("alpha_max", alpha_max)
    lo, hi = (_positive("lr_bracket", x) for x in lr_bracket)
    eps0 = generalisation_error(Q0, R0, T)

    def margin(lr):
        curve = integrate_order_parameters(Q0, R0, T, lr, alpha_max, alphas=[alpha_max],
                                           rtol=1e-7, atol=1e-9)
        return math.log(max(curve.eps_g[-1], 1e-300) / eps0) - math.log(learned_below)

    m_lo, m_hi = margin(lo), margin(hi)
    if not (m_lo < 0 < m_hi):
        raise ValueError(f"`lr_bracket`={lr_bracket} does not bracket the threshold: "
                         f"ε_g(α_max)/ε_g(0) = {math.exp(m_lo) * learned_below:.3g} at the low end, "
                         f"{math.exp(m_hi) * learned_below:.3g} at the high end")
    return float(brentq(margin, lo, hi, rtol=tol))
