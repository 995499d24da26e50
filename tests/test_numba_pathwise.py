"""Pathwise oracles for the noisy Numba SGD kernels (STUMPY's ``tests/naive.py`` idea).

The Numba backend documents its random stream: replica ``r`` owns the xoshiro256++ state
``replica_states(seed, R, spawn_key=1)[r]``, and each step draws, in this order, what its
gradient oracle needs: minibatch indices with :func:`sgdsim._rng.randbelow` (with replacement:
``randbelow(n)`` per sample; without replacement: a partial Fisher–Yates on the replica's
permutation; epoch shuffle: a full Fisher–Yates when an epoch is exhausted), or standard normals
with :func:`sgdsim._rng.fill_standard_normal` (``d`` for Gaussian gradient noise, ``N`` for the
Gaussian minibatch surrogate). Here that stream feeds a plain NumPy loop of the textbook update
and the paths are compared one by one, not only in law.

Tolerance rtol = 1e-10: the kernels are compiled with re-association and FMA contraction
(``numba_kernels.FASTMATH``), so sums are rounded differently from NumPy's (~1e-16 relative per
operation, over ≤ 40 contracting steps: ≲ 1e-13); a wrong index or normal changes a path at
O(1e-2) or more.
"""

from __future__ import annotations

import numpy as np
import pytest

import sgdsim as sg
from sgdsim._rng import fill_standard_normal, randbelow, replica_states

RTOL = 1e-10
STEPS, R, SEED = 40, 5, 3


def _momentum_step(theta, buf, g, t, lr, beta, tau, nesterov, wd):
    g = g + wd * theta
    if beta == 0:
        return theta - lr * g, buf
    buf = g.copy() if t == 0 else beta * buf + (1 - tau) * g
    return theta - lr * (g + beta * buf if nesterov else buf), buf


def _oracle(grad_and_draw, theta0, lr, beta=0.0, tau=0.0, nesterov=False, wd=0.0):
    """Final θ of every replica: ``grad_and_draw(theta, s, work)`` draws from the replica's
    stream ``s`` and returns the minibatch gradient."""
    states = replica_states(SEED, R, spawn_key=1)
    out = np.empty((R, theta0.size))
    for r in range(R):
        s = states[r].copy()
        theta, buf, work = theta0.copy(), np.zeros_like(theta0), {}
        for t in range(STEPS):
            g = grad_and_draw(theta, s, work)
            theta, buf = _momentum_step(theta, buf, g, t, lr, beta, tau, nesterov, wd)
        out[r] = theta
    return out


def _normals(s, n):
    z = np.empty(n)
    fill_standard_normal(s, z)
    return z


def _run(problem, opt, **kw):
    res = sg.simulate(problem, opt, steps=STEPS, replicas=R, seed=SEED, backend="numba",
                      init=np.full(problem.dim, 0.5), record=("loss",), every=STEPS, **kw)  # fmt: skip
    return res.final_params


@pytest.mark.parametrize("momentum, nesterov, wd", [(0.0, False, 0.0), (0.8, False, 0.01), (0.9, True, 0.0)])
def test_noisy_diagonal_quadratic_follows_its_stream(momentum, nesterov, wd):
    lam, sigma2, B = np.array([2.0, 1.0, 0.3]), 0.4, 2
    q = sg.Quadratic.from_eigenvalues(lam, noise=sg.LabelNoise(sigma2))
    std = np.sqrt(sigma2 * lam / B)  # label noise: per-sample covariance σ²H, divided by B

    def grad(theta, s, work):
        return lam * theta + std * _normals(s, 3)

    tau = 0.1 if momentum and not nesterov else 0.0  # Nesterov needs dampening 0 (PyTorch)
    opt = sg.sgd(0.1, momentum=momentum, dampening=tau, nesterov=nesterov, weight_decay=wd)
    want = _oracle(grad, np.full(3, 0.5), 0.1, momentum, tau, nesterov, wd)
    np.testing.assert_allclose(_run(q, opt, batch_size=B), want, rtol=RTOL)


def test_correlated_noise_quadratic_follows_its_stream():
    lam = np.array([1.5, 0.7])
    C = np.array([[1.0, 0.4], [0.4, 0.5]])
    q = sg.Quadratic(np.diag(lam), noise=sg.AdditiveNoise(C))
    w, v = np.linalg.eigh(C)
    L = v * np.sqrt(w)  # the documented factor of C/B (B = 1): eigenvectors · √eigenvalues

    def grad(theta, s, work):
        return lam * theta + L @ _normals(s, 2)

    want = _oracle(grad, np.full(2, 0.5), 0.2)
    np.testing.assert_allclose(_run(q, sg.sgd(0.2)), want, rtol=RTOL)


# the kernel takes rows four at a time: B = 5 is a block and a remainder row, 8 blocks only,
# 3 the remainder loop only
# dim 21 runs the loops over coordinates vectorized (SIMD body and remainder), dim 3 scalar only.
# float32: ~1e-7 rounding per operation, ≲ 1e-5 of the scale of θ after 40 steps at dim 21
# (tolerance 1e-4 · max|θ|: rounding errors scale with ‖θ‖, not with a coordinate near 0; still
# 100× below what a wrong index does)
@pytest.mark.parametrize("dim, dtype, rtol",
                         [(3, "float64", RTOL), (21, "float64", RTOL), (21, "float32", 1e-4)])
@pytest.mark.parametrize("B", [5, 8, 3])
@pytest.mark.parametrize("sampling", ["with_replacement", "without_replacement", "epoch_shuffle"])
def test_linear_regression_minibatches_follow_their_stream(sampling, B, dim, dtype, rtol):
    p = sg.LinearRegression.synthetic(n=12, dim=dim, noise_std=0.3, seed=4)
    X, y, n = p.X, p.y, p.n_samples

    def indices(s, work):
        if sampling == "with_replacement":
            return [randbelow(s, n) for _ in range(B)]
        perm = work.setdefault("perm", list(range(n)))
        if sampling == "without_replacement":  # partial Fisher–Yates, the permutation kept
            for j in range(B):
                k = j + randbelow(s, n - j)
                perm[j], perm[k] = perm[k], perm[j]
            return perm[:B]
        pos = work.get("pos", n)  # epoch shuffle: the first batch shuffles
        if pos + B > n:
            for i in range(n - 1, 0, -1):
                k = randbelow(s, i + 1)
                perm[i], perm[k] = perm[k], perm[i]
            pos = 0
        work["pos"] = pos + B
        return perm[pos : pos + B]

    def grad(theta, s, work):
        idx = np.array(indices(s, work))
        return X[idx].T @ (X[idx] @ theta - y[idx]) / B

    want = _oracle(grad, np.full(dim, 0.5), 0.05, 0.5, 0.0)
    got = _run(p, sg.sgd(0.05, momentum=0.5), sampling=sampling, batch_size=B, dtype=dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_gaussian_minibatch_surrogate_follows_its_stream():
    p = sg.LinearRegression.synthetic(n=10, dim=3, noise_std=0.3, seed=5)
    X, y, n, B = p.X, p.y, p.n_samples, 4

    def grad(theta, s, work):
        res = X @ theta - y
        g = X.T @ res / n
        zeta = _normals(s, n)  # noise = (BN)^(-1/2) Σ_n ζ_n (r_n x_n − ∇L)
        return g + (X.T @ (zeta * res) - zeta.sum() * g) / np.sqrt(B * n)

    want = _oracle(grad, np.full(3, 0.5), 0.05)
    np.testing.assert_allclose(_run(p, sg.sgd(0.05), sampling="gaussian", batch_size=B), want, rtol=RTOL)


def test_noisy_random_potential_follows_its_stream():
    pot = sg.GaussianRandomPotential(dim=2, n_features=12, lengthscale=1.0, noise_std=0.2, seed=6)
    B = 4

    def grad(theta, s, work):
        return pot.grad(theta) + pot.noise_std / np.sqrt(B) * _normals(s, 2)

    want = _oracle(grad, np.full(2, 0.5), 0.1)
    np.testing.assert_allclose(_run(pot, sg.sgd(0.1), batch_size=B), want, rtol=RTOL)
