"""Lowering: turn (problem, sampling, batch size) into plain arrays the kernels understand.

Both backends consume the same :class:`Lowered` description, so a problem is validated and
unpacked in exactly one place. Quadratics are simulated in their eigenbasis (z = Vᵀθ): every
update rule in :mod:`sgdsim.optim` commutes with rotations, and all recorded observables are
rotation-invariant, so only requested parameter snapshots are rotated back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sgdsim.problems.custom import CustomProblem
from sgdsim.problems.linreg import LinearRegression
from sgdsim.problems.quadratic import Quadratic
from sgdsim.problems.random_potential import GaussianRandomPotential

__all__ = ["SAMPLINGS", "Lowered", "lower", "lower_potential"]

#: sampling name → integer code used by the kernels
SAMPLINGS = {
    "full": 0,
    "with_replacement": 1,
    "without_replacement": 2,  # B distinct samples, drawn afresh each step
    "epoch_shuffle": 3,  # reshuffle once per epoch, consecutive disjoint batches (drop_last)
    "gaussian": 4,  # Gaussian surrogate with the exact minibatch covariance (with replacement)
}


@dataclass(frozen=True)
class Lowered:
    """Kernel-level description of a problem.

    Attributes
    ----------
    kind : str
        ``"quad_diag" | "quad_full" | "linreg" | "linreg_gauss" | "rff" | "custom"`` (SGD);
        ``"linear" | "rff" | "custom" | "user"`` (an SDE's potential: :func:`lower_potential`).
    dim : int
        Number of parameters d.
    arrays : dict of str to ndarray
        Named float64 arrays (cast to the run dtype by the backend).
    ints : dict of str to int
        Integer settings (sampling mode, batch size, feature counts).
    basis : ndarray, shape (d, d), or None
        Rotation from kernel coordinates to user coordinates (None: identity).
    problem : object
        The problem itself, for oracles evaluated in Python (``CustomProblem``).
    """

    kind: str
    dim: int
    arrays: dict[str, np.ndarray] = field(repr=False)
    ints: dict[str, int] = field(default_factory=dict)
    basis: np.ndarray | None = field(default=None, repr=False)
    problem: object = field(default=None, repr=False)

    def to_kernel(self, theta: np.ndarray) -> np.ndarray:
        return theta if self.basis is None else theta @ self.basis

    def to_user(self, z: np.ndarray) -> np.ndarray:
        return z if self.basis is None else z @ self.basis.T


def _check_sampling_for(problem, sampling: str, batch_size: int) -> None:
    if isinstance(problem, LinearRegression):
        n = problem.n_samples
        if sampling in ("without_replacement", "epoch_shuffle") and batch_size > n:
            raise ValueError(
                f"`batch_size`={batch_size} exceeds the data set size N={n} for "
                f"sampling={sampling!r}; use sampling='with_replacement' or a smaller batch"
            )
    elif sampling not in ("full", "with_replacement", "gaussian"):
        raise ValueError(
            f"sampling={sampling!r} needs a finite data set (LinearRegression); "
            f"{type(problem).__name__} has Gaussian gradient noise: use 'with_replacement' "
            "(noise covariance C/B) or 'full'"
        )


def lower(problem, sampling: str, batch_size: int) -> Lowered:
    """Validate the combination and unpack the problem for the kernels."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"`sampling` must be one of {tuple(SAMPLINGS)}, got {sampling!r}")
    _check_sampling_for(problem, sampling, batch_size)
    if isinstance(problem, Quadratic):
        return _lower_quadratic(problem, sampling, batch_size)
    if isinstance(problem, LinearRegression):
        return _lower_linreg(problem, sampling, batch_size)
    if isinstance(problem, GaussianRandomPotential):
        return _lower_random_potential(problem, sampling, batch_size)
    if isinstance(problem, CustomProblem):
        chol = np.zeros((problem.dim, problem.dim))
        if problem.noise is not None and sampling != "full":
            chol = _psd_sqrt(problem.noise.matrix() / batch_size)
        return Lowered("custom", problem.dim, {"chol": chol}, problem=problem)
    raise TypeError(
        "`problem` must be a Quadratic, LinearRegression, GaussianRandomPotential or "
        f"CustomProblem, got {type(problem).__name__}"
    )


def lower_potential(problem) -> Lowered:
    """A problem as the potential ``U = L`` of an SDE (:mod:`sgdsim.sde`): only the landscape.

    Quadratics and least squares have the linear gradient ``H(θ − θ*)``: kind ``"linear"``
    with arrays ``M = H`` and ``x_star = θ*`` (they run as the exact linear models). A shared
    random-feature field: kind ``"rff"`` (``W``, ``b``, ``amp``). A CustomProblem: kind
    ``"custom"`` (its gradient through ``problem``). The problem's gradient noise is not used:
    the SDE's own noise replaces it.
    """
    if isinstance(problem, Quadratic):
        arrays = {"M": problem.hessian_matrix(), "x_star": np.asarray(problem.minimum, float)}
        return Lowered("linear", problem.dim, arrays, problem=problem)
    if isinstance(problem, LinearRegression):
        arrays = {"M": problem.hessian_matrix(), "x_star": problem.solution}
        return Lowered("linear", problem.dim, arrays, problem=problem)
    if isinstance(problem, GaussianRandomPotential):
        if problem.per_replica:
            raise ValueError("a per-replica GaussianRandomPotential has one field per replica; the "
                             "SDE integrators take one potential (use per_replica=False)")
        arrays = {"W": problem.W, "b": problem.b, "amp": problem.amp}
        return Lowered("rff", problem.dim, arrays, problem=problem)
    if isinstance(problem, CustomProblem):
        return Lowered("custom", problem.dim, {}, problem=problem)
    raise TypeError(
        "`problem` must be a Quadratic, LinearRegression, GaussianRandomPotential or "
        f"CustomProblem, got {type(problem).__name__}"
    )


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """A square root L with L Lᵀ = c for PSD c (eigendecomposition: works when c is singular)."""
    lam, v = np.linalg.eigh(0.5 * (c + c.T))
    return v * np.sqrt(np.clip(lam, 0.0, None))


def _lower_quadratic(q: Quadratic, sampling: str, batch_size: int) -> Lowered:
    basis = None if q.is_axis_aligned else q.eigenvectors
    zstar = q.minimum if basis is None else q.minimum @ basis
    a = q.eigenvalues
    c = None if sampling == "full" else q.noise_in_eigenbasis()
    if c is None or c.ndim == 1:
        std = np.zeros_like(a) if c is None else np.sqrt(c / batch_size)
        return Lowered("quad_diag", q.dim, {"a": a, "zstar": zstar, "std": std}, basis=basis, problem=q)
    chol = _psd_sqrt(c / batch_size)
    return Lowered("quad_full", q.dim, {"a": a, "zstar": zstar, "chol": chol}, basis=basis, problem=q)


def _lower_linreg(p: LinearRegression, sampling: str, batch_size: int) -> Lowered:
    arrays = {
        "X": p.X,
        "y": p.y,
        "hessian": p.hessian_matrix(),
        "solution": np.asarray(p.solution),
        "min_loss": np.array([p.min_loss]),
    }
    ints = {"mode": SAMPLINGS[sampling], "batch": batch_size if sampling != "full" else p.n_samples}
    kind = "linreg_gauss" if sampling == "gaussian" else "linreg"
    return Lowered(kind, p.dim, arrays, ints, problem=p)


def _lower_random_potential(p: GaussianRandomPotential, sampling: str, batch_size: int) -> Lowered:
    """Random-feature field f(θ) = Σ_m amp_m cos(W_m·θ + b_m); fields stacked as (F·M, d) rows."""
    fields = p.n_replicas if p.per_replica else 1
    m = p.n_features
    std = 0.0 if sampling == "full" else p.noise_std / np.sqrt(batch_size)
    arrays = {
        "W": p.W.reshape(fields * m, p.dim),
        "b": p.b.reshape(fields * m),
        "amp": p.amp.reshape(fields * m),
        "std": np.array([std]),
    }
    return Lowered("rff", p.dim, arrays, {"features": m, "per_replica": int(p.per_replica),
                                          "fields": fields}, problem=p)
