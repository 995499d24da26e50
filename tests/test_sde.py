"""Ensemble SDE integrators (sgdsim.sde): exactness against scheme moments, weak orders, stationarity,
NumPy references, nonlinear potentials, reproducibility."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit
from scipy import integrate, linalg

from sgdsim._rng import replica_states, standard_normal
from sgdsim.backends import sde_array, sde_numba
from sgdsim.backends.counter_rng import CounterRNG
from sgdsim.sde import baoab, euler_maruyama, exact_ou
from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin
from sgdsim.theory.schemes import (
    scheme_moments,
    scheme_stationary_covariance,
    scheme_transition,
)


def _rand_spd(rng, n, lo=0.5):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * rng.uniform(lo, 2.0, n)) @ Q.T


@pytest.fixture(scope="module")
def coupled():
    """2-d underdamped model with dense K and dense velocity noise (non-separable path)."""
    rng = np.random.default_rng(1)
    return UnderdampedLangevin(_rand_spd(rng, 2), [0.7, 1.3], _rand_spd(rng, 2, 0.2), [0.5, -1.0])


@pytest.fixture(scope="module")
def ou3():
    """3-d OU with non-symmetric A not commuting with D."""
    A = np.array([[1.0, 0.5, 0.0], [-0.3, 0.8, 0.2], [0.1, 0.0, 1.5]])
    D = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]])
    return LinearSDE(A, D, [1.0, 0.0, -1.0])


def _z_var(samples: np.ndarray, predicted_cov: np.ndarray) -> np.ndarray:
    """z-scores of sample covariance entries; Var(ŝ_ij) = (S_ii S_jj + S_ij²)/R for Gaussians."""
    R = samples.shape[0]
    est = np.cov(samples, rowvar=False)
    d = np.diag(predicted_cov)
    se = np.sqrt((np.outer(d, d) + predicted_cov**2) / R)
    return (est - predicted_cov) / se


def _z_mean(samples: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return (samples.mean(axis=0) - mean) / np.sqrt(np.diag(cov) / samples.shape[0])


# --- kernels against the exact moments of their own discretization ----------------------------
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("method", ["euler_maruyama", "baoab", "exact_ou"])
def test_kernel_matches_exact_scheme_moments(coupled, method, backend):
    fn = {"euler_maruyama": euler_maruyama, "baoab": baoab, "exact_ou": exact_ou}[method]
    dt, steps, R = 0.1, 30, 40_000
    x0, v0 = np.array([1.0, 2.0]), np.array([-0.5, 0.3])
    res = fn(coupled, dt=dt, steps=steps, replicas=R, seed=3, x0=x0, v0=v0, every=steps,
             record=("x", "v"), backend=backend)  # fmt: skip
    y0 = np.concatenate([x0 - coupled.x_star, v0])
    mean, cov = scheme_moments(method, coupled, dt, steps, y0)
    samples = np.hstack([res.final_x, res.final_v])
    # 4 means + 10 distinct covariances: |z| < 5 has a false-alarm rate < 1e-4 in all
    assert np.all(np.abs(_z_mean(samples, mean, cov)) < 5)
    assert np.all(np.abs(_z_var(samples, cov)) < 5)
    np.testing.assert_array_equal(res["x"][-1], res.final_x)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_separable_baoab_matches_scheme_moments(backend):
    model = UnderdampedLangevin.thermal(np.linspace(0.1, 2.0, 10), 1.0, 1.0)
    dt, steps, R = 0.05, 200, 20_000
    res = baoab(model, dt=dt, steps=steps, replicas=R, seed=4, every=steps, record=(),
                backend=backend)  # fmt: skip
    _, cov = scheme_moments("baoab", model, dt, steps)
    samples = np.hstack([res.final_x, res.final_v])
    z = (samples.var(axis=0, ddof=1) / np.diag(cov) - 1.0) / np.sqrt(2.0 / R)
    assert np.all(np.abs(z) < 5)  # 20 variances, Gaussian s.e. √(2/R)


def test_exact_ou_stationary_covariance_vs_lyapunov(ou3):
    S = ou3.stationary_covariance()
    # dt = 1 is as exact as any: 40 steps → e^{-40·0.8} of the start remains
    res = exact_ou(ou3, dt=1.0, steps=40, replicas=30_000, seed=5, every=40, record=())
    assert np.all(np.abs(_z_var(res.final_x, S)) < 5)  # 6 distinct entries, |z|<5 (p<1e-5)
    assert np.all(np.abs(_z_mean(res.final_x, ou3.x_star, S)) < 5)


# --- weak orders ---------------------------------------------------------------------------------
def _slope(dts, errs):
    return np.polyfit(np.log(dts), np.log(errs), 1)[0]


def test_weak_order_from_exact_scheme_moments():
    """Error of E[x_T²] (finite T, fixed start) vs the Van Loan truth: slopes 1 (EM), 2 (BAOAB)."""
    model = UnderdampedLangevin.thermal([1.0, 3.0], [0.5, 2.0], 1.0)
    lin = model.to_linear()
    T = 2.0
    y0 = np.array([1.0, -1.0, 0.5, 0.0])
    truth_m = lin.mean(T, y0)
    truth = lin.covariance(T) + np.outer(truth_m, truth_m)
    dts = T / np.array([16, 32, 64, 128])
    slopes = {}
    for method in ("euler_maruyama", "baoab"):
        errs = []
        for dt in dts:
            m, c = scheme_moments(method, model, dt, round(T / dt), y0)
            errs.append(abs((c + np.outer(m, m))[0, 0] - truth[0, 0]))
        slopes[method] = _slope(dts, errs)
    assert abs(slopes["euler_maruyama"] - 1.0) < 0.1  # asymptotic slope, 4 halvings
    assert abs(slopes["baoab"] - 2.0) < 0.1
    m, c = scheme_moments("exact_ou", model, 0.25, 8, y0)
    np.testing.assert_allclose(c + np.outer(m, m), truth, rtol=1e-9, atol=1e-12)  # exact in law


def test_em_weak_order_by_simulation():
    """Monte Carlo: EM's stationary variance of dx = −x dt + √2 dW is 1/(1 − dt/2): error ∝ dt."""
    sde = LinearSDE([[1.0]], [[1.0]])
    dts = np.array([0.4, 0.2, 0.1])
    errs = []
    for dt in dts:
        steps = round(20 / dt)
        res = euler_maruyama(sde, dt=dt, steps=steps, replicas=100_000, seed=6, every=steps,
                             record=())  # fmt: skip
        errs.append(res.final_x[:, 0].var() - 1.0)
    errs = np.array(errs)
    # bias 1/(1−dt/2) − 1 = 0.25..0.053 vs s.e. √(2/R)·1.1 ≈ 0.005: slope within ±0.15
    assert abs(_slope(dts, errs) - np.polyfit(np.log(dts), np.log(1 / (1 - dts / 2) - 1), 1)[0]) < 0.15
    np.testing.assert_allclose(errs, 1 / (1 - dts / 2) - 1, atol=5 * 0.0055)


def test_baoab_harmonic_configurational_variance_exact():
    """Leimkuhler–Matthews: BAOAB samples x of a harmonic oscillator exactly (any dt < 2/ω)."""
    model = UnderdampedLangevin.thermal([1.0, 4.0], 1.0, 1.0)
    S = scheme_stationary_covariance("baoab", model, 0.5)
    np.testing.assert_allclose(np.diag(S)[:2], [1.0, 0.25], rtol=1e-10)
    # velocities (after the final B) are not exact: kT(1 − ω²dt²/4) (same source, harmonic case)
    np.testing.assert_allclose(np.diag(S)[2:], 1 - np.array([1.0, 4.0]) * 0.25 / 4, rtol=1e-10)


# --- NumPy references (slow, obviously correct) -------------------------------------------------
def _np_baoab(model, dt, steps, R, rng, x0):
    K, xs, g, Dv = model.K, model.x_star, model.friction, model.velocity_diffusion
    c = np.exp(-g * dt)
    gs = g[:, None] + g[None, :]
    L = np.linalg.cholesky(2 * Dv * (1 - np.exp(-gs * dt)) / gs)
    x = np.tile(x0, (R, 1))
    v = np.zeros((R, len(xs)))
    for _ in range(steps):
        v -= 0.5 * dt * (x - xs) @ K.T
        x += 0.5 * dt * v
        v = c * v + rng.standard_normal(x.shape) @ L.T
        x += 0.5 * dt * v
        v -= 0.5 * dt * (x - xs) @ K.T
    return x, v


def _np_em(sde, dt, steps, R, rng, x0):
    G = np.linalg.cholesky(2 * sde.D * dt)
    x = np.tile(x0, (R, 1))
    for _ in range(steps):
        x = x - dt * (x - sde.x_star) @ sde.A.T + rng.standard_normal(x.shape) @ G.T
    return x


def _two_sample_z(a, b):
    ma, mb = a.mean(0), b.mean(0)
    za = (ma - mb) / np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
    va, vb = a.var(0, ddof=1), b.var(0, ddof=1)
    zv = (va - vb) / np.sqrt(2 * va**2 / len(a) + 2 * vb**2 / len(b))
    return np.concatenate([za, zv])


def test_baoab_numba_vs_numpy_reference(coupled):
    rng = np.random.default_rng(7)
    x0 = np.array([1.0, 1.0])
    xn, vn = _np_baoab(coupled, 0.2, 25, 20_000, rng, x0)
    res = baoab(coupled, dt=0.2, steps=25, replicas=20_000, seed=7, x0=x0, every=25, record=())
    z = _two_sample_z(np.hstack([xn, vn]), np.hstack([res.final_x, res.final_v]))
    assert np.all(np.abs(z) < 5)  # 8 two-sample statistics; |z|<5 false alarm < 1e-5


def test_em_numba_vs_numpy_reference(ou3):
    rng = np.random.default_rng(8)
    x0 = np.array([2.0, 0.0, 0.0])
    xn = _np_em(ou3, 0.1, 20, 20_000, rng, x0)
    res = euler_maruyama(ou3, dt=0.1, steps=20, replicas=20_000, seed=8, x0=x0, every=20, record=())
    assert np.all(np.abs(_two_sample_z(xn, res.final_x)) < 5)  # 6 statistics, as above


# --- pathwise: the kernels consume each path's stream in order, one step's normals at a time ------
@njit
def _stream_normals(states, steps, n):
    """``z[r, k]``: the ``n`` normals of step ``k`` of path ``r``, drawn one at a time with
    :func:`standard_normal` (not the bulk filler the kernels use)."""
    z = np.empty((states.shape[0], steps, n))
    for r in range(states.shape[0]):
        for k in range(steps):
            for i in range(n):
                z[r, k, i] = standard_normal(states[r])
    return z


def test_pathwise_streams_em_and_exact_ou(ou3):
    """Same seed → the kernels' paths equal NumPy recurrences fed the documented stream.

    Noise factors are computed independently (scipy ``sqrtm`` / ``expm`` / continuous Lyapunov)."""
    dt, steps, R, seed = 0.1, 20, 5, 21
    x0 = np.array([2.0, -1.0, 0.5])
    z = _stream_normals(replica_states(seed, R), steps, 3)
    A, D, xs = ou3.A, ou3.D, ou3.x_star
    G = np.real(linalg.sqrtm(2.0 * D * dt))  # symmetric root, as the kernel uses
    x = np.tile(x0, (R, 1))
    for k in range(steps):
        x = x - dt * (x - xs) @ A.T + z[:, k] @ G.T
    res = euler_maruyama(ou3, dt=dt, steps=steps, replicas=R, seed=seed, x0=x0, every=steps,
                         record=())  # fmt: skip
    # pure rounding: 20 steps of O(1) arithmetic, differing only in summation order
    np.testing.assert_allclose(res.final_x, x, rtol=1e-10, atol=1e-12)

    E = linalg.expm(-A * dt)
    S = linalg.solve_continuous_lyapunov(A, 2.0 * D)
    Gs = np.real(linalg.sqrtm(S - E @ S @ E.T))  # Σ(h) = S∞ − e^{−Ah} S∞ e^{−Aᵀh}
    y = np.tile(x0 - xs, (R, 1))
    for k in range(steps):
        y = y @ E.T + z[:, k] @ Gs.T
    res = exact_ou(ou3, dt=dt, steps=steps, replicas=R, seed=seed, x0=x0, every=steps, record=())
    # rounding as above, plus expm / Van Loan vs Lyapunov agreement (~1e-14 relative)
    np.testing.assert_allclose(res.final_x, y + xs, rtol=1e-9, atol=1e-11)


def test_pathwise_stream_separable_baoab(monkeypatch):
    """Diagonal BAOAB against its per-coordinate recurrence fed the same stream, in SIMD blocks
    of 16 paths (four full blocks and a remainder of 6)."""
    monkeypatch.setattr(sde_numba, "_lanes_for", lambda d: 16)
    k_, g_, kT = np.array([0.5, 1.0, 3.0]), np.array([0.7, 1.0, 2.0]), 1.5
    model = UnderdampedLangevin.thermal(k_, g_, kT)
    dt, steps, R, seed = 0.2, 30, 70, 22
    z = _stream_normals(replica_states(seed, R), steps, 3)
    c = np.exp(-g_ * dt)
    sd = np.sqrt(kT * (1.0 - c**2))  # O step: Var = 2γkT(1 − e^{−2γh})/(2γ) at unit mass
    h = 0.5 * dt
    x = np.tile([1.0, -2.0, 0.5], (R, 1))
    v = np.zeros((R, 3))
    for k in range(steps):
        v = v - h * k_ * x
        x = x + h * v
        v = c * v + sd * z[:, k]
        x = x + h * v
        v = v - h * k_ * x
    res = baoab(model, dt=dt, steps=steps, replicas=R, seed=seed, x0=[1.0, -2.0, 0.5],
                every=steps, record=())  # fmt: skip
    # same operations per coordinate; only exp/sqrt of the coefficients may round differently
    np.testing.assert_allclose(res.final_x, x, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(res.final_v, v, rtol=1e-11, atol=1e-13)


# --- nonlinear potentials through a user @njit gradient ------------------------------------------
@njit
def _quartic_grad(x):
    return x**3  # U = Σ x⁴/4


def _quartic_x2() -> float:
    num = integrate.quad(lambda x: x * x * np.exp(-(x**4) / 4), -np.inf, np.inf)[0]
    return num / integrate.quad(lambda x: np.exp(-(x**4) / 4), -np.inf, np.inf)[0]


def test_user_gradient_baoab_and_em_sample_gibbs():
    truth = _quartic_x2()  # ⟨x²⟩ under e^{−x⁴/4} by quadrature (kT = 1)
    R = 4000
    res = baoab(_quartic_grad, dt=0.05, steps=600, replicas=R, seed=9, x0=np.zeros(2),
                friction=1.0, velocity_diffusion=1.0, every=600, record=())  # fmt: skip
    x2 = res.final_x**2
    se = x2.std() / np.sqrt(x2.size)
    # 5 s.e. plus an O(dt²) bias allowance of 1%
    assert abs(x2.mean() - truth) < 5 * se + 0.01 * truth
    v2 = res.final_v**2
    assert abs(v2.mean() - 1.0) < 5 * v2.std() / np.sqrt(v2.size) + 0.01
    res = euler_maruyama(_quartic_grad, dt=0.01, steps=1500, replicas=R, seed=10,
                         x0=np.zeros(2), diffusion=1.0, every=1500, record=())  # fmt: skip
    x2 = res.final_x**2
    # EM bias O(dt) ≈ 1% here: allowance 2%
    assert abs(x2.mean() - truth) < 5 * x2.std() / np.sqrt(x2.size) + 0.02 * truth


# --- recording, reproducibility, errors ----------------------------------------------------------
def test_records_and_reproducibility(coupled):
    kw = dict(dt=0.1, steps=10, replicas=7, seed=11, x0=[1.0, 2.0], every=5,
              record=("x", "v", "dist2", "x2", "v2"))  # fmt: skip
    a = baoab(coupled, **kw)
    b = baoab(coupled, **kw)
    for k in a.records:
        np.testing.assert_array_equal(a[k], b[k])  # same seed → bitwise identical
    np.testing.assert_array_equal(a.steps, [0, 5, 10])
    np.testing.assert_allclose(a.times, [0.0, 0.5, 1.0])
    assert a["x"].shape == (3, 7, 2) and a["dist2"].shape == (3, 7)
    np.testing.assert_array_equal(a["x"][0], np.tile([1.0, 2.0], (7, 1)))
    np.testing.assert_allclose(a["dist2"], np.sum((a["x"] - a["x"][0]) ** 2, axis=2))
    np.testing.assert_allclose(a["x2"], np.sum(a["x"] ** 2, axis=2))
    np.testing.assert_allclose(a["v2"], np.sum(a["v"] ** 2, axis=2))
    c = baoab(coupled, **{**kw, "seed": 12})
    assert not np.array_equal(a["x"][-1], c["x"][-1])
    import sgdsim

    assert a.run == {"seed": 11, "backend": "numba", "dtype": "float64",
                     "sgdsim_version": sgdsim.__version__}  # fmt: skip


def test_separable_baoab_independent_of_block_size(monkeypatch):
    model = UnderdampedLangevin.thermal([0.5, 1.0, 3.0], 1.0, 1.0)
    kw = dict(dt=0.1, steps=40, replicas=300, seed=5, x0=[1.0, 0.0, -1.0], every=8,
              record=("x", "v", "dist2", "x2", "v2"))  # fmt: skip
    a = baoab(model, **kw)  # default: one block of 256 and one of 44
    monkeypatch.setattr(sde_numba, "_lanes_for", lambda d: 7)
    b = baoab(model, **kw)
    for k in a.records:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(a.final_v, b.final_v)


def test_thread_count_independent(ou3, coupled):
    kw = dict(dt=0.1, steps=50, replicas=64, seed=13, every=50, record=())
    sep = UnderdampedLangevin.thermal([1.0, 2.0], 1.0, 1.0)  # separable BAOAB path

    def run():
        return (exact_ou(ou3, **kw).final_x, euler_maruyama(ou3, **kw).final_x,
                baoab(coupled, **kw).final_v, baoab(sep, **kw).final_v)  # fmt: skip

    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
    finally:
        numba.set_num_threads(n)
    many = run()
    for p, q in zip(one, many):
        np.testing.assert_array_equal(p, q)


# --- the array backends (NumPy reference; the same code runs on CuPy) -----------------------------
def _counter_normals(seed, R, steps, n):
    """``z[k]``: step ``k``'s (R, n) normals of the array backends' documented streams."""
    rng = CounterRNG(seed, R, np, spawn_key=sde_array._SPAWN_KEY)
    return [rng.normal(n) for _ in range(steps)]


def test_array_backend_pathwise(ou3, coupled):
    """Each scheme equals a NumPy recurrence fed the documented counter streams; the noise
    factors are computed independently (scipy sqrtm / expm / Lyapunov, Cholesky-free)."""
    dt, steps, R, seed = 0.1, 15, 6, 31
    x0 = np.array([2.0, -1.0, 0.5])
    z = _counter_normals(seed, R, steps, 3)
    G = np.real(linalg.sqrtm(2.0 * ou3.D * dt))
    x = np.tile(x0, (R, 1))
    for k in range(steps):
        x = x - dt * (x - ou3.x_star) @ ou3.A.T + z[k] @ G.T
    res = euler_maruyama(ou3, dt=dt, steps=steps, replicas=R, seed=seed, x0=x0, every=steps,
                         record=(), backend="numpy")  # fmt: skip
    np.testing.assert_allclose(res.final_x, x, rtol=1e-10, atol=1e-12)

    E = linalg.expm(-ou3.A * dt)
    S = linalg.solve_continuous_lyapunov(ou3.A, 2.0 * ou3.D)
    Gs = np.real(linalg.sqrtm(S - E @ S @ E.T))
    y = np.tile(x0 - ou3.x_star, (R, 1))
    for k in range(steps):
        y = y @ E.T + z[k] @ Gs.T
    res = exact_ou(ou3, dt=dt, steps=steps, replicas=R, seed=seed, x0=x0, every=steps, record=(),
                   backend="numpy")  # fmt: skip
    np.testing.assert_allclose(res.final_x, y + ou3.x_star, rtol=1e-9, atol=1e-11)

    K, xs, g, Dv = coupled.K, coupled.x_star, coupled.friction, coupled.velocity_diffusion
    gs = g[:, None] + g[None, :]
    L = np.real(linalg.sqrtm(2 * Dv * (1 - np.exp(-gs * dt)) / gs))
    z = _counter_normals(seed, R, steps, 2)
    x, v, h = np.tile([1.0, 2.0], (R, 1)), np.zeros((R, 2)), 0.5 * dt
    for k in range(steps):
        v = v - h * (x - xs) @ K.T
        x = x + h * v
        v = np.exp(-g * dt) * v + z[k] @ L.T
        x = x + h * v
        v = v - h * (x - xs) @ K.T
    res = baoab(coupled, dt=dt, steps=steps, replicas=R, seed=seed, x0=[1.0, 2.0], every=steps,
                record=(), backend="numpy")  # fmt: skip
    np.testing.assert_allclose(res.final_x, x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.final_v, v, rtol=1e-10, atol=1e-12)


def test_array_backend_paths_do_not_depend_on_the_ensemble_size(coupled):
    kw = dict(dt=0.1, steps=20, seed=32, every=5, record=("x", "v", "dist2"), backend="numpy")
    small, big = baoab(coupled, replicas=3, **kw), baoab(coupled, replicas=40, **kw)
    for k in small.records:
        np.testing.assert_array_equal(small[k], big[k][:, :3])


def test_array_backend_agrees_with_numba_in_law(coupled):
    kw = dict(dt=0.2, steps=25, replicas=20_000, x0=[1.0, 1.0], every=25, record=())
    a = baoab(coupled, seed=7, backend="numba", **kw)
    b = baoab(coupled, seed=7, backend="numpy", **kw)
    z = _two_sample_z(np.hstack([a.final_x, a.final_v]), np.hstack([b.final_x, b.final_v]))
    assert np.all(np.abs(z) < 5)  # 8 two-sample statistics; |z|<5 false alarm < 1e-5


def test_array_backend_records_follow_their_definitions(coupled):
    r = baoab(coupled, dt=0.1, steps=12, replicas=5, seed=33, x0=[1.0, 2.0], every=4,
              record=("x", "v", "dist2", "x2", "v2"), backend="numpy")  # fmt: skip
    np.testing.assert_array_equal(r.steps, [0, 4, 8, 12])
    np.testing.assert_array_equal(r["x"][0], np.tile([1.0, 2.0], (5, 1)))
    np.testing.assert_allclose(r["dist2"], np.sum((r["x"] - r["x"][0]) ** 2, axis=2))
    np.testing.assert_allclose(r["x2"], np.sum(r["x"] ** 2, axis=2))
    np.testing.assert_allclose(r["v2"], np.sum(r["v"] ** 2, axis=2))
    np.testing.assert_array_equal(r["x"][-1], r.final_x)


def test_array_backend_user_gradient_samples_gibbs():
    truth = _quartic_x2()
    R = 4000
    res = baoab(lambda X: X**3, dt=0.05, steps=600, replicas=R, seed=9, x0=np.zeros(2),
                friction=1.0, velocity_diffusion=1.0, every=600, record=(), backend="numpy")  # fmt: skip
    x2 = res.final_x**2
    assert abs(x2.mean() - truth) < 5 * x2.std() / np.sqrt(x2.size) + 0.01 * truth  # as above
    res = euler_maruyama(lambda X: X**3, dt=0.01, steps=1500, replicas=R, seed=10,
                         x0=np.zeros(2), diffusion=1.0, every=1500, record=(), backend="numpy")  # fmt: skip
    x2 = res.final_x**2
    assert abs(x2.mean() - truth) < 5 * x2.std() / np.sqrt(x2.size) + 0.02 * truth


@pytest.mark.parametrize("method", ["euler_maruyama", "baoab", "exact_ou"])
def test_array_backend_float32(coupled, method):
    """float32: the same streams in single precision, within float32 rounding of the float64 run
    (15 steps of O(1) arithmetic: ~1e-6), and the scheme's law at the ensemble level."""
    fn = {"euler_maruyama": euler_maruyama, "baoab": baoab, "exact_ou": exact_ou}[method]
    kw = dict(dt=0.1, steps=15, seed=35, x0=[1.0, 2.0], every=15, record=("x",), backend="numpy")
    a, b = fn(coupled, replicas=20, **kw), fn(coupled, replicas=20, dtype="float32", **kw)
    err = np.max(np.abs(b.final_x - a.final_x))
    assert 1e-9 < err < 1e-4  # really single precision, and only rounding apart
    assert b.final_x.dtype == np.float64 and b["x"].dtype == np.float64
    res = fn(coupled, replicas=40_000, dtype="float32", **{**kw, "steps": 30, "every": 30})
    mean, cov = scheme_moments(method, coupled, 0.1, 30, np.r_[np.subtract([1.0, 2.0], coupled.x_star), 0, 0])
    samples = np.hstack([res.final_x, res.final_v])
    assert np.all(np.abs(_z_mean(samples, mean, cov)) < 5)  # as the float64 test above
    assert np.all(np.abs(_z_var(samples, cov)) < 5)


def test_array_backend_bad_input(coupled):
    with pytest.raises(ValueError, match="backend"):
        baoab(coupled, dt=0.1, steps=1, replicas=1, seed=0, backend="jax")
    with pytest.raises(ValueError, match="`dtype`='float32' needs an array backend"):
        baoab(coupled, dt=0.1, steps=1, replicas=1, seed=0, dtype="float32")
    with pytest.raises(ValueError, match="dtype"):
        exact_ou(coupled, dt=0.1, steps=1, replicas=1, seed=0, backend="numpy", dtype="float16")
    with pytest.raises(ValueError, match=r"`grad` must map shape \(4, 2\)"):
        baoab(lambda X: X.sum(axis=1), dt=0.1, steps=1, replicas=4, seed=0, x0=np.zeros(2),
              friction=1.0, velocity_diffusion=1.0, backend="numpy")  # fmt: skip
    with pytest.raises(TypeError, match="whole ensemble"):
        euler_maruyama(lambda x: x[5], dt=0.1, steps=1, replicas=4, seed=0, x0=np.zeros(2),
                       diffusion=1.0, backend="numpy")  # fmt: skip


def _gpu_available() -> bool:
    try:
        from sgdsim.backends.cupy_backend import cupy_or_error

        cupy_or_error()
    except RuntimeError:
        return False
    return True


def test_cupy_backend_without_gpu_raises_clearly(coupled):
    if _gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="backend='cupy'"):
        baoab(coupled, dt=0.1, steps=1, replicas=1, seed=0, backend="cupy")


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("method", ["euler_maruyama", "baoab", "exact_ou"])
def test_cupy_matches_numpy_reference(coupled, method):
    """Same counter streams on both namespaces: equal up to transcendental round-off."""
    fn = {"euler_maruyama": euler_maruyama, "baoab": baoab, "exact_ou": exact_ou}[method]
    kw = dict(dt=0.1, steps=200, replicas=256, seed=34, x0=[1.0, 2.0], every=50,
              record=("x", "v", "dist2"))  # fmt: skip
    a, b = fn(coupled, backend="numpy", **kw), fn(coupled, backend="cupy", **kw)
    for k in a.records:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12)


def test_bad_input(ou3, coupled):
    with pytest.raises(ValueError, match="record"):
        euler_maruyama(ou3, dt=0.1, steps=1, replicas=1, seed=0, record="v")
    with pytest.raises(TypeError, match="njit"):
        baoab(lambda x: x, dt=0.1, steps=1, replicas=1, seed=0, x0=[0.0], friction=1.0,
              velocity_diffusion=1.0)  # fmt: skip
    with pytest.raises(ValueError, match="x0"):
        exact_ou(ou3, dt=0.1, steps=1, replicas=2, seed=0, x0=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="dt"):
        baoab(coupled, dt=-0.1, steps=1, replicas=1, seed=0)
    with pytest.raises(ValueError, match="method"):
        scheme_transition("rk4", ou3, 0.1)
    with pytest.raises(ValueError, match="unstable"):
        scheme_stationary_covariance("euler_maruyama", ou3, 5.0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("method", ["euler_maruyama", "baoab", "exact_ou", "baoab_separable"])
def test_pieces_with_a_progress_bar_equal_one_call(coupled, method, backend, capsys):
    """progress=True runs in ~100 kernel calls (each a multiple of the record interval): the
    records and final state equal one uninterrupted call bit for bit."""
    model = coupled
    if method == "baoab_separable":
        model, method = UnderdampedLangevin.thermal([1.0, 3.0], 0.5, 1.0), "baoab"
    fn = {"euler_maruyama": euler_maruyama, "baoab": baoab, "exact_ou": exact_ou}[method]
    kw = dict(dt=0.1, steps=250, replicas=5, seed=40, x0=[1.0, 2.0], every=4,
              record=("x", "v", "dist2", "x2", "v2"), backend=backend)  # fmt: skip
    one = fn(model, progress=False, **kw)
    pieces = fn(model, progress=True, **kw)
    assert method in capsys.readouterr().err  # the bar was drawn (tqdm writes to stderr)
    for name in one.records:
        np.testing.assert_array_equal(pieces[name], one[name])
    np.testing.assert_array_equal(pieces.final_x, one.final_x)


# --- sgdsim problems as the potential --------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_quadratic_problems_run_as_their_exact_linear_models(backend):
    import sgdsim as sg

    q = sg.Quadratic.from_eigenvalues([2.0, 0.5], minimum=[1.0, -1.0])
    lr = sg.LinearRegression.synthetic(n=40, dim=2, seed=3)
    kw = dict(dt=0.05, steps=40, replicas=6, seed=41, every=10, record=("x", "dist2"), backend=backend)
    for prob, (H, xs) in ((q, (q.hessian_matrix(), [1.0, -1.0])), (lr, (lr.hessian_matrix(), lr.solution))):
        a = euler_maruyama(prob, diffusion=0.3, **kw)
        b = euler_maruyama(LinearSDE(H, 0.3, xs), **kw)
        np.testing.assert_array_equal(a["x"], b["x"])
        a = baoab(prob, friction=0.7, velocity_diffusion=0.4, **kw)
        b = baoab(UnderdampedLangevin(H, 0.7, 0.4, xs), **kw)
        np.testing.assert_array_equal(a["x"], b["x"])


def test_random_potential_and_custom_problem_as_the_potential():
    import sgdsim as sg

    pot = sg.GaussianRandomPotential(dim=3, n_features=64, lengthscale=1.0, seed=2)
    W, b, amp = pot.W.copy(), pot.b.copy(), pot.amp.copy()

    @njit
    def grad(x):  # the same field, written out independently
        return (-amp * np.sin(W @ x + b)) @ W

    kw = dict(dt=0.05, steps=100, replicas=5, seed=3, every=50, record=("x",))
    lang = dict(friction=1.0, velocity_diffusion=0.5)
    x0 = np.zeros(3)
    # Numba: built-in packed-parameter gradient vs the user closure (summation order only)
    np.testing.assert_allclose(baoab(pot, **lang, **kw)["x"], baoab(grad, x0=x0, **lang, **kw)["x"],
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(euler_maruyama(pot, diffusion=0.5, **kw)["x"],
                               euler_maruyama(grad, x0=x0, diffusion=0.5, **kw)["x"],
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    # NumPy: the device-ready field vs the problem's own batched gradient
    np.testing.assert_allclose(baoab(pot, backend="numpy", **lang, **kw)["x"],
                               baoab(pot.grad, x0=x0, backend="numpy", **lang, **kw)["x"],
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    toy = sg.CustomProblem(dim=3, grad=grad)
    np.testing.assert_array_equal(baoab(toy, **lang, **kw)["x"], baoab(grad, x0=x0, **lang, **kw)["x"])


def test_problem_potential_errors():
    import sgdsim as sg

    pot = sg.GaussianRandomPotential(dim=2, n_features=8, lengthscale=1.0, per_replica=True, n_replicas=3)
    with pytest.raises(ValueError, match="per-replica"):
        baoab(pot, dt=0.1, steps=1, replicas=3, seed=0, friction=1.0, velocity_diffusion=1.0)
    q = sg.Quadratic.from_eigenvalues([1.0])
    with pytest.raises(ValueError, match="pass `diffusion`"):
        euler_maruyama(q, dt=0.1, steps=1, replicas=1, seed=0)
    with pytest.raises(ValueError, match="pass `friction` and `velocity_diffusion`"):
        baoab(q, dt=0.1, steps=1, replicas=1, seed=0, friction=1.0)


# --- divergence is reported, not turned into NaNs silently --------------------------------------------
def _first_crossing(M, z0, thr, steps):
    """The first k with ‖Mᵏz₀‖² non-finite or above ``thr`` (deterministic linear map)."""
    z = np.array(z0, dtype=float)
    for k in range(1, steps + 1):
        z = M @ z
        if not (z @ z <= thr):
            return k
    return -1


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("method", ["baoab", "euler_maruyama", "exact_ou", "baoab_separable"])
def test_divergence_names_the_exact_step_and_path(method, backend):
    """A noiseless, unstable linear scheme: the reported step is where the exact one-step map
    (scheme_transition, dense algebra) first crosses the documented threshold."""
    from sgdsim import DivergenceError

    if method == "exact_ou":  # the exact transition of an unstable OU process (A has −1 and 2)
        model = LinearSDE([[-1.0, 0.0], [0.0, 2.0]], np.zeros((2, 2)))
        dt, z0 = 0.5, np.array([1.0, 0.5])
    else:  # BAOAB / EM beyond their stability limits on stiffness [4, 1]
        sep = method == "baoab_separable"
        K = np.diag([4.0, 1.0]) if sep else np.array([[4.0, 0.5], [0.5, 1.0]])
        model = UnderdampedLangevin(K, 0.5, 0.0)
        dt, z0 = (1.2 if method != "euler_maruyama" else 0.9), np.array([1.0, 0.5, 0.0, 0.0])
        method = "baoab" if sep else method
    fn = {"euler_maruyama": euler_maruyama, "baoab": baoab, "exact_ou": exact_ou}[method]
    M, _ = scheme_transition(method, model, dt)
    x0 = z0[: model.dim]
    thr = 1e20 * max(1.0, z0 @ z0)
    expect = _first_crossing(M, z0, thr, 3000)
    assert 10 < expect < 3000  # the setup really diverges, after a while
    kw = dict(dt=dt, steps=3000, replicas=3, seed=0, x0=x0, every=7, record=("x", "dist2"),
              backend=backend)  # fmt: skip
    with pytest.raises(DivergenceError, match=rf"replica 0 diverged at step {expect} ") as err:
        fn(model, **kw)
    assert err.value.trajectory.diverged_at.tolist() == [expect] * 3
    res = fn(model, on_divergence="record", **kw)
    first_nan = -(-expect // 7)
    assert np.all(np.isfinite(res["x"][:first_nan])) and np.all(np.isnan(res["x"][first_nan:]))
    assert np.all(np.isnan(res.final_x))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_only_the_runaway_path_is_marked(backend):
    """U = −x⁴/4 (force x³), no noise: the path started at 2 runs away at the step the plain
    recursion x ← x + dt·x³ does; the one started at 0.1 stays finite and untouched."""
    if backend == "numba":

        @njit
        def grad(x):
            return -(x**3)

    else:

        def grad(x):
            return -(x**3)

    dt, x = 0.01, 2.0
    thr = 1e20 * 4.0
    expect = -1
    for k in range(1, 5000):
        x = x + dt * x**3
        if not (x * x <= thr):
            expect = k
            break
    res = euler_maruyama(grad, dt=dt, steps=5000, replicas=2, seed=0, x0=[[2.0], [0.1]],
                         diffusion=0.0, every=5000, record=(), on_divergence="record",
                         backend=backend)  # fmt: skip
    assert res.diverged_at.tolist() == [expect, -1] and expect > 0
    assert np.isnan(res.final_x[0, 0]) and np.isfinite(res.final_x[1, 0])
