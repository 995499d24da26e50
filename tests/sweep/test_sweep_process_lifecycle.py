"""A process-pool sweep dies clean: killing the driver with SIGKILL leaves no process behind, and
a script without the ``__main__`` guard is refused with a message saying what to add."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _descendants(root: int) -> set[int]:
    """All live processes whose parent chain reaches ``root`` (from /proc, one scan)."""
    parent = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and (st := _stat(int(p.name))) is not None:
            parent[int(p.name)] = int(st[1])
    out, frontier = set(), {root}
    while frontier:
        frontier = {c for c, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"  # a zombie runs nothing; PID 1 may reap it late


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from functools import partial
        from _sweep_testfns import sleepy
        from sgdsim.sweep import Grid, sweep
        MARKERS = {str(tmp_path / "markers")!r}
        STORE = {str(tmp_path / "store")!r}
    """)
        + textwrap.dedent(body)
    )
    (tmp_path / "markers").mkdir()
    return path


def _run(path: Path) -> subprocess.Popen:
    """Start the script; its stdout/stderr go to files beside it (no pipes left open)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(path.with_suffix(".out"), "w") as out, open(path.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, str(path)], env=env, stdout=out, stderr=err)


def _finish(proc: subprocess.Popen, path: Path) -> tuple[str, str]:
    proc.wait(timeout=120)
    return path.with_suffix(".out").read_text(), path.with_suffix(".err").read_text()


def test_killing_the_driver_leaves_no_worker_alive(tmp_path):
    # before: forkserver, both workers and the resource tracker lived on for > 80 s, computing
    # points that were never saved
    path = _script(
        tmp_path,
        """
        if __name__ == "__main__":
            fn = partial(sleepy, marker_dir=MARKERS, seconds=60.0)
            sweep(fn, Grid(lr=[0.1, 0.2, 0.3, 0.4], seeds=2), store=STORE, executor="processes",
                  workers=2, chunk_size=1, progress=False)
    """,
    )
    proc = _run(path)
    family: set[int] = set()
    try:
        deadline = time.monotonic() + 120  # imports + forkserver start, on a loaded machine
        while len(list((tmp_path / "markers").glob("pid_*"))) < 2:
            assert proc.poll() is None, path.with_suffix(".err").read_text()
            assert time.monotonic() < deadline, "workers never started"
            time.sleep(0.1)
        family = _descendants(proc.pid)
        workers = {int(p.name[4:]) for p in (tmp_path / "markers").glob("pid_*")}
        assert workers <= family and len(family) >= 3  # forkserver + 2 workers (+ tracker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # workers poll the driver every 0.2 s; 15 s allows for a loaded 2-core machine
        deadline = time.monotonic() + 15
        while (alive := {p for p in family if _alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        cmdlines = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in alive}
        assert not alive, f"{len(alive)} of {len(family)} processes survived the driver: {cmdlines}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in family | _descendants(proc.pid):  # if the fix regressed: leak no sleepers
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_script_without_main_guard_is_told_what_to_add(tmp_path):
    # before: StoreLockedError in every worker and "run the same sweep again to resume"
    path = _script(
        tmp_path,
        """
        fn = partial(sleepy, marker_dir=MARKERS, seconds=0.0)
        sweep(fn, Grid(lr=[0.1, 0.2], seeds=1), store=STORE, executor="processes", workers=2,
              progress=False)
    """,
    )
    proc = _run(path)
    _, err = _finish(proc, path)
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in err and "line 11," in err, err  # the sweep(...) call
    assert "StoreLockedError" not in err
    assert not list((tmp_path / "markers").glob("pid_*"))  # refused before any worker ran


def test_guarded_script_runs(tmp_path):
    path = _script(
        tmp_path,
        """
        def main():
            fn = partial(sleepy, marker_dir=MARKERS, seconds=0.0)
            ds = sweep(fn, Grid(lr=[0.1, 0.2], seeds=1), executor="processes", workers=2,
                       progress=False)
            print(float(ds["y"].sum()))

        if __name__ == "__main__":
            main()
    """,
    )
    proc = _run(path)
    out, err = _finish(proc, path)
    assert proc.returncode == 0, err
    assert float(out.strip()) == pytest.approx(0.1 + 0.2)  # y = lr + seed, seed 0
