"""Central flows: the time-averaged trajectory of GD (and RMSProp, heavy ball) at the edge of stability.

Cohen, Damian, Talwalkar, Kolter & Lee, "Understanding Optimization in Deep Learning with Central
Flows" (arXiv:2410.24206, ICLR 2025; companion site centralflows.github.io). At the edge of
stability GD oscillates along the top Hessian eigenvectors while its *time average* ``w(t)`` moves
smoothly. Writing an iterate as ``w + δ`` with an oscillation ``δ`` of covariance ``Σ`` supported
on the edge eigenvectors, a second-order Taylor expansion of the gradient averages to

    ⟨∇L(w + δ)⟩ ≈ ∇L(w) + ½ ∇⟨Σ, ∇²L(w)⟩            (the paper's time-averaged gradient, GD part)

and the central flow of GD (the paper's GD central flow; site Part I — one eigenvalue:
``Σ = σ² u uᵀ``; several: the paper's semidefinite complementarity problem) is

    dw/dt = −η [∇L(w) + ½ ∇⟨Σ(t), H(w)⟩],   t in GD steps,
    Σ ⪰ 0,   H(w) ⪯ (2/η)·I on the edge subspace,   ⟨Σ, 2/η − H⟩ = 0,

with Σ the smallest oscillation that keeps every edge eigenvalue from rising past ``2/η``.
With one edge eigenvalue ``S`` (gradient ``∇S = ∇³L[u, u]``) this is

    σ² = max(0, 2 ⟨−∇L, ∇S⟩ / ‖∇S‖²),   dw/dt = −η Π ∇L  (Π: projection off ∇S),

the projection of gradient flow onto the stable set {S ≤ 2/η}. The flow also predicts the
time-averaged loss ``L(w) + ½⟨Σ, H(w)⟩ = L(w) + Σ_i σ_i²/η`` at the edge and the oscillation
variance ``σ_i² = u_iᵀ Σ u_i`` along each edge eigenvector.

Discretization (as in the paper's code, re-derived here): Euler substeps of ``dt`` GD steps, the
sharpness constraint imposed on the *next* substep, linearized: with ``U`` the tracked top
eigenvectors (eigenvalues ``Λ``) and ``T_ab = ∇³L[u_a, u_b] = ∂_ε H(w + εu_a)u_b`` (a central
finite difference of the exact HVP along ``u_a``), ``Σ = U X Uᵀ`` and

    X ⪰ 0,   Y = A + B[X] ⪰ 0,   ⟨X, Y⟩ = 0,
    A = τI − Λ + dt·η_eff (T·∇L),   B[X]_ab = ½ dt·η_eff Σ_cd (T_ab·T_cd) X_cd,

which is the optimality condition of the convex program ``min_{X⪰0} ⟨A, X⟩ + ½⟨X, B[X]⟩``
(:func:`solve_edge_complementarity`). Using the current eigenvalues in ``A`` makes any drift of
the sharpness above ``τ`` pull itself back in the next substep, and an eigenvalue that is about to
cross ``τ`` joins the edge set by itself (new edge eigenvalues are added as they appear).

Optimizers (``τ`` the threshold, ``η_eff`` the effective step of the slow motion):

* ``'gd'`` — from the paper: ``τ = 2/η``, ``η_eff = η``.
* ``'rmsprop'`` — from the paper (its RMSProp central flow; site Part III): RMSProp
  ``ν_k = β₂ν_{k−1} + (1−β₂)g_k²``, ``w_{k+1} = w_k − η g_k/(√ν_k + ε)`` is preconditioned GD with
  ``P = diag(√ν + ε)/η``; the edge is ``λ_max(P⁻¹H) = 2`` (reported as the preconditioned sharpness
  ``λ_max(diag(√ν+ε)⁻¹H)`` against ``2/η``). Central flow: ``dw/dt = −P⁻¹[∇L + ½∇⟨Σ, H⟩]``,
  ``dν/dt = (1−β₂)/β₂ · [∇L² + diag(HΣH) − ν]`` (the ``1/β₂`` because the step uses the ν that already
  contains the current gradient; ``diag(HΣH)`` is the time average of the squared oscillating part
  ``Hδ`` of the gradient). The structure (P⁻¹-preconditioned averaged gradient, ν fed by the
  oscillation, the edge ``λ(P⁻¹H) = 2``) is the paper's; the exact form of the ν equation is our
  derivation — we could not read the paper's printed equation, and the authors' reference code
  we could read forms the oscillation term differently (from the eigenvectors, not ``HU``).
  ``Σ = U X Uᵀ`` with ``U`` the P-orthonormal generalized eigenvectors
  (``HU = PU diag(μ)``). The X-dependence of ``dν/dt`` makes the linear operator ``B`` slightly
  non-symmetric when several eigenvalues are at the edge with ``μ_a ≠ μ_b``; it is symmetrized for
  the solve (exact for one edge eigenvalue; ``max_residual`` is that of the symmetrized problem).
* ``'heavy_ball'`` — **our derivation, not in the paper** (the paper treats GD and RMSProp):
  ``v ← βv − η∇L``, ``w ← w + v``. A period-2 oscillation ``δ_k = (−1)^k x u`` of the
  heavy-ball recursion on a quadratic requires
  ``1 + β − ηλ = −(1 + β)``, i.e. ``λ = τ = 2(1+β)/η``. The slow (time-averaged) part sees the
  averaged gradient above (the oscillation's cubic term ``½∇⟨Σ, H⟩`` is the same as for GD: it
  comes from averaging ∇L over δ, not from the update rule), and the averaged recursion
  ``Δw̄_k = βΔw̄_{k−1} − η⟨∇L⟩`` gives ``Δw̄ = −η/(1−β)·⟨∇L⟩`` once the motion is slow compared
  with the momentum time ``1/(1−β)`` steps; hence ``dw/dt = −η/(1−β)·[∇L + ½∇⟨Σ, H⟩]`` with the
  same complementarity at ``τ``. No momentum state is carried, so two things are not resolved:
  the buffer's start-up from ``v₀ = 0``, a lag of ``β/(1−β)`` steps (exact on the toy's approach
  to the edge: heavy ball's ``y_k = y₀ + ηc/(1−β)·(k − β(1−β^k)/(1−β))`` against the flow's
  ``y₀ + ηck/(1−β)``), and the ``O(d²w/dt²)`` terms of the averaged recursion
  (``(1+β)/(2(1−β))·d²w/dt²`` against GD's ``½·d²w/dt²``). The constraint only fixes Σ, so
  η/(1−β) changes the flow's speed, not its fixed point.

  On ``L = ½yx² − cy`` the flow's fixed point (``y = τ``, ``σ² = 2c``) is an *exact* period-2
  orbit of heavy ball (``x = ±√(2c)``, ``y = τ``); started there, heavy ball keeps ⟨y⟩/τ = 1 to
  1e-8. That orbit is weakly unstable: the exact two-step Jacobian (SymPy) has
  ``|μ| = 1 + 2(1+β)cη²/(1−β)³ + O(η³)`` (GD, β = 0: ``1 + 2cη²``), so heavy ball leaves it and,
  seeded by a gradient-noise floor, settles into a large relaxation cycle whose ⟨y⟩ depends on
  the floor: ⟨y⟩/τ − 1 = −0.013, −0.026, −0.039 for floors 1e-4, 1e-8, 1e-12 (η = 0.02,
  β = 0.5), −0.005 at η = 0.01 (paper check ``sgdsim.central_flow_heavy_ball_toy``). That
  offset is a finite-η property of the discrete dynamics (shrinking with η), not an error of
  the threshold; ⟨x²⟩ = σ² = 2c holds whatever the cycle, since the y-updates sum to
  ``Σ(½x² − c)``.

The paper's limits apply: the flow averages over the oscillation and does not resolve the
transient "catapult" when GD first crosses the edge (the central flow leaves gradient flow
smoothly, GD overshoots and its loss spikes); the prediction is for deterministic (full-batch)
optimization; it assumes the oscillation is small enough for a second-order Taylor expansion.

Equation numbers: the sources readable from this project (the companion site and the authors'
reference code) did not expose the paper's numbered equations or section numbers, so formulas are
cited by name; the forms above were re-derived here, not copied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdsim import _validation
from sgdsim._validation import as_float_array, check_choice, check_int, check_positive
from sgdsim.curvature.lanczos import _serial_blas, lanczos_eigsh

__all__ = [
    "OPTIMIZERS",
    "CentralFlowResult",
    "central_flow",
    "edge_threshold",
    "solve_edge_complementarity",
]

OPTIMIZERS = ("gd", "rmsprop", "heavy_ball")
#: up to this many parameters the eigenpairs come from the dense Hessian (d products + eigh)
_DENSE_MAX = 16


def _real(name: str, value: Any) -> float:
    """``value`` as a float; TypeError naming ``name`` for strings, bools, None, arrays."""
    return _validation._real(name, value)


def edge_threshold(lr: float, optimizer: str = "gd", beta: float = 0.0) -> float:
    """Stability threshold of the (preconditioned) sharpness: ``2/η`` (GD, RMSProp), ``2(1+β)/η``
    (heavy ball)."""
    lr = check_positive("lr", _real("lr", lr))
    check_choice("optimizer", optimizer, OPTIMIZERS)
    return 2.0 * (1.0 + beta) / lr if optimizer == "heavy_ball" else 2.0 / lr


# ------------------------------------------------------------------------------------------------
# the complementarity problem
# ------------------------------------------------------------------------------------------------
def _psd_project(X: np.ndarray) -> np.ndarray:
    s, V = np.linalg.eigh(0.5 * (X + X.T))
    return (V * np.clip(s, 0.0, None)) @ V.T


def _kkt_residual(A: np.ndarray, B: np.ndarray, X: np.ndarray) -> float:
    """max(−λ_min(X), −λ_min(Y), |⟨X, Y⟩|) with ``Y = A + B[X]``, relative to ‖A‖ + ‖B‖‖X‖."""
    k = A.shape[0]
    Y = A + (B @ X.reshape(-1)).reshape(k, k)
    Y = 0.5 * (Y + Y.T)
    scale = np.linalg.norm(A) + np.linalg.norm(B) * np.linalg.norm(X) + 1e-300
    viol = max(-np.linalg.eigvalsh(X)[0], -np.linalg.eigvalsh(Y)[0], 0.0)
    comp = abs(float(np.sum(X * Y))) / max(np.linalg.norm(X), 1e-300)
    return float(max(viol, comp) / scale)


def _polish_on_face(A: np.ndarray, B: np.ndarray, V: np.ndarray) -> np.ndarray | None:
    """Minimize ``⟨A, X⟩ + ½⟨X, B[X]⟩`` over ``X = V S Vᵀ`` (S symmetric, unconstrained)."""
    k, r = V.shape
    if r == 0:
        return np.zeros((k, k))
    # basis of symmetric r×r matrices E_pq, mapped to k×k: V E_pq Vᵀ
    pairs = [(p, q) for p in range(r) for q in range(p, r)]
    basis = []
    for p, q in pairs:
        E = np.zeros((r, r))
        E[p, q] = E[q, p] = 1.0
        basis.append((V @ E @ V.T).reshape(-1))
    F = np.array(basis).T  # (k², m)
    Q = F.T @ B @ F
    Q = 0.5 * (Q + Q.T)
    c = F.T @ A.reshape(-1)
    s, *_ = np.linalg.lstsq(Q, -c, rcond=1e-12)
    X = (F @ s).reshape(k, k)
    return 0.5 * (X + X.T)


def solve_edge_complementarity(
    A: np.ndarray, B: np.ndarray, *, tol: float = 1e-10, max_iter: int = 20_000,
    guess_rank_basis: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Solve ``X ⪰ 0, Y = A + B[X] ⪰ 0, ⟨X, Y⟩ = 0`` for symmetric ``k×k`` ``X``.

    This is the semidefinite complementarity problem of the central flow (module docstring); for
    a symmetric positive semidefinite ``B`` it is the optimality condition of the convex program
    ``min_{X⪰0} ⟨A, X⟩ + ½⟨X, B[X]⟩``. Solved exactly in three stages: ``X = 0`` if ``A ⪰ 0``; a
    closed form for ``k = 1`` (``X = max(0, −A/B)``); otherwise accelerated projected gradient
    (FISTA with eigenvalue clipping onto the PSD cone) followed by an exact solve on the face the
    iterate identifies (the range of ``X``), kept when it satisfies the conditions to ``tol``.

    Parameters
    ----------
    A : array (k, k), symmetric
    B : array (k², k²)
        The linear map ``vec(X) ↦ vec(B[X])`` (row-major vec); symmetrized before use.
    tol : float
        Relative residual accepted (see :func:`_kkt_residual`).
    guess_rank_basis : array (k, r), optional
        Orthonormal basis of a guessed range of X (the previous substep's), tried first.

    Returns
    -------
    X : array (k, k)
    residual : float
        Relative violation of the complementarity conditions.
    """
    A = as_float_array("A", A, ndim=2)
    k = A.shape[0]
    if A.shape != (k, k):
        raise ValueError(f"`A` must be square, got shape {A.shape}")
    B = as_float_array("B", B, shape=(k * k, k * k))
    A = 0.5 * (A + A.T)
    B = 0.5 * (B + B.T)
    if k == 0 or np.linalg.eigvalsh(A)[0] >= 0.0:
        return np.zeros((k, k)), 0.0
    if k == 1:
        b = float(B[0, 0])
        if b <= 0.0:
            raise FloatingPointError(
                "edge eigenvalue cannot be held at the threshold: its gradient ∇S vanishes "
                f"(B = {b:g}); the central flow is not defined here")
        X = np.array([[max(0.0, -float(A[0, 0]) / b)]])
        return X, 0.0
    if guess_rank_basis is not None and guess_rank_basis.shape[1] > 0:
        X = _polish_on_face(A, B, guess_rank_basis)
        if X is not None:
            res = _kkt_residual(A, B, X)
            if res <= tol:
                return X, res
    # FISTA on f(X) = <A,X> + ½<X,B[X]>, step 1/Lip
    lip = float(np.linalg.eigvalsh(B)[-1])
    if lip <= 0.0:
        raise FloatingPointError("the edge eigenvalues have vanishing gradients (B = 0)")
    X = np.zeros((k, k))
    Z, t = X.copy(), 1.0
    res = np.inf
    for it in range(max_iter):
        grad = A + (B @ Z.reshape(-1)).reshape(k, k)
        Xn = _psd_project(Z - grad / lip)
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Z = Xn + ((t - 1.0) / tn) * (Xn - X)
        X, t = Xn, tn
        if it % 50 == 49:
            s, V = np.linalg.eigh(X)
            keep = s > 1e-6 * max(s[-1], 1e-300)
            Xp = _polish_on_face(A, B, V[:, keep])
            if Xp is not None:
                rp = _kkt_residual(A, B, Xp)
                if rp <= tol:
                    return Xp, rp
            res = _kkt_residual(A, B, X)
            if res <= tol:
                return X, res
    return X, res


# ------------------------------------------------------------------------------------------------
# problem adapter
# ------------------------------------------------------------------------------------------------
class _Oracle:
    """Loss, gradient and Hessian products of a problem, counting evaluations."""

    def __init__(self, problem: Any, hvp: str) -> None:
        if callable(problem) and not hasattr(problem, "grad"):
            raise TypeError(
                "`problem` must be an object with grad(θ) and hvp(θ, v) (e.g. sg.CustomProblem("
                "dim, grad=..., loss=..., hvp=...)); got a bare callable")
        if not callable(getattr(problem, "grad", None)):
            raise TypeError(f"`problem` has no callable `grad`: {type(problem).__name__}")
        self.p = problem
        self.fd = hvp == "finite_difference"
        if not self.fd and not callable(getattr(problem, "hvp", None)):
            raise TypeError(
                f"`problem` ({type(problem).__name__}) has no Hessian-vector product `hvp(θ, v)`; "
                "give one (exact), or pass hvp='finite_difference' to difference the gradient")
        self.has_loss = callable(getattr(problem, "loss", None))
        self.n_hvp = 0
        self.n_grad = 0

    def grad(self, w: np.ndarray) -> np.ndarray:
        self.n_grad += 1
        return np.asarray(self.p.grad(w), dtype=np.float64).reshape(w.shape)

    def loss(self, w: np.ndarray) -> float:
        return float(self.p.loss(w)) if self.has_loss else np.nan

    def matmat(self, w: np.ndarray, V: np.ndarray) -> np.ndarray:
        p = V.shape[1]
        self.n_hvp += p
        if self.fd:
            h = 1e-5 * max(1.0, float(np.linalg.norm(w)) / np.sqrt(w.size))
            out = np.empty_like(V)
            for j in range(p):
                out[:, j] = (np.asarray(self.p.grad(w + h * V[:, j]))
                             - np.asarray(self.p.grad(w - h * V[:, j]))) / (2 * h)
            self.n_grad += 2 * p
            return out
        mm = getattr(self.p, "hvp_matmat", None)
        if mm is not None:
            return np.asarray(mm(w, V), dtype=np.float64)
        return np.stack([np.asarray(self.p.hvp(w, V[:, j]), dtype=np.float64)
                         for j in range(p)], axis=1)


# ------------------------------------------------------------------------------------------------
# result
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CentralFlowResult:
    """Central-flow prediction recorded at ``steps``.

    Attributes
    ----------
    steps : ndarray (n,)
        Record times in GD steps (t = η·steps in gradient-flow time for GD).
    params : ndarray (n, d)
        The central flow w(t): GD's predicted time-averaged iterate.
    loss : ndarray (n,)
        Predicted time-averaged loss ``L(w) + ½⟨Σ, H(w)⟩`` (the paper's loss prediction).
    loss_center : ndarray (n,)
        ``L(w)`` at the central flow itself.
    sharpness : ndarray (n,)
        λ_max(H(w)) (GD, heavy ball) or the preconditioned sharpness λ_max(diag(√ν+ε)⁻¹H)
        (RMSProp); the edge is ``threshold``.
    eigenvalues : ndarray (n, k_max)
        Tracked top eigenvalues (NaN where fewer were tracked), same normalization as
        ``sharpness``.
    variances : ndarray (n, k_max)
        Predicted oscillation variance ``u_iᵀ Σ u_i`` along each tracked eigenvector (zero off
        the edge); units of θ².
    n_edge : ndarray (n,) of int
        Eigenvalues at the edge (rank of Σ).
    threshold : float
    nu : ndarray (n, d) or None
        RMSProp's ν along the flow.
    n_hvp, n_grad : int
        Hessian-vector products (including those of the finite differences for ∇³L) and
        gradients used.
    max_residual : float
        Largest relative complementarity residual of the Σ solves.
    seconds : float
        Wall time.
    edge_basis, edge_cov : list of ndarray
        Per record, ``V (d, m)`` and ``X (m, m)`` with the predicted oscillation covariance
        ``Σ = V X Vᵀ`` (θ-space; ``m`` the eigenvalues in the edge window). Basis-free where the
        edge eigenvalues are degenerate (then ``variances`` depends on which eigenbasis Lanczos
        returned, Σ does not).
    """

    steps: np.ndarray
    params: np.ndarray
    loss: np.ndarray
    loss_center: np.ndarray
    sharpness: np.ndarray
    eigenvalues: np.ndarray
    variances: np.ndarray
    n_edge: np.ndarray
    threshold: float
    nu: np.ndarray | None
    n_hvp: int
    n_grad: int
    max_residual: float
    seconds: float
    edge_basis: list = field(default_factory=list, repr=False)
    edge_cov: list = field(default_factory=list, repr=False)


# ------------------------------------------------------------------------------------------------
# the flow
# ------------------------------------------------------------------------------------------------
def central_flow(
    problem: Any,
    lr: float,
    theta0: np.ndarray,
    steps: np.ndarray,
    *,
    optimizer: str = "gd",
    beta: float = 0.0,
    beta2: float = 0.99,
    eps: float = 0.0,
    nu0: np.ndarray | None = None,
    substeps: int = 4,
    n_eigs: int = 1,
    max_edge: int = 6,
    edge_window: float = 0.02,
    start_tolerance: float = 0.01,
    fd_step: float = 1e-4,
    lanczos_tol: float = 1e-6,
    hvp: str = "exact",
    eig_refresh: int | None = None,
    max_skip: int = 40,
    seed: int = 0,
    callback: Callable[[int, np.ndarray], None] | None = None,
) -> CentralFlowResult:
    """Integrate the central flow of GD / RMSProp / heavy ball from ``theta0``.

    Parameters
    ----------
    problem
        Any object with ``grad(θ) -> (d,)`` and ``hvp(θ, v) -> (d,)`` (optionally
        ``hvp_matmat(θ, V (d, p)) -> (d, p)`` and ``loss(θ)``): :class:`sgdsim.CustomProblem`
        with an ``hvp``, :class:`sgdsim.Quadratic`, ``sgdsim.nets.MLPProblem``. Without an
        ``hvp`` pass ``hvp='finite_difference'`` (central differences of the gradient; the third
        derivative is then a difference of differences, good to ~1e-6 relative in float64).
    lr : float
        Learning rate η > 0.
    theta0 : array (d,)
        Start; its sharpness must not exceed the threshold by more than ``start_tolerance``
        (relative): a start far past the edge makes GD diverge or catapult, which no central flow
        describes.
    steps : array (n,)
        Non-decreasing GD step counts ≥ 0 at which to record (floats are rounded to the substep
        grid ``1/substeps``).
    optimizer : {'gd', 'rmsprop', 'heavy_ball'}
        See the module docstring for which flows are from the paper.
    beta : float
        Heavy-ball momentum β ∈ [0, 1).
    beta2, eps, nu0
        RMSProp's EMA factor β₂ ∈ (0, 1), ε ≥ 0, and the ν used in the first step (default
        ``∇L(θ₀)²``).
    substeps : int
        Euler substeps per GD step (dt = 1/substeps); 4 keeps dt·ηλ ≤ 0.5 at the edge.
    n_eigs : int
        Minimum number of top eigenpairs tracked; one more than the edge set is always tracked,
        so a new eigenvalue that approaches the edge is caught.
    max_edge : int
        Largest edge set allowed (a RuntimeError beyond).
    edge_window : float
        Eigenvalues within this relative distance below the threshold enter the complementarity
        problem (they get zero variance until the constraint binds).
    fd_step : float
        Step of the central difference ``∇³L[u, v] ≈ (H(w+εu)v − H(w−εu)v)/2ε`` (relative to
        the RMS entry of θ, at least ε); truncation error ∝ ε².
    lanczos_tol : float
        Relative residual tolerance of the eigenpairs (warm-started from the previous substep).
    hvp : {'exact', 'finite_difference'}
    eig_refresh : int, optional
        At the edge, substeps between full eigen-solves (Lanczos plus the ∇³L differences);
        in between, the edge eigenvalues are the Rayleigh quotients of the frozen eigenvectors
        (one HVP each), exact to second order in their drift. Default ``substeps`` (once per
        GD step).
    max_skip : int
        Off the edge, the eigen-solve is skipped while the sharpness, extrapolated at its last
        measured rate with a factor-2 margin, cannot reach the edge window; at most this many
        substeps between solves.
    seed : int
        Seed of Lanczos start vectors.
    callback : callable(substep, w), optional

    Returns
    -------
    CentralFlowResult
    """
    with _serial_blas():  # k×k and Lanczos-basis linear algebra: threads only add hand-off cost
        return _central_flow(**locals())


def _central_flow(problem, lr, theta0, steps, *, optimizer, beta, beta2, eps, nu0, substeps,
                  n_eigs, max_edge, edge_window, start_tolerance, fd_step, lanczos_tol, hvp,
                  eig_refresh, max_skip, seed, callback) -> CentralFlowResult:
    t0 = time.perf_counter()
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = check_positive("lr", _real("lr", lr))
    beta = float(_real("beta", beta))
    if not (0.0 <= beta < 1.0):
        raise ValueError(f"`beta` must lie in [0, 1), got {beta!r}")
    if optimizer != "heavy_ball" and beta != 0.0:
        raise ValueError(f"`beta`={beta} only applies to optimizer='heavy_ball'")
    beta2 = float(_real("beta2", beta2))
    if not (0.0 < beta2 < 1.0):
        raise ValueError(f"`beta2` must lie in (0, 1), got {beta2!r}")
    eps = check_positive("eps", _real("eps", eps), allow_zero=True)
    hvp = check_choice("hvp", hvp, ("exact", "finite_difference"))
    substeps = check_int("substeps", substeps, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    n_eigs = check_int("n_eigs", n_eigs, minimum=1)
    max_edge = check_int("max_edge", max_edge, minimum=1)
    edge_window = check_positive("edge_window", _real("edge_window", edge_window), allow_zero=True)
    start_tolerance = check_positive("start_tolerance", _real("start_tolerance", start_tolerance),
                                     allow_zero=True)
    fd_step = check_positive("fd_step", _real("fd_step", fd_step))
    if eig_refresh is not None:
        eig_refresh = check_int("eig_refresh", eig_refresh, minimum=1)
    max_skip = check_int("max_skip", max_skip, minimum=1)
    lanczos_tol = check_positive("lanczos_tol", _real("lanczos_tol", lanczos_tol))
    w = as_float_array("theta0", theta0, ndim=1).copy()
    rec = as_float_array("steps", steps, ndim=1)
    if rec.size == 0 or rec[0] < 0 or np.any(np.diff(rec) < 0):
        raise ValueError("`steps` must be a non-empty, non-decreasing array of step counts >= 0")
    if not np.all(np.isfinite(w)):
        raise ValueError("`theta0` must be finite")
    oracle = _Oracle(problem, hvp)
    d = w.size
    if hasattr(problem, "dim") and int(problem.dim) != d:
        raise ValueError(f"`theta0` has {d} entries, the problem has dim={problem.dim}")

    tau = edge_threshold(lr, optimizer, beta)
    eta_eff = lr / (1.0 - beta) if optimizer == "heavy_ball" else lr
    rms = optimizer == "rmsprop"
    c_nu = (1.0 - beta2) / beta2
    if rms:
        g0 = oracle.grad(w)
        nu = g0 * g0 if nu0 is None else as_float_array("nu0", nu0, shape=(d,)).copy()
        if np.any(nu < 0):
            raise ValueError("`nu0` must be >= 0")
        if np.any(np.sqrt(nu) + eps <= 0):
            raise ValueError("RMSProp needs √ν + ε > 0 in every coordinate: give eps > 0 or a "
                             "positive nu0 (the start has zero gradient entries)")
    else:
        nu = None
    dt = 1.0 / substeps
    fd_h = fd_step * max(1.0, float(np.sqrt(np.mean(w * w))))

    k_track = n_eigs
    U_prev: np.ndarray | None = None
    face: np.ndarray | None = None  # range of X in the previous substep (in candidate coords)
    thr = 2.0 if rms else tau
    eig_refresh = substeps if eig_refresh is None else eig_refresh
    since_full, refresh_now, last_full = 0, 1, None
    lam = np.empty(0)
    nc, Uc, T = 0, None, None

    n_rec = rec.size
    K = max_edge + 1
    out_w = np.empty((n_rec, d))
    out_loss = np.empty(n_rec)
    out_lc = np.empty(n_rec)
    out_s = np.empty(n_rec)
    out_eig = np.full((n_rec, K), np.nan)
    out_var = np.full((n_rec, K), np.nan)
    out_ne = np.zeros(n_rec, dtype=int)
    out_nu = np.empty((n_rec, d)) if rms else None
    out_basis: list = []
    out_cov: list = []
    max_res = 0.0
    n_sub = 0
    first = True
    # the record for step s is the state after round(s·substeps) substeps
    targets = np.rint(rec * substeps).astype(np.int64)
    j = 0
    while j < n_rec:
        # ---- state at the current substep -------------------------------------------------------
        g = oracle.grad(w)
        pdiag = pis = None
        if rms:
            pdiag = (np.sqrt(nu) + eps) / lr  # P = diag(√ν+ε)/η
            pis = 1.0 / np.sqrt(pdiag)  # P^{-1/2}
        full = U_prev is None or since_full >= refresh_now
        if full:
            # top-k eigenpairs of H (GD) or of P^{-1/2} H P^{-1/2} (RMSProp), warm-started
            while True:
                kk = min(k_track, d)

                def mv(V, w=w, pis=pis):
                    V = V if V.ndim == 2 else V[:, None]
                    if rms:
                        return pis[:, None] * oracle.matmat(w, pis[:, None] * V)
                    return oracle.matmat(w, V)

                def op(v, mv=mv):
                    return mv(v)[:, 0]

                op.matmat, op.dim = mv, d
                if d <= _DENSE_MAX:  # small problems: the dense Hessian costs d products
                    Hd = mv(np.eye(d))
                    ev, EV = np.linalg.eigh(0.5 * (Hd + Hd.T))
                    lam, Vec = ev[::-1][:kk].copy(), EV[:, ::-1][:, :kk]
                else:
                    v0 = U_prev if U_prev is not None and U_prev.shape[1] > 0 else None
                    res = lanczos_eigsh(op, kk, tol=lanczos_tol, v0=v0, block_size=kk,
                                        seed=seed + n_sub)
                    lam, Vec = res.eigenvalues.copy(), res.eigenvectors
                # GD: eigenvalues of H (edge τ); RMSProp: of P⁻¹H (edge 2)
                cand = lam >= thr * (1.0 - edge_window)
                if first and lam[0] > thr * (1.0 + start_tolerance):
                    s_now = lam[0] / lr if rms else lam[0]
                    raise ValueError(
                        f"`theta0` is already past the edge: sharpness {s_now:.6g} > threshold "
                        f"{tau:.6g} by more than start_tolerance={start_tolerance}; GD from here "
                        "diverges or catapults, which the central flow does not describe")
                if kk < d and cand[-1]:
                    if kk >= max_edge + 1:
                        raise RuntimeError(f"more than max_edge={max_edge} eigenvalues at the edge")
                    k_track = kk + 1
                    U_prev = Vec
                    continue
                break
            first = False
            U_prev = Vec
            nc = int(np.count_nonzero(cand))
            Uc = (pis[:, None] * Vec[:, :nc]) if rms else Vec[:, :nc]  # HUc = PUc diag(λ) (RMS)
            T = None
            if nc > 0:
                # T_ab = ∇³L[u_a, u_b] by central differences of H along u_a
                T = np.empty((nc, nc, d))
                for a in range(nc):
                    hp = oracle.matmat(w + fd_h * Uc[:, a], Uc)
                    hm = oracle.matmat(w - fd_h * Uc[:, a], Uc)
                    T[a] = ((hp - hm) / (2.0 * fd_h)).T
                T = 0.5 * (T + T.transpose(1, 0, 2))
                refresh_now = eig_refresh
            else:
                # nothing at the edge: skip eigen-solves while λ_max cannot reach the window
                gap = thr * (1.0 - edge_window) - lam[0]
                rate = (lam[0] - last_full[0]) / max(n_sub - last_full[1], 1) if last_full else 0.0
                refresh_now = max_skip if rate <= 0 else int(np.clip(0.5 * gap / rate, 1, max_skip))
            last_full = (lam[0], n_sub)
            since_full = 0
        else:
            # between eigen-solves: current eigenvalues of the frozen edge vectors (Rayleigh)
            if nc > 0:
                HUc = oracle.matmat(w, Uc)
                num = np.einsum("ia,ia->a", Uc, HUc)
                den = np.einsum("ia,ia->a", Uc, pdiag[:, None] * Uc) if rms else 1.0
                lam[:nc] = num / den
        since_full += 1
        X = np.zeros((nc, nc))
        if nc > 0:
            Tf = T.reshape(nc * nc, d)
            if rms:
                pinv = 1.0 / pdiag
                A = np.diag(2.0 - lam[:nc]) + dt * (Tf @ (pinv * g)).reshape(nc, nc)
                # ν part of the constraint: −2 Ucᵀ diag(Ṗ) Uc with Ṗ = ν̇ /(2η√ν)
                sq = np.maximum(np.sqrt(nu), 1e-300)
                pdot = c_nu * (g * g - nu) / (2.0 * lr * sq)
                A = A + 2.0 * dt * (Uc.T * pdot) @ Uc
                Bm = 0.5 * dt * (Tf * pinv) @ Tf.T
                # ν̇ from X: c_ν diag(HΣH), HΣH = P Uc Λ X Λ Ucᵀ P
                PUm = (pdiag[:, None] * Uc) * lam[None, :nc]
                quad = np.einsum("ia,ib->iab", PUm, PUm).reshape(d, nc * nc)
                lhs = np.einsum("ia,ib->iab", Uc, Uc).reshape(d, nc * nc)
                Bm = Bm + dt * (lhs * (c_nu / (lr * sq))[:, None]).T @ quad
                A = 0.5 * (A + A.T)
            else:
                A = np.diag(tau - lam[:nc]) + dt * eta_eff * (Tf @ g).reshape(nc, nc)
                Bm = 0.5 * dt * eta_eff * (Tf @ Tf.T)
            guess = face if face is not None and face.shape[0] == nc else None
            X, r = solve_edge_complementarity(A, Bm, guess_rank_basis=guess)
            max_res = max(max_res, r)
            s_, V_ = np.linalg.eigh(X)
            face = V_[:, s_ > 1e-9 * max(float(s_[-1]), 1e-300)]
        else:
            face = None
        # ---- record -------------------------------------------------------------------------------
        while j < n_rec and targets[j] == n_sub:
            lc = oracle.loss(w)
            corr = 0.0
            if nc:
                # ½⟨Σ, H⟩ with Σ = Uc X Ucᵀ: Ucᵀ H Uc = diag(λ) (GD) or diag(μ) (RMS, Ucᵀ P Uc = I)
                corr = 0.5 * float(np.sum(np.diag(X) * lam[:nc]))
            out_w[j] = w
            out_lc[j] = lc
            out_loss[j] = lc + corr
            out_s[j] = lam[0] / lr if rms else lam[0]
            m = min(lam.size, K)
            out_eig[j, :m] = (lam[:m] / lr) if rms else lam[:m]
            out_var[j, :m] = 0.0
            if nc:
                # variance along the unit eigenvector û_i = Uc_i/‖Uc_i‖: ûᵀ Σ û
                for i in range(min(nc, K)):
                    y = Uc.T @ (Uc[:, i] / np.linalg.norm(Uc[:, i]))
                    out_var[j, i] = float(y @ X @ y)
                out_ne[j] = int(np.sum(np.linalg.eigvalsh(X) > 1e-12 * max(1.0, np.abs(X).max())))
            if rms:
                out_nu[j] = nu
            out_basis.append(Uc.copy() if nc else np.zeros((d, 0)))
            out_cov.append(X.copy())
            j += 1
        if j >= n_rec:
            break

        # ---- Euler step -------------------------------------------------------------------------
        avg_g = g.copy()
        if nc:
            avg_g += 0.5 * np.einsum("ab,abd->d", X, T)
        if rms:
            nudot = c_nu * (g * g - nu)
            if nc:
                HU = (pdiag[:, None] * Uc) * lam[None, :nc]
                nudot += c_nu * np.einsum("ia,ab,ib->i", HU, X, HU)
            w = w - dt * avg_g / pdiag
            nu = np.maximum(nu + dt * nudot, 0.0)
        else:
            w = w - dt * eta_eff * avg_g
        n_sub += 1
        if callback is not None:
            callback(n_sub, w)
        if not np.all(np.isfinite(w)):
            raise FloatingPointError(f"central flow became non-finite at step {n_sub * dt:g}")

    return CentralFlowResult(
        steps=rec, params=out_w, loss=out_loss, loss_center=out_lc, sharpness=out_s,
        eigenvalues=out_eig, variances=out_var, n_edge=out_ne, threshold=tau, nu=out_nu,
        n_hvp=oracle.n_hvp, n_grad=oracle.n_grad, max_residual=max_res,
        seconds=time.perf_counter() - t0, edge_basis=out_basis, edge_cov=out_cov,
    )
