"""Plots of sweep results: heatmaps over two swept axes, lines with confidence bands over seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from sgdsim._validation import check_in_range
from sgdsim.plotting import label

__all__ = ["heatmap", "lines", "seed_summary"]


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def _variable(data: xr.Dataset | xr.DataArray, var: str | None) -> xr.DataArray:
    if isinstance(data, xr.DataArray):
        return data
    if var is None:
        names = [n for n in data.data_vars if n != "failed"]
        if len(names) != 1:
            raise ValueError(f"`var` is required: the dataset has variables {names}")
        var = names[0]
    if var not in data.data_vars:
        raise ValueError(f"`var`={var!r} is not a variable; choose from {list(data.data_vars)}")
    return data[var]


def seed_summary(da: xr.DataArray, dim: str = "seed", level: float = 0.95) -> xr.Dataset:
    """Mean over ``dim`` with a Student-t confidence interval of the mean, ignoring NaN (failed).

    Parameters
    ----------
    da
        Results with a ``dim`` dimension of independent replicates (seeds).
    dim
        The replicate dimension.
    level
        Two-sided confidence level in (0, 1).

    Returns
    -------
    xarray.Dataset
        ``mean``, ``lo``, ``hi`` (``mean ∓ t_{(1+level)/2, n-1} · s / √n`` with ``s`` the sample
        standard deviation, ddof=1) and ``n`` (finite replicates), over the remaining dims.
        With ``n < 2`` the interval is NaN.
    """
    from scipy import stats

    level = check_in_range("level", level, 0.0, 1.0, low_open=True, high_open=True)
    if dim not in da.dims:
        raise ValueError(f"`dim`={dim!r} is not a dimension of the data {da.dims}")
    n = da.notnull().sum(dim)
    mean = da.mean(dim, skipna=True)
    sd = da.std(dim, ddof=1, skipna=True)
    nv = n.values.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(nv >= 2, stats.t.ppf(0.5 + level / 2, np.maximum(nv - 1, 1)), np.nan)
        half = xr.DataArray(t, dims=n.dims, coords=n.coords) * sd / np.sqrt(n.where(n > 0))
    return xr.Dataset({"mean": mean, "lo": mean - half, "hi": mean + half, "n": n},
                      attrs={"level": level, "over": dim})


def heatmap(data: xr.Dataset | xr.DataArray, var: str | None = None, *, x: str, y: str,
            over: str | None = "seed", ax: Any = None, log: bool = False, cmap: str = "viridis",
            colorbar: bool = True, vmin: float | None = None, vmax: float | None = None) -> Any:
    """Heatmap of ``var`` over two swept dimensions, averaged over ``over`` (seeds).

    Cells are equally spaced whatever the coordinate values (swept values are often
    log-spaced) and labelled with the values; axes are labelled with the parameters' symbols
    (:func:`sgdsim.plotting.label`: ``lr`` → η, ``beta`` → β). All other dimensions must have
    been selected away (``ds.sel(...)``). ``vmin``/``vmax`` fix the colour range (to compare
    panels, or use :func:`sgdsim.plotting.shared_colorbar` with ``colorbar=False``). Returns the
    matplotlib ``QuadMesh``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    da = _variable(data, var)
    if over is not None and over in da.dims:
        da = da.mean(over, skipna=True)
    extra = set(da.dims) - {x, y}
    if {x, y} - set(da.dims) or extra:
        raise ValueError(f"heatmap needs exactly the dims x={x!r}, y={y!r} (after averaging "
                         f"over {over!r}); the data has {da.dims}. Select or reduce {sorted(extra)}"
                         " first")
    z = da.transpose(y, x).values
    if ax is None:
        _, ax = plt.subplots()
    norm = LogNorm(vmin, vmax) if log else None
    lims = {} if log else {"vmin": vmin, "vmax": vmax}
    mesh = ax.pcolormesh(np.arange(z.shape[1] + 1), np.arange(z.shape[0] + 1), z, cmap=cmap,
                         norm=norm, **lims)
    for axis, dim, n in ((ax.xaxis, x, z.shape[1]), (ax.yaxis, y, z.shape[0])):
        axis.set_ticks(np.arange(n) + 0.5)
        labels = da[dim].values if dim in da.coords else np.arange(n)
        axis.set_ticklabels([_fmt(v) for v in labels.tolist()])
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=label(str(da.name)))
    return mesh


def lines(data: xr.Dataset | xr.DataArray, var: str | None = None, *, x: str,
          hue: str | None = None, over: str = "seed", level: float = 0.95, ax: Any = None,
          logx: bool = False, logy: bool = False) -> Any:
    """Mean of ``var`` against ``x`` (one line per ``hue`` value) with a ``level`` Student-t band
    over ``over`` (seeds); see :func:`seed_summary`. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    da = _variable(data, var)
    s = seed_summary(da, over, level)
    want = {x} | ({hue} if hue else set())
    if want - set(s["mean"].dims) or set(s["mean"].dims) - want:
        raise ValueError(f"lines needs exactly the dims {sorted(want)} besides {over!r}; the data "
                         f"has {da.dims}. Select or reduce the others first")
    if ax is None:
        _, ax = plt.subplots()
    groups = [(None, s)] if hue is None else [(v, s.sel({hue: v})) for v in s[hue].values]
    for value, g in groups:
        xs = g[x].values if x in g.coords else np.arange(g.sizes[x])
        name = None if hue is None else f"{label(hue)} = {_fmt(value)}"
        (line,) = ax.plot(xs, g["mean"].values, marker="o", ms=3, label=name or label(str(da.name)))
        ax.fill_between(xs, g["lo"].values, g["hi"].values, color=line.get_color(), alpha=0.25,
                        lw=0)
    ax.set_xlabel(label(x))
    ax.set_ylabel(f"{label(str(da.name))} (mean, {level:.0%} CI over {over})")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax
