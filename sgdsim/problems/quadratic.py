"""Quadratic losses with Gaussian gradient noise (the noisy quadratic model)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sgdsim._validation import (
    as_float_array,
    check_allocation,
    check_int,
    check_positive,
    check_symmetric,
)
from sgdsim.problems.noise import AdditiveNoise, LabelNoise, NoiseModel

__all__ = ["Quadratic", "power_law_spectrum"]


def power_law_spectrum(dim: int, p: float, scale: float = 1.0) -> np.ndarray:
    """Eigenvalues ``λ_i = scale · i^(-p)`` for ``i = 1..dim`` (descending), shape (dim,)."""
    dim = check_int("dim", dim, minimum=1)
    p = check_positive("p", p, allow_zero=True)
    scale = check_positive("scale", scale)
    check_allocation("dim", dim, 8.0 * dim, "an array of eigenvalues")
    return scale * np.arange(1, dim + 1, dtype=np.float64) ** (-p)


@dataclass(frozen=True)
class Quadratic:
    """L(θ) = ½ (θ − θ*)ᵀ H (θ − θ*), with optional per-sample gradient noise.

    H is stored by its eigendecomposition ``H = V diag(λ) Vᵀ`` (eigenvalues descending), so the
    simulators can run in the eigenbasis where every mode is independent; all observables the
    engine records are rotation-invariant.

    Parameters
    ----------
    hessian : array_like (d, d), optional
        Symmetric Hessian. Give either this or ``eigenvalues``.
    eigenvalues : array_like (d,), optional
        Spectrum λ (any order; stored descending, with ``eigenvectors`` permuted alike).
    eigenvectors : array_like (d, d), optional
        Orthonormal eigenbasis V (columns); identity if omitted.
    minimum : array_like (d,), optional
        θ*, zero if omitted.
    noise : AdditiveNoise or LabelNoise, optional
        Per-sample gradient noise; ``None`` means exact gradients.
    """

    hessian: np.ndarray | None = field(default=None, repr=False)
    eigenvalues: np.ndarray | None = field(default=None, repr=False)
    eigenvectors: np.ndarray | None = field(default=None, repr=False)
    minimum: np.ndarray | None = field(default=None, repr=False)
    noise: NoiseModel | None = None

    def __post_init__(self) -> None:
        if (self.hessian is None) == (self.eigenvalues is None):
            raise ValueError("give exactly one of `hessian` or `eigenvalues`")
        if self.hessian is not None:
            h = check_symmetric("hessian", as_float_array("hessian", self.hessian, ndim=2))
            if self.eigenvectors is not None:
                raise ValueError("`eigenvectors` only goes with `eigenvalues`, not with `hessian`")
            lam, vec = np.linalg.eigh(h)
        else:
            lam = as_float_array("eigenvalues", self.eigenvalues, ndim=1)
            d = lam.shape[0]
            if self.eigenvectors is None:
                vec = np.eye(d)
            else:
                vec = as_float_array("eigenvectors", self.eigenvectors, shape=(d, d))
                err = np.max(np.abs(vec.T @ vec - np.eye(d)))
                if err > 1e-8:
                    raise ValueError(f"`eigenvectors` must be orthonormal; max |VᵀV − I| = {err:.3g}")
        d = lam.shape[0]
        if d == 0:
            raise ValueError("`eigenvalues` must not be empty")
        order = np.argsort(-lam, kind="stable")
        lam, vec = lam[order], vec[:, order]
        theta_star = (
            np.zeros(d) if self.minimum is None else as_float_array("minimum", self.minimum, shape=(d,))
        )
        if self.noise is not None and not isinstance(self.noise, (AdditiveNoise, LabelNoise)):
            raise TypeError(f"`noise` must be AdditiveNoise, LabelNoise or None, got {self.noise!r}")
        if isinstance(self.noise, AdditiveNoise):
            if self.noise.cov.shape[0] != d:
                raise ValueError(f"`noise.cov` has size {self.noise.cov.shape[0]}, problem dim is {d}")
            if self.noise.is_diagonal and self.hessian is not None:
                raise ValueError(
                    "a diagonal `noise.cov` is read in the eigenbasis; with `hessian` give the full "
                    "(d, d) covariance instead"
                )
        for arr in (lam, vec, theta_star):
            arr.setflags(write=False)
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "eigenvectors", vec)
        object.__setattr__(self, "minimum", theta_star)
        object.__setattr__(self, "hessian", None)

    @classmethod
    def from_eigenvalues(
        cls,
        eigenvalues,
        eigenvectors=None,
        minimum=None,
        noise: NoiseModel | None = None,
    ) -> Quadratic:
        return cls(eigenvalues=eigenvalues, eigenvectors=eigenvectors, minimum=minimum, noise=noise)

    # --- structure -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def is_axis_aligned(self) -> bool:
        """True when the eigenbasis is the identity (no rotation needed)."""
        return bool(np.array_equal(self.eigenvectors, np.eye(self.dim)))

    def hessian_matrix(self) -> np.ndarray:
        """Dense H, shape (d, d)."""
        v, lam = self.eigenvectors, self.eigenvalues
        return (v * lam) @ v.T

    def noise_in_eigenbasis(self) -> np.ndarray | None:
        """Per-sample noise covariance in the eigenbasis: (d,) if diagonal there, else (d, d)."""
        if self.noise is None:
            return None
        if isinstance(self.noise, LabelNoise):
            return self.noise.sigma2 * self.eigenvalues.clip(min=0.0)
        if self.noise.is_diagonal:
            return self.noise.cov
        c = self.eigenvectors.T @ self.noise.cov @ self.eigenvectors
        off = c - np.diag(np.diag(c))
        if np.max(np.abs(off)) <= 1e-12 * max(np.max(np.abs(c)), 1e-300):
            return np.diag(c).copy()
        return 0.5 * (c + c.T)

    def noise_covariance(self, batch_size: int = 1) -> np.ndarray:
        """Minibatch gradient-noise covariance C/B in the original coordinates, (d, d)."""
        c = self.noise_in_eigenbasis()
        if c is None:
            return np.zeros((self.dim, self.dim))
        v = self.eigenvectors
        c = np.diag(c) if c.ndim == 1 else c
        return v @ c @ v.T / batch_size

    # --- values (NumPy, batched over leading axes) ---------------------------------------------
    def loss(self, theta: np.ndarray) -> np.ndarray:
        """Loss for θ of shape (..., d); returns shape (...)."""
        z = (np.asarray(theta) - self.minimum) @ self.eigenvectors
        return 0.5 * np.sum(self.eigenvalues * z * z, axis=-1)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """Exact gradient H(θ − θ*), shape like θ."""
        z = (np.asarray(theta) - self.minimum) @ self.eigenvectors
        return (z * self.eigenvalues) @ self.eigenvectors.T

    def hvp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product H v (θ-independent), shape like v."""
        return ((np.asarray(v) @ self.eigenvectors) * self.eigenvalues) @ self.eigenvectors.T
