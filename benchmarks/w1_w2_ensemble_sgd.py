"""W1 (ensemble SGD on linear regression) and W2 (noisy quadratic, heavy ball), as defined in
shared/BENCHMARKS.md: sgdsim's Numba backend against references in the same run.

W1 references: NumPy in place over replicas; the hand-written Numba ``prange`` loop a user would
write (one replica per iteration, ``np.random.randint`` per sample, one row at a time); JAX
(``jit`` of a ``lax.scan`` over steps of the batched step, float32 only; skipped when JAX is not
installed). W1 also prints the f32 matmul roofline measured in the same run (a 2048² NumPy
matmul) as replica-steps/s at 2·B·d = 3,200 FMA per replica-step, and sgdsim's fraction of it.

Each line: workload, impl, params, median seconds of the timed runs after a warm-up, throughput
in replica-steps per second, compile seconds (the warm-up call, cache included), and the check:
the z-score of the simulated mean against the exact theory (|z| > 3 means a wrong run).

    python benchmarks/w1_w2_ensemble_sgd.py [--quick] [--only w1|w2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit, prange

import sgdsim as sg

try:
    from benchmarks._harness import emit, time_median
except ModuleNotFoundError:  # run by path (python benchmarks/x.py): its folder is on sys.path
    from _harness import emit, time_median
from sgdsim.theory import LinRegMoments, NoisyQuadraticMoments


# --- W1 ----------------------------------------------------------------------------------------
def w1_numpy_reference(p: sg.LinearRegression, steps: int, reps: int, dtype, seed: int = 0):
    """In-place NumPy SGD over all replicas at once (what a user would write)."""
    rng = np.random.default_rng(seed)
    x, y = p.X.astype(dtype), p.y.astype(dtype)
    w = np.zeros((reps, p.dim), dtype=dtype)
    lr = dtype(0.05 / 32)
    for _ in range(steps):
        idx = rng.integers(0, p.n_samples, size=(reps, 32))
        xb = x[idx]
        r = np.einsum("rbd,rd->rb", xb, w) - y[idx]
        w -= lr * np.einsum("rb,rbd->rd", r, xb)
    return w


@njit(parallel=True, cache=True, fastmath=True)
def _w1_hand_numba(x, y, w, step, batch, steps, seed):
    """What a user writes in Numba: a prange over replicas, np.random per sample, one row at a
    time, ``fastmath`` on and the step ``lr/B`` in the run dtype."""
    np.random.seed(seed)  # noqa: NPY002 (Numba has only the legacy API)
    n, d = x.shape
    for r in prange(w.shape[0]):
        wr = w[r]
        g = np.empty(d, dtype=w.dtype)
        for _ in range(steps):
            g[:] = 0
            for _j in range(batch):
                k = np.random.randint(0, n)  # noqa: NPY002
                res = x[k, 0] * wr[0]
                for i in range(1, d):
                    res += x[k, i] * wr[i]
                res -= y[k]
                for i in range(d):
                    g[i] += res * x[k, i]
            for i in range(d):
                wr[i] -= step * g[i]
    return w


def w1_hand_numba(p: sg.LinearRegression, steps: int, reps: int, dtype, seed: int = 0):
    x, y = p.X.astype(dtype), p.y.astype(dtype)
    return _w1_hand_numba(x, y, np.zeros((reps, p.dim), dtype=dtype), dtype(0.05 / 32), 32,
                          steps, seed)


def w1_jax(p: sg.LinearRegression, reps: int):
    """A JAX float32 runner ``steps -> w`` (jit of lax.scan over the batched step), or None."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    x, y = jnp.asarray(p.X, jnp.float32), jnp.asarray(p.y, jnp.float32)
    n, d = p.X.shape

    def step(carry, _):
        w, key = carry
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (reps, 32), 0, n)
        xb = x[idx]
        r = jnp.einsum("rbd,rd->rb", xb, w) - y[idx]
        return (w - (0.05 / 32) * jnp.einsum("rb,rbd->rd", r, xb), key), None

    def runner(steps: int):
        fn = jax.jit(lambda key, w0: jax.lax.scan(step, (w0, key), None, length=steps)[0][0])
        return lambda: np.asarray(fn(jax.random.PRNGKey(0), jnp.zeros((reps, d), jnp.float32)))

    return runner


def f32_roofline_gflops(repeats: int) -> float:
    """float32 GFLOP/s of a 2048² NumPy matmul (median of ``repeats`` after a warm-up)."""
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    a @ a
    sec, _ = time_median(lambda: a @ a, repeats)
    return 2 * 2048**3 / sec / 1e9


def run_w1(quick: bool, repeats: int) -> list[dict]:
    p = sg.LinearRegression.synthetic(n=1024, dim=50, noise_std=0.5, seed=0)
    steps, reps = (5_000 if quick else 20_000), 256
    exact = LinRegMoments(p.X, p.y, lr=0.05, batch_size=32).stationary_excess_loss()
    rows = []
    for dtype in ("float32", "float64"):

        def run(t=steps, dtype=dtype):
            return sg.simulate(p, sg.sgd(0.05), steps=t, replicas=reps, batch_size=32, seed=1,
                               dtype=dtype, record=("loss",), every=t, progress=False)  # fmt: skip

        t0 = time.perf_counter()
        run(10)
        compile_s = time.perf_counter() - t0
        sec, res = time_median(run, repeats)
        excess = res["loss"].values[-1] - p.min_loss
        z = (excess.mean() - exact) / (excess.std(ddof=1) / np.sqrt(reps))
        rows.append(emit(workload="W1", impl=f"sgdsim-numba-{dtype}", params=f"R={reps},T={steps}",
                         median_s=sec, throughput=reps * steps / sec, unit="replica-steps/s",
                         compile_s=compile_s, check_excess=float(excess.mean()),
                         exact_excess=exact, check_z=float(z)))  # fmt: skip
        ref_steps = steps // 10  # the NumPy loop is slow: time it on fewer steps
        npdt = np.float32 if dtype == "float32" else np.float64
        w1_numpy_reference(p, 5, reps, npdt)
        sec_ref, w = time_median(
            lambda npdt=npdt, n=ref_steps: w1_numpy_reference(p, n, reps, npdt), repeats
        )
        rows.append(emit(workload="W1", impl=f"numpy-{dtype}", params=f"R={reps},T={ref_steps}",
                         median_s=sec_ref, throughput=reps * ref_steps / sec_ref,
                         unit="replica-steps/s", check_excess=float(np.mean(p.loss(w)) - p.min_loss)))
        sim, ref = rows[-2]["throughput"], rows[-1]["throughput"]
        emit(workload="W1", ratio=f"sgdsim-numba-{dtype} / numpy-{dtype}", value=sim / ref)
        t0 = time.perf_counter()
        w1_hand_numba(p, 10, reps, npdt)
        compile_s = time.perf_counter() - t0
        sec_hand, w = time_median(lambda npdt=npdt: w1_hand_numba(p, steps, reps, npdt), repeats)
        hand = reps * steps / sec_hand
        rows.append(emit(workload="W1", impl=f"hand-numba-{dtype}", params=f"R={reps},T={steps}",
                         median_s=sec_hand, throughput=hand, unit="replica-steps/s",
                         compile_s=compile_s,
                         check_excess=float(np.mean(p.loss(w.astype(float))) - p.min_loss)))  # fmt: skip
        emit(workload="W1", ratio=f"sgdsim-numba-{dtype} / hand-numba-{dtype}", value=sim / hand)
        if dtype == "float32":
            rows += _w1_float32_peers(p, steps, reps, repeats, sim)
    return rows


def _w1_float32_peers(p, steps, reps, repeats, sim) -> list[dict]:
    """JAX (when installed) and the matmul roofline, in the same run as sgdsim's float32 row."""
    rows = []
    jax_runner = w1_jax(p, reps)
    if jax_runner is None:
        emit(workload="W1", impl="jax-float32", skipped="jax is not installed")
    else:
        fn = jax_runner(steps)
        t0 = time.perf_counter()
        fn()
        compile_s = time.perf_counter() - t0
        sec, w = time_median(fn, repeats)
        rows.append(emit(workload="W1", impl="jax-float32", params=f"R={reps},T={steps}",
                         median_s=sec, throughput=reps * steps / sec, unit="replica-steps/s",
                         compile_s=compile_s,
                         check_excess=float(np.mean(p.loss(w.astype(float))) - p.min_loss)))  # fmt: skip
        emit(workload="W1", ratio="sgdsim-numba-float32 / jax-float32", value=sim / rows[-1]["throughput"])
    gflops = f32_roofline_gflops(repeats)
    peak = gflops * 1e9 / (2 * 32 * p.dim * 2)  # 2 FMA (dot + axpy) per sample and coordinate
    rows.append(emit(workload="W1", impl="f32-matmul-roofline", gflops=gflops, throughput=peak,
                     unit="replica-steps/s"))  # fmt: skip
    emit(workload="W1", ratio="sgdsim-numba-float32 / f32-matmul-roofline", value=sim / peak)
    return rows


# --- W2 ----------------------------------------------------------------------------------------
def w2_numpy_reference(h, steps, reps, seed=0):
    rng = np.random.default_rng(seed)
    th = np.ones((reps, h.size))
    v = np.zeros_like(th)
    s = np.sqrt(h / 32)
    for _ in range(steps):
        g = h * th + s * rng.standard_normal(th.shape)
        v *= 0.9
        v += g
        th -= 0.5 * v
    return th


def run_w2(quick: bool, repeats: int) -> list[dict]:
    d, reps = 1000, 1024
    steps = 2_000 if quick else 10_000
    h = 1.0 / np.arange(1, d + 1)
    q = sg.Quadratic.from_eigenvalues(h, noise=sg.AdditiveNoise(h))
    opt = sg.sgd(0.5, momentum=0.9)
    theory = NoisyQuadraticMoments(hessian=np.diag(h), noise_cov=np.diag(h), lr=0.5, momentum=0.9,
                                   batch_size=32)  # fmt: skip
    exact = theory.transient(steps, np.ones(d), every=steps)["loss"][-1]

    def run(t=steps):
        return sg.simulate(q, opt, steps=t, replicas=reps, batch_size=32, init=np.ones(d), seed=2,
                           record=("loss",), every=t, progress=False)  # fmt: skip

    t0 = time.perf_counter()
    run(10)
    compile_s = time.perf_counter() - t0
    sec, res = time_median(run, repeats)
    loss = res["loss"].values[-1]
    z = (loss.mean() - exact) / (loss.std(ddof=1) / np.sqrt(reps))
    rows = [emit(workload="W2", impl="sgdsim-numba-float64", params=f"R={reps},T={steps},d={d}",
                 median_s=sec, throughput=reps * steps / sec, unit="replica-steps/s",
                 compile_s=compile_s, check_loss=float(loss.mean()), exact_loss=float(exact),
                 check_z=float(z))]  # fmt: skip
    ref_steps = steps // 20
    sec_ref, _ = time_median(lambda: w2_numpy_reference(h, ref_steps, reps), max(1, repeats // 2))
    rows.append(emit(workload="W2", impl="numpy-float64", params=f"R={reps},T={ref_steps},d={d}",
                     median_s=sec_ref, throughput=reps * ref_steps / sec_ref, unit="replica-steps/s"))
    emit(workload="W2", ratio="sgdsim-numba / numpy", value=rows[0]["throughput"] / rows[1]["throughput"])
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    ap.add_argument("--only", choices=("w1", "w2"))
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 5
    if args.only in (None, "w1"):
        run_w1(args.quick, repeats)
    if args.only in (None, "w2"):
        run_w2(args.quick, repeats)


if __name__ == "__main__":
    main()
