"""Stationary variance of heavy-ball SGD over an η × B × β grid, run with :func:`sgdsim.sweep.sweep`.

On ``L = ½θᵀHθ`` with additive per-sample gradient noise ``C`` (minibatch: ``C/B``), iterates
started at 0 stay Gaussian with mean 0, so ``E‖θ_T‖² = tr Σ_T`` and the sample mean of
``‖θ_T‖²`` over R replicas has variance ``2 tr(Σ²)/R``. At every grid point the measured
``tr Σ`` must match the exact discrete Lyapunov solution
(:class:`sgdsim.theory.NoisyQuadraticMoments`), which is the statement of Kunin et al. 2021's
discrete analysis (PAPERS.md §5) across the whole hyperparameter plane rather than at one point.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy import stats

import sgdsim as sg
from paper_checks.registry import CheckContext, Measurement, check
from sgdsim.sweep import Grid, product, sweep
from sgdsim.theory import NoisyQuadraticMoments

LAM = np.array([1.0, 0.25])  # Hessian eigenvalues (H diagonal)
NOISE = np.array([1.0, 0.5])  # per-sample noise covariance, diagonal


def stationary_trace(lr: float, batch: int, beta: float, seed: int, *, replicas: int,
                     steps: int) -> dict[str, float]:
    """Mean of ‖θ_T‖² over ``replicas`` after ``steps`` (≈ stationary) heavy-ball steps."""
    # independent noise per grid cell and seed (no common random numbers across cells)
    ss = np.random.SeedSequence([seed, round(lr * 1e6), batch, round(beta * 1e6)])
    sim_seed = int(ss.generate_state(1)[0])
    problem = sg.Quadratic.from_eigenvalues(LAM, noise=sg.AdditiveNoise(NOISE))
    res = sg.simulate(problem, sg.sgd(lr, momentum=beta), steps=steps, replicas=replicas,
                      batch_size=batch, seed=sim_seed, record=("dist2",), every=steps,
                      backend="numpy", progress=False)
    return {"trace": float(res["dist2"].isel(step=-1).mean())}


@check("sweep.stationary_variance_grid", paper="Kunin et al. 2021",
       claim="across an η × B × β grid, the stationary tr Cov θ of heavy-ball SGD on a noisy "
             "quadratic equals the discrete Lyapunov solution at every point")
def stationary_variance_grid(ctx: CheckContext) -> list[Measurement]:
    grid = Grid(product(lr=[0.1, 0.4, 1.0], batch=[1, 4], beta=[0.0, 0.5, 0.9]),
                seeds=[ctx.seed, ctx.seed + 1])
    R = 2000 if ctx.quick else 40_000
    # slowest contraction of the mean: 1 − ηλ_min = 0.975 (η=0.1, β=0); Σ relaxes as 0.975^{2t}:
    # after 600 steps the transient is e^{-30} of Σ
    steps = 600
    fn = partial(stationary_trace, replicas=R, steps=steps)
    ds = sweep(fn, grid, executor="serial" if ctx.quick else "processes", progress=False)
    measured = ds["trace"].mean("seed")
    n_seeds = ds.sizes["seed"]
    exact = np.empty(measured.shape)
    se = np.empty(measured.shape)
    for idx in np.ndindex(measured.shape):
        cell = measured[idx]
        th = NoisyQuadraticMoments(LAM, NOISE, lr=float(cell["lr"]),
                                   momentum=float(cell["beta"]), batch_size=int(cell["batch"]))
        S = th.stationary_cov(method="dense")
        exact[idx] = np.trace(S)
        se[idx] = np.sqrt(2 * np.trace(S @ S) / (R * n_seeds))  # Gaussian ‖θ‖², see docstring
    z = (measured.values - exact) / se
    K = z.size
    alpha = 1e-3
    z_max = stats.norm.ppf(1 - alpha / (2 * K))
    out = [
        Measurement(
            quantity=f"max |z| of tr Cov θ over {K} grid cells (η×B×β), sim vs Lyapunov",
            predicted=0.0, measured=float(np.max(np.abs(z))), tolerance=float(z_max),
            source="discrete Lyapunov (scipy solve_discrete_lyapunov on (θ, buf))",
            note=f"Bonferroni bound: family-wise false-alarm {alpha:g} over {K} cells",
        ),
        Measurement(
            quantity=f"Σ z² over {K} cells (χ²_{K} if every cell matches)",
            predicted=float(K), measured=float(np.sum(z**2)), tolerance=4 * np.sqrt(2 * K),
            source="χ² distribution of K independent standard normal z-scores",
            note=f"4σ of χ²_{K} (σ = sqrt(2K)); cells use independent seeds",
        ),
    ]
    from sgdsim.plotting import figure, shared_colorbar
    from sgdsim.sweep.plots import heatmap

    zs = measured.copy(data=z).rename("z")
    fig, axes = figure(1, 2, width=8.4, height=3.4, sharey=True,
                       title="Stationary tr Cov θ, simulated vs discrete Lyapunov, per grid cell")
    meshes = []
    for ax, b in zip(axes, ds["batch"].values.tolist()):
        meshes.append(heatmap(zs.sel(batch=b), x="lr", y="beta", over=None, ax=ax, cmap="RdBu_r",
                              colorbar=False))
        ax.set_title(f"batch size B = {b}", fontsize=10)
    axes[1].set_ylabel("")
    shared_colorbar(meshes, axes, vmin=-z_max, vmax=z_max,
                    label=f"z = (measured − exact) / s.e.; bound ±{z_max:.2f}")
    ctx.savefig(fig, "sweep_stationary_variance_grid")
    return out

