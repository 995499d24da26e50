"""Central flow (sgdsim.central_flow) against independent truth.

* closed forms derived by hand for the self-stabilization toy ``L = ½yx² − cy`` (σ² = 2c at
  y = 2/η; heavy ball: the same σ² at y = 2(1+β)/η) and for a two-eigenvalue toy built so the
  complementarity problem has a closed-form solution (both edge eigenvalues active, and one
  leaving the edge);
* a SymPy cubic: the first central-flow step from a point on the edge is the projection of
  −η∇L off ∇S, with ∇S from SymPy's exact third derivatives (not from the HVP differences the
  code uses);
* the complementarity solver against brute-force enumeration of active sets (diagonal case), a
  direct check of its optimality conditions, rotation invariance and an independent
  scipy minimization over Cholesky factors (general case).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import sgdsim as sg
from sgdsim.central_flow import central_flow, edge_threshold, solve_edge_complementarity


# ------------------------------------------------------------------------------------------------
# toys
# ------------------------------------------------------------------------------------------------
def _self_stab(c: float) -> sg.CustomProblem:
    def grad(th):
        return np.array([th[1] * th[0], 0.5 * th[0] ** 2 - c])

    def hvp(th, v):
        return np.array([th[1] * v[0] + th[0] * v[1], th[0] * v[0]])

    def loss(th):
        return 0.5 * th[1] * th[0] ** 2 - c * th[1]

    return sg.CustomProblem(dim=2, grad=grad, loss=loss, hvp=hvp)


def _two_edge(c1: float, c2: float, rho: float) -> sg.CustomProblem:
    """L = ½y₁x₁² + ½(ρy₁ + y₂)x₂² − c₁y₁ − c₂y₂ on θ = (x₁, x₂, y₁, y₂)."""

    def grad(th):
        x1, x2, y1, y2 = th
        s2 = rho * y1 + y2
        return np.array([y1 * x1, s2 * x2, 0.5 * x1 ** 2 + 0.5 * rho * x2 ** 2 - c1,
                         0.5 * x2 ** 2 - c2])

    def hvp(th, v):
        x1, x2, y1, y2 = th
        s2 = rho * y1 + y2
        H = np.array([[y1, 0, x1, 0], [0, s2, rho * x2, x2], [x1, rho * x2, 0, 0],
                      [0, x2, 0, 0]])
        return H @ v

    def loss(th):
        x1, x2, y1, y2 = th
        return 0.5 * y1 * x1 ** 2 + 0.5 * (rho * y1 + y2) * x2 ** 2 - c1 * y1 - c2 * y2

    return sg.CustomProblem(dim=4, grad=grad, loss=loss, hvp=hvp)


def test_self_stabilization_closed_form():
    # hand derivation: ∇S = (0, 1), ∇L = (0, −c) at x = 0 → σ² = 2c, S = 2/η, ⟨L⟩ = −2c/η + ½σ²·2/η = 0
    c, eta = 0.75, 0.1
    r = central_flow(_self_stab(c), eta, [0.0, 2 / eta - 1.0], np.arange(0.0, 101.0, 10.0))
    at = r.steps >= 40  # y reaches 2/η after 1/(ηc) ≈ 13.3 steps
    # polynomial toy: H is linear in θ so the ∇³L differences are exact; roundoff only
    np.testing.assert_allclose(r.sharpness[at], 2 / eta, rtol=1e-10)
    np.testing.assert_allclose(r.variances[at, 0], 2 * c, rtol=1e-8)
    np.testing.assert_allclose(r.loss[at], 0.0, atol=1e-9)
    np.testing.assert_allclose(r.params[at, 0], 0.0, atol=1e-12)
    assert np.all(r.n_edge[at] == 1) and r.n_edge[0] == 0
    # before the edge: gradient flow y = y0 + η c k exactly (Euler on a linear drift)
    np.testing.assert_allclose(r.params[1, 1], 2 / eta - 1.0 + eta * c * 10, rtol=1e-12)


def test_heavy_ball_threshold_and_variance():
    # our derivation (module docstring): y pinned at 2(1+β)/η, σ² = 2c (same constraint)
    c, eta, beta = 0.75, 0.1, 0.5
    tau = 2 * (1 + beta) / eta
    assert edge_threshold(eta, "heavy_ball", beta) == pytest.approx(tau)
    r = central_flow(_self_stab(c), eta, [0.0, tau - 1.0], np.array([0.0, 5.0, 60.0]),
                     optimizer="heavy_ball", beta=beta)
    # slow drift η/(1−β)·c per step before the edge
    np.testing.assert_allclose(r.params[1, 1], tau - 1.0 + 5 * eta * c / (1 - beta), rtol=1e-12)
    np.testing.assert_allclose(r.sharpness[-1], tau, rtol=1e-10)
    np.testing.assert_allclose(r.variances[-1, 0], 2 * c, rtol=1e-8)


def test_two_eigenvalues_both_at_edge():
    # both constraints active: ∇λ₁ = e_{y1}, ∇λ₂ = (ρ, 1) in (y1, y2), ∇L = (−c₁, −c₂):
    # σ₂² = 2c₂, σ₁² = 2c₁ − 2ρc₂ (hand solution of the 2×2 complementarity problem)
    c1, c2, rho, eta = 0.75, 0.4, 0.5, 0.1
    y1 = 2 / eta - 1.0
    r = central_flow(_two_edge(c1, c2, rho), eta, [0, 0, y1, 2 / eta - 2.0 - rho * y1],
                     np.array([0.0, 20.0, 120.0]))
    # step 20: only λ₁ = y₁ at the edge, σ₁² = 2c₁
    assert r.n_edge[1] == 1
    sig1 = r.edge_basis[1] @ r.edge_cov[1] @ r.edge_basis[1].T
    np.testing.assert_allclose(sig1[0, 0], 2 * c1, rtol=1e-8)
    # step 120: both at the edge (degenerate λ₁ = λ₂ = 2/η: Σ is basis-free, the eigenbasis not)
    assert r.n_edge[-1] == 2
    np.testing.assert_allclose(r.eigenvalues[-1, :2], 2 / eta, rtol=1e-9)
    sig = r.edge_basis[-1] @ r.edge_cov[-1] @ r.edge_basis[-1].T
    np.testing.assert_allclose(sig[:2, :2], np.diag([2 * c1 - 2 * rho * c2, 2 * c2]), atol=1e-7)
    np.testing.assert_allclose(sig[2:, :], 0.0, atol=1e-9)


def test_two_eigenvalues_one_leaves_the_edge():
    # ρc₂ > c₁: once λ₂ joins, σ₁² would be 2c₁ − 2ρc₂ < 0, so λ₁ leaves the edge; with λ₂ alone,
    # σ₂² = 2(ρc₁ + c₂)/(1 + ρ²) and dy₁/dk = −η(ρc₂ − c₁)/(1 + ρ²)
    c1, c2, rho, eta = 0.15, 0.4, 0.5, 0.1
    y1 = 2 / eta - 0.1
    r = central_flow(_two_edge(c1, c2, rho), eta, [0, 0, y1, 2 / eta - 1.0 - rho * y1],
                     np.array([0.0, 15.0, 80.0, 100.0]))
    assert r.n_edge[1] == 1 and r.edge_basis[1][0, 0] ** 2 > 0.99  # λ₁ = y₁ alone first
    assert r.n_edge[-1] == 1
    sig = r.edge_basis[-1] @ r.edge_cov[-1] @ r.edge_basis[-1].T
    np.testing.assert_allclose(sig[1, 1], 2 * (rho * c1 + c2) / (1 + rho ** 2), rtol=1e-8)
    np.testing.assert_allclose(sig[0, 0], 0.0, atol=1e-10)
    slope = (r.params[-1, 2] - r.params[-2, 2]) / 20.0
    np.testing.assert_allclose(slope, -eta * (rho * c2 - c1) / (1 + rho ** 2), rtol=1e-8)
    assert r.eigenvalues[-1, 1] < 2 / eta - 0.05  # λ₁ now strictly below the edge


# ------------------------------------------------------------------------------------------------
# SymPy: projection of the gradient off ∇S
# ------------------------------------------------------------------------------------------------
def test_first_step_is_sympy_projection():
    sp = pytest.importorskip("sympy")
    w = sp.symbols("w0:3")
    # a quadratic-plus-cubic loss with a sharpening top direction
    expr = (sp.Rational(1, 2) * (8 * w[0] ** 2 + 3 * w[1] ** 2 + w[2] ** 2)
            + w[0] ** 2 * (w[1] + sp.Rational(1, 2) * w[2]) + sp.Rational(1, 3) * w[0] * w[1] * w[2]
            - 2 * w[1] + w[2] ** 3 / 5 - sp.Rational(3, 2) * w[2])
    grad_e = [sp.diff(expr, v) for v in w]
    hess_e = sp.hessian(expr, w)
    third_e = [[[sp.diff(hess_e[i, j], w[k]) for k in range(3)] for j in range(3)] for i in range(3)]
    f_g = sp.lambdify([w], grad_e, "numpy")
    f_h = sp.lambdify([w], hess_e, "numpy")
    f_t = sp.lambdify([w], third_e, "numpy")
    prob = sg.CustomProblem(
        dim=3, grad=lambda th: np.asarray(f_g(th), float),
        hvp=lambda th, v: np.asarray(f_h(th), float) @ v,
        loss=sp.lambdify([w], expr, "numpy"))
    th = np.array([0.15, -0.4, 0.3])
    H = np.asarray(f_h(th), float)
    lam, V = np.linalg.eigh(H)
    u = V[:, -1]
    eta = 2.0 / lam[-1]  # θ sits exactly on the edge
    g = np.asarray(f_g(th), float)
    gradS = np.einsum("ijk,i,j->k", np.asarray(f_t(th), float), u, u)  # Hellmann–Feynman
    assert -g @ gradS > 0  # sharpening here, so the constraint binds
    sigma2 = -2 * (g @ gradS) / (gradS @ gradS)
    v_true = -eta * (g - (g @ gradS) / (gradS @ gradS) * gradS)
    n = 1000
    r = central_flow(prob, eta, th, np.array([0.0, 1.0 / n]), substeps=n, lanczos_tol=1e-10)
    # Lanczos residual 1e-10 and exact differences (H linear in θ): agreement to ~1e-8
    np.testing.assert_allclose(r.variances[0, 0], sigma2, rtol=1e-7)
    np.testing.assert_allclose((r.params[1] - th) * n, v_true, rtol=1e-6, atol=1e-9)
    # and the step keeps S on the edge to first order: ∇S · v = 0
    assert abs(gradS @ v_true) < 1e-10 * np.linalg.norm(gradS) * np.linalg.norm(v_true) + 1e-12


# ------------------------------------------------------------------------------------------------
# complementarity solver
# ------------------------------------------------------------------------------------------------
def _lcp_enumerate(M: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Brute force: x ≥ 0, w = Mx + q ≥ 0, xᵀw = 0 over all 2^k active sets."""
    k = q.size
    for r in range(k + 1):
        for S in itertools.combinations(range(k), r):
            S = list(S)
            x = np.zeros(k)
            if S:
                try:
                    x[S] = np.linalg.solve(M[np.ix_(S, S)], -q[S])
                except np.linalg.LinAlgError:
                    continue
            wv = M @ x + q
            if np.all(x >= -1e-12) and np.all(wv >= -1e-10):
                return x
    raise AssertionError("no LCP solution found")


def _diag_structured(M: np.ndarray, q: np.ndarray, gamma: float):
    k = q.size
    A = np.diag(q)
    B = np.zeros((k * k, k * k))
    for a in range(k):
        for c in range(k):
            B[a * k + a, c * k + c] = M[a, c]
        for b in range(k):
            if a != b:
                B[a * k + b, a * k + b] = gamma
    return A, B


@pytest.mark.parametrize("seed", range(8))
def test_complementarity_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    k = 3 + seed % 2
    G = rng.standard_normal((k, k + 2))
    M = G @ G.T + 0.05 * np.eye(k)  # positive definite: unique solution
    q = rng.standard_normal(k) * 2.0
    A, B = _diag_structured(M, q, gamma=0.7)
    X, res = solve_edge_complementarity(A, B)
    x_true = _lcp_enumerate(M, q)
    # FISTA + exact face solve: the face solve is a linear solve, so agreement to roundoff
    np.testing.assert_allclose(np.diag(X), x_true, atol=1e-9)
    np.testing.assert_allclose(X - np.diag(np.diag(X)), 0.0, atol=1e-9)
    assert res <= 1e-10


def _random_sdcp(rng, k):
    d = 7
    T = rng.standard_normal((k, k, d))
    T = 0.5 * (T + T.transpose(1, 0, 2))
    Tf = T.reshape(k * k, d)
    B = Tf @ Tf.T
    A = rng.standard_normal((k, k))
    A = 0.5 * (A + A.T) - 0.5 * np.eye(k)
    return A, B, T


@pytest.mark.parametrize("seed", range(5))
def test_sdcp_optimality_rotation_and_scipy(seed):
    from scipy.optimize import minimize

    rng = np.random.default_rng(100 + seed)
    k = 3
    A, B, T = _random_sdcp(rng, k)
    X, _ = solve_edge_complementarity(A, B)
    Y = A + (B @ X.reshape(-1)).reshape(k, k)
    # optimality conditions checked directly (tolerance: float64 solve of a 9×9 system)
    assert np.linalg.eigvalsh(X)[0] > -1e-10
    assert np.linalg.eigvalsh(0.5 * (Y + Y.T))[0] > -1e-9
    assert abs(np.sum(X * Y)) < 1e-9
    # rotation invariance: A → RᵀAR, T_ab → Σ R_ca R_db T_cd gives X → RᵀXR
    R, _ = np.linalg.qr(rng.standard_normal((k, k)))
    T2 = np.einsum("ca,db,cdi->abi", R, R, T)
    B2 = T2.reshape(k * k, -1) @ T2.reshape(k * k, -1).T
    X2, _ = solve_edge_complementarity(R.T @ A @ R, B2)
    np.testing.assert_allclose(X2, R.T @ X @ R, atol=1e-8)

    # independent: minimize ⟨A,X⟩ + ½⟨X,B[X]⟩ over X = LLᵀ with BFGS from several starts
    def f(Xm):
        return float(np.sum(A * Xm) + 0.5 * Xm.reshape(-1) @ B @ Xm.reshape(-1))

    def fl(p):
        L = np.zeros((k, k))
        L[np.tril_indices(k)] = p
        return f(L @ L.T)

    best = min(minimize(fl, rng.standard_normal(k * (k + 1) // 2), method="BFGS",
                        options={"gtol": 1e-12}).fun for _ in range(4))
    assert f(X) <= best + 1e-7 * max(1.0, abs(best))


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------
def test_bad_inputs():
    prob = _self_stab(0.75)
    start = [0.0, 10.0]
    steps = np.array([0.0, 1.0])
    for lr in (0.0, -0.1):
        with pytest.raises(ValueError, match="lr"):
            central_flow(prob, lr, start, steps)
    with pytest.raises(TypeError, match="lr"):
        central_flow(prob, "0.1", start, steps)
    no_hvp = sg.CustomProblem(dim=2, grad=prob.grad, loss=prob.loss)
    with pytest.raises(TypeError, match="hvp"):
        central_flow(no_hvp, 0.1, start, steps)
    with pytest.raises(TypeError, match="bare callable"):
        central_flow(prob.loss, 0.1, start, steps)
    with pytest.raises(ValueError, match="already past the edge"):
        central_flow(prob, 0.1, [0.0, 25.0], steps)  # S = 25 > 2/η = 20
    with pytest.raises(ValueError, match="steps"):
        central_flow(prob, 0.1, start, np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="beta"):
        central_flow(prob, 0.1, start, steps, optimizer="heavy_ball", beta=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        central_flow(prob, 0.1, start, steps, optimizer="adam")


def test_finite_difference_hvp_matches_exact():
    # opt-in gradient differences: the toy's σ² = 2c to the accuracy of nested differences
    prob = _self_stab(0.75)
    no_hvp = sg.CustomProblem(dim=2, grad=prob.grad, loss=prob.loss)
    r = central_flow(no_hvp, 0.1, [0.0, 19.0], np.array([60.0]), hvp="finite_difference")
    np.testing.assert_allclose(r.variances[0, 0], 1.5, rtol=1e-5)  # δ² + roundoff/δ² ≈ 1e-6


def test_heavy_ball_fixed_point_is_an_exact_period2_orbit():
    # the flow's fixed point (y = S, x² = σ²) against the exact discrete heavy-ball map, composed
    # symbolically by SymPy: two steps from (x, y, v_x, v_y) = (√σ², S, 2√σ², 0) return to it,
    # one step lands on its mirror (−√σ², S, −2√σ², 0)
    sp = pytest.importorskip("sympy")
    c, eta, beta = 0.75, 0.1, 0.5
    r = central_flow(_self_stab(c), eta, [0.0, 2 * (1 + beta) / eta - 1.0],
                     np.array([0.0, 60.0]), optimizer="heavy_ball", beta=beta)
    S, s2 = float(r.sharpness[-1]), float(r.variances[-1, 0])
    x, y, vx, vy = sp.symbols("x y v_x v_y")
    e, b, cc = sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(3, 4)

    def step(s):
        vx2 = b * s[2] - e * s[1] * s[0]
        vy2 = b * s[3] - e * (s[0] ** 2 / 2 - cc)
        return [s[0] + vx2, s[1] + vy2, vx2, vy2]

    one, two = step([x, y, vx, vy]), step(step([x, y, vx, vy]))
    at = {x: np.sqrt(s2), y: S, vx: 2 * np.sqrt(s2), vy: 0.0}
    start = np.array([np.sqrt(s2), S, 2 * np.sqrt(s2), 0.0])
    # tolerance: the flow's S and σ² are exact to ~1e-10 relative (polynomial toy, roundoff)
    np.testing.assert_allclose([float(f.subs(at)) for f in one],
                               start * [-1, 1, -1, 1], atol=1e-8)
    np.testing.assert_allclose([float(f.subs(at)) for f in two], start, atol=1e-8)


def test_period2_variance_and_period2_free_average():
    from paper_checks.checks_central_flows import _period2_free_average, period2_variance

    # w_k = w₀ + k·g + (−1)^k x u with a unit u: the filter returns x² exactly (a linear drift
    # has no second difference), and the half-weight-end average removes the flip exactly
    rng = np.random.default_rng(3)
    d, n, x = 5, 40, 0.3
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    k = np.arange(n)[:, None]
    w = 1.0 + 0.01 * k * rng.standard_normal(d) + x * (-1.0) ** k * u
    v = period2_variance(w)
    assert np.isnan(v[0]) and np.isnan(v[-1])
    np.testing.assert_allclose(v[1:-1], x * x, rtol=1e-12)
    avg = _period2_free_average(w, 8)
    smooth = w - x * (-1.0) ** k * u
    np.testing.assert_allclose(avg[4:-4], smooth[4:-4], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="W"):
        _period2_free_average(w, 7)
