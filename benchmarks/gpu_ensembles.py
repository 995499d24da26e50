"""Issue 7's GPU benchmark: W1 (ensemble SGD on linear regression) and W3 (underdamped Langevin,
BAOAB) from shared/BENCHMARKS.md at large ensembles, the CuPy backend against the Numba CPU
backend in the same run.

Without CuPy or a CUDA device the CuPy rows print ``"skipped"`` with the reason (the Numba rows
still run, so the script is usable everywhere). Checks: W1, the mean excess loss against the exact
stationary value (z-score); W3, the largest |z| of the 20 final variances against the exact
moments of the BAOAB discretization.

    python -m benchmarks.gpu_ensembles [--workloads w1 w3] [--replicas 65536 1048576]
                                       [--steps 2000] [--dtype float32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sgdsim as sg
from benchmarks._harness import emit, time_median
from sgdsim.sde import baoab
from sgdsim.theory import LinRegMoments
from sgdsim.theory.langevin import UnderdampedLangevin
from sgdsim.theory.schemes import scheme_moments


def _cupy_reason() -> str | None:
    try:
        from sgdsim.backends.cupy_backend import cupy_or_error

        cupy_or_error()
    except RuntimeError as exc:
        return str(exc)
    return None


def _timed(workload: str, backend: str, reps: int, run, repeats: int, check) -> float:
    t0 = time.perf_counter()
    run(2)
    warm = time.perf_counter() - t0
    sec, res = time_median(run, repeats)
    unit = "replica-steps/s" if workload == "W1" else "path-steps/s"
    emit(workload=workload, impl=f"sgdsim-{backend}", params=f"R={reps}", median_s=sec,
         throughput=reps * run.steps / sec, unit=unit, compile_s=warm, **check(res))  # fmt: skip
    return reps * run.steps / sec


def w1_run(backend: str, reps: int, steps: int, dtype: str):
    p = sg.LinearRegression.synthetic(n=1024, dim=50, noise_std=0.5, seed=0)
    exact = LinRegMoments(p.X, p.y, lr=0.05, batch_size=32).stationary_excess_loss()

    def run(t=steps):
        return sg.simulate(p, sg.sgd(0.05), steps=t, replicas=reps, batch_size=32, seed=1,
                           dtype=dtype, backend=backend, record=("loss",), every=t,
                           progress=False)  # fmt: skip

    def check(res):
        excess = res["loss"].values[-1] - p.min_loss
        return {"dtype": dtype, "check_z": float((excess.mean() - exact) /
                                                 (excess.std(ddof=1) / np.sqrt(reps)))}  # fmt: skip

    run.steps = steps
    return run, check


def w3_run(backend: str, reps: int, steps: int, dtype: str):
    model = UnderdampedLangevin.thermal(np.linspace(0.1, 2.0, 10), 1.0, 1.0)

    sde_dtype = dtype if backend != "numba" else "float64"  # the Numba kernels are float64

    def run(t=steps):
        return baoab(model, dt=0.01, steps=t, replicas=reps, seed=1, every=t, record=(),
                     backend=backend, dtype=sde_dtype)  # fmt: skip

    def check(res):
        _, cov = scheme_moments("baoab", model, 0.01, steps)
        var = np.concatenate([res.final_x.var(0, ddof=1), res.final_v.var(0, ddof=1)])
        z = (var / np.diag(cov) - 1.0) / np.sqrt(2.0 / (reps - 1))
        return {"scheme": "baoab", "dtype": sde_dtype, "max_abs_z_vs_scheme": float(np.abs(z).max())}

    run.steps = steps
    return run, check


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["w1", "w3"], choices=("w1", "w3"))
    ap.add_argument("--replicas", type=int, nargs="+", default=[65_536, 1_048_576])
    ap.add_argument("--steps", type=int, default=2_000)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="W1")
    ap.add_argument("--sde-dtype", default="float64", choices=("float32", "float64"),
                    help="W3 on CuPy (the Numba SDE kernels are float64)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    reason = _cupy_reason()
    make = {"w1": w1_run, "w3": w3_run}
    for wl in args.workloads:
        for reps in args.replicas:
            tp = {}
            for backend in ("numba", "cupy"):
                if backend == "cupy" and reason is not None:
                    emit(workload=wl.upper(), impl="sgdsim-cupy", params=f"R={reps}", skipped=reason)
                    continue
                dtype = args.dtype if wl == "w1" else args.sde_dtype
                run, check = make[wl](backend, reps, args.steps, dtype)
                tp[backend] = _timed(wl.upper(), backend, reps, run, args.repeats, check)
            if len(tp) == 2:
                emit(workload=wl.upper(), params=f"R={reps}", ratio="cupy / numba",
                     value=tp["cupy"] / tp["numba"])  # fmt: skip


if __name__ == "__main__":
    main()
