"""SymPy derivations of the discrete-time SGD theory, each with a cached numeric twin.

Every formula is *derived* here from the update rule, not typed in: the per-mode update of the
named method (PyTorch ``torch.optim.SGD`` form, see :mod:`sgdsim.theory.stability`) is written
symbolically, its Jacobian gives the companion matrix, the Jury (Schur–Cohn) conditions on the
characteristic polynomial give the stability threshold, the 2×2 Stein equation gives the
stationary moments, and the continuous Lyapunov equation of the underdamped Langevin surrogate
gives its variance.

Symbols (all positive reals): ``eta`` η (learning rate), ``a`` curvature λ + λ_wd, ``beta`` β
(momentum), ``c`` per-mode minibatch noise variance ``C_ii/B``, ``k`` step count, ``x`` = ηa.

Each ``foo(...) -> sympy.Expr`` has a twin ``foo_fn(...)`` returning a cached NumPy function with
the argument order given in its docstring, e.g.::

    >>> import sympy
    >>> from sgdsim.theory import symbolic as S
    >>> sympy.factor(S.stability_threshold("heavy_ball"))
    2*(beta + 1)
    >>> S.stability_threshold_fn("heavy_ball")(0.9)
    3.8
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import sympy as sp

from sgdsim._validation import check_choice

__all__ = [
    "SYMBOLS",
    "characteristic_polynomial",
    "companion_matrix",
    "jury_conditions",
    "langevin_coefficients",
    "langevin_variance",
    "langevin_variance_fn",
    "latex",
    "msd_stationary_start",
    "msd_stationary_start_fn",
    "stability_threshold",
    "stability_threshold_fn",
    "stationary_moments",
    "stationary_step2",
    "stationary_step2_fn",
    "stationary_variance",
    "stationary_variance_fn",
    "variance_ratio",
    "variance_ratio_fn",
]

eta, a, beta, c, x = sp.symbols("eta a beta c x", positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
lam, lam_wd, B, z = sp.symbols("lambda lambda_wd B z")
SYMBOLS = {"eta": eta, "a": a, "beta": beta, "c": c, "k": k, "x": x, "lambda": lam,
           "lambda_wd": lam_wd, "B": B, "z": z}

_METHODS = ("gd", "heavy_ball", "nesterov", "ema")
_MODE_ARGS = (eta, a, beta, c)


def _update(method: str) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Symbolic one-step update: returns (new state, state, noise symbol) for a mode."""
    check_choice("method", method, _METHODS)
    th, bf, xi = sp.symbols("theta buf xi")
    g = a * th + xi
    if method == "gd":
        return sp.Matrix([th - eta * g]), sp.Matrix([th]), sp.Matrix([xi])
    tau = beta if method == "ema" else 0
    buf_new = beta * bf + (1 - tau) * g
    th_new = th - eta * (g + beta * buf_new) if method == "nesterov" else th - eta * buf_new
    return sp.Matrix([th_new, buf_new]), sp.Matrix([th, bf]), sp.Matrix([xi])


@cache
def companion_matrix(method: str) -> sp.Matrix:
    """Jacobian of the noise-free per-mode update w.r.t. the state ``(θ, buf)`` (θ alone for GD)."""
    new, state, _ = _update(method)
    return sp.simplify(new.jacobian(state))


@cache
def _noise_vector(method: str) -> sp.Matrix:
    new, _, xi = _update(method)
    return new.jacobian(xi)


@cache
def characteristic_polynomial(method: str) -> sp.Expr:
    """``det(zI − A)`` of the companion matrix, a polynomial in ``z``."""
    return sp.expand(companion_matrix(method).charpoly(z).as_expr())


@cache
def jury_conditions(method: str) -> tuple[sp.Expr, ...]:
    """Jury/Schur–Cohn conditions, each ``> 0`` iff stable, in terms of ``x = ηa`` and β.

    Degree 1 (``z + a₀``): ``1 − a₀²``. Degree 2 (``z² + a₁z + a₀``): ``p(1)``, ``p(−1)``,
    ``1 − a₀²`` — together equivalent to both roots inside the unit circle.
    """
    p = sp.Poly(characteristic_polynomial(method).subs(eta, x / a), z)
    coeffs = [sp.simplify(cf) for cf in p.all_coeffs()]
    if p.degree() == 1:
        return (sp.factor(1 - coeffs[1] ** 2),)
    a1, a0 = coeffs[1], coeffs[2]
    return tuple(sp.factor(e) for e in (1 + a1 + a0, 1 - a1 + a0, 1 - a0**2))


@cache
def stability_threshold(method: str) -> sp.Expr:
    """Critical ``ηa`` (function of β): stable iff ``0 < ηa <`` this value.

    Derived from :func:`jury_conditions`: the binding condition is ``p(−1) > 0`` (an eigenvalue
    leaves the unit circle through −1); the other conditions hold below it for β in [0, 1)
    (``p(1) ∝ ηa > 0`` and ``|a₀| < 1``), which the tests verify numerically.
    """
    conds = jury_conditions(method)
    binding = conds[0] if len(conds) == 1 else conds[1]
    sols = [s for s in sp.solve(sp.Eq(binding, 0), x) if s.is_positive is not False]
    if len(sols) != 1:
        raise RuntimeError(f"unexpected threshold solutions {sols} for {method!r}")
    return sp.factor(sp.simplify(sols[0]))


@cache
def stationary_moments(method: str) -> sp.Matrix:
    """Stationary per-mode covariance of the state: solves ``Z = A Z Aᵀ + c p pᵀ`` exactly."""
    A = companion_matrix(method)
    p = _noise_vector(method)
    n = A.shape[0]
    syms = sp.symbols(f"s0:{n * (n + 1) // 2}")
    Z = sp.zeros(n, n)
    it = iter(syms)
    for i in range(n):
        for j in range(i, n):
            Z[i, j] = Z[j, i] = next(it)
    eqs = list(Z - A * Z * A.T - c * p * p.T)
    sol = sp.solve(eqs, syms, dict=True)[0]
    return Z.subs(sol).applyfunc(sp.factor)


@cache
def stationary_variance(method: str = "heavy_ball") -> sp.Expr:
    """Exact stationary ``Var(θ)`` of one mode, in (η, a, β, c).

    For heavy ball this yields ``ηc(1+β)/((1−β)a(2(1+β) − ηa))``.
    """
    return sp.factor(stationary_moments(method)[0, 0])


@cache
def stationary_step2(method: str = "heavy_ball") -> sp.Expr:
    """Exact stationary ``E(θ_{k+1} − θ_k)²`` of one mode: ``uᵀZu + p₀²c``, u = row₀(A) − e₀."""
    A = companion_matrix(method)
    p = _noise_vector(method)
    Z = stationary_moments(method)
    u = A[0, :] - sp.eye(A.shape[0])[0, :]
    return sp.factor(sp.simplify((u * Z * u.T)[0, 0] + p[0] ** 2 * c))


@cache
def msd_stationary_start(method: str = "heavy_ball") -> sp.Expr:
    """``E(θ_k − θ_0)²`` of one mode from a stationary start: ``2(Z₀₀ − (A^k Z)₀₀)``.

    ``A^k`` by Cayley–Hamilton with the roots ``z±`` of the characteristic polynomial:
    ``A^k = (z₊^k (A − z₋I) − z₋^k (A − z₊I))/(z₊ − z₋)``; for GD, ``(1 − ηa)^k``. The roots are
    complex for underdamped modes (modulus √β for heavy ball); the expression is then real.
    """
    A = companion_matrix(method)
    Z = stationary_moments(method)
    if A.shape[0] == 1:
        return sp.factor(2 * Z[0, 0]) * (1 - A[0, 0] ** k)
    tr, det = A.trace(), A.det()
    disc = sp.sqrt(tr**2 - 4 * det)
    zp, zm = (tr + disc) / 2, (tr - disc) / 2
    AZ = (A * Z)[0, 0]
    cov_k = (zp**k * (AZ - zm * Z[0, 0]) - zm**k * (AZ - zp * Z[0, 0])) / (zp - zm)
    return 2 * (Z[0, 0] - cov_k)


@cache
def langevin_coefficients() -> dict[str, sp.Expr]:
    """Underdamped Langevin surrogate of heavy ball + weight decay, in time ``t = ηk``.

    ``m θ̈ + f θ̇ = −∇[L + (λ_wd/2)‖θ‖²] + √(η/B) Σ^{1/2} ξ(t)`` with mass ``m = η(1+β)/2``,
    friction ``f = 1 − β``; per mode: curvature ``a = λ + λ_wd``, and in the damped-oscillator
    form ``θ̈ + 2γθ̇ + ω²θ = …``: damping ``γ = f/(2m) = (1−β)/(η(1+β))`` (underdamped iff
    γ < ω), friction rate ``f/m = 2γ``, frequency ``ω = √(a/m)``, noise intensity
    ``σ² = η C_ii/B = ηc``, temperature ``T = σ²/(2f)`` (so ``Var θ = T/a``, ``m Var θ̇ = T``).
    """
    mass = eta * (1 + beta) / 2
    friction = 1 - beta
    sigma2 = eta * c
    return {
        "mass": mass,
        "friction": friction,
        "curvature": lam + lam_wd,
        "damping": sp.simplify(friction / (2 * mass)),
        "friction_rate": sp.simplify(friction / mass),
        "frequency": sp.sqrt(a / mass),
        "noise_intensity": sigma2,
        "temperature": sp.simplify(sigma2 / (2 * friction)),
    }


@cache
def langevin_variance() -> sp.Expr:
    """Stationary ``Var θ`` of the Langevin surrogate, from its continuous Lyapunov equation.

    Phase-space drift ``M = [[0, 1], [−a/m, −f/m]]``, diffusion ``D = diag(0, σ²/m²)``; solves
    ``M S + S Mᵀ + D = 0``. Yields ``ηc/(2a(1−β))``.
    """
    co = langevin_coefficients()
    m, f, s2 = co["mass"], co["friction"], co["noise_intensity"]
    M = sp.Matrix([[0, 1], [-a / m, -f / m]])
    D = sp.Matrix([[0, 0], [0, s2 / m**2]])
    s = sp.symbols("q0:3")
    S = sp.Matrix([[s[0], s[1]], [s[1], s[2]]])
    sol = sp.solve(list(M * S + S * M.T + D), s, dict=True)[0]
    return sp.factor(S.subs(sol)[0, 0])


@cache
def variance_ratio() -> sp.Expr:
    """Discrete heavy-ball / Langevin stationary variance, ``1/(1 − ηa/(2(1+β)))``."""
    return sp.factor(sp.simplify(stationary_variance("heavy_ball") / langevin_variance()))


# ---------------------------------------------------------------------- numeric twins
@cache
def _lambdified(name: str, method: str | None, args: tuple[sp.Symbol, ...]) -> Callable:
    fn = globals()[name]
    expr = fn() if method is None else fn(method)
    return sp.lambdify(args, expr, modules="numpy")


def stability_threshold_fn(method: str) -> Callable[[float], float]:
    """Numeric twin of :func:`stability_threshold`: ``f(beta)``."""
    return _lambdified("stability_threshold", method, (beta,))


def stationary_variance_fn(method: str = "heavy_ball") -> Callable:
    """Numeric twin of :func:`stationary_variance`: ``f(eta, a, beta, c)`` (broadcasts)."""
    return _lambdified("stationary_variance", method, _MODE_ARGS)


def stationary_step2_fn(method: str = "heavy_ball") -> Callable:
    """Numeric twin of :func:`stationary_step2`: ``f(eta, a, beta, c)``."""
    return _lambdified("stationary_step2", method, _MODE_ARGS)


def langevin_variance_fn() -> Callable:
    """Numeric twin of :func:`langevin_variance`: ``f(eta, a, beta, c)``."""
    return _lambdified("langevin_variance", None, _MODE_ARGS)


def variance_ratio_fn() -> Callable:
    """Numeric twin of :func:`variance_ratio`: ``f(eta, a, beta, c)`` (c unused)."""
    return _lambdified("variance_ratio", None, _MODE_ARGS)


def msd_stationary_start_fn(method: str = "heavy_ball") -> Callable:
    """Numeric twin of :func:`msd_stationary_start`: ``f(k, eta, a, beta, c)``.

    Evaluated in complex arithmetic (underdamped roots) and returned as its real part.
    """
    raw = _lambdified("msd_stationary_start", method, (k, *_MODE_ARGS))

    def f(k_, eta_, a_, beta_, c_):
        val = raw(np.asarray(k_), *(np.asarray(v, dtype=complex) for v in (eta_, a_, beta_, c_)))
        return np.real(val)

    return f


def latex(expr: sp.Basic | str, method: str | None = None, *, lhs: str | None = None) -> str:
    """LaTeX of an expression or of a named formula of this module (``"stationary_variance"``).

    ``lhs`` prepends ``lhs = ``, handy in notebooks: ``latex("variance_ratio", lhs="r")``.
    """
    if isinstance(expr, str):
        if expr not in __all__ or expr.endswith("_fn") or expr in ("latex", "SYMBOLS"):
            raise ValueError(f"`expr` must be a sympy expression or a formula name, got {expr!r}")
        fn = globals()[expr]
        expr = fn() if method is None else fn(method)
    if isinstance(expr, dict):
        return r",\quad ".join(f"{key} = {sp.latex(v)}" for key, v in expr.items())
    body = sp.latex(expr)
    return f"{lhs} = {body}" if lhs else body
