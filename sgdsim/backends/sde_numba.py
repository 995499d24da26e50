"""The Numba backend of the SDE integrators (:mod:`sgdsim.sde`): compiled ensemble kernels.

Every kernel advances ``replicas`` independent paths in parallel (``prange`` over paths), each
path with its own xoshiro256++ stream from :mod:`sgdsim._rng`, so the same ``seed`` gives
bitwise identical paths whatever the thread count. Each step draws its ``d`` (or ``2d``) normals
in stream order (:func:`sgdsim._rng.fill_standard_normal`, generator state in registers); with
diagonal stiffness and noise, BAOAB runs blocks of up to 256 paths as SIMD lanes
(:func:`sgdsim._rng.normal_lanes`; the same numbers). A user gradient is compiled into the
kernel once per process (not cached on disk); it allocates its return array each call, which
costs ~50 ns: quadratic models use built-in allocation-free gradients.

:class:`NumbaSDERunner` is the runner contract of :mod:`sgdsim.backends.base`
(``Runner(spec).advance(state, start, n_steps, records) -> state``) over these kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange
from numba.core.registry import CPUDispatcher

from sgdsim._rng import fill_standard_normal, normal_lanes, replica_states
from sgdsim.backends.base import SDERecords, SDESpec, SDEState
from sgdsim.problems.random_potential import rff_grad_into

__all__ = ["NumbaSDERunner"]

# Re-association and contraction only: NaN/Inf semantics are kept (divergence stays visible).
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}

# Small functions are plain @njit: LLVM inlines them into the kernels (Numba-IR inlining would
# only lengthen compilation).
@njit(cache=True)
def _grad_dense(x, p, out):
    """Linear drift ``M (x − x*)`` with ``M = p[:n²]`` (row-major) and ``x* = p[n²:]``."""
    n = x.size
    nn = n * n
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += p[i * n + j] * (x[j] - p[nn + j])
        out[i] = acc


@njit(cache=True)
def _record(k, r, x, v, x0, rec_x, rec_v, rec_s, codes):
    """Write the requested records of one path at record index ``k``."""
    if rec_x.shape[0] > 0:
        for i in range(x.size):
            rec_x[k, r, i] = x[i]
    if rec_v.shape[0] > 0:
        for i in range(v.size):
            rec_v[k, r, i] = v[i]
    for j in range(codes.size):
        acc = 0.0
        if codes[j] == 0:
            for i in range(x.size):
                d = x[i] - x0[i]
                acc += d * d
        elif codes[j] == 1:
            for i in range(x.size):
                acc += x[i] * x[i]
        else:
            for i in range(v.size):
                acc += v[i] * v[i]
        rec_s[k, r, j] = acc


@njit(cache=True)
def _apply_noise(y, c, nd, nf, diag, z):
    """``y ← c∘y + N z`` with ``N = diag(nd)`` if ``diag`` else the dense factor ``nf``."""
    n = y.size
    if diag:
        for i in range(n):
            y[i] = c[i] * y[i] + nd[i] * z[i]
    else:
        for i in range(n):
            acc = c[i] * y[i]
            for j in range(n):
                acc += nf[i, j] * z[j]
            y[i] = acc


@njit(cache=True)
def _check_divergence(x, v, div, r, step, thr):
    """``div[r] = step`` the first time ‖x‖² + ‖v‖² is non-finite or above ``thr`` (first-order
    schemes pass an empty ``v``)."""
    if div[r] >= 0:
        return
    acc = 0.0
    for i in range(x.size):
        acc += x[i] * x[i]
    for i in range(v.size):
        acc += v[i] * v[i]
    if not (acc <= thr):
        div[r] = step


# --- BAOAB sub-steps (scalar, per coordinate) ----------------------------------------------------
@njit(inline="always")
def _kick(v, g, half_dt):
    """B: ``v ← v − (h/2) ∂U``."""
    return v - half_dt * g


@njit(inline="always")
def _drift(x, v, half_dt):
    """A: ``x ← x + (h/2) v``."""
    return x + half_dt * v


@njit(inline="always")
def _ou(v, c, noise, z):
    """O (diagonal noise): ``v ← e^{−γh} v + σ_O z``; the dense case goes through _apply_noise."""
    return c * v + noise * z


# --- one path of each scheme (shared by the cached built-in and the user-gradient kernels) ----
@njit(inline="always")  # Numba-IR inlining keeps the caller cacheable with a function argument
def _em_path(grad, p, x, x0, s, dt, steps, every, k0, c, nd, nf, diag, n_pos, r, rec_x, rec_v,
             rec_s, codes, div, thr):  # fmt: skip
    """EM for one path with drift ``−grad``; ``x`` (state) is updated in place. ``x0``: the
    run's initial positions; ``k0``: record index of this piece's first step (0: run start);
    ``div[r]``: set to the first step whose ‖state‖² is non-finite or above ``thr``."""
    n = x.size
    g = np.empty(n)
    z = np.empty(n)
    if k0 == 0:
        _record(0, r, x[:n_pos], x[n_pos:], x0, rec_x, rec_v, rec_s, codes)
    cnt = 0
    kr = k0
    for step in range(k0 * every + 1, k0 * every + steps + 1):
        grad(x, p, g)
        fill_standard_normal(s, z)  # all of this step's normals, in stream order
        for i in range(n):
            x[i] -= dt * g[i]
        _apply_noise(x, c, nd, nf, diag, z)
        _check_divergence(x, x[:0], div, r, step, thr)
        cnt += 1
        if cnt == every:  # a counter: `k % every` (a division) costs ~10%
            cnt = 0
            kr += 1
            _record(kr, r, x[:n_pos], x[n_pos:], x0, rec_x, rec_v, rec_s, codes)


@njit(inline="always")
def _baoab_path(grad, p, x, v, x0, s, dt, steps, every, k0, c, nd, nf, diag, r, rec_x, rec_v,
                rec_s, codes, div, thr):  # fmt: skip
    """BAOAB for one path, any gradient, any noise factor: vector sub-steps B, A, O, A, B.
    ``x0``, ``k0`` as in :func:`_em_path`."""
    n = x.size
    g = np.empty(n)
    z = np.empty(n)
    h = 0.5 * dt
    grad(x, p, g)
    if k0 == 0:
        _record(0, r, x, v, x0, rec_x, rec_v, rec_s, codes)
    cnt = 0
    kr = k0
    for step in range(k0 * every + 1, k0 * every + steps + 1):
        fill_standard_normal(s, z)  # all of this step's normals, in stream order
        for i in range(n):
            v[i] = _kick(v[i], g[i], h)  # B
        for i in range(n):
            x[i] = _drift(x[i], v[i], h)  # A
        _apply_noise(v, c, nd, nf, diag, z)  # O
        for i in range(n):
            x[i] = _drift(x[i], v[i], h)  # A
        grad(x, p, g)  # first-same-as-last: this force also serves the next step's first B
        for i in range(n):
            v[i] = _kick(v[i], g[i], h)  # B
        _check_divergence(x, v, div, r, step, thr)
        cnt += 1
        if cnt == every:  # a counter: `k % every` (a division) costs ~10%
            cnt = 0
            kr += 1
            _record(kr, r, x, v, x0, rec_x, rec_v, rec_s, codes)


def _lanes_for(d: int) -> int:
    """Paths per SIMD block: 256 for small d, fewer as d grows (the block's (d, lanes) state
    should stay within the L2 cache), at least 16. Results do not depend on it."""
    return int(max(16, min(256, 8192 // max(d, 1))))


@njit(cache=True, fastmath=_FASTMATH)
def _baoab_separable_block(kd, xs, X, V, X0, states, r0, lanes, dt, steps, every, k0, c, nd, rec_x,
                           rec_v, rec_s, codes, div, thr):  # fmt: skip
    """BAOAB for paths ``r0 … r0+m−1`` when K and the noise are diagonal, the paths as SIMD lanes.

    Per step and coordinate ``i``: every path draws its next normal from its own stream
    (:func:`normal_lanes`; the order within a path is coordinate by coordinate, as in the
    general kernel), then B, A, O, A, B run across the paths (the force ``k_i (x_i − x*_i)`` is
    recomputed instead of stored). The block's state lives in local (d, m) arrays, so nothing
    aliases and the lane loops vectorize."""
    m = min(lanes, X.shape[0] - r0)
    n = X.shape[1]
    # block-local transposes, filled by plain loops (np.ascontiguousarray(….T) defeats LLVM's
    # vectorizer downstream: 2.2× slower)
    x = np.empty((n, m))
    v = np.empty((n, m))
    x0 = np.empty((n, m))
    S = np.empty((4, m), dtype=np.uint64)
    for j in range(m):
        for i in range(n):
            x[i, j] = X[r0 + j, i]
            v[i, j] = V[r0 + j, i]
            x0[i, j] = X0[r0 + j, i]
        for w in range(4):
            S[w, j] = states[r0 + j, w]
    z = np.empty(m)
    u_buf = np.empty(m)
    layer_buf = np.empty(m, dtype=np.int64)
    s_tmp = np.empty(4, dtype=np.uint64)
    h = 0.5 * dt
    if k0 == 0:
        for j in range(m):
            _record(0, r0 + j, x[:, j], v[:, j], x0[:, j], rec_x, rec_v, rec_s, codes)
    norm2 = np.empty(m)
    first_bad = np.empty(m, dtype=np.int64)
    for j in range(m):
        first_bad[j] = div[r0 + j]
    cnt = 0
    kr = k0
    for step in range(k0 * every + 1, k0 * every + steps + 1):
        norm2[:] = 0.0
        for i in range(n):
            normal_lanes(S, z, u_buf, layer_buf, s_tmp)
            ki, xsi, ci, ni = kd[i], xs[i], c[i], nd[i]
            for j in range(m):
                vj = _kick(v[i, j], ki * (x[i, j] - xsi), h)  # B
                xj = _drift(x[i, j], vj, h)  # A
                vj = _ou(vj, ci, ni, z[j])  # O
                xj = _drift(xj, vj, h)  # A
                vj = _kick(vj, ki * (xj - xsi), h)  # B
                v[i, j] = vj
                x[i, j] = xj
                norm2[j] += xj * xj + vj * vj
        for j in range(m):  # branch-free: the first step whose ‖(x, v)‖² is bad (or NaN)
            fresh = first_bad[j] < 0 and not (norm2[j] <= thr)
            first_bad[j] = step if fresh else first_bad[j]
        cnt += 1
        if cnt == every:  # a counter: `k % every` (a division) costs ~10%
            cnt = 0
            kr += 1
            for j in range(m):
                _record(kr, r0 + j, x[:, j], v[:, j], x0[:, j], rec_x, rec_v, rec_s, codes)
    for j in range(m):
        for i in range(n):
            X[r0 + j, i] = x[i, j]
            V[r0 + j, i] = v[i, j]
        for w in range(4):
            states[r0 + j, w] = S[w, j]
        div[r0 + j] = first_bad[j]


@njit(cache=True, parallel=True)
def _em_linear(p, X, X0, states, dt, steps, every, k0, c, nd, nf, diag, n_pos, rec_x, rec_v, rec_s,
               codes, div, thr):  # fmt: skip
    for r in prange(X.shape[0]):
        _em_path(_grad_dense, p, X[r], X0[r], states[r], dt, steps, every, k0, c, nd, nf, diag,
                 n_pos, r, rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip


@njit(parallel=True)
def _em_user(grad, p, X, X0, states, dt, steps, every, k0, c, nd, nf, diag, n_pos, rec_x, rec_v,
             rec_s, codes, div, thr):  # fmt: skip
    for r in prange(X.shape[0]):
        _em_path(grad, p, X[r], X0[r], states[r], dt, steps, every, k0, c, nd, nf, diag, n_pos,
                 r, rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _baoab_quadratic(lanes, kd, p, xs, X, V, X0, states, dt, steps, every, k0, c, nd, nf, diag,
                     rec_x, rec_v, rec_s, codes, div, thr):  # fmt: skip
    """``lanes > 0``: the separable kernel in blocks of that many paths; else the general one."""
    if lanes > 0:
        for b in prange((X.shape[0] + lanes - 1) // lanes):
            _baoab_separable_block(kd, xs, X, V, X0, states, b * lanes, lanes, dt, steps, every,
                                   k0, c, nd, rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip
        return
    for r in prange(X.shape[0]):
        _baoab_path(_grad_dense, p, X[r], V[r], X0[r], states[r], dt, steps, every, k0, c, nd, nf,
                    diag, r, rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip


@njit(parallel=True)
def _baoab_user(grad, p, X, V, X0, states, dt, steps, every, k0, c, nd, nf, diag, rec_x, rec_v,
                rec_s, codes, div, thr):  # fmt: skip
    for r in prange(X.shape[0]):
        _baoab_path(grad, p, X[r], V[r], X0[r], states[r], dt, steps, every, k0, c, nd, nf, diag,
                    r, rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip


@njit(cache=True, parallel=True)
def _exact_kernel(E, nf, xs, X, X0, states, steps, every, k0, n_pos, rec_x, rec_v, rec_s, codes, div,
                  thr):  # fmt: skip
    n = X.shape[1]
    for r in prange(X.shape[0]):
        x = X[r]
        x0 = X0[r]
        s = states[r]
        y = np.empty(n)
        z = np.empty(n)
        if k0 == 0:
            _record(0, r, x[:n_pos], x[n_pos:], x0, rec_x, rec_v, rec_s, codes)
        cnt = 0
        kr = k0
        for step in range(k0 * every + 1, k0 * every + steps + 1):
            fill_standard_normal(s, z)  # all of this step's normals, in stream order
            for i in range(n):
                y[i] = x[i] - xs[i]
            for i in range(n):
                acc = xs[i]
                for j in range(n):
                    acc += E[i, j] * y[j] + nf[i, j] * z[j]
                x[i] = acc
            _check_divergence(x, x[:0], div, r, step, thr)
            cnt += 1
            if cnt == every:  # a counter: `k % every` (a division) costs ~10%
                cnt = 0
                kr += 1
                _record(kr, r, x[:n_pos], x[n_pos:], x0, rec_x, rec_v, rec_s, codes)


@njit(cache=True)
def _grad_rff(x, p, out):
    """A shared random-feature potential's gradient; ``p = [M, d, W (row-major), b, amp]``."""
    m = int(p[0])
    d = int(p[1])
    w_end = 2 + m * d
    rff_grad_into(x, p[2:w_end].reshape((m, d)), p[w_end : w_end + m], p[w_end + m : w_end + 2 * m], out)


_USER_ADAPTERS: dict = {}


def _adapt_grad(grad: Callable) -> CPUDispatcher:
    """Wrap ``grad(x) -> array`` as the kernels' in-place form ``f(x, p, out)`` (memoized)."""
    if not isinstance(grad, CPUDispatcher):
        raise TypeError(
            f"`grad` must be a Numba @njit function grad(x) -> array, got {type(grad).__name__}; "
            "decorate it with numba.njit"
        )
    if grad not in _USER_ADAPTERS:

        @njit
        def f(x, p, out):
            out[:] = grad(x)

        _USER_ADAPTERS[grad] = f
    return _USER_ADAPTERS[grad]


def _is_diagonal(M: np.ndarray) -> bool:
    return not np.any(M - np.diag(np.diag(M)))


def _pack_linear(M: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Parameters of :func:`_grad_dense`: ``M`` row-major, then ``x*``."""
    return np.concatenate([M.ravel(), xs])


def _compiled_gradient(spec: SDESpec) -> tuple[CPUDispatcher, np.ndarray]:
    """The kernels' in-place gradient ``f(x, p, out)`` and its parameters ``p`` for a nonlinear
    potential (a shared random-feature field, a CustomProblem, or a user's njit gradient)."""
    pot = spec.potential
    if pot.kind == "rff":
        W, b, amp = pot.arrays["W"], pot.arrays["b"], pot.arrays["amp"]
        m, d = W.shape
        return _grad_rff, np.concatenate([[m, d], W.ravel(), b, amp])
    grad = pot.problem.grad if pot.kind == "custom" else pot.problem
    return _adapt_grad(grad), np.zeros(1)


class NumbaSDERunner:
    """Compiled SDE kernels for one run (float64 only)."""

    name = "numba"
    supports_float32 = False

    def __init__(self, spec: SDESpec):
        self.spec = spec
        self.grad = None
        if spec.potential.kind != "linear":
            self.grad, self.grad_params = _compiled_gradient(spec)

    def init(self) -> SDEState:
        """The start state: the spec's initial arrays (copied), fresh streams, no divergence."""
        s = self.spec
        X = s.x0.copy()
        V = None if s.v0 is None else s.v0.copy()
        return SDEState(X, V, np.full(X.shape[0], -1, dtype=np.int64), replica_states(s.seed, X.shape[0]))

    def advance(self, state: SDEState, start: int, n_steps: int, rec: SDERecords) -> SDEState:
        """Steps ``start+1 … start+n_steps`` (``start`` a multiple of ``rec.every``); the arrays of
        ``state`` are advanced in place and returned in the new state."""
        s = self.spec
        X, V, div, states = state.x, state.v, state.diverged_at, state.rng
        k0 = start // rec.every
        X0 = rec.origin(X[:, : s.n_pos])
        args = (rec.x, rec.v, rec.s, rec.codes, div, s.threshold)
        if s.method == "euler_maruyama":
            ones = np.ones(X.shape[1])
            if self.grad is None:
                _em_linear(_pack_linear(s.potential.arrays["M"], s.potential.arrays["x_star"]), X, X0,
                           states, s.dt, n_steps, rec.every, k0, ones, s.nd, s.nf, s.diag, s.n_pos,
                           *args)  # fmt: skip
            else:
                _em_user(self.grad, self.grad_params, X, X0, states, s.dt, n_steps, rec.every, k0,
                         ones, s.nd, s.nf, s.diag, s.n_pos, *args)  # fmt: skip
        elif s.method == "baoab":
            if self.grad is None:
                K, xs = s.potential.arrays["M"], s.potential.arrays["x_star"]
                lanes = _lanes_for(X.shape[1]) if s.diag and _is_diagonal(K) else 0
                _baoab_quadratic(lanes, np.diag(K).copy(), _pack_linear(K, xs), xs, X, V, X0,
                                 states, s.dt, n_steps, rec.every, k0, s.c, s.nd, s.nf, s.diag,
                                 *args)  # fmt: skip
            else:
                _baoab_user(self.grad, self.grad_params, X, V, X0, states, s.dt, n_steps,
                            rec.every, k0, s.c, s.nd, s.nf, s.diag, *args)  # fmt: skip
        else:
            _exact_kernel(s.potential.arrays["M"], s.nf, s.potential.arrays["x_star"], X, X0, states,
                          n_steps, rec.every, k0, s.n_pos, *args)  # fmt: skip
        return SDEState(X, V, div, states)

    def final(self, state: SDEState) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(X, V, diverged_at)`` on the host in float64."""
        return state.x, state.v, state.diverged_at
