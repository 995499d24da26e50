"""The engine's layout (issue 11): theory holds closed forms only, the old SDE path warns, and
SGD and SDE results report how a run ended with one status enumeration."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import sgdsim as sg
from sgdsim.sde import euler_maruyama
from sgdsim.theory.langevin import LinearSDE
from sgdsim.trajectory import RunStatus

_THEORY = Path(sg.__file__).parent / "theory"
_FORBIDDEN = ("sgdsim.simulate", "sgdsim.backends", "sgdsim.sde", "sgdsim._rng", "sgdsim._progress",
              "sgdsim.trajectory")  # fmt: skip


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else "sgdsim.theory." + node.module
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def test_theory_imports_no_simulator_code():
    """Closed forms sit at the bottom: no module of sgdsim.theory imports a simulator (the
    deprecated alias sgdsim/theory/sde.py, which re-exports sgdsim.sde, excepted)."""
    bad = {}
    for path in sorted(_THEORY.rglob("*.py")):
        if path == _THEORY / "sde.py":
            continue
        hits = sorted(m for m in _imports(path) if m.startswith(_FORBIDDEN))
        if hits:
            bad[str(path.relative_to(_THEORY))] = hits
    assert bad == {}


def test_stability_and_linreg_moments_do_not_import_each_other_both_ways():
    stab = _imports(_THEORY / "stability.py")
    assert not any(m.startswith("sgdsim.theory.linreg_moments") for m in stab)


def test_old_sde_module_warns_and_forwards():
    sys.modules.pop("sgdsim.theory.sde", None)
    with pytest.warns(DeprecationWarning, match="sgdsim.sde"):
        old = importlib.import_module("sgdsim.theory.sde")
    from sgdsim import sde
    from sgdsim.theory import schemes

    assert old.baoab is sde.baoab and old.euler_maruyama is sde.euler_maruyama
    assert old.exact_ou is sde.exact_ou and old.scheme_moments is schemes.scheme_moments


def test_run_status_codes_and_messages():
    assert [s.code for s in RunStatus] == [0, 1, 2]
    assert RunStatus.OK == "ok" and str(RunStatus.STOPPED) == "stopped"
    assert all(s.message.endswith(".") and len(s.message) > 20 for s in RunStatus)
    assert RunStatus.from_divergence(np.array([-1, -1])) is RunStatus.OK
    assert RunStatus.from_divergence(np.array([-1, 4])) is RunStatus.DIVERGED


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_sgd_and_sde_results_share_status_and_diverged_at(backend):
    """GD on λ = 2 with η = 1.5 multiplies the error by −2 each step; EM on dx = −2x dt with
    dt = 1.5 is the same map: both diverge, and report it the same way."""
    q = sg.Quadratic.from_eigenvalues([2.0])
    traj = sg.simulate(q, sg.sgd(1.5), steps=200, replicas=3, sampling="full", init=np.ones(1),
                       on_divergence="record", backend=backend)  # fmt: skip
    paths = euler_maruyama(LinearSDE([[2.0]], [[1e-6]]), dt=1.5, steps=200, replicas=3, seed=0,
                           x0=[1.0], on_divergence="record", backend=backend)  # fmt: skip
    for res in (traj, paths):
        assert res.status is RunStatus.DIVERGED and res.message == RunStatus.DIVERGED.message
        assert res.diverged_at.shape == (3,) and np.all(res.diverged_at > 0)
    # |x_t| = 2^t from 1: ‖x‖² = 4^t first exceeds 1e20 at t = 34 (4^34 ≈ 2.95e20); the SDE noise
    # (std ~1e-3 per step) cannot move that step
    assert np.all(traj.diverged_at == 34) and np.all(paths.diverged_at == 34)
    ok = euler_maruyama(LinearSDE([[2.0]], [[1.0]]), dt=0.1, steps=10, replicas=2, seed=0,
                        backend=backend)  # fmt: skip
    assert ok.status == "ok" and np.all(ok.diverged_at == -1)
