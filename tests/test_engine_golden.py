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


def _summary(res) -> list[float]:
    """Sums of every recorded array and final state (NaNs skipped): what the Numba cases are
    compared on when their last bits may differ (see HISTORY_DEPENDENT)."""
    if hasattr(res, "dataset"):
        ds = res.dataset
        names = [n for n in ("loss", "dist2", "step2", "velocity2", "params") if n in ds]
        arrays = [ds[n].values for n in names] + [res.final_params, res.diverged_at]
        arrays += [] if res.final_buffer is None else [res.final_buffer]
    else:
        arrays = [res.records[k] for k in sorted(res.records)] + [res.final_x, res.diverged_at]
        arrays += [] if res.final_v is None else [res.final_v]
    return [float(np.nansum(a)) for a in arrays]


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


def _result(name: str, backend_override: str | None = None):
    fn, args, kw = _cases()[name]
    if backend_override is not None:
        args = (*args[:-1], backend_override)
    return fn(*args, **kw)


def _run(name: str, backend_override: str | None = None) -> str:
    res = _result(name, backend_override)
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

# A pre-existing reproducibility defect of the Numba kernels (found while recording these, present
# in f2237f8): kernels that share a cached callee compiled under other fastmath flags (the SDE and
# SGD kernels share ``rff_grad_into``; EM and BAOAB share ``_apply_noise``) can differ in their
# last bits with the process's compile/cache history (which kernel was compiled or loaded first).
# Every digest below was produced by f2237f8 in some history: GOLDEN in a fresh-compile run,
# OTHER_HISTORY in a run from a warm cache or with EM first. A Numba run matching neither is
# compared on its summaries (SUMMARY, from the warm-cache f2237f8 run) at rtol 1e-12: rounding
# differences of ≤ 40 steps stay below 1e-13, a changed formula or stream moves them by far more.
OTHER_HISTORY = {
    "sde-numba-euler_maruyama-ou_dense": ("f7b39c73c5cb73a2f0642935",),
    "sde-numba-diverging": ("8cdf68bb4f3b6a55ebdcbcea",),
    "sde-numba-baoab-rff": ("5e703c1c967e740fb399f1fb",),
    "sde-numba-euler_maruyama-rff": ("ec3ddf8564800a59b7673a03",),
    "sim-numba-rff-wd": ("2de4748bd5c49fd6d89389ec",),
    "sim-numba-rff_per-plain": ("2bd129c95e2b54343eac028c",),
}

# Deliberate changes since f2237f8, compared on their summaries at the rounding they changed:
# the Numba float32 kernel accumulates the gradient's row sums, step2 and ‖θ‖² in float32 (issue 16:
# before, a literal 0 promoted these sums to float64, which kept the loops from vectorizing). Sums
# of float32 records then agree with the f2237f8 ones to float32 rounding, not 1e-12: rtol 1e-6
# is ~10 ulp(float32) (measured 1.1e-9); a changed formula or stream moves them by O(1).
ROUNDING_CHANGED = {"sim-numba-float32": 1e-6}

SUMMARY = {
    "sde-numba-baoab-quad": [
        26.819059371593017, 15.215327249482717, 46.45557464144055, 12.264212756869098,
        26.819059371593017, 2.5086824666493577, -5.0, -0.7256949885852373
    ],
    "sde-numba-baoab-rff": [
        38.76354962475947, 23.31597636217213, 66.04081971975108, 13.144827533243216,
        38.76354962475947, 3.859248462465142, -5.0, 1.7429311406071373
    ],
    "sde-numba-baoab-ul_dense": [
        42.844841886553745, 22.592284086958173, 95.44294969484007, 20.671642586651338,
        42.844841886553745, 3.943443521232638, -5.0, -1.773019502083514
    ],
    "sde-numba-baoab-ul_diag": [
        27.41965380324667, -0.1742140786808637, 64.62114486678529, 11.983254796182466,
        27.41965380324667, -0.13116158532388794, -5.0, -4.242883801577483
    ],
    "sde-numba-diverging": [
        2.9313190111681896e+19, 1196608787.2133832, 2.9313190112399868e+19, 0.0, 174.0
    ],
    "sde-numba-euler_maruyama-ou_dense": [
        35.93731454788502, 29.29227875166817, 46.916106792888066, 1.6614961041336203, -5.0
    ],
    "sde-numba-euler_maruyama-rff": [
        137.30491950494945, 39.290088862019296, 137.30491950494945, 5.266817839401432, -5.0
    ],
    "sde-numba-euler_maruyama-ul_dense": [
        32.238207395708834, 3.7503390721658327, 81.32554683817311, 21.480225529870005,
        32.238207395708834, 0.8843672415499616, -5.0, -2.658914706003636
    ],
    "sde-numba-euler_maruyama-ul_diag": [
        29.20846237640122, -10.307324726858255, 96.35045018415518, 7.463840705662741,
        29.20846237640122, -2.1430294360116697, -5.0, -3.6939907731026222
    ],
    "sde-numba-exact_ou-ou_dense": [
        34.43481342952123, 28.94657196495355, 45.367716666009294, 1.6899469389478528, -5.0
    ],
    "sde-numba-exact_ou-ul_dense": [
        30.645304881380948, 3.156861551571284, 75.8180533144071, 19.65973559187856,
        30.645304881380948, 0.459677936252173, -5.0, -2.3501114852226515
    ],
    "sde-numba-exact_ou-ul_diag": [
        28.23354314478707, -9.716107216865892, 89.45517495206688, 6.284859625348978,
        28.23354314478707, -2.1421153082959363, -5.0, -3.4370475484988643
    ],
    "sim-numba-custom-momentum": [
        -47.076703943396645, 16.101730416878983, 0.1337534231804459, 53.50136927217835,
        18.33731146701782, -6.0, -1.5143256103015927
    ],
    "sim-numba-diverging": [
        7.763241934392092e+20, 7.763241930940917e+20, 1.845349697418723e+21, 8.201554210749882e+20,
        -419251298516.0069, 234.0, 430924251485.6042
    ],
    "sim-numba-float32": [
        15.246649561120831, 145.75782957643014, 1.0435149961693924, 348.7521735244255,
        1.507582345046103, -6.0, -3.7364015877246857
    ],
    "sim-numba-linreg-epoch_shuffle": [
        13.881901309043263, 113.25815982939807, 0.42457638565587386, 169.83055426234955,
        0.10676945972877572, -6.0, -2.0935925453642295
    ],
    "sim-numba-linreg-full": [
        14.017927296477678, 113.46017517882578, 0.3927467728947969, 157.09870915791882,
        0.047006956559853874, -6.0, -2.2517679214530837
    ],
    "sim-numba-linreg-gaussian": [
        14.063431935368648, 117.72038203017811, 0.48537061671308623, 194.1482466852345,
        -0.16466302778346797, -6.0, -2.3073779494172655
    ],
    "sim-numba-linreg-with_replacement": [
        14.703710357950133, 116.75280099892154, 0.4484810257728887, 179.39241030915545,
        -0.372138822274236, -6.0, -2.33006781419006
    ],
    "sim-numba-linreg-without_replacement": [
        13.79461768364996, 119.4800247829603, 0.4756177056687338, 190.24708226749348,
        0.2648477892115818, -6.0, -1.4221837924714367
    ],
    "sim-numba-quad_diag-momentum": [
        11.784586523891594, 75.64258987774666, 0.6800280997048936, 272.01123988195747,
        1.4955899627222424, -6.0, -2.4804793856498586
    ],
    "sim-numba-quad_diag-nesterov": [
        13.066188883728195, 93.40335123742815, 1.403954975438602, 383.287077793329,
        2.161153731985973, -6.0, -3.498226245421785
    ],
    "sim-numba-quad_diag-plain": [
        17.654307185437144, 27.5083546411003, 0.2400975367675268, 0.0, 3.750069834625332, -6.0
    ],
    "sim-numba-quad_diag-wd": [
        12.195262233800186, 48.32629874663986, 0.3534805564897996, 141.39222259591986,
        2.012101178215576, -6.0, 0.9271184847243643
    ],
    "sim-numba-quad_full-nesterov": [
        13.642464015063762, 92.91135455376394, 1.9941285987726332, 483.8351849713369,
        3.1572204091422305, -6.0, 0.11761109855724444
    ],
    "sim-numba-quad_full-nudged": [
        14.522245121722232, 23.264797669966832, 0.25205629096113263, 0.0, 5.350304773461572, -6.0
    ],
    "sim-numba-rff-wd": [
        43.34598090501523, 126.22932789345913, 0.6541764022329115, 261.6705608931646,
        185.31322141640635, 26.478033382733283, -6.0, -4.736736343966335
    ],
    "sim-numba-rff_per-plain": [
        -89.7707327439082, 62.51398536588252, 0.19906352733403232, 0.0, 10.481296381476303, -6.0
    ],
}


@pytest.mark.parametrize("name", sorted(_cases()))
def test_seeded_run_is_bit_identical_to_the_recorded_one(name):
    res = _result(name)
    digest = _traj_digest(res) if name.startswith("sim") else _paths_digest(res)
    if digest == GOLDEN[name] or digest in OTHER_HISTORY.get(name, ()):
        return
    assert "numba" in name, f"{name}: digest {digest} differs from the recorded {GOLDEN[name]}"
    np.testing.assert_allclose(_summary(res), SUMMARY[name], rtol=ROUNDING_CHANGED.get(name, 1e-12))


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

    out, summaries = {}, {}
    for name in sorted(_cases()):
        res = _result(name)
        out[name] = _traj_digest(res) if name.startswith("sim") else _paths_digest(res)
        summaries[name] = _summary(res)
    for name, digest in out.items():
        print(f'    "{name}": "{digest}",')
    for name, summ in summaries.items():
        if "numba" in name:
            print(f'    "{name}": {summ!r},')
    cupy_backend.cupy_or_error = fake_device.namespace
    for name, twin in _fake_cases().items():
        got = _run(twin, backend_override="cupy")
        print(f"# {name}: {'same as ' + twin if got == out[twin] else 'DIFFERENT ' + got}")
