"""Exact moments of (momentum) SGD on a quadratic with additive Gaussian gradient noise.

Problem: ``L(θ) = ½(θ − θ*)ᵀH(θ − θ*)``, weight decay λ_wd, minibatch gradient
``g = H(θ − θ*) + λ_wd θ + ξ`` with ``ξ ~ N(0, C/B)`` i.i.d. per step. With ``H_a = H + λ_wd I``
and the regularized minimum ``θ_λ = H_a⁺ H θ*``, the deviation ``x = θ − θ_λ`` and the buffer
form the stacked state ``z = (x, buf) ∈ R^{2d}`` of the PyTorch recursion (see
:mod:`sgdsim.theory.stability`)::

    z_{k+1} = A z_k + P ξ_k,   A = [[I + p₀H_a, A₀₁I], [p₁H_a, A₁₁I]],   P = [p₀I; p₁I]

(the scalars come from :func:`~sgdsim.theory.stability.step_matrices` at curvature 1). The
stationary covariance solves the discrete Lyapunov (Stein) equation ``Z = A Z Aᵀ + P(C/B)Pᵀ``.
Two solvers: ``"dense"`` (``scipy.linalg.solve_discrete_lyapunov`` on the 2d×2d system, any H
and C) and ``"eigen"`` (in H's eigenbasis A is block diagonal with 2×2 blocks A_i, so the block
``Z_ij = E[z_i z_jᵀ]`` solves the 4×4 system ``(I − A_i⊗A_j) vec Z_ij = C̃_ij vec(p_i p_jᵀ)``,
``C̃ = QᵀCQ/B``; only the diagonal blocks are needed for traces, losses and MSDs).
PyTorch's first step (``buf₁ = g``) is honoured in the transients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from sgdsim._validation import (
    as_float_array,
    check_choice,
    check_in_range,
    check_int,
    check_positive,
    check_psd,
    check_symmetric,
)
from sgdsim.theory.stability import step_matrices

__all__ = ["NoisyQuadraticMoments"]


@dataclass(frozen=True)
class NoisyQuadraticMoments:
    """Exact first and second moments of PyTorch-style SGD on a noisy quadratic.

    Parameters
    ----------
    hessian : ndarray, shape ``(d, d)`` or ``(d,)``
        H, or its eigenvalues (H diagonal in the standard basis). Per-mode results follow
        :attr:`eigenvalues`: descending (sharpest first, as :class:`sgdsim.Quadratic`) for a
        matrix, the given order for a vector.
    noise_cov : ndarray, shape ``(d, d)`` or ``(d,)``
        Per-sample gradient-noise covariance C (a vector means diagonal); a minibatch of size B
        gets ``C/B``.
    lr : float
        η > 0.
    momentum, dampening : float
        β, τ in [0, 1).
    nesterov : bool
    weight_decay : float
        λ_wd ≥ 0 (added to the gradient as ``λ_wd θ``).
    batch_size : int
        B ≥ 1.
    minimum : ndarray, shape ``(d,)``, optional
        θ* (default 0).
    """

    hessian: np.ndarray
    noise_cov: np.ndarray
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    batch_size: int = 1
    minimum: np.ndarray | None = None
    # derived
    eigenvalues: np.ndarray = field(init=False, repr=False)
    eigenvectors: np.ndarray = field(init=False, repr=False)
    curvature: np.ndarray = field(init=False, repr=False)
    noise_eig: np.ndarray = field(init=False, repr=False)
    theta_reg: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        H = as_float_array("hessian", self.hessian)
        if H.ndim == 1:
            d = H.size
            lam, Q = H.copy(), np.eye(d)
            H = np.diag(H)
        elif H.ndim == 2:
            H = check_symmetric("hessian", H)
            d = H.shape[0]
            lam, Q = np.linalg.eigh(H)
            lam, Q = lam[::-1].copy(), Q[:, ::-1].copy()  # sharpest first, as sgdsim.Quadratic
        else:
            raise ValueError(f"`hessian` must be (d, d) or (d,), got shape {H.shape}")
        C = as_float_array("noise_cov", self.noise_cov)
        if C.shape == (d,):
            if np.any(C < 0):
                raise ValueError("`noise_cov` (diagonal) must be >= 0")
            C = np.diag(C)
        elif C.shape == (d, d):
            C = check_psd("noise_cov", C)
        else:
            raise ValueError(f"`noise_cov` must have shape ({d},) or ({d}, {d}), got {C.shape}")
        check_positive("lr", self.lr)
        check_in_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_in_range("dampening", self.dampening, 0.0, 1.0, high_open=True)
        wd = check_positive("weight_decay", self.weight_decay, allow_zero=True)
        B = check_int("batch_size", self.batch_size, minimum=1)
        tstar = np.zeros(d) if self.minimum is None else as_float_array(
            "minimum", self.minimum, shape=(d,)
        )
        a = lam + wd
        if np.any(a < 0):
            raise ValueError(f"curvature λ + weight_decay must be >= 0, smallest is {a.min():.3g}")
        ts = Q.T @ tstar
        reg = np.where(a > 0, lam * ts / np.where(a > 0, a, 1.0), ts)
        for name, val in [
            ("hessian", H), ("noise_cov", C), ("batch_size", B), ("eigenvalues", lam),
            ("eigenvectors", Q), ("curvature", a), ("noise_eig", Q.T @ C @ Q / B),
            ("theta_reg", Q @ reg), ("minimum", tstar),
        ]:
            object.__setattr__(self, name, val)

    @classmethod
    def from_problem(cls, problem, optimizer, batch_size: int = 1) -> NoisyQuadraticMoments:
        """Build from an ``sgdsim.Quadratic`` and an ``sgdsim.sgd(...)`` optimizer.

        Uses the problem's dense Hessian, minimum and per-sample noise covariance in the original
        coordinates (``LabelNoise`` gives ``σ²H``, no noise gives zeros). The learning rate must
        be constant and the optimizer must not be nudged (the theory here is time-homogeneous).
        """
        lr = optimizer.lr
        if getattr(lr, "description", "constant").split("(")[0] != "constant":
            raise ValueError(f"`optimizer` needs a constant learning rate, got schedule {lr!r}")
        if getattr(optimizer, "nudge_top_k", 0):
            raise ValueError("`optimizer` is nudged SGD; use stability.nsgd_* for its thresholds")
        return cls(
            hessian=problem.hessian_matrix(),
            noise_cov=problem.noise_covariance(1),
            lr=float(lr(0)),
            momentum=optimizer.momentum,
            dampening=optimizer.dampening,
            nesterov=optimizer.nesterov,
            weight_decay=optimizer.weight_decay,
            batch_size=batch_size,
            minimum=np.asarray(problem.minimum),
        )

    # ------------------------------------------------------------------ structure
    @property
    def dim(self) -> int:
        return self.eigenvalues.size

    def _kw(self) -> dict:
        return {"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov}

    def mode_matrices(self, *, first_step: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-mode ``A_i`` (d, 2, 2) and ``p_i`` (d, 2) in H's eigenbasis."""
        return step_matrices(self.curvature, self.lr, first_step=first_step, **self._kw())

    def state_matrices(self, *, first_step: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Stacked ``A`` (2d, 2d) and ``P`` (2d, d) in the original coordinates."""
        a_s, p_s = step_matrices(1.0, self.lr, first_step=first_step, **self._kw())
        d = self.dim
        I = np.eye(d)
        Ha = self.hessian + self.weight_decay * I
        A = np.block([[I + p_s[0] * Ha, a_s[0, 1] * I], [p_s[1] * Ha, a_s[1, 1] * I]])
        return A, np.vstack([p_s[0] * I, p_s[1] * I])

    def is_stable(self) -> bool:
        """Spectral radius of every mode's A_i < 1 (then the stationary moments exist)."""
        A, _ = self.mode_matrices()
        return bool(np.all(np.max(np.abs(np.linalg.eigvals(A)), axis=-1) < 1.0))

    def _require_stable(self) -> None:
        if not self.is_stable():
            raise ValueError(
                f"lr={self.lr} (momentum={self.momentum}) is unstable on this quadratic: no "
                "stationary distribution (see sgdsim.theory.stability.max_stable_lr)"
            )

    # ------------------------------------------------------------------ stationary
    def mode_stationary(self) -> np.ndarray:
        """Stationary per-mode 2×2 covariances ``Z_ii`` of ``(x̃_i, buf̃_i)``, shape ``(d, 2, 2)``.

        Only needs ``C̃_ii``; each solves the 4×4 Stein system (batched). A mode with zero
        curvature (marginal) has no stationary variance: raises.
        """
        self._require_stable()
        A, p = self.mode_matrices()
        K = np.einsum("iab,icd->iacbd", A, A).reshape(-1, 4, 4)
        rhs = (np.diag(self.noise_eig)[:, None, None] * np.einsum("ia,ib->iab", p, p)).reshape(
            -1, 4
        )
        Z = np.linalg.solve(np.eye(4) - K, rhs[..., None])[..., 0].reshape(-1, 2, 2)
        return 0.5 * (Z + np.swapaxes(Z, 1, 2))

    def stationary_state_cov(self, *, method: str = "eigen") -> np.ndarray:
        """Stationary covariance of the stacked state ``(θ, buf)``, shape ``(2d, 2d)``.

        ``method="dense"``: ``scipy.linalg.solve_discrete_lyapunov`` in the original coordinates
        (any H, C). ``"eigen"``: pairwise 4×4 solves in H's eigenbasis, then rotated back
        (memory ``16 d²`` floats).
        """
        check_choice("method", method, ("eigen", "dense"))
        self._require_stable()
        d = self.dim
        if method == "dense":
            A, P = self.state_matrices()
            Z = scipy.linalg.solve_discrete_lyapunov(A, P @ (self.minibatch_noise_cov()) @ P.T)
            return 0.5 * (Z + Z.T)
        A, p = self.mode_matrices()
        K = np.einsum("iab,jcd->ijacbd", A, A).reshape(d, d, 4, 4)
        rhs = self.noise_eig[:, :, None, None] * np.einsum("ia,jb->ijab", p, p)
        Zb = np.linalg.solve(np.eye(4) - K, rhs.reshape(d, d, 4, 1))[..., 0].reshape(d, d, 2, 2)
        Q = self.eigenvectors
        R = np.zeros((2 * d, 2 * d))
        R[:d, :d], R[d:, d:] = Q, Q
        Zt = np.empty((2 * d, 2 * d))
        for u in range(2):
            for v in range(2):
                Zt[u * d : (u + 1) * d, v * d : (v + 1) * d] = Zb[:, :, u, v]
        Z = R @ Zt @ R.T
        return 0.5 * (Z + Z.T)

    def minibatch_noise_cov(self) -> np.ndarray:
        """Minibatch noise covariance ``C/B`` in the original coordinates, shape ``(d, d)``."""
        return self.noise_cov / self.batch_size

    def stationary_cov(self, *, method: str = "eigen") -> np.ndarray:
        """Stationary covariance of θ, shape ``(d, d)`` (mean: the regularized minimum θ_λ)."""
        return self.stationary_state_cov(method=method)[: self.dim, : self.dim]

    def stationary_mode_variance(self) -> np.ndarray:
        """Stationary ``Var(θ̃_i)`` per eigenmode, shape ``(d,)``."""
        return self.mode_stationary()[:, 0, 0]

    def stationary_loss(self) -> float:
        """Stationary ``E[L(θ)]`` (no weight-decay term): ``½tr(HΣ) + ½(θ_λ−θ*)ᵀH(θ_λ−θ*)``."""
        off = self.theta_reg - self.minimum
        var = self.stationary_mode_variance()
        return 0.5 * float(self.eigenvalues @ var) + 0.5 * float(off @ self.hessian @ off)

    def stationary_step2(self) -> float:
        """Stationary ``E‖θ_{k+1} − θ_k‖²`` (exact).

        Per mode ``Δθ = (A₀₀ − 1)θ + A₀₁ buf + p₀ ξ``, so ``E Δθ² = uᵀZ_ii u + p₀² C̃_ii``.
        """
        Z = self.mode_stationary()
        A, p = self.mode_matrices()
        u = A[:, 0, :].copy()
        u[:, 0] -= 1.0
        return float(np.sum(np.einsum("ia,iab,ib->i", u, Z, u) + p[:, 0] ** 2 * np.diag(
            self.noise_eig
        )))

    # ------------------------------------------------------------------ time dependence
    def msd(self, steps: np.ndarray, theta0: np.ndarray | None = None) -> np.ndarray:
        """``E‖θ_k − θ_0‖²`` at the given steps k ≥ 0, shape like ``steps``.

        ``theta0=None``: from a stationary start, ``Σ_i 2(Z_ii − A_i^k Z_ii)_{θθ}``.
        ``theta0`` (d,): from that fixed point with ``buf_0 = 0`` (PyTorch first step):
        ``(μ_k − x_0)² + Var_k`` per mode, ``μ_k = A^{k−1}A₁μ₀`` and
        ``Var_k = [Z∞ − A^{k−1}(Z∞ − Z₁)A^{k−1}ᵀ]_{θθ}``, ``Z₁ = C̃_ii p₁p₁ᵀ`` (first-step p).
        """
        ks = np.asarray(steps)
        if not np.issubdtype(ks.dtype, np.integer) or np.any(ks < 0):
            raise ValueError("`steps` must be non-negative integers")
        Z = self.mode_stationary()
        A, _ = self.mode_matrices()
        out = np.empty(ks.shape)
        if theta0 is None:
            for idx, k in np.ndenumerate(ks):
                Ak = np.linalg.matrix_power(A, int(k))
                out[idx] = 2.0 * np.sum(Z[:, 0, 0] - (Ak @ Z)[:, 0, 0])
            return out
        th0 = as_float_array("theta0", theta0, shape=(self.dim,))
        x0 = self.eigenvectors.T @ (th0 - self.theta_reg)
        A1, p1 = self.mode_matrices(first_step=True)
        c = np.diag(self.noise_eig)
        mu1 = A1[:, :, 0] * x0[:, None]
        Z1 = c[:, None, None] * np.einsum("ia,ib->iab", p1, p1)
        for idx, k in np.ndenumerate(ks):
            if k == 0:
                out[idx] = 0.0
                continue
            Ak = np.linalg.matrix_power(A, int(k) - 1)
            mu = np.einsum("iab,ib->ia", Ak, mu1)[:, 0]
            D = Z - Z1
            var = Z[:, 0, 0] - (Ak @ D @ np.swapaxes(Ak, 1, 2))[:, 0, 0]
            out[idx] = float(np.sum((mu - x0) ** 2 + var))
        return out

    def transient(
        self, steps: int, theta0: np.ndarray, *, buf0: np.ndarray | None = None, every: int = 1
    ) -> dict[str, np.ndarray]:
        """Iterate the exact per-mode mean and covariance from a fixed start.

        Recursion ``μ ← Aμ``, ``Σ ← AΣAᵀ + C̃_ii ppᵀ`` per eigenmode (first step in PyTorch
        form), written out on the three entries of each symmetric 2×2 ``Σ``; it covers every
        quantity that depends on the diagonal blocks only. Cost O(d) per step.

        Returns
        -------
        dict with ``step`` (k,), ``loss`` (k,) = ``E L(θ_k)`` (no weight-decay term),
        ``param_var`` (k,) = ``tr Cov θ_k``, ``mean`` (k, d) = ``E θ_k``,
        ``velocity2`` (k,) = ``E‖buf_k‖²``.
        """
        steps = check_int("steps", steps, minimum=0)
        every = check_int("every", every, minimum=1)
        d = self.dim
        th0 = as_float_array("theta0", theta0, shape=(d,))
        b0 = np.zeros(d) if buf0 is None else as_float_array("buf0", buf0, shape=(d,))
        Q = self.eigenvectors
        m0, m1 = Q.T @ (th0 - self.theta_reg), Q.T @ b0  # per-mode means of (x̃, buf̃)
        s00, s01, s11 = np.zeros(d), np.zeros(d), np.zeros(d)  # per-mode covariance entries
        c = np.diag(self.noise_eig)
        lam = self.eigenvalues
        off = Q.T @ (self.theta_reg - self.minimum)
        mats = [self.mode_matrices(first_step=True), self.mode_matrices()]
        out = {k: [] for k in ("step", "loss", "param_var", "mean", "velocity2")}
        for k in range(steps + 1):
            if k % every == 0:
                m_th = m0 + off
                out["step"].append(k)
                out["loss"].append(0.5 * float(lam @ (s00 + m_th**2)))
                out["param_var"].append(float(np.sum(s00)))
                out["mean"].append(Q @ m0 + self.theta_reg)
                out["velocity2"].append(float(np.sum(s11 + m1**2)))
            if k < steps:
                # PyTorch's first step (buf = g) applies when the buffer starts empty
                A, p = mats[0] if (k == 0 and buf0 is None) else mats[1]
                a00, a01, a10, a11 = A[:, 0, 0], A[:, 0, 1], A[:, 1, 0], A[:, 1, 1]
                p0, p1 = p[:, 0], p[:, 1]
                m0, m1 = a00 * m0 + a01 * m1, a10 * m0 + a11 * m1
                s00, s01, s11 = (
                    a00 * a00 * s00 + 2 * a00 * a01 * s01 + a01 * a01 * s11 + c * p0 * p0,
                    a00 * a10 * s00 + (a00 * a11 + a01 * a10) * s01 + a01 * a11 * s11
                    + c * p0 * p1,
                    a10 * a10 * s00 + 2 * a10 * a11 * s01 + a11 * a11 * s11 + c * p1 * p1,
                )
        return {k: np.asarray(v) for k, v in out.items()}
