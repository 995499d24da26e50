"""Exact moments of SGD on noisy quadratics vs dense solves, iteration and Monte Carlo."""

import numpy as np
import pytest

import sgdsim as sg
from sgdsim.theory.lyapunov import NoisyQuadraticMoments


def _random_problem(d=4, seed=0):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((d, d))
    H = G @ G.T / d + 0.2 * np.eye(d)
    F = rng.standard_normal((d, d))
    C = F @ F.T / d  # does not commute with H
    return H, C


def mc_sgd(H, C, lr, steps, R, seed, *, momentum=0.0, dampening=0.0, nesterov=False,
           weight_decay=0.0, batch_size=1, theta0=None, keep=()):
    """Plain NumPy torch.optim.SGD on ½θᵀHθ with additive N(0, C/B) gradient noise.

    Returns θ at the end (R, d) and a dict {k: θ_k} for the steps in ``keep``.
    """
    rng = np.random.default_rng(seed)
    d = H.shape[0]
    w, V = np.linalg.eigh(C)
    L = V * np.sqrt(np.clip(w, 0, None)) / np.sqrt(batch_size)
    th = np.zeros((R, d)) if theta0 is None else np.tile(theta0, (R, 1))
    buf = None
    kept = {0: th.copy()} if 0 in keep else {}
    for k in range(1, steps + 1):
        g = th @ H + weight_decay * th + rng.standard_normal((R, d)) @ L.T
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            step = g + momentum * buf if nesterov else buf
        else:
            step = g
        th = th - lr * step
        if k in keep:
            kept[k] = th.copy()
    return th, kept


def test_eigen_solver_matches_dense_lyapunov():
    H, C = _random_problem()
    for kw in [
        {"momentum": 0.0},
        {"momentum": 0.8, "weight_decay": 0.05},
        {"momentum": 0.6, "nesterov": True, "weight_decay": 0.1},
        {"momentum": 0.7, "dampening": 0.7},
    ]:
        m = NoisyQuadraticMoments(H, C, lr=0.2, batch_size=3, **kw)
        Ze, Zd = m.stationary_state_cov(method="eigen"), m.stationary_state_cov(method="dense")
        # two direct solvers of a well-conditioned 8x8 Stein equation: agree to rounding
        np.testing.assert_allclose(Ze, Zd, rtol=1e-9, atol=1e-12 * np.abs(Zd).max())
        # the per-mode diagonal blocks give the same trace
        assert np.trace(Ze[:4, :4]) == pytest.approx(m.stationary_mode_variance().sum(), rel=1e-10)


def test_stationary_is_fixed_point_of_brute_force_iteration():
    H, C = _random_problem(seed=1)
    m = NoisyQuadraticMoments(H, C, lr=0.3, momentum=0.5, weight_decay=0.1, batch_size=2)
    A, P = m.state_matrices()
    Q = P @ (C / 2) @ P.T
    Z = np.zeros_like(Q)
    for _ in range(3000):
        Z = A @ Z @ A.T + Q
    rho = np.max(np.abs(np.linalg.eigvals(A)))
    assert rho**3000 < 1e-12  # so the iteration has converged to rounding
    np.testing.assert_allclose(m.stationary_state_cov(), Z, rtol=1e-9, atol=1e-14)


def test_heavy_ball_closed_form_per_mode():
    # PAPERS.md §5: Var = ηc(1+β)/((1−β)a(2(1+β) − ηa)), E‖Δθ‖² = Σ 2η²c/((1−β)(2(1+β) − ηa))
    lam = np.array([0.1, 1.0, 3.0, 10.0])
    C = np.array([1.0, 0.5, 2.0, 0.3])
    eta, beta, wd, B = 0.25, 0.8, 0.05, 4
    m = NoisyQuadraticMoments(lam, C, lr=eta, momentum=beta, weight_decay=wd, batch_size=B)
    a, c = lam + wd, C / B
    var = eta * c * (1 + beta) / ((1 - beta) * a * (2 * (1 + beta) - eta * a))
    np.testing.assert_allclose(m.stationary_mode_variance(), var, rtol=1e-12)  # 4x4 solves
    step2 = np.sum(2 * eta**2 * c / ((1 - beta) * (2 * (1 + beta) - eta * a)))
    assert m.stationary_step2() == pytest.approx(step2, rel=1e-12)


def test_msd_stationary_start_sgd_closed_form():
    # PAPERS.md §5 (β = 0): E‖θ_k − θ_0‖² = Σ 2Var_i (1 − (1 − ηa_i)^k)
    lam = np.array([0.01, 0.1, 1.0])
    C = np.array([1.0, 2.0, 0.5])
    eta = 0.5
    m = NoisyQuadraticMoments(lam, C, lr=eta)
    var = eta * C / (lam * (2 - eta * lam))
    ks = np.array([0, 1, 7, 100, 5000])
    want = [np.sum(2 * var * (1 - (1 - eta * lam) ** k)) for k in ks]
    np.testing.assert_allclose(m.msd(ks), want, rtol=1e-10)


def test_w2_mean_loss():
    # BENCHMARKS.md W2: d=1000, h_i=1/i, B=32, lr .5, β .9, θ=1, v=0, T=10,000 → E[L_T] ≈ 0.30
    d = 1000
    h = 1.0 / np.arange(1, d + 1)
    m = NoisyQuadraticMoments(h, h, lr=0.5, momentum=0.9, batch_size=32)
    out = m.transient(10_000, np.ones(d), every=10_000)
    assert out["loss"][0] == pytest.approx(0.5 * h.sum(), rel=1e-12)  # L(θ_0)
    assert out["loss"][-1] == pytest.approx(0.30, abs=0.005)  # quoted to 2 digits
    # by T=10^4 all but the slowest modes are stationary; the slowest decay like exp(-ηh k/(1-β))
    assert out["loss"][-1] == pytest.approx(m.stationary_loss(), rel=1e-3)


def _z(sample, predicted):
    return (sample.mean() - predicted) / (sample.std(ddof=1) / np.sqrt(sample.size))


def test_monte_carlo_stationary_covariance():
    H, C = _random_problem(d=3, seed=2)
    kw = {"momentum": 0.6, "weight_decay": 0.1, "batch_size": 2}
    m = NoisyQuadraticMoments(H, C, lr=0.2, **kw)
    S = m.stationary_cov()
    R = 20000
    th, _ = mc_sgd(H, C, 0.2, 400, R, seed=11, theta0=np.zeros(3), **kw)
    # 400 steps: transient factor ρ^800 < 1e-12, negligible. The state is exactly Gaussian, so a
    # sample covariance entry has standard error sqrt((S_ii S_jj + S_ij²)/R); |z| < 4 for each
    # of 6 entries (two-sided p ≈ 6e-5 each).
    Shat = np.cov(th.T)
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / R)
    assert np.all(np.abs(Shat - S) / se < 4), (Shat - S) / se


@pytest.mark.parametrize(
    "kw",
    [
        {"momentum": 0.9, "weight_decay": 0.01},
        {"momentum": 0.5, "dampening": 0.5},  # PyTorch first step buf = g matters here
        {"momentum": 0.7, "nesterov": True},
    ],
)
def test_monte_carlo_msd_from_fixed_start_and_step2(kw):
    lam = np.array([0.2, 1.0, 2.5])
    C = np.array([1.0, 0.4, 2.0])
    theta0 = np.array([1.0, -2.0, 0.5])
    eta, R = 0.1, 20000
    m = NoisyQuadraticMoments(lam, C, lr=eta, batch_size=2, **kw)
    ks = [1, 2, 5, 30, 300, 301]
    _, kept = mc_sgd(np.diag(lam), np.diag(C), eta, 301, R, seed=5, batch_size=2,
                     theta0=theta0, keep=(0, *ks), **kw)
    pred = m.msd(np.array(ks), theta0)
    for k, p in zip(ks, pred):
        d2 = np.sum((kept[k] - kept[0]) ** 2, axis=1)
        assert abs(_z(d2, p)) < 4, (k, p, d2.mean())  # CLT z-score, 6 tests at p ≈ 6e-5 each
    # after 300 steps the slowest mode (ηa/(1-β) ≥ 0.02) is within e^-6 of stationarity for the
    # mean and e^-12 for the covariance; compare the step size to the stationary value
    s2 = np.sum((kept[301] - kept[300]) ** 2, axis=1)
    mean_part = np.sum((np.diff(m.transient(301, theta0)["mean"][-2:], axis=0)) ** 2)
    assert abs(_z(s2, m.stationary_step2() + mean_part)) < 4


def test_transient_approaches_stationary_and_errors():
    lam = np.array([0.5, 2.0])
    m = NoisyQuadraticMoments(lam, np.ones(2), lr=0.1, momentum=0.5, minimum=np.array([1.0, 1.0]),
                              weight_decay=0.5)
    out = m.transient(2000, np.zeros(2), every=1000)
    # mean → θ_λ = λθ*/(λ + λ_wd)
    np.testing.assert_allclose(out["mean"][-1], lam / (lam + 0.5), rtol=1e-10)
    assert out["loss"][-1] == pytest.approx(m.stationary_loss(), rel=1e-10)
    with pytest.raises(ValueError, match="unstable"):
        NoisyQuadraticMoments(lam, np.ones(2), lr=2.0).stationary_cov()
    with pytest.raises(ValueError, match="noise_cov"):
        NoisyQuadraticMoments(lam, np.ones(3), lr=0.1)
    with pytest.raises(ValueError, match="hessian"):
        NoisyQuadraticMoments(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2), lr=0.1)


def test_engine_simulate_matches_exact_transient_from_problem():
    """Integration: sgdsim.simulate on a Quadratic reproduces the exact mean loss and MSD."""
    import sgdsim as sg

    H, C = _random_problem(d=3, seed=4)
    lam, V = np.linalg.eigh(H)
    problem = sg.Quadratic.from_eigenvalues(lam, eigenvectors=V, minimum=np.array([0.5, 0, -1]),
                                            noise=sg.AdditiveNoise(C))
    opt = sg.sgd(0.2, momentum=0.7, nesterov=True, weight_decay=0.1)
    th = NoisyQuadraticMoments.from_problem(problem, opt, batch_size=2)
    np.testing.assert_allclose(th.hessian, H, atol=1e-12)
    np.testing.assert_allclose(th.noise_cov, C, atol=1e-12)
    R, theta0 = 10000, np.array([1.0, 2.0, -1.0])
    res = sg.simulate(problem, opt, steps=60, replicas=R, batch_size=2, init=theta0,
                      record=("loss", "dist2"), every=20, backend="numpy", seed=9, progress=False)
    tr = th.transient(60, theta0, every=20)
    msd = th.msd(np.array([20, 40, 60]), theta0)
    for name, pred in (("loss", tr["loss"][1:]), ("dist2", msd)):
        v = res[name].values[1:]
        z = (v.mean(1) - pred) / (v.std(1, ddof=1) / np.sqrt(R))
        assert np.all(np.abs(z) < 4), (name, z)  # CLT z-scores, 6 tests at p ≈ 6e-5 each


def test_modes_are_ordered_as_the_quadratic():
    """Sharpest first, as sgdsim.Quadratic; per-mode variances against the heavy-ball closed form
    Var = ηc(1+β)/((1−β)a(2(1+β)−ηa)) in that order."""
    a, c, lr, beta = np.array([2.0, 1.0, 0.5]), np.array([0.3, 0.2, 0.1]), 0.1, 0.5
    q = sg.Quadratic.from_eigenvalues(a, noise=sg.AdditiveNoise(c))
    m = NoisyQuadraticMoments.from_problem(q, sg.sgd(lr, momentum=beta))
    np.testing.assert_allclose(m.eigenvalues, q.eigenvalues, rtol=1e-12)
    closed = lr * c * (1 + beta) / ((1 - beta) * a * (2 * (1 + beta) - lr * a))
    np.testing.assert_allclose(m.stationary_mode_variance(), closed, rtol=1e-10)
