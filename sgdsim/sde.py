"""The SDE front door: ensembles of Euler–Maruyama, BAOAB and exact-OU paths.

The companion of :func:`sgdsim.simulate` for stochastic differential equations, with the same
conventions (``backend=``, ``seed=``, ``record``/``every``, ``progress``, ``on_divergence``). Each
integrator validates its arguments, lowers the model or problem once
(:func:`sgdsim.backends.lowering.lower_potential`), gets a runner from the backend registry
(:func:`sgdsim.backends.get_sde_backend`) and advances it piece by piece. ``backend="numba"``:
compiled kernels (:mod:`sgdsim.backends.sde_numba`), one xoshiro256++ stream per path, so the
same ``seed`` gives bitwise identical paths whatever the thread count. ``backend="numpy"`` (the
reference) or ``"cupy"`` (GPU): whole-ensemble array code (:mod:`sgdsim.backends.sde_array`,
counter-based streams: same law, other numbers). Nothing but the
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
  ``dx = v dt, dv = −∇U(x)dt − Γv dt + √(2D_v) dW`` (BAOAB).

Scheme summary (``h = dt``; ``ξ ~ N(0, I)`` fresh each step)
--------------------------------------------------------------
* Euler–Maruyama: ``x ← x + h f(x) + √h G ξ`` with ``G Gᵀ = 2D``; strong order 1/2, weak order 1.
* BAOAB (Leimkuhler & Matthews 2013): kick ``B``: ``v ← v − (h/2)∇U(x)``; drift ``A``:
  ``x ← x + (h/2)v``; ``O``: the exact Ornstein–Uhlenbeck velocity update over ``h``,
  ``v ← e^{−Γh}v + N(0, Σ_O)``, ``Σ_O,ij = 2D_v,ij (1 − e^{−(γ_i+γ_j)h})/(γ_i+γ_j)``; then ``A``,
  ``B``. Weak order 2; for a harmonic potential its stationary position covariance is exact.
* Exact OU transition (linear models only): ``y ← e^{−Ah} y + N(0, Σ(h))``, ``y = x − x*``,
  ``Σ(h)`` by Van Loan's block exponential: exact in law for every ``h``.

For linear models, :func:`sgdsim.theory.schemes.scheme_transition` gives each scheme's exact
one-step linear map, so the exact moments of the *discretization* (not only of the SDE) are
available as a check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sgdsim._progress import chunks
from sgdsim._validation import (
    as_float_array,
    check_choice,
    check_int,
    check_positive,
    check_psd,
)
from sgdsim._version import __version__
from sgdsim.backends import get_sde_backend
from sgdsim.backends.base import SDERecords, SDESpec
from sgdsim.backends.lowering import Lowered, lower_potential
from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin, _matrix_or_diag
from sgdsim.theory.schemes import ou_velocity_step
from sgdsim.trajectory import DivergenceError, RunStatus, default_divergence_threshold

__all__ = ["SDEPaths", "baoab", "euler_maruyama", "exact_ou"]

_SCALARS = ("dist2", "x2", "v2")  # ‖x_t − x_0‖², ‖x_t‖², ‖v_t‖²   (x = positions)
_VECTORS = ("x", "v")


# ================================ the result ====================================================
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
    status : RunStatus
        ``"ok"`` or ``"diverged"`` (as :attr:`sgdsim.Trajectory.status`; :attr:`message`).
    """

    method: str
    dt: float
    steps: np.ndarray
    records: dict
    final_x: np.ndarray
    final_v: np.ndarray | None
    run: dict
    diverged_at: np.ndarray
    status: RunStatus = RunStatus.OK

    @property
    def times(self) -> np.ndarray:
        """Recorded times ``steps · dt``, shape (n_rec,)."""
        return self.steps * self.dt

    @property
    def message(self) -> str:
        """What :attr:`status` means, in a sentence."""
        return self.status.message

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.records:
            raise KeyError(f"{name!r} was not recorded; recorded: {sorted(self.records)}")
        return self.records[name]


def _common(dt, steps, replicas, every, backend, dtype, on_divergence, seed):
    """The integrators' shared arguments, validated: ``(dt, steps, R, every, n_rec, runner
    class, ftype)`` with the runner class from the backend registry and ``ftype`` the arithmetic
    dtype (``seed`` is checked only: a non-negative integer, not a bool or a string)."""
    check_int("seed", seed, minimum=0)
    dt = check_positive("dt", dt)
    steps = check_int("steps", steps, minimum=0)
    R = check_int("replicas", replicas, minimum=1)
    every = check_int("every", every, minimum=1)
    check_choice("dtype", dtype, ("float64", "float32"))
    check_choice("on_divergence", on_divergence, ("raise", "record"))
    runner_cls = get_sde_backend(backend)
    if dtype != "float64" and not runner_cls.supports_float32:
        raise ValueError(
            f"`dtype`={dtype!r} needs an array backend (backend='numpy' or 'cupy'); "
            "the Numba SDE kernels run in float64"
        )
    return dt, steps, R, every, steps // every + 1, runner_cls, np.dtype(dtype)


def _is_problem(model) -> bool:
    from sgdsim.problems import CustomProblem, LinearRegression, Quadratic
    from sgdsim.problems.random_potential import GaussianRandomPotential

    return isinstance(model, (Quadratic, LinearRegression, GaussianRandomPotential, CustomProblem))


def _linear(M: np.ndarray, x_star: np.ndarray) -> Lowered:
    return Lowered("linear", x_star.shape[0], {"M": M, "x_star": x_star})


def _noise_factor(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """A factor ``N`` with ``N Nᵀ = cov`` (PSD): diagonal when ``cov`` is, else symmetric root."""
    n = cov.shape[0]
    if _is_diagonal(cov):
        return np.sqrt(np.maximum(np.diag(cov), 0.0)), np.zeros((n, n)), True
    w, V = np.linalg.eigh(0.5 * (cov + cov.T))
    return np.zeros(n), (V * np.sqrt(np.maximum(w, 0.0))) @ V.T, False



def _is_diagonal(M: np.ndarray) -> bool:
    return not np.any(M - np.diag(np.diag(M)))


def _records(record, n_rec: int, R: int, d: int, second_order: bool, every: int) -> SDERecords:
    """Validated record names → zeroed host buffers."""
    if isinstance(record, str):
        record = (record,)
    if not isinstance(record, (tuple, list)):
        raise TypeError(f"`record` must be a name or a sequence of names, got {record!r}")
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
    return SDERecords(rec_x, rec_v, rec_s, codes, scal, every)


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



def _run(runner_cls, spec: SDESpec, rec: SDERecords, steps: int, work: float, progress, desc: str):
    """Advance a fresh runner through the run in pieces; ``(X, V, diverged_at)`` on the host."""
    runner = runner_cls(spec)
    state = runner.init()
    for start, k in chunks(steps, work, progress, desc=desc, multiple_of=rec.every, split_long=False):
        state = runner.advance(state, start, k, rec)
    return runner.final(state)


def _result(method, spec: SDESpec, rec: SDERecords, n_rec: int, X, V, div, backend: str, dtype: str,
            on_divergence: str) -> SDEPaths:  # fmt: skip
    """Assemble the result; NaN out what follows a divergence, and raise if asked to."""
    every = rec.every
    bad = np.flatnonzero(div >= 0)
    for r in bad:
        first = -(-int(div[r]) // every)  # the first record at or after the divergence
        for arr in (rec.x, rec.v, rec.s):
            if arr.shape[0]:
                arr[first:, r] = np.nan
        X[r] = np.nan
        if V is not None:
            V[r] = np.nan
    recs = {}
    if rec.x.shape[0]:
        recs["x"] = rec.x
    if rec.v.shape[0]:
        recs["v"] = rec.v
    for j, nm in enumerate(rec.names):
        recs[nm] = rec.s[:, :, j].copy()
    run = {"seed": spec.seed, "backend": backend, "dtype": dtype, "sgdsim_version": __version__}
    paths = SDEPaths(method, spec.dt, np.arange(n_rec) * every, recs, X, V, run, div,
                     RunStatus.from_divergence(div))  # fmt: skip
    if bad.size and on_divergence == "raise":
        r = int(bad[np.argmin(div[bad])])
        raise DivergenceError(int(div[r]), r, paths, advice=(
            "Lower `dt` (or check the drift's stability), or pass on_divergence='record' to get "
            "the other paths (diverged ones are NaN after their step, see `.diverged_at`)."))
    return paths


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
        (:mod:`sgdsim.backends.sde_array`); same law, different numbers than ``"numba"``.
    dtype : {"float64", "float32"}
        Arithmetic precision; float32 on the array backends only (precision loss:
        :mod:`sgdsim.backends.sde_array`). Records and results are float64.
    progress : bool, optional
        Show a progress bar (default: only for long runs, ≳ 2e9 coordinate updates).
    on_divergence : {"raise", "record"}
        A path diverges when its squared state norm is non-finite or above
        ``1e20·max(1, ‖start‖², ‖x*‖²)``. "raise": :class:`~sgdsim.DivergenceError` naming the
        first such step and path (the result attached as ``.trajectory``); "record": return,
        with the diverged paths NaN from their step on and :attr:`SDEPaths.diverged_at` set.
    """
    dt, steps, R, every, n_rec, runner_cls, ftype = _common(dt, steps, replicas, every, backend, dtype,
                                                            on_divergence, seed)  # fmt: skip
    potential = None
    if _is_problem(model):
        potential = lower_potential(model)
        if diffusion is None:
            raise ValueError("with an sgdsim problem as the potential, pass `diffusion` (the SDE's D)")
        if potential.kind == "linear":  # exactly the OU process dx = −H(x − θ*)dt + √(2D) dW
            model = LinearSDE(potential.arrays["M"], diffusion, potential.arrays["x_star"])
            diffusion = None
        else:
            x0 = np.zeros(model.dim) if x0 is None else x0
    second = isinstance(model, UnderdampedLangevin)
    if isinstance(model, (LinearSDE, UnderdampedLangevin)):
        if diffusion is not None:
            raise ValueError("`diffusion` is taken from the model; pass diffusion=None")
        lin, d, X = _linear_state(model, x0, v0, R)
        potential = _linear(lin.A, lin.x_star)
        D, x_ref = lin.D, lin.x_star
    else:
        if diffusion is None or x0 is None:
            raise ValueError("a gradient model needs `diffusion` and `x0` (to fix the dimension)")
        x0a = as_float_array("x0", x0)
        d = n = x0a.shape[-1]
        X = _initial("x0", x0a, R, n, np.zeros(n))
        D = check_psd("diffusion", _matrix_or_diag("diffusion", diffusion, n))
        if potential is None:
            potential = Lowered("user", d, {}, problem=model)
        x_ref = None
    nd, nf, diag = _noise_factor(2.0 * D * dt)
    rec = _records(record, n_rec, R, d, second, every)
    spec = SDESpec("euler_maruyama", potential, X, None, d, dt, np.ones(X.shape[1]), nd, nf, diag, seed,
                   default_divergence_threshold(X, x_ref), ftype)  # fmt: skip
    Xf, _, div = _run(runner_cls, spec, rec, steps, R * steps * X.shape[1], progress, "euler_maruyama")
    V = Xf[:, d:].copy() if second else None
    return _result("euler_maruyama", spec, rec, n_rec, Xf[:, :d].copy(), V, div, backend, dtype,
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
    dt, steps, R, every, n_rec, runner_cls, ftype = _common(dt, steps, replicas, every, backend, dtype,
                                                            on_divergence, seed)  # fmt: skip
    potential = None
    if _is_problem(model):
        potential = lower_potential(model)
        if friction is None or velocity_diffusion is None:
            raise ValueError("with an sgdsim problem as the potential, pass `friction` and "
                             "`velocity_diffusion`")  # fmt: skip
        if potential.kind == "linear":  # exactly the underdamped OU process with stiffness H
            model = UnderdampedLangevin(potential.arrays["M"], friction, velocity_diffusion,
                                        potential.arrays["x_star"])  # fmt: skip
            friction = velocity_diffusion = None
            potential = None
        else:
            x0 = np.zeros(model.dim) if x0 is None else x0
    if isinstance(model, UnderdampedLangevin):
        if friction is not None or velocity_diffusion is not None:
            raise ValueError("`friction`/`velocity_diffusion` come from the model; pass None")
        m = model
        potential = _linear(m.K, m.x_star)
    else:
        if friction is None or velocity_diffusion is None or x0 is None:
            raise ValueError("a gradient model needs `friction`, `velocity_diffusion` and `x0`")
        x0a = as_float_array("x0", x0)
        dd = x0a.shape[-1]
        m = UnderdampedLangevin(np.zeros(dd), friction, velocity_diffusion)  # validated carrier
        if potential is None:
            potential = Lowered("user", dd, {}, problem=model)
    d = m.dim
    X = _initial("x0", x0, R, d, m.x_star)
    V = _initial("v0", v0, R, d, np.zeros(d))
    c, sig_o = ou_velocity_step(m.friction, m.velocity_diffusion, dt)
    nd, nf, diag = _noise_factor(sig_o)
    rec = _records(record, n_rec, R, d, True, every)
    spec = SDESpec("baoab", potential, X, V, d, dt, c, nd, nf, diag, seed,
                   default_divergence_threshold(np.hstack([X, V]), m.x_star), ftype)  # fmt: skip
    Xf, Vf, div = _run(runner_cls, spec, rec, steps, R * steps * d, progress, "baoab")
    return _result("baoab", spec, rec, n_rec, Xf, Vf, div, backend, dtype, on_divergence)


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
    dt, steps, R, every, n_rec, runner_cls, ftype = _common(dt, steps, replicas, every, backend, dtype,
                                                            on_divergence, seed)  # fmt: skip
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
    rec = _records(record, n_rec, R, d, second, every)
    spec = SDESpec("exact_ou", _linear(E, lin.x_star), X, None, d, dt, np.ones(X.shape[1]), nd, nf,
                   False, seed, default_divergence_threshold(X, lin.x_star), ftype)  # fmt: skip
    Xf, _, div = _run(runner_cls, spec, rec, steps, R * steps * X.shape[1], progress, "exact_ou")
    V = Xf[:, d:].copy() if second else None
    return _result("exact_ou", spec, rec, n_rec, Xf[:, :d].copy(), V, div, backend, dtype,
                   on_divergence)  # fmt: skip
