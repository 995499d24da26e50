"""Exact first and second moments of minibatch SGD (optionally momentum) on linear regression.

Loss ``L(w) = (1/2N)‖Xw − y‖²``, Hessian ``H = XᵀX/N``, least-squares solution ŵ (minimum
norm), residuals ``r = y − Xŵ`` (so ``Xᵀr = 0``). With the error ``e = w − ŵ`` the minibatch
gradient of a batch ``b`` of size B is ``g = (1/B) Σ_{n∈b} u_n``, ``u_n = x_n(x_nᵀe − r_n)``, and
``E[g | e] = He``. Its conditional covariance is ``(κ/B)·S(e)`` with the population covariance
``S(e) = (1/N) Σ_n u_n u_nᵀ − He eᵀH`` and

* ``κ = 1`` for B indices drawn i.i.d. uniformly (with replacement),
* ``κ = (N − B)/(N − 1)`` for B distinct indices (without replacement within the batch, drawn
  afresh each step): pairs of distinct draws have covariance ``−S/(N − 1)``, so
  ``Cov(g) = (1/B²)[B·S − B(B − 1)·S/(N − 1)] = (S/B)(N − B)/(N − 1)``.

Writing ``g = He + ξ`` with ``E[ξ | e] = 0``, the state ``z = e`` (plain SGD) or
``z = (e, buf)`` (momentum, PyTorch form, see :mod:`sgdsim.theory.stability`) obeys
``z' = A z + P ξ`` and the moments ``m = E z``, ``Z = E z zᵀ`` (raw second moment) obey exactly::

    m' = A m
    Z' = A Z Aᵀ + (κ/B) P [F(Z_ee) − 2 G(m_e) + R − H Z_ee H] Pᵀ

with ``F(S) = (1/N) Σ_n (x_nᵀ S x_n) x_n x_nᵀ``, ``G(m) = (1/N) Σ_n r_n (x_nᵀ m) x_n x_nᵀ`` and
``R = (1/N) Σ_n r_n² x_n x_nᵀ``. For plain SGD with replacement the fixed point is the W1 formula
``Σ = Σ − η(HΣ + ΣH) + η²[(1 − 1/B) HΣH + (1/B) F(Σ) + (1/B) R]``. The excess loss is
``E[L(w)] − L(ŵ) = ½ tr(H Z_ee)`` (exact: L is quadratic in e).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from sgdsim._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_positive,
)
from sgdsim.theory.stability import _bisect_stable, _check_rtol, step_matrices

__all__ = ["LinRegMoments", "mean_square_lr_threshold", "mean_square_rate", "minibatch_kappa"]

_DENSE_MAX = 4096  # largest n² for which the n²×n² moment operator is built densely (128 MiB)
_DENSE_EIG_MAX = 900  # largest n² for dense eigenvalues of that operator (else ARPACK)


def minibatch_kappa(n_samples: int, batch_size: int, replacement: bool) -> float:
    """Factor κ multiplying the per-sample gradient covariance / B (see module docstring)."""
    N = check_int("n_samples", n_samples, minimum=1)
    B = check_int("batch_size", batch_size, minimum=1)
    if check_bool("replacement", replacement):
        return 1.0
    if B > N:
        raise ValueError(
            f"`batch_size`={B} exceeds the number of samples N={N} without replacement"
        )
    return 0.0 if N == 1 else (N - B) / (N - 1)


@dataclass(frozen=True)
class LinRegMoments:
    """Exact moment recursion of minibatch SGD on ``L(w) = (1/2N)‖Xw − y‖²``.

    Parameters
    ----------
    X : ndarray, shape ``(N, d)``
    y : ndarray, shape ``(N,)``
    lr : float
        Learning rate η.
    batch_size : int
        B ≥ 1 (≤ N without replacement).
    replacement : bool
        Batches drawn i.i.d. with replacement (True) or B distinct indices per step (False).
    momentum, dampening, nesterov
        PyTorch SGD momentum options (β, τ); with β = 0 the state is ``e`` alone.

    Notes
    -----
    State dimension ``n = d`` (β = 0) or ``2d``; moments are ``(n,)`` and ``(n, n)`` arrays. The
    dense operator (:meth:`operator_matrix`) is ``n² × n²`` and is used when ``n² ≤ 4096``;
    larger problems use matrix-free GMRES / ARPACK with an ``O(N d² + n³)`` matvec.
    """

    X: np.ndarray
    y: np.ndarray
    lr: float
    batch_size: int
    replacement: bool = True
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    # derived
    H: np.ndarray = field(init=False, repr=False)
    w_hat: np.ndarray = field(init=False, repr=False)
    residuals: np.ndarray = field(init=False, repr=False)
    kappa: float = field(init=False)
    A: np.ndarray = field(init=False, repr=False)
    P: np.ndarray = field(init=False, repr=False)
    A_first: np.ndarray = field(init=False, repr=False)
    P_first: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        X = as_float_array("X", self.X, ndim=2)
        N, d = X.shape
        y = as_float_array("y", self.y, shape=(N,))
        eta = check_positive("lr", self.lr)
        check_in_range("momentum", self.momentum, 0.0, 1.0, high_open=True)  # as sgdsim.sgd
        B = check_int("batch_size", self.batch_size, minimum=1)
        kappa = minibatch_kappa(N, B, self.replacement)
        H = X.T @ X / N
        w_hat = np.linalg.lstsq(X, y, rcond=None)[0]
        r = y - X @ w_hat
        mats = []
        for first in (False, True):
            a_s, p_s = step_matrices(
                1.0, eta, momentum=self.momentum, dampening=self.dampening,
                nesterov=self.nesterov, first_step=first,
            )
            if self.momentum == 0.0:  # the buffer is not state: buf' = c_g·g
                mats += [np.eye(d) + p_s[0] * H, p_s[0] * np.eye(d)]
                continue
            I = np.eye(d)
            A = np.block([[I + p_s[0] * H, a_s[0, 1] * I], [p_s[1] * H, a_s[1, 1] * I]])
            P = np.vstack([p_s[0] * I, p_s[1] * I])
            mats += [A, P]
        for name, val in [
            ("X", X), ("y", y), ("lr", eta), ("batch_size", B), ("H", H), ("w_hat", w_hat),
            ("residuals", r), ("kappa", kappa), ("A", mats[0]), ("P", mats[1]),
            ("A_first", mats[2]), ("P_first", mats[3]),
        ]:
            object.__setattr__(self, name, val)

    # ------------------------------------------------------------------ basic quantities
    @property
    def dim(self) -> int:
        """Parameter dimension d."""
        return self.X.shape[1]

    @property
    def state_dim(self) -> int:
        """State dimension n (d, or 2d with momentum)."""
        return self.A.shape[0]

    @property
    def min_loss(self) -> float:
        """``L(ŵ) = ‖r‖²/(2N)``."""
        return float(self.residuals @ self.residuals / (2 * self.X.shape[0]))

    def _F(self, S: np.ndarray) -> np.ndarray:
        X = self.X
        q = np.einsum("ni,ni->n", X @ S, X)
        return (X.T * q) @ X / X.shape[0]

    def _G(self, m: np.ndarray) -> np.ndarray:
        X = self.X
        q = self.residuals * (X @ m)
        return (X.T * q) @ X / X.shape[0]

    @property
    def residual_noise(self) -> np.ndarray:
        """``R = (1/N) Σ r_n² x_n x_nᵀ``: per-sample gradient covariance at ŵ, shape ``(d, d)``."""
        return (self.X.T * self.residuals**2) @ self.X / self.X.shape[0]

    def noise_covariance(self, mean: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``E[ξξᵀ]`` given the error moments ``E e`` (d,) and ``E eeᵀ`` (d, d)."""
        H = self.H
        c = self.kappa / self.batch_size
        return c * (self._F(second) - 2.0 * self._G(mean) + self.residual_noise - H @ second @ H)

    # ------------------------------------------------------------------ the recursion
    def step(
        self, mean: np.ndarray, second: np.ndarray, *, first_step: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """One exact step of the moments: ``(m, Z) ↦ (m', Z')`` (state moments, see module doc)."""
        A, P = (self.A_first, self.P_first) if first_step else (self.A, self.P)
        d = self.dim
        Q = self.noise_covariance(mean[:d], second[:d, :d])
        new_second = A @ second @ A.T + P @ Q @ P.T
        return A @ mean, 0.5 * (new_second + new_second.T)

    def initial_moments(self, w0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State moments of a deterministic start ``w0`` (buffer 0): ``(m, m mᵀ)``."""
        w0 = as_float_array("w0", w0, shape=(self.dim,))
        m = np.zeros(self.state_dim)
        m[: self.dim] = w0 - self.w_hat
        return m, np.outer(m, m)

    def transient(self, steps: int, w0: np.ndarray, *, every: int = 1) -> dict[str, np.ndarray]:
        """Iterate the exact moments from a deterministic start ``w0`` (PyTorch first step).

        Returns
        -------
        dict with ``step`` (k,), ``excess_loss`` (k,) = ``E L(w_k) − L(ŵ)``, ``loss`` (k,) =
        ``E L(w_k)``, ``mean_error`` (k, d) = ``E w_k − ŵ``, recorded at steps 0, every, ….
        """
        steps = check_int("steps", steps, minimum=0)
        every = check_int("every", every, minimum=1)
        m, Z = self.initial_moments(w0)
        d = self.dim
        rec_k, rec_ex, rec_m = [], [], []
        for k in range(steps + 1):
            if k % every == 0:
                rec_k.append(k)
                rec_ex.append(0.5 * np.sum(self.H * Z[:d, :d]))
                rec_m.append(m[:d].copy())
            if k < steps:
                m, Z = self.step(m, Z, first_step=(k == 0))
        ex = np.asarray(rec_ex)
        return {
            "step": np.asarray(rec_k),
            "excess_loss": ex,
            "loss": ex + self.min_loss,
            "mean_error": np.asarray(rec_m),
        }

    # ------------------------------------------------------------------ linear operator
    def _apply_linear(self, Z: np.ndarray) -> np.ndarray:
        """Homogeneous part of the second-moment map (mean = 0, R = 0)."""
        d = self.dim
        See = Z[:d, :d]
        c = self.kappa / self.batch_size
        Q = c * (self._F(See) - self.H @ See @ self.H)
        return self.A @ Z @ self.A.T + self.P @ Q @ self.P.T

    def operator_matrix(self) -> np.ndarray:
        """Dense ``n² × n²`` matrix T of the homogeneous second-moment map, row-major vec.

        ``T = A⊗A + (κ/B)(P⊗P)[(1/N) V Vᵀ − H⊗H](S⊗S)`` with ``V`` the columns
        ``vec(x_n x_nᵀ)`` and ``S = [I_d 0]`` selecting the e-block.
        """
        n, d, N = self.state_dim, self.dim, self.X.shape[0]
        if n * n > _DENSE_MAX * 4:
            raise ValueError(f"state dimension n={n} too large for a dense n²×n² operator")
        V = np.einsum("ni,nj->ijn", self.X, self.X).reshape(d * d, N)
        core = V @ V.T / N - np.kron(self.H, self.H)
        S = np.eye(d, n)
        c = self.kappa / self.batch_size
        return np.kron(self.A, self.A) + c * np.kron(self.P, self.P) @ core @ np.kron(S, S)

    def _linear_operator(self, shift: bool) -> spla.LinearOperator:
        n = self.state_dim

        def mv(v):
            Z = v.reshape(n, n)
            out = self._apply_linear(Z)
            return (Z - out).ravel() if shift else out.ravel()

        return spla.LinearOperator((n * n, n * n), matvec=mv, dtype=np.float64)

    def mean_square_rate(self) -> float:
        """Spectral radius ``ρ(T)`` of the homogeneous second-moment map alone (mean-square rate).

        ρ(T) by dense eigenvalues for n² ≤ 900, else ARPACK (k = 4). Null-space modes of a
        singular H contribute eigenvalues exactly 1 (they are never moved).
        """
        n = self.state_dim
        if n * n <= _DENSE_EIG_MAX:
            return float(np.max(np.abs(np.linalg.eigvals(self.operator_matrix()))))
        vals = spla.eigs(
            self._linear_operator(False), k=4, which="LM", tol=1e-10,
            v0=np.eye(n).ravel(), return_eigenvectors=False, maxiter=20000,
        )
        return float(np.max(np.abs(vals)))

    def spectral_radius(self) -> float:
        """Spectral radius of the full moment map: ``max(ρ(A), ρ(T))``.

        The (m, Z) map is block triangular, so its spectrum is that of A (mean) together with that
        of T (second moment, :meth:`mean_square_rate`).
        """
        rho_a = float(np.max(np.abs(np.linalg.eigvals(self.A))))
        return max(rho_a, self.mean_square_rate())

    def stationary(self, *, method: str = "auto") -> np.ndarray:
        """Stationary state second moment Z∞ (n, n) (the stationary mean is 0).

        Solves ``(I − T) vec Z = vec((κ/B) P R Pᵀ)`` by GMRES on the matrix-free operator
        (``method="gmres"``; ``"auto"`` uses it, falling back to the dense solve when GMRES stalls
        and n² ≤ 4096) or by a dense LU solve of the n²×n² system (``"dense"``). Raises
        ``ValueError`` when the recursion is not mean-square stable: T is a positive map, so (by
        Krein–Rutman duality, for R ≻ 0) the solution is positive semi-definite iff ρ(T) < 1.
        With zero residuals (R = 0) the answer is 0 whether or not the recursion is stable.
        """
        n = self.state_dim
        rhs = (self.kappa / self.batch_size) * self.P @ self.residual_noise @ self.P.T
        check_choice("method", method, ("auto", "dense", "gmres"))
        Z = None
        if method in ("auto", "gmres"):
            x, info = spla.gmres(
                self._linear_operator(True), rhs.ravel(), rtol=1e-12, atol=0.0,
                restart=200, maxiter=2000,
            )
            if info == 0:
                Z = x.reshape(n, n)
            elif method == "gmres" or n * n > _DENSE_MAX:
                raise RuntimeError(f"GMRES did not converge (info={info})")
        if Z is None:
            T = self.operator_matrix()
            Z = scipy.linalg.solve(np.eye(n * n) - T, rhs.ravel()).reshape(n, n)
        Z = 0.5 * (Z + Z.T)
        ev = np.linalg.eigvalsh(Z)
        if ev[0] < -1e-8 * max(abs(ev[-1]), 1e-300):
            raise ValueError(
                f"lr={self.lr} with batch_size={self.batch_size} is not mean-square stable: "
                "no stationary second moment (check mean_square_lr_threshold)"
            )
        return Z

    def stationary_excess_loss(self, **kw) -> float:
        """Stationary ``E L(w) − L(ŵ) = ½ tr(H Σ∞)``."""
        Z = self.stationary(**kw)
        d = self.dim
        return 0.5 * float(np.sum(self.H * Z[:d, :d]))


def _range_projection(X: np.ndarray) -> np.ndarray:
    """``X V_r`` (N, r): the data in the coordinates of the range of ``H = XᵀX/N`` (rank r).

    Directions in the null space of H have zero curvature and no gradient noise (``x_nᵀe = 0``
    for every sample), so SGD leaves them unchanged: they are marginal (second-moment eigenvalue
    exactly 1) for every lr, as in :func:`max_stable_lr`, and do not constrain it. The rank uses
    the LAPACK SVD with NumPy's ``matrix_rank`` tolerance ``σ_max·max(N, d)·eps``.
    """
    if X.size == 0:
        return X[:, :0]
    _, sv, vt = np.linalg.svd(X, full_matrices=False)
    tol = sv.max(initial=0.0) * max(X.shape) * np.finfo(np.float64).eps
    return X @ vt[sv > tol].T


def _moments(X, lr, batch_size, replacement, momentum, dampening, nesterov):
    return LinRegMoments(
        X, np.zeros(X.shape[0]), lr=lr, batch_size=batch_size, replacement=replacement,
        momentum=momentum, dampening=dampening, nesterov=nesterov,
    )


def mean_square_rate(
    X: np.ndarray,
    lr: float,
    batch_size: int,
    *,
    replacement: bool = True,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
) -> float:
    """Mean-square rate of minibatch SGD on linear regression: ``ρ(T)``, on its own.

    ``T`` is the homogeneous second-moment map of
    :class:`LinRegMoments` (loss ``(1/2N)‖Xw − y‖²``), so the
    excess second moment decays (or grows) like ``ρ(T)^k``; it does not depend on ``y``. This is
    the rate alone, unlike ``LinRegMoments.spectral_radius()``, which is ``max(ρ(A), ρ(T))`` of the
    full (mean, second-moment) map (``ρ(A)² ≤ ρ(T)``). On a singular ``H`` the null-space modes
    make ``ρ(T) ≥ 1`` at every lr (they are marginal, see :func:`mean_square_lr_threshold`).

    Parameters
    ----------
    X : ndarray, shape ``(N, d)``
    lr : float
        η > 0.
    batch_size : int
        B ≥ 1 (≤ N without replacement).
    replacement, momentum, dampening, nesterov
        As in :class:`LinRegMoments`.
    """
    X = as_float_array("X", X, ndim=2)
    return _moments(X, lr, batch_size, replacement, momentum, dampening, nesterov).mean_square_rate()


def mean_square_lr_threshold(
    X: np.ndarray,
    batch_size: int,
    *,
    replacement: bool = True,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    rtol: float = 1e-6,
) -> float:
    """Mean-square stability threshold of minibatch SGD on linear regression.

    The largest η for which the mean-square rate :func:`mean_square_rate` is < 1 (which implies a
    stable mean, ``ρ(A)² ≤ ρ(T)``), for the loss ``(1/2N)‖Xw − y‖²`` and batches of ``batch_size``
    drawn with or without replacement. Found by bisection from ``0.5/λ_max(H)`` (doubling until
    unstable) to a bracket of relative width ``rtol``, so the result is within ``rtol/2``
    (relative) of the threshold; assumes the stable set is an interval. With ``B = N`` without
    replacement this is the GD threshold ``2/λ_max``.

    Zero-curvature modes (a singular ``H``, e.g. interpolating least squares with N < d) are
    marginal for every lr and do not constrain it (as in
    :func:`~sgdsim.theory.stability.max_stable_lr`): the threshold is that of the problem
    projected on the range of H. Returns ``inf`` if ``H = 0``.

    Parameters
    ----------
    X : ndarray, shape ``(N, d)``
    batch_size : int
        B in [1, N] without replacement; any B ≥ 1 with replacement.
    replacement, momentum, dampening, nesterov
        As in :class:`LinRegMoments`.
    rtol : float
        Relative width of the final bracket, in [1e-15, 1).
    """
    X = as_float_array("X", X, ndim=2)
    if X.shape[0] == 0:
        raise ValueError(f"`X` must have at least one row (sample), got shape {X.shape}")
    rtol = _check_rtol(rtol)
    check_in_range("momentum", momentum, 0.0, 1.0, high_open=True)  # β = 1: no lr is stable
    Xr = _range_projection(X)
    _moments(X[:, :0], 1.0, batch_size, replacement, momentum, dampening, nesterov)  # checks args
    if Xr.shape[1] == 0:
        return float("inf")

    # The moment map depends on η and X only through η·x_n x_nᵀ, so the threshold of sX is
    # that of X over s²: bisect on X/max|X| (no overflow of η for tiny or huge data), rescale.
    scale = float(np.max(np.abs(Xr)))
    Xn = Xr / scale

    def stable(eta: float) -> bool:
        m = _moments(Xn, eta, batch_size, replacement, momentum, dampening, nesterov)
        return m.mean_square_rate() < 1.0

    lam_max = float(np.linalg.eigvalsh(Xn.T @ Xn / Xn.shape[0])[-1])
    with np.errstate(over="ignore"):  # scale² may underflow: divide twice
        eta = np.float64(_bisect_stable(stable, 0.5 / lam_max, rtol)) / scale / scale
    if not np.isfinite(eta):
        raise ValueError(f"`X` is too small (max |X| = {scale:.3g}): the threshold overflows "
                         "float64")
    return float(eta)
