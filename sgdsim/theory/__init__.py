"""Exact theory of SGD dynamics: stability, discrete moments (Lyapunov), SymPy derivations.

Only the discrete-time exact theory is exported here; the SDE / Fokker–Planck modules live
beside it (``sgdsim.theory.langevin``, ``sde``, ``fokker_planck``, ``currents``).
"""

from sgdsim.theory import symbolic
from sgdsim.theory.linreg_moments import (
    LinRegMoments,
    mean_square_lr_threshold,
    mean_square_rate,
    minibatch_kappa,
)
from sgdsim.theory.lyapunov import NoisyQuadraticMoments
from sgdsim.theory.stability import (
    METHODS,
    companion_matrix,
    lr_threshold,
    lr_threshold_numeric,
    max_stable_lr,
    method_params,
    nsgd_is_stable,
    nsgd_max_stable_lr,
    spectral_radius,
    step_matrices,
    threshold,
)

__all__ = [
    "METHODS",
    "LinRegMoments",
    "NoisyQuadraticMoments",
    "companion_matrix",
    "lr_threshold",
    "lr_threshold_numeric",
    "max_stable_lr",
    "mean_square_lr_threshold",
    "mean_square_rate",
    "method_params",
    "minibatch_kappa",
    "nsgd_is_stable",
    "nsgd_max_stable_lr",
    "spectral_radius",
    "step_matrices",
    "symbolic",
    "threshold",
]
