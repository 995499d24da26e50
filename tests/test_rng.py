"""The per-replica streams: xoshiro256++ against a pure-Python transcription of the published
recurrence, and the derived distributions against their exact laws (fixed seeds, |z| < 4 or
p > 1e-4)."""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import special, stats

from sgdsim import _rng
from sgdsim._rng import (
    fill_standard_normal,
    next_u64,
    normal_lanes,
    randbelow,
    replica_states,
    standard_normal,
    uniform,
)

MASK = (1 << 64) - 1


def _xoshiro_py(state, n):
    """xoshiro256++ (Blackman & Vigna) on Python integers."""
    s = [int(x) for x in state]
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK  # noqa: E731
    out = []
    for _ in range(n):
        out.append((rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK)
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


@njit
def _raw(s, n):
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = next_u64(s)
    return out


@njit
def _normals(s, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = standard_normal(s)
    return out


@njit
def _filled(s, n):
    out = np.empty(n)
    fill_standard_normal(s, out)
    return out


@njit
def _ints(s, n, m):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = randbelow(s, m)
    return out


@njit
def _uniforms(s, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = uniform(s)
    return out


def test_xoshiro_matches_reference_recurrence():
    st = replica_states(123, 1)[0]
    expect = _xoshiro_py(st, 50)
    assert [int(x) for x in _raw(st.copy(), 50)] == expect


def test_states_deterministic_distinct_and_keyed():
    a, b = replica_states(7, 1000), replica_states(7, 1000)
    assert np.array_equal(a, b) and a.shape == (1000, 4) and a.dtype == np.uint64
    assert len({tuple(r) for r in a}) == 1000
    assert not np.array_equal(replica_states(7, 10, spawn_key=1), a[:10])
    assert not np.array_equal(replica_states(8, 10), a[:10])


def test_ziggurat_constants_reproduce_the_published_ones():
    r, v = _rng.ziggurat_constants(256)  # Marsaglia & Tsang (2000), Table/code constants
    assert abs(r - 3.6541528853610088) < 1e-12 and abs(v - 4.92867323399e-3) < 1e-13
    r, v = _rng.ziggurat_constants(128)
    assert abs(r - 3.442619855899) < 1e-11 and abs(v - 9.91256303526217e-3) < 1e-13
    assert abs(_rng.ziggurat_constants(_rng._ZIG_N)[0] - _rng._ZIG_R) < 1e-13


def test_ziggurat_layers_have_equal_area_and_close_at_the_mode():
    x, f = _rng._ZIG_X, _rng._ZIG_F
    v = x[0] * f[1]  # base strip width × height f(R) = rectangle + tail, by construction
    tail = x[1] * f[1] + np.sqrt(np.pi / 2) * special.erfc(x[1] / np.sqrt(2))
    assert abs(v - tail) < 1e-15
    # layer i ≥ 1: width x_i, height f(x_{i+1}) − f(x_i); the top one closes at f(0) = 1
    areas = x[1:-1] * (f[2:] - f[1:-1])
    np.testing.assert_allclose(areas, v, rtol=1e-9)
    assert x[-1] == 0.0 and np.all(np.diff(x[1:]) < 0)


def test_standard_normal_distribution():
    x = _normals(replica_states(1, 1)[0], 2_000_000)
    assert stats.kstest(x, "norm").pvalue > 1e-4
    n = x.size
    assert abs(x.mean()) / np.sqrt(1 / n) < 4
    assert abs(x.var() - 1) / np.sqrt(2 / n) < 4
    # inner layers, the edge of the top layers, the tail boundary R, the tail
    for c in (0.05, 1.0, 2.5, 3.6, _rng._ZIG_R, 4.5):
        p = 2 * stats.norm.sf(c)
        k = np.sum(np.abs(x) > c)
        assert abs(k - n * p) / np.sqrt(n * p * (1 - p)) < 4, c
    # 400 equiprobable bins: a χ² test resolves per-layer density errors the KS test cannot
    edges = stats.norm.ppf(np.linspace(0, 1, 401))
    counts = np.histogram(x, edges)[0]
    chi2 = np.sum((counts - n / 400) ** 2 / (n / 400))
    assert stats.chi2.sf(chi2, 399) > 1e-4


def test_fill_gives_the_same_sequence_as_single_draws():
    st = replica_states(2, 1)[0]
    a = _normals(st.copy(), 50_000)
    b = _filled(st.copy(), 50_000)
    assert np.array_equal(a, b)


@njit
def _lane_draws(S, n):
    m = S.shape[1]
    out = np.empty((n, m))
    z, u, layer, tmp = np.empty(m), np.empty(m), np.empty(m, dtype=np.int64), np.empty(4, np.uint64)
    for k in range(n):
        normal_lanes(S, z, u, layer, tmp)
        out[k] = z
    return out


def test_lanes_give_each_stream_its_own_sequence():
    st = replica_states(3, 37)  # odd lane count: vector remainder
    got = _lane_draws(np.ascontiguousarray(st.T), 20_000)  # 0.23% edge draws: ~1700 slow paths
    for j in range(37):
        assert np.array_equal(got[:, j], _normals(st[j].copy(), 20_000))
    assert np.sum(np.abs(got) > _rng._ZIG_R) >= 5  # the tail sampler ran (expected 18.6)


def test_randbelow_is_uniform():
    st = replica_states(3, 1)[0]
    for m in (1, 7, 1000):
        k = _ints(st, 200_000, m)
        assert k.min() >= 0 and k.max() < m
        if m > 1:
            counts = np.bincount(k, minlength=m)
            assert stats.chisquare(counts).pvalue > 1e-4


def test_uniform_range_and_law():
    u = _uniforms(replica_states(4, 1)[0], 200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-4


# --- the counter-based generator of the array backend (NumPy and CuPy) ---------------------------
def test_counter_rng_laws_and_replica_independence():
    from sgdsim.backends.counter_rng import CounterRNG

    rng = CounterRNG(5, 4)
    x = rng.normal(50_001)
    assert x.shape == (4, 50_001)
    assert stats.kstest(x.ravel(), "norm").pvalue > 1e-4
    k = rng.randbelow(50_000, 7)
    assert stats.chisquare(np.bincount(k.ravel(), minlength=7)).pvalue > 1e-4
    u = rng.uniform(50_000)
    assert u.min() >= 0 and u.max() < 1 and stats.kstest(u.ravel(), "uniform").pvalue > 1e-4
    # replica r's stream does not depend on how many replicas there are
    assert np.array_equal(CounterRNG(5, 4).normal(9)[:2], CounterRNG(5, 2).normal(9))
    # nor on how the draws are split into calls
    a, b = CounterRNG(5, 3), CounterRNG(5, 3)
    assert np.array_equal(a.bits(10), np.concatenate([b.bits(4), b.bits(6)], axis=1))
