"""Worker-side code of a sweep: run fn over one chunk of points and normalize what it returns.

This module is imported in worker processes (local pool or dask), so it stays small and imports
nothing heavy beyond numpy. Records are plain tuples/dicts of numpy arrays so they travel cheaply.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["init_worker", "normalize_output", "process_start_time", "run_chunk"]

#: how often a pool worker checks that the sweep driver is still alive (seconds)
PARENT_POLL_S = 0.2

#: array kinds a result may have: bool, signed/unsigned int, float (netCDF4-compatible, no pickle)
_KINDS = "biuf"

Variables = dict[str, tuple[tuple[str, ...], np.ndarray]]


def _array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in _KINDS:
        raise TypeError(
            f"fn output `{name}` has dtype {arr.dtype} ({type(value).__name__}); outputs must be "
            "bool, integer or real floating scalars/arrays (store strings or objects in attrs of "
            "your own files instead)"
        )
    return arr


def _check_name(name: Any, reserved: frozenset[str], what: str) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        raise TypeError(f"fn output {what} names must be non-empty strings without '/', "
                        f"got {name!r}")
    if name in reserved:
        raise ValueError(f"fn output {what} {name!r} clashes with a sweep parameter, dimension "
                         f"or reserved name {sorted(reserved)}")
    return name


def normalize_output(out: Any, reserved: frozenset[str] = frozenset()) -> tuple[Variables,
                                                                                 Variables]:
    """Turn fn's return value into ``(variables, coords)``, each ``{name: (dims, ndarray)}``.

    Accepted: a mapping ``{name: scalar | ndarray | xarray.DataArray}`` (unnamed array axes get
    dims ``<name>_dim_<i>``) or an ``xarray.Dataset`` (its data variables, and the coordinates
    that lie on its dimensions).
    """
    variables: Variables = {}
    coords: Variables = {}
    try:  # xarray is a hard dependency of sgdsim, but keep the worker import-light
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    if xr is not None and isinstance(out, xr.Dataset):
        items = list(out.data_vars.items())
        src_coords = out.coords
    elif isinstance(out, Mapping):
        items = list(out.items())
        src_coords = {}
    else:
        raise TypeError(f"fn must return a dict of scalars/arrays or an xarray.Dataset, got "
                        f"{type(out).__name__}")
    if not items:
        raise ValueError("fn returned no outputs; return at least one named scalar or array")
    for name, value in items:
        name = _check_name(name, reserved, "variable")
        if xr is not None and isinstance(value, xr.DataArray):
            dims = tuple(str(d) for d in value.dims)
            for c, cv in value.coords.items():
                if c in value.dims:
                    coords[str(c)] = ((str(c),), _array(str(c), cv.values))
            arr = _array(name, value.values)
        else:
            arr = _array(name, value)
            dims = tuple(f"{name}_dim_{i}" for i in range(arr.ndim))
        for d in dims:
            _check_name(d, reserved, "dimension")
        variables[name] = (dims, arr)
    for c, cv in src_coords.items():
        if c in cv.dims and len(cv.dims) == 1:
            coords[str(c)] = ((str(c),), _array(str(c), cv.values))
    sizes: dict[str, int] = {}
    for name, (dims, arr) in (variables | coords).items():
        for d, n in zip(dims, arr.shape):
            if sizes.setdefault(d, n) != n:
                raise ValueError(f"fn output dimension {d!r} has length {n} in `{name}` but "
                                 f"{sizes[d]} elsewhere")
    return variables, coords


def run_chunk(
    fn: Callable[..., Any],
    points: list[tuple[int, dict[str, Any]]],
    retries: int,
    reserved: frozenset[str],
) -> list[tuple]:
    """Evaluate ``fn(**params)`` for each ``(index, params)``; never raises for fn's own errors.

    Returns
    -------
    list of records, one per point, in order:
        ``("ok", index, seconds, variables, coords)`` or
        ``("error", index, seconds, error_type, message, traceback, attempts)``.
        ``seconds`` is the wall time of the last attempt (the chunk sizer uses it).
    """
    records: list[tuple] = []
    for index, params in points:
        for attempt in range(1, retries + 2):
            t0 = time.perf_counter()
            try:
                variables, coords = normalize_output(fn(**params), reserved)
            except Exception as e:
                dt = time.perf_counter() - t0
                if attempt <= retries:
                    continue
                records.append(("error", index, dt, type(e).__qualname__, str(e),
                                traceback.format_exc(), attempt))
            else:
                dt = time.perf_counter() - t0
                records.append(("ok", index, dt, variables, coords))
            break
    return records


def limit_threads(threads: int) -> None:
    """Process-pool initializer: cap numba and BLAS/OpenMP threads in this worker process.

    Without it, W workers each running a ``parallel=True`` kernel on all C cores would
    oversubscribe the machine W-fold.
    """
    n = str(threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = n
    try:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # pragma: no cover - numba missing or threading layer unavailable
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    except Exception:  # pragma: no cover - optional
        pass



def process_start_time(pid: int) -> str | None:
    """An identity of process ``pid`` that survives PID reuse: its start time in clock ticks
    since boot (Linux ``/proc/<pid>/stat`` field 22), or None where /proc is unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _driver_alive(pid: int, start: str | None) -> bool:
    """Whether the sweep driver (``pid`` started at ``start``) still runs (a zombie counts as
    dead: it computes nothing and will save nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return fields[0] != "Z" and (start is None or fields[19] == start)


def _watch_driver(pid: int, start: str | None) -> None:
    while _driver_alive(pid, start):
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # the driver is gone: nothing this worker computes can be saved


def init_worker(threads: int, driver_pid: int, driver_start: str | None) -> None:
    """Process-pool initializer: cap threads (:func:`limit_threads`) and exit when the driver dies.

    A daemon thread polls the driver every :data:`PARENT_POLL_S` s and ends this process with
    ``os._exit`` once the driver is gone (killed with SIGKILL, say). Without it, forkserver
    workers orphaned by a killed driver kept computing points that could never be saved (the
    forkserver and the resource tracker then live as long as they do).
    """
    limit_threads(threads)
    threading.Thread(target=_watch_driver, args=(driver_pid, driver_start), daemon=True,
                     name="sgdsim-driver-watch").start()
