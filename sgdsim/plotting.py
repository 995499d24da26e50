"""One plotting style for every figure sgdsim draws: the suite's, the notebooks', the helpers'.

The conventions (applied by :func:`figure` and :func:`finish`, checked by :func:`problems`):

* every axes has a title (or the figure a suptitle) and labelled axes, with symbols for the
  swept quantities (η for the learning rate, β for momentum, B for the batch size, λ for an
  eigenvalue; see :data:`LABELS` and :func:`label`);
* every line drawn has a legend entry, reference lines included;
* a quantity spanning decades gets a log axis; an axis never shows the logarithm of a quantity
  that is itself on a log axis;
* panels that compare one quantity share one colour range and one colour bar, laid out by
  matplotlib's constrained layout so that it overlaps no panel (:func:`shared_colorbar`).

Nothing here imports matplotlib at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["LABELS", "RC", "figure", "finish", "label", "problems", "shared_colorbar", "use_style"]

#: Axis / colour-bar labels for the names used in sweeps, trajectories and checks.
LABELS: Mapping[str, str] = {
    "lr": "learning rate η",
    "eta": "learning rate η",
    "beta": "momentum β",
    "momentum": "momentum β",
    "batch_size": "batch size B",
    "batch": "batch size B",
    "B": "batch size B",
    "weight_decay": "weight decay λ_wd",
    "seed": "seed",
    "step": "step t",
    "steps": "step t",
    "time": "time t",
    "loss": "loss L(θ_t)",
    "dist2": "‖θ_t − θ_0‖²",
    "step2": "‖θ_{t+1} − θ_t‖²",
    "grad2": "‖∇L(θ_t)‖²",
    "sharpness": "sharpness λ_max(H)",
    "lambda_max": "sharpness λ_max(H)",
    "theta": "θ",
    "p": "spectrum exponent p (λ_i ∝ i^−p)",
}

#: matplotlib rcParams of the style (sizes in points).
RC: Mapping[str, Any] = {
    "figure.dpi": 110,
    "figure.constrained_layout.use": True,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "savefig.bbox": "tight",
}


def use_style() -> None:
    """Make the style matplotlib's default (sizes of :data:`RC`), for notebooks and scripts.

    Inside a Jupyter kernel it also selects the inline backend, so figures become cell outputs
    even when ``MPLBACKEND=agg`` is exported (as in the test run, whose executed notebooks the
    docs render); outside, without a display and without ``MPLBACKEND``, it selects ``agg``.
    Layout stays per figure (:func:`figure` uses constrained layout).
    """
    import os
    import sys

    import matplotlib

    if "ipykernel" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("matplotlib", "inline")
    elif not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
        matplotlib.use("agg")
    matplotlib.rcParams.update({k: v for k, v in RC.items() if not k.startswith("figure.constr")})


def label(name: str, unit: str | None = None) -> str:
    """Display label for a variable or swept parameter ``name``; unknown names are returned as is.

    >>> label("lr")
    'learning rate η'
    >>> label("time", unit="s")
    'time t [s]'
    """
    text = LABELS.get(name, name)
    return f"{text} [{unit}]" if unit else text


def figure(nrows: int = 1, ncols: int = 1, *, width: float | None = None,
           height: float | None = None, title: str | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` with the style's rcParams and constrained layout (colour bars and labels
    never overlap or get clipped). ``width``/``height`` in inches (default 4.8 per column, 3.4
    per row); ``title`` becomes the suptitle. Returns ``(fig, axes)`` like ``plt.subplots``."""
    import matplotlib.pyplot as plt

    size = (width or 4.8 * ncols, height or 3.4 * nrows)
    with plt.rc_context(dict(RC)):
        fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kwargs)
    if title:
        fig.suptitle(title, fontsize=RC["axes.titlesize"] + 1)
    return fig, axes


def finish(ax: Any, *, title: str | None = None, xlabel: str | None = None,
           ylabel: str | None = None, legend: bool | str = True) -> Any:
    """Set the title and axis labels of ``ax`` (names in :data:`LABELS` are translated) and draw
    the legend when anything drawn is labelled (``legend`` may be a ``loc`` string, or
    ``"outside"`` to put it beside the axes when the data fill them); lines that
    share a label (e.g. one threshold drawn per curve) share one entry. Returns ``ax``."""
    if title is not None:
        ax.set_title(title, fontsize=RC["axes.titlesize"])
    if xlabel is not None:
        ax.set_xlabel(label(xlabel))
    if ylabel is not None:
        ax.set_ylabel(label(ylabel))
    if legend:
        handles, texts = ax.get_legend_handles_labels()
        unique = dict(zip(texts, handles))  # lines sharing a label get one entry (the last)
        if unique:
            where: dict[str, Any] = {"loc": legend if isinstance(legend, str) else "best"}
            if legend == "outside":  # beside the axes (constrained layout makes room)
                where = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
            leg = ax.legend(list(unique.values()), list(unique.keys()), **where,
                            fontsize=RC["legend.fontsize"], framealpha=RC["legend.framealpha"])
            if legend == "outside":  # widen the figure by the legend so the axes keep their size
                fig = ax.figure
                fig.canvas.draw()
                width = leg.get_window_extent().width / fig.dpi
                fig.set_figwidth(fig.get_figwidth() + width + 0.1)
    ax.grid(True, alpha=RC["grid.alpha"])
    return ax


def shared_colorbar(mappables: Sequence[Any], axes: Iterable[Any], *, label: str,
                    vmin: float | None = None, vmax: float | None = None) -> Any:
    """Give ``mappables`` (e.g. the meshes of several heatmap panels) one colour range
    (``vmin``/``vmax``, default the range over all of them) and draw one colour bar for all of
    ``axes`` beside the last panel. Returns the colour bar."""
    import numpy as np

    values = [np.asarray(m.get_array(), dtype=float) for m in mappables]
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values])
    lo = float(finite.min()) if vmin is None else vmin
    hi = float(finite.max()) if vmax is None else vmax
    for m in mappables:
        m.set_clim(lo, hi)
    axes = list(np.ravel(list(axes)))
    return axes[0].figure.colorbar(mappables[0], ax=axes, label=label, shrink=0.9)


def problems(fig: Any) -> list[str]:
    """What in ``fig`` breaks the conventions above: a panel without title or axis labels, a
    line without a legend entry. An empty list means the figure reads on its own."""
    out = []
    has_suptitle = bool(fig.get_suptitle())
    for k, ax in enumerate(fig.axes):
        if ax.get_label() == "<colorbar>":
            continue
        name = f"panel {k + 1}"
        if not (ax.get_title() or has_suptitle):
            out.append(f"{name}: no title")
        # a panel sharing an axis with a labelled one (sharex/sharey) is labelled by it
        if ax.has_data() and not any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax)):
            out.append(f"{name}: no x label")
        if ax.has_data() and not any(a.get_ylabel() for a in ax.get_shared_y_axes().get_siblings(ax)):
            out.append(f"{name}: no y label")
        legend = ax.get_legend()
        shown = {t.get_text() for t in legend.get_texts()} if legend else set()
        # an error bar's data line carries no label of its own: its container's entry names it
        in_entry = {id(ln) for c in ax.containers if c.get_label() in shown
                    for ln in c.get_children() if hasattr(ln, "get_xydata")}  # fmt: skip
        for line in ax.get_lines():
            if id(line) in in_entry:
                continue
            text = line.get_label()
            if text.startswith("_") or text not in shown:
                out.append(f"{name}: a line without a legend entry ({text!r})")
    return out
