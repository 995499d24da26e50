"""SymPy derivations vs the numeric theory code, PAPERS.md formulas and direct iteration."""

import numpy as np
import pytest
import sympy as sp

from sgdsim.theory import stability
from sgdsim.theory import symbolic as S
from sgdsim.theory.lyapunov import NoisyQuadraticMoments

eta, a, beta, c, k, x = (S.SYMBOLS[n] for n in ("eta", "a", "beta", "c", "k", "x"))

# PAPERS.md §1 (Cohen et al.; Nesterov and EMA marked "derived" there)
PAPERS_THRESHOLDS = {
    "gd": sp.Integer(2),
    "heavy_ball": 2 + 2 * beta,
    "nesterov": (2 + 2 * beta) / (1 + 2 * beta),
    "ema": (2 + 2 * beta) / (1 - beta),
}


@pytest.mark.parametrize("method", stability.METHODS)
def test_threshold_equals_papers_and_numeric(method):
    assert sp.simplify(S.stability_threshold(method) - PAPERS_THRESHOLDS[method]) == 0
    f = S.stability_threshold_fn(method)
    for b in (0.0, 0.4, 0.9):
        if method == "gd":
            b = 0.0
        p = stability.method_params(method, b)
        # bisection (rtol 1e-13) on the spectral radius: independent of the derivation
        assert f(b) == pytest.approx(stability.lr_threshold_numeric(1.0, **p), rel=1e-9)


@pytest.mark.parametrize("method", stability.METHODS)
def test_jury_conditions_hold_below_and_fail_above(method):
    thr = S.stability_threshold_fn(method)
    conds = [sp.lambdify((x, beta), e) for e in S.jury_conditions(method)]
    for b in (0.0, 0.3, 0.95):
        t = thr(b)
        for xv in np.linspace(0.01, 0.999, 7) * t:
            assert all(cf(xv, b) > 0 for cf in conds)
        assert any(cf(1.001 * t, b) < 0 for cf in conds)


@pytest.mark.parametrize("method", stability.METHODS)
def test_symbolic_companion_matches_numeric(method):
    vals = {eta: 0.37, a: 1.9, beta: 0.63}
    A_sym = np.array(S.companion_matrix(method).subs(vals), dtype=float)
    b = 0.0 if method == "gd" else 0.63  # GD has no momentum (a β is refused)
    A_num = stability.companion_matrix(1.9, 0.37, **stability.method_params(method, b))
    n = A_sym.shape[0]
    np.testing.assert_allclose(A_sym, A_num[:n, :n], rtol=1e-14)


def test_heavy_ball_variance_and_step2_equal_papers():
    # PAPERS.md §5 (derived there): the symbolic Stein solution must reproduce both
    var = eta * c * (1 + beta) / ((1 - beta) * a * (2 * (1 + beta) - eta * a))
    step2 = 2 * eta**2 * c / ((1 - beta) * (2 * (1 + beta) - eta * a))
    assert sp.simplify(S.stationary_variance("heavy_ball") - var) == 0
    assert sp.simplify(S.stationary_step2("heavy_ball") - step2) == 0
    # GD limit: Var = ηc/(a(2 − ηa))
    assert sp.simplify(S.stationary_variance("gd") - eta * c / (a * (2 - eta * a))) == 0


def test_langevin_variance_and_ratio():
    # PAPERS.md §5: Langevin value ηc/(2a(1−β)); ratio 1/(1 − ηa/(2(1+β)))
    assert sp.simplify(S.langevin_variance() - eta * c / (2 * a * (1 - beta))) == 0
    assert sp.simplify(S.variance_ratio() - 1 / (1 - eta * a / (2 * (1 + beta)))) == 0
    co = S.langevin_coefficients()
    assert sp.simplify(co["damping"] - (1 - beta) / (eta * (1 + beta))) == 0
    assert sp.simplify(co["frequency"] ** 2 - 2 * a / (eta * (1 + beta))) == 0
    # temperature / curvature = Langevin variance
    assert sp.simplify(co["temperature"] / a - S.langevin_variance()) == 0
    assert S.variance_ratio_fn()(0.1, 2.0, 0.9, 1.0) == pytest.approx(1 / (1 - 0.2 / 3.8))


@pytest.mark.parametrize("method", stability.METHODS)
def test_numeric_twins_match_lyapunov_code(method):
    lam = np.array([0.05, 0.7, 3.0])
    eta_v, b, B = 0.2, 0.6, 4
    C = np.array([1.0, 2.0, 0.5])
    p = stability.method_params(method, 0.0 if method == "gd" else b)  # GD: β refused
    m = NoisyQuadraticMoments(lam, C, lr=eta_v, batch_size=B, **p)
    var = S.stationary_variance_fn(method)(eta_v, lam, b, C / B)
    np.testing.assert_allclose(m.stationary_mode_variance(), var, rtol=1e-11)  # 4x4 solves
    s2 = np.sum(S.stationary_step2_fn(method)(eta_v, lam, b, C / B))
    assert m.stationary_step2() == pytest.approx(s2, rel=1e-11)
    ks = np.array([0, 1, 3, 50, 1000])
    msd = np.array([np.sum(S.msd_stationary_start_fn(method)(kk, eta_v, lam, b, C / B))
                    for kk in ks])
    np.testing.assert_allclose(m.msd(ks), msd, rtol=1e-9, atol=1e-14)


def test_msd_formula_vs_direct_covariance_iteration():
    # underdamped (ηa small, β large) and overdamped heavy-ball modes: iterate Cov(z_k, z_0)
    f = S.msd_stationary_start_fn("heavy_ball")
    for eta_v, a_v, b in [(0.1, 1.0, 0.9), (0.1, 3.0, 0.1)]:
        A, _ = stability.step_matrices(a_v, eta_v, momentum=b)
        m = NoisyQuadraticMoments(np.array([a_v]), np.array([1.0]), lr=eta_v, momentum=b)
        Z = m.mode_stationary()[0]
        cross = Z.copy()
        for kk in range(1, 40):
            cross = A @ cross  # Cov(z_k, z_0) = A^k Z
            want = 2 * (Z[0, 0] - cross[0, 0])
            assert f(kk, eta_v, a_v, b, 1.0) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_latex_helper():
    s = S.latex("stationary_variance", "heavy_ball", lhs=r"\mathrm{Var}\,\theta")
    assert s.startswith(r"\mathrm{Var}\,\theta = ") and r"\beta" in s and r"\eta" in s
    assert "mass" in S.latex(S.langevin_coefficients())
    with pytest.raises(ValueError, match="expr"):
        S.latex("stationary_variance_fn")
    with pytest.raises(ValueError, match="method"):
        S.stationary_variance("adam")
