"""Online SGD of two-layer networks in the teacher–student setup: the networks themselves.

:class:`TeacherStudent` is the problem: a fixed teacher soft committee machine
``y = Σ_m v*_m g(w*_m·x/√N) + σζ`` with ``g(u) = erf(u/√2)`` and Gaussian inputs
``x ~ N(0, I_N)``, and a student of ``K`` hidden units. :func:`simulate_teacher_student` trains
an ensemble of students by online SGD, one fresh sample per step (Goldt et al. 2019, Sec. 2;
Saad & Solla 1995):

.. math::
    w_k \\leftarrow w_k - \\frac{\\eta}{\\sqrt N}\\, v_k\\, \\Delta\\, g'(\\lambda_k)\\, x, \\qquad
    v_k \\leftarrow v_k - \\frac{\\eta_v}{N}\\, g(\\lambda_k)\\, \\Delta,

``Δ = Σ_k v_k g(λ_k) − y``, ``λ_k = w_k·x/√N``, and records the order parameters
``Q = WWᵀ/N`` (K, K), ``R = WW*ᵀ/N`` (K, M), the second layer ``v`` and the generalisation error
``ε_g`` of each student (exact for Gaussian inputs given its weights: the closed form of
:func:`sgdsim.theory.teacher_student.generalisation_error`), at times ``α = step/N``. The ODEs
that these curves follow as ``N → ∞`` are in :mod:`sgdsim.theory.teacher_student`.

This module has its own small Numba kernel rather than going through :func:`sgdsim.simulate`: a
fresh input per step makes the "data set" infinite, which the engine's problems do not model.
It keeps the engine's conventions where they fit: ``seed`` / ``replicas`` (one xoshiro256++
stream per replica from :func:`sgdsim._rng.replica_states`, so the same seed gives the same
numbers whatever the thread count), ``every`` for the record interval, ``progress``, and
``on_divergence`` with the step and replica of a divergence in a :class:`~sgdsim.Trajectory`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from numba import njit, prange

from sgdsim._progress import chunks
from sgdsim._rng import fill_standard_normal, replica_states, standard_normal
from sgdsim._validation import as_float_array, check_choice, check_int
from sgdsim._version import __version__
from sgdsim.theory.teacher_student import _generalisation_error, _positive, generalisation_error
from sgdsim.trajectory import DivergenceError, Trajectory, default_divergence_threshold

__all__ = ["TeacherStudent", "simulate_teacher_student"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True)
class TeacherStudent:
    """A teacher soft committee machine and the size of its student.

    Parameters
    ----------
    teacher_weights : (M, N) array
        First-layer teacher weights ``w*_m`` (rows; ``T = W* W*ᵀ / N``).
    n_student : int
        ``K``, the student's hidden units.
    teacher_second : (M,) array, optional
        Teacher second layer ``v*`` (default ones).
    noise_std : float
        Output-noise standard deviation ``σ`` of the labels.

    Use :meth:`random` for the papers' teacher (orthogonal rows of norm √N: ``T = I``).
    """

    teacher_weights: np.ndarray
    n_student: int
    teacher_second: np.ndarray | None = None
    noise_std: float = 0.0
    T: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        W = as_float_array("teacher_weights", self.teacher_weights, ndim=2)
        M, N = W.shape
        if N < 2:
            raise ValueError(f"`teacher_weights` needs input dimension N >= 2, got shape {W.shape}")
        check_int("n_student", self.n_student, minimum=1)
        vs = np.ones(M) if self.teacher_second is None else as_float_array(
            "teacher_second", self.teacher_second, shape=(M,))
        object.__setattr__(self, "teacher_weights", np.ascontiguousarray(W))  # one kernel signature
        object.__setattr__(self, "teacher_second", vs)
        object.__setattr__(self, "noise_std", _positive("noise_std", self.noise_std, allow_zero=True))
        object.__setattr__(self, "T", W @ W.T / N)

    @classmethod
    def random(cls, N: int, M: int, K: int, *, seed: int = 0, orthonormal: bool = True,
               noise_std: float = 0.0, teacher_second=None) -> TeacherStudent:  # fmt: skip
        """A random teacher: ``w*_m`` i.i.d. N(0, I_N), or (``orthonormal``) their Gram–Schmidt
        rows rescaled to norm √N, so that ``T = I`` exactly (Saad & Solla's isotropic teacher)."""
        N = check_int("N", N, minimum=2)
        M = check_int("M", M, minimum=1)
        if M > N:
            raise ValueError(f"`M`={M} teacher units need N >= M, got N={N}")
        seed = check_int("seed", seed, minimum=0)
        W = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))).standard_normal((M, N))
        if orthonormal:
            q, _ = np.linalg.qr(W.T)
            W = q.T * math.sqrt(N)
        return cls(W, K, teacher_second, noise_std)

    @property
    def N(self) -> int:
        """Input dimension."""
        return self.teacher_weights.shape[1]

    @property
    def M(self) -> int:
        """Teacher hidden units."""
        return self.teacher_weights.shape[0]

    @property
    def K(self) -> int:
        """Student hidden units."""
        return self.n_student

    def order_parameters(self, W) -> tuple[np.ndarray, np.ndarray]:
        """``Q = WWᵀ/N`` (..., K, K) and ``R = WW*ᵀ/N`` (..., K, M) of student weights ``W``
        (..., K, N)."""
        W = np.asarray(W, dtype=float)
        Q = np.einsum("...kn,...ln->...kl", W, W) / self.N
        R = np.einsum("...kn,mn->...km", W, self.teacher_weights) / self.N
        return Q, R

    def generalisation_error(self, W, v=None) -> float | np.ndarray:
        """Exact ``ε_g = ½E[(φ_student − φ_teacher)²]`` of students ``W`` (..., K, N) with second
        layer ``v`` (..., K) (default ones), from their order parameters."""
        Q, R = self.order_parameters(W)
        return generalisation_error(Q, R, self.T, v, self.teacher_second)

    def outputs(self, X, W, v=None) -> tuple[np.ndarray, np.ndarray]:
        """Noiseless student and teacher outputs on inputs ``X`` (B, N): ``(φ (B,), φ* (B,))``
        for one student ``W`` (K, N) with second layer ``v`` (K,)."""
        from scipy.special import erf

        X = np.asarray(X, dtype=float)
        v = np.ones(self.K) if v is None else np.asarray(v, dtype=float)
        s = math.sqrt(self.N)
        student = erf(X @ np.asarray(W, dtype=float).T / s * _INV_SQRT2) @ v
        teacher = erf(X @ self.teacher_weights.T / s * _INV_SQRT2) @ self.teacher_second
        return student, teacher


# --- the kernel ------------------------------------------------------------------------------
_FAST = {"reassoc", "contract", "nsz", "arcp"}  # no 'nnan'/'ninf': divergence checks must see NaN


@njit(parallel=True, cache=True, fastmath=_FAST)
def _online_sgd(W, v, Wt, vt, states, lr, lr_v, noise_std, t0, n, every, Q_rec, R_rec, v_rec,
                div_step, threshold):  # fmt: skip
    """Advance every live replica by steps ``t0 .. t0+n−1``; record after each step ``t`` with
    ``(t+1) % every == 0`` into index ``(t+1) // every``. Per step and replica the stream yields
    ``N`` normals (the input ``x``) and then, if ``noise_std > 0``, one (the label noise ``ζ``)."""
    n_rep, K, N = W.shape
    M = Wt.shape[0]
    inv_sqrt_n = 1.0 / math.sqrt(N)
    for r in prange(n_rep):
        if div_step[r] >= 0:
            continue
        s = states[r]
        x = np.empty(N)
        lam = np.empty(K)
        coef = np.empty(K)
        for t in range(t0, t0 + n):
            fill_standard_normal(s, x)
            out = 0.0
            for k in range(K):
                acc = 0.0
                for i in range(N):
                    acc += W[r, k, i] * x[i]
                lam[k] = acc * inv_sqrt_n
                out += v[r, k] * math.erf(lam[k] * _INV_SQRT2)
            for m in range(M):
                acc = 0.0
                for i in range(N):
                    acc += Wt[m, i] * x[i]
                out -= vt[m] * math.erf(acc * inv_sqrt_n * _INV_SQRT2)
            if noise_std > 0.0:
                out -= noise_std * standard_normal(s)
            if not math.isfinite(out):
                div_step[r] = t
                break
            for k in range(K):
                gp = _SQRT_2_OVER_PI * math.exp(-0.5 * lam[k] * lam[k])
                coef[k] = -lr * inv_sqrt_n * v[r, k] * out * gp
            for k in range(K):
                c = coef[k]
                for i in range(N):
                    W[r, k, i] += c * x[i]
            if lr_v != 0.0:
                for k in range(K):
                    v[r, k] -= lr_v / N * math.erf(lam[k] * _INV_SQRT2) * out
            if (t + 1) % every == 0:
                j = (t + 1) // every
                bad = False
                for k in range(K):
                    for l in range(k, K):
                        acc = 0.0
                        for i in range(N):
                            acc += W[r, k, i] * W[r, l, i]
                        Q_rec[j, r, k, l] = acc / N
                        Q_rec[j, r, l, k] = acc / N
                    if not (Q_rec[j, r, k, k] <= threshold):  # also catches NaN
                        bad = True
                    for m in range(M):
                        acc = 0.0
                        for i in range(N):
                            acc += W[r, k, i] * Wt[m, i]
                        R_rec[j, r, k, m] = acc / N
                    v_rec[j, r, k] = v[r, k]
                if bad:
                    div_step[r] = t + 1
                    break


# --- the front door --------------------------------------------------------------------------
def _initial_students(init, init_std, seed, replicas, K, N) -> np.ndarray:
    if init is None:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        return init_std * rng.standard_normal((replicas, K, N))
    if callable(init):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        arr = np.asarray(init(rng, replicas), dtype=np.float64)
    else:
        arr = as_float_array("init", init)
        if arr.shape == (K, N):
            arr = np.broadcast_to(arr, (replicas, K, N))
    if arr.shape != (replicas, K, N):
        raise ValueError(f"`init` must have shape ({K}, {N}) or ({replicas}, {K}, {N}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("`init` must be finite")
    return np.array(arr, dtype=np.float64)


def simulate_teacher_student(problem: TeacherStudent, lr: float, *, steps: int, replicas: int = 1,
                             seed: int = 0, init=None, init_std: float = 0.1, init_second=None,
                             lr_second: float = 0.0, every: int | None = None,
                             on_divergence: str = "raise", divergence_threshold: float | None = None,
                             progress: bool | None = None) -> Trajectory:  # fmt: skip
    """Train ``replicas`` students on ``problem`` by online SGD, a fresh Gaussian input per step.

    Parameters
    ----------
    problem : TeacherStudent
    lr : float
        First-layer learning rate ``η`` (the step is ``η/√N · v_k Δ g'(λ_k) x``, so time
        ``α = step/N`` is the ODEs' time).
    steps : int
        Number of SGD steps (samples seen), ``α_max = steps/N``.
    replicas : int
        Independent students (each its own initial weights and input stream).
    seed : int
        Seeds the initial weights and the per-replica streams (same seed → identical results,
        whatever the thread count).
    init : (K, N) or (R, K, N) array, or callable ``(rng, R) -> (R, K, N)``, optional
        Initial first-layer weights; default i.i.d. ``N(0, init_std²)`` (so ``Q_ii ≈ init_std²``).
    init_std : float
        Standard deviation of the default initial weights.
    init_second : (K,) array, optional
        Initial student second layer (default ones).
    lr_second : float
        Second-layer learning rate ``η_v`` (default 0: the soft committee machine, ``v`` fixed).
    every : int, optional
        Record every ``every`` steps (default ``max(1, N // 10)``, ten records per unit of α).
    on_divergence : "raise" | "record" | "stop"
        A replica diverges when its output error is non-finite (checked every step) or a
        ``Q_kk`` exceeds ``divergence_threshold`` (checked at records). "raise":
        :class:`~sgdsim.DivergenceError` with step and replica; "record": freeze it (NaN records
        afterwards) and go on; "stop": end the run at the first divergence.
    divergence_threshold : float, optional
        Bound on ``Q_kk``; default ``1e20·max(1, max Q_kk(0), max T_nn)``.
    progress : bool, optional
        Progress bar (default: only for long runs).

    Returns
    -------
    Trajectory
        Variables ``eps_g`` (step, replica), ``Q`` (step, replica, k, k2), ``R`` (step, replica,
        k, m), ``v`` (step, replica, k), ``final_params`` (replica, k, dim), ``diverged_at``
        (replica); coordinates ``step`` and ``alpha = step/N``; attributes ``status`` and
        ``config``.
    """
    if not isinstance(problem, TeacherStudent):
        raise TypeError(f"`problem` must be a TeacherStudent, got {type(problem).__name__}")
    lr = _positive("lr", lr)
    lr_second = _positive("lr_second", lr_second, allow_zero=True)
    steps = check_int("steps", steps, minimum=0)
    replicas = check_int("replicas", replicas, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    init_std = _positive("init_std", init_std, allow_zero=True)
    check_choice("on_divergence", on_divergence, ("raise", "record", "stop"))
    K, M, N = problem.K, problem.M, problem.N
    every = max(1, N // 10) if every is None else check_int("every", every, minimum=1)
    W = _initial_students(init, init_std, seed, replicas, K, N)
    v0 = np.ones(K) if init_second is None else as_float_array("init_second", init_second, shape=(K,))
    v = np.tile(v0, (replicas, 1))
    Q0, R0 = problem.order_parameters(W)
    if divergence_threshold is None:
        sq_norms = np.concatenate([np.diagonal(Q0, axis1=1, axis2=2).ravel(), np.diag(problem.T)])
        divergence_threshold = default_divergence_threshold(np.sqrt(sq_norms)[:, None])
    threshold = _positive("divergence_threshold", divergence_threshold)

    n_rec = steps // every + 1
    Q_rec = np.full((n_rec, replicas, K, K), np.nan)
    R_rec = np.full((n_rec, replicas, K, M), np.nan)
    v_rec = np.full((n_rec, replicas, K), np.nan)
    Q_rec[0], R_rec[0], v_rec[0] = Q0, R0, v
    states = replica_states(seed, replicas, spawn_key=1)
    div_step = np.full(replicas, -1, dtype=np.int64)
    status = "ok"
    work = float(replicas) * steps * N * (K + M)
    for t0, n in chunks(steps, work, progress, desc="teacher-student", multiple_of=every):
        _online_sgd(W, v, problem.teacher_weights, problem.teacher_second, states, lr, lr_second,
                    problem.noise_std, t0, n, every, Q_rec, R_rec, v_rec, div_step, threshold)
        if np.any(div_step >= 0):
            status = "diverged"
            if on_divergence in ("raise", "stop"):
                break
    for r in np.flatnonzero(div_step >= 0):  # nothing after a divergence, also at its own record
        first = -(-int(div_step[r]) // every)
        Q_rec[first:, r] = np.nan
        R_rec[first:, r] = np.nan
        v_rec[first:, r] = np.nan
    if status == "diverged" and on_divergence == "stop":
        first = -(-int(div_step[div_step >= 0].min()) // every)
        for arr in (Q_rec, R_rec, v_rec):
            arr[first:] = np.nan
        status = "stopped"

    with np.errstate(invalid="ignore"):  # NaN records of diverged replicas stay NaN
        eps = _generalisation_error(Q_rec, R_rec, problem.T, v_rec, problem.teacher_second)
    step_coord = np.arange(n_rec) * every
    config = {
        "problem": {"type": "TeacherStudent", "N": N, "K": K, "M": M, "noise_std": problem.noise_std},
        "lr": lr, "lr_second": lr_second, "steps": steps, "replicas": replicas, "seed": seed,
        "init": "array" if init is not None and not callable(init) else
                ("callable" if callable(init) else f"normal(0, {init_std}^2)"),
        "every": every, "on_divergence": on_divergence, "divergence_threshold": threshold,
        "sgdsim_version": __version__,
    }
    ds = xr.Dataset(
        {
            "eps_g": (("step", "replica"), eps),
            "Q": (("step", "replica", "k", "k2"), Q_rec),
            "R": (("step", "replica", "k", "m"), R_rec),
            "v": (("step", "replica", "k"), v_rec),
            "final_params": (("replica", "k", "dim"), W),
            "diverged_at": (("replica",), div_step.copy()),
        },
        coords={"step": step_coord, "alpha": ("step", step_coord / N), "replica": np.arange(replicas)},
        attrs={"status": status, "config": json.dumps(config)},
    )
    traj = Trajectory(ds)
    if status == "diverged" and on_divergence == "raise":
        step, rep = traj.divergence
        raise DivergenceError(step, rep, traj, advice="Lower `lr`, or pass on_divergence='record' "
                              "or 'stop' to keep the partial run.")
    return traj
