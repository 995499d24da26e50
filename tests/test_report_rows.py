"""Report rows that read on their own: one-sided claims show bound, slack and margin; the CLI's
pipes end quietly and its --help examples name real checks."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paper_checks import __main__ as cli
from paper_checks import runner
from paper_checks.registry import CheckSpec, Measurement
from paper_checks.report import one_sided_bound, render_markdown, tolerance_cell

ROOT = Path(__file__).resolve().parents[1]


def test_at_most_passes_within_slack_and_reports_margin():
    m = Measurement.at_most("gap", measured=7.1e-15, bound=0.0, slack=1e-12, note="rounding")
    assert m.verdict() and m.margin() == pytest.approx(1e-12 - 7.1e-15)
    assert tolerance_cell(m) == "one-sided, slack 1e-12, margin 9.929e-13"
    outside = Measurement.at_most("gap", measured=2e-12, bound=0.0, slack=1e-12)
    assert not outside.verdict() and outside.margin() == pytest.approx(-1e-12)


def test_at_least_sign_and_nan():
    assert Measurement.at_least("x", measured=3.0, bound=2.0).margin() == 1.0
    assert not Measurement.at_least("x", measured=1.9, bound=2.0, slack=0.05).verdict()
    assert not Measurement.at_least("x", measured=float("nan"), bound=2.0).verdict()


def test_legacy_one_sided_text_gets_a_margin():
    assert one_sided_bound("≤ 0") == ("≤", 0.0)
    assert one_sided_bound("< 0.75·2/η = 15 (paper ≈ 4.5)") == ("<", 15.0)
    assert one_sided_bound("> 5 × 0.01") is None  # the bound is not a number as written
    assert one_sided_bound(0.5) is None
    m = Measurement("ratio", predicted="< 1.25", measured=1.0, passed=True, note="cap")
    assert tolerance_cell(m) == "one-sided, margin 0.25"
    law = Measurement("law", predicted="log", measured="log", passed=True, note="fit comparison")
    assert tolerance_cell(law) == "exact match"


def _result(tmp_path, measurement):
    spec = CheckSpec("t.one", "Paper", "claim", lambda ctx: measurement)
    loaded = runner.LoadedChecks(checks={"t.one": spec}, import_errors={})
    return runner.run_checks(out_dir=tmp_path, progress=False, loader=lambda: loaded)


def test_report_row_and_details_for_a_one_sided_claim(tmp_path):
    res = _result(tmp_path, Measurement.at_most("gap", measured=7.1e-15, bound=0.0, slack=1e-12,
                                                source="Rayleigh bound", note="round-off"))
    md = render_markdown(res)
    row = next(r for r in md.splitlines() if "| gap |" in r)
    assert "| ≤ 0 | 7.1e-15 | one-sided, slack 1e-12, margin 9.929e-13 | PASS |" in row
    assert "measured 7.1e-15 ≤ 0 + slack 1e-12 (Rayleigh bound), margin 9.929e-13. round-off" in md
    assert "**Logs:** none: `logs/` is written only for a check that raises" in md
    assert not (tmp_path / "logs").exists()


def test_missing_reason_is_flagged(tmp_path):
    md = render_markdown(_result(tmp_path, Measurement("x", 1.0, 1.0, tolerance=0.0)))
    assert "No reason given for the tolerance" in md


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_list_into_closed_pipe_is_quiet_in_process():
    err = io.StringIO()
    assert cli.main(["--list"], stdout=_ClosedPipe(), stderr=err) == cli.EXIT_BROKEN_PIPE
    assert err.getvalue() == ""


def test_list_into_closed_pipe_is_quiet_as_a_process():
    """`python -m paper_checks --list | head`: the reader is gone before the first write."""
    r, w = os.pipe()
    os.close(r)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "paper_checks", "--list"], stdout=w,
                          stderr=subprocess.PIPE, cwd=ROOT, env=env, timeout=120)
    os.close(w)
    assert proc.stderr.decode() == "" and proc.returncode == cli.EXIT_BROKEN_PIPE


def test_help_examples_are_real_check_ids():
    ids = set(runner.load_checks().checks)
    examples = re.findall(r"--only (\S+)", cli._EPILOG)
    assert examples, "the --help epilog shows no --only example"
    for example in examples:
        patterns = runner.split_patterns(example.strip("'"))
        for pattern in patterns:
            assert any(runner._matches(cid, pattern) for cid in ids), pattern
    assert "cohen.stability_thresholds" in ids
