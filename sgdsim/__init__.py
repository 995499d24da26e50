"""sgdsim: simulation and theory sandbox for the dynamics of stochastic gradient descent."""

from sgdsim import (
    _numba_cache,  # noqa: F401  (first: stamps the kernel caches, see its docstring)
    sweep,  # the package is callable: sgdsim.sweep(fn, grid)
)
from sgdsim._version import __version__
from sgdsim.backends import available_backends, get_backend
from sgdsim.central_flow import CentralFlowResult, central_flow
from sgdsim.flow import FlowResult, gradient_flow
from sgdsim.optim import SGD, Schedule, constant_lr, cosine_lr, nudged_sgd, sgd, step_lr, warmup_lr
from sgdsim.problems import (
    AdditiveNoise,
    CustomProblem,
    LabelNoise,
    LinearRegression,
    Quadratic,
    power_law_spectrum,
)
from sgdsim.problems.random_potential import GaussianRandomPotential
from sgdsim.simulate import simulate
from sgdsim.svag import SVAGReport, svag_report
from sgdsim.sweep import sweep as run_sweep
from sgdsim.trajectory import DivergenceError, Trajectory

# Heavier subpackages load on first use: ``sgdsim.theory`` (SymPy), ``sgdsim.analysis``,
# ``sgdsim.curvature``, ``sgdsim.lattice``, ``sgdsim.nets`` (needs the ``nets`` extra: PyTorch).
_LAZY = ("analysis", "curvature", "lattice", "nets", "theory")
# names from modules that import the theory (SymPy): loaded on first use too
_LAZY_NAMES = {"TeacherStudent": "teacher_student", "simulate_teacher_student": "teacher_student"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"sgdsim.{name}")
    if name in _LAZY_NAMES:
        import importlib

        return getattr(importlib.import_module(f"sgdsim.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'sgdsim' has no attribute {name!r}")

__all__ = [
    "SGD",
    "AdditiveNoise",
    "CentralFlowResult",
    "CustomProblem",
    "DivergenceError",
    "FlowResult",
    "GaussianRandomPotential",
    "LabelNoise",
    "LinearRegression",
    "Quadratic",
    "SVAGReport",
    "Schedule",
    "TeacherStudent",
    "Trajectory",
    "__version__",
    "available_backends",
    "central_flow",
    "constant_lr",
    "cosine_lr",
    "get_backend",
    "gradient_flow",
    "nudged_sgd",
    "power_law_spectrum",
    "run_sweep",
    "sgd",
    "simulate",
    "simulate_teacher_student",
    "step_lr",
    "svag_report",
    "sweep",
    "warmup_lr",
]
