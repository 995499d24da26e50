"""The Numba CPU backend: a thin wrapper that unpacks a :class:`RunSpec` for the kernels."""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core.registry import CPUDispatcher

from sgdsim._rng import fill_standard_normal, replica_states
from sgdsim.backends import numba_kernels as nk
from sgdsim.backends.base import Records, RunSpec

_CUSTOM_ORACLES: dict[tuple[int, int], tuple] = {}


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
        chol, noisy = data
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
    name = "numba"

    def __init__(self, spec: RunSpec):
        self.spec = spec
        low = spec.lowered
        dt = spec.dtype
        self.theta = np.ascontiguousarray(spec.theta0, dtype=dt)
        self.theta0 = self.theta.copy()
        r, d = self.theta.shape
        self.buf = np.zeros_like(self.theta) if spec.buf0 is None else np.array(spec.buf0, dtype=dt)
        self.states = replica_states(spec.seed, r, spawn_key=1)
        self.div_step = np.full(r, -1, dtype=np.int64)
        self.iwork = np.zeros((r, 1), dtype=np.int64)
        width = d + (low.arrays["X"].shape[0] if low.kind == "linreg_gauss" else 0)
        self.fwork = np.zeros((r, width), dtype=np.float64)  # per-replica scratch (normals)
        a = low.arrays
        self.kernel = nk.run_builtin
        if low.kind == "quad_diag":
            noisy = float(np.any(a["std"] > 0))
            self.data = nk.pack(low.kind, dt, v1=a["a"], v2=a["zstar"], v3=a["std"], s=[noisy])
        elif low.kind == "quad_full":
            self.data = nk.pack(low.kind, dt, v1=a["a"], v2=a["zstar"], m1=a["chol"])
        elif low.kind in ("linreg", "linreg_gauss"):
            n = a["X"].shape[0]
            self.data = nk.pack(
                low.kind, dt, v1=a["y"], m1=a["X"], m2=a["hessian"], w=a["solution"],
                s=a["min_loss"], i=(low.ints["batch"], low.ints["mode"]),
            )  # fmt: skip
            if low.ints["mode"] in (2, 3):
                self.iwork = np.tile(np.arange(n + 1, dtype=np.int64), (r, 1))
                self.iwork[:, n] = n  # epoch position: "exhausted", so the first batch shuffles
        elif low.kind == "rff":
            if low.ints["per_replica"] and low.ints["fields"] != r:
                raise ValueError(
                    f"the per-replica potential has n_replicas={low.ints['fields']} fields, "
                    f"`replicas`={r}"
                )
            self.data = nk.pack(low.kind, dt, v1=a["b"], v2=a["amp"], m1=a["W"], s=a["std"],
                                i=(low.ints["features"], low.ints["per_replica"]))  # fmt: skip
            self.iwork = np.arange(r, dtype=np.int64)[:, None]  # the replica's field index
        elif low.kind == "custom":
            grad_fn, loss_fn = _custom_oracles(low.problem)
            chol = np.ascontiguousarray(a["chol"], dtype=dt)
            self.data = (chol, bool(np.any(chol)))
            self.kernel = _custom_driver(grad_fn, loss_fn)
        else:
            raise NotImplementedError(f"the numba backend has no kernel for {low.kind!r}")
        opt = spec.optimizer
        self.hyp = np.array(
            [opt.momentum, 1.0 - opt.dampening, opt.weight_decay, 1.0 - opt.nudge_gamma], dtype=dt
        )
        e = opt.nudge_basis if opt.nudge_top_k else np.zeros((d, 0))
        self.nudge_e = np.ascontiguousarray(e, dtype=dt)

    def advance(self, t0: int, lrs: np.ndarray, rec: Records) -> None:
        self.kernel(
            self.data,
            self.theta, self.buf, self.theta0, self.states, self.iwork, self.fwork,
            np.ascontiguousarray(lrs, dtype=self.spec.dtype), t0, self.hyp,
            self.spec.optimizer.nesterov, self.spec.buf0 is None, self.nudge_e,
            rec.every, rec.flags(), rec.get("loss"), rec.get("dist2"), rec.get("step2"),
            rec.get("velocity2"), rec.get("params"),
            self.div_step, self.spec.threshold,
        )  # fmt: skip

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.theta.astype(np.float64), self.buf.astype(np.float64)
