"""The Numba CPU backend of :func:`sgdsim.simulate`: unpacks a :class:`RunSpec` into the named
tuples of :mod:`sgdsim.backends.numba_kernels` and advances an explicit :class:`RunState`."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numba.core.errors import NumbaError, UnsupportedBytecodeError
from numba.core.registry import CPUDispatcher

from sgdsim._rng import fill_standard_normal, replica_states
from sgdsim.backends import numba_kernels as nk
from sgdsim.backends.base import Records, RunSpec, RunState

_CUSTOM_ORACLES: dict[tuple[int, int], tuple] = {}


class CustomData(NamedTuple):
    """What a CustomProblem's oracles read: the noise factor L (d, d), run dtype, and whether
    it is non-zero."""

    chol: np.ndarray
    noisy: bool


def _compiled(fn, role: str):
    if isinstance(fn, CPUDispatcher):
        return fn
    try:
        return njit(fn)
    except Exception as exc:  # pragma: no cover - numba raises many types here
        raise TypeError(
            f"CustomProblem.{role} cannot be compiled by Numba ({exc}); use backend='numpy'"
        ) from exc


_DRIVERS: dict[int, object] = {}


def _custom_driver(grad_fn, loss_fn):
    key = id(grad_fn)
    if key not in _DRIVERS:
        _DRIVERS[key] = nk.driver_for(grad_fn, loss_fn)
    return _DRIVERS[key]


def _custom_oracles(problem) -> tuple:
    """(grad_fn, loss_fn) kernels wrapping the user's functions, built once per function."""
    key = (id(problem.grad), id(problem.loss))
    if key in _CUSTOM_ORACLES:
        return _CUSTOM_ORACLES[key][:2]
    user_grad = _compiled(problem.grad, "grad")
    user_loss = _compiled(problem.loss, "loss") if problem.loss is not None else None

    @njit(fastmath=nk.FASTMATH)
    def grad_fn(data, th, g, s, iwork, fwork):
        chol, noisy = data.chol, data.noisy
        out = user_grad(th)
        d = th.shape[0]
        for i in range(d):
            g[i] = out[i]
        if noisy:
            fill_standard_normal(s, fwork[:d])
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += chol[i, j] * fwork[j]
                g[i] += acc

    if user_loss is None:

        @njit
        def loss_fn(data, th, iwork):
            return np.nan

    else:

        @njit
        def loss_fn(data, th, iwork):
            return np.float64(user_loss(th))

    # keep the problem's functions alive so their ids stay unique while cached
    _CUSTOM_ORACLES[key] = (grad_fn, loss_fn, problem.grad, problem.loss)
    return grad_fn, loss_fn


class NumbaRunner:
    """The compiled SGD driver for one run: ``advance(state, t0, n_steps, rec) -> state``."""

    name = "numba"

    def __init__(self, spec: RunSpec):
        self.spec = spec
        low = spec.lowered
        dt = spec.dtype
        r, d = spec.theta0.shape
        self.theta0 = np.ascontiguousarray(spec.theta0, dtype=dt)
        width = d + (low.arrays["X"].shape[0] if low.kind == "linreg_gauss" else 0)
        self.fwork = np.zeros((r, width), dtype=np.float64)  # per-replica scratch (normals)
        a = low.arrays
        self.kernel = nk.run_builtin
        if low.kind == "quad_diag":
            self.data = nk.pack(low.kind, dt, curvature=a["a"], minimum=a["zstar"], noise_std=a["std"],
                                noisy=bool(np.any(a["std"] > 0)))  # fmt: skip
        elif low.kind == "quad_full":
            self.data = nk.pack(low.kind, dt, curvature=a["a"], minimum=a["zstar"], noise_chol=a["chol"])
        elif low.kind in ("linreg", "linreg_gauss"):
            self.data = nk.pack(
                low.kind, dt, y=a["y"], X=a["X"], hessian=a["hessian"], solution=a["solution"],
                min_loss=a["min_loss"][0], batch=low.ints["batch"], mode=low.ints["mode"],
            )  # fmt: skip
        elif low.kind == "rff":
            if low.ints["per_replica"] and low.ints["fields"] != r:
                raise ValueError(
                    f"the per-replica potential has n_replicas={low.ints['fields']} fields, "
                    f"`replicas`={r}"
                )
            self.data = nk.pack(low.kind, dt, b=a["b"], amp=a["amp"], W=a["W"], rff_std=a["std"][0],
                                features=low.ints["features"],
                                per_replica=bool(low.ints["per_replica"]))  # fmt: skip
        elif low.kind == "custom":
            grad_fn, loss_fn = _custom_oracles(low.problem)
            chol = np.ascontiguousarray(a["chol"], dtype=dt)
            self.data = CustomData(chol, bool(np.any(chol)))
            self.kernel = _custom_driver(grad_fn, loss_fn)
        else:
            raise NotImplementedError(f"the numba backend has no kernel for {low.kind!r}")
        opt = spec.optimizer
        e = opt.nudge_basis if opt.nudge_top_k else np.zeros((d, 0))
        self.nudge_e = np.ascontiguousarray(e, dtype=dt)

    def init(self) -> RunState:
        """The start state: θ_0, the initial buffer (zeros if empty), fresh streams, the sampler
        (epoch shuffle: the identity permutation, position "exhausted" so the first batch
        shuffles; a per-replica field: the replica's field index)."""
        spec, low = self.spec, self.spec.lowered
        theta = self.theta0.copy()
        r = theta.shape[0]
        buf = np.zeros_like(theta) if spec.buf0 is None else np.array(spec.buf0, dtype=spec.dtype)
        iwork = np.zeros((r, 1), dtype=np.int64)
        if low.kind in ("linreg", "linreg_gauss") and low.ints["mode"] in (2, 3):
            n = low.arrays["X"].shape[0]
            iwork = np.tile(np.arange(n + 1, dtype=np.int64), (r, 1))
            iwork[:, n] = n  # epoch position: "exhausted", so the first batch shuffles
        elif low.kind == "rff":
            iwork = np.arange(r, dtype=np.int64)[:, None]  # the replica's field index
        div = np.full(r, -1, dtype=np.int64)
        return RunState(theta, buf, div, replica_states(spec.seed, r, spawn_key=1), iwork)

    def advance(self, state: RunState, t0: int, n_steps: int, rec: Records) -> RunState:
        """Steps ``t0 … t0+n_steps−1``; the arrays of ``state`` are advanced in place (and
        returned as the new state)."""
        opt, dt = self.spec.optimizer, self.spec.dtype
        hyp = nk.Hyper(
            opt.lr.values(n_steps, start=t0).astype(dt), t0, dt.type(opt.momentum),
            dt.type(1.0 - opt.dampening), dt.type(opt.weight_decay), dt.type(1.0 - opt.nudge_gamma),
            opt.nesterov, self.spec.buf0 is None, self.nudge_e,
        )  # fmt: skip
        reps = nk.ReplicaArrays(state.theta, state.opt, self.theta0, state.rng, state.sampler, self.fwork)
        bufs = nk.RecordBuffers(rec.every, rec.flags(), rec.get("loss"), rec.get("dist2"), rec.get("step2"),
                                rec.get("velocity2"), rec.get("params"))  # fmt: skip
        try:
            self.kernel(self.data, reps, hyp, bufs, state.diverged_at, self.spec.threshold)
        except (NumbaError, UnsupportedBytecodeError) as exc:
            if self.spec.lowered.kind != "custom":
                raise
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise TypeError(
                f"CustomProblem's `grad`/`loss` cannot be compiled by Numba ({first.strip()}); "
                "write them in Numba's subset of Python/NumPy, or use backend='numpy'"
            ) from None
        return state

    def diverged(self, state: RunState) -> np.ndarray:
        """Divergence steps on the host, (R,) int64, −1 = never."""
        return state.diverged_at

    def final(self, state: RunState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(θ, buf, diverged_at)`` in kernel coordinates, float64, on the host."""
        return state.theta.astype(np.float64), state.opt.astype(np.float64), state.diverged_at.copy()
