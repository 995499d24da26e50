"""The sweep driver: chunk the grid, run chunks on an executor, save as they finish, assemble."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import statistics
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import xarray as xr

from sgdsim._validation import check_int

from ._worker import run_chunk
from .executors import Executor, make_executor
from .grid import RESERVED_NAMES, Grid
from .store import (
    DirectoryStore,
    MemoryStore,
    assemble,
    done_indices,
    make_chunk,
    make_manifest,
)

__all__ = ["SweepFailedError", "SweepInterruptedError", "SweepWarning", "sweep"]

#: auto chunking: aim for chunks of this many seconds of work (bounds work lost on a kill and
#: keeps the progress bar moving) ...
_TARGET_CHUNK_S = 0.5
#: ... but no shorter than this (amortizes per-chunk costs: task dispatch, one file write)
_MIN_CHUNK_S = 0.05
#: ... and small enough that each worker gets several chunks (load balance)
_CHUNKS_PER_WORKER = 4


class SweepWarning(UserWarning):
    """Some points of a sweep failed (their errors are in the store / ``ds.attrs``)."""


class SweepFailedError(RuntimeError):
    """Every point of a sweep failed: nothing to return but failure records.

    Attributes: ``failures`` (the ``{index, params, error}`` records, as in
    ``ds.attrs["sweep_failures"]``), ``first_traceback`` (the first failure's traceback text) and
    ``dataset`` (the all-NaN result, for inspection). The store, if any, keeps the records too.
    """

    def __init__(self, message: str, failures: list[dict[str, Any]], first_traceback: str,
                 dataset: xr.Dataset) -> None:
        super().__init__(message)
        self.failures, self.first_traceback, self.dataset = failures, first_traceback, dataset


class SweepInterruptedError(RuntimeError):
    """Chunks were lost to worker crashes; finished points are saved and a re-run resumes."""


class _Chunker:
    """Hands out chunks of point indices; ``auto`` sizes them from measured point durations."""

    def __init__(self, todo: list[int], chunk_size: int | str, workers: int) -> None:
        self.todo, self.pos, self.workers = todo, 0, workers
        self.fixed = None if chunk_size == "auto" else chunk_size
        self.durations: list[float] = []

    def more(self) -> bool:
        return self.pos < len(self.todo)

    def observe(self, seconds: list[float]) -> None:
        self.durations.extend(seconds)
        del self.durations[:-1000]  # a recent window; enough for a stable median

    def size(self) -> int:
        remaining = len(self.todo) - self.pos
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if not self.durations:
            return 1  # probe: nothing measured yet
        t = max(statistics.median(self.durations), 1e-7)
        balanced = math.ceil(remaining / (_CHUNKS_PER_WORKER * self.workers))
        n = min(math.ceil(_TARGET_CHUNK_S / t), max(math.ceil(_MIN_CHUNK_S / t), balanced))
        return max(1, min(n, remaining))

    def next(self) -> list[int]:
        n = self.size()
        chunk = self.todo[self.pos:self.pos + n]
        self.pos += n
        return chunk


def sweep(
    fn: Callable[..., Mapping[str, Any] | xr.Dataset],
    grid: Grid,
    *,
    store: str | os.PathLike[str] | None = None,
    executor: Any = "serial",
    workers: int | None = None,
    chunk_size: int | str = "auto",
    progress: bool = True,
    retries: int = 0,
    retry_failed: bool = True,
    config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> xr.Dataset:
    """Evaluate ``fn(**point)`` at every point of ``grid``; resumable, serial or distributed.

    Parameters
    ----------
    fn
        Called as ``fn(**grid.point(i))`` (a seed axis arrives as ``seed=``). Returns a mapping
        ``{name: scalar | ndarray | xarray.DataArray}`` or an ``xarray.Dataset``; the names, dims
        and shapes must be the same at every point. Values are bool/int/float. Must be picklable
        for ``executor="processes"`` (a module-level function, or a ``functools.partial`` of one).
    grid
        The points, a :class:`~sgdsim.sweep.Grid`.
    store
        Directory of a durable results store (see :mod:`sgdsim.sweep.store`); ``None`` keeps
        results in memory only. Re-running with the same store resumes: finished points are
        loaded, never recomputed.
    executor
        ``"serial"`` (in this process), ``"processes"`` (a local pool, ``workers`` processes,
        default all cores), a ``distributed.Client`` or scheduler address string, or an
        :class:`~sgdsim.sweep.executors.Executor`.
    workers
        Number of processes for ``executor="processes"``.
    chunk_size
        Points per task. ``"auto"`` measures point durations and aims at chunks of about 0.5 s of
        work (at least 0.05 s, and at least 4 chunks per worker while that allows).
    progress
        Show a tqdm progress bar of finished points.
    retries
        Extra attempts for a point whose fn raises, and for a chunk lost to a dead worker.
    retry_failed
        On resume, run again the points recorded as failed in the store (default); ``False``
        keeps their failure records.
    config
        User settings that identify the sweep besides grid and fn (JSON-like; arrays are hashed),
        e.g. ``{"steps": 1000, "fn_version": 2}``. Part of the fingerprint.
    overwrite
        If ``store`` holds a sweep with a different fingerprint, delete its results instead of
        raising :class:`~sgdsim.sweep.store.FingerprintMismatchError`.

    Returns
    -------
    xarray.Dataset
        Each output of fn as a variable with dims ``(*grid.dims, *inner dims)``; coordinates are
        the swept values (zipped parameters are coordinates along their shared dimension);
        ``failed`` (bool, grid dims) marks points that raised, whose outputs are NaN. Attributes:
        ``sweep_fingerprint``, ``sweep_fn``, ``sweep_grid`` and ``sweep_config`` (JSON),
        ``sweep_failures`` (JSON list of ``{index, params, error}``), ``sgdsim_version``, counts.

    Raises
    ------
    SweepFailedError
        Every point failed; the message names the first error and carries its traceback.
    FingerprintMismatchError
        ``store`` holds results of another configuration.
    StoreError
        ``store`` has corrupt or foreign files (named in the message).
    SweepInterruptedError
        Workers died and ``retries`` were exhausted; completed points are saved, re-run to resume.

    Warns
    -----
    SweepWarning
        Some points failed; the result marks them in ``failed``.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be a sgdsim.sweep.Grid, got {type(grid).__name__}")
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {fn!r}")
    if chunk_size != "auto":
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    retries = check_int("retries", retries, minimum=0)
    manifest = make_manifest(grid, fn, config)
    st: MemoryStore = (MemoryStore(manifest) if store is None
                       else DirectoryStore(store, manifest, overwrite=overwrite))
    try:  # a directory store holds its write lock until the end, however the sweep ends
        ds = _run(fn, grid, st, executor, workers, chunk_size, retries, retry_failed, progress)
    finally:
        st.close()
    fails = json.loads(ds.attrs["sweep_failures"])
    where = f" (tracebacks in {st.path}/failures)" if isinstance(st, DirectoryStore) else ""
    if fails and bool(ds["failed"].all()):
        first = st.failures().get(int(fails[0]["index"]), {})
        tb = str(first.get("traceback", ""))
        raise SweepFailedError(
            f"all {grid.size} sweep points failed{where}; first: {fails[0]['params']}: "
            f"{fails[0]['error']}" + (f"\n\nits traceback:\n{tb}" if tb else ""),
            fails, tb, ds,
        )
    if fails:
        warnings.warn(f"{len(fails)} of {grid.size} sweep points failed{where}; first: "
                      f"{fails[0]['params']}: {fails[0]['error']}", SweepWarning, stacklevel=2)
    return ds


def _run(fn: Callable[..., Any], grid: Grid, st: MemoryStore, executor: Any, workers: Any,
         chunk_size: int | str, retries: int, retry_failed: bool, progress: bool) -> xr.Dataset:
    """Compute the missing points of ``grid`` into ``st``; the assembled results."""
    done = done_indices(st)
    failures = st.failures()
    for i in set(failures) & set(done):  # a retry succeeded but the record was not yet cleared
        st.clear_failure(i)
        failures.pop(i)
    todo = [i for i in range(grid.size)
            if i not in done and (retry_failed or i not in failures)]
    reserved = frozenset(RESERVED_NAMES | set(grid.parameters) | set(grid.dims))

    ex = make_executor(executor, workers)
    owned = ex is not executor  # an Executor object passed in stays open for reuse
    try:
        ex.prepare(fn)
        _drive(fn, grid, todo, st, ex, chunk_size, retries, reserved,
               progress=progress, n_total=grid.size)
    except BaseException:
        if owned:
            ex.close(cancel=True)
        raise
    if owned:
        ex.close()
    return assemble(grid, st)


def _drive(fn: Callable[..., Any], grid: Grid, todo: list[int], st: MemoryStore, ex: Executor,
           chunk_size: int | str, retries: int, reserved: frozenset[str], *, progress: bool,
           n_total: int) -> None:
    """Submit chunks (at most 2 per worker in flight), save each as it finishes."""
    from tqdm.auto import tqdm

    chunker = _Chunker(todo, chunk_size, ex.workers)
    window = 2 * ex.workers
    pending: dict[Any, tuple[list[int], int]] = {}
    schema: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] | None = _stored_schema(grid, st)
    lost: list[tuple[list[int], BaseException]] = []
    failed = set(st.failures())

    def submit(indices: list[int], attempt: int) -> None:
        points = [(i, grid.point(i)) for i in indices]
        pending[ex.submit(run_chunk, fn, points, retries, reserved)] = (indices, attempt)

    with tqdm(total=n_total, initial=n_total - len(todo), disable=not progress, unit="pt",
              desc="sweep", dynamic_ncols=True) as bar:
        n_failed = 0
        while True:
            # while nothing is measured, probe with one 1-point chunk per worker
            limit = window if chunker.durations or chunker.fixed else ex.workers
            while not lost and chunker.more() and len(pending) < limit:
                submit(chunker.next(), 0)
            if not pending:
                break
            for h in ex.wait_first(list(pending)):
                indices, attempt = pending.pop(h)
                try:
                    records = ex.result(h)
                except Exception as e:  # infrastructure: dead worker, lost connection
                    if attempt < retries:
                        submit(indices, attempt + 1)
                    else:
                        lost.append((indices, e))
                    continue
                finally:
                    del h
                schema, n_bad = _save(grid, st, records, schema, failed)
                n_failed += n_bad
                chunker.observe([r[2] for r in records if r[0] == "ok"])
                bar.update(len(indices))
                if n_failed:
                    bar.set_postfix(failed=n_failed)
    if lost:
        n_lost = sum(len(c) for c, _ in lost)
        e = lost[0][1]
        raise SweepInterruptedError(
            f"{n_lost} point(s) in {len(lost)} chunk(s) were lost to worker failures (first: "
            f"{type(e).__name__}: {e}); all finished points are saved — run the same sweep again "
            "to resume, or pass retries>0"
        ) from e


def _stored_schema(grid: Grid, st: MemoryStore) -> dict[str, Any] | None:
    """Output names, inner dims and shapes of the points already stored (None if none)."""
    for chunk in st.chunks():
        return {name: (dims, arr.shape[1:]) for name, (dims, arr) in chunk.outputs.items()}
    return None


def _save(grid: Grid, st: MemoryStore, records: list[tuple], schema: dict[str, Any] | None,
          failed: set[int]) -> tuple[dict[str, Any] | None, int]:
    """Write a chunk's finished points and failure records; return (schema, number failed)."""
    ok, bad = [], []
    for r in records:
        if r[0] == "ok":
            got = {name: (dims, arr.shape) for name, (dims, arr) in r[3].items()}
            if schema is None:
                schema = got
            if got != schema:
                bad.append(("error", r[1], r[2], "OutputMismatch",
                            f"fn returned outputs {got} at this point but {schema} at others "
                            "(names, dims and shapes must agree)", "", 1))
            else:
                ok.append(r)
        else:
            bad.append(r)
    if ok:
        st.write_chunk(make_chunk(ok))
        for r in ok:
            if r[1] in failed:  # an earlier attempt failed; this one succeeded
                st.clear_failure(r[1])
                failed.discard(r[1])
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for _, index, seconds, etype, msg, tb, attempts in bad:
        failed.add(index)
        st.write_failure({"index": index, "params": grid.point(index), "error_type": etype,
                          "message": msg, "traceback": tb, "attempts": attempts,
                          "seconds": seconds, "time": now,
                          "fingerprint": st.manifest["fingerprint"]})
    return schema, len(bad)

