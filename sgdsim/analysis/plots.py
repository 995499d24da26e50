"""Plots of displacement curves: log-log (power laws are lines) and log-log against ``ln t``
(log laws are lines).

Functions return the matplotlib ``Axes`` they drew on and never call ``show``; they follow
:mod:`sgdsim.plotting` (labelled axes, every line in the legend).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .._validation import check_choice, check_instance
from ..plotting import figure, finish
from .fits import FitResult
from .msd import MSDCurve

__all__ = ["plot_loglog", "plot_vs_loglog"]


_PARAM_SYMBOLS = {"gamma": "γ", "tau": "τ", "alpha": "α", "beta": "β"}
_LAW_FORMS = {"power": "a·t^c", "log": "a·(ln t)^γ", "saturating": "A·(1 − e^(−t/τ))"}


def _axes(ax: Any) -> Any:
    if ax is None:
        _, ax = figure(width=4.8, height=3.6)
    return ax


def _fit_label(fit: FitResult) -> str:
    pars = ", ".join(f"{_PARAM_SYMBOLS.get(k, k)} = {v:.3g}" for k, v in fit.params.items())
    return f"{fit.law} law {_LAW_FORMS.get(str(fit.law), '')}: {pars}"


def _curve(curve: MSDCurve, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    check_choice("which", which, ("msd", "median"))
    if which == "msd":
        return curve.msd, curve.msd_lo, curve.msd_hi, r"$\langle\|\theta_t-\theta_0\|^2\rangle$"
    return curve.median_dist, curve.median_lo, curve.median_hi, r"median $\|\theta_t-\theta_0\|$"


def _draw(
    ax: Any, x: np.ndarray, xlabel: str, curve: MSDCurve, which: str, fits, label: str | None,
    title: str | None,
) -> Any:
    """Draw ``curve`` (band, fits) against ``x`` on log-log axes of ``ax`` (new if None)."""
    ax = _axes(ax)
    y, lo, hi, ylabel = _curve(curve, which)
    (line,) = ax.plot(x, y, "o", ms=3, label=label or ("ensemble mean" if which == "msd" else
                                                       "ensemble median"))
    if np.all(np.isfinite(lo)):
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.25, lw=0)
    for fit in fits or ():
        if not isinstance(fit, FitResult):
            raise TypeError(f"`fits` must hold FitResult objects, got {type(fit).__name__}")
        t = curve.times[(curve.times >= fit.window[0]) & (curve.times <= fit.window[1])]
        xs = x[np.isin(curve.times, t)]
        fit_label = _fit_label(fit) if label is None else f"{label}, {_fit_label(fit)}"
        ax.plot(xs, fit.predict(t), "-", lw=1.2, label=fit_label)
    ax.set_yscale("log")
    if ax.get_xscale() == "linear":
        ax.set_xscale("log")
    return finish(ax, title=title, xlabel=xlabel, ylabel=ylabel)


def plot_loglog(
    curve: MSDCurve,
    *,
    which: str = "msd",
    fits: Iterable[FitResult] | None = None,
    ax: Any = None,
    label: str | None = None,
    title: str | None = None,
) -> Any:
    """Curve vs t on log-log axes with its bootstrap band and fitted laws over their windows.

    A power law ``a·t^c`` is a straight line of slope ``c``. ``label`` names this curve in the
    legend (several curves may share ``ax``); ``title`` titles the axes.
    """
    check_instance("curve", curve, MSDCurve)
    return _draw(ax, curve.times, "step t", curve, which, fits, label, title)


def plot_vs_loglog(
    curve: MSDCurve,
    *,
    which: str = "msd",
    fits: Iterable[FitResult] | None = None,
    ax: Any = None,
    label: str | None = None,
    title: str | None = None,
) -> Any:
    """Curve vs t on axes where a log law ``a·(ln t)^γ`` is a straight line of slope ``γ``.

    The y axis is logarithmic and the x axis is placed at ``ln(ln t)`` but labelled with ``t``
    itself (only t > 1 is shown), so nothing on the figure is "the log of a log-scaled
    quantity"; a power law curves upward on these axes. ``label`` and ``title`` as in
    :func:`plot_loglog`.
    """
    check_instance("curve", curve, MSDCurve)
    keep = curve.times > 1
    if keep.sum() == 0:
        raise ValueError("`curve` has no times > 1 to place on a log(log t) axis")
    sub = MSDCurve(**{k: (v[keep] if isinstance(v, np.ndarray) else v)
                      for k, v in curve.__dict__.items()})
    ax = _axes(ax)
    if ax.get_xscale() != "function":
        _loglog_time_axis(ax)
    return _draw(ax, sub.times, "step t (spaced as ln ln t)", sub, which, fits, label, title)


def _loglog_time_axis(ax: Any) -> None:
    """x axis at ``ln(ln t)`` with ticks at powers of ten of ``t`` (t > 1)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    def forward(t):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.log(np.maximum(np.asarray(t, dtype=float), 1.0 + 1e-12)))

    def inverse(u):
        return np.exp(np.exp(np.asarray(u, dtype=float)))

    ax.set_xscale("function", functions=(forward, inverse))
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(LogFormatterSciNotation(base=10))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())
