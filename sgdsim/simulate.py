"""``simulate``: an ensemble of SGD replicas on one problem, recorded as a :class:`Trajectory`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from sgdsim._progress import chunks
from sgdsim._validation import check_allocation, check_choice, check_int, check_positive
from sgdsim._version import __version__
from sgdsim.backends import get_backend
from sgdsim.backends.base import OBSERVABLES, Records, RunSpec
from sgdsim.backends.lowering import SAMPLINGS, Lowered, lower
from sgdsim.optim import SGD
from sgdsim.problems.custom import CustomProblem
from sgdsim.problems.linreg import LinearRegression
from sgdsim.trajectory import DivergenceError, RunStatus, Trajectory, default_divergence_threshold

__all__ = ["simulate"]

InitSpec = np.ndarray | Callable[[np.random.Generator, int], np.ndarray] | None


def simulate(
    problem,
    optimizer: SGD,
    *,
    steps: int,
    replicas: int = 1,
    batch_size: int | None = None,
    sampling: str | None = None,
    seed: int = 0,
    init: InitSpec = None,
    init_buffer: InitSpec = None,
    record: Sequence[str] = ("loss", "dist2"),
    every: int = 1,
    backend: str = "numba",
    dtype: str = "float64",
    on_divergence: str = "raise",
    divergence_threshold: float | None = None,
    progress: bool | None = None,
    svag: float = 1.0,
) -> Trajectory:
    """Run ``replicas`` independent copies of ``optimizer`` on ``problem`` for ``steps`` steps.

    Each replica follows θ_{t+1} = θ_t − η_t u_t with u_t the optimizer's update from a minibatch
    gradient (see :mod:`sgdsim.optim`); replicas share the problem and differ in their noise.

    Parameters
    ----------
    problem : Quadratic, LinearRegression, GaussianRandomPotential or CustomProblem
    optimizer : SGD
        From :func:`sgdsim.sgd` or :func:`sgdsim.nudged_sgd`.
    steps : int
        Number of updates T.
    replicas : int
        Ensemble size R.
    batch_size : int, optional
        B. LinearRegression: the minibatch size (default: full batch). Quadratic/Custom: divides
        the per-sample noise covariance, C/B (default 1).
    sampling : str, optional
        "with_replacement" (default when B is given), "without_replacement" (B distinct samples
        each step), "epoch_shuffle" (a fresh permutation per epoch, consecutive batches, the last
        incomplete batch dropped), "full" (gradient descent), "gaussian" (full gradient plus
        Gaussian noise with the exact with-replacement minibatch covariance).
    seed : int
        Same seed and backend → bitwise-identical results, whatever the thread count.
    init : array (d,) or (R, d), or callable ``(rng, R) -> (R, d)``, optional
        Initial parameters (default zeros). A callable gets a generator derived from ``seed``.
    init_buffer : array (d,) or (R, d), or callable ``(rng, R) -> (R, d)``, optional
        Initial momentum buffer (PyTorch's ``buf``, gradient units: θ_{t+1} = θ_t − η·buf_{t+1}
        without Nesterov). Default: empty, so step 0 sets ``buf = g`` (PyTorch's first step);
        given, step 0 is an ordinary step ``buf ← β·buf + (1 − τ)g``. With a sample of the joint
        stationary law of (θ, buf) (``NoisyQuadraticMoments.stationary_state_cov``) a run starts
        stationary in both. Needs ``momentum > 0``; a callable gets its own generator.
    record : sequence of str
        Observables from ``("loss", "dist2", "step2", "velocity2", "params")``: full-batch loss,
        ‖θ_t − θ_0‖², ‖θ_t − θ_{t−1}‖² (NaN at step 0), ‖buf_t‖², and θ_t itself (R·d floats
        per record: opt-in).
    every : int
        Record at steps 0, every, 2·every, … ≤ T.
    backend : "numba" | "numpy" | "cupy"
    dtype : "float64" | "float32"
        Arithmetic precision of the updates (records are float64).
    on_divergence : "raise" | "record" | "stop"
        A replica diverges when ‖θ‖² is non-finite or exceeds ``divergence_threshold``.
        "raise": :class:`DivergenceError` naming step and replica (the partial run attached);
        "record": freeze diverged replicas (NaN records after their step) and go on;
        "stop": end the run at the first divergence.
    divergence_threshold : float, optional
        Bound on ‖θ‖²; default 1e20·max(1, max_r ‖θ_0‖², ‖θ*‖²).
    progress : bool, optional
        Show a progress bar (default: only for long runs).
    svag : float
        ℓ ≥ 1: run the SVAG iteration of Li, Malladi & Arora (2021, "On the validity of modeling
        SGD with stochastic differential equations") instead of SGD: learning rate η_t/ℓ and the
        gradient ``½(1+√(2ℓ−1)) g₁ + ½(1−√(2ℓ−1)) g₂`` of two independent minibatch gradients
        (mean ∇L, noise covariance ℓ·Σ). Step k then sits at SDE time ``k·η/ℓ``: run ``ℓ·T``
        steps to reach the time of T SGD steps; as ℓ → ∞ the law tends to the SDE
        ``dθ = −∇L dt + √η Σ^{1/2} dW`` (weak error O(1/ℓ)). ``svag=1`` is plain SGD, bit for
        bit. Array backends only (``backend="numpy"`` or ``"cupy"``); plain SGD (no momentum, no
        nudging) with independent minibatches (not ``sampling="epoch_shuffle"``).
        :func:`sgdsim.svag_report` runs the family and reports the distance to the limit.

    Returns
    -------
    Trajectory
    """
    steps = check_int("steps", steps, minimum=0)
    replicas = check_int("replicas", replicas, minimum=1)
    every = check_int("every", every, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    check_choice("backend", backend, ("numba", "numpy", "cupy"))
    check_choice("dtype", dtype, ("float64", "float32"))
    check_choice("on_divergence", on_divergence, ("raise", "record", "stop"))
    if not isinstance(optimizer, SGD):
        raise TypeError(f"`optimizer` must come from sgdsim.sgd(...) or nudged_sgd(...), got {optimizer!r}")
    record = _record_names(record)

    is_data = isinstance(problem, LinearRegression)
    if sampling is None:
        sampling = "with_replacement" if (batch_size is not None or not is_data) else "full"
    check_choice("sampling", sampling, tuple(SAMPLINGS))
    svag = _check_svag(svag, backend, optimizer, sampling)
    if batch_size is None:
        batch_size = problem.n_samples if (is_data and sampling == "full") else 1
    elif sampling == "full" and not (is_data and batch_size == problem.n_samples):
        raise ValueError(
            f"`batch_size`={batch_size!r} has no effect with sampling='full' (the full gradient); "
            "drop it, or choose a minibatch `sampling`"
        )
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lowered = lower(problem, sampling, batch_size)
    d = lowered.dim
    # θ and the momentum buffer and scratch per replica, and the records: refuse what cannot fit
    n_rec = steps // every + 1
    per_replica = 8.0 * (3 * d + n_rec * (len(record) + (d if "params" in record else 0)))
    check_allocation("replicas", replicas, replicas * per_replica, "the ensemble's state and records")

    theta0 = _initial_array("init", init, seed, replicas, d, spawn_key=0)
    if isinstance(problem, CustomProblem):
        problem.check_oracles(theta0[0], need_loss="loss" in record)
    buf0 = None
    if init_buffer is not None:
        if optimizer.momentum == 0:
            raise ValueError("`init_buffer` needs an optimizer with momentum > 0 (there is no buffer)")
        buf0 = lowered.to_kernel(_initial_array("init_buffer", init_buffer, seed, replicas, d, spawn_key=2))
    opt = _resolve_nudge(optimizer, problem, lowered)
    if divergence_threshold is None:
        divergence_threshold = default_divergence_threshold(theta0, getattr(problem, "minimum", None))
    threshold = check_positive("divergence_threshold", divergence_threshold)

    spec = RunSpec(lowered, opt, np.dtype(dtype), lowered.to_kernel(theta0), seed, threshold, buf0, svag)
    runner = get_backend(backend)(spec)
    rec = Records.allocate(record, replicas, n_rec, d, every)

    status, final = _run_chunks(runner, rec, steps, replicas * steps * d, progress, on_divergence)
    config = {
        "problem": _describe_problem(problem),
        "optimizer": opt.describe(),
        "steps": steps,
        "replicas": replicas,
        "batch_size": batch_size,
        "sampling": sampling,
        "seed": seed,
        "init": _describe_init(init),
        "init_buffer": "empty" if init_buffer is None else _describe_init(init_buffer),
        "record": list(record),
        "every": every,
        "backend": backend,
        "dtype": dtype,
        "on_divergence": on_divergence,
        "divergence_threshold": threshold,
        "sgdsim_version": __version__,
    }
    if svag != 1.0:
        config["svag"] = svag
    traj = _assemble(final, rec, lowered, status, config, theta0, opt.momentum != 0)
    if status is RunStatus.DIVERGED and on_divergence == "raise":
        step, rep = traj.divergence
        raise DivergenceError(step, rep, traj)
    return traj


# --- helpers ---------------------------------------------------------------------------------
#: longest piece a run advances at once (so a schedule is evaluated in windows of ≤ 32 MiB)
MAX_PIECE = 1 << 22


def _check_svag(svag, backend: str, optimizer: SGD, sampling: str) -> float:
    """``svag`` as a float ≥ 1, refused where the SVAG iteration is not defined or not built."""
    if isinstance(svag, bool) or not isinstance(svag, (int, float, np.integer, np.floating)):
        raise TypeError(f"`svag` must be a real number ≥ 1, got {svag!r}")
    ell = float(svag)
    if not np.isfinite(ell) or ell < 1.0:
        raise ValueError(f"`svag` must be a finite number ≥ 1 (ℓ = 1 is plain SGD), got {svag!r}")
    if ell == 1.0:
        return ell
    if backend == "numba":
        raise ValueError(f"`svag`={svag!r} runs on the array backends only: pass backend='numpy' (or 'cupy')")
    if optimizer.momentum != 0 or optimizer.nudge_top_k:
        raise ValueError(f"`svag`={svag!r} is defined for plain SGD: the optimizer has momentum or nudging")
    if sampling == "epoch_shuffle":
        raise ValueError(
            f"`svag`={svag!r} needs two independent minibatches per step; sampling='epoch_shuffle' "
            "draws dependent ones: use 'with_replacement', 'without_replacement' or 'gaussian'"
        )
    return ell


def _record_names(record) -> tuple[str, ...]:
    """``record`` as a tuple of observable names; one name may be given as a string."""
    if isinstance(record, str):
        record = (record,)
    try:
        names = tuple(record)
    except TypeError:
        raise TypeError(
            f"`record` must be a name or a sequence of names from {OBSERVABLES}, got {record!r}"
        ) from None
    for name in names:
        check_choice("record", name, OBSERVABLES)
    return names


def _initial_array(
    name: str, spec: InitSpec, seed: int, replicas: int, d: int, *, spawn_key: int
) -> np.ndarray:
    """An (R, d) starting array from ``spec`` (None: zeros); a callable draws from its own stream."""
    if spec is None:
        return np.zeros((replicas, d))
    if isinstance(spec, (str, bytes)):
        raise TypeError(
            f"`{name}` must be an array of shape ({d},) or ({replicas}, {d}), a callable (rng, R) -> "
            f"(R, {d}) or None (zeros), got the string {spec!r}"
        )
    if callable(spec):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(spawn_key,)))
        arr = np.asarray(spec(rng, replicas), dtype=np.float64)
        if arr.shape != (replicas, d):
            raise ValueError(f"`{name}` callable must return shape ({replicas}, {d}), got {arr.shape}")
    else:
        arr = np.asarray(spec, dtype=np.float64)
        if arr.shape == (d,):
            arr = np.broadcast_to(arr, (replicas, d))
        elif arr.shape != (replicas, d):
            raise ValueError(f"`{name}` must have shape ({d},) or ({replicas}, {d}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite")
    return np.array(arr)


def _resolve_nudge(opt: SGD, problem, lowered: Lowered) -> SGD:
    """Express the NSGD directions in kernel coordinates (exact eigenvectors if not given)."""
    if not opt.nudge_top_k:
        return opt
    k = opt.nudge_top_k
    if k > lowered.dim:
        raise ValueError(f"`top_k`={k} exceeds the problem dimension {lowered.dim}")
    basis = opt.nudge_basis
    if basis is None:
        if not hasattr(problem, "hessian_matrix"):
            raise ValueError(
                "nudged_sgd without `eigenvectors` needs a problem with an exact Hessian "
                f"(Quadratic, LinearRegression); pass eigenvectors=... for {type(problem).__name__}"
            )
        lam, vec = np.linalg.eigh(problem.hessian_matrix())
        basis = vec[:, np.argsort(-lam, kind="stable")[:k]]
    if basis.shape[0] != lowered.dim:
        raise ValueError(f"`eigenvectors` has {basis.shape[0]} rows, problem dimension is {lowered.dim}")
    return opt.with_nudge_basis(lowered.to_kernel(basis.T).T)


def _run_chunks(runner, rec, steps, work, progress, on_divergence) -> tuple[RunStatus, tuple]:
    """Advance a fresh state in pieces (a progress bar on long runs); divergence can end the run
    early. Returns the status and the runner's final ``(θ, buf, diverged_at)``."""
    status = RunStatus.OK
    state = runner.init()
    # pieces of at most MAX_PIECE steps: the learning-rate schedule is evaluated one piece at a time
    for t0, n in chunks(steps, work, progress, desc="simulate", max_length=MAX_PIECE):
        state = runner.advance(state, t0, n, rec)
        status = RunStatus.from_divergence(runner.diverged(state))
        if status is RunStatus.DIVERGED and on_divergence in ("raise", "stop"):
            break
    final = runner.final(state)
    div = final[2]
    if status is RunStatus.DIVERGED and on_divergence == "stop":
        first = int(div[div >= 0].min())
        for arr in rec.arrays.values():
            arr[:, first // rec.every + 1 :] = np.nan
        status = RunStatus.STOPPED
    return status, final


def _assemble(final, rec: Records, lowered: Lowered, status, config, theta0, momentum: bool) -> Trajectory:
    steps = np.arange(config["steps"] // rec.every + 1) * rec.every
    data_vars = {}
    for name, arr in rec.arrays.items():
        if name == "params":
            data_vars[name] = (("step", "replica", "dim"), lowered.to_user(arr).transpose(1, 0, 2))
        else:
            data_vars[name] = (("step", "replica"), arr.T)
    theta, buf, div = final
    data_vars["final_params"] = (("replica", "dim"), lowered.to_user(theta))
    if momentum:
        data_vars["final_buffer"] = (("replica", "dim"), lowered.to_user(buf))
    data_vars["diverged_at"] = (("replica",), div)
    ds = xr.Dataset(
        data_vars,
        coords={"step": steps, "replica": np.arange(theta0.shape[0]), "dim": np.arange(lowered.dim)},
        attrs={"status": status.value, "config": json.dumps(config)},
    )
    for name, (description, units) in DESCRIPTIONS.items():
        if name in ds.variables:
            ds[name].attrs.update(description=description, units=units)
    return Trajectory(ds)


#: what each saved variable is, and its units, written as variable attributes (a saved file says
#: what it holds without sgdsim)
DESCRIPTIONS = {
    "loss": ("full-batch loss L(θ_t)", "loss units (½·squared error for least squares)"),
    "dist2": ("‖θ_t − θ_0‖², squared distance travelled", "parameter units²"),
    "step2": ("‖θ_t − θ_{t−1}‖², squared step length (NaN at step 0)", "parameter units²"),
    "velocity2": ("‖buf_t‖², squared momentum buffer (PyTorch's buf)", "gradient units²"),
    "params": ("θ_t, the parameters", "parameter units"),
    "final_params": ("θ after the last step (or at divergence)", "parameter units"),
    "final_buffer": ("momentum buffer after the last step", "gradient units"),
    "diverged_at": ("first step at which the replica diverged; −1 = never", "steps"),
    "step": ("SGD step index t", "steps"),
}


def _describe_problem(problem) -> dict:
    out = {"type": type(problem).__name__, "dim": int(getattr(problem, "dim", 0)),
           "arrays_sha256": _fingerprint(problem)}  # fmt: skip
    noise = getattr(problem, "noise", None)
    if noise is not None:
        out["noise"] = type(noise).__name__
        if hasattr(noise, "sigma2"):
            out["sigma2"] = noise.sigma2
    if isinstance(problem, LinearRegression):
        out["n_samples"] = problem.n_samples
    return out


def _fingerprint(problem) -> str:
    """SHA-256 of the problem's defining arrays (data, spectrum, minimum, features: every array
    attribute, by name), so a saved run can be matched to the problem that made it."""
    h = hashlib.sha256()
    for name, value in sorted(getattr(problem, "__dict__", {}).items()):
        if isinstance(value, np.ndarray):
            h.update(name.encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _describe_init(init) -> str:
    if init is None:
        return "zeros"
    if callable(init):
        return f"callable {getattr(init, '__qualname__', repr(init))}"
    arr = np.ascontiguousarray(np.asarray(init, dtype=np.float64))
    return f"array {list(arr.shape)}, sha256 {hashlib.sha256(arr.tobytes()).hexdigest()}"
