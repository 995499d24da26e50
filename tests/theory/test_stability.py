"""Stability thresholds: closed forms vs spectral-radius bisection vs direct iteration."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdsim.theory import stability as S
from sgdsim.theory.linreg_moments import mean_square_lr_threshold, mean_square_rate

BETAS = [0.0, 0.3, 0.5, 0.9, 0.99]


def pytorch_iterate(a, lr, steps, *, momentum=0.0, dampening=0.0, nesterov=False, theta0=1.0):
    """Scalar torch.optim.SGD written out literally (first step buf = g), noise free."""
    th, buf = theta0, None
    for _ in range(steps):
        g = a * th
        if momentum:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            d = g + momentum * buf if nesterov else buf
        else:
            d = g
        th = th - lr * d
        if not np.isfinite(th) or abs(th) > 1e300:
            return np.inf
    return th


@pytest.mark.parametrize("method", S.METHODS)
@pytest.mark.parametrize("beta", BETAS)
def test_closed_form_equals_bisection(method, beta):
    a = 3.7
    beta = 0.0 if method == "gd" else beta  # GD has no momentum (a β is refused)
    p = S.method_params(method, beta)
    eta_star = S.lr_threshold_numeric(a, **p)
    # bisection runs to rtol 1e-13; 2x2 eigenvalues are accurate to ~1e-15 near a simple root −1
    assert eta_star * a == pytest.approx(S.threshold(method, beta), rel=1e-9)
    assert S.lr_threshold(a, method, beta) == pytest.approx(eta_star, rel=1e-9)


@pytest.mark.parametrize("method", S.METHODS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_direct_iteration_converges_below_diverges_above(method, beta):
    a = 2.0
    beta = 0.0 if method == "gd" else beta  # GD has no momentum (a β is refused)
    p = S.method_params(method, beta)
    eta = S.lr_threshold(a, method, beta)
    # at 0.99x the slowest rate is ~1 - O(1e-2): 20000 steps shrink |θ| far below 1e-6;
    # at 1.01x it grows by >= (1 + O(1e-3)) per step, so 20000 steps exceed 1e6
    below = pytorch_iterate(a, 0.99 * eta, 20000, **p)
    above = pytorch_iterate(a, 1.01 * eta, 20000, **p)
    assert abs(below) < 1e-6
    assert abs(above) > 1e6


@pytest.mark.parametrize("method", S.METHODS)
def test_companion_matrix_reproduces_pytorch_steps(method):
    a, lr, beta = 1.3, 0.4, 0.7
    p = S.method_params(method, 0.0 if method == "gd" else beta)
    A, _ = S.step_matrices(a, lr, **p)
    A1, _ = S.step_matrices(a, lr, first_step=True, **p)
    z = A1 @ np.array([1.0, 0.0])
    for _ in range(9):
        z = A @ z
    # 10 steps of 2x2 products: rounding ~1e-15 relative
    assert z[0] == pytest.approx(pytorch_iterate(a, lr, 10, **p), rel=1e-12, abs=1e-14)


def test_underdamped_heavy_ball_modulus_sqrt_beta():
    # det A = β for heavy ball, so complex-conjugate eigenvalues have modulus √β (PAPERS.md §5)
    beta = 0.81
    ev = np.linalg.eigvals(S.companion_matrix(1.0, 1.0, momentum=beta))
    assert np.all(np.iscomplex(ev))
    assert np.abs(ev) == pytest.approx([0.9, 0.9], rel=1e-12)


def test_max_stable_lr_spectrum():
    lam = np.array([0.5, 4.0, 1.0, 0.0])
    assert S.max_stable_lr(lam) == pytest.approx(2 / 4.0)
    assert S.max_stable_lr(lam, "heavy_ball", 0.9, weight_decay=0.1) == pytest.approx(3.8 / 4.1)
    assert S.max_stable_lr(np.array([1.0, -0.1])) == 0.0
    assert S.max_stable_lr(np.zeros(3)) == np.inf
    rho = S.spectral_radius(lam[:3], 0.999 * S.max_stable_lr(lam))
    assert np.all(rho < 1)


def test_nsgd_against_full_iteration_matrix():
    rng = np.random.default_rng(3)
    d, K, gamma = 6, 2, 0.3
    lam = np.array([9.0, 5.0, 2.0, 1.0, 0.5, 0.1])
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    H = Q @ np.diag(lam) @ Q.T
    E = Q[:, :K]

    def rho(eta):  # spectral radius of θ ↦ θ − η(I − (1−γ)EEᵀ)Hθ, by dense eigenvalues
        M = np.eye(d) - eta * (np.eye(d) - (1 - gamma) * E @ E.T) @ H
        return np.max(np.abs(np.linalg.eigvals(M)))

    eta_max = S.nsgd_max_stable_lr(lam[::-1], gamma, K)  # order of input must not matter
    assert eta_max == pytest.approx(min(2 / (gamma * 9.0), 2 / 2.0))
    assert rho(0.999 * eta_max) < 1 < rho(1.001 * eta_max)
    for eta in rng.uniform(0.05, 2.0, size=40):
        assert S.nsgd_is_stable(lam, eta, gamma, K) == (rho(eta) < 1)


def _ms_threshold_1d(x, B, kappa):
    """d = 1 closed form: Σ' = Σ[1 − 2ηh + η²((1−κ/B)h² + (κ/B)m4)], stable iff η < 2h/(…)."""
    h, m4 = np.mean(x**2), np.mean(x**4)
    return 2 * h / ((1 - kappa / B) * h**2 + kappa / B * m4)


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("B", [1, 3, 7])
def test_mean_square_threshold_1d_closed_form(replacement, B):
    x = np.array([0.3, -1.2, 2.0, 0.7, 1.5, -0.4, 0.9, 1.1])
    N = x.size
    kappa = 1.0 if replacement else (N - B) / (N - 1)
    got = mean_square_lr_threshold(x[:, None], B, replacement=replacement, rtol=1e-10)
    # bisection to rtol 1e-10; 1x1 "eigenvalue" exact up to rounding
    assert got == pytest.approx(_ms_threshold_1d(x, B, kappa), rel=1e-8)


def test_mean_square_threshold_full_batch_is_gd_and_monotone_in_B():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 3))
    lam_max = np.linalg.eigvalsh(X.T @ X / 10)[-1]
    full = mean_square_lr_threshold(X, 10, replacement=False, rtol=1e-10)
    assert full == pytest.approx(2 / lam_max, rel=1e-8)  # κ = 0: GD, bisection rtol 1e-10
    th = [mean_square_lr_threshold(X, B, rtol=1e-6) for B in (1, 2, 4, 8)]
    assert np.all(np.diff(th) > 0)
    assert th[-1] < 2 / lam_max  # multiplicative noise always lowers the threshold


@settings(max_examples=30, deadline=None)
@given(
    a=st.floats(0.01, 100.0),
    beta=st.floats(0.0, 0.95),
    method=st.sampled_from(S.METHODS),
)
def test_spectral_radius_below_and_above_threshold(a, beta, method):
    beta = 0.0 if method == "gd" else beta  # GD has no momentum (a β is refused)
    p = S.method_params(method, beta)
    eta = S.lr_threshold(a, method, beta)
    assert S.spectral_radius(a, 0.999 * eta, **p) < 1
    assert S.spectral_radius(a, 1.001 * eta, **p) > 1


def test_bad_input_messages():
    with pytest.raises(ValueError, match="method"):
        S.threshold("adam")
    with pytest.raises(ValueError, match="momentum"):
        S.threshold("heavy_ball", 1.0)
    with pytest.raises(ValueError, match="curvature"):
        S.lr_threshold(-1.0)
    with pytest.raises(ValueError, match="top_k"):
        S.nsgd_max_stable_lr(np.ones(3), 0.5, 4)


# --- issue 14: edge cases ------------------------------------------------------------------------
def test_gd_refuses_a_momentum_instead_of_ignoring_it():
    # before: lr_threshold(1., 'gd', 0.9) returned 2.0, silently dropping β = 0.9
    with pytest.raises(ValueError, match="`momentum`=0.9 given with method='gd'"):
        S.lr_threshold(1.0, "gd", 0.9)
    assert S.lr_threshold(1.0, "gd", 0.0) == 2.0
    assert S.lr_threshold(1.0, "heavy_ball", 0.9) == pytest.approx(3.8)  # 2 + 2β, closed form


def test_overflowing_threshold_refused():
    # before: lr_threshold(5e-324, 'ema', 5e-324) returned inf
    with pytest.raises(ValueError, match="`curvature`=5e-324 is too small"):
        S.lr_threshold(5e-324, "ema", 5e-324)
    with pytest.raises(ValueError, match="`eigenvalues`"):
        S.max_stable_lr(np.array([5e-324, 0.0]))
    assert S.max_stable_lr(np.zeros(3)) == np.inf  # all marginal: documented inf


@pytest.mark.parametrize("value", ["1.0", b"1.0", True])
def test_numbers_given_as_strings_or_bools_refused(value):
    with pytest.raises(TypeError, match="`curvature` must be a real number"):
        S.lr_threshold(value)


def test_rtol_below_float_resolution_refused_not_hung():
    # rtol < eps used to spin forever once the bracket reached adjacent floats
    with pytest.raises(ValueError, match="`rtol`"):
        S.lr_threshold_numeric(2.0, rtol=1e-20)
    assert S.lr_threshold_numeric(2.0, rtol=1e-15) == pytest.approx(1.0, rel=1e-15)  # 2/a, GD


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("B", [1, 2, 3])
def test_mean_square_threshold_singular_H_equals_projected_closed_form(replacement, B):
    # rank-1 data in d = 3 (H singular: two zero-curvature modes, as in interpolating least
    # squares): the null-space modes never move (marginal), so the threshold is the d = 1 closed
    # form on the projected samples a_n = x_n·u. Before: ValueError "`lr` must be > 0, got 0.0".
    u = np.array([1.0, 2.0, 2.0]) / 3.0
    a = np.array([0.5, 1.3, -0.7, 2.0])
    X = a[:, None] * u[None, :]
    kappa = 1.0 if replacement else (a.size - B) / (a.size - 1)
    got = mean_square_lr_threshold(X, B, replacement=replacement, rtol=1e-12)
    # bracket rtol 1e-12; the 9×9 dense eigenvalues carry ~1e-14 relative error near ρ = 1
    assert got == pytest.approx(_ms_threshold_1d(a, B, kappa), rel=1e-10)


def test_mean_square_threshold_interpolating_n_below_d():
    # N = 1 sample in d = 4: B = 1 noise vanishes at the interpolating minimum, so the threshold
    # is the GD one on the range, 2/‖x‖² (default rtol 1e-6: the result is within rtol/2)
    x = np.array([[0.3, -1.0, 0.5, 2.0]])
    got = mean_square_lr_threshold(x, 1)
    assert abs(got / (2.0 / np.sum(x**2)) - 1.0) <= 0.5e-6
    assert mean_square_lr_threshold(np.zeros((3, 2)), 1) == np.inf  # H = 0: nothing constrains


def test_mean_square_rate_on_its_own():
    # d = 1: the second-moment map is the scalar (1 − ηh)² + η²(κ/B)(m4 − h²) (closed form); it is
    # not max(ρ(A), ρ(T)): here ρ(A) = |1 − ηh| < ρ(T)
    x = np.array([0.3, -1.2, 2.0, 0.7])
    h, m4, eta, B = np.mean(x**2), np.mean(x**4), 0.4, 2
    expect = (1 - eta * h) ** 2 + eta**2 / B * (m4 - h**2)
    assert mean_square_rate(x[:, None], eta, B) == pytest.approx(expect, rel=1e-12)
    # at the threshold the rate crosses 1 (bisection rtol 1e-10)
    eta_c = mean_square_lr_threshold(x[:, None], B, rtol=1e-10)
    assert mean_square_rate(x[:, None], 0.999 * eta_c, B) < 1 < mean_square_rate(
        x[:, None], 1.001 * eta_c, B
    )


@pytest.mark.parametrize("scale", [1e-139, 1e120])
def test_mean_square_threshold_of_extreme_data_scales_exactly(scale):
    # the moment map depends on η·x xᵀ only, so threshold(sX) = threshold(X)/s²; before: at
    # s = 1e-139 the bisection overflowed η (LinAlgError "Array must not contain infs or NaNs")
    x = np.array([0.3, -1.2, 2.0, 0.7])
    got = mean_square_lr_threshold((x * scale)[:, None], 2, rtol=1e-12)
    # rescaling is two exact-ish multiplications (≤ 2 ulp); bracket rtol 1e-12
    assert got * scale * scale == pytest.approx(_ms_threshold_1d(x, 2, 1.0), rel=1e-10)
    with pytest.raises(ValueError, match="`X` is too small"):
        mean_square_lr_threshold(np.array([[1e-185]]), 1)


def test_mean_square_threshold_refuses_unit_momentum_and_flag_strings():
    X = np.array([[1.0], [2.0]])
    with pytest.raises(ValueError, match="`momentum`"):  # β = 1: no lr is stable
        mean_square_lr_threshold(X, 1, momentum=1.0)
    with pytest.raises(TypeError, match="`replacement`"):  # before: "yes" read as True
        mean_square_lr_threshold(X, 1, replacement="yes")
    with pytest.raises(TypeError, match="`nesterov`"):
        S.step_matrices(1.0, 0.1, nesterov="yes")
    with pytest.raises(ValueError, match="`curvature` must be finite"):  # before: NaN accepted
        S.companion_matrix([np.nan, 1.0], 0.1)


@pytest.mark.parametrize("method", S.METHODS)
@pytest.mark.parametrize("beta", [0.3, 0.5, 0.9])
def test_default_rtol_delivers_the_documented_accuracy(method, beta):
    # docs: the default rtol 1e-13 gives η within rtol/2 of the threshold; truth: the closed forms
    beta = 0.0 if method == "gd" else beta
    eta = S.lr_threshold_numeric(3.7, **S.method_params(method, beta))
    err = abs(eta * 3.7 / S.threshold(method, beta) - 1.0)
    assert err <= 0.5e-13 + 1e-14  # + LAPACK eigenvalue rounding at ρ ≈ 1 (measured ≤ 4.8e-14)


def test_found_by_the_many_example_fuzz():
    # before: accepted (β = 1 is never stable: the product of the eigenvalues is β = 1; an unknown
    # method passed when every curvature was zero)
    with pytest.raises(ValueError, match="`momentum`"):
        S.lr_threshold_numeric(1.0, momentum=1.0)
    with pytest.raises(ValueError, match="`method`"):
        S.max_stable_lr(np.zeros(2), method="no-such-option")
    from sgdsim.theory.langevin import UnderdampedLangevin
    from sgdsim.theory.linreg_moments import LinRegMoments

    with pytest.raises(ValueError, match="`momentum`"):
        LinRegMoments(np.ones((2, 1)), np.zeros(2), lr=0.1, batch_size=1, momentum=1.0)
    with pytest.raises(TypeError, match="`friction`"):
        UnderdampedLangevin([1.0], True, [1.0])
