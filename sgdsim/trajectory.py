"""The result of :func:`sgdsim.simulate`: a labelled record of an ensemble run."""

from __future__ import annotations

import enum
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sgdsim._files import default_file_mode

__all__ = ["DivergenceError", "RunStatus", "Trajectory", "default_divergence_threshold"]


class RunStatus(str, enum.Enum):
    """How an ensemble run ended: one code for :class:`Trajectory` and
    :class:`~sgdsim.sde.SDEPaths` alike (compare diffrax's ``RESULTS``, SciPy's
    ``OdeResult.status``/``message``). A ``str`` enum: ``status == "ok"`` works.

    ``OK`` ("ok", code 0): every step was taken; ``DIVERGED`` ("diverged", 1): at least one
    replica diverged and was frozen (its records NaN after its step; see ``diverged_at``), the
    others ran to the end; ``STOPPED`` ("stopped", 2): the run ended at the first divergence
    (``on_divergence="stop"``), records NaN after it.
    """

    OK = "ok"
    DIVERGED = "diverged"
    STOPPED = "stopped"

    @property
    def code(self) -> int:
        return list(RunStatus).index(self)

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_divergence(cls, diverged_at: np.ndarray) -> RunStatus:
        """``DIVERGED`` if any entry of ``diverged_at`` (replica → step, −1 = never) is set."""
        return cls.DIVERGED if np.any(np.asarray(diverged_at) >= 0) else cls.OK


_MESSAGES = {
    RunStatus.OK: "The run finished: every replica took every step.",
    RunStatus.DIVERGED: "A replica diverged (squared state norm non-finite or above the divergence "
    "threshold); diverged replicas are NaN after their step (`diverged_at`), the others finished.",
    RunStatus.STOPPED: "The run was stopped at the first divergence (on_divergence='stop'); "
    "records are NaN after it.",
}


def default_divergence_threshold(start: np.ndarray, reference=None) -> float:
    """The bound on a replica's squared state norm beyond which it has diverged:
    ``1e20·max(1, max_r ‖start_r‖², ‖reference‖²)`` (``start`` (R, n); ``reference`` a minimum
    or fixed point, optional)."""
    scale = max(1.0, float(np.max(np.sum(start * start, axis=1)))) if start.size else 1.0
    if reference is not None:
        scale = max(scale, float(np.sum(np.asarray(reference, dtype=float) ** 2)))
    return 1e20 * scale


class DivergenceError(RuntimeError):
    """A replica diverged and ``on_divergence='raise'``. ``.trajectory`` holds what was computed."""

    def __init__(self, step: int, replica: int, trajectory: Trajectory, advice: str | None = None):
        super().__init__(
            f"replica {replica} diverged at step {step} (‖θ‖² non-finite or above the divergence "
            "threshold); the partial run is in `.trajectory`. "
            + (advice or "Lower `lr`, or pass on_divergence='record' (freeze diverged replicas) or "
               "'stop' to keep going.")
        )
        self.step = step
        self.replica = replica
        self.trajectory = trajectory


class Trajectory:
    """Recorded observables of an ensemble run, backed by an :class:`xarray.Dataset`.

    Variables: one per recorded observable with dims ``(step, replica)`` (``params``: ``(step,
    replica, dim)``), ``diverged_at`` (replica; −1 = never), ``final_params`` (replica, dim) and,
    with momentum, ``final_buffer`` (replica, dim).
    Attributes: ``status`` (a :class:`RunStatus` value: "ok" | "diverged" | "stopped") and
    ``config`` (JSON of the run).
    Diverged replicas have NaN records after their divergence step, and only there.
    """

    def __init__(self, dataset: xr.Dataset):
        if not isinstance(dataset, xr.Dataset):
            raise TypeError(f"`dataset` must be an xarray.Dataset, got {type(dataset).__name__}")
        self.dataset = dataset

    # --- access ------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> xr.DataArray:
        return self.dataset[name]

    def __contains__(self, name: str) -> bool:
        return name in self.dataset

    def __repr__(self) -> str:
        ds = self.dataset
        obs = [v for v in ds.data_vars if v not in ("diverged_at", "final_params", "final_buffer")]
        return (
            f"Trajectory(status={self.status.value!r}, replicas={ds.sizes['replica']}, "
            f"records={ds.sizes['step']}, observables={obs})"
        )

    @property
    def steps(self) -> np.ndarray:
        return self.dataset["step"].values

    @property
    def status(self) -> RunStatus:
        """How the run ended (compares equal to its string: ``t.status == "ok"``)."""
        return RunStatus(str(self.dataset.attrs["status"]))

    @property
    def message(self) -> str:
        """What :attr:`status` means, in a sentence."""
        return self.status.message

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.dataset.attrs["config"])

    @property
    def final_params(self) -> np.ndarray:
        """θ after the last step (or at divergence), shape (replicas, dim)."""
        return self.dataset["final_params"].values

    @property
    def final_buffer(self) -> np.ndarray | None:
        """The momentum buffer after the last step, shape (replicas, dim); None without momentum.
        With :attr:`final_params` it continues a run: ``simulate(..., init=t.final_params,
        init_buffer=t.final_buffer)``."""
        return self.dataset["final_buffer"].values if "final_buffer" in self.dataset else None

    @property
    def diverged_at(self) -> np.ndarray:
        """The step at which each replica diverged, shape (replicas,); −1 = never."""
        return self.dataset["diverged_at"].values

    @property
    def divergence(self) -> tuple[int, int] | None:
        """(step, replica) of the first divergence, or None."""
        d = self.diverged_at
        if not np.any(d >= 0):
            return None
        steps = np.where(d >= 0, d, np.iinfo(np.int64).max)
        r = int(np.argmin(steps))
        return int(d[r]), r

    def mean(self, name: str) -> xr.DataArray:
        """Ensemble mean over replicas that have not diverged (NaNs skipped)."""
        return self[name].mean("replica", skipna=True)

    # --- persistence (netCDF4 via h5netcdf: no pickle, readable without sgdsim) ----------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename) to a netCDF4 file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.fchmod(fd, default_file_mode())  # mkstemp's 0600 would survive the rename
        os.close(fd)
        try:
            self.dataset.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectory:
        try:
            ds = xr.load_dataset(path, engine="h5netcdf")
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not a netCDF4 file sgdsim can read ({exc})") from exc
        for key in ("status", "config"):
            if key not in ds.attrs:
                raise ValueError(f"{path} is not an sgdsim trajectory (attribute {key!r} missing)")
        return cls(ds)

    # --- a quick look ----------------------------------------------------------------------
    def plot(self, name: str = "loss", ax=None, logx: bool = False, logy: bool = True,
             title: str | None = None):
        """Ensemble mean of a recorded quantity against the step, with a ±1 standard-error band.

        Parameters
        ----------
        name : str
            A recorded quantity (``"loss"``, ``"dist2"``, ``"step2"``, ...; see ``record=`` of
            :func:`sgdsim.simulate`). Diverged replicas (NaN) are left out of the mean.
        ax : matplotlib Axes, optional
            Where to draw; a new figure (:func:`sgdsim.plotting.figure`) when None.
        logx, logy : bool
            Logarithmic step axis / value axis (default: linear steps, log values).
        title : str, optional
            Axes title; default ``"<name>: mean over R replicas ± 1 s.e."``.

        Returns
        -------
        matplotlib Axes
            With a title, labelled axes (:func:`sgdsim.plotting.label`) and a legend.
        """
        from sgdsim.plotting import figure, finish

        if ax is None:
            _, ax = figure(width=5.2, height=3.6)
        da = self[name]
        m = da.mean("replica", skipna=True)
        n = da.count("replica").clip(min=1)
        se = da.std("replica", skipna=True) / np.sqrt(n)
        ax.plot(self.steps, m, label=f"mean {name}")
        ax.fill_between(self.steps, m - se, m + se, alpha=0.3, lw=0, label="± 1 standard error")
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        default = f"{name}: mean over {da.sizes['replica']} replicas ± 1 s.e."
        return finish(ax, title=default if title is None else title, xlabel="step", ylabel=name)
