"""Shared timing harness for the benchmarks: warm-up, median of timed runs, one JSON line each."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def time_median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (after the caller's warm-up) and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


#: a file that :func:`emit` also appends each line to (None: stdout only); see :func:`set_sink`
_SINK: list[Path | None] = [None]


def set_sink(path: str | Path | None) -> None:
    """Also append every emitted JSON line to ``path`` (created with its folder; None: stop)."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    _SINK[0] = path


def emit(**row: Any) -> dict:
    """Print one JSON line (floats rounded to 4 significant digits) and return the row."""
    clean = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}
    line = json.dumps(clean)
    print(line, flush=True)
    if _SINK[0] is not None:
        with open(_SINK[0], "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return row
