"""Functions swept in the sweep tests. A module (not the test files) so worker processes can
import them by name. Each can count its invocations with marker files, one per call."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import numpy as np
import xarray as xr


def _mark(marker_dir: str | None, lr: float, batch: int, seed: int) -> None:
    if marker_dir is not None:
        Path(marker_dir, f"call_{lr}_{batch}_{seed}_{uuid.uuid4().hex}").touch()


def calls(marker_dir: str | os.PathLike[str]) -> dict[tuple[float, int, int], int]:
    """Invocation counts per (lr, batch, seed), from the marker files."""
    out: dict[tuple[float, int, int], int] = {}
    for p in Path(marker_dir).glob("call_*"):
        _, lr, batch, seed, _ = p.name.split("_")
        key = (float(lr), int(batch), int(seed))
        out[key] = out.get(key, 0) + 1
    return out


def noisy_sgd(lr: float, seed: int, *, batch: int = 1, steps: int = 20,
              marker_dir: str | None = None, kill_at: tuple[float, int] | None = None,
              fail_if: str | None = None, interrupt_at: tuple[float, int] | None = None,
              ) -> dict[str, object]:
    """SGD on L = x²/2 with N(0, 1/batch) gradient noise from seed: x_{t+1} = x_t - lr (x_t + ξ_t).

    Returns the final iterate, the path (steps+1,) and the number of steps (int).
    """
    if marker_dir is not None and kill_at == (lr, batch, seed):
        flag = Path(marker_dir, "killed")
        if not flag.exists():  # die hard once, as an OOM kill would
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    if marker_dir is not None and interrupt_at == (lr, seed):
        flag = Path(marker_dir, "interrupted")
        if not flag.exists():
            flag.touch()
            raise KeyboardInterrupt
    if fail_if is not None and Path(fail_if).exists() and lr == 0.2:
        raise FloatingPointError(f"boom at lr={lr}")
    rng = np.random.default_rng(seed)
    xi = rng.normal(scale=1 / np.sqrt(batch), size=steps)
    path = np.empty(steps + 1)
    path[0] = 1.0
    for t in range(steps):
        path[t + 1] = path[t] - lr * (path[t] + xi[t])
    _mark(marker_dir, lr, batch, seed)
    return {"final": path[-1], "path": path, "steps": steps}


def as_dataset(lr: float, seed: int) -> xr.Dataset:
    """The same dynamics returned as an xarray.Dataset with a labelled ``step`` axis."""
    out = noisy_sgd(lr, seed)
    steps = np.arange(out["path"].size)
    return xr.Dataset({"x": ("step", out["path"]), "final": out["final"]},
                      coords={"step": 10 * steps})


def tiny(i: int, seed: int) -> dict[str, float]:
    return {"y": float(i * 1000 + seed)}


def shape_changes(lr: float, seed: int) -> dict[str, object]:
    return {"v": np.zeros(3 if lr < 0.25 else 4)}


def sleepy(lr: float, seed: int, *, marker_dir: str, seconds: float) -> dict[str, float]:
    """Announce this worker (a ``pid_<pid>`` file), then sleep: a point that outlives a test."""
    import time

    Path(marker_dir, f"pid_{os.getpid()}").touch()
    time.sleep(seconds)
    return {"y": lr + seed}
