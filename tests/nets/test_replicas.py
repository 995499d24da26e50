"""Batched NumPy replica training against torch autodiff (MLPHessian) and plain GD/SGD loops."""

import numpy as np
import pytest

pytest.importorskip("torch")

from sgdsim.nets.data import Dataset
from sgdsim.nets.hvp import MLPHessian
from sgdsim.nets.models import MLPSpec, init_params
from sgdsim.nets.replicas import replica_gradients, replica_noisy_gd, replica_sgd

pytestmark = pytest.mark.nets

# float64 backprop through 3 layers of O(1) numbers, two implementations: roundoff ~1e-15
# relative to the largest component; 1e-12 leaves three orders of margin
RTOL = 1e-12
LOSSES = ["mse", "half_mse", "cross_entropy"]


def toy(act, loss, bias=(True, True), n=11, seed=0):
    rng = np.random.default_rng(seed)
    spec = MLPSpec((4, 6, 5, 3), act, *bias)
    X = rng.standard_normal((n, 4))
    y = rng.integers(0, 3, n) if loss == "cross_entropy" else rng.standard_normal((n, 3))
    task = "classification" if loss == "cross_entropy" else "regression"
    return spec, Dataset(X, y, task, "toy"), rng


@pytest.mark.parametrize("act", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("bias", [(True, True), (True, False), (False, False)])
def test_gradients_match_torch_per_replica(act, loss, bias):
    spec, data, rng = toy(act, loss, bias)
    R, B = 3, 7
    theta = np.array([init_params(spec, seed=r) + 0.2 * rng.standard_normal(spec.n_params)
                      for r in range(R)])
    idx = rng.integers(0, data.n, size=(R, B))  # a different batch per replica
    g = replica_gradients(spec, theta, data.X[idx], data.y[idx], loss)
    assert g.shape == (R, spec.n_params)
    for r in range(R):
        ref = MLPHessian(spec, theta[r], data.X[idx[r]], data.y[idx[r]], loss).gradient
        assert np.abs(g[r] - ref).max() <= RTOL * np.abs(ref).max()


def test_loss_conventions_relative_scale():
    # 'mse' is exactly twice 'half_mse' (losses.py conventions), replica by replica
    spec, data, _ = toy("tanh", "mse")
    theta = np.array([init_params(spec, seed=r) for r in range(2)])
    X = np.broadcast_to(data.X, (2, *data.X.shape))
    Y = np.broadcast_to(data.y, (2, *data.y.shape))
    g2 = replica_gradients(spec, theta, X, Y, "mse")
    g1 = replica_gradients(spec, theta, X, Y, "half_mse")
    np.testing.assert_allclose(g2, 2 * g1, rtol=1e-15, atol=0)  # a factor 2 is exact in binary


@pytest.mark.parametrize("loss", LOSSES)
def test_sgd_matches_plain_loop(loss):
    """θ ← θ − η_r(∇L_B(θ) + λθ) written out with torch gradients, same index stream."""
    spec, data, _ = toy("tanh", loss)
    R, B, steps, wd, seed = 2, 5, 15, 0.03, 7
    lr = np.array([0.1, 0.05])
    theta0 = np.array([init_params(spec, seed=10 + r) for r in range(R)])
    out = replica_sgd(spec, data, theta0, lr=lr, batch_size=B, steps=steps,
                      record=[0, 4, steps], weight_decay=wd, loss=loss, seed=seed)
    assert out.shape == (3, R, spec.n_params)
    assert np.array_equal(out[0], theta0)  # step 0 is the start, untouched
    draws = np.random.default_rng(seed)  # documented stream: integers(0, n, (R, B)) per step
    th = theta0.copy()
    expect = {}
    for t in range(1, steps + 1):
        idx = draws.integers(0, data.n, size=(R, B))
        for r in range(R):
            g = MLPHessian(spec, th[r], data.X[idx[r]], data.y[idx[r]], loss).gradient
            th[r] = th[r] - lr[r] * (g + wd * th[r])
        expect[t] = th.copy()
    for j, t in enumerate([4, steps], start=1):
        # 15 contracting steps of η ≤ 0.1: per-step roundoff ~1e-16 does not grow past 1e-14
        np.testing.assert_allclose(out[j], expect[t], rtol=0, atol=RTOL * np.abs(expect[t]).max())


def test_single_replica_full_batch_is_gd_on_linear_model():
    """One replica, one data point (every draw is the full batch), linear model, ½-MSE:
    θ ← θ − η(x(xᵀW − y) + λθ), gradient written in closed form."""
    rng = np.random.default_rng(3)
    d, c = 4, 2
    x, y = rng.standard_normal(d), rng.standard_normal(c)
    spec = MLPSpec((d, c), "linear", bias=False, output_bias=False)
    data = Dataset(x[None, :], y[None, :], "regression", "one")
    eta, wd, steps = 0.1, 0.02, 25
    W = rng.standard_normal((d, c))
    out = replica_sgd(spec, data, W.reshape(1, -1), lr=eta, batch_size=3, steps=steps,
                      record=[steps], weight_decay=wd, loss="half_mse", seed=0)
    for _ in range(steps):
        W = W - eta * (np.outer(x, x @ W - y) + wd * W)
    # 25 steps, η‖x‖² < 1 (contracting): roundoff stays ~1e-15 relative
    np.testing.assert_allclose(out[0, 0], W.ravel(), rtol=0, atol=RTOL * np.abs(W).max())


def test_same_seed_same_result_and_generator_accepted():
    spec, data, _ = toy("tanh", "mse")
    theta0 = np.array([init_params(spec, seed=r) for r in range(3)])
    kw = dict(lr=0.05, batch_size=4, steps=5, record=[5], loss="mse")
    a = replica_sgd(spec, data, theta0, seed=1, **kw)
    b = replica_sgd(spec, data, theta0, seed=np.random.default_rng(1), **kw)
    c = replica_sgd(spec, data, theta0, seed=2, **kw)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(("kw", "name"), [
    (dict(lr=-0.1), "lr"),
    (dict(lr=[0.1, 0.2]), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(steps=0), "steps"),
    (dict(record=[3, 2]), "record"),
    (dict(record=[0, 99]), "record"),
    (dict(record=[]), "record"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(loss="hinge"), "loss"),
])
def test_bad_arguments_are_named(kw, name):
    spec, data, _ = toy("tanh", "mse")
    theta0 = np.array([init_params(spec, seed=r) for r in range(3)])
    args = dict(lr=0.1, batch_size=2, steps=5, record=[5], loss="mse") | kw
    with pytest.raises(ValueError, match=f"`{name}`"):
        replica_sgd(spec, data, theta0, **args)


def test_bad_shapes_are_named():
    spec, data, _ = toy("tanh", "mse")
    theta = np.zeros((2, spec.n_params))
    X = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="`theta0`"):
        replica_sgd(spec, data, theta[:, :-1], lr=0.1, batch_size=2, steps=1, record=[1])
    with pytest.raises(ValueError, match="`theta`"):
        replica_gradients(spec, theta[0], X, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="`X`"):
        replica_gradients(spec, theta, X[:, :, :3], np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="`Y`"):
        replica_gradients(spec, theta, X, np.zeros((2, 3)), "mse")


def _linear_toy(seed=3, n=6, d=4, c=2):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, c))
    spec = MLPSpec((d, c), "linear", bias=False, output_bias=False)
    return spec, Dataset(X, Y, "regression", "lin"), rng.standard_normal((d, c))


def test_noisy_gd_follows_its_documented_noise_stream():
    """Linear model, ½-MSE on all data: ∇L(W) = Xᵀ(XW − Y)/n in closed form; the noise is
    ``default_rng(seed).standard_normal((R, P)) · sqrt(T/P)`` per step."""
    spec, data, W = _linear_toy()
    R, eta, wd, T, steps = 3, 0.05, 0.01, 0.2, 20
    theta0 = np.tile(W.ravel(), (R, 1))
    out = replica_noisy_gd(spec, data, theta0, lr=eta, noise_trace=T, steps=steps, record=[steps],
                           weight_decay=wd, loss="half_mse", seed=5)  # fmt: skip
    noise = np.random.default_rng(5)
    Ws = [W.copy() for _ in range(R)]
    X, Y = data.X, data.y
    for _ in range(steps):
        xi = noise.standard_normal((R, spec.n_params)) * np.sqrt(T / spec.n_params)
        for r in range(R):
            g = X.T @ (X @ Ws[r] - Y) / data.n + wd * Ws[r] + xi[r].reshape(Ws[r].shape)
            Ws[r] = Ws[r] - eta * g
    # 20 contracting steps (η·λ_max(XᵀX/n) < 1): roundoff stays ~1e-15 relative
    want = np.array([w.ravel() for w in Ws])
    np.testing.assert_allclose(out[0], want, rtol=0, atol=RTOL * np.abs(want).max())


def test_noisy_gd_without_noise_is_gradient_descent_and_noise_has_the_given_trace():
    spec, data, W = _linear_toy()
    theta0 = W.reshape(1, -1)
    gd = replica_noisy_gd(spec, data, theta0, lr=0.1, noise_trace=0.0, steps=5, record=[5],
                          loss="half_mse")  # fmt: skip
    X, Y = data.X, data.y
    for _ in range(5):
        W = W - 0.1 * X.T @ (X @ W - Y) / data.n
    np.testing.assert_allclose(gd[0, 0], W.ravel(), rtol=0, atol=RTOL * np.abs(W).max())
    # one step from a common start: θ_1 − (θ_0 − η∇L) = −η ξ, ‖ξ‖² ~ (T/P) χ²_P: its mean over R
    # replicas is T with standard error T·sqrt(2/(P R)); 5 standard errors (fixed seed)
    R, T, eta = 4000, 0.3, 0.01
    start = np.tile(W.ravel(), (R, 1))
    one = replica_noisy_gd(spec, data, start, lr=eta, noise_trace=T, steps=1, record=[1],
                           loss="half_mse", seed=2)[0]  # fmt: skip
    det = (W - eta * X.T @ (X @ W - Y) / data.n).ravel()
    xi2 = np.sum(((det - one) / eta) ** 2, axis=1)
    assert abs(xi2.mean() - T) < 5 * T * np.sqrt(2 / (spec.n_params * R))
    with pytest.raises(ValueError, match="noise_trace"):
        replica_noisy_gd(spec, data, start, lr=eta, noise_trace=-1.0, steps=1, record=[1])
