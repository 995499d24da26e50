"""simulate's refusals of bad input (issue 14's engine-side defects), each against what must
happen instead, and the windowed learning-rate schedule (pieces equal one call, bit for bit)."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import sgdsim as sg

simulate_module = importlib.import_module("sgdsim.simulate")  # the module, not the function


def _quad():
    return sg.Quadratic.from_eigenvalues([2.0, 1.0], noise=sg.LabelNoise(0.5))


def test_record_accepts_one_name_and_refuses_junk():
    one = sg.simulate(_quad(), sg.sgd(0.1), steps=4, seed=1, backend="numpy", record="loss")
    many = sg.simulate(_quad(), sg.sgd(0.1), steps=4, seed=1, backend="numpy", record=("loss",))
    np.testing.assert_array_equal(one["loss"].values, many["loss"].values)
    with pytest.raises(TypeError, match="`record`"):
        sg.simulate(_quad(), sg.sgd(0.1), steps=4, backend="numpy", record=3)
    with pytest.raises(ValueError, match="`record`"):
        sg.simulate(_quad(), sg.sgd(0.1), steps=4, backend="numpy", record="los")


def test_init_given_as_a_string_names_the_parameter():
    with pytest.raises(TypeError, match="`init`.*'zeros'"):
        sg.simulate(_quad(), sg.sgd(0.1), steps=2, backend="numpy", init="zeros")
    with pytest.raises(TypeError, match="`init_buffer`"):
        sg.simulate(_quad(), sg.sgd(0.1, momentum=0.5), steps=2, backend="numpy", init_buffer="0")


def test_full_sampling_refuses_a_batch_size_it_would_ignore():
    p = sg.LinearRegression(np.eye(4), np.ones(4))
    with pytest.raises(ValueError, match="`batch_size`=2"):
        sg.simulate(p, sg.sgd(0.1), steps=3, sampling="full", batch_size=2, backend="numpy")
    # B = N is the full batch: accepted, and the same run as leaving it out
    a = sg.simulate(p, sg.sgd(0.1), steps=3, sampling="full", batch_size=4, backend="numpy")
    b = sg.simulate(p, sg.sgd(0.1), steps=3, sampling="full", backend="numpy")
    np.testing.assert_array_equal(a.final_params, b.final_params)


def test_an_ensemble_that_cannot_fit_is_refused_with_its_size():
    with pytest.raises(ValueError, match=r"`replicas`=1000000000000 needs .* TiB"):
        sg.simulate(_quad(), sg.sgd(0.1), steps=2, replicas=10**12, backend="numpy")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("n_out", [1, 3])
def test_custom_gradient_of_the_wrong_length_is_refused(backend, n_out):
    """Before: Numba read past a length-1 gradient (θ ≈ −9e-310, status ok) and truncated a
    length-3 one; now both backends refuse it before compiling."""
    p = sg.CustomProblem(2, lambda th: np.ones(n_out))
    with pytest.raises(ValueError, match=rf"`grad` must return .* shape \(2,\).*shape \({n_out},\)"):
        sg.simulate(p, sg.sgd(0.1), steps=3, backend=backend, record=())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_custom_problem_without_loss_cannot_record_it(backend):
    """Before: Numba recorded an all-NaN loss with status ok (NumPy raised)."""
    p = sg.CustomProblem(2, lambda th: th)
    with pytest.raises(ValueError, match="no `loss` function"):
        sg.simulate(p, sg.sgd(0.1), steps=3, backend=backend, record=("loss",))
    ok = sg.simulate(p, sg.sgd(0.1), steps=3, backend=backend, record=("dist2",), init=np.ones(2))
    np.testing.assert_allclose(ok.final_params, np.full((1, 2), 0.9**3), rtol=1e-12)  # θ ← (1 − η)θ


def test_custom_problem_refuses_a_missing_gradient_and_a_non_number_loss():
    with pytest.raises(TypeError, match="`grad`"):
        sg.CustomProblem(2, None)
    p = sg.CustomProblem(2, lambda th: th, loss=lambda th: "x")
    with pytest.raises(ValueError, match="`loss` must return one real number"):
        sg.simulate(p, sg.sgd(0.1), steps=2, backend="numpy")


def test_custom_gradient_numba_cannot_compile_is_one_line():
    def grad(th):
        import json  # not in Numba's subset

        return np.asarray(json.loads("[1.0, 2.0]"))

    p = sg.CustomProblem(2, grad)
    with pytest.raises(TypeError, match="cannot be compiled by Numba.*backend='numpy'") as err:
        sg.simulate(p, sg.sgd(0.1), steps=2, backend="numba", record=())
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no Numba trace chained
    run = sg.simulate(p, sg.sgd(0.1), steps=2, backend="numpy", record=())  # the offered way out
    np.testing.assert_allclose(run.final_params, [[-0.2, -0.4]], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("sampling", ["with_replacement", "epoch_shuffle"])
def test_schedule_evaluated_in_pieces_equals_one_piece(monkeypatch, backend, sampling):
    """The learning rates are evaluated one piece at a time (no steps-long array): a run cut into
    7-step pieces equals the one-piece run bit for bit (schedule windows, sampler state and
    records carried across pieces)."""
    data = sg.LinearRegression.synthetic(n=32, dim=3, seed=2)
    opt = sg.sgd(sg.cosine_lr(0.1, 50), momentum=0.5)
    kw = dict(steps=50, replicas=4, batch_size=4, sampling=sampling, seed=3, every=5,
              record=("loss", "step2"), backend=backend)  # fmt: skip
    whole = sg.simulate(data, opt, **kw)
    monkeypatch.setattr(simulate_module, "MAX_PIECE", 7)
    pieces = sg.simulate(data, opt, **kw)
    np.testing.assert_array_equal(pieces.final_params, whole.final_params)
    for name in ("loss", "step2"):
        np.testing.assert_array_equal(pieces[name].values, whole[name].values)


@pytest.mark.parametrize("schedule", [sg.cosine_lr(0.3, 97), sg.step_lr(0.2, [10, 40]),
                                      sg.warmup_lr(0.1, 13)])  # fmt: skip
def test_schedule_windows_equal_the_whole_schedule(schedule):
    whole = schedule.values(100)
    for start, n in [(0, 7), (7, 50), (57, 43), (99, 1)]:
        np.testing.assert_array_equal(schedule.values(n, start=start), whole[start : start + n])


def test_trajectory_refuses_junk_and_names_a_bad_file(tmp_path):
    with pytest.raises(TypeError, match="`dataset`"):
        sg.Trajectory("0.1")
    bad = tmp_path / "not_netcdf.nc"
    bad.write_text("hello")
    with pytest.raises(ValueError, match=str(bad)):
        sg.Trajectory.load(bad)


def test_saved_trajectory_has_the_normal_file_mode(tmp_path):
    run = sg.simulate(_quad(), sg.sgd(0.1), steps=2, backend="numpy")
    path = run.save(tmp_path / "run.nc")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # what open() gives a new file, not 0600


def test_a_saved_file_says_what_was_run(tmp_path):
    """Variable descriptions and units, the problem's defining arrays (a SHA-256 over them, by
    name) and the init array's fingerprint travel with the file."""
    import hashlib
    import json

    import xarray as xr

    data = sg.LinearRegression.synthetic(n=16, dim=3, seed=4)
    init = np.arange(3.0)
    run = sg.simulate(data, sg.sgd(0.05), steps=4, batch_size=2, seed=0, init=init, backend="numpy",
                      record=("loss", "dist2"))  # fmt: skip
    ds = xr.load_dataset(run.save(tmp_path / "r.nc"), engine="h5netcdf")
    for name in ("loss", "dist2", "final_params", "diverged_at"):
        assert ds[name].attrs["description"] and ds[name].attrs["units"]
    config = json.loads(ds.attrs["config"])
    assert config["init"].endswith(hashlib.sha256(init.tobytes()).hexdigest())
    twin = sg.LinearRegression.synthetic(n=16, dim=3, seed=4)
    other = sg.LinearRegression.synthetic(n=16, dim=3, seed=5)
    fp = [json.loads(sg.simulate(p, sg.sgd(0.05), steps=1, backend="numpy").dataset.attrs["config"])
          ["problem"]["arrays_sha256"] for p in (twin, other)]  # fmt: skip
    assert config["problem"]["arrays_sha256"] == fp[0] != fp[1]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_recorded_loss_never_below_the_minimum_when_interpolating(backend):
    """N < d (H singular) started off the range of H: at convergence the exact excess
    (θ − ŵ)ᵀH(θ − ŵ) is rounding-level and, summed in floating point, negative for many replicas
    (asserted below, so the case is real); the recorded loss must still be ≥ L(ŵ)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 50))
    p = sg.LinearRegression(X, X @ rng.standard_normal(50))
    run = sg.simulate(p, sg.sgd(0.05), steps=3000, replicas=64, batch_size=4, seed=0, backend=backend,
                      record=("loss",), every=1000, init=np.ones(50))  # fmt: skip
    dw = run.final_params - p.solution
    assert np.mean(np.einsum("ri,ij,rj->r", dw, p.hessian_matrix(), dw) < 0) > 0.05
    assert np.all(run["loss"].values >= p.min_loss)
