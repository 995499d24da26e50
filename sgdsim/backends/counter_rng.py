"""A counter-based random generator for array code (NumPy and CuPy alike).

Draw ``j`` of replica ``r`` is a pure function of (key_r, counter): SplitMix64's output function
(Steele, Lea & Flood 2014) applied to ``key_r + γ·(counter + 1)``, γ = 0x9E3779B97F4A7C15 —
i.e. replica ``r`` walks its own SplitMix64 sequence, with the 64-bit start ``key_r`` drawn from
``numpy.random.SeedSequence(seed)``. Nothing depends on evaluation order, so results are the same
however replicas are split across threads or GPU blocks, and the same on NumPy and CuPy (integer
arithmetic wraps modulo 2⁶⁴ in both). Normals come from Box–Muller on pairs of uniforms (exact),
integers from Lemire's multiply-shift with rejection (exact).
"""

from __future__ import annotations

import math

import numpy as np

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


class CounterRNG:
    """Per-replica counter-based streams on the array namespace ``xp``.

    Every call draws the same number of values for every replica, so one shared counter offset
    addresses all streams; calls advance it.
    """

    def __init__(self, seed: int, replicas: int, xp=np, spawn_key: int = 1):
        self.xp = xp
        ss = np.random.SeedSequence(seed, spawn_key=(spawn_key,))
        self.keys = xp.asarray(ss.generate_state(replicas, dtype=np.uint64))[:, None]
        self.offset = 0

    def bits(self, n: int):
        """Raw 64-bit words, shape (R, n), uint64."""
        xp = self.xp
        ctr = xp.arange(self.offset + 1, self.offset + n + 1, dtype=xp.uint64)[None, :]
        self.offset += n
        z = self.keys + ctr * xp.uint64(_GAMMA)
        z = (z ^ (z >> xp.uint64(30))) * xp.uint64(_M1)
        z = (z ^ (z >> xp.uint64(27))) * xp.uint64(_M2)
        return z ^ (z >> xp.uint64(31))

    def uniform(self, n: int):
        """Uniform doubles in [0, 1), shape (R, n)."""
        return (self.bits(n) >> self.xp.uint64(11)).astype(self.xp.float64) * 2.0**-53

    def normal(self, n: int):
        """Standard normals, shape (R, n) (Box–Muller on ⌈n/2⌉ pairs)."""
        xp = self.xp
        m = (n + 1) // 2
        u1 = ((self.bits(m) >> xp.uint64(11)).astype(xp.float64) + 1.0) * 2.0**-53  # (0, 1]
        u2 = self.uniform(m)
        rad = xp.sqrt(-2.0 * xp.log(u1))
        ang = 2.0 * math.pi * u2
        return xp.concatenate([rad * xp.cos(ang), rad * xp.sin(ang)], axis=1)[:, :n]

    def randbelow(self, n: int, upper: int):
        """Uniform integers in [0, upper), shape (R, n), int64; 0 < upper < 2**32."""
        xp = self.xp
        hi = xp.uint64(upper)
        m = (self.bits(n) >> xp.uint64(32)) * hi
        low = m & xp.uint64(0xFFFFFFFF)
        threshold = (2**32 - upper) % upper
        if threshold == 0:  # upper is a power of two: nothing to reject (and no device sync)
            return (m >> xp.uint64(32)).astype(xp.int64)
        bad = low < xp.uint64(threshold)
        while bool(bad.any()):  # probability < upper / 2**32 per draw
            redraw = (self.bits(n) >> xp.uint64(32)) * hi
            m = xp.where(bad, redraw, m)
            bad = bad & ((m & xp.uint64(0xFFFFFFFF)) < xp.uint64(threshold))
        return (m >> xp.uint64(32)).astype(xp.int64)
