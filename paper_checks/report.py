"""Write a run's ``report.md`` (for people) and ``results.json`` (for programs).

Numbers are shown with 4 significant digits; arrays of more than 4 entries are summarized by
shape, range and mean. ``results.json`` keeps full values (NumPy types converted to plain JSON;
non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the file is strict
JSON) and is replaced atomically, so a reader never sees a half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdsim._files import default_file_mode

if TYPE_CHECKING:  # pragma: no cover
    from paper_checks.registry import Measurement
    from paper_checks.runner import CheckResult, MeasurementResult, RunResult

__all__ = [
    "SCHEMA_VERSION",
    "atomic_write_text",
    "deviation",
    "format_tolerance",
    "format_value",
    "one_sided_bound",
    "render_markdown",
    "result_to_dict",
    "to_jsonable",
    "tolerance_cell",
    "write_outputs",
]

SCHEMA_VERSION = 1
_SIG = 4  # significant digits in the report
_MAX_LISTED = 4  # arrays up to this size are listed in full
_MAX_TEXT = 80  # longer strings are cut in the table
_LIBS = ("python", "numpy", "scipy", "numba", "torch")  # versions shown in the header


# --------------------------------------------------------------------------------------------
# formatting for the markdown table
# --------------------------------------------------------------------------------------------


def _fmt_scalar(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        v = int(x)
        return str(v) if abs(v) < 10**6 else f"{v:.{_SIG}g}"
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{_SIG}g}"
    if isinstance(x, (complex, np.complexfloating)):
        v = complex(x)
        return f"{v.real:.{_SIG}g}{v.imag:+.{_SIG}g}j"
    return _cut(str(x))


def _cut(text: str, n: int = _MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def format_value(x: Any) -> str:
    """Compact text for a predicted/measured value (4 significant digits, arrays summarized).

    ``None`` -> ``"—"``; scalars -> ``"0.1235"``; up to 4 numbers -> ``"[1, 2.5, 3]"``; larger
    numeric arrays -> ``"(3, 4) array in [lo, hi], mean m"`` (plus the count of non-finite
    entries); other objects -> their ``str``, cut to 80 characters.
    """
    if x is None:
        return "—"
    if isinstance(x, str):
        return _cut(x)
    if np.isscalar(x) or isinstance(x, np.generic):
        return _fmt_scalar(x)
    if isinstance(x, Mapping):
        return _cut("{" + ", ".join(f"{k}: {format_value(v)}" for k, v in x.items()) + "}")
    try:
        arr = np.asarray(x)
    except Exception:
        return _cut(str(x))
    if arr.dtype == object or arr.dtype.kind in "USV":
        return _cut(str(x))
    if arr.ndim == 0:
        return _fmt_scalar(arr.item())
    if arr.size <= _MAX_LISTED and arr.ndim == 1:
        return "[" + ", ".join(_fmt_scalar(v) for v in arr.tolist()) + "]"
    if arr.size == 0:
        return f"{arr.shape} empty"
    shape = "(" + ", ".join(map(str, arr.shape)) + ")"
    if arr.dtype.kind == "b":
        return f"{shape} bool, {int(arr.sum())} True"
    if arr.dtype.kind == "c":
        arr = np.abs(arr)
        shape += " |complex|"
    a = arr.astype(float)
    fin = a[np.isfinite(a)]
    bad = a.size - fin.size
    if fin.size == 0:
        return f"{shape} array, all non-finite"
    text = f"{shape} array in [{_fmt_scalar(fin.min())}, {_fmt_scalar(fin.max())}]"
    text += f", mean {_fmt_scalar(fin.mean())}"
    if bad:
        text += f", {bad} non-finite"
    return text


def format_tolerance(tolerance: float | None, relative: bool) -> str:
    """``"±0.05"`` (absolute), ``"±5%"`` (relative) or ``"—"`` (verdict decided by the check)."""
    if tolerance is None:
        return "—"
    if relative:
        return f"±{float(tolerance) * 100:.{_SIG - 1}g}%"
    return "±" + _fmt_scalar(tolerance)


_SIDES = {"<=": "≤", ">=": "≥"}
_BOUND = re.compile(r"^\s*(<=|>=|≤|≥|<|>)\s*(.*)$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def one_sided_bound(predicted: Any) -> tuple[str, float] | None:
    """``("≤", 0.0)`` for a prediction written as text such as ``"≤ 0"``, ``"< 1.25"`` or
    ``"≤ 1.05·2/η = 21"`` (the number after the last ``=``); None when it is not of that form.

    >>> one_sided_bound("≤ 1.05·2/η = 21 (paper)")
    ('≤', 21.0)
    >>> one_sided_bound("> 5 × 0.1") is None
    True
    """
    if not isinstance(predicted, str):
        return None
    m = _BOUND.match(predicted)
    if not m:
        return None
    op = {"<=": "≤", ">=": "≥"}.get(m.group(1), m.group(1))
    rest = m.group(2).rsplit("=", 1)[-1].split("(")[0].strip()
    return (op, float(rest)) if _NUMBER.match(rest) else None


def _as_float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def tolerance_cell(m: Measurement) -> str:
    """What decides the verdict, never a bare "—": ``±tol``, a one-sided bound's slack and the
    measured margin, an exact categorical match, or "set by the check" (reason in the note)."""
    if m.side in _SIDES:
        margin = m.margin()
        slack = f"slack {_fmt_scalar(m.tolerance or 0.0)}"
        return f"one-sided, {slack}, margin {_fmt_scalar(margin) if margin is not None else '—'}"
    if m.passed is None:
        return format_tolerance(m.tolerance, m.relative)
    if m.tolerance is not None:
        return f"{format_tolerance(m.tolerance, m.relative)}, verdict set by the check"
    parsed = one_sided_bound(m.predicted)
    meas = _as_float(m.measured)
    if parsed is not None and meas is not None:
        op, bound = parsed
        margin = bound - meas if op in ("≤", "<") else meas - bound
        return f"one-sided, margin {_fmt_scalar(margin)}"
    if isinstance(m.predicted, str) and str(m.predicted) == str(m.measured):
        return "exact match"
    return "set by the check (see note)"


def deviation(predicted: Any, measured: Any, relative: bool = False) -> float | None:
    """max |measured − predicted| (divided by |predicted| if ``relative``); None if not numeric."""
    try:
        pred = np.asarray(predicted, dtype=float)
        meas = np.asarray(measured, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.abs(meas - pred)
            if relative:
                err = err / np.abs(pred)
        if err.size == 0:
            return None
        return float(np.max(err)) if np.all(np.isfinite(err)) else float("nan")
    except (TypeError, ValueError):
        return None


def _md(text: str) -> str:
    """Make ``text`` safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(cid: str) -> str:
    return "check-" + "".join(ch if ch.isalnum() else "-" for ch in cid.lower())


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(s, 60)
    return f"{int(m)} min {sec:.0f} s"


def render_markdown(result: RunResult) -> str:
    """The text of ``report.md`` for ``result`` (complete or partial)."""
    c = result.counts()
    v = result.versions
    h = result.host
    status = _status(result)
    if status != "complete":
        status = f"**{status}** ({len(result.checks)} of {result.planned} checks done)"
    libs = ", ".join(f"{k} {v[k]}" for k in _LIBS if k in v)
    lines = [
        "# sgdsim paper checks",
        "",
        f"- **Mode:** {result.mode} · **seed:** {result.seed} · **status:** {status}",
        f"- **sgdsim** {v.get('sgdsim', '?')}"
        + (f" (git {v['git']})" if "git" in v else "")
        + f" · {libs}",
        f"- **Date:** {result.started}" + (f" → {result.finished}" if result.finished else ""),
        f"- **Host:** {h.get('node', '?')} · {h.get('platform', '?')} · {h.get('cpus', '?')} CPUs",
        f"- **Total time:** {_fmt_seconds(result.total_seconds)}",
        _logs_line(result),
    ]
    if result.patterns:
        lines.append(f"- **Selection:** `--only {','.join(result.patterns)}`")
    lines += [
        "",
        f"**{c['passed']} passed, {c['failed']} failed** ({c['errors']} errors), "
        f"{c['skipped']} skipped — {c['rows']} rows from {c['checks']} checks "
        f"({c['checks_passed']} passed, {c['checks_failed']} failed, "
        f"{c['checks_errored']} errored, {c['checks_skipped']} skipped).",
        "",
        "| check | paper | claim | quantity | predicted | measured | tolerance | verdict | s |",
        "|---|---|---|---|---|---|---|---|---:|",
    ]
    for res in result.checks:
        link = f"[{_md(res.id)}](#{_anchor(res.id)})"
        head = [link, _md(res.paper), _md(_cut(res.claim, 100))]
        rows = [_measurement_cells(m) for m in res.measurements]
        if res.error is not None:
            rows.append(["(check raised)", "—", _md(_cut(res.error)), "—", "**ERROR**"])
        if res.skipped is not None:
            rows = [["(skipped)", "—", _md(_cut(res.skipped)), "—", "SKIP"]]
        for i, cells in enumerate(rows):
            first = head if i == 0 else ["″", "", ""]
            secs = f"{res.seconds:.2f}" if i == 0 else ""
            lines.append("| " + " | ".join([*first, *cells, secs]) + " |")
    lines += ["", "## Details", ""]
    for res in result.checks:
        lines += _details(res)
    return "\n".join(lines).rstrip() + "\n"


def _logs_line(result: RunResult) -> str:
    raised = [r.log for r in result.checks if r.log]
    if not raised:
        return "- **Logs:** none: `logs/` is written only for a check that raises"
    return f"- **Logs:** {len(raised)} check(s) raised; tracebacks in `logs/`"


def _verdict_cell(verdict: str) -> str:
    return verdict if verdict in ("PASS", "SKIP") else f"**{verdict}**"


def _measurement_cells(mr: MeasurementResult) -> list[str]:
    m = mr.measurement
    predicted = format_value(m.predicted)
    if m.side in _SIDES:
        predicted = f"{_SIDES[m.side]} {predicted}"
    return [
        _md(m.quantity),
        _md(predicted),
        _md(format_value(m.measured)),
        _md(tolerance_cell(m)),
        _verdict_cell(mr.verdict),
    ]


def _detail_item(mr: MeasurementResult) -> str:
    """One bullet: the claim, what was measured against what, and why the tolerance is what it is."""
    m = mr.measurement
    head = f"- {_verdict_cell(mr.verdict)} **{m.quantity}**: "
    source = f" ({m.source})" if m.source else ""
    if m.side in _SIDES:
        sign = "+" if m.side == "<=" else "−"
        item = (f"{head}measured {format_value(m.measured)} {_SIDES[m.side]} "
                f"{format_value(m.predicted)} {sign} slack {_fmt_scalar(m.tolerance or 0.0)}"
                f"{source}, margin {_fmt_scalar(m.margin())}")
    else:
        item = f"{head}predicted {format_value(m.predicted)}{source}"
        item += f", measured {format_value(m.measured)}"
        if m.tolerance is not None:
            dev = deviation(m.predicted, m.measured, m.relative)
            kind = "relative " if m.relative else ""
            item += f", {kind}deviation {_fmt_scalar(dev) if dev is not None else '—'}"
            item += f" vs tolerance {format_tolerance(m.tolerance, m.relative)}"
    if m.passed is not None:
        item += f" (verdict set by the check: {tolerance_cell(m)})"
    item += f". {' '.join(m.note.split())}" if m.note else ". **No reason given for the tolerance.**"
    if mr.error:
        item += f". {mr.error}"
    return item


def _details(res: CheckResult) -> list[str]:
    out = [
        f'<a id="{_anchor(res.id)}"></a>',
        f"### {res.id} — {_verdict_cell(res.verdict)}",
        "",
        f"*{res.paper}*: {res.claim}" if res.paper else res.claim,
        "",
    ]
    for mr in res.measurements:
        out.append(_detail_item(mr))
    if res.error is not None:
        out.append(f"- **ERROR**: `{' '.join(res.error.split())}`")
        if res.log:
            out.append(f"  — traceback in [{res.log}]({res.log})")
    if res.skipped is not None:
        out.append(f"- SKIP: {' '.join(res.skipped.split())}")
    if res.warnings:
        out.append(f"- {len(res.warnings)} distinct warning(s), listed in results.json")
    out.append("")
    for fig in res.figures:
        out += [f"![{fig}]({fig})", ""]
    return out


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def to_jsonable(x: Any) -> Any:
    """Convert ``x`` to plain JSON types (NumPy scalars/arrays, paths, dataclasses, complex).

    Non-finite floats become ``"nan"``, ``"inf"``, ``"-inf"``; complex numbers become
    ``{"real": ..., "imag": ...}``; unknown objects their ``repr``.
    """
    if x is None or isinstance(x, (str, bool)):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(x, (complex, np.complexfloating)):
        v = complex(x)
        return {"real": to_jsonable(v.real), "imag": to_jsonable(v.imag)}
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, os.PathLike):
        return Path(x).as_posix()
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in x]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if hasattr(x, "__array__"):
        return to_jsonable(np.asarray(x))
    return repr(x)


def _measurement_dict(mr: MeasurementResult) -> dict[str, Any]:
    m = mr.measurement
    return {
        "quantity": m.quantity,
        "predicted": to_jsonable(m.predicted),
        "measured": to_jsonable(m.measured),
        "tolerance": to_jsonable(m.tolerance),
        "relative": bool(m.relative),
        "passed_set_by_check": None if m.passed is None else bool(m.passed),
        "side": m.side or None,
        "margin": to_jsonable(m.margin()),
        "deviation": to_jsonable(deviation(m.predicted, m.measured, m.relative)),
        "source": m.source,
        "note": m.note,
        "verdict": mr.verdict,
        "error": mr.error,
    }


def _status(result: RunResult) -> str:
    if result.interrupted:
        return "interrupted"
    return "complete" if result.complete else "incomplete"


def result_to_dict(result: RunResult) -> dict[str, Any]:
    """The content of ``results.json`` (plain JSON types only)."""
    checks = [
        {
            "id": r.id,
            "paper": r.paper,
            "claim": r.claim,
            "module": r.module,
            "verdict": r.verdict,
            "seconds": r.seconds,
            "error": r.error,
            "log": r.log,
            "figures": list(r.figures),
            "warnings": list(r.warnings),
            "skipped": r.skipped,
            "measurements": [_measurement_dict(m) for m in r.measurements],
        }
        for r in result.checks
    ]
    return to_jsonable(
        {
            "schema": SCHEMA_VERSION,
            "status": _status(result),
            "mode": result.mode,
            "quick": result.quick,
            "seed": result.seed,
            "patterns": result.patterns,
            "started": result.started,
            "finished": result.finished,
            "total_seconds": result.total_seconds,
            "planned_checks": result.planned,
            "summary": result.counts(),
            "exit_code": result.exit_code if result.complete else None,
            "versions": result.versions,
            "host": result.host,
            "checks": checks,
        }
    )


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_outputs(result: RunResult) -> tuple[Path, Path]:
    """Write ``report.md`` and ``results.json`` into ``result.out_dir``; return both paths."""
    text = json.dumps(result_to_dict(result), indent=2, allow_nan=False) + "\n"
    json_path = atomic_write_text(result.json_path, text)
    md_path = atomic_write_text(result.report_path, render_markdown(result))
    return md_path, json_path
