"""Durable, resumable results stores for sweeps.

On-disk layout (a directory; every file readable without sgdsim)::

    <store>/manifest.json               sweep identity: fingerprint, grid, fn name, config, versions
    <store>/chunks/chunk-<first>-<token>.nc
                                        netCDF4 (HDF5, via h5netcdf): finished points of one chunk,
                                        dimension ``point``; variables ``point_index``, one per
                                        swept parameter, and fn's outputs ``(point, *inner)``
    <store>/failures/point-<index>.json error type, message and traceback of a point that raised
    <store>/.lock                       held (``flock``) by the one sweep writing the store

Only one sweep writes a store at a time: a second one, in this process or another, gets a
:class:`StoreLockedError` naming the holder, instead of racing it (it would otherwise delete the
first's in-flight temporary files when it opens the store). The operating system releases the lock
when its holder exits, however it exits, so a killed sweep never leaves the store locked. Reading
(``load_sweep``) takes no lock. Locking needs POSIX ``fcntl``; elsewhere stores are not locked.

Every file is written to a temporary name in the same directory and moved into place with
:func:`os.replace`, so a killed sweep leaves either a complete file or none. A chunk file is
written only after all its points finished; points are never written twice. The long-format
table of all finished points can be read with plain xarray::

    xr.open_mfdataset("<store>/chunks/*.nc", engine="h5netcdf", combine="nested",
                      concat_dim="point")
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .grid import Grid

__all__ = [
    "DirectoryStore",
    "FingerprintMismatchError",
    "MemoryStore",
    "StoreError",
    "StoreLockedError",
    "fn_identity",
    "load_failures",
    "load_sweep",
    "make_manifest",
]

FORMAT = "sgdsim.sweep/1"
_CHUNK_RE = re.compile(r"^chunk-(\d{9,})-([0-9a-f]{8})\.nc$")
_FAIL_RE = re.compile(r"^point-(\d{9,})\.json$")
_TMP_PREFIX = ".tmp-"


class StoreError(RuntimeError, ValueError):
    """The results store is unreadable, corrupt, or holds files that sgdsim did not write.

    Also a ``ValueError``: the ``store``/``path`` argument does not name a usable store.
    """


class FingerprintMismatchError(StoreError):
    """The store holds results of a different sweep configuration."""


class StoreLockedError(StoreError):
    """Another sweep is writing this store."""


_LOCK_NAME = ".lock"


def _acquire_lock(path: Path):
    """An open file holding an exclusive ``flock`` on ``path/.lock`` (None without fcntl)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        return None
    fh = open(path / _LOCK_NAME, "a+")  # held open for the life of the lock
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise StoreLockedError(
            f"sweep store {path} is being written by another sweep ({holder}); wait for it to "
            "finish, or use another store path"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
             f"{_dt.datetime.now().isoformat(timespec='seconds')}")
    fh.flush()
    return fh


# ---- identity and fingerprint --------------------------------------------------------------
def _canonical(obj: Any, where: str) -> Any:
    """JSON-able canonical form; arrays are replaced by a content hash."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else repr(obj)
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple, range)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        h = hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()[:16]
        return {"ndarray": f"{obj.dtype.str}{list(obj.shape)}:{h}"}
    raise TypeError(f"{where} must be JSON-like (dict/list/str/number/bool/None/ndarray), got "
                    f"{type(obj).__name__}: {obj!r}")


def fn_identity(fn: Callable[..., Any]) -> dict[str, Any]:
    """Stable identity of fn for the fingerprint: qualified name, plus bound partial arguments.

    The source code is *not* hashed (editing fn does not invalidate a store); pass a version in
    the sweep's ``config`` when fn's meaning changes.
    """
    if isinstance(fn, functools.partial):
        inner = fn_identity(fn.func)
        inner["partial_args"] = _canonical(list(fn.args), "partial positional args")
        inner["partial_keywords"] = _canonical(dict(fn.keywords), "partial keywords")
        return inner
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {fn!r}")
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    return {"name": f"{getattr(target, '__module__', '?')}.{target.__qualname__}"}


def make_manifest(grid: Grid, fn: Callable[..., Any], config: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """Manifest of a sweep; ``fingerprint`` hashes format, grid, fn identity and config."""
    from sgdsim._version import __version__

    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"`config` must be a mapping (JSON-like), got {type(config).__name__}")
    ident = {
        "format": FORMAT,
        "grid": grid.to_dict(),
        "fn": fn_identity(fn),
        "config": _canonical(dict(config or {}), "`config`"),
    }
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return {
        **ident,
        "fingerprint": hashlib.sha256(blob.encode()).hexdigest(),
        "n_points": grid.size,
        "sgdsim_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _mismatch_message(path: Path, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = [k for k in ("format", "fn", "grid", "config") if old.get(k) != new.get(k)]
    lines = [f"results store {path} belongs to a different sweep (fingerprint "
             f"{str(old.get('fingerprint'))[:12]} != {new['fingerprint'][:12]}); differing: "
             f"{', '.join(parts) or 'fingerprint only'}"]
    for k in parts:
        lines.append(f"  {k}: stored {json.dumps(old.get(k))[:300]}")
        lines.append(f"  {k}: now    {json.dumps(new.get(k))[:300]}")
    lines.append("Use a new store path, or pass overwrite=True to delete the stored results.")
    return "\n".join(lines)


# ---- chunks ---------------------------------------------------------------------------------
@dataclass
class Chunk:
    """Finished points of one chunk: ``index`` (n,), outputs ``{name: (inner dims, (n, ...))}``,
    inner coordinates ``{name: (dims, values)}``; ``label`` names its file."""

    index: np.ndarray
    outputs: dict[str, tuple[tuple[str, ...], np.ndarray]]
    coords: dict[str, tuple[tuple[str, ...], np.ndarray]]
    label: str = "<memory>"


def make_chunk(records: list[tuple]) -> Chunk:
    """Stack the ``("ok", index, seconds, variables, coords)`` records of one chunk."""
    first_vars, first_coords = records[0][3], records[0][4]
    return Chunk(
        index=np.array([r[1] for r in records], dtype=np.int64),
        outputs={name: (dims, np.stack([r[3][name][1] for r in records]))
                 for name, (dims, _) in first_vars.items()},
        coords=dict(first_coords),
    )


def _write_netcdf(path: Path, chunk: Chunk, grid: Grid, fingerprint: str) -> None:
    """One chunk as a netCDF4 file: ``point_index``, the swept parameters and fn's outputs."""
    import h5netcdf
    import h5py

    variables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {"point_index": (("point",),
                                                                                chunk.index)}
    for name, values in grid.values(chunk.index).items():
        variables[name] = (("point",), values)
    for name, (dims, arr) in chunk.outputs.items():
        variables[name] = (("point", *dims), arr)
    variables.update(chunk.coords)
    sizes: dict[str, int] = {}
    for dims, arr in variables.values():
        sizes.update(zip(dims, arr.shape))
    with h5netcdf.File(path, "w") as f:
        f.dimensions = sizes
        for name, (dims, arr) in variables.items():
            if arr.dtype.kind == "U":
                f.create_variable(name, dims, dtype=h5py.string_dtype(), data=arr.astype(object))
            elif arr.dtype.kind == "b":  # netCDF4 has no bool: int8 + the attribute xarray decodes
                v = f.create_variable(name, dims, data=arr.astype(np.int8))
                v.attrs["dtype"] = "bool"
            else:
                f.create_variable(name, dims, data=arr)
        f.attrs["sweep_format"] = FORMAT
        f.attrs["sweep_fingerprint"] = fingerprint


def _read_netcdf(path: Path, parameters: tuple[str, ...], fingerprint: str) -> Chunk:
    import h5netcdf

    try:
        with h5netcdf.File(path, "r") as f:
            attrs = dict(f.attrs)
            variables = {}
            for name, v in f.variables.items():
                if name in parameters:
                    continue
                arr = np.asarray(v[...])
                if v.attrs.get("dtype") == "bool":
                    arr = arr.astype(bool)
                variables[name] = (tuple(v.dimensions), arr)
    except Exception as e:
        raise StoreError(f"cannot read results file {path} ({type(e).__name__}: {e}); it is "
                         "corrupt or not a netCDF4 file. Move it out of the store and re-run to "
                         "recompute its points.") from None
    found = attrs.get("sweep_fingerprint")
    if isinstance(found, bytes):
        found = found.decode()
    if found != fingerprint:
        raise StoreError(f"results file {path} belongs to another sweep (fingerprint "
                         f"{str(found)[:12]} != {fingerprint[:12]}); move it away")
    if "point_index" not in variables or variables["point_index"][0] != ("point",):
        raise StoreError(f"results file {path} has no `point_index` variable over `point`")
    index = variables.pop("point_index")[1].astype(np.int64)
    outputs = {k: (d[1:], a) for k, (d, a) in variables.items() if d[:1] == ("point",)}
    coords = {k: (d, a) for k, (d, a) in variables.items() if d[:1] != ("point",)}
    return Chunk(index, outputs, coords, str(path))


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if path.exists():  # never silently replace a finished file
            raise StoreError(f"refusing to overwrite existing results file {path}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---- stores --------------------------------------------------------------------------------
class MemoryStore:
    """In-process store (``store=None``): same interface, nothing durable."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.manifest = dict(manifest)
        self._chunks: dict[str, Chunk] = {}
        self._failures: dict[int, dict[str, Any]] = {}

    def chunks(self) -> Iterator[Chunk]:
        yield from self._chunks.values()

    def write_chunk(self, chunk: Chunk) -> None:
        chunk.label = f"<memory chunk {len(self._chunks)}>"
        self._chunks[chunk.label] = chunk

    def failures(self) -> dict[int, dict[str, Any]]:
        return dict(self._failures)

    def write_failure(self, rec: dict[str, Any]) -> None:
        self._failures[int(rec["index"])] = rec

    def clear_failure(self, index: int) -> None:
        self._failures.pop(index, None)

    def close(self) -> None:
        """Nothing to release in memory."""


class DirectoryStore(MemoryStore):
    """A store directory (see module docstring). Opening validates manifest and fingerprint.

    Parameters
    ----------
    path
        Store directory; created if missing. An existing non-empty directory must be a sweep
        store (have ``manifest.json``).
    manifest
        The manifest of the sweep about to run (from :func:`make_manifest`); ``None`` opens an
        existing store read-only as it is.
    overwrite
        Delete stored results whose fingerprint differs (only inside a valid store).
    """

    def __init__(self, path: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None,
                 *, overwrite: bool = False) -> None:
        super().__init__({})
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`path` of the sweep store must be a str or os.PathLike, got "
                            f"{type(path).__name__} {path!r}")
        self.path = Path(path)
        self._chunk_dir = self.path / "chunks"
        self._fail_dir = self.path / "failures"
        mpath = self.path / "manifest.json"
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"store path {self.path} exists and is not a directory")
        self._lock = None
        try:
            self._open(mpath, manifest, overwrite)
        except BaseException:
            self.close()
            raise

    def _open(self, mpath: Path, manifest: Mapping[str, Any] | None, overwrite: bool) -> None:
        stored = self._read_manifest() if mpath.exists() else None
        if stored is None:
            if manifest is None:
                raise StoreError(f"{self.path} is not a sweep store (no manifest.json)")
            if self.path.exists() and any(p.name != _LOCK_NAME for p in self.path.iterdir()):
                raise StoreError(
                    f"store path {self.path} is a non-empty directory without manifest.json; "
                    "it is not a sweep store, refusing to write into it (choose a new path)"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = _acquire_lock(self.path)
            self._new(manifest)
        elif manifest is not None and stored["fingerprint"] != manifest["fingerprint"]:
            if not overwrite:
                raise FingerprintMismatchError(_mismatch_message(self.path, stored, manifest))
            self._lock = _acquire_lock(self.path)
            self._check_layout()  # only delete what we recognise as ours
            shutil.rmtree(self._chunk_dir)
            shutil.rmtree(self._fail_dir)
            mpath.unlink()
            self._new(manifest)
        else:
            if manifest is not None:
                self._lock = _acquire_lock(self.path)
            self.manifest = stored
        self._check_layout()
        if manifest is not None:  # a writer: temporary files can only be leftovers of dead runs
            self._clean_tmp()

    def close(self) -> None:
        """Release the write lock (if held); the store stays readable."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- manifest and layout
    def _new(self, manifest: Mapping[str, Any]) -> None:
        self._chunk_dir.mkdir(exist_ok=True)
        self._fail_dir.mkdir(exist_ok=True)
        self.manifest = dict(manifest)
        _atomic_write(self.path / "manifest.json",
                      lambda p: p.write_text(json.dumps(self.manifest, indent=1, sort_keys=True)))

    def _read_manifest(self) -> dict[str, Any]:
        mpath = self.path / "manifest.json"
        try:
            m = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"cannot read store manifest {mpath}: {e}") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT or "fingerprint" not in m:
            raise StoreError(f"{mpath} is not an sgdsim sweep manifest (format "
                             f"{m.get('format') if isinstance(m, dict) else None!r}, "
                             f"expected {FORMAT!r})")
        return m

    def _check_layout(self) -> None:
        for p in self.path.iterdir():
            if p.name not in ("manifest.json", "chunks", "failures", _LOCK_NAME) and not p.name.startswith(
                    _TMP_PREFIX):
                raise StoreError(f"foreign file {p} in sweep store {self.path}; move it away")
        for d in (self._chunk_dir, self._fail_dir):
            if not d.is_dir():
                raise StoreError(f"sweep store {self.path} is missing directory {d}")
        for d, rx in ((self._chunk_dir, _CHUNK_RE), (self._fail_dir, _FAIL_RE)):
            for p in d.iterdir():
                if not rx.match(p.name) and not p.name.startswith(_TMP_PREFIX):
                    raise StoreError(f"foreign file {p} in sweep store {self.path}; sgdsim did "
                                     "not write it (move it away)")

    def _clean_tmp(self) -> None:
        # leftovers of writes interrupted before os.replace: incomplete by construction
        for d in (self.path, self._chunk_dir, self._fail_dir):
            for p in d.glob(f"{_TMP_PREFIX}*"):
                p.unlink(missing_ok=True)

    # -- chunks (files are immutable once in place: each is read at most once)
    def chunks(self) -> Iterator[Chunk]:
        params = Grid.from_dict(self.manifest["grid"]).parameters
        for p in sorted(self._chunk_dir.glob("chunk-*.nc")):
            if str(p) not in self._chunks:
                self._chunks[str(p)] = _read_netcdf(p, params, self.manifest["fingerprint"])
            yield self._chunks[str(p)]

    def write_chunk(self, chunk: Chunk) -> None:
        first = int(chunk.index.min())
        path = self._chunk_dir / f"chunk-{first:09d}-{uuid.uuid4().hex[:8]}.nc"
        grid = Grid.from_dict(self.manifest["grid"])
        _atomic_write(path, lambda p: _write_netcdf(p, chunk, grid, self.manifest["fingerprint"]))
        chunk.label = str(path)
        self._chunks[str(path)] = chunk

    # -- failures
    def failures(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for p in sorted(self._fail_dir.glob("point-*.json")):
            try:
                rec = json.loads(p.read_text())
                index = int(rec["index"])
                fp = rec["fingerprint"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise StoreError(f"cannot read failure record {p}: {e}") from None
            if fp != self.manifest["fingerprint"]:
                raise StoreError(f"failure record {p} belongs to another sweep; move it away")
            out[index] = rec
        return out

    def write_failure(self, rec: dict[str, Any]) -> None:
        path = self._fail_dir / f"point-{int(rec['index']):09d}.json"
        text = json.dumps(rec, indent=1, sort_keys=True)
        # a new attempt's record replaces the previous attempt's: update, not overwrite results
        path.unlink(missing_ok=True)
        _atomic_write(path, lambda p: p.write_text(text))

    def clear_failure(self, index: int) -> None:
        (self._fail_dir / f"point-{index:09d}.json").unlink(missing_ok=True)


# ---- reading back --------------------------------------------------------------------------
def done_indices(store: MemoryStore) -> dict[int, str]:
    """``{point index: file}`` of finished points; duplicates are an error naming both files."""
    seen: dict[int, str] = {}
    n = int(store.manifest["n_points"])
    for chunk in store.chunks():
        label = chunk.label
        for i in chunk.index.tolist():
            if not 0 <= i < n:
                raise StoreError(f"results file {label} holds point index {i} outside the grid "
                                 f"of {n} points")
            if i in seen:
                raise StoreError(f"point {i} is stored twice: in {seen[i]} and {label}")
            seen[i] = label
    return seen


def assemble(grid: Grid, store: MemoryStore) -> xr.Dataset:
    """Gather all stored points into one Dataset over the grid's dimensions.

    Variables get dims ``(*grid.dims, *inner)``. Points without a result (failed, or not run)
    hold NaN, which promotes integer/bool outputs to float64. ``failed`` (bool, grid dims) marks
    points with a failure record.
    """
    shape = grid.shape
    n = grid.size
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    var_dims: dict[str, tuple[str, ...]] = {}
    inner_coords: dict[str, Any] = {}
    have = np.zeros(n, dtype=bool)
    for chunk in store.chunks():
        have[chunk.index] = True
        for name, (dims, arr) in chunk.outputs.items():
            if name in var_dims and (var_dims[name] != dims
                                     or parts[name][0][1].shape[1:] != arr.shape[1:]):
                raise StoreError(f"output `{name}` has dims {dims} / shape {arr.shape[1:]} in "
                                 f"{chunk.label} but {var_dims[name]} / "
                                 f"{parts[name][0][1].shape[1:]} elsewhere")
            var_dims[name] = dims
            parts.setdefault(name, []).append((chunk.index, arr))
        for c, (dims, values) in chunk.coords.items():
            inner_coords.setdefault(c, (dims, values))
    complete = bool(have.all())
    data: dict[str, Any] = {}
    for name, chunks in parts.items():
        dtype = np.result_type(*[v.dtype for _, v in chunks])
        if not complete:
            dtype = np.result_type(dtype, np.float64)
        inner = chunks[0][1].shape[1:]
        full = np.full((n, *inner), np.nan if dtype.kind == "f" else 0, dtype=dtype)
        for idx, v in chunks:
            full[idx] = v
        data[name] = ((*grid.dims, *var_dims[name]), full.reshape(shape + inner))
    failed = np.zeros(n, dtype=bool)
    records = [r for i, r in sorted(store.failures().items()) if not have[i]]
    for r in records:
        failed[int(r["index"])] = True
    data["failed"] = (grid.dims, failed.reshape(shape))
    coords = {**grid.coords(), **inner_coords}
    m = store.manifest
    attrs = {
        "sweep_fingerprint": m["fingerprint"],
        "sweep_fn": m["fn"]["name"],
        "sweep_fn_identity": json.dumps(m["fn"], sort_keys=True),
        "sweep_grid": json.dumps(m["grid"], sort_keys=True),
        "sweep_config": json.dumps(m["config"], sort_keys=True),
        "sweep_format": FORMAT,
        "sweep_n_points": n,
        "sweep_n_done": int(have.sum()),
        "sweep_n_failed": int(failed.sum()),
        "sgdsim_version": m["sgdsim_version"],
        "sweep_failures": json.dumps([
            {"index": r["index"], "params": r["params"],
             "error": f"{r['error_type']}: {r['message']}"[:500]} for r in records
        ], sort_keys=True),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def load_sweep(path: str | os.PathLike[str]) -> xr.Dataset:
    """Load the results stored at ``path`` (finished so far) without running anything."""
    st = DirectoryStore(path)
    done_indices(st)  # validates: no duplicates, indices in range
    return assemble(Grid.from_dict(st.manifest["grid"]), st)


def load_failures(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Failure records at ``path``: index, params, error_type, message, traceback, attempts."""
    st = DirectoryStore(path)
    done = done_indices(st)
    return [r for i, r in sorted(st.failures().items()) if i not in done]
