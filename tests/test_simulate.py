"""simulate(): exact closed forms for deterministic runs, statistics for noisy ones.

Tolerances: deterministic float64 recursions are compared to closed forms at 1e-10 relative
(round-off over a few hundred steps); noisy runs use z-tests at |z| < 4 (two-sided p ≈ 6e-5 per
assertion, seeds fixed).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sgdsim as sg

BACKENDS = ["numpy", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_gd_on_quadratic_matches_closed_form(backend):
    lam = np.array([3.0, 1.0, 0.25, 0.0])  # includes a flat (singular) direction
    v = np.linalg.qr(np.random.default_rng(1).standard_normal((4, 4)))[0]
    q = sg.Quadratic.from_eigenvalues(lam, eigenvectors=v, minimum=np.array([1.0, -2.0, 0.5, 3.0]))
    theta0 = np.array([0.3, 0.1, -1.0, 2.0])
    lr, steps = 0.4, 60
    res = sg.simulate(q, sg.sgd(lr), steps=steps, replicas=2, init=theta0, every=10,
                      record=("loss", "params"), backend=backend)  # fmt: skip
    z0 = (theta0 - q.minimum) @ q.eigenvectors
    for j, t in enumerate(res.steps):
        zt = (1 - lr * q.eigenvalues) ** t * z0
        expect = q.minimum + q.eigenvectors @ zt
        np.testing.assert_allclose(res["params"].values[j, 0], expect, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res["loss"].values[j], 0.5 * np.sum(q.eigenvalues * zt**2), rtol=1e-10)


def _companion_power(a, lr, beta, nesterov, steps, theta0):
    """Heavy ball / Nesterov on one mode by the 2×2 linear map on (θ, buf), PyTorch first step."""
    if nesterov:
        m = np.array([[1 - lr * a * (1 + beta), -lr * beta * beta], [a, beta]])
    else:
        m = np.array([[1 - lr * a, -lr * beta], [a, beta]])
    # first step: buf = g = aθ0, θ1 = θ0 − lr(g + β g) (Nesterov) or θ0 − lr g
    g0 = a * theta0
    th1 = theta0 - lr * (g0 + beta * g0 if nesterov else g0)
    state = np.array([th1, g0])
    out = [theta0, th1]
    for _ in range(steps - 1):
        state = m @ state
        out.append(state[0])
    return np.array(out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_companion_matrix(backend, nesterov):
    a = np.array([2.0, 0.5, 0.05])
    q = sg.Quadratic.from_eigenvalues(a)
    lr, beta, steps = 0.3, 0.8, 40
    res = sg.simulate(q, sg.sgd(lr, momentum=beta, nesterov=nesterov), steps=steps,
                      init=np.ones(3), record=("params",), backend=backend)  # fmt: skip
    for i, ai in enumerate(a):
        expect = _companion_power(ai, lr, beta, nesterov, steps, 1.0)
        np.testing.assert_allclose(res["params"].values[:, 0, i], expect, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ema_and_weight_decay_match_reference_recursion(backend):
    """EMA momentum (dampening = β) with weight decay vs a scalar loop written from the formulas."""
    a, lr, beta, wd = np.array([1.5, 0.2]), 0.5, 0.6, 0.1
    q = sg.Quadratic.from_eigenvalues(a)
    res = sg.simulate(q, sg.sgd(lr, momentum=beta, dampening=beta, weight_decay=wd), steps=30,
                      init=np.array([1.0, -2.0]), record=("params", "velocity2"),
                      backend=backend)  # fmt: skip
    th, buf = np.array([1.0, -2.0]), None
    for t in range(30):
        g = a * th + wd * th
        buf = g.copy() if buf is None else beta * buf + (1 - beta) * g
        th = th - lr * buf
        np.testing.assert_allclose(res["params"].values[t + 1, 0], th, rtol=1e-12)
        np.testing.assert_allclose(res["velocity2"].values[t + 1, 0], np.sum(buf**2), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lr_exactly_at_gd_threshold_oscillates(backend):
    q = sg.Quadratic.from_eigenvalues([4.0])
    res = sg.simulate(q, sg.sgd(0.5), steps=11, init=[1.0], record=("params",), backend=backend)
    np.testing.assert_allclose(res["params"].values[:, 0, 0], (-1.0) ** np.arange(12), rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nudged_sgd_scales_top_k_modes(backend):
    a = np.array([10.0, 5.0, 1.0])
    v = np.linalg.qr(np.random.default_rng(3).standard_normal((3, 3)))[0]
    q = sg.Quadratic.from_eigenvalues(a, eigenvectors=v)
    lr, gamma, steps = 0.3, 0.1, 15  # lr·a_1 = 3 > 2 (GD unstable) but γ·lr·a_1 = 0.3
    res = sg.simulate(q, sg.nudged_sgd(lr, gamma, top_k=2), steps=steps, init=v @ np.ones(3),
                      record=("params",), backend=backend)  # fmt: skip
    factors = np.array([1 - gamma * lr * 10, 1 - gamma * lr * 5, 1 - lr * 1.0])
    np.testing.assert_allclose(res["params"].values[-1, 0] @ v, factors**steps, rtol=1e-10)


def test_linreg_full_batch_equals_gd_on_its_quadratic():
    """LinearRegression with full batches is GD on ½(w−ŵ)ᵀH(w−ŵ) + L(ŵ): compare to the closed form."""
    p = sg.LinearRegression.synthetic(n=40, dim=5, seed=2)
    lam, v = np.linalg.eigh(p.hessian_matrix())
    lr, steps = 0.2, 25
    res = sg.simulate(p, sg.sgd(lr), steps=steps, record=("params", "loss"), every=25)
    z = (1 - lr * lam) ** steps * ((0 - p.solution) @ v)
    np.testing.assert_allclose(res["params"].values[-1, 0], p.solution + v @ z, rtol=1e-10)
    np.testing.assert_allclose(res["loss"].values[-1, 0], p.loss(p.solution + v @ z), rtol=1e-10)


@pytest.mark.parametrize("sampling", ["without_replacement", "epoch_shuffle"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_equal_to_dataset_without_replacement_is_gd(backend, sampling):
    p = sg.LinearRegression.synthetic(n=16, dim=3, seed=4)
    kw = dict(steps=20, replicas=3, record=("params",), backend=backend)
    gd = sg.simulate(p, sg.sgd(0.1), sampling="full", **kw)
    sgd = sg.simulate(p, sg.sgd(0.1), batch_size=16, sampling=sampling, **kw)
    np.testing.assert_allclose(sgd["params"].values, gd["params"].values, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_epoch_shuffle_visits_every_sample_once_per_epoch(backend):
    """With a tiny lr, one epoch of disjoint batches moves θ by −lr·(N/B)·∇L(θ0) + O(lr²)."""
    p = sg.LinearRegression.synthetic(n=24, dim=4, seed=5)
    lr, b = 1e-7, 4
    res = sg.simulate(p, sg.sgd(lr), steps=24 // b, replicas=5, batch_size=b, sampling="epoch_shuffle",
                      init=np.ones(4), record=("params",), every=24 // b, backend=backend)  # fmt: skip
    moved = res["params"].values[-1] - 1.0
    expect = -lr * (24 // b) * p.grad(np.ones(4))
    np.testing.assert_allclose(moved, np.broadcast_to(expect, moved.shape), rtol=1e-5)


@pytest.mark.parametrize("sampling,replacement", [("with_replacement", True),
                                                   ("without_replacement", False), ("gaussian", True)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_step_gradient_covariance(backend, sampling, replacement):
    """Cov of a single minibatch step equals lr²·Σ(θ0)/B (·(N−B)/(N−1) without replacement).

    Each covariance entry estimated from R samples has standard error ≈ sqrt((σ_ii σ_jj + σ_ij²)/R);
    the test bounds the largest z over the d(d+1)/2 entries by 4.5 (Bonferroni at 15 entries).
    """
    p = sg.LinearRegression.synthetic(n=30, dim=5, noise_std=1.0, seed=6)
    lr, b, reps = 1.0, 4, 40_000
    th0 = np.full(5, 0.5)
    res = sg.simulate(p, sg.sgd(lr), steps=1, replicas=reps, batch_size=b, sampling=sampling,
                      init=th0, record=(), backend=backend)  # fmt: skip
    g = (th0 - res.final_params) / lr
    emp = np.cov(g.T)
    exact = p.noise_covariance(th0, b, replacement=replacement)
    np.testing.assert_allclose(g.mean(axis=0), p.grad(th0), atol=5 * np.sqrt(np.diag(exact).max() / reps))
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / reps)
    iu = np.triu_indices(5)
    assert np.max(np.abs(emp - exact)[iu] / se[iu]) < 4.5


def test_noise_covariance_formula_by_enumeration():
    """LinearRegression.noise_covariance against enumerating every batch of a tiny data set."""
    from itertools import combinations, product

    p = sg.LinearRegression.synthetic(n=5, dim=2, seed=7)
    w = np.array([0.3, -0.2])
    for b in (1, 2, 3):
        with_r = np.array([p.batch_grad(w, np.array(ix)) for ix in product(range(5), repeat=b)])
        np.testing.assert_allclose(np.cov(with_r.T, bias=True), p.noise_covariance(w, b), atol=1e-14)
        without = np.array([p.batch_grad(w, np.array(ix)) for ix in combinations(range(5), b)])
        np.testing.assert_allclose(
            np.cov(without.T, bias=True), p.noise_covariance(w, b, replacement=False), atol=1e-14
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_heavy_ball_stationary_variance_closed_form(backend):
    """Var∞ = ηc(1+β)/((1−β)a(2(1+β)−ηa)) per mode (PAPERS.md §5, re-derived in sgdsim.theory)."""
    a = np.array([1.0, 0.3])
    c = np.array([2.0, 1.0])  # per-sample noise variance, B = 2 → c/B
    lr, beta, wd, b = 0.2, 0.5, 0.05, 2
    q = sg.Quadratic.from_eigenvalues(a, noise=sg.AdditiveNoise(c))
    res = sg.simulate(q, sg.sgd(lr, momentum=beta, weight_decay=wd), steps=600, replicas=4000,
                      batch_size=b, record=(), backend=backend, seed=11)  # fmt: skip
    ae, ce = a + wd, c / b
    var = lr * ce * (1 + beta) / ((1 - beta) * ae * (2 * (1 + beta) - lr * ae))
    emp = res.final_params.var(axis=0)
    se = var * np.sqrt(2 / 4000)  # variance of a Gaussian sample variance
    assert np.all(np.abs(emp - var) / se < 4), (emp, var)


def test_backends_agree_statistically_on_linreg():
    """Mean stationary loss, numpy vs numba, two-sample z-test (replicas independent)."""
    p = sg.LinearRegression.synthetic(n=64, dim=4, seed=8)
    kw = dict(steps=300, replicas=3000, batch_size=4, record=("loss",), every=300, seed=3)
    out = [sg.simulate(p, sg.sgd(0.1), backend=be, **kw)["loss"].values[-1] for be in BACKENDS]
    diff = out[0].mean() - out[1].mean()
    se = np.sqrt(out[0].var() / 3000 + out[1].var() / 3000)
    assert abs(diff) / se < 4


def test_same_seed_identical_and_thread_count_independent():
    import numba

    q = sg.Quadratic.from_eigenvalues([1.0, 0.5, 0.1], noise=sg.LabelNoise(1.0))
    kw = dict(steps=200, replicas=37, batch_size=2, record=("loss", "dist2"), every=7, seed=5)
    a = sg.simulate(q, sg.sgd(0.3, momentum=0.9), **kw)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = sg.simulate(q, sg.sgd(0.3, momentum=0.9), **kw)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(a["loss"].values, b["loss"].values)
    assert np.array_equal(a.final_params, b.final_params)
    c = sg.simulate(q, sg.sgd(0.3, momentum=0.9), **{**kw, "seed": 6})
    assert not np.array_equal(a.final_params, c.final_params)


def test_float32_close_to_float64():
    p = sg.LinearRegression.synthetic(n=64, dim=4, seed=8)
    kw = dict(steps=50, replicas=4, sampling="full", record=("loss",))
    r32 = sg.simulate(p, sg.sgd(0.1), dtype="float32", **kw)["loss"].values
    r64 = sg.simulate(p, sg.sgd(0.1), dtype="float64", **kw)["loss"].values
    np.testing.assert_allclose(r32, r64, rtol=1e-5)  # float32 round-off ~1e-7 per op over 50 steps


# --- divergence ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_raise_names_step_and_replica(backend):
    q = sg.Quadratic.from_eigenvalues([1.0, 4.0])
    init = np.array([[0.0, 0.0], [1.0, 1.0]])  # replica 0 sits at the minimum and never moves
    with pytest.raises(sg.DivergenceError) as info:
        sg.simulate(q, sg.sgd(1.0), steps=100, replicas=2, init=init, backend=backend)
    # mode 2 multiplies by |1 − 4| = 3 per step: 9^t > 1e20·2 first at t = 22
    assert (info.value.step, info.value.replica) == (22, 1)
    assert "replica 1 diverged at step 22" in str(info.value)
    assert info.value.trajectory.status == "diverged"


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_record_freezes_only_the_bad_replica(backend):
    q = sg.Quadratic.from_eigenvalues([1.0, 4.0])
    init = np.array([[0.0, 0.0], [1.0, 1.0]])
    res = sg.simulate(q, sg.sgd(1.0), steps=40, replicas=2, init=init, on_divergence="record",
                      record=("loss",), backend=backend)  # fmt: skip
    assert res.status == "diverged" and res.divergence == (22, 1)
    loss = res["loss"].values
    assert np.all(np.isfinite(loss[:22, 1])) and np.all(np.isnan(loss[22:, 1]))
    assert np.all(loss[:, 0] == 0.0)
    stopped = sg.simulate(q, sg.sgd(1.0), steps=40, replicas=2, init=init, on_divergence="stop",
                          record=("loss",), backend=backend)  # fmt: skip
    assert stopped.status == "stopped" and np.all(np.isnan(stopped["loss"].values[23:]))


# --- custom problems ---------------------------------------------------------------------------
C_TOY = 1.0


def _toy_grad(th):
    out = np.empty(2)
    out[0] = th[1] * th[0]
    out[1] = 0.5 * th[0] * th[0] - C_TOY
    return out


def _toy_loss(th):
    return 0.5 * th[1] * th[0] ** 2 - C_TOY * th[1]


def test_custom_problem_numba_equals_numpy_and_hand_loop():
    toy = sg.CustomProblem(dim=2, grad=_toy_grad, loss=_toy_loss)
    kw = dict(steps=50, replicas=2, init=np.array([0.1, 0.5]), record=("params", "loss"))
    a = sg.simulate(toy, sg.sgd(0.1), backend="numpy", **kw)
    b = sg.simulate(toy, sg.sgd(0.1), backend="numba", **kw)
    th = np.array([0.1, 0.5])
    for _ in range(50):
        th = th - 0.1 * _toy_grad(th)
    np.testing.assert_allclose(a.final_params[0], th, rtol=1e-12)
    np.testing.assert_allclose(b.final_params[0], th, rtol=1e-12)
    np.testing.assert_allclose(b["loss"].values[-1, 0], _toy_loss(th), rtol=1e-12)


# --- results ---------------------------------------------------------------------------------
def test_save_load_roundtrip(tmp_path):
    q = sg.Quadratic.from_eigenvalues([1.0, 0.5], noise=sg.LabelNoise(0.1))
    res = sg.simulate(q, sg.sgd(0.1), steps=20, replicas=3, record=("loss", "dist2", "params"), every=5)
    path = res.save(tmp_path / "run.nc")
    back = sg.Trajectory.load(path)
    for name in ("loss", "dist2", "params", "final_params", "diverged_at"):
        np.testing.assert_array_equal(back[name].values, res[name].values)
    assert back.config == res.config and back.status == "ok"
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


def test_record_grid_and_shapes():
    q = sg.Quadratic.from_eigenvalues([1.0, 0.5, 0.2])
    res = sg.simulate(q, sg.sgd(0.1), steps=23, replicas=4, every=5, init=np.ones(3),
                      record=("loss", "dist2", "step2", "velocity2", "params"))  # fmt: skip
    assert list(res.steps) == [0, 5, 10, 15, 20]
    assert res["loss"].dims == ("step", "replica") and res["params"].shape == (5, 4, 3)
    assert np.isnan(res["step2"].values[0]).all() and res["dist2"].values[0].tolist() == [0.0] * 4
    assert res.final_params.shape == (4, 3)


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_errors_name_the_argument():
    q = sg.Quadratic.from_eigenvalues([1.0, 0.5])
    p = sg.LinearRegression.synthetic(n=10, dim=2)
    with pytest.raises(ValueError, match="`lr`"):
        sg.sgd(-0.1)
    with pytest.raises(ValueError, match="`momentum`"):
        sg.sgd(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="batch_size.*=11.*N=10"):
        sg.simulate(p, sg.sgd(0.1), steps=1, batch_size=11, sampling="without_replacement")
    with pytest.raises(ValueError, match="`hessian` must be symmetric"):
        sg.Quadratic(hessian=[[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="`init` must have shape"):
        sg.simulate(q, sg.sgd(0.1), steps=1, replicas=3, init=np.ones(3))
    with pytest.raises(ValueError, match="`backend` must be one of"):
        sg.simulate(q, sg.sgd(0.1), steps=1, backend="jax")
    with pytest.raises(ValueError, match="`record`"):
        sg.simulate(q, sg.sgd(0.1), steps=1, record=("sharpness",))
    with pytest.raises(ValueError, match="sampling='epoch_shuffle' needs a finite data set"):
        sg.simulate(q, sg.sgd(0.1), steps=1, sampling="epoch_shuffle")
    with pytest.raises(TypeError, match="unexpected keyword"):
        sg.simulate(q, sg.sgd(0.1), steps=1, replica=3)
    with pytest.raises(ValueError, match="`noise.cov` has size 3"):
        sg.Quadratic.from_eigenvalues([1.0, 0.5], noise=sg.AdditiveNoise(np.ones(3)))
    with pytest.raises(ValueError, match="`cov` must be positive semi-definite"):
        sg.AdditiveNoise([[1.0, 0.0], [0.0, -1.0]])


# --- random potentials ---------------------------------------------------------------------------
@pytest.mark.parametrize("per_replica", [False, True])
def test_random_potential_runs_match_a_plain_loop(per_replica):
    """Noise-free SGD on a random-feature field: both backends vs θ ← θ − η ∇f(θ) by hand."""
    kw = dict(per_replica=True, n_replicas=3) if per_replica else {}
    pot = sg.GaussianRandomPotential(dim=4, n_features=32, lengthscale=1.0, seed=2, **kw)
    init = np.random.default_rng(0).standard_normal((3, 4))
    th = init.copy()
    for _ in range(25):
        th = th - 0.2 * pot.grad(th)
    for backend in BACKENDS:
        res = sg.simulate(pot, sg.sgd(0.2), steps=25, replicas=3, init=init, record=("loss",),
                          backend=backend)  # fmt: skip
        np.testing.assert_allclose(res.final_params, th, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(res["loss"].values[-1], pot.loss(th), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_potential_gradient_noise_scale(backend):
    """One step from θ0: Δθ/lr − (−∇f) ~ N(0, noise_std²/B · I); sample variance within 4 se."""
    pot = sg.GaussianRandomPotential(dim=3, n_features=16, lengthscale=1.0, seed=3, noise_std=2.0)
    reps, b = 20_000, 4
    res = sg.simulate(pot, sg.sgd(1.0), steps=1, replicas=reps, batch_size=b, record=(),
                      backend=backend)  # fmt: skip
    noise = -res.final_params - pot.grad(np.zeros(3))
    var = 2.0**2 / b
    assert np.all(np.abs(noise.var(axis=0) - var) / (var * np.sqrt(2 / reps)) < 4)


# --- properties ------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 5),
    replicas=st.integers(1, 4),
    steps=st.integers(0, 30),
    every=st.integers(1, 7),
    record=st.sets(st.sampled_from(["loss", "dist2", "step2", "velocity2", "params"])),
    backend=st.sampled_from(BACKENDS),
)
def test_record_shapes_property(dim, replicas, steps, every, record, backend):
    q = sg.Quadratic.from_eigenvalues(np.linspace(1.0, 0.1, dim), noise=sg.LabelNoise(0.5))
    res = sg.simulate(q, sg.sgd(0.1, momentum=0.5), steps=steps, replicas=replicas, every=every,
                      record=tuple(sorted(record)), backend=backend)  # fmt: skip
    n_rec = steps // every + 1
    assert list(res.steps) == [every * j for j in range(n_rec)]
    for name in record:
        expect = (n_rec, replicas, dim) if name == "params" else (n_rec, replicas)
        assert res[name].shape == expect
        values = res[name].values if name != "step2" else res[name].values[1:]
        assert np.all(np.isfinite(values))
    assert res.final_params.shape == (replicas, dim) and res.status == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_noise_equals_exact_gradients(backend):
    a = np.array([1.0, 0.2])
    kw = dict(steps=20, replicas=2, init=np.ones(2), batch_size=3, backend=backend)
    silent = sg.simulate(sg.Quadratic.from_eigenvalues(a, noise=sg.LabelNoise(0.0)), sg.sgd(0.3), **kw)
    exact = sg.simulate(sg.Quadratic.from_eigenvalues(a), sg.sgd(0.3), **kw)
    np.testing.assert_array_equal(silent.final_params, exact.final_params)


# --- schedules -------------------------------------------------------------------------------
def test_schedules_values_closed_form():
    step = sg.step_lr(0.1, [3, 5], 0.5).values(7)
    np.testing.assert_allclose(step, [0.1] * 3 + [0.05] * 2 + [0.025] * 2)
    t = np.arange(11)
    cos = sg.cosine_lr(1.0, 10, 0.1).values(11)
    np.testing.assert_allclose(cos, 0.1 + 0.45 * (1 + np.cos(np.pi * t / 10)))
    np.testing.assert_allclose(sg.warmup_lr(0.2, 4).values(6), [0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="lr=-1.0 at step 2"):
        sg.Schedule(lambda k: 1.0 - k).values(3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gd_with_schedule_is_product_of_factors(backend):
    lam = np.array([2.0, 0.5])
    sched = sg.step_lr(0.4, [5], 0.25)
    res = sg.simulate(sg.Quadratic.from_eigenvalues(lam), sg.sgd(sched), steps=12, init=np.ones(2),
                      record=("params",), backend=backend)  # fmt: skip
    lrs = sched.values(12)
    expect = np.prod(1 - lrs[:, None] * lam, axis=0)
    np.testing.assert_allclose(res.final_params[0], expect, rtol=1e-12)


# --- a given initial momentum buffer ---------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nesterov", [False, True])
def test_init_buffer_follows_the_momentum_recursion(backend, nesterov):
    """A dense (rotated) quadratic, weight decay, dampening, two replicas with different buffers:
    every step equals the textbook recursion started from (θ₀, buf₀), step 0 included."""
    rng = np.random.default_rng(0)
    q_, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    H = q_ @ np.diag([2.0, 0.7, 0.1]) @ q_.T
    star = np.array([0.5, -1.0, 0.2])
    lr, beta, tau, wd, steps = 0.2, 0.7, 0.0 if nesterov else 0.3, 0.05, 25
    th0 = np.array([[1.0, 0.0, -1.0], [0.3, 0.3, 0.3]])
    b0 = np.array([[0.5, -0.5, 2.0], [-1.0, 0.0, 0.1]])
    opt = sg.sgd(lr, momentum=beta, dampening=tau, nesterov=nesterov, weight_decay=wd)
    res = sg.simulate(sg.Quadratic(H, minimum=star), opt, steps=steps, replicas=2, init=th0,
                      init_buffer=b0, record=("params", "velocity2"), backend=backend)  # fmt: skip
    th, buf = th0.copy(), b0.copy()
    expect_th, expect_v2 = [th.copy()], [np.sum(buf**2, axis=1)]
    for _ in range(steps):
        g = (th - star) @ H + wd * th
        buf = beta * buf + (1 - tau) * g
        th = th - lr * (g + beta * buf if nesterov else buf)
        expect_th.append(th.copy())
        expect_v2.append(np.sum(buf**2, axis=1))
    np.testing.assert_allclose(res["params"].values, np.array(expect_th), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res["velocity2"].values, np.array(expect_v2), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jointly_stationary_start_has_the_stationary_msd(backend):
    """(θ₀, buf₀) drawn from the exact joint stationary law (discrete Lyapunov): the ensemble
    MSD E‖θ_k − θ₀‖² equals the stationary-start formula at every k. The same θ₀ with an empty
    buffer does not (PyTorch's first step kicks the ensemble out of stationarity)."""
    from sgdsim.theory import NoisyQuadraticMoments

    q = sg.Quadratic.from_eigenvalues([1.5, 0.4], noise=sg.AdditiveNoise([1.0, 0.5]))
    opt = sg.sgd(0.3, momentum=0.8)
    m = NoisyQuadraticMoments.from_problem(q, opt)
    S = m.stationary_state_cov()
    R, ks = 20_000, np.array([1, 3, 10, 40])

    def joint(rng, n):
        return rng.multivariate_normal(np.zeros(4), S, size=n)

    z = joint(np.random.default_rng(np.random.SeedSequence(5, spawn_key=(0,))), R)
    th0, b0 = z[:, :2], z[:, 2:]
    truth = m.msd(ks)
    for buffer, must_match in ((b0, True), (None, False)):
        res = sg.simulate(q, opt, steps=int(ks[-1]), replicas=R, init=th0, init_buffer=buffer,
                          record=("dist2",), seed=6, backend=backend)  # fmt: skip
        d2 = res["dist2"].values[ks]  # (k, R)
        zs = (d2.mean(axis=1) - truth) / (d2.std(axis=1, ddof=1) / np.sqrt(R))
        if must_match:
            assert np.all(np.abs(zs) < 4), zs  # 4 correlated z-scores, |z| < 4 convention
        else:
            assert np.max(np.abs(zs)) > 10, zs


def test_init_buffer_errors():
    q = sg.Quadratic.from_eigenvalues([1.0, 2.0])
    with pytest.raises(ValueError, match="`init_buffer` needs an optimizer with momentum"):
        sg.simulate(q, sg.sgd(0.1), steps=1, init_buffer=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"`init_buffer` must have shape \(2,\) or \(3, 2\)"):
        sg.simulate(q, sg.sgd(0.1, momentum=0.9), steps=1, replicas=3, init_buffer=np.zeros(5))
    with pytest.raises(ValueError, match="`init_buffer` must be finite"):
        sg.simulate(q, sg.sgd(0.1, momentum=0.9), steps=1, init_buffer=[np.nan, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_final_buffer_continues_a_run(backend):
    rng = np.random.default_rng(1)
    q_, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    q = sg.Quadratic(q_ @ np.diag([2.0, 0.7, 0.1]) @ q_.T)  # no noise: the run is deterministic
    opt = sg.sgd(0.2, momentum=0.9, nesterov=True)
    kw = dict(replicas=2, init=np.ones(3), record=(), backend=backend)
    whole = sg.simulate(q, opt, steps=40, **kw)
    half = sg.simulate(q, opt, steps=20, **kw)
    rest = sg.simulate(q, opt, steps=20, **{**kw, "init": half.final_params}, init_buffer=half.final_buffer)
    np.testing.assert_allclose(rest.final_params, whole.final_params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rest.final_buffer, whole.final_buffer, rtol=1e-12, atol=1e-14)
    assert sg.simulate(q, sg.sgd(0.2), steps=2, **kw).final_buffer is None
