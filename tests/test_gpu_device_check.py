"""The prepared GPU check (issue 17) on a machine without a GPU: the script skips cleanly, and the
benchmark's comparison logic runs end to end on the CuPy code path behind the fake device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gpu_available() -> bool:
    from benchmarks.gpu_ensembles import cupy_reason

    return cupy_reason() is None


def test_device_script_skips_cleanly_without_a_gpu(tmp_path):
    if _gpu_available():
        pytest.skip("a GPU is present: the script would run the full check")
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_device_check.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipped: no usable GPU" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "gpu_ensembles.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["environment", "skipped"]
    assert "CuPy" in rows[1]["reason"]
    assert (tmp_path / "env.txt").exists()


def test_benchmark_compares_backends_on_the_fake_device(monkeypatch, tmp_path):
    """Every row the device run would print, at tiny sizes, with ``backend='cupy'`` on the strict
    CPU stand-in: a ratio, a finite cross-backend z and bitwise reproducibility of the seeded
    "GPU" run (the stand-in computes with NumPy, so equality here checks the benchmark's digest
    logic; on a GPU it checks CuPy's determinism)."""
    import fake_device

    from benchmarks import gpu_ensembles
    from sgdsim.backends import cupy_backend

    monkeypatch.setattr(cupy_backend, "cupy_or_error", fake_device.namespace)
    sink = tmp_path / "rows.jsonl"
    argv = ["--workloads", "w1", "w3", "rff", "--dtypes", "float64", "--scale", "0.004", "--repeats", "1",
            "--jsonl", str(sink)]  # fmt: skip
    assert gpu_ensembles.main(argv) == 0
    rows = [json.loads(line) for line in sink.read_text().splitlines()]
    ratios = [r for r in rows if r.get("ratio") == "cupy / numba"]
    assert [r["workload"] for r in ratios] == ["W1", "W1", "W3", "RFF"]
    for r in ratios:
        assert r["value"] > 0 and np.isfinite(r["z_cupy_vs_numba"])
        assert r["gpu_bitwise_reproducible"] is True
    timed = [r for r in rows if r.get("impl") == "sgdsim-cupy"]
    assert all(np.isfinite(r["throughput"]) for r in timed)
    assert all("check_z" in r for r in timed if r["workload"] == "W1")
    assert all("max_abs_z_vs_scheme" in r for r in timed if r["workload"] == "W3")


def test_state_digest_tells_one_bit_apart():
    from benchmarks.gpu_ensembles import state_digest

    a = np.linspace(0.0, 1.0, 7)
    b = a.copy()
    b[3] = np.nextafter(b[3], 2.0)
    assert state_digest([a]) == state_digest([a.copy()])
    assert state_digest([a]) != state_digest([b])
