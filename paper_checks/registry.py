"""Check registration: a check is a function of a :class:`CheckContext` returning measurements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["REGISTRY", "CheckContext", "CheckSkipped", "CheckSpec", "Measurement", "check"]


class CheckSkipped(Exception):
    """Raise inside a check that cannot run here (e.g. an optional dependency is missing).

    The report shows a SKIP row with the message as the reason; a skip is not a failure.
    """


@dataclass(frozen=True)
class Measurement:
    """One row of the report: a predicted value, a measured value and the verdict.

    ``tolerance`` is the allowed ``|measured - predicted|`` (absolute) unless ``relative`` is
    set; ``passed`` defaults to that comparison but a check may decide otherwise (e.g. a claim
    such as "diverges" or an ordering), in which case it passes ``passed`` explicitly and says
    why in ``note``. A one-sided numeric claim is best written with :meth:`at_most` /
    :meth:`at_least`: the report then shows the bound, the slack allowed (``tolerance``, e.g.
    rounding) and the measured margin.
    """

    quantity: str
    predicted: Any
    measured: Any
    tolerance: float | None = None
    relative: bool = False
    passed: bool | None = None
    source: str = ""  # where the prediction comes from: "closed form", "SymPy", "Lyapunov solve"...
    note: str = ""  # one line on why the tolerance is what it is
    side: str = ""  # "<=" or ">=": a one-sided claim measured <= / >= predicted (+/- tolerance)

    @classmethod
    def at_most(cls, quantity: str, measured: float, bound: float, *, slack: float = 0.0,
                source: str = "", note: str = "") -> Measurement:
        """The claim ``measured ≤ bound``, passed when ``measured ≤ bound + slack``."""
        return cls(quantity, predicted=float(bound), measured=measured, tolerance=float(slack),
                   source=source, note=note, side="<=")

    @classmethod
    def at_least(cls, quantity: str, measured: float, bound: float, *, slack: float = 0.0,
                 source: str = "", note: str = "") -> Measurement:
        """The claim ``measured ≥ bound``, passed when ``measured ≥ bound − slack``."""
        return cls(quantity, predicted=float(bound), measured=measured, tolerance=float(slack),
                   source=source, note=note, side=">=")

    def margin(self) -> float | None:
        """For a one-sided claim, how far inside the bound (with its slack) the measurement is
        (negative: outside); None otherwise."""
        if self.side not in ("<=", ">="):
            return None
        gap = float(self.predicted) - float(self.measured)
        return (gap if self.side == "<=" else -gap) + float(self.tolerance or 0.0)

    def verdict(self) -> bool:
        if self.passed is not None:
            return bool(self.passed)
        if self.side:
            if self.side not in ("<=", ">="):
                raise ValueError(f"`side` must be '<=' or '>=', got {self.side!r}")
            margin = self.margin()
            return bool(margin is not None and np.isfinite(margin) and margin >= 0)
        if self.tolerance is None:
            raise ValueError(f"measurement {self.quantity!r} has neither `passed` nor `tolerance`")
        pred = np.asarray(self.predicted, dtype=float)
        meas = np.asarray(self.measured, dtype=float)
        err = np.abs(meas - pred)
        if self.relative:
            err = err / np.abs(pred)
        return bool(np.all(np.isfinite(err)) and np.all(err <= self.tolerance))


@dataclass
class CheckContext:
    """What a check gets: the mode, a seed, where to put figures, a progress hook."""

    quick: bool = True
    seed: int = 0
    out_dir: Path = field(default_factory=lambda: Path("paper_checks_out"))
    progress: bool = True
    # figures written through `savefig` during this check, in order (the runner links them)
    saved_figures: list[Path] = field(default_factory=list, repr=False, compare=False)

    def figure_path(self, name: str) -> Path:
        """Path ``out_dir/figures/name`` (directory created) for a figure saved by other means."""
        fig_dir = Path(self.out_dir) / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        return fig_dir / name

    def savefig(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure under ``figures/`` and close it; returns the path.

        A figure that breaks the plotting conventions (:func:`sgdsim.plotting.problems`: a panel
        without title or axis labels, a line without legend entry) is saved all the same, with
        a warning that the report counts and ``results.json`` lists.
        """
        import warnings

        import matplotlib.pyplot as plt

        from sgdsim.plotting import problems

        for problem in problems(fig):
            warnings.warn(f"figure {name}: {problem}", UserWarning, stacklevel=2)
        path = self.figure_path(name if name.endswith(".png") else name + ".png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        if path not in self.saved_figures:
            self.saved_figures.append(path)
        return path


@dataclass(frozen=True)
class CheckSpec:
    id: str  # dotted, e.g. "cohen.thresholds"
    paper: str  # e.g. "Cohen et al. 2021"
    claim: str  # one sentence
    func: Callable[[CheckContext], Measurement | list[Measurement]]


#: Every registered check, by id (filled by importing the ``checks_*`` modules).
REGISTRY: dict[str, CheckSpec] = {}


def check(id: str, *, paper: str, claim: str):
    """Register ``func(ctx) -> Measurement | list[Measurement]`` under the dotted ``id``."""

    def decorate(func):
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        REGISTRY[id] = CheckSpec(id=id, paper=paper, claim=claim, func=func)
        return func

    return decorate
