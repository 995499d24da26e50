"""Random walks on random potentials on a lattice (Sinai's walk and its d-dimensional cousins).

Each walker lives on the sites of a box ``shape = (L_1, …, L_d)`` carrying a potential ``V``.
One step (discrete time t → t + 1) of one walker at site ``x``:

1. with probability ``1 − hop_prob`` stay (a lazy step);
2. otherwise pick one of the ``2d`` neighbours ``y = x ± e_k`` uniformly;
3. accept the move with probability ``a(x → y)``:

   * ``rule="metropolis"``: ``a = min(1, exp(−ΔV/T))``, ``ΔV = V(y) − V(x)``;
   * ``rule="arrhenius"``: barrier at the bond midpoint, ``a = exp(−(ΔV + Δ_max)/(2T))``, where
     ``Δ_max`` is the largest ``|ΔV|`` over all bonds of that potential, so ``a <= 1`` (this only
     rescales time by at most ``exp(Δ_max/2T)``).

Both rules satisfy detailed balance, ``π(x) a(x → y) = π(y) a(y → x)`` with ``π ∝ exp(−V/T)``.
At the box edge a ``"reflecting"`` boundary rejects the move out (the walker stays, and
``hit_boundary`` records it: the box was too small); ``"periodic"`` wraps around. Displacements
are tracked unwrapped.

Random numbers: walker ``w`` owns xoshiro256++ stream ``w`` of ``replica_states(seed, walkers)``.
Per attempted step it draws one 64-bit word ``u``: the top 32 bits pick the direction
(``(u_hi · 2d) >> 32``: exact for d = 1, 2; bias <= 2d/2³² otherwise) and the low 32 bits the
lazy test; a second word (53-bit uniform) is drawn only when the acceptance is below 1. The
Numba kernel runs walkers in parallel (``prange``), so results do not depend on the thread count,
and :func:`lattice_walk_reference` reproduces it bit for bit in vectorized NumPy.

Sinai (1982): in d = 1 with a Brownian potential (iid increments of variance σ²), the walk is
ultra-slow, ``x_t ~ (T log t / σ)²``, so ``⟨x²⟩ ∝ (log t)⁴``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange

from ._rng import next_u64, replica_states, uniform, xoshiro_step
from ._validation import (
    as_float_array,
    check_choice,
    check_in_range,
    check_int,
    check_positive,
)
from .analysis.msd import log_spaced_steps

__all__ = [
    "LatticeWalk",
    "brownian_potential",
    "gaussian_lattice_potential",
    "lattice_walk",
    "lattice_walk_reference",
    "rough_lattice_potential",
]

_RULES = {"metropolis": 0, "arrhenius": 1}
_M32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class LatticeWalk:
    """Recorded walk.

    Attributes
    ----------
    times : ndarray of int64, shape (n_rec,)
        Record times (steps); ``times[0] = 0``.
    displacement : ndarray of int64, shape (n_rec, walkers, d)
        Unwrapped lattice displacement from the start, in lattice units.
    final_site : ndarray of int64, shape (walkers, d)
        Site (inside the box) at the last step.
    hit_boundary : ndarray of bool, shape (walkers,)
        Walker tried to leave a reflecting box (always False when periodic).
    """

    times: np.ndarray
    displacement: np.ndarray
    final_site: np.ndarray
    hit_boundary: np.ndarray

    def dist2(self) -> np.ndarray:
        """Squared displacement ``‖x_t − x_0‖²``, shape (n_rec, walkers), float64."""
        d = self.displacement.astype(np.float64)
        return np.einsum("twd,twd->tw", d, d)

    def to_dataarray(self) -> Any:
        """``dist2`` as an xarray DataArray with dims (step, replica).

        Ready for :func:`sgdsim.analysis.ensemble_msd`.
        """
        import xarray as xr

        return xr.DataArray(
            self.dist2(), dims=("step", "replica"), coords={"step": self.times}, name="dist2"
        )


# --- potentials ---------------------------------------------------------------------------------


def brownian_potential(
    n_sites: int,
    *,
    n_potentials: int = 1,
    sigma: float = 1.0,
    increments: str = "gaussian",
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Brownian (Sinai) potential on a 1-D chain: ``V(x+1) − V(x)`` iid with variance ``σ²``.

    Parameters
    ----------
    n_sites : int
        Chain length (>= 2); walkers start at the centre site ``n_sites // 2`` where ``V = 0``.
    n_potentials : int
        Independent realizations (rows).
    sigma : float
        Increment standard deviation (energy units per lattice spacing).
    increments : {"gaussian", "pm1"}
        ``N(0, σ²)`` or ``±σ`` with probability ½ each.
    seed : int or Generator

    Returns
    -------
    ndarray, shape (n_potentials, n_sites)
    """
    n_sites = check_int("n_sites", n_sites, minimum=2)
    n_potentials = check_int("n_potentials", n_potentials, minimum=1)
    sigma = check_positive("sigma", sigma)
    check_choice("increments", increments, ("gaussian", "pm1"))
    rng = np.random.default_rng(seed)
    shape = (n_potentials, n_sites - 1)
    if increments == "gaussian":
        inc = sigma * rng.standard_normal(shape)
    else:
        inc = sigma * (2.0 * rng.integers(0, 2, size=shape) - 1.0)
    v = np.concatenate([np.zeros((n_potentials, 1)), np.cumsum(inc, axis=1)], axis=1)
    return v - v[:, n_sites // 2 : n_sites // 2 + 1]


def _spectral_field(shape, spectrum, n_potentials, rng) -> np.ndarray:
    """Periodic Gaussian fields (n, *shape), covariance C(r) = (1/N) Σ_k S(k) e^{ik·r}."""
    white = rng.standard_normal((n_potentials, *shape))
    f = np.fft.fftn(white, axes=tuple(range(1, len(shape) + 1)))
    field = np.fft.ifftn(f * np.sqrt(spectrum), axes=tuple(range(1, len(shape) + 1))).real
    return field


def _wavevectors(shape: tuple[int, ...]) -> list[np.ndarray]:
    return np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n) for n in shape], indexing="ij")


def _lattice_structure(spectrum: np.ndarray, shape: tuple[int, ...], r: int) -> float:
    """Exact E[(V(x + r e_1) − V(x))²] of the FFT field with this spectrum (unit white noise)."""
    k1 = _wavevectors(shape)[0]
    n = spectrum.size
    # field = IFFT(sqrt(S) FFT(w)): covariance C(r) = (1/N) Σ_k S(k) cos(k·r)
    return float(2.0 * np.sum(spectrum * (1.0 - np.cos(k1 * r))) / n)


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not np.iterable(shape):
        raise TypeError(f"`shape` must be an int or a tuple of ints, got {shape!r}")
    shape = tuple(check_int("shape", s, minimum=2) for s in shape)
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"`shape` must have 1 to 3 entries, got {shape}")
    return shape


def gaussian_lattice_potential(
    shape: int | tuple[int, ...],
    *,
    lengthscale: float,
    sigma: float = 1.0,
    n_potentials: int = 1,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Periodic Gaussian field with squared-exponential correlation on a lattice box.

    Spectral synthesis on the torus: spectral density ``∝ exp(−|k|²ℓ²/2)``; the field has
    stationary variance exactly ``σ²`` (normalized from the discrete spectrum).

    Returns
    -------
    ndarray, shape ``(n_potentials, *shape)``
    """
    shape = _check_shape(shape)
    lengthscale = check_positive("lengthscale", lengthscale)
    sigma = check_positive("sigma", sigma)
    n_potentials = check_int("n_potentials", n_potentials, minimum=1)
    k2 = sum(k**2 for k in _wavevectors(shape))
    spec = np.exp(-0.5 * k2 * lengthscale**2)
    spec[(0,) * len(shape)] = 0.0  # no random offset: V has zero spatial mean
    spec *= spec.size / spec.sum()  # C(0) = (1/N) Σ S = 1
    field = _spectral_field(shape, spec, n_potentials, np.random.default_rng(seed))
    return sigma * field


def rough_lattice_potential(
    shape: int | tuple[int, ...],
    *,
    alpha: float,
    sigma: float = 1.0,
    n_potentials: int = 1,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Periodic rough field with ``E[(V(x+r) − V(x))²] ∝ |r|^α`` (0 < α < 2) on a lattice box.

    Spectral density ``∝ |k|^−(d+α)`` for all nonzero lattice wavevectors (``k_min = 2π/L``,
    ``k_max = π``), so the power law holds for ``1 ≪ r ≪ L``. Normalized so that the
    nearest-neighbour increment along axis 0 has variance exactly ``σ²``.

    Returns
    -------
    ndarray, shape ``(n_potentials, *shape)``
    """
    shape = _check_shape(shape)
    alpha = check_in_range("alpha", alpha, 0.0, 2.0, low_open=True, high_open=True)
    sigma = check_positive("sigma", sigma)
    n_potentials = check_int("n_potentials", n_potentials, minimum=1)
    kabs = np.sqrt(sum(k**2 for k in _wavevectors(shape)))
    spec = np.zeros_like(kabs)
    nz = kabs > 0
    spec[nz] = kabs[nz] ** (-(len(shape) + alpha))
    spec /= _lattice_structure(spec, shape, 1)
    field = _spectral_field(shape, spec, n_potentials, np.random.default_rng(seed))
    return sigma * field


# --- the walk -----------------------------------------------------------------------------------


@njit(cache=True)
def _max_bond(pot: np.ndarray, shape: np.ndarray, strides: np.ndarray, periodic: bool) -> float:
    n = pot.size
    d = shape.size
    m = 0.0
    for i in range(n):
        rem = i
        for k in range(d):
            c = (rem // strides[k]) % shape[k]
            if c + 1 < shape[k]:
                j = i + strides[k]
            elif periodic:
                j = i - c * strides[k]
            else:
                continue
            dv = abs(pot[j] - pot[i])
            if dv > m:
                m = dv
    return m


@njit(cache=True, parallel=True)
def _walk_kernel(pots, shape, strides, start, rec_times, temperature, rule, hop_prob, periodic,
                 dmax, states, out, final_site, hit):
    n_walkers = states.shape[0]
    n_pot = pots.shape[0]
    d = shape.size
    n_rec = rec_times.size
    t_end = rec_times[n_rec - 1]
    hop_thr = np.uint64(min(hop_prob * 4294967296.0, 4294967296.0))
    always_hop = hop_prob >= 1.0
    beta = 1.0 / temperature
    for w in prange(n_walkers):
        s = states[w]
        pot = pots[w % n_pot]
        ar_shift = 0.5 * dmax[w % n_pot] * beta
        site = np.empty(d, dtype=np.int64)
        disp = np.zeros(d, dtype=np.int64)
        idx = 0
        for k in range(d):
            site[k] = start[k]
            idx += start[k] * strides[k]
        hitw = False
        rec = 0
        while rec < n_rec and rec_times[rec] == 0:
            for k in range(d):
                out[rec, w, k] = 0
            rec += 1
        for t in range(1, t_end + 1):
            u = next_u64(s)
            if always_hop or (u & _M32) < hop_thr:
                dirn = np.int64(((u >> np.uint64(32)) * np.uint64(2 * d)) >> np.uint64(32))
                k = dirn >> 1
                step = 1 if (dirn & 1) == 0 else -1
                c = site[k] + step
                ok = True
                if c < 0 or c >= shape[k]:
                    if periodic:
                        c = c % shape[k]
                    else:
                        ok = False
                        hitw = True
                if ok:
                    j = idx + (c - site[k]) * strides[k]
                    dv = pot[j] - pot[idx]
                    if rule == 0:
                        acc = 1.0 if dv <= 0.0 else np.exp(-dv * beta)
                    else:
                        acc = np.exp(-0.5 * dv * beta - ar_shift)
                    if acc >= 1.0 or uniform(s) < acc:
                        site[k] = c
                        idx = j
                        disp[k] += step
            if t == rec_times[rec]:
                for k in range(d):
                    out[rec, w, k] = disp[k]
                rec += 1
        for k in range(d):
            final_site[w, k] = site[k]
        hit[w] = hitw


def _prepare(potential, walkers, steps, record_times, n_records, temperature, rule, hop_prob,
             boundary, start, seed):
    pots = as_float_array("potential", potential)
    if pots.ndim < 2 or pots.ndim > 4:
        raise ValueError(
            "`potential` must have shape (n_potentials, *box) with a 1- to 3-D box, "
            f"got {pots.shape}"
        )
    shape = np.array(pots.shape[1:], dtype=np.int64)
    d = shape.size
    walkers = check_int("walkers", walkers, minimum=1)
    temperature = check_positive("temperature", temperature)
    check_choice("rule", rule, tuple(_RULES))
    hop_prob = check_in_range("hop_prob", hop_prob, 0.0, 1.0, low_open=True)
    check_choice("boundary", boundary, ("reflecting", "periodic"))
    if record_times is None:
        steps = check_int("steps", steps, minimum=1)
        n_records = check_int("n_records", n_records, minimum=1)
        rec = log_spaced_steps(steps, n_records)
    else:
        if steps is not None:
            raise TypeError("pass either `steps` or `record_times`, not both")
        rec = np.asarray(record_times)
        if rec.ndim != 1 or rec.size == 0 or not np.issubdtype(rec.dtype, np.integer):
            raise ValueError(f"`record_times` must be a non-empty 1-D integer array, got {rec!r}")
        rec = rec.astype(np.int64)
        if rec[0] < 0 or np.any(np.diff(rec) <= 0):
            raise ValueError("`record_times` must be >= 0 and strictly increasing")
    if start is None:
        start = shape // 2
    else:
        start = np.asarray(start, dtype=np.int64).reshape(-1)
        if start.size != d or np.any(start < 0) or np.any(start >= shape):
            raise ValueError(f"`start` must be a site inside the box {tuple(shape)}, got {start}")
    strides = np.ones(d, dtype=np.int64)
    for k in range(d - 2, -1, -1):
        strides[k] = strides[k + 1] * shape[k + 1]
    flat = np.ascontiguousarray(pots.reshape(pots.shape[0], -1))
    periodic = boundary == "periodic"
    if rule == "arrhenius":
        dmax = np.array([_max_bond(p, shape, strides, periodic) for p in flat])
    else:
        dmax = np.zeros(flat.shape[0])
    states = replica_states(seed, walkers)
    return flat, shape, strides, start, rec, temperature, _RULES[rule], hop_prob, periodic, dmax, \
        states


def lattice_walk(
    potential: Any,
    steps: int | None = None,
    *,
    walkers: int,
    temperature: float = 1.0,
    rule: str = "metropolis",
    hop_prob: float = 1.0,
    boundary: str = "reflecting",
    start: Any = None,
    record_times: Any = None,
    n_records: int = 60,
    seed: int = 0,
) -> LatticeWalk:
    """Run independent walkers on lattice potentials (Numba, parallel over walkers).

    Parameters
    ----------
    potential : array, shape ``(n_potentials, *box)``
        Site energies (1- to 3-D box). Walker ``w`` walks on ``potential[w % n_potentials]``:
        one potential shared by all (``n_potentials = 1``) or one per walker
        (``n_potentials = walkers``, quenched disorder average).
    steps : int
        Steps per walker; records at ~``n_records`` log-spaced times (plus t = 0).
    walkers : int
    temperature : float
        ``T`` in the units of ``potential``.
    rule : {"metropolis", "arrhenius"}
        Acceptance rule (module docstring).
    hop_prob : float
        Probability of attempting a move per step, in (0, 1].
    boundary : {"reflecting", "periodic"}
    start : array of int, shape (d,), optional
        Starting site (default: the box centre).
    record_times : array of int, optional
        Explicit record times instead of ``steps``/``n_records``.
    seed : int

    Returns
    -------
    LatticeWalk
    """
    args = _prepare(potential, walkers, steps, record_times, n_records, temperature, rule,
                    hop_prob, boundary, start, seed)
    shape, rec = args[1], args[4]
    out = np.zeros((rec.size, walkers, shape.size), dtype=np.int64)
    final = np.zeros((walkers, shape.size), dtype=np.int64)
    hit = np.zeros(walkers, dtype=np.bool_)
    _walk_kernel(*args, out, final, hit)
    return LatticeWalk(times=rec, displacement=out, final_site=final, hit_boundary=hit)


def _next_u64_np(s: np.ndarray) -> np.ndarray:
    """Vectorized xoshiro256++ step on rows of ``s`` (uint64, (n, 4), updated in place)."""

    result, *new = xoshiro_step.py_func(s[:, 0], s[:, 1], s[:, 2], s[:, 3])
    s[:, 0], s[:, 1], s[:, 2], s[:, 3] = new
    return result


def lattice_walk_reference(
    potential: Any,
    steps: int | None = None,
    *,
    walkers: int,
    temperature: float = 1.0,
    rule: str = "metropolis",
    hop_prob: float = 1.0,
    boundary: str = "reflecting",
    start: Any = None,
    record_times: Any = None,
    n_records: int = 60,
    seed: int = 0,
) -> LatticeWalk:
    """Slow, plain NumPy version of :func:`lattice_walk` (vectorized over walkers, loop over
    steps); same arguments and the same random streams, hence the same result bit for bit."""
    (flat, shape, strides, start, rec, temperature, rule_c, hop_prob, periodic, dmax,
     states) = _prepare(potential, walkers, steps, record_times, n_records, temperature, rule,
                        hop_prob, boundary, start, seed)
    d = shape.size
    w_pot = np.arange(walkers) % flat.shape[0]
    site = np.tile(start, (walkers, 1))
    disp = np.zeros((walkers, d), dtype=np.int64)
    hit = np.zeros(walkers, dtype=bool)
    out = np.zeros((rec.size, walkers, d), dtype=np.int64)
    beta = 1.0 / temperature
    shift = 0.5 * dmax[w_pot] * beta
    hop_thr = np.uint64(min(hop_prob * 4294967296.0, 4294967296.0))
    rows = np.arange(walkers)
    for t in range(1, int(rec[-1]) + 1):
        u = _next_u64_np(states)
        move = np.ones(walkers, dtype=bool) if hop_prob >= 1.0 else (u & _M32) < hop_thr
        dirn = (((u >> np.uint64(32)) * np.uint64(2 * d)) >> np.uint64(32)).astype(np.int64)
        k = dirn >> 1
        step = np.where(dirn & 1 == 0, 1, -1)
        c = site[rows, k] + step
        outside = (c < 0) | (c >= shape[k])
        if periodic:
            c = c % shape[k]
        else:
            hit |= move & outside
            move &= ~outside
        idx = site @ strides
        j = idx + (c - site[rows, k]) * strides[k]
        j = np.where(move, j, idx)
        dv = flat[w_pot, j] - flat[w_pot, idx]
        with np.errstate(over="ignore"):
            if rule_c == 0:
                acc = np.where(dv <= 0, 1.0, np.exp(-np.maximum(dv, 0.0) * beta))
            else:
                acc = np.exp(-0.5 * dv * beta - shift)
        need = move & (acc < 1.0)
        accept = move.copy()
        if need.any():
            sub = states[need]
            uu = (_next_u64_np(sub) >> np.uint64(11)).astype(np.float64) * 2.0**-53
            states[need] = sub
            accept[need] = uu < acc[need]
        site[rows[accept], k[accept]] = c[accept]
        disp[rows[accept], k[accept]] += step[accept]
        hit_now = np.searchsorted(rec, t)
        if hit_now < rec.size and rec[hit_now] == t:
            out[hit_now] = disp
    return LatticeWalk(times=rec, displacement=out, final_site=site, hit_boundary=hit)
