"""W3: underdamped Langevin ensemble (BENCHMARKS.md).

d = 10 unit-mass oscillators with stiffness h = linspace(0.1, 2, 10), friction γ = 1, kT = 1,
dt = 0.01, R = 10,000 paths, 10,000 steps from x = v = 0. Throughput = R·steps / seconds
(path-steps per second); the median of 5 timed runs after a warm-up, compile time apart. One JSON
line per implementation; ``ratio_to_numpy`` compares with the NumPy Euler–Maruyama reference timed
in the same run (absolute times drift on shared machines).

Check: the final ensemble variances against (a) the continuous stationary values Var x_i = kT/h_i,
Var v_i = kT and (b) the exact second moments of the chosen discretization after the same number
of steps (``sgdsim.theory.schemes.scheme_moments``), as z-scores with the Gaussian standard error
√(2/R) of a sample variance.

Usage: ``python benchmarks/w3_langevin.py [--quick] [--impls numpy_em,sgdsim_baoab,...]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sgdsim.sde import baoab, euler_maruyama, exact_ou
from sgdsim.theory.langevin import UnderdampedLangevin
from sgdsim.theory.schemes import scheme_moments

D, GAMMA, KT, DT = 10, 1.0, 1.0, 0.01
H = np.linspace(0.1, 2.0, D)


def numpy_em(R: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: Euler–Maruyama on (x, v), in-place NumPy with preallocated buffers."""
    rng = np.random.default_rng(seed)
    x = np.zeros((R, D))
    v = np.zeros((R, D))
    xi = np.empty((R, D))
    force = np.empty((R, D))
    tmp = np.empty((R, D))
    hdt = -H * DT
    sig = np.sqrt(2.0 * GAMMA * KT * DT)
    for _ in range(steps):
        rng.standard_normal(out=xi)
        np.multiply(x, hdt, out=force)  # dt·(−h x) at the old x
        np.multiply(v, -GAMMA * DT, out=tmp)
        force += tmp
        np.multiply(v, DT, out=tmp)
        x += tmp  # x ← x + dt·v (old v)
        v += force
        xi *= sig
        v += xi
    return x, v


def run_sgdsim(method: str, model: UnderdampedLangevin, R: int, steps: int, seed: int):
    fn = {"sgdsim_baoab": baoab, "sgdsim_exact_ou": exact_ou, "sgdsim_em": euler_maruyama,
          "sgdsim_baoab_numpy": baoab}[method]  # fmt: skip
    backend = "numpy" if method.endswith("_numpy") else "numba"
    res = fn(model, dt=DT, steps=steps, replicas=R, seed=seed, every=max(steps, 1), record=(),
             backend=backend)  # fmt: skip
    return res.final_x, res.final_v


SCHEME = {
    "numpy_em": "euler_maruyama",
    "sgdsim_em": "euler_maruyama",
    "sgdsim_baoab": "baoab",
    "sgdsim_exact_ou": "exact_ou",
    "sgdsim_baoab_numpy": "baoab",  # the array backend (the CuPy code path) on NumPy
}


def check(impl: str, model: UnderdampedLangevin, x: np.ndarray, v: np.ndarray, steps: int) -> dict:
    R = x.shape[0]
    meas = np.concatenate([x.var(axis=0, ddof=1), v.var(axis=0, ddof=1)])
    cont = np.concatenate([KT / H, np.full(D, KT)])
    _, cov = scheme_moments(SCHEME[impl], model, DT, steps)
    exact = np.diag(cov)
    se = np.sqrt(2.0 / (R - 1))  # relative s.e. of a Gaussian sample variance
    z = (meas / exact - 1.0) / se
    return {
        "var_x_times_h_mean": float(np.mean(meas[:D] * H)),
        "var_v_mean": float(np.mean(meas[D:])),
        "max_rel_dev_vs_continuous": float(np.max(np.abs(meas / cont - 1.0))),
        "scheme_bias_vs_continuous": float(np.max(np.abs(exact / cont - 1.0))),
        "max_abs_z_vs_scheme": float(np.max(np.abs(z))),
        # 20 variances: |z| < 4.5 has a family-wise false-alarm rate ~1e-4
        "passed": bool(np.max(np.abs(z)) < 4.5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="R=2000, 2000 steps, 3 timed runs")
    ap.add_argument(
        "--impls",
        default="numpy_em,sgdsim_baoab",
        help="comma list of numpy_em, sgdsim_baoab, sgdsim_baoab_numpy (the array backend, "
        "CuPy's code path, on NumPy), sgdsim_exact_ou, sgdsim_em (the last two use dense 20×20 "
        "phase-space maps and are slow at full size)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    R, steps, runs = (2000, 2000, 3) if args.quick else (10_000, 10_000, 5)
    model = UnderdampedLangevin.thermal(H, GAMMA, KT)
    impls = args.impls.split(",")
    base = None
    for impl in impls:
        if impl not in SCHEME:
            raise SystemExit(f"unknown impl {impl!r}; valid: {sorted(SCHEME)}")
        if impl == "numpy_em":
            compile_s = 0.0
            fn = lambda: numpy_em(R, steps, args.seed)  # noqa: E731
        else:
            t0 = time.perf_counter()
            run_sgdsim(impl, model, 2, 2, args.seed)  # compile (or load from cache)
            compile_s = time.perf_counter() - t0
            fn = lambda impl=impl: run_sgdsim(impl, model, R, steps, args.seed)  # noqa: E731
        fn()  # warm-up
        times, out = [], None
        for _ in range(runs):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        thr = R * steps / med
        if impl == "numpy_em":
            base = thr
        row = {
            "workload": "W3",
            "impl": impl,
            "scheme": SCHEME[impl],
            "params": {"d": D, "gamma": GAMMA, "kT": KT, "dt": DT, "R": R, "steps": steps},
            "median_s": med,
            "throughput": thr,
            "throughput_unit": "path-steps/s",
            "compile_s": compile_s,
            "ratio_to_numpy": None if base is None else thr / base,
            "check": check(impl, model, out[0], out[1], steps),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
