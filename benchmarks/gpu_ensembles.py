"""GPU benchmark (issues 7 and 17): the CuPy backend against the Numba CPU backend in the same
run, on the standard workloads of shared/BENCHMARKS.md at GPU-sized ensembles.

Workloads (default sizes are the device check's; ``--scale`` shrinks them for a smoke test):

* ``w1``: ensemble SGD on linear regression (n = 1024, d = 50, B = 32, η = 0.05), R = 65,536 and
  1,048,576, float32 and float64. Check: the ensemble-mean excess loss against the exact
  stationary value of the second-moment recursion (``LinRegMoments``), as a z-score.
* ``w3``: underdamped Langevin with BAOAB (d = 10), 10⁶ paths. Check: the largest |z| of the 20
  final variances against the exact moments of the BAOAB discretization.
* ``rff``: SGD on a shared Gaussian random potential (random Fourier features, d = 100,
  M = 1024, isotropic gradient noise), R = 65,536. Check (no closed form exists): the mean
  final loss of the CuPy run against the Numba run, as a two-sample z-score.

Each (workload, size, dtype) prints one JSON line per backend (median time, throughput, the
check), then a line with the ratio ``cupy / numba`` in the same run, the cross-backend z-score
and whether two seeded CuPy runs were bitwise identical. Without CuPy or a CUDA device the CuPy
rows print ``"skipped"`` with the reason; with ``--require-gpu`` nothing runs then (exit 0), which
is what the device check script uses so that it skips cleanly on a machine without a GPU.

    python -m benchmarks.gpu_ensembles [--workloads w1 w3 rff] [--dtypes float32 float64]
                                       [--scale 1.0] [--repeats 3] [--jsonl FILE] [--require-gpu]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run by path: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sgdsim as sg
from benchmarks._harness import emit, set_sink, time_median
from sgdsim.sde import baoab
from sgdsim.theory import LinRegMoments
from sgdsim.theory.langevin import UnderdampedLangevin
from sgdsim.theory.schemes import scheme_moments

#: the device check's sizes: (replicas, steps) per workload; steps are per timed run
SIZES = {
    "w1": [(65_536, 1_000), (1_048_576, 300)],
    "w3": [(1_000_000, 1_000)],
    "rff": [(65_536, 50)],
}


def cupy_reason() -> str | None:
    """None when ``backend='cupy'`` can run here, else why not."""
    try:
        from sgdsim.backends.cupy_backend import cupy_or_error

        cupy_or_error()
    except RuntimeError as exc:
        return str(exc)
    return None


def state_digest(arrays) -> str:
    """SHA-256 of the final state's bytes: equal digests = bitwise-identical runs."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Workload:
    """One timed configuration: ``run(backend, steps)`` returns a result; ``final(res)`` its
    final state (for the digest); ``check(res)`` the exact-theory check as a dict;
    ``sample(res)`` per-replica values for the cross-backend z-score."""

    name: str
    replicas: int
    steps: int
    dtype: str
    unit: str
    run: object
    final: object
    check: object
    sample: object


def w1(replicas: int, steps: int, dtype: str) -> Workload:
    p = sg.LinearRegression.synthetic(n=1024, dim=50, noise_std=0.5, seed=0)
    exact = LinRegMoments(p.X, p.y, lr=0.05, batch_size=32).stationary_excess_loss()

    def run(backend, t):
        return sg.simulate(p, sg.sgd(0.05), steps=t, replicas=replicas, batch_size=32, seed=1,
                           dtype=dtype, backend=backend, record=("loss",), every=t,
                           progress=False)  # fmt: skip

    def sample(res):
        return res["loss"].values[-1] - p.min_loss

    def check(res):
        excess = sample(res)
        se = excess.std(ddof=1) / np.sqrt(excess.size)
        return {"exact_excess_loss": exact, "measured": float(excess.mean()),
                "check_z": float((excess.mean() - exact) / se)}  # fmt: skip

    return Workload("W1", replicas, steps, dtype, "replica-steps/s", run,
                    lambda res: [res.final_params], check, sample)  # fmt: skip


def w3(replicas: int, steps: int, dtype: str) -> Workload:
    model = UnderdampedLangevin.thermal(np.linspace(0.1, 2.0, 10), 1.0, 1.0)
    dt = 0.01

    def run(backend, t):
        sde_dtype = dtype if backend != "numba" else "float64"  # the Numba SDE kernels are float64
        return baoab(model, dt=dt, steps=t, replicas=replicas, seed=1, every=t, record=(),
                     backend=backend, dtype=sde_dtype)  # fmt: skip

    def check(res):
        _, cov = scheme_moments("baoab", model, dt, int(res.steps[-1]))
        var = np.concatenate([res.final_x.var(0, ddof=1), res.final_v.var(0, ddof=1)])
        z = (var / np.diag(cov) - 1.0) / np.sqrt(2.0 / (replicas - 1))
        return {"scheme": "baoab", "max_abs_z_vs_scheme": float(np.abs(z).max())}

    return Workload("W3", replicas, steps, dtype, "path-steps/s", run,
                    lambda res: [res.final_x, res.final_v], check,
                    lambda res: (res.final_x**2).sum(1))  # fmt: skip


def rff(replicas: int, steps: int, dtype: str) -> Workload:
    pot = sg.GaussianRandomPotential(dim=100, n_features=1024, lengthscale=3.0, seed=0, noise_std=0.1)

    def run(backend, t):
        return sg.simulate(pot, sg.sgd(0.5), steps=t, replicas=replicas, seed=1, backend=backend,
                           dtype=dtype, record=("loss",), every=t, progress=False)  # fmt: skip

    def sample(res):
        return res["loss"].values[-1]

    return Workload("RFF", replicas, steps, dtype, "replica-steps/s", run,
                    lambda res: [res.final_params], lambda res: {"mean_loss": float(sample(res).mean())},
                    sample)  # fmt: skip


MAKERS = {"w1": w1, "w3": w3, "rff": rff}


def two_sample_z(a: np.ndarray, b: np.ndarray) -> float:
    """(mean a − mean b) / its standard error, for independent samples."""
    return float((a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))


def time_workload(wl: Workload, backend: str, repeats: int) -> tuple[float, object]:
    """Warm up (compiles), then the median of ``repeats`` timed runs; prints the backend's row."""
    t0 = time.perf_counter()
    wl.run(backend, 2)
    warm = time.perf_counter() - t0
    sec, res = time_median(lambda: wl.run(backend, wl.steps), repeats)
    throughput = wl.replicas * wl.steps / sec
    emit(workload=wl.name, impl=f"sgdsim-{backend}", params=f"R={wl.replicas},T={wl.steps}",
         dtype=wl.dtype, median_s=sec, throughput=throughput, unit=wl.unit, compile_s=warm,
         **wl.check(res))  # fmt: skip
    return throughput, res


def compare(wl: Workload, repeats: int, gpu_reason: str | None) -> dict:
    """Both backends on one workload; the ratio, the cross-backend z and the GPU's bitwise
    reproducibility (a second seeded run's final state against the timed one's)."""
    tp_cpu, res_cpu = time_workload(wl, "numba", repeats)
    if gpu_reason is not None:
        return emit(workload=wl.name, impl="sgdsim-cupy", params=f"R={wl.replicas}", skipped=gpu_reason)
    tp_gpu, res_gpu = time_workload(wl, "cupy", repeats)
    again = wl.run("cupy", wl.steps)
    same_bits = state_digest(wl.final(again)) == state_digest(wl.final(res_gpu))
    return emit(workload=wl.name, params=f"R={wl.replicas},T={wl.steps}", dtype=wl.dtype,
                ratio="cupy / numba", value=tp_gpu / tp_cpu,
                z_cupy_vs_numba=two_sample_z(wl.sample(res_gpu), wl.sample(res_cpu)),
                gpu_bitwise_reproducible=same_bits)  # fmt: skip


def environment() -> dict:
    """Device, driver and library versions, for the results file."""
    import numba

    env = {"sgdsim": sg.__version__, "numpy": np.__version__, "numba": numba.__version__,
           "numba_threads": numba.config.NUMBA_NUM_THREADS, "python": sys.version.split()[0]}  # fmt: skip
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        env.update(cupy=cupy.__version__, device=props["name"].decode(),
                   cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                   cuda_driver=cupy.cuda.runtime.driverGetVersion())  # fmt: skip
    except Exception as exc:  # no CuPy / no device: the reason is reported by cupy_reason()
        env["cupy"] = f"unavailable ({type(exc).__name__})"
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=list(MAKERS), choices=list(MAKERS))
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=("float32", "float64"),
                    help="W1 runs each; W3 and RFF run the first (the Numba SDE kernels are float64)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply replicas and steps (smoke tests)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jsonl", type=Path, help="also append every JSON line to this file")
    ap.add_argument("--require-gpu", action="store_true",
                    help="without a usable GPU, print one 'skipped' line and run nothing")
    args = ap.parse_args(argv)
    if not 0 < args.scale <= 1:
        ap.error(f"--scale must be in (0, 1], got {args.scale}")
    if args.jsonl is not None:
        set_sink(args.jsonl)
    reason = cupy_reason()
    emit(kind="environment", **environment(), gpu_reason=reason)
    if reason is not None and args.require_gpu:
        emit(kind="skipped", reason=reason)
        return 0
    for name in args.workloads:
        dtypes = args.dtypes if name == "w1" else args.dtypes[:1]
        for replicas, steps in SIZES[name]:
            r, t = max(2, int(replicas * args.scale)), max(2, int(steps * args.scale))
            for dtype in dtypes:
                compare(MAKERS[name](r, t, dtype), args.repeats, reason)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
