"""Golden hashes of seeded runs: the engine refactor (issue 11) must not change a single bit.

Each case runs ``simulate`` or an SDE integrator with a fixed seed and hashes (SHA-256) the bytes
of every record and final state. The expected digests were recorded from the code *before* the
refactor, commit f2237f8, by running this file as a script (``python tests/test_engine_golden.py``
prints them); they are literals here, not values computed by the code under test. A digest that
changes means the numbers changed: say why in the CHANGELOG, or fix the change.

The fake-device runs (``backend="cupy"`` on :mod:`fake_device`) must equal the NumPy backend's
bit for bit, so they carry the same digests as their NumPy twins.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

import sgdsim as sg

sys.path.insert(0, str(Path(__file__).parent))


def _sde():
    from sgdsim import sde  # before the refactor (when the digests were recorded): sgdsim.theory.sde

    return sde


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def _traj_digest(t) -> str:
    ds = t.dataset
    names = [n for n in ("loss", "dist2", "step2", "velocity2", "params") if n in ds]
    arrays = [ds[n].values for n in names] + [t.final_params, t.diverged_at]
    if t.final_buffer is not None:
        arrays.append(t.final_buffer)
    return _digest(arrays)


def _paths_digest(p) -> str:
    arrays = [p.records[k] for k in sorted(p.records)] + [p.final_x, p.diverged_at]
    if p.final_v is not None:
        arrays.append(p.final_v)
    return _digest(arrays)


_REC = ("loss", "dist2", "step2", "velocity2")


def _custom():
    from numba import njit

    @njit
    def grad(th):
        return th * th * th - th

    @njit
    def loss(th):
        return np.sum(0.25 * th**4 - 0.5 * th**2)

    return sg.CustomProblem(dim=3, grad=grad, loss=loss, noise=sg.AdditiveNoise(np.full(3, 0.04)))


def _sim(problem_key: str, opt_key: str, backend: str, **kw):
    problems = {
        "quad_diag": lambda: sg.Quadratic.from_eigenvalues([2.0, 1.0, 0.5], noise=sg.LabelNoise(0.3)),
        "quad_full": lambda: sg.Quadratic(
            [[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]],
            noise=sg.AdditiveNoise([[1.0, 0.2, 0.0], [0.2, 0.5, 0.0], [0.0, 0.0, 0.3]]),
            minimum=[0.5, -0.2, 0.1],
        ),
        "linreg": lambda: sg.LinearRegression.synthetic(n=40, dim=4, noise_std=0.3, seed=1),
        "rff": lambda: sg.GaussianRandomPotential(dim=3, n_features=24, lengthscale=1.0,
                                                  noise_std=0.1, seed=2),
        "rff_per": lambda: sg.GaussianRandomPotential(dim=3, n_features=16, lengthscale=1.0,
                                                      noise_std=0.1, seed=3, per_replica=True,
                                                      n_replicas=6),
        "custom": _custom,
    }
    opts = {
        "plain": lambda: sg.sgd(0.05),
        "momentum": lambda: sg.sgd(0.05, momentum=0.8, dampening=0.1),
        "nesterov": lambda: sg.sgd(0.05, momentum=0.9, nesterov=True),
        "wd": lambda: sg.sgd(0.05, momentum=0.5, weight_decay=0.01),
        "nudged": lambda: sg.nudged_sgd(0.05, gamma=0.5, top_k=1),
        "unstable": lambda: sg.sgd(1.5, momentum=0.1),  # |1 − 1.5·2| > 1 on the top direction
    }
    dim = problems[problem_key]().dim
    args = dict(steps=30, replicas=6, seed=7, every=3, record=_REC, init=np.full(dim, 0.7))
    args.update(kw)
    return sg.simulate(problems[problem_key](), opts[opt_key](), backend=backend, progress=False, **args)


def _sde_models():
    from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin

    return {
        "ou_dense": LinearSDE([[2.0, 0.5], [0.0, 1.0]], [[0.5, 0.1], [0.1, 0.3]], [0.3, -0.1]),
        "ul_diag": UnderdampedLangevin.thermal([2.0, 1.0, 0.5], [0.5, 1.0, 2.0], 0.7),
        "ul_dense": UnderdampedLangevin([[2.0, 0.3], [0.3, 1.0]], [0.5, 1.0], [[1.0, 0.2], [0.2, 0.5]]),
    }


def _sde_run(method: str, model_key: str, backend: str, **kw):
    sde = _sde()
    if model_key == "rff":
        model = sg.GaussianRandomPotential(dim=2, n_features=16, lengthscale=1.0, seed=4)
        extra = (dict(friction=1.0, velocity_diffusion=0.5) if method == "baoab"
                 else dict(diffusion=0.3))  # fmt: skip
    elif model_key == "quad":
        model = sg.Quadratic.from_eigenvalues([2.0, 0.5])
        extra = (dict(friction=1.0, velocity_diffusion=0.5) if method == "baoab"
                 else dict(diffusion=0.3))  # fmt: skip
    else:
        model = _sde_models()[model_key]
        extra = {}
    second = method == "baoab" or model_key.startswith("ul")
    rec = ("x", "v", "dist2", "x2", "v2") if second else ("x", "dist2", "x2")
    args = dict(dt=0.05, steps=40, replicas=5, seed=11, every=4, record=rec, x0=None)
    args.update(extra)
    args.update(kw)
    return getattr(sde, method)(model, backend=backend, progress=False, **args)


def _cases():
    c = {}
    for backend in ("numba", "numpy"):
        for opt in ("plain", "momentum", "nesterov", "wd"):
            c[f"sim-{backend}-quad_diag-{opt}"] = (_sim, ("quad_diag", opt, backend), {})
        c[f"sim-{backend}-quad_full-nesterov"] = (_sim, ("quad_full", "nesterov", backend), {})
        c[f"sim-{backend}-quad_full-nudged"] = (_sim, ("quad_full", "nudged", backend), {})
        for sampling in ("with_replacement", "without_replacement", "epoch_shuffle", "gaussian", "full"):
            kw = dict(sampling=sampling, batch_size=None if sampling == "full" else 8)
            c[f"sim-{backend}-linreg-{sampling}"] = (_sim, ("linreg", "momentum", backend), kw)
        c[f"sim-{backend}-rff-wd"] = (_sim, ("rff", "wd", backend), {"record": (*_REC, "params")})
        c[f"sim-{backend}-rff_per-plain"] = (_sim, ("rff_per", "plain", backend), {})
        c[f"sim-{backend}-custom-momentum"] = (_sim, ("custom", "momentum", backend), {})
        c[f"sim-{backend}-float32"] = (_sim, ("linreg", "nesterov", backend),
                                       {"dtype": "float32", "batch_size": 4})
        for method in ("euler_maruyama", "exact_ou"):
            for model in ("ou_dense", "ul_diag", "ul_dense"):
                c[f"sde-{backend}-{method}-{model}"] = (_sde_run, (method, model, backend), {})
        for model in ("ul_diag", "ul_dense", "rff", "quad"):
            c[f"sde-{backend}-baoab-{model}"] = (_sde_run, ("baoab", model, backend), {})
        c[f"sde-{backend}-euler_maruyama-rff"] = (_sde_run, ("euler_maruyama", "rff", backend), {})
    c["sde-numpy-baoab-ul_dense-float32"] = (_sde_run, ("baoab", "ul_dense", "numpy"), {"dtype": "float32"})
    # diverging runs: records NaN after the step, diverged_at set
    c["sim-numba-diverging"] = (_sim, ("quad_diag", "unstable", "numba"),
                                {"on_divergence": "record", "init": np.full(3, 3.0), "steps": 200})
    c["sim-numpy-diverging"] = (_sim, ("quad_diag", "unstable", "numpy"),
                                {"on_divergence": "record", "init": np.full(3, 3.0), "steps": 200})
    for backend in ("numba", "numpy"):
        c[f"sde-{backend}-diverging"] = (_sde_run, ("euler_maruyama", "ou_dense", backend),
                                         {"dt": 1.5, "steps": 200, "on_divergence": "record"})
    return c


def _fake_cases():
    """Fake-device runs and the NumPy case whose digest they must reproduce."""
    return {
        "sim-cupy-linreg-epoch_shuffle": "sim-numpy-linreg-epoch_shuffle",
        "sim-cupy-linreg-gaussian": "sim-numpy-linreg-gaussian",
        "sim-cupy-rff_per-plain": "sim-numpy-rff_per-plain",
        "sim-cupy-quad_full-nudged": "sim-numpy-quad_full-nudged",
        "sde-cupy-baoab-ul_dense": "sde-numpy-baoab-ul_dense",
        "sde-cupy-exact_ou-ou_dense": "sde-numpy-exact_ou-ou_dense",
        "sde-cupy-euler_maruyama-ul_diag": "sde-numpy-euler_maruyama-ul_diag",
        "sde-cupy-baoab-rff": "sde-numpy-baoab-rff",
    }


def _run(name: str, backend_override: str | None = None) -> str:
    fn, args, kw = _cases()[name]
    if backend_override is not None:
        args = (*args[:-1], backend_override)
    res = fn(*args, **kw)
    return _traj_digest(res) if name.startswith("sim") else _paths_digest(res)


# Recorded from commit f2237f8 (before the engine refactor) with `python tests/test_engine_golden.py`.
GOLDEN = {
    "sde-numba-baoab-quad": "fb4b0015de5a2a1ceacdd353",
    "sde-numba-baoab-rff": "d08dde880725419cc964db43",
    "sde-numba-baoab-ul_dense": "6a275fb34ce76bef852b0b6f",
    "sde-numba-baoab-ul_diag": "33f19286b7b21435a8aa6290",
    "sde-numba-diverging": "469ae42190e4fda7adf932b7",
    "sde-numba-euler_maruyama-ou_dense": "2320e8900e80bd1038cc5138",
    "sde-numba-euler_maruyama-rff": "bc993c66be4c6846eb256301",
    "sde-numba-euler_maruyama-ul_dense": "852dff65e6acd97ff439c6cf",
    "sde-numba-euler_maruyama-ul_diag": "21bc0d98459d3d7d2dc91258",
    "sde-numba-exact_ou-ou_dense": "327bc9418f5e4baedd6b758d",
    "sde-numba-exact_ou-ul_dense": "2f775f202e17150fdcef476a",
    "sde-numba-exact_ou-ul_diag": "874907f0dd6b30cedbe876dd",
    "sde-numpy-baoab-quad": "b7d4ed045ae4b7326c87b372",
    "sde-numpy-baoab-rff": "f3a9aaf650fa6a946e5eda4b",
    "sde-numpy-baoab-ul_dense": "9ad7027c7b404befbc4307ee",
    "sde-numpy-baoab-ul_dense-float32": "5ec487c400259c67b45f2700",
    "sde-numpy-baoab-ul_diag": "5f7fa9675eaf119a7fe19d2b",
    "sde-numpy-diverging": "360994d35a57843087ddcf3b",
    "sde-numpy-euler_maruyama-ou_dense": "d5c50dc4acbc79ae7e277e02",
    "sde-numpy-euler_maruyama-rff": "0332a4d955e17184e3f04f26",
    "sde-numpy-euler_maruyama-ul_dense": "be34d14487afde6f57790e0d",
    "sde-numpy-euler_maruyama-ul_diag": "87124e64474501b418c6b483",
    "sde-numpy-exact_ou-ou_dense": "440172435c613216ba976cbf",
    "sde-numpy-exact_ou-ul_dense": "78e8de2b056e9316fdef2af4",
    "sde-numpy-exact_ou-ul_diag": "78dca4142aeebc20ede3cd5c",
    "sim-numba-custom-momentum": "4adef4789dba61ed8fec4968",
    "sim-numba-diverging": "0683c5b0f3d074a1b627b2b3",
    "sim-numba-float32": "fb89a8c181a8356aea2af055",
    "sim-numba-linreg-epoch_shuffle": "ee0a80f842ec0cccb9a65a24",
    "sim-numba-linreg-full": "f8c978c49539d873f72000fd",
    "sim-numba-linreg-gaussian": "db599507a051b87e4a6ed9d0",
    "sim-numba-linreg-with_replacement": "f364f2740030ea2d4677f3d1",
    "sim-numba-linreg-without_replacement": "e18b8712145bac32eef9bc0a",
    "sim-numba-quad_diag-momentum": "ce7cf55542b5f0ce08fdefdb",
    "sim-numba-quad_diag-nesterov": "5848ba70b2a1fda8e52b9cbd",
    "sim-numba-quad_diag-plain": "dc85d212a968a8bba704bba8",
    "sim-numba-quad_diag-wd": "226f4b58e51bd56489c2f994",
    "sim-numba-quad_full-nesterov": "886c5879b7a58dc1e9ad4ac4",
    "sim-numba-quad_full-nudged": "71459581cf8a0f791dd79979",
    "sim-numba-rff-wd": "09e9b0587874a0a19dc391cf",
    "sim-numba-rff_per-plain": "e541c4f0d8e8a04797406afc",
    "sim-numpy-custom-momentum": "2905a9787d481272d003eb3d",
    "sim-numpy-diverging": "1ce1ff731b5969a872eb2ad4",
    "sim-numpy-float32": "e77b916a30f7cf29c988be6b",
    "sim-numpy-linreg-epoch_shuffle": "25985208e8070c9649c6ee35",
    "sim-numpy-linreg-full": "b5a1909ebfce6fa71fa955dd",
    "sim-numpy-linreg-gaussian": "c82e167afda4b3f38b5c2d5e",
    "sim-numpy-linreg-with_replacement": "3316dbe192f129529de952f7",
    "sim-numpy-linreg-without_replacement": "231a22a303394eb7ab93e7ca",
    "sim-numpy-quad_diag-momentum": "98fd193887522259398a9220",
    "sim-numpy-quad_diag-nesterov": "90961090a9ec6273e4af0345",
    "sim-numpy-quad_diag-plain": "d5f98d676f95bdb5bcb01801",
    "sim-numpy-quad_diag-wd": "679ca7b0e79c274fa4fcf0ef",
    "sim-numpy-quad_full-nesterov": "9fda117697aeba8cdda59a69",
    "sim-numpy-quad_full-nudged": "93295108815e002e55b189ad",
    "sim-numpy-rff-wd": "52892558f1c63b91ef841a57",
    "sim-numpy-rff_per-plain": "b97345e5c5a0aee098e23e37",
}

# A pre-existing reproducibility defect of the Numba Euler–Maruyama kernel with a dense noise
# factor (found while recording these): its last bits depend on the process history. If a dense
# BAOAB run came first in the process, the shared callee ``_apply_noise`` is the one compiled with
# BAOAB's kernel and the EM records differ by 1 ulp in places from a process where EM ran first.
# Both variants were recorded from f2237f8 (EM first: the second digest); fixing the defect
# (inlining the callee per kernel) is left for later, see the CHANGELOG.
HISTORY_DEPENDENT = {
    "sde-numba-euler_maruyama-ou_dense": "f7b39c73c5cb73a2f0642935",
    "sde-numba-diverging": "8cdf68bb4f3b6a55ebdcbcea",
}


@pytest.mark.parametrize("name", sorted(_cases()))
def test_seeded_run_is_bit_identical_to_the_recorded_one(name):
    assert _run(name) in (GOLDEN[name], HISTORY_DEPENDENT.get(name))


@pytest.fixture
def fake_cupy(monkeypatch):
    import fake_device

    from sgdsim.backends import cupy_backend

    monkeypatch.setattr(cupy_backend, "cupy_or_error", fake_device.namespace)


@pytest.mark.parametrize("name", sorted(_fake_cases()))
def test_fake_device_run_is_bit_identical_to_the_recorded_numpy_one(fake_cupy, name):
    twin = _fake_cases()[name]
    assert _run(twin, backend_override="cupy") == GOLDEN[twin]


if __name__ == "__main__":
    import fake_device

    from sgdsim.backends import cupy_backend

    out = {name: _run(name) for name in sorted(_cases())}
    for name, digest in out.items():
        print(f'    "{name}": "{digest}",')
    cupy_backend.cupy_or_error = fake_device.namespace
    for name, twin in _fake_cases().items():
        got = _run(twin, backend_override="cupy")
        print(f"# {name}: {'same as ' + twin if got == out[twin] else 'DIFFERENT ' + got}")
