"""Ensemble mean-squared displacement with bootstrap confidence bands.

The observable is the squared distance travelled by replica ``r`` since the first record,

.. math:: D_r(t) = \\lVert \\theta_r(t) - \\theta_r(t_0) \\rVert^2,

and its ensemble statistics over replicas: the mean ``MSD(t) = ⟨D(t)⟩`` and the median distance
``median_r sqrt(D_r(t))``. Uncertainty comes from resampling *replicas* (whole trajectories) with
replacement, so the strong correlation of one trajectory across times is kept intact.

Inputs are either positions ``(times, replicas[, dim])`` or squared displacements
``(times, replicas)`` (the engine's ``dist2`` record), as NumPy arrays or xarray DataArrays with
dims ``("step", "replica"[, "dim"])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, check_bool, check_choice, check_in_range, check_int

__all__ = [
    "MSDCurve",
    "bootstrap_statistic",
    "ensemble_msd",
    "log_spaced_indices",
    "log_spaced_steps",
    "squared_displacement",
]


@dataclass(frozen=True)
class MSDCurve:
    """Ensemble displacement statistics at positive times.

    Attributes
    ----------
    times : ndarray, shape (T,)
        Times (steps) since the origin record, strictly increasing and > 0.
    samples : ndarray, shape (T, R)
        Per-replica squared displacement ``D_r(t)``; kept for bootstrap fits.
    msd, msd_lo, msd_hi : ndarray, shape (T,)
        Mean of ``D`` over replicas and its bootstrap percentile interval.
    median_dist, median_lo, median_hi : ndarray, shape (T,)
        Median of ``sqrt(D)`` over replicas and its bootstrap percentile interval.
    level : float
        Two-sided confidence level of the intervals.
    """

    times: np.ndarray
    samples: np.ndarray
    msd: np.ndarray
    msd_lo: np.ndarray
    msd_hi: np.ndarray
    median_dist: np.ndarray
    median_lo: np.ndarray
    median_hi: np.ndarray
    level: float

    @property
    def n_replicas(self) -> int:
        return int(self.samples.shape[1])


def log_spaced_steps(
    t_max: int, n: int, *, t_min: int = 1, include_zero: bool = True
) -> np.ndarray:
    """Unique integer steps spaced evenly in ``log t`` between ``t_min`` and ``t_max``.

    Parameters
    ----------
    t_max, t_min : int
        Last and first positive step (``1 <= t_min <= t_max``).
    n : int
        Number of log-spaced points requested; duplicates after rounding are merged, so fewer
        may come back at small ``t``.
    include_zero : bool
        Prepend step 0 (the origin record).

    Returns
    -------
    ndarray of int64, shape (<= n + 1,), strictly increasing.
    """
    t_max = check_int("t_max", t_max, minimum=1)
    t_min = check_int("t_min", t_min, minimum=1)
    n = check_int("n", n, minimum=1)
    if t_min > t_max:
        raise ValueError(f"`t_min`={t_min} must not exceed `t_max`={t_max}")
    include_zero = check_bool("include_zero", include_zero)
    grid = np.unique(np.round(np.geomspace(t_min, t_max, n)).astype(np.int64))
    if include_zero:
        grid = np.concatenate([[0], grid])
    return grid


def log_spaced_indices(times: np.ndarray, n: int) -> np.ndarray:
    """Indices of the positive ``times`` nearest a log-spaced grid of ``n`` points.

    Returns unique, increasing indices into ``times`` (entries <= 0 are never chosen).
    """
    times = as_float_array("times", times, ndim=1)
    n = check_int("n", n, minimum=1)
    pos = np.flatnonzero(times > 0)
    if pos.size == 0:
        raise ValueError("`times` has no positive entries to choose from")
    lt = np.log(times[pos])
    grid = np.linspace(lt[0], lt[-1], n)
    nearest = np.abs(lt[None, :] - grid[:, None]).argmin(axis=1)
    return pos[np.unique(nearest)]


def squared_displacement(positions: Any, *, origin: int = 0) -> np.ndarray:
    """``‖x_r(t) − x_r(t_origin)‖²`` from positions ``(times, replicas[, dim])``.

    Returns
    -------
    ndarray, shape (times, replicas)
    """
    x = as_float_array("positions", positions)
    if x.ndim not in (2, 3):
        raise ValueError(
            "`positions` must have shape (times, replicas) or (times, replicas, dim), "
            f"got {x.shape}"
        )
    origin = check_int("origin", origin, minimum=0)
    if origin >= x.shape[0]:
        raise ValueError(f"`origin`={origin} is out of range for {x.shape[0]} time records")
    d = x - x[origin : origin + 1]
    return d * d if x.ndim == 2 else np.einsum("trd,trd->tr", d, d)


def bootstrap_statistic(
    samples: np.ndarray,
    *,
    statistic: str = "mean",
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Replica-bootstrap replicates of the ensemble statistic of ``samples`` ``(T, R)``.

    Each replicate draws ``R`` replica indices with replacement (the same draw for every time, so
    the curve's correlation across times is preserved) and takes the mean or median over them.

    Returns
    -------
    ndarray, shape (n_boot, T)
    """
    samples = as_float_array("samples", samples, ndim=2)
    check_choice("statistic", statistic, ("mean", "median"))
    n_boot = check_int("n_boot", n_boot, minimum=1)
    rng = np.random.default_rng(seed)
    n_t, n_r = samples.shape
    if statistic == "mean":
        # multinomial counts make the resampled mean one matrix product: (B, R) @ (R, T)
        counts = rng.multinomial(n_r, np.full(n_r, 1.0 / n_r), size=n_boot).astype(np.float64)
        return counts @ samples.T / n_r
    out = np.empty((n_boot, n_t))
    for b in range(n_boot):
        idx = rng.integers(0, n_r, size=n_r)
        out[b] = np.median(samples[:, idx], axis=1)
    return out


def _unpack(data: Any, times: Any, kind: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (values, times, kind) with kind resolved to 'positions' or 'dist2'."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a core dependency
        xr = None
    if xr is not None and isinstance(data, xr.DataArray):
        if data.dims[:2] != ("step", "replica"):
            raise ValueError(
                f"`data` DataArray must have dims ('step', 'replica'[, 'dim']), got {data.dims}"
            )
        if kind == "auto":
            if data.ndim == 3:
                kind = "positions"
            elif data.name == "dist2":
                kind = "dist2"
            else:
                raise ValueError(
                    f"cannot tell whether DataArray {data.name!r} holds positions or squared "
                    "displacements; pass kind='positions' or kind='dist2'"
                )
        if times is None:
            times = data["step"].values if "step" in data.coords else np.arange(data.shape[0])
        values = data.values
    else:
        values = np.asarray(data)
        if kind == "auto":
            if values.ndim == 3:
                kind = "positions"
            else:
                raise ValueError(
                    f"cannot tell whether an array of shape {values.shape} holds positions or "
                    "squared displacements; pass kind='positions' or kind='dist2'"
                )
        if times is None:
            raise ValueError("`times` is required when `data` is a plain array")
    values = as_float_array("data", values)
    times = as_float_array("times", times, ndim=1)
    if values.ndim < 2 or values.shape[0] != times.shape[0]:
        raise ValueError(
            f"`data` must have shape (times, replicas[, dim]) with {times.shape[0]} time rows "
            f"(len(times)), got {values.shape}"
        )
    return values, times, kind


def ensemble_msd(
    data: Any,
    times: Any = None,
    *,
    kind: str = "auto",
    n_points: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> MSDCurve:
    """Ensemble MSD ``⟨‖θ_t − θ_0‖²⟩`` and median distance, with replica-bootstrap intervals.

    Parameters
    ----------
    data : array or xarray.DataArray
        ``kind='positions'``: positions, shape ``(times, replicas[, dim])``; the displacement is
        taken from the first row (``times[0]``, the origin).
        ``kind='dist2'``: squared displacement since the origin, shape ``(times, replicas)``
        (e.g. ``simulate(...)['dist2']``).
        ``kind='auto'``: 3-D data are positions, a DataArray named ``dist2`` is squared
        displacement; anything else must be told.
    times : array, shape (times,), optional
        Record times (steps), strictly increasing and >= 0. Taken from the ``step`` coordinate for
        DataArrays. Rows at times <= the origin time are dropped from the result (the MSD there
        is zero); the returned times are measured from the origin, so they are > 0.
    n_points : int, optional
        Keep only the records nearest ``n_points`` log-spaced times (default: keep all).
    n_boot : int
        Bootstrap replicates over replicas (0 disables the intervals: they are then NaN).
    level : float
        Two-sided confidence level of the percentile intervals, in (0, 1).
    seed : int or Generator
        Seed of the bootstrap.

    Returns
    -------
    MSDCurve
    """
    check_choice("kind", kind, ("auto", "positions", "dist2"))
    level = check_in_range("level", level, 0.0, 1.0, low_open=True, high_open=True)
    n_boot = check_int("n_boot", n_boot, minimum=0)
    values, times, kind = _unpack(data, times, kind)
    if np.any(times < 0):
        raise ValueError(f"`times` must be >= 0, got minimum {times.min()!r}")
    if np.any(np.diff(times) <= 0):
        raise ValueError("`times` must be strictly increasing")
    if kind == "positions":
        sq = squared_displacement(values)
    else:
        if values.ndim != 2:
            raise ValueError(
                f"squared displacements must have shape (times, replicas), got {values.shape}"
            )
        if np.any(values < 0):
            raise ValueError("squared displacements (`data` with kind='dist2') must be >= 0")
        sq = values
    rel_t = times - times[0]
    keep = np.flatnonzero(rel_t > 0)
    if keep.size == 0:
        raise ValueError("no record after the origin: `times` must contain positive entries")
    if n_points is not None:
        n_points = check_int("n_points", n_points, minimum=1)
        keep = log_spaced_indices(rel_t, n_points)
    t = rel_t[keep]
    sq = np.ascontiguousarray(sq[keep])
    msd = sq.mean(axis=1)
    med = np.sqrt(np.median(sq, axis=1))
    if n_boot > 0 and sq.shape[1] > 1:
        rng = np.random.default_rng(seed)
        q = [50 * (1 - level), 50 * (1 + level)]
        bm = bootstrap_statistic(sq, statistic="mean", n_boot=n_boot, seed=rng)
        bmed = np.sqrt(bootstrap_statistic(sq, statistic="median", n_boot=n_boot, seed=rng))
        msd_lo, msd_hi = np.percentile(bm, q, axis=0)
        med_lo, med_hi = np.percentile(bmed, q, axis=0)
    else:
        msd_lo = msd_hi = med_lo = med_hi = np.full_like(msd, np.nan)
    return MSDCurve(
        times=t,
        samples=sq,
        msd=msd,
        msd_lo=msd_lo,
        msd_hi=msd_hi,
        median_dist=med,
        median_lo=med_lo,
        median_hi=med_hi,
        level=level,
    )
