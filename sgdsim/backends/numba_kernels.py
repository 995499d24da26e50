"""Compiled Numba kernels of the ensemble engine.

One driver, :func:`run_chunk`, advances every replica (``prange``, one replica per iteration, each
with its own xoshiro256++ stream) for a chunk of steps: gradient oracle → optimizer → divergence
check → records. The gradient oracles below share one signature

    grad_fn(data, theta, g, s, iwork, fwork)   # writes ∇L_B(θ) (+ noise) into g
    loss_fn(data, theta, iwork) -> float64     # full-batch loss, accumulated in float64

The driver body is written once (:func:`_drive`) and calls its oracles through the module
globals ``_GRAD`` / ``_LOSS``. The built-in oracles share one data layout (see :func:`pack`) and
a switch on ``kind`` (:func:`builtin_grad`, :func:`builtin_loss`), so :data:`run_builtin` has one
signature per dtype and is cached on disk. :func:`driver_for` makes a variant of the same body
bound to user-defined oracles (compiled once per oracle and process, not cacheable).
The float math flags allow re-association (vectorized sums) but keep NaN/Inf semantics, which the
divergence check relies on.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

from sgdsim._rng import fill_standard_normal, randbelow
from sgdsim.problems.random_potential import rff_grad_into, rff_loss

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


# --- quadratics (eigenbasis): g_i = a_i (z_i − z*_i) + std_i ξ_i -------------------------------
@njit(inline="always", fastmath=FASTMATH)
def quad_diag_grad(data, th, g, s, iwork, fwork):
    a, zstar, std = data[0], data[1], data[2]
    if data[6][0] != 0:
        xi = fwork[: th.shape[0]]
        fill_standard_normal(s, xi)
        for i in range(th.shape[0]):
            g[i] = a[i] * (th[i] - zstar[i]) + std[i] * xi[i]
    else:
        for i in range(th.shape[0]):
            g[i] = a[i] * (th[i] - zstar[i])


@njit(inline="always", fastmath=FASTMATH)
def quad_loss(data, th):
    a = data[0]
    zstar = data[1]
    acc = 0.0
    for i in range(th.shape[0]):
        dz = np.float64(th[i]) - np.float64(zstar[i])
        acc += np.float64(a[i]) * dz * dz
    return 0.5 * acc


@njit(inline="always", fastmath=FASTMATH)
def quad_full_grad(data, th, g, s, iwork, fwork):
    """Correlated noise: g = a ⊙ (z − z*) + L ξ with L Lᵀ = C/B."""
    a, zstar, chol = data[0], data[1], data[3]
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
def linreg_grad(data, th, g, s, iwork, fwork):
    """g = (1/B) Σ_{n∈batch} (x_nᵀθ − y_n) x_n."""
    x, y, b, mode = data[3], data[0], data[7][1], data[7][2]
    n, d = x.shape
    for i in range(d):
        g[i] = 0.0
    for j in range(b):
        idx = _draw_index(mode, s, iwork, j, n, b)
        r = x[idx, 0] * th[0]
        for i in range(1, d):
            r += x[idx, i] * th[i]
        r -= y[idx]
        for i in range(d):
            g[i] += r * x[idx, i]
    for i in range(d):
        g[i] /= b


@njit(inline="always", fastmath=FASTMATH)
def linreg_loss(data, th):
    """L(θ) = L(ŵ) + ½ (θ − ŵ)ᵀ H (θ − ŵ): exact for least squares, O(d²)."""
    h, w, lmin = data[4], data[5], data[6]
    d = th.shape[0]
    acc = 0.0
    for i in range(d):
        di = np.float64(th[i]) - w[i]
        row = 0.0
        for j in range(d):
            row += h[i, j] * (np.float64(th[j]) - w[j])
        acc += di * row
    return lmin[0] + 0.5 * acc


@njit(inline="always", fastmath=FASTMATH)
def linreg_gauss_grad(data, th, g, s, iwork, fwork):
    """Full gradient + Gaussian noise with the exact minibatch covariance Σ(θ)/B.

    noise = (B N)^(-1/2) Σ_n ζ_n (r_n x_n − ∇L),  ζ_n ~ N(0, 1) iid.
    """
    x, y, b = data[3], data[0], data[7][1]
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
    m = data[7][1]
    f = iwork[0] if data[7][2] else 0
    return f * m, (f + 1) * m


@njit(inline="always", fastmath=FASTMATH)
def rff_grad(data, th, g, s, iwork, fwork):
    """g = −Σ_m amp_m sin(W_m·θ + b_m) W_m (+ isotropic noise of std data[6][0])."""
    lo, hi = _rff_rows(data, iwork)
    rff_grad_into(th, data[3][lo:hi], data[0][lo:hi], data[1][lo:hi], g)
    std = data[6][0]
    if std != 0:
        d = th.shape[0]
        xi = fwork[:d]
        fill_standard_normal(s, xi)
        for i in range(d):
            g[i] += std * xi[i]


@njit(inline="always", fastmath=FASTMATH)
def rff_loss_of(data, th, iwork):
    lo, hi = _rff_rows(data, iwork)
    return rff_loss(th, data[3][lo:hi], data[0][lo:hi], data[1][lo:hi])


# --- built-in dispatch ------------------------------------------------------------------------
KINDS = {"quad_diag": 0, "quad_full": 1, "linreg": 2, "linreg_gauss": 3, "rff": 4}


def pack(kind, dtype, *, v1=None, v2=None, v3=None, m1=None, m2=None, w=None, s=None, i=()):
    """The built-in data tuple: three run-dtype vectors, a run-dtype matrix, a float64 matrix,
    a float64 vector, float64 scalars and int64 scalars (``i[0]`` is the kind code)."""

    def arr(x, dt, ndim):
        # always a fresh writable C array: a read-only view would be typed differently by Numba
        # and compile (and cache) a second copy of the driver
        if x is None:
            return np.zeros((0,) * ndim, dtype=dt)
        return np.array(x, dtype=dt, order="C", copy=True)

    return (
        arr(v1, dtype, 1), arr(v2, dtype, 1), arr(v3, dtype, 1), arr(m1, dtype, 2),
        arr(m2, np.float64, 2), arr(w, np.float64, 1), arr(s, np.float64, 1),
        np.array([KINDS[kind], *i], dtype=np.int64),
    )  # fmt: skip


@njit(inline="always", fastmath=FASTMATH)
def builtin_grad(data, th, g, s, iwork, fwork):
    kind = data[7][0]
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
    kind = data[7][0]
    if kind <= 1:
        return quad_loss(data, th)
    if kind == 4:
        return rff_loss_of(data, th, iwork)
    return linreg_loss(data, th)


# --- the driver --------------------------------------------------------------------------------
def _drive(
    data,
    theta, buf, theta0, states, iwork, fwork,
    lrs, t0, hyp, nesterov, fresh_buffer, nudge_e,
    every, flags, rec_loss, rec_dist2, rec_step2, rec_vel2, rec_params,
    div_step, threshold,
):  # fmt: skip
    """Advance all replicas from step t0 by len(lrs) steps (state arrays updated in place).

    hyp = [momentum β, 1 − dampening, weight decay, 1 − γ] in the run dtype. ``fresh_buffer``:
    the momentum buffer starts empty, so step 0 sets it to the gradient (PyTorch's first step);
    otherwise ``buf`` holds a given initial buffer and step 0 is an ordinary step.
    flags = [loss, dist2, step2, velocity2, params] as 0/1. Records are written at global steps
    that are multiples of ``every`` into column step // every. ``div_step[r] ≥ 0`` marks a
    diverged replica (the step at which ‖θ‖² first exceeded ``threshold`` or became non-finite);
    it is not advanced further.
    """
    n_rep, d = theta.shape
    n_steps = lrs.shape[0]
    k_nudge = nudge_e.shape[1]
    beta = hyp[0]
    damp1 = hyp[1]
    wd = hyp[2]
    one_m_gamma = hyp[3]
    for r in prange(n_rep):
        if div_step[r] >= 0:
            continue
        th = theta[r]
        b = buf[r]
        s = states[r]
        g = np.empty_like(th)
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
                    acc = g[0] * 0
                    for i in range(d):
                        acc += nudge_e[i, q] * g[i]
                    proj[q] = one_m_gamma * acc
                for i in range(d):
                    acc = g[0] * 0
                    for q in range(k_nudge):
                        acc += nudge_e[i, q] * proj[q]
                    g[i] -= acc
            step2 = lr * 0  # accumulated in the run dtype (keeps float32 loops vectorized)
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
            nrm = lr * 0
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
