"""Teacher–student online SGD: closed forms, ODE right-hand side and the network simulator.

Independent truths: Gauss–Hermite quadrature of the Gaussian averages, SymPy (Stein's lemma and
Price's theorem applied to the arcsin law), Monte Carlo of the actual networks, and a plain NumPy
loop fed the documented random stream.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import sympy as sp
from scipy.special import erf

import sgdsim as sg
from sgdsim._rng import fill_standard_normal, replica_states
from sgdsim.theory import teacher_student as ts


def _g(u):
    return erf(u / math.sqrt(2.0))


def _gp(u):
    return math.sqrt(2.0 / math.pi) * np.exp(-0.5 * u * u)


def _quadrature(C, f, n=40):
    """E[f(h)] for h ~ N(0, C) by tensor Gauss–Hermite quadrature (n nodes per dimension)."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    d = C.shape[0]
    grids = np.meshgrid(*([z] * d), indexing="ij")
    Z = np.stack([g.ravel() for g in grids])  # (d, n^d)
    W = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0).ravel()
    H = np.linalg.cholesky(C) @ Z
    return float(W @ f(H))


def _random_cov(rng, d):
    A = rng.standard_normal((d, d)) * 0.6
    return A @ A.T + 0.3 * np.eye(d)


# --- Gaussian averages --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaussian_averages_match_quadrature(seed):
    rng = np.random.default_rng(seed)
    C2, C3, C4 = _random_cov(rng, 2), _random_cov(rng, 3), _random_cov(rng, 4)
    # tolerance: the integrands are smooth and Gauss–Hermite converges geometrically (for I4 at
    # seed 1 the quadrature error is 4e-6, 6e-8, 1e-9, 2e-11 with 16, 24, 32, 40 nodes); with 40
    # nodes 1e-9 is a 50× margin
    assert ts.i2(C2) == pytest.approx(_quadrature(C2, lambda h: _g(h[0]) * _g(h[1])), abs=1e-9)
    assert ts.j2(C2) == pytest.approx(_quadrature(C2, lambda h: _gp(h[0]) * _gp(h[1])), abs=1e-9)
    assert ts.i3(C3) == pytest.approx(
        _quadrature(C3, lambda h: _gp(h[0]) * h[1] * _g(h[2])), abs=1e-9)
    assert ts.i4(C4) == pytest.approx(
        _quadrature(C4, lambda h: _gp(h[0]) * _gp(h[1]) * _g(h[2]) * _g(h[3])), abs=1e-9)


def test_i3_and_j2_follow_from_i2_by_price_and_stein():
    """SymPy: I3 = 2 C12 ∂I2/∂C11 + C23 ∂I2/∂C13 (Stein's lemma on h2, Price's theorem) and
    J2 = ∂I2/∂C12, both from the arcsin law alone."""
    c11, c12, c13, c22, c23, c33 = sp.symbols("c11 c12 c13 c22 c23 c33", real=True)

    def i2(a, b, c):
        return 2 / sp.pi * sp.asin(b / sp.sqrt((1 + a) * (1 + c)))

    i3_derived = 2 * c12 * sp.diff(i2(c11, c13, c33), c11) + c23 * sp.diff(i2(c11, c13, c33), c13)
    lam3 = (1 + c11) * (1 + c33) - c13**2
    i3_closed = 2 / sp.pi / sp.sqrt(lam3) * (c23 * (1 + c11) - c12 * c13) / (1 + c11)
    j2_derived = sp.diff(i2(c11, c12, c22), c12)
    j2_closed = 2 / sp.pi / sp.sqrt((1 + c11) * (1 + c22) - c12**2)
    # symbolic simplification of square roots is slow; compare at random points to 1e-12 instead
    rng = np.random.default_rng(3)
    f3 = sp.lambdify((c11, c12, c13, c23, c33), i3_derived - i3_closed)
    f2 = sp.lambdify((c11, c12, c22), j2_derived - j2_closed)
    for _ in range(20):
        C = _random_cov(rng, 3)
        assert abs(f3(C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2])) < 1e-12
        assert abs(f2(C[0, 0], C[0, 1], C[1, 1])) < 1e-12
        assert ts.i3(C) == pytest.approx(
            float(i3_closed.subs({c11: C[0, 0], c12: C[0, 1], c13: C[0, 2], c23: C[1, 2], c33: C[2, 2]})),
            rel=1e-12)


# --- generalisation error and the ODE right-hand side against the networks ---------------------
def _networks(seed=0, N=300, K=2, M=3):
    rng = np.random.default_rng(seed)
    problem = sg.TeacherStudent(rng.standard_normal((M, N)), K, teacher_second=rng.uniform(0.5, 1.5, M),
                                noise_std=0.3)
    W = 0.8 * rng.standard_normal((K, N)) + 0.5 * problem.teacher_weights[:K]
    v = rng.uniform(0.5, 1.5, K)
    return problem, W, v, rng


def test_generalisation_error_matches_monte_carlo_of_the_networks():
    problem, W, v, rng = _networks()
    sq = []
    for _ in range(8):
        X = rng.standard_normal((25_000, problem.N))
        phi, phi_star = problem.outputs(X, W, v)
        sq.append(0.5 * (phi - phi_star) ** 2)
    sq = np.concatenate(sq)
    mc, se = sq.mean(), sq.std(ddof=1) / math.sqrt(sq.size)
    closed = problem.generalisation_error(W, v)
    assert abs(closed - mc) < 4 * se  # 4 standard errors: a false alarm once in ~16,000 runs


def test_ode_rhs_matches_expected_one_step_change():
    """N·E[ΔQ], N·E[ΔR], N·E[Δv] of one exact SGD step (Monte Carlo over inputs and label noise)
    against the closed-form right-hand side."""
    problem, W, v, rng = _networks(seed=1, N=400, K=2, M=2)
    N, lr, lr_v, sigma = problem.N, 0.8, 0.5, problem.noise_std
    Q, R = problem.order_parameters(W)
    dQ, dR, dv = ts.order_parameter_rhs(Q, R, problem.T, lr, v=v, v_star=problem.teacher_second,
                                        noise_std=sigma, lr_second=lr_v)
    samples = {"Q": [], "R": [], "v": []}
    for _ in range(10):
        X = rng.standard_normal((20_000, N))
        lam = X @ W.T / math.sqrt(N)
        nu = X @ problem.teacher_weights.T / math.sqrt(N)
        delta = _g(lam) @ v - _g(nu) @ problem.teacher_second - sigma * rng.standard_normal(len(X))
        c = -lr / math.sqrt(N) * v * delta[:, None] * _gp(lam)  # W_k += c_k x
        x2 = np.einsum("bi,bi->b", X, X)
        # exact change of Q = WWᵀ/N and R = WW*ᵀ/N after the step, times N
        samples["Q"].append(math.sqrt(N) * (c[:, :, None] * lam[:, None, :] + lam[:, :, None] * c[:, None, :])
                            + c[:, :, None] * c[:, None, :] * x2[:, None, None])
        samples["R"].append(math.sqrt(N) * c[:, :, None] * nu[:, None, :])
        samples["v"].append(-lr_v * _g(lam) * delta[:, None])
    for name, rhs in (("Q", dQ), ("R", dR), ("v", dv)):
        s = np.concatenate(samples[name])
        mean, se = s.mean(0), s.std(0, ddof=1) / math.sqrt(len(s))
        # R and v: exact in expectation at any N; Q: the η² term carries ‖x‖²/N, whose correlation
        # with the K local fields biases it by O(K/N) relative (bounded by 3K/N·|η² term| ≤ 0.02)
        slack = 0.02 * np.abs(rhs) if name == "Q" else 0.0
        assert np.all(np.abs(mean - rhs) <= 4.5 * se + slack), (name, mean, rhs, se)


# --- fixed points and thresholds ------------------------------------------------------------------
@pytest.mark.parametrize("K", [2, 3])
def test_symmetric_fixed_point_tends_to_saad_solla_closed_form(K):
    fp = ts.symmetric_fixed_point(K, 1e-4)
    # the root is solved from a 20% perturbed guess; at η = 1e-4 the fixed point differs from the
    # η → 0 closed form by O(η) relative (measured slope ≈ 1 in η), so 1e-3 is ample
    assert fp.Q == pytest.approx(1 / (2 * K - 1), rel=1e-3)
    assert fp.C == pytest.approx(1 / (2 * K - 1), rel=1e-3)
    assert fp.R == pytest.approx(1 / math.sqrt(K * (2 * K - 1)), rel=1e-3)
    assert fp.eps_g == pytest.approx(ts.plateau_error_small_lr(K), rel=1e-3)
    assert fp.escape_rate > 0  # a saddle: the plateau is left along its unstable direction


def test_linear_stability_threshold_k1_sympy_vs_bisection():
    """K = M = 1: the perfect solution Q = R = T = 1 loses stability at η = π√(5/3) (the Jacobian's
    determinant, derived here in SymPy from the closed forms), and the ODE started from a small
    random student stops learning there (bisection on the long-time error)."""
    Q, R, eta = sp.symbols("Q R eta", positive=True)

    def i3(c11, c12, c13, c23, c33):
        return 2 / sp.pi / sp.sqrt((1 + c11) * (1 + c33) - c13**2) * (c23 * (1 + c11) - c12 * c13) / (1 + c11)

    def i4_self(c11, c34, c13, c14, c33, c44):  # I4 with both g' on the student field (C12 = C11 = C22)
        l4 = (1 + c11) ** 2 - c11**2
        l0 = l4 * c34 - c13 * c14 * (1 + c11) - c13 * c14 * (1 + c11) + 2 * c11 * c13 * c14
        l1 = l4 * (1 + c33) - 2 * c13**2 * (1 + c11) + 2 * c11 * c13**2
        l2 = l4 * (1 + c44) - 2 * c14**2 * (1 + c11) + 2 * c11 * c14**2
        return 4 / sp.pi**2 / sp.sqrt(l4) * sp.asin(l0 / sp.sqrt(l1 * l2))

    dR = eta * (i3(Q, R, R, 1, 1) - i3(Q, R, Q, R, Q))
    dQ = 2 * eta * (i3(Q, Q, R, R, 1) - i3(Q, Q, Q, Q, Q)) + eta**2 * (
        i4_self(Q, Q, Q, Q, Q, Q) - 2 * i4_self(Q, R, Q, R, Q, 1) + i4_self(Q, 1, R, R, 1, 1))
    J = sp.Matrix([dQ, dR]).jacobian([Q, R]).subs({Q: 1, R: 1})
    roots = [r for r in sp.solve(sp.simplify(J.det()), eta) if r != 0]
    assert len(roots) == 1 and sp.simplify(roots[0] - sp.pi * sp.sqrt(sp.Rational(5, 3))) == 0
    eta_c = float(roots[0])
    # central differences (step 1e-6) reproduce the symbolic root to ~1e-9
    assert ts.perfect_learning_lr_threshold(np.eye(1)) == pytest.approx(eta_c, rel=1e-7)
    # cross-check the SymPy Jacobian against the numerical one of order_parameter_rhs
    num = ts._jacobian(np.eye(1), np.eye(1), np.eye(1), 2.0)
    assert np.allclose(num, np.array(J.subs(eta, 2.0), dtype=float), atol=1e-7)
    Q0, R0 = np.array([[0.01]]), np.array([[0.001]])
    lr_star = ts.learning_lr_threshold(Q0, R0, np.eye(1), alpha_max=1000, lr_bracket=(3.5, 4.5),
                                       tol=2e-3)
    # the sharp threshold is blurred by the finite α_max and the 1e-3 criterion: just below η_c
    # convergence is slow (rate ∝ η_c − η), just above it the error settles at a new fixed point
    # whose error grows from 0 continuously; both shift the bisection by well under 1%
    assert abs(lr_star - eta_c) < 0.01 * eta_c


# --- the simulator ------------------------------------------------------------------------------
def test_simulator_matches_a_plain_numpy_loop_on_the_same_stream():
    problem = sg.TeacherStudent.random(64, 2, 3, seed=4, noise_std=0.2)
    W0 = 0.3 * np.random.default_rng(5).standard_normal((2, 3, 64))
    lr, lr_v, steps, every = 0.7, 0.4, 300, 50
    traj = sg.simulate_teacher_student(problem, lr, steps=steps, replicas=2, seed=9, init=W0,
                                       lr_second=lr_v, every=every)
    states = replica_states(9, 2, spawn_key=1)
    x = np.empty(problem.N)
    z = np.empty(1)
    for r in range(2):
        W, v = W0[r].copy(), np.ones(3)
        for t in range(steps):
            fill_standard_normal(states[r], x)
            fill_standard_normal(states[r], z)  # the label noise follows the input in the stream
            lam = W @ x / math.sqrt(problem.N)
            nu = problem.teacher_weights @ x / math.sqrt(problem.N)
            delta = _g(lam) @ v - _g(nu) @ problem.teacher_second - problem.noise_std * z[0]
            W_new = W - lr / math.sqrt(problem.N) * (v * delta * _gp(lam))[:, None] * x[None, :]
            v = v - lr_v / problem.N * _g(lam) * delta
            W = W_new
            if (t + 1) % every == 0:
                Q, R = problem.order_parameters(W)
                j = (t + 1) // every
                # reassociated sums in the kernel: agreement to rounding, not bit for bit
                assert np.allclose(traj["Q"].values[j, r], Q, rtol=1e-10, atol=1e-13)
                assert np.allclose(traj["R"].values[j, r], R, rtol=1e-10, atol=1e-13)
                assert np.allclose(traj["v"].values[j, r], v, rtol=1e-10, atol=1e-13)
        assert np.allclose(traj.final_params[r], W, rtol=1e-10, atol=1e-13)
    assert np.allclose(traj["eps_g"].values[-1], problem.generalisation_error(traj.final_params,
                                                                            traj["v"].values[-1]))
    assert np.array_equal(traj["alpha"].values, traj.steps / problem.N)


def test_simulator_is_reproducible_and_replicas_differ():
    problem = sg.TeacherStudent.random(100, 2, 2, seed=0)
    a = sg.simulate_teacher_student(problem, 1.0, steps=500, replicas=3, seed=7)
    b = sg.simulate_teacher_student(problem, 1.0, steps=500, replicas=3, seed=7)
    c = sg.simulate_teacher_student(problem, 1.0, steps=500, replicas=3, seed=8)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # one stream per replica: the thread count cannot change the numbers
    try:
        one = sg.simulate_teacher_student(problem, 1.0, steps=500, replicas=3, seed=7)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(a["Q"].values, b["Q"].values)
    assert np.array_equal(a["Q"].values, one["Q"].values)
    assert not np.array_equal(a["Q"].values, c["Q"].values)
    assert not np.allclose(a["eps_g"].values[-1, 0], a["eps_g"].values[-1, 1])
    assert a.status == "ok" and a.divergence is None and a["eps_g"].dims == ("step", "replica")


@pytest.mark.parametrize("lr_second, noise_std", [(0.0, 0.0), (0.7, 0.4)])
def test_simulator_follows_the_ode_at_large_n(lr_second, noise_std):
    """Early learning curve (α ≤ 3) at N = 2000, first layer only and with a trained second layer
    plus output noise: the ensemble mean of Q, R, v within 5 standard errors (+ the O(1/N)
    bias, 2/N) of the ODE started from the mean initial order parameters."""
    problem = sg.TeacherStudent.random(2000, 2, 2, seed=1, noise_std=noise_std)
    traj = sg.simulate_teacher_student(problem, 1.0, steps=6000, replicas=8, seed=2, init_std=0.3,
                                       every=2000, lr_second=lr_second, init_second=[0.8, 0.6])
    Q0 = traj["Q"].values[0].mean(0)
    R0 = traj["R"].values[0].mean(0)
    curve = ts.integrate_order_parameters(Q0, R0, problem.T, 1.0, 3.0, alphas=traj["alpha"].values,
                                          v0=[0.8, 0.6], noise_std=noise_std, lr_second=lr_second)
    if lr_second:
        assert np.ptp(curve.v[:, 0]) > 0.02  # the second layer moves (by 0.04), ≫ its 5 SE ≈ 0.003
    for name, ode in (("Q", curve.Q), ("R", curve.R), ("v", curve.v)):
        sim = traj[name].values
        mean, se = sim.mean(1), sim.std(1, ddof=1) / math.sqrt(sim.shape[1])
        assert np.all(np.abs(mean - ode) <= 5 * se + 2 / problem.N + 1e-12), name  # α=0: se = 0


def test_divergence_is_reported_with_step_and_replica():
    problem = sg.TeacherStudent.random(50, 1, 1, seed=0)
    kw = dict(steps=200, replicas=3, seed=0, every=10, init_std=1.0)
    # weights of variance 1 give Q_kk ≈ 1 > threshold 0.5 at the first record: a forced divergence
    with pytest.raises(sg.DivergenceError) as err:
        sg.simulate_teacher_student(problem, 0.5, divergence_threshold=0.5, **kw)
    assert err.value.step == 10 and err.value.trajectory.status == "diverged"
    rec = sg.simulate_teacher_student(problem, 0.5, divergence_threshold=0.5, on_divergence="record", **kw)
    assert np.all(rec.diverged_at == 10)
    assert np.all(np.isnan(rec["eps_g"].values[1:])) and np.all(np.isfinite(rec["eps_g"].values[0]))
    stop = sg.simulate_teacher_student(problem, 0.5, divergence_threshold=0.5, on_divergence="stop", **kw)
    assert stop.status == "stopped"


def test_bad_arguments_name_the_parameter():
    problem = sg.TeacherStudent.random(20, 1, 1)
    with pytest.raises(TypeError, match="lr"):
        sg.simulate_teacher_student(problem, "0.1", steps=10)
    with pytest.raises(ValueError, match="lr"):
        sg.simulate_teacher_student(problem, -1.0, steps=10)
    with pytest.raises(TypeError, match="steps"):
        sg.simulate_teacher_student(problem, 0.1, steps=10.0)
    with pytest.raises(ValueError, match="init"):
        sg.simulate_teacher_student(problem, 0.1, steps=10, init=np.zeros((2, 20)))
    with pytest.raises(TypeError, match="problem"):
        sg.simulate_teacher_student(sg.Quadratic.from_eigenvalues([1.0]), 0.1, steps=10)
    with pytest.raises(ValueError, match="M"):
        sg.TeacherStudent.random(3, 4, 1)
    with pytest.raises(ValueError, match="Q"):
        ts.order_parameter_rhs(np.eye(3), np.eye(2), np.eye(2), 0.1)
    with pytest.raises(TypeError, match="lr"):
        ts.integrate_order_parameters(np.eye(1), np.eye(1), np.eye(1), "1", 1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        ts.generalisation_error(np.eye(1), np.array([[2.0]]), np.eye(1))  # |R| > √(QT)
    with pytest.raises(ValueError, match="lr_bracket"):
        ts.learning_lr_threshold(np.eye(1) * 0.01, np.eye(1) * 1e-3, np.eye(1), alpha_max=50,
                                 lr_bracket=(0.5, 1.0))
