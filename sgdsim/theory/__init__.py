"""Exact theory of SGD dynamics: stability, discrete moments (Lyapunov), SymPy derivations.

Only the discrete-time exact theory is exported here; the SDE / Fokker–Planck modules live
beside it (``sgdsim.theory.langevin``, ``schemes``, ``fokker_planck``, ``currents``). Everything in
``sgdsim.theory`` is a closed form or a deterministic solve; the simulators that these are
checked against live above it (``sgdsim.simulate``, ``sgdsim.sde``). The homogenized-SGD risk
curves (``homogenized``) and the teacher–student order-parameter ODEs (``teacher_student``) are
the high-dimensional limits.
"""

from sgdsim.theory import symbolic
from sgdsim.theory.homogenized import (
    HomogenizedSGD,
    LeastSquaresSpectrum,
    LowIntrinsicDimensionWarning,
    critical_lr,
    power_law_risk_exponent,
)
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
from sgdsim.theory.teacher_student import (
    OrderParameterCurve,
    SymmetricFixedPoint,
    generalisation_error,
    integrate_order_parameters,
    learning_lr_threshold,
    order_parameter_rhs,
    perfect_learning_lr_threshold,
    plateau_error_small_lr,
    symmetric_fixed_point,
)

__all__ = [
    "METHODS",
    "HomogenizedSGD",
    "LeastSquaresSpectrum",
    "LinRegMoments",
    "LowIntrinsicDimensionWarning",
    "NoisyQuadraticMoments",
    "OrderParameterCurve",
    "SymmetricFixedPoint",
    "companion_matrix",
    "critical_lr",
    "generalisation_error",
    "integrate_order_parameters",
    "learning_lr_threshold",
    "lr_threshold",
    "lr_threshold_numeric",
    "max_stable_lr",
    "mean_square_lr_threshold",
    "mean_square_rate",
    "method_params",
    "minibatch_kappa",
    "nsgd_is_stable",
    "nsgd_max_stable_lr",
    "order_parameter_rhs",
    "perfect_learning_lr_threshold",
    "plateau_error_small_lr",
    "power_law_risk_exponent",
    "spectral_radius",
    "step_matrices",
    "symbolic",
    "symmetric_fixed_point",
    "threshold",
]
