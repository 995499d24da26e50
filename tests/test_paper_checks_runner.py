"""The paper_checks runner, report writer and CLI, driven by fake checks (no real check modules).

Expected values here are the fake checks' own definitions (e.g. a check that measures 1/3 against
a predicted 1/3), so each assertion follows from the test's inputs, not from the runner's output.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from paper_checks import registry, report, runner
from paper_checks.__main__ import main
from paper_checks.registry import CheckContext, CheckSkipped, CheckSpec, Measurement

# ------------------------------------------------------------------------------------------
# fake checks
# ------------------------------------------------------------------------------------------


def _pass(ctx):
    return Measurement("third", 1 / 3, 1 / 3 + 1e-6, tolerance=1e-4, source="closed form",
                       note="float noise only")


def _fail(ctx):
    # relative error 0.1 against a relative tolerance 0.05: must FAIL
    return [
        Measurement("ok part", 2.0, 2.0, tolerance=0.0, source="exact"),
        Measurement("slope", 2.0, 2.2, tolerance=0.05, relative=True, source="SymPy"),
    ]


def _error(ctx):
    raise RuntimeError("boom in the check")


def _figure(ctx):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    ctx.savefig(fig, "fig_a")  # ".png" appended
    fig2 = Figure(figsize=(2, 2))
    fig2.add_subplot().plot([0, 1], [0, 1])
    fig2.savefig(ctx.figure_path("fig_b.png"))  # saved by other means: still attributed
    return Measurement("figures saved", 2, 2, tolerance=0, source="count")


def _arrays(ctx):
    pred = np.arange(10, dtype=np.float64)
    meas = (pred + 1e-3).astype(np.float32)
    return [
        Measurement("spectrum", pred, meas, tolerance=1e-2, source="dense eigh"),
        Measurement("short", np.array([1, 2.5]), np.array([1, 2.5]), tolerance=0, source="x"),
        # decided by the check (ordering claim), numpy bool
        Measurement("ordered", "increasing", "increasing", passed=np.bool_(True),
                    source="claim", note="one-sided"),
    ]


def _context(ctx):
    # reports what the runner handed over; the test fixes seed=3, quick=False
    return [
        Measurement("seed", 3, ctx.seed, tolerance=0, source="test argument"),
        Measurement("quick", False, ctx.quick, passed=ctx.quick is False, source="test argument"),
    ]


def _bad_return(ctx):
    return 42


def _no_tolerance(ctx):
    return Measurement("undecidable", 1.0, 1.0)  # neither tolerance nor passed -> ERROR row


def _warns(ctx):
    warnings.warn("a deliberate warning", UserWarning, stacklevel=1)
    return Measurement("after warning", 0.0, 0.0, tolerance=0.0)


def _nan(ctx):
    return Measurement("diverged", 1.0, float("nan"), tolerance=1.0, source="closed form")


def _skip(ctx):
    raise CheckSkipped("needs an optional dependency")


def _spec(cid, func, paper="Fake 2024"):
    return CheckSpec(id=cid, paper=paper, claim=f"claim of {cid}", func=func)


ALL = {
    "fake.pass": _spec("fake.pass", _pass),
    "fake.fail": _spec("fake.fail", _fail),
    "fake.error": _spec("fake.error", _error),
    "fake.figure": _spec("fake.figure", _figure),
    "fake.arrays": _spec("fake.arrays", _arrays),
    "other.context": _spec("other.context", _context, paper="Other 2020"),
    "other.bad_return": _spec("other.bad_return", _bad_return),
    "other.no_tolerance": _spec("other.no_tolerance", _no_tolerance),
    "other.warns": _spec("other.warns", _warns),
    "other.nan": _spec("other.nan", _nan),
    "other.skip": _spec("other.skip", _skip),
}


def _loader(specs=None):
    specs = ALL if specs is None else specs
    return lambda: runner.LoadedChecks(checks=dict(specs))


def _strict_json(path: Path):
    def reject(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


# ------------------------------------------------------------------------------------------
# run_checks: verdicts, report, JSON
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    stream = io.StringIO()
    res = runner.run_checks(None, quick=False, out_dir=out, seed=3, stream=stream,
                            loader=_loader())
    return res, out, stream.getvalue()


def test_verdicts_per_check(full_run):
    res, _, _ = full_run
    verdicts = {c.id: c.verdict for c in res.checks}
    assert verdicts == {
        "fake.arrays": "PASS",
        "fake.error": "ERROR",
        "fake.fail": "FAIL",
        "fake.figure": "PASS",
        "fake.pass": "PASS",
        "other.bad_return": "ERROR",
        "other.context": "PASS",
        "other.nan": "FAIL",  # non-finite measured value never passes a tolerance
        "other.no_tolerance": "ERROR",
        "other.skip": "SKIP",
        "other.warns": "PASS",
    }
    assert [c.id for c in res.checks] == sorted(ALL)  # run in id order
    # rows: pass 1, fail 2 (1 ok), error 1, figure 1, arrays 3, context 2, bad 1, notol 1,
    # warns 1, nan 1, skip 1 -> 15 rows; FAIL rows: slope, nan; ERROR rows: error, bad, notol
    c = res.counts()
    assert (c["rows"], c["passed"], c["failed"], c["errors"], c["skipped"]) == (15, 9, 5, 3, 1)
    assert (c["checks"], c["checks_passed"], c["checks_failed"], c["checks_errored"]) == (
        11, 5, 2, 3)
    assert c["checks_skipped"] == 1
    assert next(r for r in res.checks if r.id == "other.skip").skipped == (
        "needs an optional dependency")
    assert res.exit_code == 1 and not res.ok and res.complete


def test_error_check_logs_traceback(full_run):
    res, out, _ = full_run
    err = next(c for c in res.checks if c.id == "fake.error")
    assert err.error == "RuntimeError: boom in the check"
    log = (out / err.log).read_text()
    assert "Traceback" in log and "boom in the check" in log and "_error" in log
    bad = next(c for c in res.checks if c.id == "other.bad_return")
    assert "expected a Measurement" in bad.error
    notol = next(c for c in res.checks if c.id == "other.no_tolerance")
    assert notol.error is None and "neither `passed` nor `tolerance`" in notol.measurements[0].error


def test_figures_attributed_and_written(full_run):
    res, out, _ = full_run
    fig = next(c for c in res.checks if c.id == "fake.figure")
    assert fig.figures == ["figures/fig_a.png", "figures/fig_b.png"]
    for f in fig.figures:
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(not c.figures for c in res.checks if c.id != "fake.figure")


def test_warnings_recorded_not_raised(full_run):
    res, _, _ = full_run
    w = next(c for c in res.checks if c.id == "other.warns")
    assert w.warnings == ["UserWarning: a deliberate warning"]


def test_results_json(full_run):
    _, out, _ = full_run
    data = _strict_json(out / "results.json")
    assert data["status"] == "complete" and data["mode"] == "full" and data["seed"] == 3
    assert data["exit_code"] == 1
    assert data["summary"]["passed"] == 9 and data["summary"]["failed"] == 5
    assert {"sgdsim", "numpy", "python"} <= set(data["versions"])
    checks = {c["id"]: c for c in data["checks"]}
    arr = checks["fake.arrays"]["measurements"]
    assert arr[0]["predicted"] == list(range(10))
    np.testing.assert_allclose(arr[0]["measured"], np.arange(10) + 1e-3, rtol=1e-6)  # float32
    assert arr[0]["deviation"] == pytest.approx(1e-3, rel=1e-3)  # float32 rounding of k + 1e-3
    assert arr[2]["passed_set_by_check"] is True and arr[2]["tolerance"] is None
    slope = checks["fake.fail"]["measurements"][1]
    assert slope == {
        "quantity": "slope", "predicted": 2.0, "measured": 2.2, "tolerance": 0.05,
        "relative": True, "passed_set_by_check": None, "side": None, "margin": None,
        "deviation": pytest.approx(0.1), "source": "SymPy", "note": "", "verdict": "FAIL",
        "error": None,
    }
    nan = checks["other.nan"]["measurements"][0]
    assert nan["measured"] == "nan" and nan["deviation"] == "nan"
    assert checks["fake.error"]["verdict"] == "ERROR"
    assert checks["fake.error"]["log"] == "logs/fake.error.log"
    assert checks["fake.figure"]["figures"] == ["figures/fig_a.png", "figures/fig_b.png"]
    assert all(c["seconds"] >= 0 for c in data["checks"])
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_report_markdown(full_run):
    _, out, _ = full_run
    md = (out / "report.md").read_text()
    assert "**Mode:** full" in md and "**seed:** 3" in md and "status:** complete" in md
    assert "**Host:**" in md and "**Total time:**" in md and "**sgdsim**" in md
    assert "**9 passed, 5 failed** (3 errors), 1 skipped" in md
    header = "| check | paper | claim | quantity | predicted | measured | tolerance | verdict | s |"
    assert header in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")][1:]
    assert len(rows) == 15  # one per row counted in test_verdicts_per_check
    skip = next(r for r in rows if "other.skip" in r)
    assert "| (skipped) | — | needs an optional dependency | — | SKIP |" in skip
    third = next(r for r in rows if "| third |" in r)
    cells = [c.strip() for c in third.strip("|").split(" | ")]
    assert cells[4:8] == ["0.3333", "0.3333", "±0.0001", "PASS"]  # 1/3 to 4 significant digits
    slope = next(r for r in rows if "| slope |" in r)
    assert "±5%" in slope and "**FAIL**" in slope
    spectrum = next(r for r in rows if "| spectrum |" in r)
    assert "(10) array in [0, 9], mean 4.5" in spectrum  # arange(10): min 0, max 9, mean 4.5
    assert "[1, 2.5]" in next(r for r in rows if "| short |" in r)
    assert "RuntimeError: boom in the check" in next(r for r in rows if "fake.error" in r)
    assert "![figures/fig_a.png](figures/fig_a.png)" in md
    assert "[logs/fake.error.log](logs/fake.error.log)" in md
    assert "float noise only" in md and "(closed form)" in md  # note and source in details


def test_progress_lines(full_run):
    _, _, text = full_run
    lines = text.splitlines()
    assert lines[0].startswith("running 11 check(s) in full mode, seed 3")
    assert "[ 1/11] fake.arrays ... PASS 3/3" in lines[1]
    assert any("other.skip ... SKIP" in ln and "optional dependency" in ln for ln in lines)
    assert any("fake.error ... ERROR" in ln and "boom" in ln for ln in lines)
    assert lines[-1].startswith("9 passed, 5 failed (3 errors), 1 skipped")


def test_partial_results_written_after_each_check(tmp_path):
    seen = {}

    def peek(ctx):  # runs second; sees the outputs written after the first check
        data = json.loads((ctx.out_dir / "results.json").read_text())
        seen.update(status=data["status"], ids=[c["id"] for c in data["checks"]])
        return Measurement("peeked", 1, 1, tolerance=0)

    specs = {"a.first": _spec("a.first", _pass), "b.second": _spec("b.second", peek)}
    res = runner.run_checks(out_dir=tmp_path, progress=False, loader=_loader(specs))
    assert seen == {"status": "incomplete", "ids": ["a.first"]}
    assert res.exit_code == 0 and _strict_json(tmp_path / "results.json")["status"] == "complete"


def test_stale_log_removed_when_check_recovers(tmp_path):
    flaky = {"x.flaky": _spec("x.flaky", _error)}
    runner.run_checks(out_dir=tmp_path, progress=False, loader=_loader(flaky))
    assert (tmp_path / "logs/x.flaky.log").exists()
    fixed = {"x.flaky": _spec("x.flaky", _pass)}
    res = runner.run_checks(out_dir=tmp_path, progress=False, loader=_loader(fixed))
    assert res.exit_code == 0 and not (tmp_path / "logs/x.flaky.log").exists()


# ------------------------------------------------------------------------------------------
# selection and discovery
# ------------------------------------------------------------------------------------------


def test_select_checks_patterns():
    ids = lambda pats: [s.id for s in runner.select_checks(ALL, pats)]  # noqa: E731
    assert ids(None) == sorted(ALL)
    assert ids("fake.*") == [
        "fake.arrays", "fake.error", "fake.fail", "fake.figure", "fake.pass"]  # glob
    assert ids("context") == ["other.context"]  # substring
    assert ids("pass,other.n*") == ["fake.pass", "other.nan", "other.no_tolerance"]
    assert ids(["pass", "fail"]) == ["fake.fail", "fake.pass"]
    assert ids("pass,pass") == ["fake.pass"]  # no duplicates
    with pytest.raises(runner.UnknownPatternError, match=r"'kunin\.\*' match no check id") as ei:
        runner.select_checks(ALL, "pass,kunin.*")
    assert "fake.pass" in str(ei.value) and "other.warns" in str(ei.value)  # lists available


FAKE_PKG = {
    "__init__.py": "ORDER = []\n",
    "checks_a.py": """
        from paper_checks.registry import Measurement, check
        from fake_pc_pkg import ORDER
        ORDER.append("a")

        @check("a.one", paper="A 2001", claim="a holds")
        def one(ctx):
            return Measurement("a", 1.0, 1.0, tolerance=0.0)
    """,
    "checks_b.py": """
        from paper_checks.registry import Measurement, check
        from fake_pc_pkg import ORDER
        ORDER.append("b")

        @check("b.one", paper="B 2002", claim="b holds")
        def one(ctx):
            return Measurement("b", 1.0, 1.0, tolerance=0.0)

        raise ImportError("b needs a missing dependency")
    """,
    "checks_c.py": """
        from paper_checks.registry import Measurement, check
        from fake_pc_pkg import ORDER
        ORDER.append("c")

        @check("c.one", paper="C 2003", claim="c holds")
        def one(ctx):
            return Measurement("c", 1.0, 1.5, tolerance=0.1)
    """,
    "helpers.py": "raise AssertionError('not a checks_ module: must not be imported')\n",
}


@pytest.fixture
def fake_pkg(tmp_path, monkeypatch):
    root = tmp_path / "src"
    (root / "fake_pc_pkg").mkdir(parents=True)
    for name, text in FAKE_PKG.items():
        (root / "fake_pc_pkg" / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(registry, "REGISTRY", {})
    yield "fake_pc_pkg"
    for mod in [m for m in sys.modules if m == "fake_pc_pkg" or m.startswith("fake_pc_pkg.")]:
        del sys.modules[mod]


def test_load_checks_discovers_sorted_and_isolates_broken_modules(fake_pkg):
    loaded = runner.load_checks(fake_pkg)
    assert sys.modules["fake_pc_pkg"].ORDER == ["a", "b", "c"]  # sorted import order
    assert sorted(loaded.checks) == ["a.one", "c.one"]  # b.one registered, then removed
    assert list(loaded.import_errors) == ["fake_pc_pkg.checks_b"]
    assert "b needs a missing dependency" in loaded.import_errors["fake_pc_pkg.checks_b"]
    assert "b.one" not in registry.REGISTRY


def test_broken_module_is_an_error_row_unless_filtered_out(fake_pkg, tmp_path):
    loader = lambda: runner.load_checks(fake_pkg)  # noqa: E731
    res = runner.run_checks(out_dir=tmp_path / "all", progress=False, loader=loader)
    verdicts = {c.id: c.verdict for c in res.checks}
    assert verdicts == {"fake_pc_pkg.checks_b": "ERROR", "a.one": "PASS", "c.one": "FAIL"}
    assert "b needs a missing dependency" in (tmp_path / "all" / res.checks[0].log).read_text()
    only_a = runner.run_checks("a.one", out_dir=tmp_path / "a", progress=False, loader=loader)
    assert [c.id for c in only_a.checks] == ["a.one"] and only_a.exit_code == 0
    with pytest.raises(runner.UnknownPatternError, match=r"failed to import.*checks_b"):
        runner.run_checks("b.one", out_dir=tmp_path / "b", progress=False, loader=loader)
    # naming the broken module selects its ERROR row
    only_b = runner.run_checks("checks_b", out_dir=tmp_path / "b", progress=False, loader=loader)
    assert [(c.id, c.verdict) for c in only_b.checks] == [("fake_pc_pkg.checks_b", "ERROR")]
    assert only_b.exit_code == 1


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "load_checks", _loader())

    def call(*argv):
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--out", str(tmp_path / "out")], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return call


def test_cli_exit_codes(cli, tmp_path):
    code, out, _ = cli("--only", "fake.pass,fake.arrays,figure")
    assert code == 0 and "5 passed, 0 failed" in out.splitlines()[-1]  # 1 + 3 + 1 rows
    data = _strict_json(tmp_path / "out" / "results.json")
    assert data["mode"] == "quick" and data["seed"] == 0  # quick is the default
    assert data["patterns"] == ["fake.pass", "fake.arrays", "figure"]
    assert cli("--only", "fake.fail")[0] == 1
    assert cli("--only", "fake.error", "--full", "--seed", "5")[0] == 1
    assert _strict_json(tmp_path / "out" / "results.json")["mode"] == "full"
    assert cli()[0] == 1  # everything: some fail
    assert cli("--only", "skip")[0] == 0  # a skip is not a failure


def test_cli_no_progress_is_quiet(cli):
    code, out, err = cli("--only", "fake.pass", "--no-progress")
    assert (code, out, err) == (0, "", "")
    code, out, err = cli("--only", "fake.fail", "--no-progress")
    assert code == 1 and out == "" and "1 of 2 measurements failed" in err


def test_cli_unknown_pattern_is_usage_error(cli, tmp_path):
    code, out, err = cli("--only", "nosuch.check")
    assert code == 2 and out == ""
    assert "'nosuch.check' match no check id" in err and "fake.pass" in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_cli_list(cli, tmp_path):
    code, out, _ = cli("--list", "--only", "other.c*")
    assert code == 0
    assert out == "other.context  [Other 2020]\n    claim of other.context\n1 check(s)\n"
    code, out, _ = cli("--list")
    assert code == 0 and out.endswith("11 check(s)\n")
    assert not (tmp_path / "out").exists()  # listing runs nothing


@pytest.mark.parametrize(
    "argv", [["--quick", "--full"], ["--seed", "x"], ["--bogus"], ["--seed", "-1"]]
)
def test_cli_usage_errors(cli, capsys, argv):
    assert cli(*argv)[0] == 2


def test_cli_interrupt_keeps_partial_outputs(monkeypatch, tmp_path):
    def interrupt(ctx):
        raise KeyboardInterrupt

    def exits(ctx):
        sys.exit(3)

    specs = {"a.ok": _spec("a.ok", _pass), "b.exits": _spec("b.exits", exits),
             "c.stop": _spec("c.stop", interrupt), "d.never": _spec("d.never", _pass)}
    monkeypatch.setattr(runner, "load_checks", _loader(specs))
    err = io.StringIO()
    code = main(["--out", str(tmp_path)], stdout=io.StringIO(), stderr=err)
    assert code == 130 and "interrupted" in err.getvalue()
    data = _strict_json(tmp_path / "results.json")
    assert data["status"] == "interrupted" and data["planned_checks"] == 4
    assert [(c["id"], c["verdict"]) for c in data["checks"]] == [
        ("a.ok", "PASS"), ("b.exits", "ERROR")]  # sys.exit inside a check is an error
    assert data["checks"][1]["error"] == "SystemExit: 3"
    assert "**interrupted** (2 of 4 checks done)" in (tmp_path / "report.md").read_text()


def test_cli_no_checks_registered(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "load_checks", _loader({}))
    err = io.StringIO()
    assert main(["--out", str(tmp_path)], stdout=io.StringIO(), stderr=err) == 2
    assert "no checks registered" in err.getvalue()


def test_module_entry_point_help():
    proc = subprocess.run(
        [sys.executable, "-m", "paper_checks", "--help"], capture_output=True, text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal width
    assert "--quick" in text and "the default when neither flag is given" in text


# ------------------------------------------------------------------------------------------
# formatting and JSON helpers
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1 / 3, "0.3333"),
        (np.float32(2.5), "2.5"),
        (12, "12"),
        (123456789, "1.235e+08"),
        (-2.5e-7, "-2.5e-07"),
        (float("nan"), "nan"),
        (-np.inf, "-inf"),
        (True, "True"),
        (None, "—"),
        (1 + 2j, "1+2j"),
        ([1, 2.5, 3], "[1, 2.5, 3]"),
        (np.arange(12).reshape(3, 4), "(3, 4) array in [0, 11], mean 5.5"),
        (np.array([1.0, np.nan, 3.0, 5.0, 7.0]), "(5) array in [1, 7], mean 4, 1 non-finite"),
        (np.zeros(6, dtype=bool), "(6) bool, 0 True"),
        ("converges", "converges"),
        ({"eta": 0.1}, "{eta: 0.1}"),
    ],
)
def test_format_value(value, text):
    assert report.format_value(value) == text


def test_format_tolerance():
    assert report.format_tolerance(0.05, relative=True) == "±5%"
    assert report.format_tolerance(1e-3, relative=False) == "±0.001"
    assert report.format_tolerance(None, relative=False) == "—"


def test_to_jsonable_roundtrip():
    obj = {
        "i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(False), "nan": np.nan,
        "a": np.array([[1.0, np.inf]]), "p": Path("figures/x.png"), "c": np.complex128(1 - 1j),
        "t": (1, 2), 5: "int key",
    }
    text = json.dumps(report.to_jsonable(obj), allow_nan=False)
    assert json.loads(text) == {
        "i": 3, "f": 0.5, "b": False, "nan": "nan", "a": [[1.0, "inf"]], "p": "figures/x.png",
        "c": {"real": 1.0, "imag": -1.0}, "t": [1, 2], "5": "int key",
    }


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    report.atomic_write_text(target, "old")
    assert target.read_text() == "old"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        report.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # temp file removed


def test_atomic_write_gives_the_normal_file_mode(tmp_path):
    # before: 0600 (tempfile.mkstemp's mode survived os.replace); now what open() would give
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = report.atomic_write_text(tmp_path / "results.json", "{}")
        plain = tmp_path / "plain.txt"
        plain.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_context_savefig_records_paths(tmp_path):
    from matplotlib.figure import Figure

    ctx = CheckContext(out_dir=tmp_path)
    path = ctx.savefig(Figure(figsize=(1, 1)), "x")
    assert path == tmp_path / "figures" / "x.png" and path.exists()
    assert ctx.saved_figures == [path]
