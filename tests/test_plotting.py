"""The shared figure style (sgdsim.plotting) and the helpers that draw with it."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from sgdsim.analysis.msd import MSDCurve
from sgdsim.plotting import figure, finish, label, problems, shared_colorbar
from sgdsim.sweep.plots import heatmap


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_problems_names_what_is_missing():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, 2])
    assert problems(fig) == ["panel 1: no title", "panel 1: no x label", "panel 1: no y label",
                             "panel 1: a line without a legend entry ('_child0')"]
    ax.axhline(1.5, label="threshold")
    finish(ax, title="t", xlabel="lr", ylabel="loss")
    assert ax.get_xlabel() == "learning rate η" and ax.get_ylabel() == "loss L(θ_t)"
    assert problems(fig) == ["panel 1: a line without a legend entry ('_child0')"]


def test_shared_label_shares_one_legend_entry():
    fig, ax = figure()
    for y in (1, 2):
        ax.axhline(y, label="2/η")
    finish(ax, title="t", xlabel="step", ylabel="sharpness")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["2/η"]
    assert problems(fig) == []


def test_shared_colorbar_one_range_no_overlap():
    data = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("beta", "lr"),
                        coords={"beta": [0.0, 0.9], "lr": [0.1, 0.4, 1.0]}, name="z")
    fig, axes = figure(1, 2, title="two panels")
    meshes = [heatmap(data * k, x="lr", y="beta", over=None, ax=ax, colorbar=False)
              for k, ax in zip((1, 3), axes)]
    cbar = shared_colorbar(meshes, axes, label="z")
    assert all(m.get_clim() == (0.0, 15.0) for m in meshes)
    assert axes[0].get_xlabel() == "learning rate η" and axes[0].get_ylabel() == "momentum β"
    fig.canvas.draw()  # constrained layout: the colour bar sits right of both panels
    right = max(ax.get_position().x1 for ax in axes)
    assert cbar.ax.get_position().x0 >= right


def test_vs_loglog_axis_is_time_not_log_time():
    from sgdsim.analysis.plots import plot_vs_loglog

    t = np.geomspace(1, 1e4, 20)
    msd = np.log(t + 1) ** 2 + 1
    nan = np.full_like(t, np.nan)
    curve = MSDCurve(times=t, msd=msd, msd_lo=nan, msd_hi=nan, median_dist=msd, median_lo=nan,
                     median_hi=nan, samples=np.ones((20, 2)), level=0.95)
    ax = plot_vs_loglog(curve, title="log law")
    assert ax.get_xscale() == "function" and ax.get_xlabel().startswith("step t")
    xs = ax.get_lines()[0].get_xdata()
    np.testing.assert_allclose(xs, t[t > 1])  # data are t itself; the axis places them at ln ln t


def test_label_unknown_name_and_unit():
    assert label("whatever") == "whatever" and label("lr", unit="1") == "learning rate η [1]"


def test_trajectory_plot_reads_on_its_own():
    import sgdsim as sg

    q = sg.Quadratic.from_eigenvalues(sg.power_law_spectrum(4, p=1.0), noise=sg.LabelNoise(1.0))
    res = sg.simulate(q, sg.sgd(lr=0.5), steps=50, replicas=8, batch_size=4, seed=0,
                      init=np.ones(4), record=("loss",), every=10, backend="numpy", progress=False)
    ax = res.plot("loss")
    assert ax.get_title() == "loss: mean over 8 replicas ± 1 s.e."
    assert ax.get_ylabel() == "loss L(θ_t)" and ax.get_xlabel() == "step t"
    assert problems(ax.figure) == []
    fig = ax.figure
    fig.canvas.draw()  # the x label lies inside the figure (constrained layout), not clipped
    box = ax.xaxis.label.get_window_extent()
    assert box.y0 >= 0 and box.x1 <= fig.bbox.width


def test_an_error_bar_with_a_legend_entry_is_not_flagged():
    """errorbar() labels its container, not its data line: the entry names that line, while an
    unlabelled error bar and an unlabelled plain line are still reported."""
    import matplotlib.pyplot as plt

    from sgdsim.plotting import problems

    fig, ax = plt.subplots()
    ax.errorbar([1, 2], [1, 2], yerr=[0.1, 0.1], fmt="s", label="measured")
    ax.set(title="t", xlabel="x", ylabel="y")
    ax.legend()
    assert problems(fig) == []
    ax.errorbar([1, 2], [2, 1], yerr=[0.1, 0.1], fmt="o")
    ax.plot([1, 2], [0, 0])
    ax.legend()
    assert len(problems(fig)) == 2
    plt.close(fig)
