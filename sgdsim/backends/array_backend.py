"""The array backend: the NumPy reference, and the same code on CuPy for GPUs.

Every step is the textbook formula on arrays of shape (R, d), written once against an array
namespace ``xp`` (NumPy or CuPy), so the CPU test suite exercises the GPU code path line for line.
Randomness comes from :class:`~sgdsim.backends.counter_rng.CounterRNG` (per-replica,
counter-based), identical on NumPy and CuPy up to the last bit of the transcendental functions.
The Numba kernels are tested against this backend.
"""

from __future__ import annotations

import copy

import numpy as np

from sgdsim.backends.base import DivergenceTracker, Records, RunSpec, RunState, quiet_overflow
from sgdsim.backends.base import to_host as _to_host
from sgdsim.backends.counter_rng import CounterRNG
from sgdsim.fields import rff_gradient, rff_phases


class ArrayRunner:
    """Vectorized replicas on the array namespace ``xp``: ``advance(state, t0, n_steps, rec) ->
    state`` with an explicit :class:`~sgdsim.backends.base.RunState` (the stream offset and the
    epoch-shuffle position and permutation included)."""

    name = "numpy"

    def __init__(self, spec: RunSpec, xp=np):
        self.xp = xp
        self.spec = spec
        low = spec.lowered
        self.kind = low.kind
        self.a = {k: xp.asarray(v) for k, v in low.arrays.items()}
        self.ints = low.ints
        self.dtype = spec.dtype
        self.theta0 = xp.asarray(spec.theta0, dtype=self.dtype).copy()
        self.opt = spec.optimizer
        if xp is not np and self.opt.nudge_top_k:  # the directions must live on the device too
            self.opt = copy.copy(self.opt)
            object.__setattr__(self.opt, "nudge_basis", xp.asarray(spec.optimizer.nudge_basis))
        r = self.theta0.shape[0]
        # host-side facts that select code paths: deciding them from device arrays each step
        # would synchronize the GPU every step
        host = low.arrays
        self._noisy = bool(np.any(host["std"] > 0)) if "std" in host else False
        self._has_chol = bool(np.any(host["chol"])) if "chol" in host else False
        self.rng = CounterRNG(spec.seed, r, xp)
        self._sampler = None  # the epoch shuffle's (position, permutation) during an advance
        if self.kind == "rff" and self.ints["per_replica"]:
            fields, m = self.ints["fields"], self.ints["features"]
            if fields != r:
                raise ValueError(f"the per-replica potential has n_replicas={fields} fields, `replicas`={r}")
            self.a["W"] = self.a["W"].reshape(fields, m, -1)
            self.a["b"] = self.a["b"].reshape(fields, m)
            self.a["amp"] = self.a["amp"].reshape(fields, m)

    # --- gradient oracle -------------------------------------------------------------------
    def _step_gradient(self, th):
        """The gradient estimate of one step: a minibatch gradient, or with SVAG (ℓ > 1; Li,
        Malladi & Arora 2021, their SVAG definition) ``½(1+√(2ℓ−1)) g₁ + ½(1−√(2ℓ−1)) g₂`` from two
        independent minibatch gradients: mean ∇L, noise covariance ℓ·Σ."""
        ell = self.spec.svag
        if ell == 1.0:
            return self.grad(th)
        root = np.sqrt(2.0 * ell - 1.0)
        g1 = self.grad(th)
        return 0.5 * (1.0 + root) * g1 + 0.5 * (1.0 - root) * self.grad(th)

    def _noise(self, chol):
        return self.rng.normal(chol.shape[1]) @ chol.T

    def grad(self, th):
        xp, a = self.xp, self.a
        if self.kind == "quad_diag":
            g = a["a"] * (th - a["zstar"])
            if self._noisy:
                g = g + a["std"] * self.rng.normal(th.shape[1])
            return g
        if self.kind == "quad_full":
            return a["a"] * (th - a["zstar"]) + self._noise(a["chol"])
        if self.kind == "rff":
            return self._rff_grad(th)
        if self.kind == "custom":
            g = xp.asarray(self.spec.lowered.problem.grad_batch(th))
            return g + self._noise(a["chol"]) if self._has_chol else g
        x, y = a["X"], a["y"]
        n = x.shape[0]
        if self.kind == "linreg_gauss":
            r = th @ x.T - y  # (R, N)
            g = r @ x / n
            z = self.rng.normal(n)
            noise = (z * r) @ x - z.sum(axis=1, keepdims=True) * g
            return g + noise / np.sqrt(self.ints["batch"] * n)
        idx = self._batch_indices(th.shape[0], n)
        xb = x[idx]  # (R, B, d)
        r = xp.einsum("rbd,rd->rb", xb, th) - y[idx]
        return xp.einsum("rb,rbd->rd", r, xb) / idx.shape[1]

    def _rff_grad(self, th):
        a = self.a
        g = rff_gradient(self.xp, th, a["W"], a["b"], a["amp"])
        return g + a["std"] * self.rng.normal(th.shape[1]) if self._noisy else g

    def _batch_indices(self, reps: int, n: int):
        xp = self.xp
        mode, b = self.ints["mode"], self.ints["batch"]
        if mode == 0:
            return xp.broadcast_to(xp.arange(n), (reps, n))
        if mode == 1:
            return self.rng.randbelow(b, n)
        if mode == 2:  # a uniformly random B-subset: the B smallest of N uniform keys
            return xp.argsort(self.rng.uniform(n), axis=1)[:, :b]
        pos, perm = self._sampler
        if pos + b > n:
            perm = xp.argsort(self.rng.uniform(n), axis=1)
            pos = 0
        self._sampler = (pos + b, perm)
        return perm[:, pos : pos + b]

    def loss(self, th):
        xp, a = self.xp, self.a
        th = th.astype(xp.float64)
        if self.kind.startswith("quad"):
            dz = th - a["zstar"]
            return 0.5 * xp.sum(a["a"] * dz * dz, axis=1)
        if self.kind == "custom":
            return xp.asarray(self.spec.lowered.problem.loss_batch(th))
        if self.kind == "rff":
            return xp.sum(a["amp"] * xp.cos(rff_phases(xp, th, a["W"], a["b"])), axis=1)
        dw = th - a["solution"]
        excess = xp.einsum("ri,ij,rj->r", dw, a["hessian"], dw)
        # H is PSD, so the excess is ≥ 0; rounding in its null space (interpolation) can make the
        # sum slightly negative: the recorded loss never goes below the minimum
        return a["min_loss"][0] + 0.5 * xp.maximum(excess, 0.0)

    # --- stepping --------------------------------------------------------------------------
    def init(self) -> RunState:
        """The start state: θ_0, the optimizer's initial state (a given buffer: step 0 is an
        ordinary momentum step), stream offset 0, no divergence; the epoch shuffle starts
        "exhausted" so that the first batch reshuffles."""
        xp, spec = self.xp, self.spec
        # not a copy of theta0 when the dtype matches (as before the runner contract: the
        # arithmetic of NumPy's einsum can depend on the operands' memory alignment)
        theta = xp.asarray(spec.theta0, dtype=self.dtype)
        opt_state = self.opt.init(theta)
        if spec.buf0 is not None:
            opt_state = opt_state._replace(buf=xp.asarray(spec.buf0, dtype=self.dtype), count=1)
        sampler = None
        if self.kind == "linreg" and self.ints["mode"] == 3:
            sampler = (self.a["X"].shape[0], None)
        div = xp.full(theta.shape[0], -1, dtype=xp.int64)
        return RunState(theta, opt_state, div, 0, sampler)

    def _record(self, rec: Records, j: int, rows: np.ndarray, theta, opt_state, step2) -> None:
        xp = self.xp
        rows_x = xp.asarray(rows)
        th = theta[rows_x]
        for name, out in rec.arrays.items():
            if name == "loss":
                val = self.loss(th)
            elif name == "dist2":
                val = xp.sum((th.astype(xp.float64) - self.theta0[rows_x]) ** 2, axis=1)
            elif name == "step2":
                val = xp.full(rows.size, xp.nan) if step2 is None else step2[rows_x]
            elif name == "velocity2":
                val = xp.sum(opt_state.buf[rows_x].astype(xp.float64) ** 2, axis=1)
            else:  # params
                val = th
            out[rows, j] = _to_host(val)

    def advance(self, state: RunState, t0: int, n_steps: int, rec: Records) -> RunState:
        """Steps ``t0 … t0+n_steps−1`` from ``state``; records due are written to ``rec``.
        Divergence steps stay on the device during the chunk (no host sync per step)."""
        xp = self.xp
        theta, opt_state = state.theta, state.opt
        self.rng.offset, self._sampler = state.rng, state.sampler
        div = DivergenceTracker(xp, theta.shape[0], self.spec.threshold, state.diverged_at)
        if t0 == 0:
            self._record(rec, 0, np.arange(theta.shape[0]), theta, opt_state, None)
        lrs = self.spec.optimizer.lr.values(n_steps, start=t0)  # evaluated lazily
        lrs = (lrs / self.spec.svag if self.spec.svag != 1.0 else lrs).astype(self.dtype)
        for k, lr in enumerate(lrs):
            t = t0 + k
            active = div.active()[:, None]
            with quiet_overflow(xp):
                g = self._step_gradient(theta).astype(self.dtype)
                delta, new_state = self.opt.update(g, opt_state, theta, lr)
                theta = xp.where(active, theta + delta, theta)
                opt_state = new_state._replace(buf=xp.where(active, new_state.buf, opt_state.buf))
                div.check(t + 1, theta)
            if (t + 1) % rec.every == 0:
                rows = np.flatnonzero(div.host() < 0)
                step2 = xp.sum(delta.astype(xp.float64) ** 2, axis=1)
                self._record(rec, (t + 1) // rec.every, rows, theta, opt_state, step2)
        return RunState(theta, opt_state, div.step, self.rng.offset, self._sampler)

    def diverged(self, state: RunState) -> np.ndarray:
        """Divergence steps on the host, (R,) int64, −1 = never (one device-to-host copy)."""
        return np.asarray(_to_host(state.diverged_at), dtype=np.int64).copy()

    def final(self, state: RunState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(θ, buf, diverged_at)`` in kernel coordinates, float64, on the host."""
        theta = _to_host(state.theta).astype(np.float64)
        return theta, _to_host(state.opt.buf).astype(np.float64), self.diverged(state)
