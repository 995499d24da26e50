"""Network Hessian-vector products against independent truth (autodiff, closed forms, eigh)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sgdsim.curvature import lanczos_eigsh  # noqa: E402
from sgdsim.nets.hvp import FuncHessian, MLPHessian  # noqa: E402
from sgdsim.nets.losses import loss_value  # noqa: E402
from sgdsim.nets.models import MLPSpec, init_params, mlp_forward  # noqa: E402

pytestmark = pytest.mark.nets

# float64 products of O(1) numbers through 3 layers: roundoff ~1e-16 relative, 1e-12 is loose
RTOL = 1e-12


def toy(act, loss, bias=True, output_bias=True, seed=0):
    rng = np.random.default_rng(seed)
    spec = MLPSpec((4, 6, 5, 3), act, bias, output_bias)
    th = init_params(spec, seed=seed) + 0.2 * rng.standard_normal(spec.n_params)
    X = rng.standard_normal((9, 4))
    y = rng.integers(0, 3, 9) if loss == "cross_entropy" else rng.standard_normal((9, 3))
    return spec, th, X, y


@pytest.mark.parametrize("act", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("loss", ["half_mse", "mse", "cross_entropy"])
@pytest.mark.parametrize("bias", [(True, True), (True, False), (False, False)])
def test_fused_matches_torch_func(act, loss, bias):
    spec, th, X, y = toy(act, loss, *bias)
    A = MLPHessian(spec, th, X, y, loss)
    B = FuncHessian.for_mlp(spec, th, X, y, loss)
    V = np.random.default_rng(1).standard_normal((spec.n_params, 3))
    ref = B.matmat(V)
    scale = np.abs(ref).max()
    assert np.abs(A.matmat(V) - ref).max() <= RTOL * scale
    assert np.abs(A(V[:, 0]) - B(V[:, 0])).max() <= RTOL * scale


@pytest.mark.parametrize("loss", ["half_mse", "cross_entropy"])
def test_gradient_and_loss_match_finite_differences(loss):
    spec, th, X, y = toy("tanh", loss)
    A = MLPHessian(spec, th, X, y, loss)
    Xt = torch.tensor(X)
    yt = torch.tensor(y)

    def L(t):
        return float(loss_value(loss, mlp_forward(spec, torch.tensor(t), Xt), yt))

    assert A.loss_value == pytest.approx(L(th), rel=1e-14)
    h = 1e-5
    E = np.eye(spec.n_params)
    fd = np.array([(L(th + h * e) - L(th - h * e)) / (2 * h) for e in E])
    # central differences: truncation O(h²·L''') ~ 1e-10, roundoff eps·L/h ~ 1e-11
    np.testing.assert_allclose(A.gradient, fd, atol=1e-8)


def test_linear_model_closed_form_hessians():
    rng = np.random.default_rng(2)
    N, d, c = 12, 4, 3
    X = rng.standard_normal((N, d))
    spec = MLPSpec((d, c), "linear", bias=False, output_bias=False)
    th = rng.standard_normal(spec.n_params)
    I = np.eye(spec.n_params)
    # ½-MSE: L = (1/2N)‖XW − Y‖² ⇒ H = (XᵀX/N) ⊗ I_c  (θ = W row-major)
    Hm = MLPHessian(spec, th, X, rng.standard_normal((N, c)), "half_mse").matmat(I)
    np.testing.assert_allclose(Hm, np.kron(X.T @ X / N, np.eye(c)), rtol=RTOL, atol=RTOL)
    Hm2 = MLPHessian(spec, th, X, rng.standard_normal((N, c)), "mse").matmat(I)
    np.testing.assert_allclose(Hm2, 2 * np.kron(X.T @ X / N, np.eye(c)), rtol=RTOL, atol=RTOL)
    # cross-entropy: H = (1/N) Σ_n (x_n x_nᵀ) ⊗ (diag p_n − p_n p_nᵀ)
    labels = rng.integers(0, c, N)
    Z = X @ th.reshape(d, c)
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    Hce = sum(np.kron(np.outer(x, x), np.diag(p) - np.outer(p, p)) for x, p in zip(X, P)) / N
    Hc = MLPHessian(spec, th, X, labels, "cross_entropy").matmat(I)
    np.testing.assert_allclose(Hc, Hce, rtol=1e-10, atol=1e-14)


def test_lanczos_on_net_matches_dense_eigh():
    spec, th, X, y = toy("tanh", "cross_entropy")
    A = MLPHessian(spec, th, X, y, "cross_entropy")
    H = A.matmat(np.eye(spec.n_params))
    assert np.abs(H - H.T).max() <= RTOL * np.abs(H).max()  # Hessians are symmetric
    exact = np.linalg.eigvalsh(H)[::-1][:3]
    res = lanczos_eigsh(A, 3, tol=1e-10, block_size=2)
    np.testing.assert_allclose(res.eigenvalues, exact, rtol=1e-8)


def test_bad_inputs():
    spec, th, X, y = toy("tanh", "half_mse")
    with pytest.raises(ValueError, match="`theta`"):
        MLPHessian(spec, th[:-1], X, y)
    with pytest.raises(ValueError, match="`loss`"):
        MLPHessian(spec, th, X, y, "l1")
    with pytest.raises(ValueError, match="`V`"):
        MLPHessian(spec, th, X, y).matmat(np.ones((3, 1)))
    with pytest.raises(ValueError, match="`activation`"):
        MLPSpec((2, 3), "gelu")


def test_batch_oracle_matches_least_squares_oracle():
    # a bias-free linear net with ½-MSE and one output IS linear regression: both oracles must
    # give the same exact batch quantities (two independent implementations of g_B and H_B)
    from sgdsim.curvature import batch_quantities, least_squares_oracle
    from sgdsim.nets.hvp import mlp_batch_oracle

    rng = np.random.default_rng(7)
    X, y, w = rng.standard_normal((6, 3)), rng.standard_normal(6), rng.standard_normal(3)
    spec = MLPSpec((3, 1), "linear", bias=False, output_bias=False)
    q = ("batch_sharpness", "ratio_of_expectations", "batch_lambda_max", "gni")
    a = batch_quantities(least_squares_oracle(X, y, w), 6, 2, q)
    b = batch_quantities(mlp_batch_oracle(spec, X, y[:, None], w, "half_mse"), 6, 2, q)
    for name in q:  # Lanczos λ_max(H_B) at residual 1e-10 vs eigvalsh
        assert b[name].value == pytest.approx(a[name].value, rel=1e-9)


def test_mlp_problem_matches_autodiff_and_caches():
    from sgdsim.nets import FuncHessian, MLPProblem, MLPSpec, init_params

    rng = np.random.default_rng(3)
    spec = MLPSpec((3, 5, 2), "tanh")
    X, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    th = init_params(spec, seed=1)
    prob = MLPProblem(spec, X, y, "mse")
    ref = FuncHessian.for_mlp(spec, th, X, y, "mse")
    V = rng.standard_normal((spec.n_params, 3))
    # two independent derivations (fused R-operator vs torch.func): agree to float64 roundoff
    np.testing.assert_allclose(prob.hvp_matmat(th, V), ref.matmat(V), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prob.hvp(th, V[:, 0]), ref(V[:, 0]), rtol=1e-10, atol=1e-12)
    eps = 1e-6
    fd = (prob.loss(th + eps * V[:, 0]) - prob.loss(th - eps * V[:, 0])) / (2 * eps)
    assert abs(prob.grad(th) @ V[:, 0] - fd) < 1e-7  # central difference, O(eps²) + roundoff
    # one forward/backward per change of θ (θ, θ + εv, θ − εv, θ): only the last θ is cached
    assert prob.n_passes == 4
