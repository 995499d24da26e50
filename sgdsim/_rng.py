"""Per-replica random streams for the compiled kernels.

Numba's built-in ``np.random`` is one global stream per thread: results would depend on how
replicas are split across threads, and each draw costs ~40 ns. sgdsim instead gives every replica
its own **xoshiro256++** generator (Blackman & Vigna 2019), a 256-bit state advanced with a handful
of shifts and xors, and draws from it inside the kernels:

* :func:`next_u64` – raw 64-bit output;
* :func:`uniform` – double in [0, 1) from the top 53 bits;
* :func:`randbelow` – unbiased integer in [0, n) (Lemire's multiply-shift with rejection);
* :func:`standard_normal` – N(0, 1) by the ziggurat method (Marsaglia & Tsang 2000, 2048 layers,
  with Doornik's 2005 independent-bits variant and Marsaglia's exact tail sampler);
* :func:`fill_standard_normal` – the same numbers, many at a time, with the generator state held
  in registers (~30% cheaper per draw than repeated :func:`standard_normal` calls);
* :func:`normal_lanes` – one draw from each of many streams at once, streams as SIMD lanes (the
  same numbers again; the layout GPU kernels use, and ~2× cheaper per draw on AVX CPUs).

Streams are derived from one user seed by :func:`replica_states`: ``numpy.random.SeedSequence``
hashes the seed into ``4·R`` well-mixed words, so replica ``r`` sees the same numbers whatever the
thread count, chunking or backend device (the same recurrences run in CuPy kernels).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "fill_standard_normal",
    "next_u64",
    "normal_lanes",
    "randbelow",
    "replica_states",
    "standard_normal",
    "uniform",
    "xoshiro_step",
]

_U1 = np.uint64(1)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53


def replica_states(seed: int | np.random.SeedSequence, n: int, *, spawn_key: int = 0) -> np.ndarray:
    """Independent xoshiro256++ states, one row per replica.

    Parameters
    ----------
    seed : int or SeedSequence
        The user's seed (non-negative integer).
    n : int
        Number of streams (replicas).
    spawn_key : int
        Separates purposes that share a seed (e.g. initial points vs. minibatch noise).

    Returns
    -------
    ndarray of uint64, shape (n, 4)
    """
    if isinstance(seed, np.random.SeedSequence):
        ss = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, spawn_key))
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
        ss = np.random.SeedSequence(int(seed), spawn_key=(spawn_key,))
    states = ss.generate_state(4 * n, dtype=np.uint64).reshape(n, 4)
    zero = ~states.any(axis=1)  # the all-zero state is the one fixed point of xoshiro
    states[zero, 0] = np.uint64(0x9E3779B97F4A7C15)
    return states


def _xoshiro_step(s0, s1, s2, s3):
    """One xoshiro256++ step on the four state words: (output, s0', s1', s2', s3').

    Plain operators only, so the same function serves Numba scalars (:data:`xoshiro_step`) and
    NumPy uint64 arrays of many streams at once (``xoshiro_step.py_func``)."""
    result = ((s0 + s3) << np.uint64(23) | (s0 + s3) >> np.uint64(41)) + s0
    t = s1 << np.uint64(17)
    s2 = s2 ^ s0
    s3 = s3 ^ s1
    s1 = s1 ^ s2
    s0 = s0 ^ s3
    s2 = s2 ^ t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    return result, s0, s1, s2, s3


xoshiro_step = njit(inline="always")(_xoshiro_step)


@njit(inline="always")
def next_u64(s):
    """Advance the xoshiro256++ state ``s`` (uint64[4], updated in place); return 64 bits."""
    result, s0, s1, s2, s3 = xoshiro_step(s[0], s[1], s[2], s[3])
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(inline="always")
def uniform(s):
    """Uniform double in [0, 1) with 53 random bits."""
    return np.float64(next_u64(s) >> np.uint64(11)) * _TWO_M53


@njit(inline="always")
def randbelow(s, n):
    """Uniform integer in [0, n), 0 < n < 2**32, exactly unbiased (Lemire 2019)."""
    nn = np.uint64(n)
    m = (next_u64(s) >> np.uint64(32)) * nn
    low = m & np.uint64(0xFFFFFFFF)
    if low < nn:
        threshold = (np.uint64(0x100000000) - nn) % nn
        while low < threshold:
            m = (next_u64(s) >> np.uint64(32)) * nn
            low = m & np.uint64(0xFFFFFFFF)
    return np.int64(m >> np.uint64(32))


# --- ziggurat tables (2048 layers) ------------------------------------------------------------
# Marsaglia & Tsang (2000) for the unnormalised density f(x) = exp(-x^2/2): N layers of common
# area V, the base strip (rectangle plus tail beyond R) drawn as one wide layer. Doornik's (2005)
# independent bits: the layer index takes the low 11 bits of a 64-bit word, the uniform the top
# 53. With 2048 layers only 0.23% of draws fall outside the inner rectangles (1.5% with the
# classic 256), which is what lets the SIMD lane generator skip its slow path almost always.
_ZIG_BITS = 11
_ZIG_N = 1 << _ZIG_BITS
_ZIG_MASK = np.uint64(_ZIG_N - 1)
_ZIG_R = 4.216370409511897  # solves the closure for N = 2048 (`ziggurat_constants`, tested)


def _f(x: float) -> float:
    return math.exp(-0.5 * x * x)


def _base_area(r: float) -> float:
    """Area of the base strip: the rectangle r·f(r) plus the tail of f beyond r."""
    return r * _f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))


def ziggurat_constants(n_layers: int) -> tuple[float, float]:
    """``(R, V)`` of the ``n_layers``-layer normal ziggurat, solved by bisection on the closure
    condition that the top layer ends exactly at the mode (reproduces Marsaglia & Tsang's
    R = 3.6541528853610088, V = 4.92867323399e-3 for 256 layers)."""

    def overshoot(r: float) -> float:
        v, x = _base_area(r), r
        for _ in range(2, n_layers):
            y = v / x + _f(x)
            if y >= 1.0:
                return 1.0  # closes below the top: r too small
            x = math.sqrt(-2.0 * math.log(y))
        return v / x + _f(x) - 1.0

    lo, hi = 1.0, 8.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if overshoot(mid) > 0 else (lo, mid)
    return hi, _base_area(hi)


def _ziggurat_tables(n: int, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer widths ``x`` (x[0] the base strip, x[1] = R, x[n] = 0), inner-rectangle ratios
    ``x[i+1]/x[i]`` and ``f(x)``."""
    v = _base_area(r)
    x = np.empty(n + 1)
    x[0] = v / _f(r)
    x[1] = r
    for i in range(2, n):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + _f(x[i - 1])))
    x[n] = 0.0
    return x, x[1:] / x[:-1], np.exp(-0.5 * x * x)


_ZIG_X, _ZIG_RATIO, _ZIG_F = _ziggurat_tables(_ZIG_N, _ZIG_R)


@njit
def _normal_tail(s, negative):
    # Marsaglia (1964): exact sampler of the normal tail beyond R.
    while True:
        a = -np.log((np.float64(next_u64(s) >> np.uint64(11)) + 1.0) * _TWO_M53) / _ZIG_R
        b = -np.log((np.float64(next_u64(s) >> np.uint64(11)) + 1.0) * _TWO_M53)
        if 2.0 * b >= a * a:
            return -(_ZIG_R + a) if negative else _ZIG_R + a


@njit
def _ziggurat_edge(s, i, u):
    """The ~0.2% of ziggurat draws outside the inner rectangles: (accepted, value)."""
    if i == 0:
        return True, _normal_tail(s, u < 0.0)
    x = u * _ZIG_X[i]
    return _ZIG_F[i + 1] + uniform(s) * (_ZIG_F[i] - _ZIG_F[i + 1]) < np.exp(-0.5 * x * x), x


@njit(inline="always")
def standard_normal(s):
    """Standard normal double by the 2048-layer ziggurat (99.8% of draws take one 64-bit word)."""
    while True:
        bits = next_u64(s)
        i = np.int64(bits & _ZIG_MASK)
        u = 2.0 * (np.float64(bits >> np.uint64(11)) * _TWO_M53) - 1.0
        if abs(u) < _ZIG_RATIO[i]:
            return u * _ZIG_X[i]
        ok, x = _ziggurat_edge(s, i, u)
        if ok:
            return x


@njit(inline="always")
def fill_standard_normal(s, out):
    """Fill ``out`` with standard normals: the same sequence as repeated :func:`standard_normal`."""
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    for k in range(out.shape[0]):
        while True:
            bits, s0, s1, s2, s3 = xoshiro_step(s0, s1, s2, s3)
            i = np.int64(bits & _ZIG_MASK)
            u = 2.0 * (np.float64(bits >> np.uint64(11)) * _TWO_M53) - 1.0
            if abs(u) < _ZIG_RATIO[i]:
                out[k] = u * _ZIG_X[i]
                break
            s[0] = s0
            s[1] = s1
            s[2] = s2
            s[3] = s3
            ok, x = _ziggurat_edge(s, i, u)
            s0 = s[0]
            s1 = s[1]
            s2 = s[2]
            s3 = s[3]
            if ok:
                out[k] = x
                break
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3


@njit(inline="always")
def normal_lanes(S, z, u_buf, layer_buf, s_tmp):
    """One standard normal from each of ``m`` streams: ``z[j]`` is the next draw of stream ``j``.

    ``S`` (uint64, shape (4, m)) holds the streams' states as columns (structure of arrays, so
    the xoshiro step and the ziggurat's common case run as SIMD lanes); ``u_buf`` (float, (m,)),
    ``layer_buf`` (int64, (m,)) and ``s_tmp`` (uint64, (4,)) are scratch. Each stream yields
    exactly the numbers :func:`standard_normal` would: the ~0.2% of draws outside the inner
    rectangles finish per lane, in the stream's own order."""
    m = z.shape[0]
    n_edge = 0
    for j in range(m):  # vectorized: no branches
        bits, s0, s1, s2, s3 = xoshiro_step(S[0, j], S[1, j], S[2, j], S[3, j])
        S[0, j] = s0
        S[1, j] = s1
        S[2, j] = s2
        S[3, j] = s3
        i = np.int64(bits & _ZIG_MASK)
        u = 2.0 * (np.float64(bits >> np.uint64(11)) * _TWO_M53) - 1.0
        z[j] = u * _ZIG_X[i]
        edge = abs(u) >= _ZIG_RATIO[i]
        u_buf[j] = u
        layer_buf[j] = i if edge else -1  # -1: done
        n_edge += edge
    j = 0
    while n_edge > 0:  # finish the edge draws, lane by lane
        i = layer_buf[j]
        if i >= 0:
            n_edge -= 1
            for w in range(4):
                s_tmp[w] = S[w, j]
            ok, x = _ziggurat_edge(s_tmp, i, u_buf[j])
            z[j] = x if ok else standard_normal(s_tmp)
            for w in range(4):
                S[w, j] = s_tmp[w]
        j += 1
