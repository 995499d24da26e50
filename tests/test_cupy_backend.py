"""The CuPy backend: the array code path is the NumPy reference's (tested everywhere); these
tests compare the two on a GPU and check the clean failure without one."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import sgdsim as sg


def _gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def test_cupy_backend_without_gpu_raises_clearly():
    if _gpu_available():
        pytest.skip("a GPU is present")
    q = sg.Quadratic.from_eigenvalues([1.0])
    with pytest.raises(RuntimeError, match="backend='cupy'"):
        sg.simulate(q, sg.sgd(0.1), steps=1, backend="cupy")


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("problem", ["quadratic", "linreg", "rff"])
def test_cupy_matches_numpy_reference(problem):
    """Same counter-based streams on both namespaces: equal up to transcendental round-off."""
    if problem == "quadratic":
        p = sg.Quadratic.from_eigenvalues(sg.power_law_spectrum(50, 1.0), noise=sg.LabelNoise(1.0))
        kw = dict(batch_size=4, init=np.ones(50))
    elif problem == "linreg":
        p = sg.LinearRegression.synthetic(n=256, dim=20, seed=1)
        kw = dict(batch_size=16)
    else:
        p = sg.GaussianRandomPotential(dim=10, n_features=128, lengthscale=1.0, noise_std=0.1)
        kw = {}
    runs = [sg.simulate(p, sg.sgd(0.1, momentum=0.9), steps=200, replicas=64, record=("loss",),
                        backend=b, **kw) for b in ("numpy", "cupy")]  # fmt: skip
    np.testing.assert_allclose(runs[1].final_params, runs[0].final_params, rtol=1e-9, atol=1e-12)



@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_seeded_runs_are_bitwise_reproducible(dtype):
    """Same seed, same backend → the same bits: the counter-based streams and the order of the
    device reductions do not depend on scheduling."""
    from sgdsim.sde import baoab
    from sgdsim.theory.langevin import UnderdampedLangevin

    p = sg.LinearRegression.synthetic(n=512, dim=20, seed=1)
    kw = dict(steps=100, replicas=4096, batch_size=16, seed=7, dtype=dtype, record=("loss",), every=50,
              backend="cupy")  # fmt: skip
    a, b = (sg.simulate(p, sg.sgd(0.05, momentum=0.9), **kw) for _ in range(2))
    np.testing.assert_array_equal(a.final_params, b.final_params)
    np.testing.assert_array_equal(a["loss"].values, b["loss"].values)
    model = UnderdampedLangevin.thermal(np.linspace(0.5, 2.0, 4), 1.0, 1.0)
    x, y = (baoab(model, dt=0.05, steps=100, replicas=4096, seed=3, every=100, record=("x",),
                  backend="cupy", dtype=dtype) for _ in range(2))  # fmt: skip
    np.testing.assert_array_equal(x.final_x, y.final_x)
    np.testing.assert_array_equal(x.final_v, y.final_v)

# --- the CuPy code path on the CPU, behind a strict host/device boundary ---------------------------
@pytest.fixture
def fake_cupy(monkeypatch):
    """backend='cupy' runs on :mod:`fake_device`: NumPy numbers, CuPy's conversion rules."""
    import fake_device

    from sgdsim.backends import cupy_backend

    monkeypatch.setattr(cupy_backend, "cupy_or_error", fake_device.namespace)


_SAMPLING = [("with_replacement", 8), ("without_replacement", 8), ("epoch_shuffle", 8),
             ("gaussian", 8), ("full", None)]  # fmt: skip


@pytest.mark.parametrize("sampling,batch", _SAMPLING)
def test_cupy_path_respects_the_device_boundary_linreg(fake_cupy, sampling, batch):
    p = sg.LinearRegression.synthetic(n=64, dim=5, seed=2)
    kw = dict(steps=30, replicas=16, seed=3, every=10, record=("loss", "dist2", "step2", "velocity2"),
              sampling=sampling, batch_size=batch)  # fmt: skip
    opt = sg.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    ref = sg.simulate(p, opt, backend="numpy", **kw)
    dev = sg.simulate(p, opt, backend="cupy", **kw)
    np.testing.assert_array_equal(dev.final_params, ref.final_params)  # same numbers, bit for bit
    for name in ("loss", "dist2", "step2", "velocity2"):
        np.testing.assert_array_equal(dev[name].values, ref[name].values)


@pytest.mark.parametrize("problem", ["quadratic_diag", "quadratic_full", "rff_shared", "rff_per_replica",
                                     "nudged"])  # fmt: skip
def test_cupy_path_respects_the_device_boundary(fake_cupy, problem):
    rng = np.random.default_rng(4)
    opt = sg.sgd(0.05, momentum=0.5)
    if problem in ("quadratic_diag", "nudged"):
        p = sg.Quadratic.from_eigenvalues([2.0, 1.0, 0.5], noise=sg.LabelNoise(0.5))
        if problem == "nudged":
            opt = sg.nudged_sgd(0.05, gamma=0.3, top_k=2, momentum=0.5)
    elif problem == "quadratic_full":
        q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        c = np.diag([1.0, 0.3, 0.1])
        p = sg.Quadratic(q @ np.diag([2.0, 1.0, 0.5]) @ q.T, noise=sg.AdditiveNoise(c + 0.05))
    else:
        per = problem == "rff_per_replica"
        p = sg.GaussianRandomPotential(dim=3, n_features=32, lengthscale=1.0, noise_std=0.1,
                                       per_replica=per, n_replicas=8 if per else None)  # fmt: skip
    kw = dict(steps=40, replicas=8, seed=5, every=20, record=("loss", "params"), init=np.ones(3))
    ref = sg.simulate(p, opt, backend="numpy", **kw)
    dev = sg.simulate(p, opt, backend="cupy", **kw)
    np.testing.assert_array_equal(dev.final_params, ref.final_params)
    np.testing.assert_array_equal(dev["loss"].values, ref["loss"].values)


@pytest.mark.parametrize("method", ["euler_maruyama", "baoab", "exact_ou"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("coupling", ["dense", "diagonal"])
def test_cupy_sde_path_respects_the_device_boundary(fake_cupy, method, dtype, coupling):
    from sgdsim import sde
    from sgdsim.theory.langevin import UnderdampedLangevin

    if coupling == "dense":
        model = UnderdampedLangevin([[2.0, 0.3], [0.3, 1.0]], [0.5, 1.0], [[1.0, 0.2], [0.2, 0.5]])
    else:
        model = UnderdampedLangevin.thermal([2.0, 1.0], [0.5, 1.0], 1.0)
    kw = dict(dt=0.1, steps=20, replicas=6, seed=6, x0=[1.0, -1.0], every=5,
              record=("x", "v", "dist2", "x2", "v2"), dtype=dtype)  # fmt: skip
    fn = getattr(sde, method)
    ref, dev = fn(model, backend="numpy", **kw), fn(model, backend="cupy", **kw)
    for name in ref.records:
        np.testing.assert_array_equal(dev[name], ref[name])


@pytest.mark.parametrize("problem", ["quad_diag", "quad_full", "linreg", "linreg_gauss", "rff", "sde"])
def test_no_device_sync_per_step(fake_cupy, problem):
    """A GPU stalls at every device → host transfer; between records the stepping loops must
    not make any: the count of synchronizations does not grow with the number of steps."""
    import fake_device

    from sgdsim.sde import baoab
    from sgdsim.theory.langevin import UnderdampedLangevin

    def run(steps):
        fake_device.SYNCS[0] = 0
        if problem == "sde":
            model = UnderdampedLangevin.thermal([1.0, 2.0], 1.0, 1.0)
            baoab(model, dt=0.1, steps=steps, replicas=8, seed=0, every=steps, record=("x", "dist2"),
                  backend="cupy")  # fmt: skip
            return fake_device.SYNCS[0]
        if problem.startswith("quad"):
            p = sg.Quadratic.from_eigenvalues([2.0, 1.0], noise=sg.LabelNoise(0.5))
            if problem == "quad_full":
                p = sg.Quadratic([[2.0, 0.3], [0.3, 1.0]], noise=sg.AdditiveNoise([[1.0, 0.2], [0.2, 1.0]]))
            kw = {}
        elif problem.startswith("linreg"):
            p = sg.LinearRegression.synthetic(n=64, dim=3, seed=0)
            kw = dict(batch_size=8, sampling="gaussian" if problem == "linreg_gauss" else None)
        else:
            p = sg.GaussianRandomPotential(dim=3, n_features=16, lengthscale=1.0, noise_std=0.1)
            kw = {}
        sg.simulate(p, sg.sgd(0.05, momentum=0.5), steps=steps, replicas=8, every=steps,
                    record=("loss", "dist2", "step2", "velocity2"), backend="cupy", progress=False,
                    **kw)  # fmt: skip
        return fake_device.SYNCS[0]

    assert run(5) == run(60)


def test_cupy_sde_on_a_random_potential(fake_cupy):
    from sgdsim.sde import baoab

    pot = sg.GaussianRandomPotential(dim=3, n_features=32, lengthscale=1.0, seed=1)
    kw = dict(dt=0.05, steps=30, replicas=6, seed=2, friction=1.0, velocity_diffusion=0.5, every=10,
              record=("x", "v2"))  # fmt: skip
    ref, dev = baoab(pot, backend="numpy", **kw), baoab(pot, backend="cupy", **kw)
    for name in ref.records:
        np.testing.assert_array_equal(dev[name], ref[name])
    toy = sg.CustomProblem(dim=3, grad=lambda th: th)
    with pytest.raises(ValueError, match="runs on the host"):
        baoab(toy, backend="cupy", **kw)
