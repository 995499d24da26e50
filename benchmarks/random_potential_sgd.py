"""SGD on a Gaussian random potential (random Fourier features, d = 100, M = 1024, shared field)
with isotropic gradient noise: replica-steps per second of sgdsim's backends against a plain
NumPy loop (vectorized over replicas, two matrix products per step) in the same run.

Check: the NumPy-backend and Numba-backend runs reach the same mean loss within 4 standard errors.

    python -m benchmarks.random_potential_sgd [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sgdsim as sg

try:
    from benchmarks._harness import emit, time_median
except ModuleNotFoundError:  # run by path (python benchmarks/x.py): its folder is on sys.path
    from _harness import emit, time_median


def numpy_reference(pot: sg.GaussianRandomPotential, steps: int, reps: int, lr: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    th = np.zeros((reps, pot.dim))
    for _ in range(steps):
        z = th @ pot.W.T + pot.b
        g = (-pot.amp * np.sin(z)) @ pot.W + pot.noise_std * rng.standard_normal(th.shape)
        th -= lr * g
    return th


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    reps, steps, repeats = (256, 200, 3) if args.quick else (256, 1000, 5)
    pot = sg.GaussianRandomPotential(dim=100, n_features=1024, lengthscale=3.0, seed=0, noise_std=0.1)
    lr = 0.5
    results = {}
    for backend in ("numba", "numpy"):

        def run(t=steps, backend=backend):
            return sg.simulate(pot, sg.sgd(lr), steps=t, replicas=reps, seed=1, backend=backend,
                               record=("loss",), every=t, progress=False)  # fmt: skip

        t0 = time.perf_counter()
        run(2)
        compile_s = time.perf_counter() - t0
        sec, res = time_median(run, repeats)
        results[backend] = res["loss"].values[-1]
        emit(workload="rff-sgd", impl=f"sgdsim-{backend}", params=f"R={reps},T={steps},d=100,M=1024",
             median_s=sec, throughput=reps * steps / sec, unit="replica-steps/s", compile_s=compile_s,
             mean_loss=float(results[backend].mean()))  # fmt: skip
        results[backend + "_tp"] = reps * steps / sec
    sec_ref, th = time_median(lambda: numpy_reference(pot, steps, reps, lr), repeats)
    ref_tp = reps * steps / sec_ref
    emit(workload="rff-sgd", impl="numpy-reference", params=f"R={reps},T={steps},d=100,M=1024",
         median_s=sec_ref, throughput=ref_tp, unit="replica-steps/s", mean_loss=float(pot.loss(th).mean()))
    a, b = results["numba"], results["numpy"]
    z = (a.mean() - b.mean()) / np.sqrt(a.var() / a.size + b.var() / b.size)
    emit(workload="rff-sgd", check_z_numba_vs_numpy=float(z),
         ratio_numba_to_reference=results["numba_tp"] / ref_tp,
         ratio_numpy_backend_to_reference=results["numpy_tp"] / ref_tp)  # fmt: skip


if __name__ == "__main__":
    main()
