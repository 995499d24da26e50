"""What every backend runner receives and how it reports back."""

from __future__ import annotations

from dataclasses import dataclass

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
