"""The SDE ensemble integrators on an array namespace: the NumPy reference, and CuPy on GPUs.

The schemes of :mod:`sgdsim.theory.sde` (Euler–Maruyama, BAOAB, the exact OU transition) written
once as whole-ensemble formulas on arrays of shape (replicas, d) over a namespace ``xp`` (NumPy or
CuPy), so the CPU tests run the GPU code path line for line. The public entry points are the
functions of :mod:`sgdsim.theory.sde` with ``backend="numpy"`` or ``backend="cupy"``; this module
only advances prepared arrays.

Precision: float64 by default; ``dtype="float32"`` halves memory traffic (what bounds these
loops on a GPU) at the cost of ~6e-8 relative rounding per operation: an increment smaller than
~6e-8·|x| is lost, so use float32 only while ``dt·|v|`` (BAOAB's drift) and the per-step noise
stay well above that. Coefficients are rounded to float32 too (e.g. ``e^{−γh}``, whose distance
from 1 sets the friction: keep ``γh ≫ 1e-7``). Records and returned arrays are float64.

Randomness: :class:`~sgdsim.backends.counter_rng.CounterRNG` streams (counter-based SplitMix64
with Box–Muller normals), one per path, the same on NumPy and CuPy and independent of the number of
paths. They are not the Numba backend's xoshiro streams: the array and Numba backends agree in
law, not bitwise. Records go to host arrays as they are taken (one device-to-host copy per record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from sgdsim.backends.array_backend import _to_host, quiet_overflow
from sgdsim.backends.counter_rng import CounterRNG

__all__ = ["run_baoab", "run_em", "run_exact_ou"]

_SPAWN_KEY = 3  # separates SDE streams from simulate()'s (spawn key 1) under one seed


class Records:
    """Host record buffers and the rule that fills them (as the Numba kernels' ``_record``)."""

    def __init__(self, rec_x, rec_v, rec_s, codes, every: int):
        self.rec_x, self.rec_v, self.rec_s = rec_x, rec_v, rec_s
        self.codes = [int(c) for c in codes]
        self.every = every
        self.x0 = None

    def take(self, k: int, x, v) -> None:
        """Record positions ``x`` and velocities ``v`` (or None) at record index ``k``."""
        if self.x0 is None:
            self.x0 = x.copy()
        if self.rec_x.shape[0]:
            self.rec_x[k] = _to_host(x)
        if self.rec_v.shape[0]:
            self.rec_v[k] = _to_host(v)
        for j, code in enumerate(self.codes):  # 0: ‖x − x0‖², 1: ‖x‖², 2: ‖v‖²
            y = x - self.x0 if code == 0 else (x if code == 1 else v)
            self.rec_s[k, :, j] = _to_host((y * y).sum(axis=1))

    def due(self, step: int) -> int | None:
        """The record index of ``step`` (1-based) if it is recorded, else None."""
        return step // self.every if step % self.every == 0 else None


Pieces = Iterable[tuple[int, int]]  # (first step, number of steps): sgdsim._progress.chunks


def _steps(pieces: Pieces, xp) -> Iterator[int]:
    """Step numbers 1, 2, … of a run given in pieces (advancing a progress bar between them);
    overflow in a diverging path stays quiet (it is detected and reported)."""
    with quiet_overflow(xp):
        for start, n in pieces:
            yield from range(start + 1, start + n + 1)


def noise_map(xp, nd: np.ndarray, nf: np.ndarray, diag: bool, dtype=np.float64) -> Callable:
    """``z ↦ z Nᵀ`` row-wise for the factor ``N = diag(nd)`` if ``diag`` else ``nf``."""
    if diag:
        scale = xp.asarray(nd, dtype=dtype)
        return lambda z: z * scale
    nf_t = xp.asarray(np.ascontiguousarray(nf.T), dtype=dtype)
    return lambda z: z @ nf_t


def linear_field(xp, M: np.ndarray, x_star: np.ndarray, dtype=np.float64) -> Callable:
    """``X ↦ (X − x*) Mᵀ`` row-wise (an elementwise product when ``M`` is diagonal)."""
    xs = xp.asarray(x_star, dtype=dtype)
    if not np.any(M - np.diag(np.diag(M))):
        diag = xp.asarray(np.diag(M).copy(), dtype=dtype)
        return lambda X: (X - xs) * diag
    m_t = xp.asarray(np.ascontiguousarray(M.T), dtype=dtype)
    return lambda X: (X - xs) @ m_t


def rff_field(xp, W: np.ndarray, b: np.ndarray, amp: np.ndarray, dtype=np.float64) -> Callable:
    """``X ↦ ∇f(X)`` row-wise for the random-feature potential ``f = Σ_m a_m cos(W_m·x + b_m)``."""
    w, bb, a = (xp.asarray(v, dtype=dtype) for v in (W, b, amp))
    return lambda X: (-a * xp.sin(X @ w.T + bb)) @ w


def _normals(rng: CounterRNG, n: int, dtype):
    z = rng.normal(n)
    return z if z.dtype == dtype else z.astype(dtype)


class Divergence:
    """The first step at which each path's squared state norm is non-finite or above ``thr``,
    kept on the device (no synchronization per step)."""

    def __init__(self, xp, replicas: int, thr: float):
        self.xp, self.thr = xp, thr
        self.step = xp.full(replicas, -1, dtype=xp.int64)

    def check(self, step: int, *parts) -> None:
        norm2 = sum((p.astype(self.xp.float64) ** 2).sum(axis=1) for p in parts)
        fresh = (self.step < 0) & ~(norm2 <= self.thr)
        self.step = self.xp.where(fresh, step, self.step)

    def host(self) -> np.ndarray:
        return np.asarray(_to_host(self.step), dtype=np.int64)


def run_em(xp, X, d: int, drift: Callable, noise: Callable, dt: float, pieces: Pieces, seed: int,
           records: Records, thr: float):  # fmt: skip
    """Euler–Maruyama ``X ← X + dt·f(X) + N ξ`` on the state ``X`` (R, n), positions first
    (``d`` of them; the rest are velocities). Returns the final state (device array) and the
    divergence steps (host, −1 = never; threshold ``thr`` on the squared state norm)."""
    rng = CounterRNG(seed, X.shape[0], xp, spawn_key=_SPAWN_KEY)
    n = X.shape[1]
    second = n > d
    dt = X.dtype.type(dt)
    records.take(0, X[:, :d], X[:, d:] if second else None)
    div = Divergence(xp, X.shape[0], thr)
    for step in _steps(pieces, xp):
        X += dt * drift(X)
        X += noise(_normals(rng, n, X.dtype))
        div.check(step, X)
        k = records.due(step)
        if k is not None:
            records.take(k, X[:, :d], X[:, d:] if second else None)
    return X, div.host()


def run_baoab(xp, X, V, force: Callable, c, noise: Callable, dt: float, pieces: Pieces, seed: int,
              records: Records, thr: float):  # fmt: skip
    """BAOAB on positions ``X`` and velocities ``V`` (R, d) with ``force(X) = ∇U(X)`` row-wise,
    O-step decay ``c`` (d,) and noise map ``noise``. Returns the final ``(X, V)`` and the
    divergence steps (as :func:`run_em`)."""
    rng = CounterRNG(seed, X.shape[0], xp, spawn_key=_SPAWN_KEY)
    c = xp.asarray(c, dtype=X.dtype)
    h = X.dtype.type(0.5 * dt)
    G = force(X)
    records.take(0, X, V)
    div = Divergence(xp, X.shape[0], thr)
    for step in _steps(pieces, xp):
        V -= h * G  # B
        X += h * V  # A
        V *= c  # O: e^{−Γh} v + N(0, Σ_O)
        V += noise(_normals(rng, X.shape[1], X.dtype))
        X += h * V  # A
        G = force(X)  # first-same-as-last: also the next step's first B
        V -= h * G  # B
        div.check(step, X, V)
        k = records.due(step)
        if k is not None:
            records.take(k, X, V)
    return X, V, div.host()


def run_exact_ou(xp, X, d: int, E: np.ndarray, nf: np.ndarray, x_star: np.ndarray, pieces: Pieces,
                 seed: int, records: Records, thr: float):  # fmt: skip
    """The exact OU transition ``Y ← Y Eᵀ + ξ Nᵀ`` on ``Y = X − x*`` (R, n), positions first.
    Returns the final state and the divergence steps (as :func:`run_em`)."""
    rng = CounterRNG(seed, X.shape[0], xp, spawn_key=_SPAWN_KEY)
    xs = xp.asarray(x_star, dtype=X.dtype)
    e_t = xp.asarray(np.ascontiguousarray(E.T), dtype=X.dtype)
    n_t = xp.asarray(np.ascontiguousarray(nf.T), dtype=X.dtype)
    n = X.shape[1]
    second = n > d
    Y = X - xs
    records.take(0, X[:, :d], X[:, d:] if second else None)
    div = Divergence(xp, X.shape[0], thr)
    for step in _steps(pieces, xp):
        Y = Y @ e_t + _normals(rng, n, X.dtype) @ n_t
        X = Y + xs
        div.check(step, X)
        k = records.due(step)
        if k is not None:
            records.take(k, X[:, :d], X[:, d:] if second else None)
    return X, div.host()
