"""Probability currents of a discretized density, and a density/streamline plot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdsim.theory.fokker_planck.operator import FokkerPlanck, check_fokker_planck


@dataclass(frozen=True)
class ProbabilityCurrent:
    """The current ``J = b p − ∇·(D p)`` of a density, from the scheme's own face fluxes.

    ``faces[i]``: current component i on the interior faces normal to axis i, shape ``grid.shape``
    with ``shape[i] − 1`` along axis i (wall faces carry zero current). ``centres``: shape
    ``(ndim, *grid.shape)``, each component the mean of the cell's two faces along its axis.
    """

    faces: tuple[np.ndarray, ...]
    centres: np.ndarray


def probability_current(fp: FokkerPlanck, p: Any) -> ProbabilityCurrent:
    """Probability current of the density ``p`` (shape ``grid.shape``) under ``fp``'s scheme.

    Consistent with the generator: ``L p = −Σ_i (J_i(right face) − J_i(left face)) / h_i``.
    """
    g = check_fokker_planck("fp", fp).grid
    flat = fp.check_density("p", p)
    faces, centres = [], []
    for ax, flux in enumerate(fp.face_flux):
        jf = flux @ flat
        shp = list(g.shape)
        shp[ax] -= 1
        jf = jf.reshape(shp)
        pad = [(0, 0)] * g.ndim
        pad[ax] = (1, 1)
        full = np.pad(jf, pad)  # zero flux through the walls
        lo = np.take(full, np.arange(g.shape[ax]), axis=ax)
        hi = np.take(full, np.arange(1, g.shape[ax] + 1), axis=ax)
        faces.append(jf)
        centres.append(0.5 * (lo + hi))
    return ProbabilityCurrent(faces=tuple(faces), centres=np.stack(centres))


def plot_density(
    fp: FokkerPlanck,
    p: Any,
    *,
    ax: Any = None,
    streamlines: bool = True,
    labels: tuple[str, ...] = ("x", "v"),
    cmap: str = "viridis",
    stream_kw: dict[str, Any] | None = None,
) -> Any:
    """Plot a density (2-D: image with current streamlines; 1-D: line). Returns the Axes.

    Streamline width scales with the current magnitude ``|J|`` at the cell centres.
    """
    import matplotlib.pyplot as plt

    g = check_fokker_planck("fp", fp).grid
    arr = fp.check_density("p", p).reshape(g.shape)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    if g.ndim == 1:
        ax.plot(g.centers[0], arr)
        ax.set_xlabel(labels[0])
        ax.set_ylabel("p")
        return ax
    x, y = g.centers
    extent = (g.lower[0], g.upper[0], g.lower[1], g.upper[1])
    im = ax.imshow(arr.T, origin="lower", extent=extent, aspect="auto", cmap=cmap)
    ax.figure.colorbar(im, ax=ax, label="p")
    if streamlines:
        j = probability_current(fp, arr).centres
        speed = np.hypot(j[0], j[1])
        kw = {"color": "w", "density": 1.2, "arrowsize": 0.8}
        kw["linewidth"] = 0.4 + 2.0 * speed.T / max(float(speed.max()), 1e-300)
        kw.update(stream_kw or {})
        ax.streamplot(x, y, j[0].T, j[1].T, **kw)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1] if len(labels) > 1 else "")
    return ax
