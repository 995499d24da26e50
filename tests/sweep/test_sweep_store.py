"""In-process sweeps: values, resume without recomputation, failure records, store integrity.

Truth for the numbers is a plain loop calling fn at each point (independent of the sweep
machinery); invocations are counted with one marker file per call.
"""

from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np
import pytest
import xarray as xr
from _sweep_testfns import as_dataset, calls, noisy_sgd, shape_changes

import sgdsim
from sgdsim.sweep import (
    FingerprintMismatchError,
    Grid,
    StoreError,
    SweepFailedError,
    SweepWarning,
    load_failures,
    load_sweep,
    product,
    sweep,
)
from sgdsim.sweep.core import _Chunker

GRID = Grid(product(lr=[0.1, 0.2, 0.3]), seeds=range(4))


def _truth(grid: Grid, fn) -> dict[str, np.ndarray]:
    outs = [fn(**p) for p in grid]
    return {k: np.stack([np.asarray(o[k]) for o in outs]).reshape(grid.shape + np.shape(outs[0][k]))
            for k in outs[0]}


@pytest.fixture
def markers(tmp_path):
    d = tmp_path / "markers"
    d.mkdir()
    return d


def test_values_coords_and_attrs_match_a_plain_loop():
    ds = sweep(noisy_sgd, GRID, progress=False)
    truth = _truth(GRID, noisy_sgd)
    assert ds["final"].dims == ("lr", "seed")
    assert ds["path"].dims == ("lr", "seed", "path_dim_0")
    for k in ("final", "path", "steps"):
        np.testing.assert_array_equal(ds[k].values, truth[k])  # same arithmetic: bitwise equal
    assert ds["steps"].dtype.kind == "i"  # no point missing → integer outputs stay integer
    assert list(ds["lr"].values) == [0.1, 0.2, 0.3] and list(ds["seed"].values) == [0, 1, 2, 3]
    assert not ds["failed"].any()
    assert ds.attrs["sweep_fn"] == "_sweep_testfns.noisy_sgd"
    assert json.loads(ds.attrs["sweep_grid"]) == GRID.to_dict()
    assert ds.attrs["sgdsim_version"] == sgdsim.__version__
    assert len(ds.attrs["sweep_fingerprint"]) == 64


def test_dataset_outputs_keep_their_coordinates():
    ds = sweep(as_dataset, GRID, progress=False, chunk_size=5)
    assert ds["x"].dims == ("lr", "seed", "step")
    np.testing.assert_array_equal(ds["step"].values, 10 * np.arange(21))
    np.testing.assert_array_equal(ds["x"].values, _truth(GRID, noisy_sgd)["path"])


def test_resume_recomputes_nothing_and_store_is_plain_netcdf(tmp_path, markers):
    fn = partial(noisy_sgd, marker_dir=str(markers))
    store = tmp_path / "store"
    first = sweep(fn, GRID, store=store, progress=False, chunk_size=5)
    assert sum(calls(markers).values()) == GRID.size
    again = sweep(fn, GRID, store=store, progress=False, chunk_size=2)
    assert sum(calls(markers).values()) == GRID.size  # nothing recomputed
    xr.testing.assert_identical(first, again)
    xr.testing.assert_identical(first, load_sweep(store))
    # readable without sgdsim: each chunk is a netCDF file with the point's parameters
    files = sorted((store / "chunks").glob("*.nc"))
    assert len(files) == 3  # 12 points in chunks of 5, 5, 2
    rows = xr.concat([xr.open_dataset(f, engine="h5netcdf").load() for f in files], "point")
    assert sorted(rows["point_index"].values.tolist()) == list(range(GRID.size))
    for i, lr, seed, final in zip(rows["point_index"].values, rows["lr"].values,
                                  rows["seed"].values, rows["final"].values):
        assert GRID.point(int(i)) == {"lr": lr, "seed": seed}
        assert final == noisy_sgd(lr, int(seed))["final"]
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["fingerprint"] == first.attrs["sweep_fingerprint"]


def test_interrupted_serial_sweep_resumes(tmp_path, markers):
    fn = partial(noisy_sgd, marker_dir=str(markers), interrupt_at=(0.2, 1))
    store = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        sweep(fn, GRID, store=store, progress=False, chunk_size=1)
    done_before = calls(markers)
    assert sum(done_before.values()) == 5  # points 0..4 precede (lr=0.2, seed=1) = index 5
    ds = sweep(fn, GRID, store=store, progress=False, chunk_size=1)
    after = calls(markers)
    assert all(n == 1 for n in after.values()) and len(after) == GRID.size
    np.testing.assert_array_equal(ds["final"].values, _truth(GRID, noisy_sgd)["final"])


def test_failing_point_is_recorded_and_others_finish(tmp_path, markers):
    flag = tmp_path / "fail"
    flag.touch()
    fn = partial(noisy_sgd, marker_dir=str(markers), fail_if=str(flag))
    store = tmp_path / "store"
    with pytest.warns(SweepWarning, match=r"4 of 12 sweep points failed.*boom at lr=0.2"):
        ds = sweep(fn, GRID, store=store, progress=False)
    np.testing.assert_array_equal(ds["failed"].values, np.array([[0] * 4, [1] * 4, [0] * 4],
                                                                dtype=bool))
    assert np.isnan(ds["final"].sel(lr=0.2)).all() and np.isfinite(ds["final"].sel(lr=0.1)).all()
    assert ds["steps"].dtype == np.float64  # missing points promote int outputs to float/NaN
    recs = load_failures(store)
    assert [r["index"] for r in recs] == [4, 5, 6, 7]
    assert recs[0]["error_type"] == "FloatingPointError" and "boom" in recs[0]["message"]
    assert "Traceback" in recs[0]["traceback"] and recs[0]["params"] == {"lr": 0.2, "seed": 0}
    assert json.loads(ds.attrs["sweep_failures"])[0]["index"] == 4
    # keep failures without retrying
    with pytest.warns(SweepWarning):
        sweep(fn, GRID, store=store, progress=False, retry_failed=False)
    assert sum(calls(markers).values()) == 8
    # the cause is fixed: only the failed points run again, records are cleared
    flag.unlink()
    ds = sweep(fn, GRID, store=store, progress=False)
    assert sum(calls(markers).values()) == 12 and not ds["failed"].any()
    assert load_failures(store) == []
    np.testing.assert_array_equal(ds["final"].values, _truth(GRID, noisy_sgd)["final"])


def test_retries_absorb_a_transient_error(tmp_path):
    state = {"n": 0}

    def flaky(lr, seed):
        state["n"] += 1
        if state["n"] == 2:
            raise ConnectionError("transient")
        return {"y": lr + seed}

    ds = sweep(flaky, GRID, progress=False, retries=1)
    assert not ds["failed"].any() and state["n"] == GRID.size + 1
    with pytest.warns(SweepWarning, match="ConnectionError: transient"):
        state["n"] = 0
        sweep(flaky, GRID, progress=False, retries=0)


def test_inconsistent_outputs_become_failure_records():
    with pytest.warns(SweepWarning, match="OutputMismatch"):
        ds = sweep(shape_changes, GRID, progress=False)
    assert ds["failed"].sel(lr=0.3).all() and not ds["failed"].sel(lr=0.1).any()


def test_changed_configuration_is_refused(tmp_path):
    store = tmp_path / "store"
    sweep(noisy_sgd, GRID, store=store, progress=False, config={"steps": 20})
    with pytest.raises(FingerprintMismatchError, match=r"differing: grid(.|\n)*overwrite=True"):
        sweep(noisy_sgd, Grid(lr=[0.1, 0.2, 0.3], seeds=5), store=store, progress=False,
              config={"steps": 20})
    with pytest.raises(FingerprintMismatchError, match="differing: config"):
        sweep(noisy_sgd, GRID, store=store, progress=False, config={"steps": 30})
    with pytest.raises(FingerprintMismatchError, match="differing: fn"):
        sweep(partial(noisy_sgd, batch=2), GRID, store=store, progress=False,
              config={"steps": 20})
    ds = sweep(partial(noisy_sgd, batch=2), GRID, store=store, progress=False,
               config={"steps": 20}, overwrite=True)
    assert json.loads(ds.attrs["sweep_fn_identity"])["partial_keywords"] == {"batch": 2}
    np.testing.assert_array_equal(ds["final"].values,
                                  _truth(GRID, partial(noisy_sgd, batch=2))["final"])


def test_corrupt_and_foreign_files_are_named(tmp_path):
    store = tmp_path / "store"
    sweep(noisy_sgd, GRID, store=store, progress=False, chunk_size=6)
    chunk = sorted((store / "chunks").glob("*.nc"))[0]
    good = chunk.read_bytes()

    chunk.write_bytes(good[: len(good) // 3])  # truncated, as by a full disk
    with pytest.raises(StoreError, match=f"cannot read results file {chunk}"):
        sweep(noisy_sgd, GRID, store=store, progress=False)
    chunk.write_bytes(good)

    other = tmp_path / "other"
    sweep(noisy_sgd, Grid(lr=[0.5], seeds=1), store=other, progress=False)
    alien = next((other / "chunks").glob("*.nc"))
    shutil.copy(alien, store / "chunks" / alien.name)
    with pytest.raises(StoreError, match=f"{alien.name} belongs to another sweep"):
        sweep(noisy_sgd, GRID, store=store, progress=False)
    (store / "chunks" / alien.name).unlink()

    (store / "chunks" / "notes.txt").write_text("hi")
    with pytest.raises(StoreError, match=r"foreign file .*notes\.txt"):
        sweep(noisy_sgd, GRID, store=store, progress=False)
    (store / "chunks" / "notes.txt").unlink()

    (store / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"cannot read store manifest .*manifest\.json"):
        sweep(noisy_sgd, GRID, store=store, progress=False)

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("1,2")
    with pytest.raises(StoreError, match="not a sweep store"):
        sweep(noisy_sgd, GRID, store=plain, progress=False, overwrite=True)
    assert (plain / "data.csv").exists()  # overwrite never deletes what is not a sweep store


def test_duplicate_point_in_two_files_is_an_error(tmp_path):
    store = tmp_path / "store"
    sweep(noisy_sgd, GRID, store=store, progress=False, chunk_size=12)
    f = next((store / "chunks").glob("*.nc"))
    shutil.copy(f, f.with_name(f.name.replace(f.name[-11:-3], "0badc0de")))
    with pytest.raises(StoreError, match="stored twice"):
        load_sweep(store)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"chunk_size": 0}, ValueError, "`chunk_size` must be >= 1"),
        ({"chunk_size": "big"}, TypeError, "`chunk_size` must be an integer"),
        ({"retries": -1}, ValueError, "`retries` must be >= 0"),
        ({"executor": "threads"}, ValueError, "`executor` must be"),
        ({"config": {"a": object()}}, TypeError, "`config`"),
        ({"config": [1]}, TypeError, "`config` must be a mapping"),
        ({"executor": "processes", "workers": 0}, ValueError, "`workers` must be >= 1"),
        ({"executor": "serial", "workers": 2}, ValueError, "needs executor='processes'"),
        ({"store": 3}, TypeError, "`path` of the sweep store"),  # before: Path(3) TypeError
    ],
)
def test_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        sweep(noisy_sgd, GRID, progress=False, **kwargs)


def test_loading_a_missing_store_is_a_value_error(tmp_path):
    # StoreError is also a ValueError: the path does not name a usable store
    with pytest.raises(ValueError, match="is not a sweep store"):
        load_sweep(tmp_path / "nothing-here")
    with pytest.raises(TypeError, match="`path`"):
        load_failures(None)


def test_unpicklable_fn_is_refused_before_any_process_starts():
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        sweep(lambda lr, seed: {"y": lr}, GRID, executor="processes", workers=2,
              progress=False)


def test_bad_fn_outputs_are_point_failures():
    # every point fails here, so the sweep raises (issue 14) with the first error attached
    with pytest.raises(SweepFailedError, match="must return a dict"):
        sweep(lambda lr, seed: [lr], GRID, progress=False)
    with pytest.raises(SweepFailedError, match="clashes with a sweep parameter"):
        sweep(lambda lr, seed: {"lr": lr}, GRID, progress=False)
    with pytest.raises(SweepFailedError, match="dtype <U"):
        sweep(lambda lr, seed: {"s": "x"}, GRID, progress=False)


def test_sweep_whose_every_point_fails_raises_with_the_first_error(tmp_path):
    # before: a Dataset of only `failed` and a SweepWarning
    def boom(lr, seed):
        raise FloatingPointError(f"boom at lr={lr}, seed={seed}")

    with pytest.raises(SweepFailedError, match=r"all 12 sweep points failed .*tracebacks in") as ei:
        sweep(boom, GRID, store=tmp_path / "s", progress=False)
    err = ei.value
    assert len(err.failures) == GRID.size
    assert "FloatingPointError: boom at lr=" in err.failures[0]["error"]
    assert "raise FloatingPointError" in err.first_traceback  # the traceback itself travels
    assert "its traceback" in str(err)
    assert bool(err.dataset["failed"].all())
    assert len(load_failures(tmp_path / "s")) == GRID.size  # the records are kept on disk


def test_auto_chunk_sizes():
    # probe with 1 point, then ~0.5 s of work per chunk, ≥0.05 s, ≥4 chunks per worker if possible
    c = _Chunker(list(range(10_000)), "auto", workers=2)
    assert c.size() == 1
    c.observe([1e-5])
    assert c.size() == 5000  # 0.05 s / 1e-5 s floor beats 10000 / (4·2) = 1250
    c.observe([1e-5, 0.05, 0.05, 0.05])  # median 0.05 s
    assert c.size() == 10  # 0.5 s / 0.05 s cap beats the balance size 1250
    c = _Chunker(list(range(20)), "auto", workers=2)
    c.observe([0.01])
    assert c.size() == 5  # 0.05 s / 0.01 s = 5 floor beats 20 / 8 → 3
    assert _Chunker(list(range(7)), 3, workers=2).size() == 3


# --- one writer per store --------------------------------------------------------------------------
def test_second_writer_is_locked_out_and_cannot_touch_in_flight_files(tmp_path, markers):
    from sgdsim.sweep import StoreLockedError
    from sgdsim.sweep.store import DirectoryStore, make_manifest

    fn = partial(noisy_sgd, marker_dir=str(markers))
    store = tmp_path / "store"
    first = DirectoryStore(store, make_manifest(GRID, fn, None))  # a sweep in progress …
    in_flight = store / "chunks" / ".tmp-writing.nc"  # … in the middle of writing a chunk
    in_flight.write_bytes(b"partial")
    with pytest.raises(StoreLockedError, match=r"being written by another sweep \(pid \d+ on "):
        sweep(fn, GRID, store=store, progress=False)
    assert in_flight.read_bytes() == b"partial" and not calls(markers)  # untouched, nothing ran
    load_sweep(store)  # reading needs no lock
    first.close()
    in_flight.unlink()
    ds = sweep(fn, GRID, store=store, progress=False)
    np.testing.assert_array_equal(ds["final"].values, _truth(GRID, noisy_sgd)["final"])
    sweep(fn, GRID, store=store, progress=False)  # the finished sweep released its lock too


def test_a_killed_writer_leaves_no_lock(tmp_path):
    import subprocess
    import sys
    import time

    store = tmp_path / "store"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]);"
        "from _sweep_testfns import noisy_sgd; from sgdsim.sweep.store import DirectoryStore, "
        "make_manifest; from sgdsim.sweep import Grid, product;"
        "s = DirectoryStore(sys.argv[1], make_manifest(Grid(product(lr=[0.1, 0.2, 0.3]), "
        "seeds=range(4)), noisy_sgd, None)); print('locked', flush=True); time.sleep(600)"
    )
    here = str(__import__("pathlib").Path(__file__).parent)
    proc = subprocess.Popen([sys.executable, "-c", code, str(store), here], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "locked"
        from sgdsim.sweep import StoreLockedError

        with pytest.raises(StoreLockedError):
            sweep(noisy_sgd, GRID, store=store, progress=False)
        proc.kill()  # SIGKILL: no clean-up code runs in the holder
        proc.wait(timeout=30)
        time.sleep(0.1)
        ds = sweep(noisy_sgd, GRID, store=store, progress=False)
        assert ds["final"].shape[:2] == GRID.shape
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
