"""Stationary Gaussian random potentials in d dimensions by random Fourier features.

A realized field is

.. math:: f(\\theta) = \\sum_{m=1}^{M} a_m \\cos(\\omega_m^\\top \\theta + b_m),
       \\qquad a_m = \\sigma \\sqrt{2/M},

with ``b_m ~ U[0, 2π)`` and ``ω_m`` drawn from the covariance's normalized spectral density
(Rahimi & Recht 2007). For every ``M`` the ensemble covariance over realizations is exactly the
target, ``E f(θ) f(θ') = σ² E_ω cos(ωᵀ(θ − θ')) = k(θ − θ')``; ``M`` controls how Gaussian one
realization is and how close its *realized* covariance
``k̂(r) = σ²/M · Σ_m cos(ω_mᵀ r)`` (the average of ``f(θ)f(θ + r)`` over positions) is to
``k(r)``: the error at lag ``r`` has mean 0 and standard deviation
``σ² · sqrt(Var_ω[cos ωᵀr] / M) <= σ²/sqrt(2M)``. Rule of thumb: ``M = 1/(2ε²)`` features give a
realized covariance within ``ε·σ²`` (one standard deviation) at every lag: 500 features → 3%,
5000 → 1% (measured in ``tests/test_random_potential.py``).

Kernels (``r = ‖θ − θ'‖``, ``ℓ`` = ``lengthscale``):

=============  ==============================================  ===================================
``se``         ``σ² exp(−r²/2ℓ²)``                             ``ω ~ N(0, I/ℓ²)``
``matern12``   ``σ² exp(−r/ℓ)``                                ``ω ~ Student-t, 1 dof, scale 1/ℓ``
``matern32``   ``σ² (1 + √3 r/ℓ) exp(−√3 r/ℓ)``                ``ω ~ Student-t, 3 dof, scale √3/…``
``matern52``   ``σ² (1 + √5 r/ℓ + 5r²/3ℓ²) exp(−√5 r/ℓ)``      ``ω ~ Student-t, 5 dof``
``rough``      ``E(f(θ) − f(θ'))² ∝ r^α`` for ``ℓ ≪ r ≪ L``    ``|ω|^−(d+α)`` on ``[1/L, 1/ℓ]`` (*)
=============  ==============================================  ===================================

(Matérn-ν spectral densities are multivariate Student-t with ``2ν`` degrees of freedom and scale
``√(2ν)/ℓ``.) The ``rough`` field is a fractional-Brownian-like potential (Hoffer et al. 2017's
"random potential" with increment exponent ``α``, 0 < α < 2): its spectral density has radial
density ``p(k) ∝ k^{−1−α}`` between ``k_min = 1/outer_scale`` and ``k_max = 1/lengthscale``,
direction uniform; its variance is ``σ²`` (the structure function saturates at ``2σ²`` beyond
``L``). (*) Drawing ``k`` from ``p`` would put almost every feature near ``k_min``; instead
``log k`` is drawn uniformly (importance sampling) and each feature weighted,
``a_m = σ sqrt(2 p(k_m) / (M q(k_m)))`` with ``q(k) = 1/(k log(k_max/k_min))``, so the ensemble
covariance is still exact and every e-fold of scales gets ``M/log(k_max/k_min)`` features. The
cut-offs bend the power law by relative amounts ``~(ℓ/r)^α`` and ``~(r/L)^(2−α)``: for small
``α`` put ``ℓ`` many decades below the scales of interest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from .._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_positive,
)
from ..fields import rff_gradient, rff_phases

__all__ = [
    "KERNELS",
    "GaussianRandomPotential",
    "kernel_covariance",
    "rff_grad_into",
    "rff_loss",
]

KERNELS = ("se", "matern12", "matern32", "matern52", "rough")
_MATERN_NU = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}


def kernel_covariance(kernel: str, r: Any, *, lengthscale: float, variance: float = 1.0) -> Any:
    """Target covariance ``k(r)`` of a stationary kernel at distances ``r`` (closed forms).

    Not defined for ``kernel="rough"`` (whose increments, not values, are specified).
    """
    check_choice("kernel", kernel, KERNELS[:-1])
    x = np.asarray(r, dtype=np.float64) / lengthscale
    if kernel == "se":
        return variance * np.exp(-0.5 * x**2)
    if kernel == "matern12":
        return variance * np.exp(-x)
    if kernel == "matern32":
        s = np.sqrt(3.0) * x
        return variance * (1.0 + s) * np.exp(-s)
    s = np.sqrt(5.0) * x
    return variance * (1.0 + s + s**2 / 3.0) * np.exp(-s)


def _sample_frequencies(kernel, dim, m, lengthscale, alpha, outer_scale, rng):
    """``m`` frequencies (m, dim) and squared relative weights ``p/q`` (m,) for ``kernel``."""
    z = rng.standard_normal((m, dim))
    if kernel == "se":
        return z / lengthscale, np.ones(m)
    if kernel in _MATERN_NU:
        nu = _MATERN_NU[kernel]
        u = rng.chisquare(2.0 * nu, size=(m, 1))
        return z * np.sqrt(2.0 * nu / u) / lengthscale, np.ones(m)
    # rough: log k uniform on [log k_min, log k_max], weights p/q for p(k) ∝ k^(−1−α)
    kmin, kmax = 1.0 / outer_scale, 1.0 / lengthscale
    span = np.log(kmax / kmin)
    k = kmin * np.exp(span * rng.random(m))
    w2 = alpha * k**-alpha * span / (kmin**-alpha - kmax**-alpha)
    return k[:, None] * z / np.linalg.norm(z, axis=1, keepdims=True), w2


@njit(cache=True)
def rff_loss(theta, W, b, amp):
    """``Σ_m amp_m cos(W_m·θ + b_m)`` for one point ``theta`` (d,); ``amp`` (M,)."""
    acc = 0.0
    for m in range(W.shape[0]):
        z = b[m]
        for k in range(W.shape[1]):
            z += W[m, k] * theta[k]
        acc += amp[m] * np.cos(z)
    return acc


@njit(cache=True)
def rff_grad_into(theta, W, b, amp, out):
    """Write ``∇f(θ) = −Σ_m amp_m sin(W_m·θ + b_m) W_m`` into ``out`` (d,); returns ``out``.

    Parameters: ``theta`` (d,), ``W`` (M, d), ``b`` (M,), ``amp`` (M,) feature amplitudes
    (``GaussianRandomPotential.amp``, or its row ``r`` for a per-replica field).
    """
    d = W.shape[1]
    for k in range(d):
        out[k] = 0.0
    for m in range(W.shape[0]):
        z = b[m]
        for k in range(d):
            z += W[m, k] * theta[k]
        s = -amp[m] * np.sin(z)
        for k in range(d):
            out[k] += s * W[m, k]
    return out


@dataclass(frozen=True)
class GaussianRandomPotential:
    """A stationary Gaussian random potential ``L(θ) = f(θ)`` realized by random Fourier features.

    Parameters
    ----------
    dim : int
        Dimension ``d`` of θ.
    n_features : int
        Number of features ``M`` (accuracy: see the module docstring).
    lengthscale : float
        ``ℓ``: correlation length; for ``rough`` the inner (small-scale) cut-off.
    variance : float
        ``σ²``, the field's variance.
    kernel : {"se", "matern12", "matern32", "matern52", "rough"}
    seed : int
        Seeds the features (one field, or one per replica).
    per_replica : bool
        One independent field per replica (then ``n_replicas`` is required) or one shared field.
    noise_std : float
        Standard deviation of isotropic additive Gaussian noise added by :meth:`noisy_grad`.
    n_replicas : int, optional
        Number of per-replica fields. Field ``r`` depends only on ``(seed, r)``.
    alpha : float, optional
        ``rough`` only: increment exponent in (0, 2).
    outer_scale : float, optional
        ``rough`` only: the large-scale cut-off ``L`` (> ``lengthscale``).

    Attributes
    ----------
    W : ndarray, shape (M, d) or (n_replicas, M, d)
        Frequencies.
    b : ndarray, shape (M,) or (n_replicas, M)
        Phases.
    amp : ndarray, shape (M,) or (n_replicas, M)
        Feature amplitudes ``a_m`` (all ``σ √(2/M)`` except for ``rough``).

    Notes
    -----
    Methods accept ``theta`` of shape (d,) (shared field only) or (R, d); with ``per_replica``
    row ``r`` is evaluated on field ``r`` and ``R`` must equal ``n_replicas``.
    """

    dim: int
    n_features: int
    lengthscale: float
    variance: float = 1.0
    kernel: str = "se"
    seed: int = 0
    per_replica: bool = False
    noise_std: float = 0.0
    n_replicas: int | None = None
    alpha: float | None = None
    outer_scale: float | None = None
    W: np.ndarray = field(init=False, repr=False, compare=False)
    b: np.ndarray = field(init=False, repr=False, compare=False)
    amp: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int("dim", self.dim, minimum=1)
        check_int("n_features", self.n_features, minimum=1)
        check_positive("lengthscale", self.lengthscale)
        check_positive("variance", self.variance)
        check_choice("kernel", self.kernel, KERNELS)
        check_int("seed", self.seed, minimum=0)
        check_positive("noise_std", self.noise_std, allow_zero=True)
        if self.kernel == "rough":
            if self.alpha is None or self.outer_scale is None:
                raise ValueError("kernel='rough' needs `alpha` in (0, 2) and `outer_scale`")
            check_in_range("alpha", self.alpha, 0.0, 2.0, low_open=True, high_open=True)
            check_positive("outer_scale", self.outer_scale)
            if self.outer_scale <= self.lengthscale:
                raise ValueError(
                    f"`outer_scale`={self.outer_scale} must exceed `lengthscale`="
                    f"{self.lengthscale} (the rough range is lengthscale ≪ r ≪ outer_scale)"
                )
        elif self.alpha is not None or self.outer_scale is not None:
            raise ValueError(
                "`alpha` and `outer_scale` apply only to kernel='rough', "
                f"got kernel={self.kernel!r}"
            )
        if check_bool("per_replica", self.per_replica):
            if self.n_replicas is None:
                raise ValueError("`per_replica=True` needs `n_replicas`")
            check_int("n_replicas", self.n_replicas, minimum=1)
            n_fields = self.n_replicas
        elif self.n_replicas is not None:
            raise ValueError("`n_replicas` applies only with `per_replica=True`")
        else:
            n_fields = 1
        Ws, bs, amps = [], [], []
        for r in range(n_fields):
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(r,)))
            W, w2 = _sample_frequencies(self.kernel, self.dim, self.n_features,
                                        self.lengthscale, self.alpha, self.outer_scale, rng)
            Ws.append(W)
            bs.append(rng.uniform(0.0, 2.0 * np.pi, self.n_features))
            amps.append(np.sqrt(self.variance * 2.0 * w2 / self.n_features))
        W, b, amp = np.stack(Ws), np.stack(bs), np.stack(amps)
        if not self.per_replica:
            W, b, amp = W[0], b[0], amp[0]
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "amp", amp)

    # --- evaluation ---------------------------------------------------------------------------

    def _points(self, theta: Any) -> tuple[np.ndarray, bool]:
        """Validated θ as (R, d), and whether a single point (d,) was given."""
        th = as_float_array("theta", theta)
        single = th.ndim == 1
        if single:
            if self.per_replica:
                raise ValueError(
                    f"a per-replica potential needs `theta` of shape ({self.n_replicas}, "
                    f"{self.dim}), got {th.shape}"
                )
            th = th[None]
        if th.ndim != 2 or th.shape[1] != self.dim:
            raise ValueError(f"`theta` must have shape (R, {self.dim}) or ({self.dim},), "
                             f"got {th.shape}")
        if self.per_replica:
            if th.shape[0] != self.n_replicas:
                raise ValueError(
                    f"`theta` has {th.shape[0]} rows but the potential has n_replicas="
                    f"{self.n_replicas} fields"
                )
        return th, single

    def _phase(self, theta: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        """Validated θ as (R, d), the phases z = Wθ + b, shape (R, M), and the single flag."""
        th, single = self._points(theta)
        return th, rff_phases(np, th, self.W, self.b), single

    def _features(self) -> np.ndarray:
        return self.W if self.per_replica else self.W[None]

    def loss(self, theta: Any) -> np.ndarray | float:
        """Field value ``f(θ)``; shape (R,) for (R, d) input, float for (d,)."""
        _, z, single = self._phase(theta)
        out = (self.amp * np.cos(z)).sum(axis=1)
        return float(out[0]) if single else out

    def grad(self, theta: Any) -> np.ndarray:
        """Exact gradient ``∇f(θ) = −σ√(2/M) Σ_m sin(ω_mᵀθ + b_m) ω_m``; same shape as θ."""
        th, single = self._points(theta)
        g = rff_gradient(np, th, self.W, self.b, self.amp)
        return g[0] if single else g

    def hvp(self, theta: Any, v: Any) -> np.ndarray:
        """Exact Hessian-vector product ``∇²f(θ) v = −σ√(2/M) Σ_m cos(·) ω_m (ω_mᵀ v)``."""
        th, z, single = self._phase(theta)
        vv = as_float_array("v", v)
        if vv.shape != (th[0].shape if single else th.shape):
            raise ValueError(f"`v` must have the shape of `theta`, got {vv.shape}")
        vv = vv[None] if single else vv
        c = -self.amp * np.cos(z)
        F = self._features()
        proj = np.einsum("rmd,rd->rm", F, vv) if self.per_replica else vv @ self.W.T
        out = (np.einsum("rm,rmd->rd", c * proj, F) if self.per_replica
               else (c * proj) @ self.W)
        return out[0] if single else out

    def hessian(self, theta: Any) -> np.ndarray:
        """Dense Hessian at a single point θ (d,) of a shared field, shape (d, d)."""
        _, z, single = self._phase(theta)
        if not single:
            raise ValueError("`hessian` takes a single point theta of shape (d,)")
        c = -self.amp * np.cos(z[0])
        return (self.W * c[:, None]).T @ self.W

    def noisy_grad(self, theta: Any, rng: np.random.Generator) -> np.ndarray:
        """Gradient plus isotropic Gaussian noise of standard deviation ``noise_std``."""
        g = self.grad(theta)
        if self.noise_std > 0:
            g = g + self.noise_std * rng.standard_normal(g.shape)
        return g

    def noise_covariance(self) -> np.ndarray:
        """Covariance of the additive gradient noise, ``noise_std² · I`` (d, d)."""
        return self.noise_std**2 * np.eye(self.dim)

    def realized_covariance(self, lags: Any) -> np.ndarray:
        """Realized (position-averaged) covariance ``½ Σ_m a_m² cos(ω_mᵀ r)`` at lag vectors.

        Parameters
        ----------
        lags : array, shape (K, d)

        Returns
        -------
        ndarray, shape (K,) for a shared field, (n_replicas, K) per replica.
        """
        r = as_float_array("lags", lags, ndim=2, shape=(None, self.dim))
        F = self._features()
        a2 = (self.amp if self.per_replica else self.amp[None]) ** 2
        out = 0.5 * np.einsum("rkm,rm->rk", np.cos(np.einsum("rmd,kd->rkm", F, r)), a2)
        return out if self.per_replica else out[0]
