"""The same sweep on serial, a local process pool and a real dask LocalCluster: identical numbers;
a worker killed hard mid-sweep; resume without recomputing finished points."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from _sweep_testfns import calls, noisy_sgd, tiny

from sgdsim.sweep import Grid, ProcessExecutor, SweepInterruptedError, load_sweep, sweep
from sgdsim.sweep.store import DirectoryStore, done_indices

distributed = pytest.importorskip("distributed")

GRID = Grid(lr=[0.1, 0.2, 0.3], batch=[1, 4], seeds=range(3))


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def serial_result():
    return sweep(noisy_sgd, GRID, progress=False)


def test_serial_matches_plain_loop(serial_result):
    truth = np.array([noisy_sgd(**p)["final"] for p in GRID]).reshape(GRID.shape)
    np.testing.assert_array_equal(serial_result["final"].values, truth)  # same arithmetic


def test_processes_give_identical_numbers(tmp_path, serial_result):
    ds = sweep(noisy_sgd, GRID, executor="processes", workers=2, store=tmp_path / "s",
               progress=False)
    np.testing.assert_array_equal(ds["path"].values, serial_result["path"].values)
    np.testing.assert_array_equal(ds["final"].values, serial_result["final"].values)


def test_dask_client_and_address_give_identical_numbers(client, tmp_path, serial_result):
    ds = sweep(noisy_sgd, GRID, executor=client, store=tmp_path / "s", chunk_size=3,
               progress=False)
    np.testing.assert_array_equal(ds["path"].values, serial_result["path"].values)
    ds = sweep(noisy_sgd, GRID, executor=client.scheduler.address, progress=False)
    np.testing.assert_array_equal(ds["final"].values, serial_result["final"].values)
    # closures travel with cloudpickle on dask
    ds = sweep(lambda i, seed: {"y": i + 0.5 * seed}, Grid(i=[1, 2], seeds=2), executor=client,
               progress=False)
    np.testing.assert_array_equal(ds["y"].values, [[1.0, 1.5], [2.0, 2.5]])


def test_many_tiny_points_are_batched_on_dask(client):
    g = Grid(i=range(300), seeds=2)
    ds = sweep(tiny, g, executor=client, progress=False)
    np.testing.assert_array_equal(ds["y"].values,
                                  1000 * np.arange(300)[:, None] + np.arange(2)[None, :])


def test_killed_worker_then_resume(tmp_path):
    """SIGKILL a pool worker at one point: the sweep stops with a clear error, finished chunks
    are on disk; the re-run computes exactly the missing points, each once."""
    markers = tmp_path / "markers"
    markers.mkdir()
    store = tmp_path / "store"
    fn = partial(noisy_sgd, marker_dir=str(markers), kill_at=(0.2, 1, 1))
    with pytest.raises(SweepInterruptedError, match="run the same sweep again"), \
            ProcessExecutor(2) as ex:
        sweep(fn, GRID, store=store, executor=ex, chunk_size=2, progress=False)
    saved = set(done_indices(DirectoryStore(store)))
    assert 0 < len(saved) < GRID.size
    before = calls(markers)
    with ProcessExecutor(2) as ex:
        ds = sweep(fn, GRID, store=store, executor=ex, chunk_size=2, progress=False)
    after = calls(markers)
    for i in range(GRID.size):
        key = tuple(GRID.point(i).values())
        ran = after.get(key, 0) - before.get(key, 0)
        assert ran == (0 if i in saved else 1), (i, key, ran)  # finished points never rerun
    # every point stored exactly once (done_indices raises on duplicates) and correct
    assert sorted(done_indices(DirectoryStore(store))) == list(range(GRID.size))
    truth = np.array([noisy_sgd(**p)["final"] for p in GRID]).reshape(GRID.shape)
    np.testing.assert_array_equal(ds["final"].values, truth)
    np.testing.assert_array_equal(load_sweep(store)["final"].values, truth)


def test_retries_rebuild_a_broken_pool(tmp_path, serial_result):
    markers = tmp_path / "markers"
    markers.mkdir()
    fn = partial(noisy_sgd, marker_dir=str(markers), kill_at=(0.1, 4, 0))
    with ProcessExecutor(2) as ex:
        ds = sweep(fn, GRID, executor=ex, chunk_size=3, retries=1, progress=False)
    np.testing.assert_array_equal(ds["final"].values, serial_result["final"].values)
    assert (markers / "killed").exists()  # the kill did happen


def test_dask_survives_a_killed_worker(client, tmp_path, serial_result):
    """On dask the nanny restarts a killed worker and the scheduler reruns its task."""
    markers = tmp_path / "markers"
    markers.mkdir()
    fn = partial(noisy_sgd, marker_dir=str(markers), kill_at=(0.3, 4, 2))
    ds = sweep(fn, GRID, executor=client, store=tmp_path / "s", chunk_size=1, progress=False)
    np.testing.assert_array_equal(ds["final"].values, serial_result["final"].values)
    assert sorted(done_indices(DirectoryStore(tmp_path / "s"))) == list(range(GRID.size))


def test_dask_executor_names_its_argument():
    from sgdsim.sweep import DaskExecutor

    with pytest.raises(TypeError, match="`client`"):  # before: "`executor` must be ..." from here
        DaskExecutor(None)
    for junk in ("0.1", "", "yes"):  # before: distributed's "missing port number in address"
        with pytest.raises(ValueError, match="`client`.* is not a scheduler address"):
            DaskExecutor(junk)
