"""The array backends of the SDE integrators (:mod:`sgdsim.sde`): NumPy, and CuPy on GPUs.

The schemes (Euler–Maruyama, BAOAB, the exact OU transition) written once as whole-ensemble
formulas on arrays of shape (replicas, d) over a namespace ``xp`` (NumPy or CuPy), so the CPU
tests run the GPU code path line for line. :class:`ArraySDERunner` is the runner contract of
:mod:`sgdsim.backends.base` (``advance(state, start, n_steps, records) -> state``).

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

from collections.abc import Callable

import numpy as np

from sgdsim.backends.base import (
    DivergenceTracker,
    SDERecords,
    SDESpec,
    SDEState,
    quiet_overflow,
    to_host,
)
from sgdsim.backends.counter_rng import CounterRNG
from sgdsim.fields import linear_field, noise_map, rff_field

__all__ = ["ArraySDERunner"]

_SPAWN_KEY = 3  # separates SDE streams from simulate()'s (spawn key 1) under one seed


def _normals(rng: CounterRNG, n: int, dtype):
    z = rng.normal(n)
    return z if z.dtype == dtype else z.astype(dtype)


def _batched_grad(xp, grad: Callable, X) -> Callable:
    """A user gradient for the array backends: called on the whole ensemble, (R, d) → (R, d)."""
    if not callable(grad):
        raise TypeError(f"`model` must be a model or a gradient function, got {type(grad).__name__}")
    try:
        g = grad(xp.asarray(X))
    except Exception as exc:
        raise TypeError(
            "on the array backends the gradient is called on the whole ensemble, "
            f"grad(X) with X of shape {X.shape}: it raised {exc!r}"
        ) from exc
    if getattr(g, "shape", None) != X.shape:
        raise ValueError(
            f"`grad` must map shape {X.shape} to {X.shape} on the array backends, "
            f"got {getattr(g, 'shape', type(g).__name__)}"
        )
    return grad


class ArraySDERunner:
    """Whole-ensemble SDE steps on the array namespace ``xp``."""

    name = "numpy"
    supports_float32 = True

    def __init__(self, spec: SDESpec, xp=np):
        self.xp, self.spec = xp, spec
        ftype = spec.dtype
        pot = spec.potential
        a = pot.arrays
        if pot.kind == "linear" and spec.method != "exact_ou":
            self.field = linear_field(xp, a["M"], a["x_star"], ftype)
        elif pot.kind == "rff":
            self.field = rff_field(xp, a["W"], a["b"], a["amp"])
        elif pot.kind == "custom":
            if xp is not np:
                raise ValueError(
                    "a CustomProblem's gradient runs on the host: use backend='numpy' or 'numba'"
                )
            self.field = pot.problem.grad_batch
        elif pot.kind == "user":
            self.field = _batched_grad(xp, pot.problem, spec.x0.astype(ftype))
        if spec.method == "exact_ou":
            self.x_star = xp.asarray(a["x_star"], dtype=ftype)
            self.e_t = xp.asarray(np.ascontiguousarray(a["M"].T), dtype=ftype)
            self.n_t = xp.asarray(np.ascontiguousarray(spec.nf.T), dtype=ftype)
        else:
            self.noise = noise_map(xp, spec.nd, spec.nf, spec.diag, ftype)
        if spec.method == "baoab":
            self.c = xp.asarray(spec.c, dtype=ftype)
        self.rng = CounterRNG(spec.seed, spec.x0.shape[0], xp, spawn_key=_SPAWN_KEY)

    def init(self) -> SDEState:
        """The start state on the device, in the run dtype; fresh streams, no divergence."""
        xp, s = self.xp, self.spec
        X = xp.asarray(s.x0, dtype=s.dtype)
        V = None if s.v0 is None else xp.asarray(s.v0, dtype=s.dtype)
        carry = None
        if s.method == "baoab":
            carry = self.field(X)
        elif s.method == "exact_ou":
            carry = X - self.x_star
        return SDEState(X, V, xp.full(X.shape[0], -1, dtype=xp.int64), 0, carry)

    def advance(self, state: SDEState, start: int, n_steps: int, rec: SDERecords) -> SDEState:
        """Steps ``start+1 … start+n_steps`` from ``state``; records due are written to ``rec``."""
        xp, d = self.xp, self.spec.n_pos
        X, V, G = state.x, state.v, state.carry
        if start == 0:
            if self.spec.method == "baoab":
                rec.take(0, X, V)
            else:
                rec.take(0, X[:, :d], X[:, d:] if X.shape[1] > d else None)
        div = DivergenceTracker(xp, X.shape[0], self.spec.threshold, state.diverged_at)
        self.rng.offset = state.rng
        step_fn = {"euler_maruyama": self._em, "baoab": self._baoab, "exact_ou": self._exact}
        with quiet_overflow(xp):
            X, V, G = step_fn[self.spec.method](X, V, G, start, n_steps, div, rec)
        return SDEState(X, V, div.step, self.rng.offset, G)

    def final(self, state: SDEState) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(X, V, diverged_at)`` on the host in float64."""
        V = None if state.v is None else to_host(state.v).astype(np.float64)
        return to_host(state.x).astype(np.float64), V, np.asarray(to_host(state.diverged_at), dtype=np.int64)

    # --- the schemes -------------------------------------------------------------------------
    def _em(self, X, V, G, start, n_steps, div, rec):
        """Euler–Maruyama ``X ← X + dt·f(X) + N ξ`` with ``f = −field`` on the state (R, n),
        positions first (the rest are velocities)."""
        d, n = self.spec.n_pos, X.shape[1]
        second = n > d
        dt = X.dtype.type(self.spec.dt)
        for step in range(start + 1, start + n_steps + 1):
            X += dt * -self.field(X)
            X += self.noise(_normals(self.rng, n, X.dtype))
            div.check(step, X)
            k = rec.due(step)
            if k is not None:
                rec.take(k, X[:, :d], X[:, d:] if second else None)
        return X, V, G

    def _baoab(self, X, V, G, start, n_steps, div, rec):
        """BAOAB on positions ``X`` and velocities ``V`` (R, d), ``G = ∇U(X)`` carried over."""
        h = X.dtype.type(0.5 * self.spec.dt)
        for step in range(start + 1, start + n_steps + 1):
            V -= h * G  # B
            X += h * V  # A
            V *= self.c  # O: e^{−Γh} v + N(0, Σ_O)
            V += self.noise(_normals(self.rng, X.shape[1], X.dtype))
            X += h * V  # A
            G = self.field(X)  # first-same-as-last: also the next step's first B
            V -= h * G  # B
            div.check(step, X, V)
            k = rec.due(step)
            if k is not None:
                rec.take(k, X, V)
        return X, V, G

    def _exact(self, X, V, Y, start, n_steps, div, rec):
        """The exact OU transition ``Y ← Y Eᵀ + ξ Nᵀ`` on ``Y = X − x*`` (R, n), positions first
        (``Y`` carried in the state, so a run in pieces is the same as in one)."""
        d, n = self.spec.n_pos, X.shape[1]
        second = n > d
        for step in range(start + 1, start + n_steps + 1):
            Y = Y @ self.e_t + _normals(self.rng, n, X.dtype) @ self.n_t
            X = Y + self.x_star
            div.check(step, X)
            k = rec.due(step)
            if k is not None:
                rec.take(k, X[:, :d], X[:, d:] if second else None)
        return X, V, Y
