"""Where sweep chunks run: in-process, a local process pool, or a dask.distributed cluster.

All three implement the same small interface used by one driver loop (:func:`sgdsim.sweep.sweep`):
``submit(fn, *args) -> handle``, ``wait_first(handles) -> done handles``, ``result(handle)``,
``workers`` (parallel slots) and ``close()``. ``result`` re-raises infrastructure errors (a worker
process killed, a lost connection); errors raised by the swept function itself never get here, the
worker records them per point.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from typing import Any

from sgdsim._validation import check_int

from ._worker import init_worker, process_start_time

__all__ = ["DaskExecutor", "Executor", "ProcessExecutor", "SerialExecutor", "make_executor"]


class Executor:
    """Interface of a sweep executor (see module docstring)."""

    workers: int = 1

    def prepare(self, fn: Callable[..., Any]) -> None:
        """Check, before anything runs, that fn can be shipped to the workers."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def wait_first(self, handles: Iterable[Any]) -> list[Any]:
        """Block until at least one handle is done; return the done ones."""
        raise NotImplementedError

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self, *, cancel: bool = False) -> None:
        """Release resources; ``cancel`` drops work not yet started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(cancel=exc_type is not None)


class _Lazy:
    """Handle of the serial executor: runs when waited on, so progress and saving interleave."""

    __slots__ = ("args", "done", "error", "fn", "value")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args, self.done, self.value, self.error = fn, args, False, None, None

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except Exception as e:  # BaseException (Ctrl-C) propagates and stops the sweep
            self.error = e
        self.done = True

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class SerialExecutor(Executor):
    """Run chunks one after another in this process (debugging, tiny sweeps, notebooks)."""

    workers = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Lazy:
        return _Lazy(fn, args)

    def wait_first(self, handles: Iterable[Any]) -> list[Any]:
        handles = list(handles)
        done = [h for h in handles if h.done]
        if done:
            return done
        handles[0].run()
        return [handles[0]]


def _default_context() -> mp.context.BaseContext:
    # fork is unsafe with numba's and BLAS's thread pools already running in the parent
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def _unguarded_main_line() -> int | None:
    """The line of the ``__main__`` script now running at its top level, if that line is not
    inside an ``if __name__ == "__main__":`` block (None if guarded, or not a script)."""
    import ast
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not str(path).endswith(".py"):
        return None  # interactive session, notebook, python -c, python -m pytest: no script
    frame = sys._getframe(1)
    line = None
    while frame is not None:  # the outermost frame executing the script's module body
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None

    def is_guard(node: ast.AST) -> bool:
        if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
            return False
        parts = [node.test.left, *node.test.comparators]
        names = [p for p in parts if isinstance(p, ast.Name) and p.id == "__name__"]
        consts = [p for p in parts if isinstance(p, ast.Constant) and p.value == "__main__"]
        return bool(names and consts)

    for node in ast.walk(tree):
        if is_guard(node) and node.lineno <= line <= (node.end_lineno or node.lineno):
            return None
    return line


def _require_main_guard() -> None:
    """Refuse a process-pool sweep started at the top level of a script without the
    ``__main__`` guard: each worker imports the script (forkserver/spawn) and would start the
    sweep again, failing with StoreLockedError, and the driver could only say "run again"."""
    import sys

    line = _unguarded_main_line()
    if line is not None:
        path = sys.modules["__main__"].__file__
        raise RuntimeError(
            f"{path}, line {line}, starts a sweep with executor='processes' outside an "
            "`if __name__ == \"__main__\":` block. The worker processes import this script, and "
            "would each run the sweep again. Put the code that starts the sweep under\n\n"
            "    if __name__ == \"__main__\":\n        ...\n\n"
            "(functions the sweep calls stay at module level, above it)"
        )


class ProcessExecutor(Executor):
    """A local pool of worker processes (``concurrent.futures.ProcessPoolExecutor``).

    Parameters
    ----------
    workers
        Number of processes; default all cores (``os.cpu_count()``).
    threads_per_worker
        Cap on numba/BLAS/OpenMP threads in each worker; default ``max(1, cores // workers)``.
    context
        ``"forkserver"`` (default where available) or ``"spawn"``; ``"fork"`` is refused because
        forking a process whose numba/BLAS thread pools are running can deadlock.

    Notes
    -----
    fn must be importable in the workers (defined at module level, not in ``__main__`` of an
    interactive session or as a lambda). If a worker dies, the pool is rebuilt on the next
    submit. Workers exit by themselves within ~0.2 s when the driver process dies (however it
    dies, SIGKILL included); the forkserver and the resource tracker follow them. A script that
    starts a sweep at its top level must do so under ``if __name__ == "__main__":`` (the workers
    import the script): :meth:`prepare` checks this and says what to add.
    """

    def __init__(self, workers: int | None = None, *, threads_per_worker: int | None = None,
                 context: str | None = None) -> None:
        cores = os.cpu_count() or 1
        self.workers = cores if workers is None else check_int("workers", workers, minimum=1)
        self.threads = (max(1, cores // self.workers) if threads_per_worker is None
                        else check_int("threads_per_worker", threads_per_worker, minimum=1))
        if context is None:
            self._ctx = _default_context()
        else:
            if context not in ("forkserver", "spawn"):
                raise ValueError(f"`context` must be 'forkserver' or 'spawn', got {context!r}")
            self._ctx = mp.get_context(context)
        self._pool: cf.ProcessPoolExecutor | None = None

    def prepare(self, fn: Callable[..., Any]) -> None:
        import pickle

        _require_main_guard()
        try:
            pickle.dumps(fn)
        except Exception as e:
            raise TypeError(
                f"`fn`={fn!r} cannot be sent to worker processes ({type(e).__name__}: {e}); "
                "define it at module level (or use functools.partial of such a function), or "
                "use executor='serial' or a dask Client (which ships closures)"
            ) from None

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        me = os.getpid()
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self._ctx,
                                      initializer=init_worker,
                                      initargs=(self.threads, me, process_start_time(me)))

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(fn, *args)
        except cf.process.BrokenProcessPool:  # a worker died earlier: start a fresh pool
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, *args)

    def wait_first(self, handles: Iterable[Any]) -> list[Any]:
        done, _ = cf.wait(list(handles), return_when=cf.FIRST_COMPLETED)
        return list(done)

    def close(self, *, cancel: bool = False) -> None:
        if self._pool is not None:  # join the workers (running chunks are short by design)
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


class DaskExecutor(Executor):
    """Chunks as tasks on a dask.distributed cluster.

    Parameters
    ----------
    client
        A ``distributed.Client``, or a scheduler address string (a client is then created here and
        closed by :meth:`close`).

    Notes
    -----
    fn is shipped with cloudpickle, so closures work; the modules fn imports must be installed on
    the workers. Results travel back to this process, which alone writes the store, so workers need
    no shared filesystem. dask reschedules the tasks of a worker that died; a task that keeps
    killing workers fails with ``KilledWorker`` after the scheduler's allowed failures.
    """

    def __init__(self, client: Any) -> None:
        try:
            import distributed
        except ImportError:  # pragma: no cover
            raise ImportError("a dask executor needs dask.distributed: "
                              "pip install 'dask[distributed]' (the sgdsim[dist] extra)") from None
        self._distributed = distributed
        if isinstance(client, str):
            if "://" not in client:  # checked here: distributed can deadlock on junk addresses
                raise ValueError(f"`client` (the sweep's `executor`) {client!r} is not a "
                                 "scheduler address like 'tcp://host:8786'")
            try:
                self.client = distributed.Client(client)
            except (ValueError, TypeError) as e:  # a malformed address, named as the user wrote it
                raise ValueError(f"`client` (the sweep's `executor`) {client!r} is not a scheduler "
                                 f"address like 'tcp://host:8786': {e}") from None
            self._own = True
        elif isinstance(client, distributed.Client):
            self.client = client
            self._own = False
        else:
            raise TypeError(f"`client` (the sweep's `executor`) must be a distributed.Client or "
                            f"a scheduler address, got {client!r}")
        self.workers = max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def wait_first(self, handles: Iterable[Any]) -> list[Any]:
        done, _ = self._distributed.wait(list(handles), return_when="FIRST_COMPLETED")
        return list(done)

    def close(self, *, cancel: bool = False) -> None:
        if self._own:
            self.client.close()


def make_executor(executor: Any, workers: int | None = None) -> Executor:
    """Resolve the ``executor`` argument of :func:`sgdsim.sweep.sweep`.

    ``"serial"``, ``"processes"`` (with ``workers``), an :class:`Executor` instance, a
    ``distributed.Client`` or a scheduler address such as ``"tcp://10.0.0.1:8786"``.
    """
    if isinstance(executor, Executor):
        if workers is not None:
            raise ValueError("pass `workers` to the executor object, not to sweep()")
        return executor
    if executor == "serial":
        if workers not in (None, 1):
            raise ValueError(f"`workers`={workers} needs executor='processes'")
        return SerialExecutor()
    if executor == "processes":
        return ProcessExecutor(workers)
    is_dask = (isinstance(executor, str) and "://" in executor) or (
        type(executor).__module__.split(".")[0] == "distributed")
    if is_dask:
        if workers is not None:
            raise ValueError("`workers` applies to executor='processes'; a dask cluster has its "
                             "own workers")
        return DaskExecutor(executor)
    raise ValueError(f"`executor` must be 'serial', 'processes', an Executor, a "
                     f"distributed.Client or a scheduler address like 'tcp://host:8786', got "
                     f"{executor!r}")
