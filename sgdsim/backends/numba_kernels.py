"""Compiled Numba kernels of the ensemble engine.

One driver, :func:`run_chunk`, advances every replica (``prange``, one replica per iteration, each
with its own xoshiro256++ stream) for a chunk of steps: gradient oracle → optimizer → divergence
check → records. The gradient oracles below share one signature

    grad_fn(data, theta, g, s, iwork, fwork)   # writes ∇L_B(θ) (+ noise) into g
    loss_fn(data, theta, iwork) -> float64     # full-batch loss, accumulated in float64

The driver body is written once (:func:`_drive`) and calls its oracles through the module
globals ``_GRAD`` / ``_LOSS``. The built-in oracles share one named-tuple layout
(:class:`BuiltinData`, built by :func:`pack`) and a switch on its ``kind``
(:func:`builtin_grad`, :func:`builtin_loss`), so :data:`run_builtin` has one signature per dtype
and is cached on disk. The driver's other arguments come in named tuples too
(:class:`ReplicaArrays`, :class:`Hyper`, :class:`RecordBuffers`). :func:`driver_for` makes a
variant of the same body bound to user-defined oracles (compiled once per oracle and process, not cacheable).
The float math flags allow re-association (vectorized sums) but keep NaN/Inf semantics, which the
divergence check relies on.
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from sgdsim._rng import fill_standard_normal, randbelow
from sgdsim.problems.random_potential import rff_grad_into, rff_loss

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


# --- quadratics (eigenbasis): g_i = a_i (z_i − z*_i) + std_i ξ_i -------------------------------
@njit(inline="always", fastmath=FASTMATH)
def quad_diag_grad(data, th, g, s, iwork, fwork):
    a, zstar, std = data.curvature, data.minimum, data.noise_std
    if data.noisy:
        xi = fwork[: th.shape[0]]
        fill_standard_normal(s, xi)
        for i in range(th.shape[0]):
            g[i] = a[i] * (th[i] - zstar[i]) + std[i] * xi[i]
    else:
        for i in range(th.shape[0]):
            g[i] = a[i] * (th[i] - zstar[i])


@njit(inline="always", fastmath=FASTMATH)
def quad_loss(data, th):
    a = data.curvature
    zstar = data.minimum
    acc = 0.0
    for i in range(th.shape[0]):
        dz = np.float64(th[i]) - np.float64(zstar[i])
        acc += np.float64(a[i]) * dz * dz
    return 0.5 * acc


@njit(inline="always", fastmath=FASTMATH)
def quad_full_grad(data, th, g, s, iwork, fwork):
    """Correlated noise: g = a ⊙ (z − z*) + L ξ with L Lᵀ = C/B."""
    a, zstar, chol = data.curvature, data.minimum, data.noise_chol
    d = th.shape[0]
    fill_standard_normal(s, fwork[:d])
    for i in range(d):
        acc = a[i] * (th[i] - zstar[i])
        for j in range(d):
            acc += chol[i, j] * fwork[j]
        g[i] = acc


# --- linear regression with real minibatches -------------------------------------------------
@njit(inline="always")
def _draw_index(mode, s, iwork, j, n, b):
    """Index of the j-th sample of the current batch (modes as in lowering.SAMPLINGS)."""
    if mode == 0:  # full batch
        return j
    if mode == 1:  # with replacement
        return randbelow(s, n)
    if mode == 2:  # B distinct: partial Fisher–Yates on the replica's permutation
        k = j + randbelow(s, n - j)
        tmp = iwork[j]
        iwork[j] = iwork[k]
        iwork[k] = tmp
        return iwork[j]
    # mode 3, epoch shuffle: iwork[n] is the position in the current permutation
    if j == 0 and iwork[n] + b > n:
        for i in range(n - 1, 0, -1):
            k = randbelow(s, i + 1)
            tmp = iwork[i]
            iwork[i] = iwork[k]
            iwork[k] = tmp
        iwork[n] = 0
    idx = iwork[iwork[n] + j]
    if j == b - 1:
        iwork[n] += b
    return idx


@njit(inline="always", fastmath=FASTMATH)
def _residual(xk, th, yk, zero):
    """x_kᵀθ − y_k in the run dtype."""
    acc = zero
    for i in range(th.shape[0]):
        acc += xk[i] * th[i]
    return acc - yk


@njit(inline="always", fastmath=FASTMATH)
def linreg_grad(data, th, g, s, iwork, fwork):
    """g = (1/B) Σ_{n∈batch} (x_nᵀθ − y_n) x_n.

    Rows go four at a time: four residuals accumulate side by side in one pass over θ (four
    independent FMA chains instead of one latency-bound chain) and g is read and written once per
    four rows. The batch indices are drawn in the same order as one at a time, so a seed gives
    the same batches; only the rounding of the sums differs (W1: 1.4× the one-row loop in
    float32, 1.2–1.8× in float64; benchmarks/w1_w2_ensemble_sgd.py)."""
    x, y, b, mode = data.X, data.y, data.batch, data.mode
    n, d = x.shape
    g[0] = b
    bf = g[0]  # B and 0 in the run dtype: int literals would make the float32 math float64
    for i in range(d):
        g[i] = 0.0
    zero = g[0]
    j = 0
    while j + 4 <= b:
        k0 = _draw_index(mode, s, iwork, j, n, b)
        k1 = _draw_index(mode, s, iwork, j + 1, n, b)
        k2 = _draw_index(mode, s, iwork, j + 2, n, b)
        k3 = _draw_index(mode, s, iwork, j + 3, n, b)
        r0 = zero
        r1 = zero
        r2 = zero
        r3 = zero
        for i in range(d):
            ti = th[i]
            r0 += x[k0, i] * ti
            r1 += x[k1, i] * ti
            r2 += x[k2, i] * ti
            r3 += x[k3, i] * ti
        r0 -= y[k0]
        r1 -= y[k1]
        r2 -= y[k2]
        r3 -= y[k3]
        for i in range(d):
            g[i] += r0 * x[k0, i] + r1 * x[k1, i] + r2 * x[k2, i] + r3 * x[k3, i]
        j += 4
    while j < b:
        k = _draw_index(mode, s, iwork, j, n, b)
        r = _residual(x[k], th, y[k], zero)
        for i in range(d):
            g[i] += r * x[k, i]
        j += 1
    for i in range(d):
        g[i] /= bf


@njit(inline="always", fastmath=FASTMATH)
def linreg_loss(data, th):
    """L(θ) = L(ŵ) + ½ (θ − ŵ)ᵀ H (θ − ŵ): exact for least squares, O(d²). H is PSD: a form
    made slightly negative by rounding (a singular H, interpolation) counts as 0, so the loss
    never goes below the minimum L(ŵ)."""
    h, w, lmin = data.hessian, data.solution, data.min_loss
    d = th.shape[0]
    acc = 0.0
    for i in range(d):
        di = np.float64(th[i]) - w[i]
        row = 0.0
        for j in range(d):
            row += h[i, j] * (np.float64(th[j]) - w[j])
        acc += di * row
    return lmin + 0.5 * max(acc, 0.0)


@njit(inline="always", fastmath=FASTMATH)
def linreg_gauss_grad(data, th, g, s, iwork, fwork):
    """Full gradient + Gaussian noise with the exact minibatch covariance Σ(θ)/B.

    noise = (B N)^(-1/2) Σ_n ζ_n (r_n x_n − ∇L),  ζ_n ~ N(0, 1) iid.
    """
    x, y, b = data.X, data.y, data.batch
    n, d = x.shape
    for i in range(d):
        g[i] = 0.0
    zsum = 0.0
    noise = fwork[:d]
    zeta = fwork[d : d + n]
    fill_standard_normal(s, zeta)
    for i in range(d):
        noise[i] = 0.0
    for k in range(n):
        r = x[k, 0] * th[0]
        for i in range(1, d):
            r += x[k, i] * th[i]
        r -= y[k]
        z = zeta[k]
        zsum += z
        zr = z * r
        for i in range(d):
            g[i] += r * x[k, i]
            noise[i] += zr * x[k, i]
    scale = 1.0 / np.sqrt(b * n)
    for i in range(d):
        gi = g[i] / n
        g[i] = gi + scale * (noise[i] - zsum * gi)


# --- random-feature potentials: f(θ) = Σ_m amp_m cos(W_m·θ + b_m) ------------------------------
@njit(inline="always", fastmath=FASTMATH)
def _rff_rows(data, iwork):
    """Rows of this replica's field in the stacked (F·M, d) feature matrix."""
    m = data.features
    f = iwork[0] if data.per_replica else 0
    return f * m, (f + 1) * m


@njit(inline="always", fastmath=FASTMATH)
def rff_grad(data, th, g, s, iwork, fwork):
    """g = −Σ_m amp_m sin(W_m·θ + b_m) W_m (+ isotropic noise of std ``data.rff_std``)."""
    lo, hi = _rff_rows(data, iwork)
    rff_grad_into(th, data.W[lo:hi], data.b[lo:hi], data.amp[lo:hi], g)
    std = data.rff_std
    if std != 0:
        d = th.shape[0]
        xi = fwork[:d]
        fill_standard_normal(s, xi)
        for i in range(d):
            g[i] += std * xi[i]


@njit(inline="always", fastmath=FASTMATH)
def rff_loss_of(data, th, iwork):
    lo, hi = _rff_rows(data, iwork)
    return rff_loss(th, data.W[lo:hi], data.b[lo:hi], data.amp[lo:hi])


# --- built-in dispatch ------------------------------------------------------------------------
KINDS = {"quad_diag": 0, "quad_full": 1, "linreg": 2, "linreg_gauss": 3, "rff": 4}


class BuiltinData(NamedTuple):
    """What the built-in oracles read, by name (one layout for every kind, so that the driver has
    one signature per dtype; a kind leaves the others' arrays empty). Vectors and matrices
    marked "run" are in the run dtype, the rest float64."""

    kind: int  # KINDS code
    curvature: np.ndarray  # quadratics: eigenvalues a (d,), run
    minimum: np.ndarray  # quadratics: z* (d,), run
    noise_std: np.ndarray  # quad_diag: per-coordinate noise std (d,), run
    noise_chol: np.ndarray  # quad_full: L with L Lᵀ = C/B (d, d), run
    noisy: bool  # quad_diag: any noise_std > 0
    X: np.ndarray  # linreg: data (N, d), run
    y: np.ndarray  # linreg: targets (N,), run
    hessian: np.ndarray  # linreg: XᵀX/N (d, d), float64
    solution: np.ndarray  # linreg: least-squares ŵ (d,), float64
    min_loss: float  # linreg: L(ŵ)
    batch: int  # linreg: B
    mode: int  # linreg: sampling code (lowering.SAMPLINGS)
    W: np.ndarray  # rff: stacked frequencies (F·M, d), run
    b: np.ndarray  # rff: phases (F·M,), run
    amp: np.ndarray  # rff: amplitudes (F·M,), run
    rff_std: float  # rff: isotropic gradient-noise std
    features: int  # rff: M per field
    per_replica: bool  # rff: one field per replica


def _arr(x, dt, ndim):
    # always a fresh writable C array: a read-only view would be typed differently by Numba and
    # compile (and cache) a second copy of the driver
    if x is None:
        return np.zeros((0,) * ndim, dtype=dt)
    return np.array(x, dtype=dt, order="C", copy=True)


def pack(kind: str, dtype, **fields) -> BuiltinData:
    """The :class:`BuiltinData` of ``kind``: the given fields (cast to their dtype), the others
    empty."""
    run = {"curvature": 1, "minimum": 1, "noise_std": 1, "noise_chol": 2, "X": 2, "y": 1, "W": 2,
           "b": 1, "amp": 1}  # fmt: skip
    f64 = {"hessian": 2, "solution": 1}
    unknown = set(fields) - set(BuiltinData._fields)
    if unknown:
        raise TypeError(f"unknown BuiltinData fields {sorted(unknown)}")
    vals = {name: _arr(fields.get(name), dtype, nd) for name, nd in run.items()}
    vals |= {name: _arr(fields.get(name), np.float64, nd) for name, nd in f64.items()}
    return BuiltinData(
        kind=KINDS[kind], noisy=bool(fields.get("noisy", False)),
        min_loss=float(fields.get("min_loss", 0.0)), batch=int(fields.get("batch", 0)),
        mode=int(fields.get("mode", 0)), rff_std=float(fields.get("rff_std", 0.0)),
        features=int(fields.get("features", 0)), per_replica=bool(fields.get("per_replica", False)),
        **vals,
    )  # fmt: skip


class ReplicaArrays(NamedTuple):
    """Per-replica state of the driver, (R, ·) arrays advanced in place."""

    theta: np.ndarray  # (R, d) run dtype
    buf: np.ndarray  # (R, d) momentum buffer, run dtype
    theta0: np.ndarray  # (R, d) start (for dist2), run dtype
    states: np.ndarray  # (R, 4) uint64 xoshiro256++ streams
    iwork: np.ndarray  # (R, k) int64 sampler state: permutation + epoch position, or field index
    fwork: np.ndarray  # (R, w) float64 scratch (normals)


class Hyper(NamedTuple):
    """The optimizer over one chunk: learning rates and the update's constants."""

    lrs: np.ndarray  # (n_steps,) run dtype
    t0: int  # global index of the chunk's first step
    momentum: float  # β (run dtype)
    damp1: float  # 1 − dampening (run dtype)
    weight_decay: float  # (run dtype)
    one_m_gamma: float  # 1 − γ of the nudge (run dtype)
    nesterov: bool
    fresh_buffer: bool  # buffer starts empty: step 0 sets buf = g (PyTorch)
    nudge_e: np.ndarray  # (d, K) nudge directions, run dtype


class RecordBuffers(NamedTuple):
    """Record buffers (replicas, n_records[, d]) float64, and which are written."""

    every: int
    flags: np.ndarray  # int64 [loss, dist2, step2, velocity2, params]
    loss: np.ndarray
    dist2: np.ndarray
    step2: np.ndarray
    velocity2: np.ndarray
    params: np.ndarray


@njit(inline="always", fastmath=FASTMATH)
def builtin_grad(data, th, g, s, iwork, fwork):
    kind = data.kind
    if kind == 0:
        quad_diag_grad(data, th, g, s, iwork, fwork)
    elif kind == 1:
        quad_full_grad(data, th, g, s, iwork, fwork)
    elif kind == 2:
        linreg_grad(data, th, g, s, iwork, fwork)
    elif kind == 3:
        linreg_gauss_grad(data, th, g, s, iwork, fwork)
    else:
        rff_grad(data, th, g, s, iwork, fwork)


@njit(inline="always", fastmath=FASTMATH)
def builtin_loss(data, th, iwork):
    kind = data.kind
    if kind <= 1:
        return quad_loss(data, th)
    if kind == 4:
        return rff_loss_of(data, th, iwork)
    return linreg_loss(data, th)


# --- the driver --------------------------------------------------------------------------------
def _drive(data, reps, hyp, rec, div_step, threshold):
    """Advance all replicas from step ``hyp.t0`` by ``len(hyp.lrs)`` steps (``reps`` updated in
    place).

    ``hyp.fresh_buffer``: the momentum buffer starts empty, so step 0 sets it to the gradient
    (PyTorch's first step); otherwise ``buf`` holds a given initial buffer and step 0 is an
    ordinary step. Records are written at global steps that are multiples of ``rec.every`` into
    column step // every. ``div_step[r] ≥ 0`` marks a diverged replica (the step at which ‖θ‖²
    first exceeded ``threshold`` or became non-finite); it is not advanced further.
    """
    theta, buf, theta0, states, iwork, fwork = reps
    lrs, t0, nudge_e = hyp.lrs, hyp.t0, hyp.nudge_e
    nesterov, fresh_buffer = hyp.nesterov, hyp.fresh_buffer
    every, flags = rec.every, rec.flags
    rec_loss, rec_dist2, rec_step2 = rec.loss, rec.dist2, rec.step2
    rec_vel2, rec_params = rec.velocity2, rec.params
    n_rep, d = theta.shape
    n_steps = lrs.shape[0]
    k_nudge = nudge_e.shape[1]
    beta = hyp.momentum
    damp1 = hyp.damp1
    wd = hyp.weight_decay
    one_m_gamma = hyp.one_m_gamma
    for r in prange(n_rep):
        if div_step[r] >= 0:
            continue
        th = theta[r]
        b = buf[r]
        s = states[r]
        g = np.empty_like(th)
        zero = np.zeros(1, dtype=th.dtype)[0]  # a literal 0 would promote float32 sums to float64
        proj = np.empty(max(k_nudge, 1), dtype=th.dtype)
        if t0 == 0:
            _record(data, th, b, theta0[r], iwork[r], 0.0, flags, r, 0,
                    rec_loss, rec_dist2, rec_step2, rec_vel2, rec_params)  # fmt: skip
            rec_step2[r, 0] = np.nan
        for k in range(n_steps):
            t = t0 + k
            lr = lrs[k]
            _GRAD(data, th, g, s, iwork[r], fwork[r])
            if wd != 0:
                for i in range(d):
                    g[i] += wd * th[i]
            if k_nudge > 0:
                for q in range(k_nudge):
                    acc = zero
                    for i in range(d):
                        acc += nudge_e[i, q] * g[i]
                    proj[q] = one_m_gamma * acc
                for i in range(d):
                    acc = zero
                    for q in range(k_nudge):
                        acc += nudge_e[i, q] * proj[q]
                    g[i] -= acc
            step2 = zero  # accumulated in the run dtype (keeps float32 loops vectorized)
            if beta == 0:
                for i in range(d):
                    du = lr * g[i]
                    th[i] -= du
                    step2 += du * du
            else:
                if t == 0 and fresh_buffer:
                    for i in range(d):
                        b[i] = g[i]
                else:
                    for i in range(d):
                        b[i] = beta * b[i] + damp1 * g[i]
                if nesterov:
                    for i in range(d):
                        du = lr * (g[i] + beta * b[i])
                        th[i] -= du
                        step2 += du * du
                else:
                    for i in range(d):
                        du = lr * b[i]
                        th[i] -= du
                        step2 += du * du
            nrm = zero
            for i in range(d):
                nrm += th[i] * th[i]
            if not (nrm <= threshold):
                div_step[r] = t + 1
                break
            if (t + 1) % every == 0:
                _record(data, th, b, theta0[r], iwork[r], step2, flags, r, (t + 1) // every,
                        rec_loss, rec_dist2, rec_step2, rec_vel2, rec_params)  # fmt: skip


@njit(inline="always")
def _record(data, th, b, th0, iw, step2, flags, r, j, rec_loss, rec_dist2, rec_step2,
            rec_vel2, rec_params):  # fmt: skip
    d = th.shape[0]
    if flags[0]:
        rec_loss[r, j] = _LOSS(data, th, iw)
    if flags[1]:
        acc = 0.0
        for i in range(d):
            dd = np.float64(th[i]) - np.float64(th0[i])
            acc += dd * dd
        rec_dist2[r, j] = acc
    if flags[2]:
        rec_step2[r, j] = step2
    if flags[3]:
        acc = 0.0
        for i in range(d):
            acc += np.float64(b[i]) * np.float64(b[i])
        rec_vel2[r, j] = acc
    if flags[4]:
        for i in range(d):
            rec_params[r, j, i] = th[i]


_GRAD = builtin_grad
_LOSS = builtin_loss

#: the driver with the built-in oracles: compiled once per dtype, cached on disk
run_builtin = njit(parallel=True, cache=True, fastmath=FASTMATH)(_drive)


def driver_for(grad_fn, loss_fn):
    """The same driver bound to other oracles (e.g. closures over a user's functions)."""
    glb = {**_drive.__globals__, "_GRAD": grad_fn, "_LOSS": loss_fn}
    rec = types.FunctionType(_record.py_func.__code__, glb, "_record")
    glb["_record"] = njit(inline="always")(rec)
    body = types.FunctionType(_drive.__code__, glb, "_drive_custom")
    return njit(parallel=True, fastmath=FASTMATH)(body)
