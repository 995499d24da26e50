"""Every command in the README runs as written (at quick sizes).

The README's ```bash and ```python blocks are extracted and run: Python blocks in a fresh
interpreter in a temporary directory, with the tour's ``steps=``/``replicas=`` capped to quick
sizes (the full sizes run under ``-m slow``); shell commands are split at ``&&`` and each part is
checked by the rule for its program: ``pip install`` lines for form (the pinned torch is CI's,
every extra exists in pyproject.toml), ``python -m paper_checks`` run on one fast check, ``python
-m pytest`` and ``python -m sphinx`` compared with the commands .ci/run executes. A command no
rule knows fails the test, so a new README command cannot go unchecked. Also: every benchmark
script the README names starts when run by path.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci/run").read_text(encoding="utf-8")
QUICK_CAPS = {"steps": 500, "replicas": 64}  # enough to exercise every call of the tour


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def _commands() -> list[str]:
    parts = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                parts += [p.strip() for p in line.split("&&")]
    return parts


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "agg", "SGDSIM_QUICK": "1"}


def _quick(code: str) -> str:
    for name, cap in QUICK_CAPS.items():
        code = re.sub(rf"\b{name}=([\d_]+)",
                      lambda m, cap=cap, name=name: f"{name}={min(int(m.group(1)), cap)}", code)
    return code


def test_readme_has_blocks():
    assert _blocks("python") and _commands()


@pytest.mark.parametrize("quick", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_python_blocks_run(tmp_path, quick):
    for k, code in enumerate(_blocks("python")):
        script = tmp_path / f"block_{k}.py"
        script.write_text(_quick(code) if quick else code, encoding="utf-8")
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"README python block {k} failed:\n{proc.stderr[-3000:]}"


def _extras() -> set[str]:
    """The extras' names in pyproject.toml's [project.optional-dependencies] table."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    table = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^(\w+)\s*=", table, re.M))


def _check_pip(args: list[str]) -> None:
    assert args[:2] == ["pip", "install"], args
    for arg in args[2:]:
        if arg.startswith("torch=="):
            assert f"pip install {arg}" in CI, f"README pins {arg}; .ci/run installs another"
        elif arg == "-e":
            continue
        else:
            m = re.fullmatch(r"\.(?:\[([\w,]+)\])?", arg)
            assert m, f"unexpected pip argument {arg!r}"
            unknown = set((m.group(1) or "").split(",")) - _extras() - {""}
            assert not unknown, f"README installs extras {unknown} that pyproject.toml lacks"


def _ci_commands() -> list[str]:
    return [ln.strip() for ln in CI.splitlines() if ln.strip() and not ln.startswith("#")]


def _check(command: str, tmp_path: Path) -> None:
    args = shlex.split(command)
    if args[0] == "pip":
        _check_pip(args)
    elif args[:3] == ["python", "-m", "paper_checks"]:
        quick = [*args[3:], "--only", "cohen.stability_thresholds", "--out", str(tmp_path / "pc"),
                 "--no-progress"]
        proc = subprocess.run([sys.executable, "-m", "paper_checks", *quick], cwd=ROOT,
                              env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert (tmp_path / "pc/report.md").exists()
    elif args[:3] in (["python", "-m", "pytest"], ["python", "-m", "sphinx"]):
        # not run from inside the test run: CI runs them (the same program and arguments)
        assert any(ci.startswith(command) for ci in _ci_commands()), \
            f"README command {command!r} is not what .ci/run runs"
    else:
        pytest.fail(f"no rule checks the README command {command!r}; add one to this test")


def test_shell_commands(tmp_path):
    commands = _commands()
    assert any(c.startswith("pip install") for c in commands)
    for command in commands:
        _check(command, tmp_path)


def _benchmarks_named() -> list[str]:
    return sorted(set(re.findall(r"benchmarks/(\w+)\.py", README)))


@pytest.mark.parametrize("name", _benchmarks_named())
def test_benchmark_runs_by_path(name, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--help"],
                          cwd=tmp_path, env={**_env(), "PYTHONPATH": ""}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
