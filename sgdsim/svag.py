"""How far is SGD from its SDE? The SVAG family and its ℓ → ∞ extrapolation.

Li, Malladi & Arora (2021, "On the validity of modeling SGD with stochastic differential
equations") define SVAG: learning rate η/ℓ and the gradient ``½(1+√(2ℓ−1)) g₁ + ½(1−√(2ℓ−1)) g₂``
of two independent minibatch gradients (mean ∇L, noise covariance ℓ·Σ), so that ℓ·k SVAG steps
span the SDE time ``t = kη`` of k SGD steps. As ℓ → ∞ the SVAG law tends to the SDE
``dθ = −∇L dt + √η Σ^{1/2} dW`` with weak error O(1/ℓ); ℓ = 1 is SGD itself. Their test of the
SDE model: run SVAG at a few ℓ and see whether the observable at ℓ = 1 already sits at the limit.

:func:`svag_report` runs ``simulate(..., svag=ℓ)`` at each ℓ (independent ensembles, one derived
seed each), fits ``v(ℓ) = v_∞ + b/ℓ`` by weighted least squares (:func:`extrapolate`) and reports
the ℓ = 1 gap ``v(1) − v_∞`` with its standard error. Verdict rule (stated, not the paper's
number): the SDE is a *valid* model of this observable when the gap is, at two standard errors,
within ``tol·|v_∞|`` (default 10%). :func:`fit_weak_order` fits the order p of
``|v(ℓ) − v_SDE| ∝ ℓ^{−p}`` against a known SDE value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdsim._validation import as_float_array, check_int, check_positive
from sgdsim.optim import SGD
from sgdsim.simulate import simulate

__all__ = ["SVAGReport", "extrapolate", "fit_weak_order", "svag_report"]

_RECORDED = ("loss", "dist2")


def _check_series(ells: Any, values: Any, ses: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ell = as_float_array("ells", ells)
    v = as_float_array("values", values)
    s = as_float_array("ses", ses)
    if ell.ndim != 1 or ell.shape != v.shape or ell.shape != s.shape:
        raise ValueError(f"`ells`, `values` and `ses` must be 1-d of one length, got shapes "
                         f"{ell.shape}, {v.shape}, {s.shape}")
    if np.any(ell < 1) or len(np.unique(ell)) < 2:
        raise ValueError(f"`ells` must hold at least two distinct values ≥ 1, got {ell.tolist()}")
    if np.any(s <= 0):
        raise ValueError(f"`ses` (standard errors) must be > 0, got {s.tolist()}")
    return ell, v, s


def _wls_weights(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Rows of the weighted least-squares estimator of ``(a, b)`` in ``y = a + b·x``: (2, n)."""
    A = np.column_stack([np.ones_like(x), x]) / s[:, None]
    return np.linalg.solve(A.T @ A, A.T) / s[None, :]


def extrapolate(ells: Sequence[float], values: Sequence[float],
                ses: Sequence[float]) -> tuple[float, float, np.ndarray]:
    """Weighted least-squares fit of ``v(ℓ) = v_∞ + b/ℓ`` (the O(1/ℓ) weak error).

    Returns ``(v_inf, b, cov)`` with ``cov`` the (2, 2) covariance of ``(v_inf, b)`` from the
    standard errors ``ses`` of independent estimates. Exact on noiseless data of that form.
    """
    ell, v, s = _check_series(ells, values, ses)
    W = _wls_weights(1.0 / ell, s)
    a, b = W @ v
    return float(a), float(b), (W * s**2) @ W.T


def fit_weak_order(ells: Sequence[float], errors: Sequence[float],
                   ses: Sequence[float], *, z: float = 1.96) -> tuple[float, tuple[float, float]]:
    """Order p of a weak error ``|e(ℓ)| ∝ ℓ^{−p}``: weighted least squares of ``log|e|`` on
    ``log ℓ`` (delta-method weights ``se/|e|``). Returns ``(p, (low, high))``, the interval
    ``p ± z·SE``. Every error must be resolved (``|e| > 2·se``): an unresolved one has no log."""
    ell, e, s = _check_series(ells, errors, ses)
    if np.any(np.abs(e) <= 2 * s):
        raise ValueError(f"every |error| must exceed 2 standard errors to fit an order, got "
                         f"errors {e.tolist()} with SEs {s.tolist()}")
    ls = s / np.abs(e)
    W = _wls_weights(np.log(ell), ls)
    slope = float(W[1] @ np.log(np.abs(e)))
    se = float(np.sqrt(np.sum(W[1] ** 2 * ls**2)))
    return -slope, (-slope - z * se, -slope + z * se)


@dataclass(frozen=True)
class SVAGReport:
    """The SVAG family's values of one observable at SDE time ``time`` and its ℓ → ∞ limit.

    ``ells``, ``values``, ``ses``: ℓ, ensemble mean and its standard error (arrays, one per ℓ);
    ``limit``, ``limit_se``: the extrapolated SDE value; ``slope``: b in ``v_∞ + b/ℓ``;
    ``gap``, ``gap_se``: ``v(1) − v_∞`` (SGD's distance from the SDE) and its SE; ``tol``: the
    relative tolerance of the verdict; ``valid``: ``|gap| − 2·gap_se ≤ tol·|v_∞|``.
    """

    observable: str
    time: float
    ells: np.ndarray
    values: np.ndarray
    ses: np.ndarray
    limit: float
    limit_se: float
    slope: float
    gap: float
    gap_se: float
    tol: float
    valid: bool

    @property
    def relative_gap(self) -> float:
        """``|v(1) − v_∞| / |v_∞|`` (inf when the limit is 0)."""
        return abs(self.gap) / abs(self.limit) if self.limit != 0 else float("inf")

    def summary(self) -> str:
        """One line: the verdict and the numbers behind it."""
        word = "valid" if self.valid else "NOT valid"
        return (f"SDE {word} for {self.observable} at t = {self.time:g}: SGD (ℓ=1) "
                f"{self.values[0]:.5g} ± {self.ses[0]:.2g}, SDE limit {self.limit:.5g} ± "
                f"{self.limit_se:.2g}, gap {self.gap:+.4g} ± {self.gap_se:.2g} "
                f"({100 * self.relative_gap:.1f}% vs tol {100 * self.tol:g}%)")

    def plot(self, ax=None):
        """v(ℓ) against 1/ℓ with error bars and the fitted line to 1/ℓ = 0 (the SDE)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        x = 1.0 / self.ells
        ax.errorbar(x, self.values, yerr=2 * self.ses, fmt="o", label="SVAG (±2 SE)")
        grid = np.linspace(0.0, 1.0, 50)
        ax.plot(grid, self.limit + self.slope * grid, "k--", label="fit v∞ + b/ℓ")
        ax.errorbar([0.0], [self.limit], yerr=[2 * self.limit_se], fmt="s", color="C3",
                    label="SDE limit (ℓ → ∞)")
        ax.set_xlabel("1/ℓ")
        ax.set_ylabel(f"E[{self.observable}] at t = {self.time:g}")
        ax.set_title("SGD (1/ℓ = 1) vs its SDE (1/ℓ = 0): " + ("valid" if self.valid else "not valid"))
        ax.legend(fontsize=8)
        return ax


def svag_report(
    problem,
    optimizer: SGD,
    *,
    steps: int,
    ells: Sequence[float] = (1, 2, 4, 8),
    observable: str | Callable[[np.ndarray], np.ndarray] = "loss",
    replicas: int = 4096,
    batch_size: int | None = None,
    sampling: str | None = None,
    init: Any = None,
    seed: int = 0,
    tol: float = 0.1,
    backend: str = "numpy",
    dtype: str = "float64",
) -> SVAGReport:
    """Run SVAG at each ℓ to SDE time ``steps·η`` and report SGD's distance from the SDE limit.

    Parameters
    ----------
    problem, optimizer, batch_size, sampling, init, backend, dtype
        As for :func:`sgdsim.simulate` (plain SGD, constant lr, an array backend).
    steps : int
        SGD steps T; each ℓ runs ``ℓ·T`` SVAG steps (ℓ must then be an integer).
    ells : sequence of int
        The family; must contain 1 (SGD) and at least two values.
    observable : "loss" | "dist2" | callable
        Full-batch loss or ‖θ − θ₀‖² at the end, or ``f(theta)``: final parameters (R, d) to
        (R,) values (in the problem's coordinates).
    replicas : int
        Ensemble size per ℓ (standard errors shrink as 1/√replicas).
    seed : int
        Ensemble ℓ_i runs with a seed derived from ``(seed, i)``.
    tol : float
        Relative tolerance of the verdict (see :class:`SVAGReport`).
    """
    steps = check_int("steps", steps, minimum=1)
    replicas = check_int("replicas", replicas, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    tol = check_positive("tol", tol)
    if not isinstance(optimizer, SGD):
        raise TypeError(f"`optimizer` must come from sgdsim.sgd(...), got {optimizer!r}")
    if not optimizer.lr.description.startswith("constant("):
        raise ValueError(f"`optimizer` must have a constant learning rate (the SDE time is steps·η), "
                         f"got lr={optimizer.lr.description}")
    lr = float(optimizer.lr.values(1)[0])
    ell_list = [check_int("ells", e, minimum=1) for e in np.atleast_1d(np.asarray(ells, dtype=object))]
    if 1 not in ell_list or len(set(ell_list)) < 2:
        raise ValueError(f"`ells` must contain 1 (SGD itself) and at least one ℓ > 1, got {ells!r}")
    if isinstance(observable, str):
        if observable not in _RECORDED:
            raise ValueError(f"`observable` must be one of {_RECORDED} or a callable, got {observable!r}")
        name, record = observable, (observable,)
    elif callable(observable):
        name, record = getattr(observable, "__name__", "f(θ)"), ("loss",)
    else:
        raise TypeError(f"`observable` must be one of {_RECORDED} or a callable, got {observable!r}")

    ell_list = sorted(set(ell_list))
    means, ses = [], []
    for i, ell in enumerate(ell_list):
        run_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        traj = simulate(problem, optimizer, steps=steps * ell, replicas=replicas, batch_size=batch_size,
                        sampling=sampling, seed=run_seed, init=init, record=record, every=steps * ell,
                        backend=backend, dtype=dtype, svag=ell, progress=False)
        if isinstance(observable, str):
            vals = np.asarray(traj.dataset[observable].values)[..., -1].ravel()
        else:
            vals = np.asarray(observable(traj.final_params), dtype=float)
            if vals.shape != (replicas,):
                raise ValueError(f"`observable` must map (R, d) parameters to (R,) values, "
                                 f"got shape {vals.shape}")
        if not np.all(np.isfinite(vals)):
            raise FloatingPointError(f"non-finite {name} at ℓ = {ell}: the run diverged (lower the lr)")
        means.append(vals.mean())
        ses.append(max(vals.std(ddof=1) / np.sqrt(replicas), np.finfo(float).tiny))
    ell_arr, v, s = np.array(ell_list, float), np.array(means), np.array(ses)
    limit, slope, cov = extrapolate(ell_arr, v, s)
    W = _wls_weights(1.0 / ell_arr, s)
    c = np.eye(len(v))[0] - W[0]  # v(1) − v_∞ as a linear map of the independent estimates
    gap = float(c @ v)
    gap_se = float(np.sqrt(np.sum(c**2 * s**2)))
    valid = abs(gap) - 2 * gap_se <= tol * abs(limit)
    return SVAGReport(name, steps * lr, ell_arr, v, s, limit,
                      float(np.sqrt(cov[0, 0])), slope, gap, gap_se, float(tol), bool(valid))
