"""User-defined problems: a loss given by the user's own functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sgdsim._validation import check_int
from sgdsim.problems.noise import AdditiveNoise

__all__ = ["CustomProblem"]


@dataclass(frozen=True)
class CustomProblem:
    """A problem defined by the user's functions of a single parameter vector θ, shape (d,).

    Parameters
    ----------
    dim : int
        Number of parameters d.
    grad : callable θ -> ∇L(θ)
        Returns an array of shape (d,). To run on the Numba backend it must be compilable by
        ``numba.njit`` (pass an ``@njit`` function or a plain function Numba can compile).
    loss : callable θ -> float, optional
        Needed to record ``"loss"``.
    hvp : callable (θ, v) -> H(θ) v, optional
        Used by the curvature tools.
    noise : AdditiveNoise, optional
        Per-sample gradient noise covariance C; a minibatch of size B gets C/B.
    vectorized : bool
        If True, ``grad``/``loss`` also accept a batch of shape (R, d) (faster NumPy backend).

    Examples
    --------
    The self-stabilization toy L(x, y) = ½·y·x² − c·y::

        def grad(th):
            out = np.empty(2)
            out[0] = th[1] * th[0]
            out[1] = 0.5 * th[0] ** 2 - c
            return out
    """

    dim: int
    grad: Callable[[np.ndarray], np.ndarray]
    loss: Callable[[np.ndarray], float] | None = None
    hvp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    noise: AdditiveNoise | None = None
    vectorized: bool = False

    def __post_init__(self) -> None:
        check_int("dim", self.dim, minimum=1)
        if self.grad is None:
            raise TypeError("`grad` must be a callable θ -> ∇L(θ) returning shape (dim,), got None")
        for name in ("grad", "loss", "hvp"):
            f = getattr(self, name)
            if f is not None and not callable(f):
                raise TypeError(f"`{name}` must be callable, got {f!r}")
        if self.noise is not None:
            if not isinstance(self.noise, AdditiveNoise):
                raise TypeError(f"`noise` must be AdditiveNoise or None, got {self.noise!r}")
            if self.noise.cov.shape[0] != self.dim:
                raise ValueError(f"`noise.cov` has size {self.noise.cov.shape[0]}, `dim` is {self.dim}")

    def check_oracles(self, theta: np.ndarray, *, need_loss: bool = False) -> None:
        """Call ``grad`` (and ``loss``) once at ``theta`` (d,) and refuse what a run cannot use: a
        gradient that is not a float array of shape (d,) (a compiled kernel would read past a
        short one or silently drop the tail of a long one), or a ``loss`` that is not one real
        number. ``need_loss``: the run records the loss, so ``loss`` must be given."""
        theta = np.asarray(theta, dtype=np.float64)
        if need_loss and self.loss is None:
            raise ValueError("this CustomProblem has no `loss` function; pass loss=... to record it")
        g = self.grad(theta.copy())
        g_arr = np.asarray(g) if isinstance(g, np.ndarray) or np.ndim(g) else None
        if g_arr is None or g_arr.shape != (self.dim,) or g_arr.dtype.kind not in "fiu":
            got = f"shape {g_arr.shape}, dtype {g_arr.dtype}" if g_arr is not None else repr(g)
            raise ValueError(
                f"`grad` must return a real array of shape ({self.dim},) (dim={self.dim}); at θ0 it "
                f"returned {got}"
            )
        if self.loss is not None:
            val = self.loss(theta.copy())
            scalar = not isinstance(val, (str, bytes, bool)) and np.ndim(val) == 0
            if not scalar or np.asarray(val).dtype.kind not in "fiu":
                raise ValueError(f"`loss` must return one real number; at θ0 it returned {val!r}")

    def _apply(self, f, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim == 1 or self.vectorized:
            return np.asarray(f(theta))
        flat = theta.reshape(-1, self.dim)
        out = np.stack([np.asarray(f(t)) for t in flat])
        return out.reshape(theta.shape[:-1] + out.shape[1:])

    def grad_batch(self, theta: np.ndarray) -> np.ndarray:
        """∇L for θ of shape (..., d)."""
        return self._apply(self.grad, theta)

    def loss_batch(self, theta: np.ndarray) -> np.ndarray:
        """L for θ of shape (..., d)."""
        if self.loss is None:
            raise ValueError("this CustomProblem has no `loss` function; pass loss=... to record it")
        return self._apply(self.loss, theta)
