"""Deprecated alias of :mod:`sgdsim.sde` (the SDE integrators) and :mod:`sgdsim.theory.schemes`.

The integrators moved to :mod:`sgdsim.sde` in 0.3 (``sgdsim.theory`` now holds closed forms
only); the exact scheme algebra to :mod:`sgdsim.theory.schemes`. This module re-exports both and
will be removed in the next minor version.
"""

import warnings

from sgdsim.sde import SDEPaths, baoab, euler_maruyama, exact_ou
from sgdsim.theory.schemes import (
    scheme_moments,
    scheme_stationary_covariance,
    scheme_transition,
)

warnings.warn(
    "sgdsim.theory.sde is deprecated: import the integrators from sgdsim.sde and the scheme "
    "algebra (scheme_transition, scheme_moments, scheme_stationary_covariance) from "
    "sgdsim.theory.schemes",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "SDEPaths",
    "baoab",
    "euler_maruyama",
    "exact_ou",
    "scheme_moments",
    "scheme_stationary_covariance",
    "scheme_transition",
]
