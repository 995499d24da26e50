"""What every backend runner receives and how it reports back.

The runner contract, shared by the SGD runners (:mod:`sgdsim.simulate`) and the SDE runners
(:mod:`sgdsim.sde`): a runner is built once from a validated, lowered spec (:class:`RunSpec`,
:class:`SDESpec`), and advanced piece by piece, writing the records due in each piece. The SDE
runners carry their state explicitly (:class:`SDEState`, returned by ``advance``). Divergence on
the array backends is tracked by one :class:`DivergenceTracker`; the compiled kernels apply the
same rule inline (first step whose squared state norm is non-finite or above the threshold).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from sgdsim.backends.lowering import Lowered
from sgdsim.optim import SGD

#: observables a run can record, in kernel flag order
OBSERVABLES = ("loss", "dist2", "step2", "velocity2", "params")


@dataclass
class Records:
    """Preallocated record buffers, (replicas, n_records[, dim]) float64, NaN until written."""

    every: int
    arrays: dict[str, np.ndarray]

    @classmethod
    def allocate(cls, names, replicas: int, n_records: int, dim: int, every: int) -> Records:
        arrays = {}
        for name in names:
            shape = (replicas, n_records, dim) if name == "params" else (replicas, n_records)
            arrays[name] = np.full(shape, np.nan)
        return cls(every, arrays)

    def flags(self) -> np.ndarray:
        return np.array([name in self.arrays for name in OBSERVABLES], dtype=np.int64)

    def get(self, name: str) -> np.ndarray:
        """The buffer, or a tiny dummy the kernels never write to."""
        if name in self.arrays:
            return self.arrays[name]
        return np.empty((0, 0, 0) if name == "params" else (0, 0))


@dataclass
class RunSpec:
    """Everything a runner needs, already validated and lowered."""

    lowered: Lowered
    optimizer: SGD  # nudge basis, if any, already expressed in kernel coordinates
    dtype: np.dtype
    theta0: np.ndarray  # (R, d) float64, kernel coordinates
    seed: int
    threshold: float  # divergence threshold on ‖θ‖² (kernel coordinates)
    buf0: np.ndarray | None = None  # (R, d) initial momentum buffer, kernel coordinates; None: empty
    svag: float = 1.0  # SVAG ℓ (array backends): lr η/ℓ, two independent gradients combined


class RunState(NamedTuple):
    """The state an SGD runner's ``advance`` takes and returns (optax-style: nothing that
    changes from step to step lives on the runner).

    ``theta`` (R, d): parameters in kernel coordinates and the run dtype; ``opt``: the momentum
    buffer (Numba, (R, d)) or the optimizer's state (:class:`sgdsim.optim.OptState`, array
    backends); ``diverged_at`` (R,) int64, −1 = never (on the device for CuPy); ``rng``: the
    stream position (xoshiro states (R, 4), or the counter offset); ``sampler``: minibatch
    sampler state (Numba: int64 (R, k), the per-replica permutation with the epoch position in
    its last column, or the field index; array backends: ``(position, permutation)`` of the
    epoch shuffle, or None).
    """

    theta: Any
    opt: Any
    diverged_at: Any
    rng: Any
    sampler: Any = None


# --- the SDE integrators' side of the contract -----------------------------------------------
@dataclass(frozen=True)
class SDESpec:
    """One SDE run, validated and lowered by :mod:`sgdsim.sde`.

    ``potential`` is a :class:`~sgdsim.backends.lowering.Lowered` of kind ``"linear"`` (arrays
    ``M``: the drift matrix ``A`` (EM), the stiffness ``K`` (BAOAB) or the transition ``E``
    (exact OU), and ``x_star``), ``"rff"`` (a shared random-feature field: ``W``, ``b``,
    ``amp``), ``"custom"`` (a CustomProblem) or ``"user"`` (a gradient function in ``problem``).
    The noise factor ``N`` (``N Nᵀ`` = the per-step covariance) is ``diag(nd)`` if ``diag`` else
    ``nf``; ``c`` is BAOAB's O-step decay ``e^{−Γh}`` (ones otherwise).
    """

    method: str  # "euler_maruyama" | "baoab" | "exact_ou"
    potential: Any  # Lowered
    x0: np.ndarray  # (R, n) float64 initial state: positions (n_pos of them), then velocities
    v0: np.ndarray | None  # (R, d) initial velocities for BAOAB, else None
    n_pos: int
    dt: float
    c: np.ndarray
    nd: np.ndarray
    nf: np.ndarray
    diag: bool
    seed: int
    threshold: float
    dtype: np.dtype


class SDEState(NamedTuple):
    """The state an SDE runner's ``advance`` takes and returns.

    ``x`` (R, n) and ``v`` (R, d) or None: the state in the runner's namespace and dtype;
    ``diverged_at`` (R,) int64: first diverged step, −1 = never; ``rng``: the position of the
    random streams (the Numba backend's xoshiro states (R, 4), or the counter offset of the
    array backends); ``carry``: what a scheme carries from step to step on the array backends
    (BAOAB: the last force ∇U(x), first-same-as-last; exact OU: the deviation x − x*), else None.
    """

    x: Any
    v: Any
    diverged_at: Any
    rng: Any
    carry: Any = None


@dataclass
class SDERecords:
    """Host record buffers of an SDE run and the rule that fills them.

    ``x``, ``v``: (n_rec, R, d), or (0, R, d) when not recorded; ``s``: (n_rec, R, k) scalars by
    ``codes`` (0: ‖x − x_0‖², 1: ‖x‖², 2: ‖v‖²), named ``names``.
    """

    x: np.ndarray
    v: np.ndarray
    s: np.ndarray
    codes: np.ndarray
    names: list
    every: int
    _origin: Any = field(default=None, repr=False)

    def origin(self, x):
        """The run's initial positions (kept from the first call: the reference of ``dist2``)."""
        if self._origin is None:
            self._origin = x.copy()
        return self._origin

    def take(self, k: int, x, v) -> None:
        """Record positions ``x`` and velocities ``v`` (or None) at record index ``k`` (array
        backends; the compiled kernels write the same records themselves)."""
        x0 = self.origin(x)
        if self.x.shape[0]:
            self.x[k] = to_host(x)
        if self.v.shape[0]:
            self.v[k] = to_host(v)
        for j, code in enumerate(int(c) for c in self.codes):
            y = x - x0 if code == 0 else (x if code == 1 else v)
            self.s[k, :, j] = to_host((y * y).sum(axis=1))

    def due(self, step: int) -> int | None:
        """The record index of ``step`` (1-based) if it is recorded, else None."""
        return step // self.every if step % self.every == 0 else None


# --- shared by the array runners ----------------------------------------------------------------
def to_host(x):
    """A NumPy copy of a NumPy or CuPy array (CuPy: the explicit device-to-host transfer)."""
    return x.get() if hasattr(x, "get") else np.asarray(x)


def quiet_overflow(xp):
    """Overflow is expected in a diverging replica (it is detected right after the update and
    reported): silence NumPy's warnings about it; CuPy does not warn."""
    if xp is np:
        return np.errstate(over="ignore", invalid="ignore")
    return contextlib.nullcontext()


class DivergenceTracker:
    """The first step at which each replica's squared state norm is non-finite or above
    ``threshold``, kept on the device (no synchronization per step)."""

    def __init__(self, xp, replicas: int, threshold: float, step=None):
        self.xp, self.threshold = xp, threshold
        self.step = xp.full(replicas, -1, dtype=xp.int64) if step is None else step

    def active(self):
        """Replicas that have not diverged (device bool array)."""
        return self.step < 0

    def check(self, step: int, *parts) -> None:
        """Mark replicas whose ‖parts‖² (summed in float64) is bad at ``step``."""
        norm2 = sum((p.astype(self.xp.float64) ** 2).sum(axis=1) for p in parts)
        fresh = (self.step < 0) & ~(norm2 <= self.threshold)
        self.step = self.xp.where(fresh, step, self.step)

    def host(self) -> np.ndarray:
        return np.asarray(to_host(self.step), dtype=np.int64)
