"""Homogenized SGD on least squares: the expected risk as the solution of a Volterra equation.

Setting (sgdsim's conventions, :class:`sgdsim.problems.linreg.LinearRegression`): the training
loss is ``L(w) = (1/2N)‖Xw − y‖² = L(ŵ) + ½ eᵀHe`` with ``H = XᵀX/N``, ``e = w − ŵ`` (ŵ the
minimum-norm least-squares solution), and ``sgd(lr=η)`` with ``batch_size=B`` takes
``w ← w − η g``, ``g = (1/B) Σ_{n∈b} x_n(x_nᵀw − y_n)``, the B indices drawn **i.i.d. uniformly
with replacement** afresh at every step (``sampling="with_replacement"``), i.e. multi-pass SGD on a
fixed data set. Time is counted in SGD **steps** k throughout this module (not epochs).

Homogenization (Paquette, Paquette, Adlam & Pennington 2022, "Homogenization of SGD in
high-dimensions: exact dynamics and generalization properties", arXiv 2205.07069; Paquette, Lee,
Pedregosa & Paquette 2021, "SGD in the large: average-case analysis, asymptotics, and stepsize
criticality", arXiv 2102.04396). The minibatch gradient noise has conditional covariance
``(1/B)[(1/N) Σ_n (x_nᵀe − r_n)² x_n x_nᵀ − He eᵀH]``; in high dimension it is replaced by its
*homogenized* form ``(2 L(w)/B)·H`` (the residual decouples from the data direction; the dropped
terms are rank-one in ``He`` or leverage fluctuations, O(1/d) relative to the kept one on any
quadratic statistic). Homogenized SGD is the SDE with drift ``−η∇L`` and diffusion
``η²(2L/B)H`` per step (eq. (50) of D. Drusvyatskiy's DSC-243 lecture notes, Part IV, which
restate the papers' streaming result with ``γ/d = η``, ``B = 1``, epoch time ``t = k/d``).

In the eigenbasis of H (eigenvalues ``λ_j`` with multiplicity ``m_j``, initial squared error
``c_j = Σ_{v∈eigenspace j} (vᵀe_0)²``) the diagonal of the second moment closes and the expected
training loss ``ψ_k = E L(w_k)`` obeys, **exactly** for the discrete-time homogenized model
(the ``time="discrete"`` equation of this module; a discrete renewal equation)::

    ψ_k = f_k + Σ_{s<k} K_{k−1−s} ψ_s,
    f_k = L(ŵ) + ½ Σ_j λ_j c_j q_j^k,        K_m = (η²/B) Σ_j m_j λ_j² q_j^m,
    q_j = (1 − ηλ_j)²                         ("homogenized" noise)
    q_j = (1 − ηλ_j)² + η²λ_j²/B              ("gaussian_streaming": keeps the rank-one term)

and in continuous time (``time="continuous"``, the papers' Volterra equation; Drusvyatskiy
Part IV eqs. (52)–(54); "SGD in the large" Thm. 1.1 in the notation ``h_k(t) = ∫x^k e^{−2γtx}dμ``)::

    ψ(t) = f(t) + ∫_0^t K(t − s) ψ(s) ds,
    f(t) = L(ŵ) + ½ Σ_j λ_j c_j e^{−ρ_j t},    K(t) = (η²/B) Σ_j m_j λ_j² e^{−ρ_j t},
    ρ_j = 2ηλ_j  (− η²λ_j²/B for "gaussian_streaming").

The ``"gaussian_streaming"`` variant keeps the rank-one term ``H e eᵀ H /B`` of the exact noise
of **streaming** SGD on Gaussian features ``x ~ N(0, H)`` (Wick: ``E[(xᵀe)² xxᵀ] = (eᵀHe)H +
2HeeᵀH``); for that data model the discrete equation is exact at every d. For a fixed data set
neither variant is exact at finite d: the error is an O(1/d) bias plus an O(N^{-1/2}) fluctuation
that depends on the data set (the papers' bounds are d^{-1/2+ε}); against
:class:`sgdsim.theory.linreg_moments.LinRegMoments` at N = 4d the sup error measured 2.6%, 1.5%,
1.0% at d = 12, 24, 48 (log-log slope −0.7 to −1.2 depending on the data sets).

Assumption: the homogenized noise needs a high *intrinsic dimension* ``tr(H)/λ_max ≫ 1`` (the
dropped rank-one term is O(λ_max/tr H) relative); a :class:`LowIntrinsicDimensionWarning` is
issued below 10. Power-law spectra with α > 1/2 have ``tr(H)/λ_max = O(1)`` however large d is:
there the homogenized critical lr is too high (by 37% at α = 1, measured) and the
``"gaussian_streaming"`` variant is the right equation for Gaussian data.

Kernel norm and criticality (Drusvyatskiy Part IV eq. (58); "SGD in the large" §1, critical
stepsize): the solution stays bounded iff ``‖K‖ = Σ_m K_m`` (or ``∫K``) is < 1 (and every mode
is stable, ``q_j < 1``). Then ``ψ_k → L(ŵ)/(1 − ‖K‖)`` (eq. (59)). Discrete homogenized:
``‖K‖ = (η/B) Σ_j m_j λ_j/(2 − ηλ_j)``; continuous: ``‖K‖ = η tr(H)/(2B)``, so the critical
learning rate is ``2B/tr(H)`` to leading order (not ``2/λ_max`` as for GD).

Spectra: from a data matrix (:meth:`LeastSquaresSpectrum.from_data`), explicit eigenvalues with
weights (:meth:`~LeastSquaresSpectrum.from_eigenvalues`), the Marchenko–Pastur law of Gaussian
data (:meth:`~LeastSquaresSpectrum.marchenko_pastur`, a quadrature) or a power law
(:meth:`~LeastSquaresSpectrum.power_law`, the ``α, β`` model of Paquette, Paquette, Xiao &
Pennington 2024, "4+3 phases of compute-optimal neural scaling laws", without random features).

The solve: the forcing and kernel sequences are sums of geometric sequences, computed in blocks
with one table of powers (``O(steps × m)`` multiply-adds in BLAS), and the renewal equation is
solved by divide and conquer with FFT convolutions (``O(steps log² steps)``). Closed forms and
deterministic solves only: nothing here simulates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
import scipy.signal

from sgdsim._validation import as_float_array, check_choice, check_int, check_positive

__all__ = [
    "NOISE_MODELS",
    "HomogenizedSGD",
    "LeastSquaresSpectrum",
    "LowIntrinsicDimensionWarning",
    "critical_lr",
    "marchenko_pastur_density",
    "power_law_risk_exponent",
]

NOISE_MODELS = ("homogenized", "gaussian_streaming")
_TIMES = ("discrete", "continuous")
_BLOCK = 256  # rows of the power table q_j^i, i < _BLOCK
_DIRECT_BASE = 64  # renewal sub-problems this small are solved step by step
_FFT_MIN = 1 << 14  # direct convolution below this many multiply-adds, FFT above
_MIN_INTRINSIC_DIM = 10.0  # below this tr(H)/λ_max the homogenized noise's O(λ_max/tr H) error shows


class LowIntrinsicDimensionWarning(UserWarning):
    """The homogenized noise assumes a high intrinsic dimension ``tr(H)/λ_max ≫ 1``."""


def _real(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite real number (> 0, or >= 0 with ``allow_zero``); strings are refused."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be a real number, got the string {value!r}")
    return check_positive(name, value, allow_zero=allow_zero)


# ------------------------------------------------------------------------------------ spectra
@dataclass(frozen=True)
class LeastSquaresSpectrum:
    """What the Volterra equation needs of a least-squares problem: the spectrum of H.

    Parameters
    ----------
    eigenvalues : array, shape ``(m,)``
        Eigenvalues ``λ_j ≥ 0`` of ``H = XᵀX/N`` (units: loss per squared parameter).
    multiplicity : array, shape ``(m,)``
        Number of eigen-directions at ``λ_j`` (real weights allowed: quadrature of a density);
        they sum to the dimension d.
    initial_error : array, shape ``(m,)``
        ``c_j``: squared initial error ``‖P_j(w_0 − ŵ)‖²`` in the eigenspace of ``λ_j`` (for a
        random start or target, its expectation).
    min_loss : float
        ``L(ŵ) ≥ 0``, the smallest training loss (noise floor of the data set).
    basis, error_coordinates, solution
        Set by :meth:`from_data` only (eigenvectors ``(d, d)``, ``Vᵀ(w_0 − ŵ)`` ``(d,)`` and ŵ
        ``(d,)``); needed by :meth:`HomogenizedSGD.test_risk`.
    """

    eigenvalues: np.ndarray
    multiplicity: np.ndarray
    initial_error: np.ndarray
    min_loss: float = 0.0
    basis: np.ndarray | None = field(default=None, repr=False)
    error_coordinates: np.ndarray | None = field(default=None, repr=False)
    solution: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        lam = as_float_array("eigenvalues", self.eigenvalues, ndim=1)
        if lam.size == 0:
            raise ValueError("`eigenvalues` must be non-empty")
        mult = as_float_array("multiplicity", self.multiplicity, shape=(lam.size,))
        err = as_float_array("initial_error", self.initial_error, shape=(lam.size,))
        for name, arr in (("eigenvalues", lam), ("multiplicity", mult), ("initial_error", err)):
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"`{name}` must be finite and >= 0, got min {arr.min():.3g}")
        if mult.sum() <= 0:
            raise ValueError("`multiplicity` must not be all zero")
        lmin = _real("min_loss", self.min_loss, allow_zero=True)
        for name, val in (("eigenvalues", lam), ("multiplicity", mult), ("initial_error", err),
                          ("min_loss", lmin)):
            if isinstance(val, np.ndarray):
                val.setflags(write=False)
            object.__setattr__(self, name, val)

    # -------------------------------------------------------------- constructors
    @classmethod
    def from_eigenvalues(
        cls,
        eigenvalues: Any,
        initial_error: Any,
        multiplicity: Any = None,
        min_loss: float = 0.0,
    ) -> LeastSquaresSpectrum:
        """Explicit eigenvalues ``(m,)``, squared initial errors ``(m,)`` and multiplicities
        ``(m,)`` (default 1 each: m = d distinct directions)."""
        lam = as_float_array("eigenvalues", eigenvalues, ndim=1)
        mult = np.ones_like(lam) if multiplicity is None else multiplicity
        return cls(lam, mult, initial_error, min_loss)

    @classmethod
    def from_data(cls, X: Any, y: Any, w0: Any = None) -> LeastSquaresSpectrum:
        """The exact spectrum of a data set, for sgdsim's ``LinearRegression(X, y)``.

        Parameters
        ----------
        X : array, shape ``(N, d)``;  y : array, shape ``(N,)``
        w0 : array, shape ``(d,)``, optional
            SGD's start (default zeros, as ``simulate(..., init=None)``).
        """
        x = as_float_array("X", X, ndim=2)
        n, d = x.shape
        yy = as_float_array("y", y, shape=(n,))
        w_start = np.zeros(d) if w0 is None else as_float_array("w0", w0, shape=(d,))
        lam, basis = np.linalg.eigh(x.T @ x / n)
        lam = np.clip(lam, 0.0, None)
        w_hat = np.linalg.lstsq(x, yy, rcond=None)[0]
        resid = x @ w_hat - yy
        coords = basis.T @ (w_start - w_hat)
        out = cls(lam, np.ones(d), coords**2, float(0.5 * np.mean(resid * resid)))
        for name, val in (("basis", basis), ("error_coordinates", coords), ("solution", w_hat)):
            val.setflags(write=False)
            object.__setattr__(out, name, val)
        return out

    @classmethod
    def marchenko_pastur(
        cls,
        dim: int,
        n_samples: int,
        *,
        feature_var: float = 1.0,
        signal: float = 1.0,
        noise_std: float = 0.0,
        n_points: int = 2000,
    ) -> LeastSquaresSpectrum:
        """Gaussian data ``X_ij ~ N(0, v)``, ``y = Xw* + σε``, start with ``‖w_0 − w*‖² = R``.

        The limiting spectrum of ``H = XᵀX/N`` is the Marchenko–Pastur law with ratio
        ``r = d/N`` (:func:`marchenko_pastur_density`; an atom ``d(1 − 1/r)`` at 0 when r > 1),
        discretized by the midpoint rule in ``λ = (a+b)/2 + (b−a)/2·cos θ`` (spectrally
        accurate for smooth integrands). With ``w_0 − w*`` isotropic the expected squared error
        per direction is ``R/d + σ²/(Nλ)`` (the least-squares noise ``(XᵀX)⁺Xᵀσε``), and
        ``L(ŵ) = σ²(1 − r)/2`` for r < 1, 0 otherwise ("SGD in the large", §2 setting: the
        ``R`` and ``R̃ = σ²`` terms of its forcing).

        Parameters
        ----------
        dim, n_samples : int
            d and N.
        feature_var : float
            Entry variance v of X.
        signal : float
            ``R = ‖w_0 − w*‖²``.
        noise_std : float
            Label-noise σ.
        n_points : int
            Quadrature points of the continuous part.
        """
        d = check_int("dim", dim, minimum=1)
        n = check_int("n_samples", n_samples, minimum=1)
        v = _real("feature_var", feature_var)
        big_r = _real("signal", signal, allow_zero=True)
        sigma = _real("noise_std", noise_std, allow_zero=True)
        k = check_int("n_points", n_points, minimum=2)
        r = d / n
        if math.isclose(r, 1.0) and sigma > 0:
            raise ValueError(
                "`dim` == `n_samples` with noise_std > 0: the least-squares error diverges at the "
                "hard edge λ → 0 (r = 1); choose d ≠ N"
            )
        a, b = v * (1 - math.sqrt(r)) ** 2, v * (1 + math.sqrt(r)) ** 2
        theta = np.pi * (np.arange(k) + 0.5) / k
        lam = 0.5 * (a + b) + 0.5 * (b - a) * np.cos(theta)
        dens = (0.5 * (b - a) * np.sin(theta)) ** 2 / (2 * np.pi * v * r * lam)
        mult = d * dens * np.pi / k
        mult *= d * min(1.0, 1.0 / r) / mult.sum()  # exact mass of the continuous part
        err = mult * (big_r / d + sigma**2 / (n * lam))
        lmin = 0.5 * sigma**2 * max(0.0, 1.0 - r)
        if r > 1:  # null space of H: its error never decays and never enters the loss
            lam = np.append(lam, 0.0)
            mult = np.append(mult, d * (1.0 - 1.0 / r))
            err = np.append(err, big_r * (1.0 - 1.0 / r))
        return cls(lam, mult, err, lmin)

    @classmethod
    def power_law(
        cls,
        dim: int,
        alpha: float,
        beta: float,
        *,
        noise_std: float = 0.0,
    ) -> LeastSquaresSpectrum:
        """``λ_j = j^{−2α}``, target ``b_j = j^{−β}``, start 0: ``c_j = j^{−2β}``, j = 1..d.

        The linear (no random features) version of the power-law model of Paquette, Paquette,
        Xiao & Pennington (2024): data ``x_j ~ j^{−α}·N(0, 1)``, target ``⟨x, b⟩ + σε``.
        ``min_loss = σ²/2`` is the streaming (population) floor.
        """
        d = check_int("dim", dim, minimum=1)
        a = _real("alpha", alpha)
        bta = _real("beta", beta)
        sigma = _real("noise_std", noise_std, allow_zero=True)
        j = np.arange(1, d + 1, dtype=np.float64)
        return cls(j ** (-2 * a), np.ones(d), j ** (-2 * bta), 0.5 * sigma**2)

    # -------------------------------------------------------------- summaries
    @property
    def dim(self) -> float:
        """d = Σ multiplicities."""
        return float(self.multiplicity.sum())

    @property
    def trace(self) -> float:
        """``tr H = Σ_j m_j λ_j``."""
        return float(self.multiplicity @ self.eigenvalues)

    @property
    def max_eigenvalue(self) -> float:
        """Largest λ_j with positive multiplicity."""
        return float(self.eigenvalues[self.multiplicity > 0].max())

    @property
    def intrinsic_dimension(self) -> float:
        """``tr(H)/λ_max``: how many directions share the gradient noise (d for H ∝ I)."""
        return self.trace / self.max_eigenvalue if self.max_eigenvalue > 0 else float("inf")

    @property
    def initial_loss(self) -> float:
        """``L(w_0) = L(ŵ) + ½ Σ_j λ_j c_j``."""
        return self.min_loss + 0.5 * float(self.eigenvalues @ self.initial_error)


def marchenko_pastur_density(x: Any, ratio: float, variance: float = 1.0) -> np.ndarray:
    """Continuous part of the Marchenko–Pastur density of ``XᵀX/N``, ``r = d/N``.

    ``p(x) = √((b − x)(x − a)) / (2π v r x)`` on ``[a, b] = v(1 ∓ √r)²`` (mass ``min(1, 1/r)``).
    """
    r = _real("ratio", ratio)
    v = _real("variance", variance)
    xx = as_float_array("x", x)
    a, b = v * (1 - math.sqrt(r)) ** 2, v * (1 + math.sqrt(r)) ** 2
    inside = (xx > a) & (xx < b)
    out = np.zeros_like(xx)
    xi = xx[inside]
    out[inside] = np.sqrt((b - xi) * (xi - a)) / (2 * np.pi * v * r * xi)
    return out


def power_law_risk_exponent(alpha: float, beta: float) -> dict[str, float]:
    """Time exponent of ``ψ(t) − L(ŵ)`` for the power-law spectrum, ``1 ≪ ηt ≪ d^{2α}``.

    With ``λ_j = j^{−2α}``, ``λ_j c_j = j^{−2α−2β}``: the forcing decays as ``t^{−ρ_F}``,
    ``ρ_F = (2α + 2β − 1)/(2α)`` (needs ``2α + 2β > 1``) and the kernel as ``t^{−ρ_K}``,
    ``ρ_K = 2 − 1/(2α)`` (the ``F_pp`` and ``K_pp`` terms of the 4+3-phases paper, whose risk
    is ``P ≍ F + K/(1 − ‖K‖)``). Below criticality the solution decays as the slower of the two
    (for ``ρ_K < ρ_F`` the convolution gives ``ψ ≈ K(t)·Σψ/(1 − ‖K‖)``, which needs
    ``ρ_F, ρ_K > 1``). Requires ``α > 1/2`` (trace of H bounded as d → ∞).

    The exponents are the same for both noise models (they differ at ``ηλ = O(1)`` only), but
    power laws have ``tr(H)/λ_max = O(1)``: compute their curves with
    ``noise="gaussian_streaming"`` (see :class:`LowIntrinsicDimensionWarning`).

    Returns
    -------
    dict with ``forcing`` ρ_F, ``kernel`` ρ_K, ``risk`` = min(ρ_F, ρ_K) and ``phase``: 0.0 when
    the forcing sets the rate (ρ_F ≤ ρ_K), 1.0 when the kernel (the SGD noise) does.
    """
    a = _real("alpha", alpha)
    b = _real("beta", beta)
    if a <= 0.5:
        raise ValueError(f"`alpha` must be > 1/2 (tr H bounded in d), got {alpha!r}")
    rho_f = (2 * a + 2 * b - 1) / (2 * a)
    rho_k = 2 - 1 / (2 * a)
    return {"forcing": rho_f, "kernel": rho_k, "risk": min(rho_f, rho_k),
            "phase": 0.0 if rho_f <= rho_k else 1.0}


# ------------------------------------------------------------------------------------ numerics
def _geometric_sums(q: np.ndarray, coeffs: np.ndarray, n: int) -> np.ndarray:
    """``S[k, c] = Σ_j coeffs[j, c] q_j^k`` for k < n, shape ``(n, C)``.

    With ``k = b·i + r`` (block length b): ``q^k = q^{b·i}·q^r``, so S is one matrix product of
    the ``(b, m)`` table ``q_j^r`` with the ``(m, blocks·C)`` matrix ``coeffs·q^{b·i}``.
    """
    block = min(_BLOCK, n)
    blocks = -(-n // block)
    table = np.power(q[None, :], np.arange(block, dtype=np.float64)[:, None])  # (block, m)
    starts = np.power(q[:, None], block * np.arange(blocks, dtype=np.float64)[None, :])
    rhs = (coeffs[:, None, :] * starts[:, :, None]).reshape(q.size, blocks * coeffs.shape[1])
    out = (table @ rhs).reshape(block, blocks, coeffs.shape[1]).transpose(1, 0, 2)
    return out.reshape(blocks * block, coeffs.shape[1])[:n]


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size * b.size < _FFT_MIN:
        return np.convolve(a, b)
    return scipy.signal.fftconvolve(a, b)


def _solve_renewal(g: np.ndarray, kappa: np.ndarray, scale: float) -> np.ndarray:
    """ψ_0 = g_0; ψ_k = scale·(g_k + Σ_{s<k} κ_{k−s} ψ_s) for k ≥ 1 (κ_0 unused).

    Divide and conquer: the left half's contribution to the right half is one convolution.
    """
    n = g.size
    acc = g.astype(np.float64).copy()
    psi = np.empty(n)

    def solve(lo: int, hi: int) -> None:
        if hi - lo <= _DIRECT_BASE:
            for k in range(lo, hi):
                if k > lo:  # this block's own earlier steps; the rest came by convolution
                    acc[k] += kappa[k - lo:0:-1] @ psi[lo:k]
                psi[k] = acc[k] if k == 0 else scale * acc[k]
            return
        mid = (lo + hi) // 2
        solve(lo, mid)
        conv = _convolve(psi[lo:mid], kappa[: hi - lo])
        acc[mid:hi] += conv[mid - lo: hi - lo]
        solve(mid, hi)

    solve(0, n)
    return psi


# ------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class HomogenizedSGD:
    """Homogenized SGD risk curves for ``sgd(lr)`` with batches of ``batch_size`` (see module).

    Parameters
    ----------
    spectrum : LeastSquaresSpectrum
    lr : float
        η, exactly as in ``sgdsim.sgd(lr)`` (the step on the *mean* loss; no 1/d or 1/N scaling).
    batch_size : int
        B, drawn with replacement (``sampling="with_replacement"``; B distinct indices would
        scale the noise by ``(N − B)/(N − 1)``, not modelled here).
    noise : {"homogenized", "gaussian_streaming"}
        The papers' homogenized noise ``(2L/B)H``, or that plus the rank-one term
        ``HeeᵀH/B`` (exact for streaming Gaussian features).
    time : {"discrete", "continuous"}
        The exact discrete renewal equation over SGD steps, or the papers' continuous-time
        Volterra equation with time ``t`` = steps.
    """

    spectrum: LeastSquaresSpectrum
    lr: float
    batch_size: int = 1
    noise: str = "homogenized"
    time: str = "discrete"

    def __post_init__(self) -> None:
        if not isinstance(self.spectrum, LeastSquaresSpectrum):
            raise TypeError(f"`spectrum` must be a LeastSquaresSpectrum, got {self.spectrum!r}")
        object.__setattr__(self, "lr", _real("lr", self.lr))
        check_int("batch_size", self.batch_size, minimum=1)
        check_choice("noise", self.noise, NOISE_MODELS)
        check_choice("time", self.time, _TIMES)

    # -------------------------------------------------------------- per-mode factors
    def _extra(self) -> np.ndarray:
        lam = self.spectrum.eigenvalues
        if self.noise == "gaussian_streaming":
            return (self.lr * lam) ** 2 / self.batch_size
        return np.zeros_like(lam)

    def decay_factors(self) -> np.ndarray:
        """Per-step factor of the second moment per mode, shape ``(m,)``: ``q_j`` (discrete)
        or ``exp(−ρ_j)`` (continuous)."""
        x = self.lr * self.spectrum.eigenvalues
        if self.time == "discrete":
            return (1.0 - x) ** 2 + self._extra()
        return np.exp(-(2 * x - self._extra()))

    def _one_minus_q(self) -> np.ndarray:
        """``1 − q_j`` (discrete) or the rate ``ρ_j`` (continuous), without cancellation."""
        x = self.lr * self.spectrum.eigenvalues
        base = x * (2.0 - x) if self.time == "discrete" else 2.0 * x
        return base - self._extra()

    def _mode_stable(self) -> np.ndarray:
        lam = self.spectrum.eigenvalues
        active = (self.spectrum.multiplicity > 0) & (lam > 0)
        return ~active | (self._one_minus_q() > 0)

    def kernel_norm(self) -> float:
        """``‖K‖ = Σ_m K_m`` (discrete) or ``∫_0^∞ K(t) dt`` (continuous); ``inf`` if a mode is
        unstable. The risk converges iff this is < 1 (Drusvyatskiy Part IV eq. (58))."""
        if not np.all(self._mode_stable()):
            return float("inf")
        s = self.spectrum
        lam, mult = s.eigenvalues, s.multiplicity
        keep = (lam > 0) & (mult > 0)
        denom = self._one_minus_q()[keep]
        return float((self.lr**2 / self.batch_size) * np.sum(mult[keep] * lam[keep] ** 2 / denom))

    def is_convergent(self) -> bool:
        """Whether ``‖K‖ < 1`` and every mode is stable."""
        return self.kernel_norm() < 1.0

    def stationary_loss(self) -> float:
        """``lim ψ = L(ŵ)/(1 − ‖K‖)`` (eq. (59)); ValueError above criticality."""
        self._check_intrinsic_dimension()
        norm = self.kernel_norm()
        if not norm < 1.0:
            raise ValueError(
                f"lr={self.lr} is at or above the critical learning rate "
                f"({critical_lr(self.spectrum, self.batch_size, noise=self.noise, time=self.time):.6g}"
                f"): kernel norm {norm:.4g} >= 1, the homogenized risk has no limit"
            )
        return self.spectrum.min_loss / (1.0 - norm)

    def _check_intrinsic_dimension(self) -> None:
        d_eff = self.spectrum.intrinsic_dimension
        if self.noise == "homogenized" and d_eff < _MIN_INTRINSIC_DIM:
            warnings.warn(
                f"homogenized noise assumes a high intrinsic dimension tr(H)/λ_max >> 1, got "
                f"{d_eff:.3g}: the dropped rank-one noise term HeeᵀH/B is then comparable to the "
                "kept one (error O(λ_max/tr H)); for Gaussian data use noise='gaussian_streaming'",
                LowIntrinsicDimensionWarning, stacklevel=3,
            )

    def _require_convergent(self, allow_divergent: bool) -> None:
        self._check_intrinsic_dimension()
        norm = self.kernel_norm()
        if norm < 1.0:
            return
        eta_c = critical_lr(self.spectrum, self.batch_size, noise=self.noise, time=self.time)
        msg = (
            f"lr={self.lr} violates the theory's stability assumption: kernel norm "
            f"{norm:.4g} >= 1 (critical lr {eta_c:.6g}); the expected risk grows without bound"
        )
        if not allow_divergent:
            raise ValueError(msg + " (pass allow_divergent=True to compute the growing curve)")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)

    # -------------------------------------------------------------- sequences
    def _sequences(self, n: int, h: float) -> tuple[np.ndarray, np.ndarray]:
        """Forcing f and kernel K on the grid t_k = k·h, k < n."""
        s = self.spectrum
        lam = s.eigenvalues
        q = self.decay_factors() ** h
        coeffs = np.stack([0.5 * lam * s.initial_error,
                           (self.lr**2 / self.batch_size) * s.multiplicity * lam**2], axis=1)
        sums = _geometric_sums(q, coeffs, n)
        return s.min_loss + sums[:, 0], sums[:, 1]

    def forcing(self, steps: int) -> np.ndarray:
        """``f_k``, k = 0..steps: the loss of the noiseless iteration (gradient descent /
        gradient flow) plus ``L(ŵ)``, shape ``(steps + 1,)``."""
        n = check_int("steps", steps, minimum=0) + 1
        return self._sequences(n, 1.0)[0]

    def kernel(self, steps: int) -> np.ndarray:
        """``K_m`` (discrete) or ``K(t = m)`` (continuous), m = 0..steps, shape ``(steps + 1,)``."""
        n = check_int("steps", steps, minimum=0) + 1
        return self._sequences(n, 1.0)[1]

    def _psi(self, n: int, h: float) -> tuple[np.ndarray, np.ndarray]:
        """(ψ, f) on the grid t_k = k·h, k < n."""
        f, k = self._sequences(n, h)
        if self.time == "discrete":  # ψ_k = f_k + Σ_{s<k} K_{k−1−s} ψ_s
            kappa = np.concatenate([[0.0], k[:-1]])
            return _solve_renewal(f, kappa, 1.0), f
        # trapezoid: ψ_k (1 − hK_0/2) = f_k + h(K_k ψ_0/2 + Σ_{0<s<k} K_{k−s} ψ_s)
        g = f.copy()
        g[1:] -= 0.5 * h * k[1:] * f[0]
        return _solve_renewal(g, h * k, 1.0 / (1.0 - 0.5 * h * k[0])), f

    def risk(self, steps: int, *, every: int = 1, allow_divergent: bool = False) -> dict[str, np.ndarray]:
        """Expected training loss ``ψ_k = E L(w_k)`` at steps 0, every, 2·every, …, ≤ steps.

        ``time="discrete"`` solves every step (exact for the homogenized model) and subsamples;
        ``time="continuous"`` solves the Volterra equation on the grid of spacing ``every``
        (trapezoidal rule: error O((every·η λ_max)²)).

        Raises
        ------
        ValueError
            If ``lr`` is at or above the critical learning rate (kernel norm ≥ 1), unless
            ``allow_divergent`` (then a RuntimeWarning names the violated assumption).

        Warns
        -----
        LowIntrinsicDimensionWarning
            With ``noise="homogenized"`` and ``tr(H)/λ_max < 10`` (e.g. power laws, small d).

        Returns
        -------
        dict with ``step`` (n,), ``loss`` (n,) = ψ, ``excess_loss`` (n,) = ψ − L(ŵ) and
        ``forcing`` (n,) = f (the noiseless part).
        """
        steps = check_int("steps", steps, minimum=0)
        every = check_int("every", every, minimum=1)
        self._require_convergent(allow_divergent)
        if self.time == "discrete":
            psi, f = self._psi(steps + 1, 1.0)
            psi, f = psi[::every], f[::every]
        else:
            psi, f = self._psi(steps // every + 1, float(every))
        step = np.arange(psi.size) * every
        return {"step": step, "loss": psi, "excess_loss": psi - self.spectrum.min_loss,
                "forcing": f}

    def test_risk(
        self,
        steps: int,
        population_cov: Any,
        target: Any,
        noise_var: float = 0.0,
        *,
        every: int = 1,
    ) -> dict[str, np.ndarray]:
        """Expected population risk ``E R(w_k)``, ``R(w) = ½(w − w*)ᵀΣ(w − w*) + ½σ²``.

        For a spectrum from :meth:`LeastSquaresSpectrum.from_data` (the eigenvectors are
        needed), homogenized noise, discrete time. With ``C_k = Cov(w_k)`` and the mean
        ``m_k = ŵ + V(1 − ηΛ)^k Vᵀ(w_0 − ŵ)`` (exact: the mean follows GD)::

            E R(w_k) = ½(m_k − w*)ᵀΣ(m_k − w*) + ½σ² + Σ_{s<k} K^test_{k−1−s} ψ_s,
            K^test_m = (η²/B) Σ_j (v_jᵀΣv_j) λ_j q_j^m

        (the generalization curve of homogenized SGD, Paquette, Paquette, Adlam & Pennington
        2022: a quadratic statistic driven by the training-loss solution ψ).

        Parameters
        ----------
        population_cov : array, shape ``(d, d)``
            Σ, the test data's feature covariance.
        target : array, shape ``(d,)``
            w*.
        noise_var : float
            σ², the test label-noise variance.

        Returns
        -------
        dict with ``step`` (n,) and ``test_risk`` (n,).
        """
        s = self.spectrum
        if s.basis is None:
            raise ValueError("test_risk needs the eigenvectors: build the spectrum with "
                             "LeastSquaresSpectrum.from_data")
        if self.noise != "homogenized" or self.time != "discrete":
            raise ValueError("test_risk is implemented for noise='homogenized', time='discrete' "
                             f"(got noise={self.noise!r}, time={self.time!r})")
        d = s.basis.shape[0]
        sigma_pop = as_float_array("population_cov", population_cov, shape=(d, d))
        w_star = as_float_array("target", target, shape=(d,))
        nv = _real("noise_var", noise_var, allow_zero=True)
        steps = check_int("steps", steps, minimum=0)
        every = check_int("every", every, minimum=1)
        self._require_convergent(False)
        psi = self._psi(steps + 1, 1.0)[0]
        lam, basis = s.eigenvalues, s.basis
        q = self.decay_factors()
        t_diag = np.sum(basis * (sigma_pop @ basis), axis=0)  # v_jᵀΣv_j
        k_test = _geometric_sums(
            q, ((self.lr**2 / self.batch_size) * t_diag * lam)[:, None], steps + 1
        )[:, 0]
        noise_part = np.concatenate([[0.0], _convolve(psi, k_test)[:steps]])
        rec = np.arange(0, steps + 1, every)
        factors = (1.0 - self.lr * lam)[None, :] ** rec[:, None]  # (n, d)
        mean_dev = (factors * s.error_coordinates[None, :]) @ basis.T + (s.solution - w_star)
        mean_part = 0.5 * np.sum((mean_dev @ sigma_pop) * mean_dev, axis=1)
        return {"step": rec, "test_risk": mean_part + 0.5 * nv + noise_part[rec]}


def critical_lr(
    spectrum: LeastSquaresSpectrum,
    batch_size: int = 1,
    *,
    noise: str = "homogenized",
    time: str = "discrete",
    rtol: float = 1e-12,
) -> float:
    """Largest lr with kernel norm < 1 (and every mode stable): the homogenized threshold.

    ``‖K‖`` increases with η, so the root of ``‖K‖(η) = 1`` is bracketed below the modes'
    stability edge (``2/λ_max`` discrete homogenized, ``2B/((B+1)λ_max)`` discrete Gaussian,
    ``2B/λ_max`` continuous Gaussian, none for continuous homogenized) and found by Brent's
    method; if ``‖K‖`` stays below 1 up to that edge, the edge is returned. Continuous
    homogenized: ``2B/tr(H)`` in closed form.
    """
    if not isinstance(spectrum, LeastSquaresSpectrum):
        raise TypeError(f"`spectrum` must be a LeastSquaresSpectrum, got {spectrum!r}")
    b = check_int("batch_size", batch_size, minimum=1)
    check_choice("noise", noise, NOISE_MODELS)
    check_choice("time", time, _TIMES)
    _real("rtol", rtol)
    lam_max = spectrum.max_eigenvalue
    if lam_max <= 0:
        return float("inf")
    if time == "continuous" and noise == "homogenized":
        return 2.0 * b / spectrum.trace
    if time == "discrete":
        edge = 2.0 / lam_max if noise == "homogenized" else 2.0 * b / ((b + 1) * lam_max)
    else:
        edge = 2.0 * b / lam_max

    def excess(eta: float) -> float:
        return HomogenizedSGD(spectrum, eta, b, noise, time).kernel_norm() - 1.0

    hi = edge * (1.0 - 1e-12)
    if excess(hi) < 0:
        return edge
    return float(scipy.optimize.brentq(excess, hi * 1e-12, hi, rtol=rtol, xtol=1e-300))
