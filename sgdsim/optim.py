"""Update rules as pure ``(init, update)`` pairs with explicit state, and learning-rate schedules.

Conventions follow ``torch.optim.SGD``. With gradient g of the minibatch loss at θ_t:

    g   ← g + λ_wd θ_t                                  (weight decay, coupled)
    g   ← (I − (1 − γ) E Eᵀ) g                          (Nudged SGD only: γη along top-K E)
    buf ← g                          on the first step,
    buf ← β buf + (1 − τ) g          afterwards          (momentum β, dampening τ)
    u   ← g + β buf  (Nesterov)  or  buf  (heavy ball)   (u = g when β = 0)
    θ   ← θ − η_t u

EMA momentum is dampening τ = β. The state is the momentum buffer only; ``velocity`` in the
Langevin picture is −buf.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from sgdsim._validation import (
    as_float_array,
    check_allocation,
    check_bool,
    check_in_range,
    check_int,
    check_positive,
)

__all__ = [
    "SGD",
    "OptState",
    "Schedule",
    "constant_lr",
    "cosine_lr",
    "nudged_sgd",
    "sgd",
    "step_lr",
    "warmup_lr",
]


# --- learning-rate schedules ----------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``schedule(step) -> lr`` for step = 0, 1, 2, ...

    Build one with :func:`constant_lr`, :func:`step_lr`, :func:`cosine_lr`, :func:`warmup_lr`, or
    wrap any function of the step index (vectorized over an integer array is faster).

    A schedule is lazy: it is a function of the step, evaluated on the window of steps a run
    needs (:meth:`values` with ``start``), so a run of ``10**12`` steps never builds an array of
    ``10**12`` learning rates.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    description: str = "custom"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"`fn` must be a callable of the step index, got {self.fn!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"`description` must be a str, got {self.description!r}")

    def __call__(self, step):
        return self.fn(step)

    def values(self, steps: int, *, start: int = 0) -> np.ndarray:
        """Learning rates for steps ``start .. start+steps−1``, float64 ``(steps,)``.

        Validated finite and ≥ 0. ``steps`` whose array would not fit in this machine's memory is
        refused with the size it would need (evaluate long runs in windows with ``start``).
        """
        steps = check_int("steps", steps, minimum=0)
        start = check_int("start", start, minimum=0)
        check_allocation("steps", steps, 16.0 * steps, "an array of learning rates")
        t = np.arange(start, start + steps, dtype=np.int64)
        try:
            lr = np.asarray(self.fn(t), dtype=np.float64)
            if lr.shape != (steps,):
                raise ValueError
        except (TypeError, ValueError):
            lr = np.array([_schedule_value(self.fn, int(k)) for k in t], dtype=np.float64)
        if not np.all(np.isfinite(lr)) or np.any(lr < 0):
            bad = int(np.flatnonzero(~(np.isfinite(lr) & (lr >= 0)))[0])
            raise ValueError(
                f"learning-rate schedule gave lr={float(lr[bad])!r} at step {start + bad}"
            )
        return lr


def _schedule_value(fn: Callable, step: int) -> float:
    """One learning rate ``fn(step)`` as a float; a schedule returning a string is refused."""
    out = fn(step)
    if isinstance(out, (str, bytes, bool)):
        raise TypeError(f"learning-rate schedule returned {out!r} at step {step}; need a number")
    return float(out)


def constant_lr(lr: float) -> Schedule:
    lr = check_positive("lr", lr)
    return Schedule(lambda t: np.full(np.shape(t), lr), f"constant({lr:g})")


def step_lr(lr: float, milestones: Sequence[int], factor: float = 0.1) -> Schedule:
    """lr multiplied by ``factor`` at each milestone step (PyTorch MultiStepLR)."""
    lr = check_positive("lr", lr)
    factor = check_positive("factor", factor)
    if isinstance(milestones, (str, bytes)) or not np.iterable(milestones):
        raise TypeError(
            f"`milestones` must be a sequence of step indices (e.g. [{milestones!r}]), "
            f"got {type(milestones).__name__} {milestones!r}"
        )
    ms = np.sort(
        np.asarray([check_int("milestones", m, minimum=0) for m in milestones], dtype=np.int64)
    )
    return Schedule(
        lambda t: lr * factor ** np.searchsorted(ms, np.asarray(t), side="right"),
        f"step({lr:g}, {ms.tolist()}, {factor:g})",
    )


def cosine_lr(lr: float, total_steps: int, final_lr: float = 0.0) -> Schedule:
    """Cosine decay from ``lr`` to ``final_lr`` over ``total_steps``, then constant."""
    lr = check_positive("lr", lr)
    total = check_int("total_steps", total_steps, minimum=1)
    final = check_positive("final_lr", final_lr, allow_zero=True)

    def fn(t):
        x = np.minimum(np.asarray(t, dtype=float), total) / total
        return final + 0.5 * (lr - final) * (1 + np.cos(np.pi * x))

    return Schedule(fn, f"cosine({lr:g}→{final:g} over {total})")


def warmup_lr(base: Schedule | float, warmup_steps: int) -> Schedule:
    """Linear warm-up from lr/warmup_steps to the base schedule over ``warmup_steps``."""
    if not isinstance(base, Schedule):
        base = constant_lr(check_positive("base", base))
    w = check_int("warmup_steps", warmup_steps, minimum=1)
    return Schedule(
        lambda t: base(t) * np.minimum(1.0, (np.asarray(t) + 1.0) / w),
        f"warmup({w}) then {base.description}",
    )


# --- the optimizer ----------------------------------------------------------------------------
class OptState(NamedTuple):
    """Optimizer state: momentum buffer (R, d) and the number of steps taken."""

    buf: np.ndarray
    count: int


@dataclass(frozen=True)
class SGD:
    """SGD with heavy-ball / Nesterov / EMA momentum, weight decay and optional nudging.

    Build with :func:`sgd` or :func:`nudged_sgd`. ``nudge_basis`` (d, K) holds the orthonormal
    directions E that get learning rate γη; ``None`` with ``nudge_top_k > 0`` means "the exact
    top-K Hessian eigenvectors of the problem", resolved by :func:`sgdsim.simulate`.
    """

    lr: Schedule
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    nudge_gamma: float = 1.0
    nudge_top_k: int = 0
    nudge_basis: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.lr, Schedule):
            object.__setattr__(self, "lr", constant_lr(self.lr))
        for name, value in (
            ("momentum", check_in_range("momentum", self.momentum, 0.0, 1.0, high_open=True)),
            ("dampening", check_in_range("dampening", self.dampening, 0.0, 1.0)),
            ("weight_decay", check_positive("weight_decay", self.weight_decay, allow_zero=True)),
            ("nesterov", check_bool("nesterov", self.nesterov)),
        ):
            object.__setattr__(self, name, value)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"Nesterov momentum needs `momentum` > 0 and `dampening` = 0 (as in PyTorch), "
                f"got momentum={self.momentum}, dampening={self.dampening}"
            )
        object.__setattr__(self, "nudge_gamma", check_positive("gamma", self.nudge_gamma))
        object.__setattr__(self, "nudge_top_k", check_int("top_k", self.nudge_top_k, minimum=0))
        if self.nudge_basis is not None:
            e = as_float_array("eigenvectors", self.nudge_basis, ndim=2)
            if e.shape[1] != self.nudge_top_k:
                raise ValueError(f"`eigenvectors` has {e.shape[1]} columns, `top_k` is {self.nudge_top_k}")
            err = np.max(np.abs(e.T @ e - np.eye(e.shape[1]))) if e.size else 0.0
            if err > 1e-8:
                raise ValueError(f"`eigenvectors` must be orthonormal columns; max |EᵀE − I| = {err:.3g}")
            e.setflags(write=False)
            object.__setattr__(self, "nudge_basis", e)

    # pure (init, update) on arrays of shape (R, d) -----------------------------------------
    def init(self, params: np.ndarray) -> OptState:
        return OptState(np.zeros_like(params), 0)

    def update(
        self, grads: np.ndarray, state: OptState, params: np.ndarray, lr: float
    ) -> tuple[np.ndarray, OptState]:
        """Return (Δθ, new_state) with θ_{t+1} = θ_t + Δθ, for the learning rate ``lr`` of step t."""
        g = grads + self.weight_decay * params if self.weight_decay else grads
        if self.nudge_top_k:
            e = self.nudge_basis
            g = g - (1.0 - self.nudge_gamma) * (g @ e) @ e.T
        beta = self.momentum
        if beta == 0.0:
            return -lr * g, OptState(state.buf, state.count + 1)
        buf = g.copy() if state.count == 0 else beta * state.buf + (1.0 - self.dampening) * g
        u = g + beta * buf if self.nesterov else buf
        return -lr * u, OptState(buf, state.count + 1)

    def with_nudge_basis(self, basis: np.ndarray) -> SGD:
        from dataclasses import replace

        return replace(self, nudge_basis=basis)

    def describe(self) -> dict:
        return {
            "lr": self.lr.description,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "nudge_gamma": self.nudge_gamma,
            "nudge_top_k": self.nudge_top_k,
        }


def sgd(
    lr: float | Schedule,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> SGD:
    """SGD in PyTorch's convention (see the module docstring). EMA momentum: dampening=momentum."""
    return SGD(lr, momentum, dampening, nesterov, weight_decay)


def nudged_sgd(
    lr: float | Schedule,
    gamma: float,
    top_k: int,
    eigenvectors: np.ndarray | None = None,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> SGD:
    """Nudged SGD (Jastrzębski et al. 2019): θ ← θ − η(I − (1−γ)EEᵀ)g.

    ``eigenvectors`` (d, K) are the K sharpest directions; omitted, the simulator uses the exact
    top-K Hessian eigenvectors of an analytic problem.
    """
    top_k = check_int("top_k", top_k, minimum=1)
    return SGD(lr, momentum, dampening, nesterov, weight_decay, gamma, top_k, eigenvectors)
