"""SVAG (``simulate(..., svag=ℓ)``): plain SGD at ℓ = 1, the exact discrete moments of the SVAG
iteration on a quadratic, the ℓ·Σ noise covariance on linear regression, the O(1/ℓ) approach to
the SDE's closed form, and the refusals."""

import numpy as np
import pytest

import sgdsim as sg
from sgdsim.problems.noise import AdditiveNoise


def _quad(a=1.0, s2=0.5):
    return sg.Quadratic(eigenvalues=[a], noise=AdditiveNoise(cov=[s2]))


def _linreg(seed=3, n=40, d=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return sg.LinearRegression(X, X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n))


def test_svag_one_is_plain_sgd_bit_for_bit():
    p = _linreg()
    kw = dict(steps=30, replicas=7, batch_size=4, seed=5, backend="numpy", record=("loss", "params"))
    a = sg.simulate(p, sg.sgd(lr=0.05), **kw)
    b = sg.simulate(p, sg.sgd(lr=0.05), svag=1, **kw)
    np.testing.assert_array_equal(a.final_params, b.final_params)
    np.testing.assert_array_equal(a.dataset["loss"].values, b.dataset["loss"].values)


@pytest.mark.parametrize("ell", [1, 4, 9.5])
def test_quadratic_matches_the_exact_svag_recursion(ell):
    # x ← x − (η/ℓ)(a x + ζ), Var ζ = ℓ s²:  m2_{k+1} = q² m2_k + (η/ℓ)² ℓ s²,  q = 1 − ηa/ℓ
    a, s2, eta, k, R = 1.0, 0.5, 0.2, 60, 40_000
    tr = sg.simulate(_quad(a, s2), sg.sgd(lr=eta), steps=k, replicas=R, init=[1.0], backend="numpy",
                     svag=ell, seed=11, record=("loss",))
    q = 1 - eta * a / ell
    m2 = q ** (2 * k) + (eta / ell) ** 2 * ell * s2 * (1 - q ** (2 * k)) / (1 - q**2)
    x2 = tr.final_params[:, 0] ** 2
    z = (x2.mean() - m2) / (x2.std(ddof=1) / np.sqrt(R))
    assert abs(z) < 4.0, (x2.mean(), m2, z)
    mean = tr.final_params[:, 0].mean()
    assert abs(mean - q**k) < 4.0 * np.sqrt(m2 / R)


def test_linreg_step_noise_covariance_is_ell_sigma():
    # one step from θ0: θ1 − θ0 = −(η/ℓ) g_ℓ,  Cov g_ℓ = ℓ Σ(θ0),
    # Σ = (1/B)[(1/N) Σ_n r_n² x_n x_nᵀ − ∇L ∇Lᵀ]  (B draws with replacement)
    p, eta, ell, B, R = _linreg(), 0.1, 6.0, 4, 60_000
    theta0 = np.full(p.X.shape[1], 0.3)
    tr = sg.simulate(p, sg.sgd(lr=eta), steps=1, replicas=R, batch_size=B, init=theta0, backend="numpy",
                     svag=ell, seed=2, record=("loss",))
    X, y = np.asarray(p.X), np.asarray(p.y)
    r = X @ theta0 - y
    grad = X.T @ r / len(y)
    sigma = ((X * r[:, None] ** 2).T @ X / len(y) - np.outer(grad, grad)) / B
    g = -(tr.final_params - theta0) * ell / eta  # the R gradient estimates
    # the mean: ∇L, per coordinate within 4 standard errors
    se = np.sqrt(np.diag(ell * sigma) / R)
    assert np.all(np.abs(g.mean(axis=0) - grad) < 4 * se)
    # the trace of the covariance: ℓ tr Σ, standard error from the samples of ‖g − ḡ‖²
    dev2 = np.sum((g - g.mean(axis=0)) ** 2, axis=1)
    z = (dev2.mean() - ell * np.trace(sigma)) / (dev2.std(ddof=1) / np.sqrt(R))
    assert abs(z) < 4.0, z


def test_quadratic_weak_error_decays_as_one_over_ell_towards_the_ou_law():
    # SDE dx = −a x dt + √η s dW (time t = kη):  E x²(t) = e^{−2at} + η s²/(2a) (1 − e^{−2at});
    # the SVAG values at ℓ = 1 … 8 are the exact recursion's (checked above), here from simulation
    a, s2, eta, T, R = 1.0, 0.5, 0.4, 10, 200_000
    t = T * eta
    ou = np.exp(-2 * a * t) + eta * s2 / (2 * a) * (1 - np.exp(-2 * a * t))
    errs, ses = [], []
    for ell in (1, 2, 4, 8):
        tr = sg.simulate(_quad(a, s2), sg.sgd(lr=eta), steps=T * ell, replicas=R, init=[1.0],
                         backend="numpy", svag=ell, seed=ell, record=("loss",), every=T * ell)
        x2 = tr.final_params[:, 0] ** 2
        errs.append(x2.mean() - ou)
        ses.append(x2.std(ddof=1) / np.sqrt(R))
    errs, ses = np.array(errs), np.array(ses)
    assert np.all(np.abs(errs) > 4 * ses)  # resolved (SGD is not the SDE at these ℓ)
    # halving: err(ℓ)/err(2ℓ) → 2 for a first-order weak error
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 1.6) & (ratios < 2.5)), ratios


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(svag=0.5), "≥ 1"),
        (dict(svag=float("nan")), "finite"),
        (dict(svag="2"), "real number"),
        (dict(svag=True), "real number"),
        (dict(svag=2, backend="numba"), "backend='numpy'"),
        (dict(svag=2, sampling="epoch_shuffle", batch_size=4), "epoch_shuffle"),
    ],
)
def test_refusals_name_svag(kwargs, match):
    kw = dict(steps=2, backend="numpy", batch_size=4)
    kw.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        sg.simulate(_linreg(), sg.sgd(lr=0.1), **kw)


def test_momentum_refused():
    with pytest.raises(ValueError, match="svag"):
        sg.simulate(_quad(), sg.sgd(lr=0.1, momentum=0.9), steps=2, backend="numpy", svag=2)


# --- the report --------------------------------------------------------------------------------
def test_extrapolate_is_exact_on_noiseless_data():
    ells = np.array([1.0, 2.0, 4.0, 8.0])
    a, b, cov = sg.svag.extrapolate(ells, 0.3 + 0.7 / ells, [0.01, 0.02, 0.01, 0.03])
    assert a == pytest.approx(0.3, abs=1e-12) and b == pytest.approx(0.7, abs=1e-12)
    assert cov.shape == (2, 2) and np.all(np.linalg.eigvalsh(cov) > 0)


def test_fit_weak_order_recovers_the_exponent():
    ells = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    p, (lo, hi) = sg.svag.fit_weak_order(ells, 0.5 * ells**-1.3, 0.001 * ells**-1.3)
    assert p == pytest.approx(1.3, abs=1e-12) and lo < 1.3 < hi
    with pytest.raises(ValueError, match="2 standard errors"):
        sg.svag.fit_weak_order(ells, 0.5 * ells**-1.3, ells)


def _sgd_and_sde_stationary(a, s2, eta):
    # SGD on ½ a x² with noise variance s²: Var = η s²/(a(2 − ηa)); SDE (OU): η s²/(2a)
    return eta * s2 / (a * (2 - eta * a)), eta * s2 / (2 * a)


@pytest.mark.parametrize("eta, valid", [(0.05, True), (1.5, False)])
def test_report_flags_the_large_lr_quadratic(eta, valid):
    a, s2 = 1.0, 0.5
    steps = int(np.ceil(12 / (a * eta)))  # t = 12/a: stationary to e^{-24}
    rep = sg.svag_report(_quad(a, s2), sg.sgd(lr=eta), steps=steps, ells=(1, 2, 4, 8),
                         observable=lambda th: th[:, 0] ** 2, replicas=20_000, init=[0.0], seed=4)
    sgd_var, sde_var = _sgd_and_sde_stationary(a, s2, eta)
    assert abs(rep.values[0] - sgd_var) < 4 * rep.ses[0]
    assert rep.valid is valid, rep.summary()
    if valid:
        assert abs(rep.limit - sde_var) < 4 * rep.limit_se
    else:
        assert rep.relative_gap > 1.0  # SGD's variance is 4× the SDE's here
    assert ("NOT" in rep.summary()) is (not valid)


def test_report_refusals():
    q = _quad()
    with pytest.raises(ValueError, match="`ells`"):
        sg.svag_report(q, sg.sgd(lr=0.1), steps=2, ells=(2, 4))
    with pytest.raises(ValueError, match="constant learning rate"):
        sg.svag_report(q, sg.sgd(lr=sg.step_lr(0.1, [5], 0.5)), steps=2)
    with pytest.raises(ValueError, match="`observable`"):
        sg.svag_report(q, sg.sgd(lr=0.1), steps=2, observable="params")
    with pytest.raises(TypeError, match="`ells` must be an integer"):
        sg.svag_report(q, sg.sgd(lr=0.1), steps=2, ells=(1, 1.5))
