"""Small real networks (PyTorch, CPU, float64) for curvature and training-dynamics checks.

Needs the optional ``nets`` extra (``torch``; ``scikit-learn`` for :func:`digits`). Importing
``sgdsim`` itself never imports torch.

Networks are pure functions of a flat parameter vector (:mod:`~sgdsim.nets.models`); exact
Hessian-vector products (:mod:`~sgdsim.nets.hvp`) are matvecs for :mod:`sgdsim.curvature`.
"""

from sgdsim.nets.data import Dataset, chebyshev_toy, digits, teacher_student
from sgdsim.nets.directions import (
    StepLineSearch,
    mlp_loss_fn,
    random_orthonormal,
    step_line_search,
    subspace_share,
)
from sgdsim.nets.ghost_bn import GhostBatchNorm
from sgdsim.nets.hvp import FuncHessian, MLPHessian, MLPProblem, mlp_batch_oracle
from sgdsim.nets.losses import LOSSES, loss_value
from sgdsim.nets.models import MLPSpec, init_params, mlp_forward, unflatten
from sgdsim.nets.replicas import replica_gradients, replica_noisy_gd, replica_sgd
from sgdsim.nets.scaling import LR_RULES, regime_adaptation, scale_lr, steps_for_epochs
from sgdsim.nets.train import OPTIMIZERS, train

__all__ = [
    "LOSSES",
    "LR_RULES",
    "OPTIMIZERS",
    "Dataset",
    "FuncHessian",
    "GhostBatchNorm",
    "MLPHessian",
    "MLPProblem",
    "MLPSpec",
    "StepLineSearch",
    "chebyshev_toy",
    "digits",
    "init_params",
    "loss_value",
    "mlp_batch_oracle",
    "mlp_forward",
    "mlp_loss_fn",
    "random_orthonormal",
    "regime_adaptation",
    "replica_gradients",
    "replica_noisy_gd",
    "replica_sgd",
    "scale_lr",
    "step_line_search",
    "steps_for_epochs",
    "subspace_share",
    "teacher_student",
    "train",
    "unflatten",
]
