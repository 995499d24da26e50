"""Ensemble integrators for Langevin / OU SDEs: Euler–Maruyama, BAOAB and the exact OU transition.

Every integrator advances ``replicas`` independent paths in parallel (Numba ``prange`` over paths),
each path with its own xoshiro256++ stream from :mod:`sgdsim._rng`, so the same ``seed`` gives
bitwise identical paths whatever the thread count. Each step draws its ``d`` (or ``2d``) normals
in stream order (:func:`sgdsim._rng.fill_standard_normal`, generator state in registers); with
diagonal stiffness and noise, BAOAB runs blocks of up to 256 paths as SIMD lanes
(:func:`sgdsim._rng.normal_lanes`; the same numbers). ``backend="numpy"`` (the reference) or
``"cupy"`` (GPU) runs the same schemes as whole-ensemble array code instead
(:mod:`sgdsim.theory.sde_array`, counter-based streams: same law, other numbers). Nothing but the
requested records is stored: positions, velocities and/or scalar observables every ``every`` steps.
Long runs go in pieces under a progress bar; a path whose squared state norm becomes non-finite
or exceeds ``1e20·max(1, ‖start‖², ‖x*‖²)`` is reported with its step (``on_divergence``).

Models
------
* :class:`~sgdsim.theory.langevin.LinearSDE` ``dx = −A(x − x*)dt + √(2D) dW`` (first order);
* :class:`~sgdsim.theory.langevin.UnderdampedLangevin`
  ``dx = v dt, dv = −K(x − x*)dt − Γv dt + √(2D_v) dW`` (second order, phase space ``(x, v)``);
* an sgdsim problem as the potential ``U = L`` (``Quadratic`` and ``LinearRegression`` run as
  their exact linear models; a shared ``GaussianRandomPotential`` and a ``CustomProblem`` through
  their gradients);
* any potential given by a Numba ``@njit`` gradient ``grad(x) -> array`` (shape (d,) to (d,);
  on the array backends a whole-ensemble ``grad(X)``, (R, d) to (R, d)):
  overdamped ``dx = −∇U(x)dt + √(2D) dW`` (Euler–Maruyama) or underdamped
  ``dx = v dt, dv = −∇U(x)dt − Γv dt + √(2D_v) dW`` (BAOAB). A user gradient is compiled into the
  kernel once per process (not cached on disk); it allocates its return array each call, which
  costs ~50 ns: quadratic models use built-in allocation-free gradients.

Scheme summary (``h = dt``; ``ξ ~ N(0, I)`` fresh each step)
--------------------------------------------------------------
* Euler–Maruyama: ``x ← x + h f(x) + √h G ξ`` with ``G Gᵀ = 2D``; strong order 1/2, weak order 1.
* BAOAB (Leimkuhler & Matthews 2013): kick ``B``: ``v ← v − (h/2)∇U(x)``; drift ``A``:
  ``x ← x + (h/2)v``; ``O``: the exact Ornstein–Uhlenbeck velocity update over ``h``,
  ``v ← e^{−Γh}v + N(0, Σ_O)``, ``Σ_O,ij = 2D_v,ij (1 − e^{−(γ_i+γ_j)h})/(γ_i+γ_j)``; then ``A``,
  ``B``. Weak order 2; for a harmonic potential its stationary position covariance is exact.
* Exact OU transition (linear models only): ``y ← e^{−Ah} y + N(0, Σ(h))``, ``y = x − x*``,
  ``Σ(h)`` by Van Loan's block exponential: exact in law for every ``h``.

For linear models, :func:`scheme_transition` gives each scheme's exact one-step linear map, so the
exact moments of the *discretization* (not only of the SDE) are available as a check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numba.core.registry import CPUDispatcher

from sgdsim._progress import chunks
from sgdsim._rng import fill_standard_normal, normal_lanes, replica_states
from sgdsim._validation import (
    as_float_array,
    check_choice,
    check_int,
    check_positive,
    check_psd,
)
from sgdsim.backends import array_namespace
from sgdsim.backends.array_backend import _to_host
from sgdsim.problems import CustomProblem, LinearRegression, Quadratic
from sgdsim.problems.random_potential import GaussianRandomPotential, rff_grad_into
from sgdsim.theory import sde_array
from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin, _matrix_or_diag
from sgdsim.theory.schemes import (
    ou_velocity_step,
    scheme_moments,
    scheme_stationary_covariance,
    scheme_transition,
)
from sgdsim.trajectory import DivergenceError, default_divergence_threshold

__all__ = [
    "SDEPaths",
    "baoab",
    "euler_maruyama",
    "exact_ou",
    "scheme_moments",
    "scheme_stationary_covariance",
    "scheme_transition",
]  # the scheme algebra is sgdsim.theory.schemes's, re-exported here for compatibility

_SCALARS = ("dist2", "x2", "v2")  # ‖x_t − x_0‖², ‖x_t‖², ‖v_t‖²   (x = positions)
_VECTORS = ("x", "v")


# ============================== compiled building blocks ========================================
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


# ================================ Python-side helpers ===========================================
@dataclass(frozen=True)
class SDEPaths:
    """Recorded ensemble of SDE paths.

    Attributes
    ----------
    method : str
        ``"euler_maruyama"``, ``"baoab"`` or ``"exact_ou"``.
    dt : float
        Time step.
    steps : ndarray of int, shape (n_rec,)
        Step indices recorded: ``0, every, 2·every, …``; times are ``steps·dt`` (:attr:`times`).
    records : dict of str to ndarray
        ``"x"``/``"v"``: shape (n_rec, replicas, d); scalars ``"dist2"`` (‖x_t − x_0‖²),
        ``"x2"`` (‖x_t‖²), ``"v2"`` (‖v_t‖²): shape (n_rec, replicas). Positions only (``x``) for
        second-order models; the whole state for first-order ones.
    final_x, final_v : ndarray, shape (replicas, d)
        Final positions / velocities (``final_v`` is None for first-order models).
    run : dict
        What reproduces the numbers: ``seed``, ``backend``, ``dtype``, ``sgdsim_version``.
    diverged_at : ndarray of int, shape (replicas,)
        The first step at which a path's squared state norm was non-finite or above
        ``1e20·max(1, ‖start‖², ‖x*‖²)``; −1 = never. A diverged path's later records and
        final state are NaN.
    """

    method: str
    dt: float
    steps: np.ndarray
    records: dict
    final_x: np.ndarray
    final_v: np.ndarray | None
    run: dict
    diverged_at: np.ndarray

    @property
    def times(self) -> np.ndarray:
        """Recorded times ``steps · dt``, shape (n_rec,)."""
        return self.steps * self.dt

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.records:
            raise KeyError(f"{name!r} was not recorded; recorded: {sorted(self.records)}")
        return self.records[name]


def _noise_factor(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """A factor ``N`` with ``N Nᵀ = cov`` (PSD): diagonal when ``cov`` is, else symmetric root."""
    n = cov.shape[0]
    if _is_diagonal(cov):
        return np.sqrt(np.maximum(np.diag(cov), 0.0)), np.zeros((n, n)), True
    w, V = np.linalg.eigh(0.5 * (cov + cov.T))
    return np.zeros(n), (V * np.sqrt(np.maximum(w, 0.0))) @ V.T, False


def _is_diagonal(M: np.ndarray) -> bool:
    return not np.any(M - np.diag(np.diag(M)))


def _pack_linear(M: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Parameters of :func:`_grad_dense`: ``M`` row-major, then ``x*``."""
    return np.concatenate([M.ravel(), xs])


def _records(record, n_rec: int, R: int, d: int, second_order: bool):
    if isinstance(record, str):
        record = (record,)
    record = tuple(record)
    valid = _VECTORS + _SCALARS if second_order else ("x", "dist2", "x2")
    for name in record:
        check_choice("record", name, valid)
    if len(set(record)) != len(record):
        raise ValueError(f"`record` has duplicates: {record}")
    rec_x = np.zeros((n_rec if "x" in record else 0, R, d))
    rec_v = np.zeros((n_rec if "v" in record else 0, R, d))
    scal = [nm for nm in record if nm in _SCALARS]
    codes = np.array([_SCALARS.index(nm) for nm in scal], dtype=np.int64)
    rec_s = np.zeros((n_rec, R, len(scal)))
    return rec_x, rec_v, rec_s, codes, scal


def _common(dt, steps, replicas, every, backend, dtype, on_divergence):
    """The integrators' shared arguments, validated: ``(dt, steps, R, every, n_rec, xp, ftype)``
    with ``xp`` the backend's array namespace from the registry (None for the Numba kernels;
    CuPy checked for a device) and ``ftype`` the arithmetic dtype."""
    dt = check_positive("dt", dt)
    steps = check_int("steps", steps, minimum=0)
    R = check_int("replicas", replicas, minimum=1)
    every = check_int("every", every, minimum=1)
    check_choice("dtype", dtype, ("float64", "float32"))
    check_choice("on_divergence", on_divergence, ("raise", "record"))
    xp = array_namespace(backend)
    if xp is None and dtype != "float64":
        raise ValueError(
            f"`dtype`={dtype!r} needs an array backend (backend='numpy' or 'cupy'); "
            "the Numba SDE kernels run in float64"
        )
    return dt, steps, R, every, steps // every + 1, xp, np.dtype(dtype)


_PROBLEMS = (Quadratic, LinearRegression, GaussianRandomPotential, CustomProblem)


def _problem_gradient(problem, xp) -> tuple[Callable | None, np.ndarray, tuple | None]:
    """An sgdsim problem as the integrators' potential ``U = L``: ``(grad, p, linear)``.

    Quadratics and least squares have a linear gradient ``H(θ − θ*)``: ``linear = (H, θ*)``
    (they run as the linear models, exactly). A shared random-feature potential and a
    :class:`CustomProblem` give a gradient: the kernels' in-place ``f(x, p, out)`` with its
    parameters ``p`` for Numba, a whole-ensemble function for the array backends. Only the
    landscape is used: the SDE's own noise replaces the problem's gradient noise.
    """
    if isinstance(problem, Quadratic):
        return None, np.zeros(1), (problem.hessian_matrix(), np.asarray(problem.minimum, float))
    if isinstance(problem, LinearRegression):
        return None, np.zeros(1), (problem.hessian_matrix(), problem.solution)
    if isinstance(problem, GaussianRandomPotential):
        if problem.per_replica:
            raise ValueError("a per-replica GaussianRandomPotential has one field per replica; the "
                             "SDE integrators take one potential (use per_replica=False)")
        if xp is None:
            m, d = problem.W.shape
            return _grad_rff, np.concatenate([[m, d], problem.W.ravel(), problem.b, problem.amp]), None
        return sde_array.rff_field(xp, problem.W, problem.b, problem.amp), np.zeros(1), None
    # CustomProblem
    if xp is None:
        return _adapt_grad(problem.grad), np.zeros(1), None
    if xp is not np:
        raise ValueError("a CustomProblem's gradient runs on the host: use backend='numpy' or 'numba'")
    return problem.grad_batch, np.zeros(1), None


def _batched_grad(xp, grad: Callable, X: np.ndarray) -> Callable:
    """A user gradient for the array backends: called on the whole ensemble, (R, d) → (R, d)."""
    if not callable(grad):
        raise TypeError(f"`model` must be a model or a gradient function, got {type(grad).__name__}")
    try:
        g = grad(xp.asarray(X))
    except Exception as exc:
        raise TypeError(
            "on the array backends the gradient is called on the whole ensemble, "
            f"grad(X) with X of shape {X.shape}: it raised {exc!r}"
        ) from exc
    if getattr(g, "shape", None) != X.shape:
        raise ValueError(
            f"`grad` must map shape {X.shape} to {X.shape} on the array backends, "
            f"got {getattr(g, 'shape', type(g).__name__)}"
        )
    return grad


def _initial(name: str, value, R: int, d: int, default: np.ndarray) -> np.ndarray:
    if value is None:
        return np.tile(default, (R, 1))
    arr = as_float_array(name, value)
    if arr.shape == (d,):
        return np.tile(arr, (R, 1))
    if arr.shape == (R, d):
        return arr.copy()
    raise ValueError(f"`{name}` must have shape ({d},) or ({R}, {d}), got {arr.shape}")


def _linear_state(model: LinearSDE | UnderdampedLangevin, x0, v0, R: int):
    """``(linear SDE, d, X)``: the model as a first-order linear SDE, its number of positions and
    the (R, n) initial state (positions, then velocities for an UnderdampedLangevin)."""
    d = model.dim
    if isinstance(model, UnderdampedLangevin):
        X = np.hstack([_initial("x0", x0, R, d, model.x_star), _initial("v0", v0, R, d, np.zeros(d))])
        return model.to_linear(), d, X
    if v0 is not None:
        raise ValueError("`v0` applies to an UnderdampedLangevin model only")
    return model, d, _initial("x0", x0, R, d, model.x_star)


def _pack_result(method, dt, every, n_rec, rec_x, rec_v, rec_s, scal, X, V, run, div,
                 on_divergence) -> SDEPaths:  # fmt: skip
    """Assemble the result; NaN out what follows a divergence, and raise if asked to."""
    bad = np.flatnonzero(div >= 0)
    for r in bad:
        first = -(-int(div[r]) // every)  # the first record at or after the divergence
        for arr in (rec_x, rec_v, rec_s):
            if arr.shape[0]:
                arr[first:, r] = np.nan
        X[r] = np.nan
        if V is not None:
            V[r] = np.nan
    recs = {}
    if rec_x.shape[0]:
        recs["x"] = rec_x
    if rec_v.shape[0]:
        recs["v"] = rec_v
    for j, nm in enumerate(scal):
        recs[nm] = rec_s[:, :, j].copy()
    paths = SDEPaths(method, dt, np.arange(n_rec) * every, recs, X, V, run, div)
    if bad.size and on_divergence == "raise":
        r = int(bad[np.argmin(div[bad])])
        raise DivergenceError(int(div[r]), r, paths, advice=(
            "Lower `dt` (or check the drift's stability), or pass on_divergence='record' to get "
            "the other paths (diverged ones are NaN after their step, see `.diverged_at`)."))
    return paths


def _run_info(seed: int, backend: str, dtype: str) -> dict:
    from sgdsim import __version__

    return {"seed": seed, "backend": backend, "dtype": dtype, "sgdsim_version": __version__}


# ================================ public integrators ============================================
def euler_maruyama(
    model: LinearSDE | UnderdampedLangevin | Callable,
    *,
    dt: float,
    steps: int,
    replicas: int,
    seed: int,
    x0=None,
    v0=None,
    diffusion=None,
    every: int = 1,
    record: str | Sequence[str] = ("x",),
    backend: str = "numba",
    dtype: str = "float64",
    progress: bool | None = None,
    on_divergence: str = "raise",
) -> SDEPaths:
    """Euler–Maruyama ``x ← x + h f(x) + √h G ξ`` (``GGᵀ = 2D``) for an ensemble of paths.

    Strong order 1/2, weak order 1 (additive noise: strong order 1 too). Noise convention
    ``dx = f(x)dt + √(2D) dW``.

    Parameters
    ----------
    model : LinearSDE, UnderdampedLangevin, an sgdsim problem, or a gradient function
        ``f(x) = −A(x − x*)``; for an :class:`UnderdampedLangevin` the phase-space linear SDE
        (state ``(x, v)``); for a gradient, ``f = −∇U`` and ``diffusion`` is required. The
        gradient is an njit ``grad(x) -> array`` of one path (shape (d,)) on ``backend="numba"``,
        and a whole-ensemble array function ``grad(X)`` (shape (replicas, d)) on the array
        backends. A problem (``Quadratic``, ``LinearRegression``, a shared
        ``GaussianRandomPotential``, ``CustomProblem``) is the potential ``U = L`` (its own
        gradient noise is not used; ``diffusion`` sets the SDE's); quadratics run as the exact
        linear model, ``x0`` defaults to their minimum (0 for the others).
    dt, steps, replicas, seed : time step, number of steps, number of paths, integer seed.
    x0 : (d,) or (replicas, d), optional
        Initial positions (default ``x*``, or 0 for a gradient model).
    v0 : (d,) or (replicas, d), optional
        Initial velocities for an :class:`UnderdampedLangevin` (default 0).
    diffusion : scalar, (d,) or (d, d)
        ``D`` for a gradient model (ignored otherwise: pass it in the model).
    every : int
        Record every ``every`` steps (step 0 included).
    record : str or sequence of {"x", "v", "dist2", "x2", "v2"}
        What to store (``"v"``/``"v2"`` only for an UnderdampedLangevin).
    backend : {"numba", "numpy", "cupy"}
        ``"numba"``: compiled CPU kernels, xoshiro256++ streams. ``"numpy"`` (the reference) and
        ``"cupy"`` (GPU): whole-ensemble array code with counter-based streams
        (:mod:`sgdsim.theory.sde_array`); same law, different numbers than ``"numba"``.
    dtype : {"float64", "float32"}
        Arithmetic precision; float32 on the array backends only (precision loss:
        :mod:`sgdsim.theory.sde_array`). Records and results are float64.
    progress : bool, optional
        Show a progress bar (default: only for long runs, ≳ 2e9 coordinate updates).
    on_divergence : {"raise", "record"}
        A path diverges when its squared state norm is non-finite or above
        ``1e20·max(1, ‖start‖², ‖x*‖²)``. "raise": :class:`~sgdsim.DivergenceError` naming the
        first such step and path (the result attached as ``.trajectory``); "record": return,
        with the diverged paths NaN from their step on and :attr:`SDEPaths.diverged_at` set.
    """
    dt, steps, R, every, n_rec, xp, ftype = _common(dt, steps, replicas, every, backend, dtype,
                                                    on_divergence)  # fmt: skip
    pgrad = None
    if isinstance(model, _PROBLEMS):
        g, gp, lin_p = _problem_gradient(model, xp)
        if diffusion is None:
            raise ValueError("with an sgdsim problem as the potential, pass `diffusion` (the SDE's D)")
        if lin_p is not None:  # exactly the OU process dx = −H(x − θ*)dt + √(2D) dW
            model, diffusion = LinearSDE(lin_p[0], diffusion, lin_p[1]), None
        else:
            pgrad = (g, gp)
            x0 = np.zeros(model.dim) if x0 is None else x0
    second = isinstance(model, UnderdampedLangevin)
    linear = isinstance(model, (LinearSDE, UnderdampedLangevin))
    if linear:
        if diffusion is not None:
            raise ValueError("`diffusion` is taken from the model; pass diffusion=None")
        lin, d, X = _linear_state(model, x0, v0, R)
        n = lin.dim
        D = lin.D
    else:
        if diffusion is None or x0 is None:
            raise ValueError("a gradient model needs `diffusion` and `x0` (to fix the dimension)")
        x0a = as_float_array("x0", x0)
        d = n = x0a.shape[-1]
        X = _initial("x0", x0a, R, n, np.zeros(n))
        D = check_psd("diffusion", _matrix_or_diag("diffusion", diffusion, n))
        if pgrad is not None:
            f, fp = pgrad
        else:
            f = _adapt_grad(model) if xp is None else _batched_grad(xp, model, X.astype(ftype))
            fp = np.zeros(1)
    nd, nf, diag = _noise_factor(2.0 * D * dt)
    rec_x, rec_v, rec_s, codes, scal = _records(record, n_rec, R, d, second)
    pieces = chunks(steps, R * steps * n, progress, desc="euler_maruyama", multiple_of=every,
                    split_long=False)
    thr = default_divergence_threshold(X, lin.x_star if linear else None)
    if xp is not None:
        field = sde_array.linear_field(xp, lin.A, lin.x_star, ftype) if linear else f
        recs = sde_array.Records(rec_x, rec_v, rec_s, codes, every)
        Xd, div = sde_array.run_em(xp, xp.asarray(X, dtype=ftype), d, lambda Y: -field(Y),
                                   sde_array.noise_map(xp, nd, nf, diag, ftype), dt, pieces, seed,
                                   recs, thr)  # fmt: skip
        X = _to_host(Xd).astype(np.float64)
    else:
        ones = np.ones(n)
        states = replica_states(seed, R)
        X0 = X[:, :d].copy()
        div = np.full(R, -1, dtype=np.int64)
        for start, k in pieces:
            if linear:
                _em_linear(_pack_linear(lin.A, lin.x_star), X, X0, states, dt, k, every,
                           start // every, ones, nd, nf, diag, d, rec_x, rec_v, rec_s, codes, div,
                           thr)  # fmt: skip
            else:
                _em_user(f, fp, X, X0, states, dt, k, every, start // every, ones, nd, nf, diag, d,
                         rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip
    V = X[:, d:].copy() if second else None
    return _pack_result("euler_maruyama", dt, every, n_rec, rec_x, rec_v, rec_s, scal,
                        X[:, :d].copy(), V, _run_info(seed, backend, dtype), div,
                        on_divergence)  # fmt: skip


def baoab(
    model: UnderdampedLangevin | Callable,
    *,
    dt: float,
    steps: int,
    replicas: int,
    seed: int,
    x0=None,
    v0=None,
    friction=None,
    velocity_diffusion=None,
    every: int = 1,
    record: str | Sequence[str] = ("x",),
    backend: str = "numba",
    dtype: str = "float64",
    progress: bool | None = None,
    on_divergence: str = "raise",
) -> SDEPaths:
    """BAOAB splitting for ``dx = v dt, dv = −∇U(x)dt − Γv dt + √(2D_v) dW`` (weak order 2).

    One step is ``B A O A B`` with kick ``B``: ``v ← v − (h/2)∇U(x)``, drift ``A``:
    ``x ← x + (h/2)v``, and the exact OU velocity update ``O``: ``v ← e^{−Γh}v + N(0, Σ_O)`` with
    ``Σ_O,ij = 2D_v,ij(1 − e^{−(γ_i+γ_j)h})/(γ_i+γ_j)``; one gradient evaluation per step.

    Parameters
    ----------
    model : UnderdampedLangevin, an sgdsim problem, or gradient function
        For a gradient ``∇U`` (per unit mass; njit ``grad(x)`` of one path on ``"numba"``, a
        whole-ensemble ``grad(X)`` on the array backends), ``friction``,
        ``velocity_diffusion`` and ``x0`` are required. A problem is the potential ``U = L``,
        as in :func:`euler_maruyama` (``friction`` and ``velocity_diffusion`` required).
    dt, steps, replicas, seed : time step, number of steps, number of paths, integer seed.
    x0, v0 : (d,) or (replicas, d), optional
        Initial positions (default ``x*``) and velocities (default 0).
    friction : float or (d,)
        ``Γ`` for a gradient model.
    velocity_diffusion : scalar, (d,) or (d, d)
        ``D_v`` for a gradient model (``Γ kT`` at temperature ``kT`` and unit mass).
    every, record, backend, dtype, progress, on_divergence : as in :func:`euler_maruyama`
        (``"x"`` positions, ``"v"`` velocities).
    """
    dt, steps, R, every, n_rec, xp, ftype = _common(dt, steps, replicas, every, backend, dtype,
                                                    on_divergence)  # fmt: skip
    pgrad = None
    if isinstance(model, _PROBLEMS):
        g, gp, lin_p = _problem_gradient(model, xp)
        if friction is None or velocity_diffusion is None:
            raise ValueError("with an sgdsim problem as the potential, pass `friction` and "
                             "`velocity_diffusion`")  # fmt: skip
        if lin_p is not None:  # exactly the underdamped OU process with stiffness H
            model = UnderdampedLangevin(lin_p[0], friction, velocity_diffusion, lin_p[1])
            friction = velocity_diffusion = None
        else:
            pgrad = (g, gp)
            x0 = np.zeros(model.dim) if x0 is None else x0
    if isinstance(model, UnderdampedLangevin):
        if friction is not None or velocity_diffusion is not None:
            raise ValueError("`friction`/`velocity_diffusion` come from the model; pass None")
        m = model
        f = None
    else:
        if friction is None or velocity_diffusion is None or x0 is None:
            raise ValueError("a gradient model needs `friction`, `velocity_diffusion` and `x0`")
        x0a = as_float_array("x0", x0)
        dd = x0a.shape[-1]
        m = UnderdampedLangevin(np.zeros(dd), friction, velocity_diffusion)  # validated carrier
    d = m.dim
    X = _initial("x0", x0, R, d, m.x_star)
    V = _initial("v0", v0, R, d, np.zeros(d))
    fp = np.zeros(1)
    if pgrad is not None:
        f, fp = pgrad
    elif m is not model:
        f = _adapt_grad(model) if xp is None else _batched_grad(xp, model, X.astype(ftype))
    c, sig_o = ou_velocity_step(m.friction, m.velocity_diffusion, dt)
    nd, nf, diag = _noise_factor(sig_o)
    rec_x, rec_v, rec_s, codes, scal = _records(record, n_rec, R, d, True)
    pieces = chunks(steps, R * steps * d, progress, desc="baoab", multiple_of=every,
                    split_long=False)
    thr = default_divergence_threshold(np.hstack([X, V]), m.x_star)
    if xp is not None:
        force = sde_array.linear_field(xp, m.K, m.x_star, ftype) if f is None else f
        recs = sde_array.Records(rec_x, rec_v, rec_s, codes, every)
        Xd, Vd, div = sde_array.run_baoab(xp, xp.asarray(X, dtype=ftype), xp.asarray(V, dtype=ftype),
                                          force, c, sde_array.noise_map(xp, nd, nf, diag, ftype), dt,
                                          pieces, seed, recs, thr)  # fmt: skip
        X, V = _to_host(Xd).astype(np.float64), _to_host(Vd).astype(np.float64)
    else:
        states = replica_states(seed, R)
        X0 = X.copy()
        div = np.full(R, -1, dtype=np.int64)
        lanes = _lanes_for(d) if f is None and diag and _is_diagonal(m.K) else 0
        for start, k in pieces:
            if f is None:
                _baoab_quadratic(lanes, np.diag(m.K).copy(), _pack_linear(m.K, m.x_star), m.x_star,
                                 X, V, X0, states, dt, k, every, start // every, c, nd, nf, diag,
                                 rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip
            else:
                _baoab_user(f, fp, X, V, X0, states, dt, k, every, start // every, c, nd, nf, diag,
                            rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip
    return _pack_result("baoab", dt, every, n_rec, rec_x, rec_v, rec_s, scal, X, V,
                        _run_info(seed, backend, dtype), div, on_divergence)  # fmt: skip


def exact_ou(
    model: LinearSDE | UnderdampedLangevin,
    *,
    dt: float,
    steps: int,
    replicas: int,
    seed: int,
    x0=None,
    v0=None,
    every: int = 1,
    record: str | Sequence[str] = ("x",),
    backend: str = "numba",
    dtype: str = "float64",
    progress: bool | None = None,
    on_divergence: str = "raise",
) -> SDEPaths:
    """Exact OU transition ``y ← e^{−Ah} y + N(0, Σ(h))``, ``y = x − x*`` (exact in law, any h).

    ``Σ(h) = ∫_0^h e^{−As}2De^{−Aᵀs}ds`` (Van Loan). Arguments as :func:`euler_maruyama`; for an
    :class:`UnderdampedLangevin` the state is ``(x, v)``.
    """
    dt, steps, R, every, n_rec, xp, ftype = _common(dt, steps, replicas, every, backend, dtype,
                                                    on_divergence)  # fmt: skip
    second = isinstance(model, UnderdampedLangevin)
    if not isinstance(model, (LinearSDE, UnderdampedLangevin)):
        raise TypeError(
            f"`model` must be a LinearSDE or UnderdampedLangevin, got {type(model).__name__}"
        )
    lin, d, X = _linear_state(model, x0, v0, R)
    E, sig = lin.transition(dt)
    nd, nf, diag = _noise_factor(sig)
    if diag:
        nf = np.diag(nd)
    rec_x, rec_v, rec_s, codes, scal = _records(record, n_rec, R, d, second)
    pieces = chunks(steps, R * steps * X.shape[1], progress, desc="exact_ou", multiple_of=every,
                    split_long=False)
    thr = default_divergence_threshold(X, lin.x_star)
    if xp is not None:
        recs = sde_array.Records(rec_x, rec_v, rec_s, codes, every)
        Xd, div = sde_array.run_exact_ou(xp, xp.asarray(X, dtype=ftype), d, E, nf, lin.x_star, pieces,
                                         seed, recs, thr)  # fmt: skip
        X = _to_host(Xd).astype(np.float64)
    else:
        states = replica_states(seed, R)
        X0 = X[:, :d].copy()
        div = np.full(R, -1, dtype=np.int64)
        for start, k in pieces:
            _exact_kernel(E, nf, lin.x_star, X, X0, states, k, every, start // every, d,
                          rec_x, rec_v, rec_s, codes, div, thr)  # fmt: skip
    V = X[:, d:].copy() if second else None
    return _pack_result("exact_ou", dt, every, n_rec, rec_x, rec_v, rec_s, scal,
                        X[:, :d].copy(), V, _run_info(seed, backend, dtype), div,
                        on_divergence)  # fmt: skip
