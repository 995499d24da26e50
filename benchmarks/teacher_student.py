"""Replica-steps per second of online SGD on a soft committee machine: Numba kernel vs NumPy.

:func:`sgdsim.simulate_teacher_student` (one Numba thread per replica, a fresh N-dimensional
Gaussian input per step) against a NumPy loop vectorized over replicas (the same update, inputs
from ``numpy.random.Generator``), in the same process. Correctness: the ensemble-mean ε_g of the
Numba run at the last record against the order-parameter ODE (within 5 standard errors + 2/N).
One JSON line per implementation, then a ratio line.

    python benchmarks/teacher_student.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from scipy.special import erf

import sgdsim as sg
from sgdsim.theory import teacher_student as ts


def _numpy_reference(problem, lr, steps, W, seed):
    """The same online SGD, vectorized over replicas: W (R, K, N) updated in place."""
    rng = np.random.default_rng(seed)
    N = problem.N
    Wt, vt = problem.teacher_weights, problem.teacher_second
    for _ in range(steps):
        X = rng.standard_normal((W.shape[0], N))
        lam = np.einsum("rkn,rn->rk", W, X) / math.sqrt(N)
        delta = erf(lam / math.sqrt(2)).sum(1) - erf(X @ Wt.T / math.sqrt(2 * N)) @ vt
        coef = -lr / math.sqrt(N) * delta[:, None] * math.sqrt(2 / math.pi) * np.exp(-0.5 * lam**2)
        W += coef[:, :, None] * X[:, None, :]
    return W


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    args = ap.parse_args(argv)
    N, K, replicas, lr, init_std = 1000, 2, 32, 1.0, 0.3
    alpha = 2 if args.quick else 10
    steps = alpha * N
    problem = sg.TeacherStudent.random(N, K, K, seed=0)
    sg.simulate_teacher_student(problem, lr, steps=10, replicas=2)  # compile / load the cache
    t0 = time.perf_counter()
    traj = sg.simulate_teacher_student(problem, lr, steps=steps, replicas=replicas, seed=1,
                                       init_std=init_std, every=N, progress=False)
    t_numba = time.perf_counter() - t0
    ref_steps = steps // 10
    W0 = init_std * np.random.default_rng(2).standard_normal((replicas, K, N))
    t0 = time.perf_counter()
    _numpy_reference(problem, lr, ref_steps, W0, 3)
    t_ref = time.perf_counter() - t0
    rates = {"numba": replicas * steps / t_numba, "numpy_reference": replicas * ref_steps / t_ref}
    for name, n, sec in (("numba", steps, t_numba), ("numpy_reference", ref_steps, t_ref)):
        print(json.dumps({"bench": "teacher_student_online_sgd", "impl": name, "N": N, "K": K, "M": K,
                          "replicas": replicas, "steps": n, "seconds": round(sec, 3),
                          "replica_steps_per_s": round(rates[name]),
                          "input_floats_per_s": round(rates[name] * N)}))
    ode = ts.integrate_order_parameters(init_std**2 * np.eye(K), np.zeros((K, K)), np.eye(K), lr,
                                        float(alpha), alphas=[float(alpha)])
    eps = traj["eps_g"].values[-1]
    err = abs(eps.mean() - ode.eps_g[-1])
    tol = 5 * eps.std(ddof=1) / math.sqrt(replicas) + 2 * ode.eps_g[-1] / N
    print(json.dumps({"bench": "teacher_student_online_sgd",
                      "ratio_numba_over_numpy": round(rates["numba"] / rates["numpy_reference"], 1),
                      "eps_g_sim": round(float(eps.mean()), 6), "eps_g_ode": round(float(ode.eps_g[-1]), 6),
                      "correct": bool(err <= tol)}))


if __name__ == "__main__":
    main()
