"""Generate ``06_high_dimensional_sgd.ipynb`` (outputs cleared).

Run ``python notebooks/_make_06.py`` from the repository root after editing the cells below; the
notebook is the artefact CI executes (``pytest --nbmake``), this script is its source.
"""

from __future__ import annotations

from pathlib import Path

from _nbgen import NotebookSource

SOURCE = NotebookSource()
md, code = SOURCE.md, SOURCE.code


# ------------------------------------------------------------------------------------------------
md(r"""
# 06 — High-dimensional SGD: homogenized SGD and its Volterra risk curve

For least squares $L(w) = \frac1{2N}\|Xw-y\|^2$ with $H = X^\top X/N$, minibatch SGD
(`sg.sgd(lr=η)`, $B$ indices drawn with replacement each step) has, in high dimension, a
*deterministic* expected loss curve $\psi_k = \mathbb E L(w_k)$: the solution of a renewal
(Volterra) equation driven only by the spectrum of $H$ (Paquette, Paquette, Adlam & Pennington
2022; Paquette, Lee, Pedregosa & Paquette 2021):

$$\psi_k = f_k + \sum_{s<k} K_{k-1-s}\,\psi_s,\qquad
f_k = L(\hat w) + \tfrac12\sum_j \lambda_j c_j (1-\eta\lambda_j)^{2k},\qquad
K_m = \tfrac{\eta^2}{B}\sum_j \lambda_j^2 (1-\eta\lambda_j)^{2m}.$$

$f$ is the noiseless (gradient-descent) loss, $K$ the memory of the gradient noise, which the
*homogenized* model takes to be $(2L(w)/B)\,H$. The curve stays bounded iff $\|K\| = \sum_m K_m < 1$:
the critical learning rate is $\approx 2B/\operatorname{tr}H$, set by the *average* eigenvalue.

This notebook: (1) the curve against `sgdsim.simulate` at three sizes, (2) the critical learning
rate, (3) a Marchenko–Pastur spectrum instead of a data matrix, (4) power-law spectra and their
risk exponents. `SGDSIM_QUICK=1` (the default) runs in well under a minute on two CPU cores.
""")

code(r"""
import os
import time
import warnings

import matplotlib.pyplot as plt

from sgdsim.plotting import use_style

# the project's figure style; in Jupyter figures show inline (also under MPLBACKEND=agg),
# headless runs outside Jupyter render off-screen
use_style()
import numpy as np

import sgdsim as sg
from sgdsim.analysis import fit_power_law, log_spaced_indices
from sgdsim.theory.homogenized import (
    HomogenizedSGD,
    LeastSquaresSpectrum,
    critical_lr,
    power_law_risk_exponent,
)

QUICK = os.environ.get("SGDSIM_QUICK", "1") == "1"
DIMS = (100, 300, 600) if QUICK else (250, 1000, 2000)
REPLICAS = 24 if QUICK else 128
SEED = 0
T_START = time.perf_counter()


def gaussian_data(d, n, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) / np.sqrt(d)
    return X, X @ w + noise * rng.standard_normal(n), w


print("QUICK =", QUICK, "| sizes d =", DIMS, "| replicas", REPLICAS)
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 1. The Volterra curve against simulation

Gaussian data, $N = 2d$, label noise 0.5, $B = 1$, lr at half the critical value. The spectrum is
the data matrix's own (`LeastSquaresSpectrum.from_data`); the simulation averages `REPLICAS`
independent SGD runs on that same data set. The ensemble mean matches the curve to within about
one or two standard errors at every size; the spread of single runs around it shrinks roughly as
$d^{-1/2}$ (with few replicas the RMS estimate itself is noisy: the paper check
`homogenized.sim_vs_volterra` fits the slope with more).
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
rows = []
for d in DIMS:
    X, y, _ = gaussian_data(d, 2 * d, SEED + d)
    spec = LeastSquaresSpectrum.from_data(X, y)
    lr = 0.5 * critical_lr(spec, 1)
    steps, every = 4 * d, d // 10
    theory = HomogenizedSGD(spec, lr, 1).risk(steps, every=every)
    res = sg.simulate(sg.LinearRegression(X, y), sg.sgd(lr), steps=steps, replicas=REPLICAS,
                      batch_size=1, seed=SEED, record=("loss",), every=every, progress=False)
    loss = res["loss"].values
    mean, se = loss.mean(1), loss.std(1, ddof=1) / np.sqrt(REPLICAS)
    x = theory["step"] / d
    axes[0].plot(x, theory["loss"], "k-", lw=1)
    axes[0].fill_between(x, mean - 2 * se, mean + 2 * se, alpha=0.4, label=f"SGD d={d}")
    bias = np.max(np.abs(mean - theory["loss"])) / theory["loss"][0]
    rms = np.sqrt(np.mean((loss - theory["loss"][:, None]) ** 2, axis=1)).max() / theory["loss"][0]
    rows.append((d, bias, np.max(se) / theory["loss"][0], rms))
    print(f"d={d:5d}: sup|mean − ψ|/ψ0 = {bias:.4f} (max s.e. {rows[-1][2]:.4f}), "
          f"single-run RMS / ψ0 = {rms:.4f}")
axes[0].plot([], [], "k-", lw=1, label="Volterra")
axes[0].set(xlabel="steps / d", ylabel="training loss", title="mean ± 2 s.e. vs Volterra")
axes[0].legend()
dd = np.array([r[0] for r in rows], float)
axes[1].loglog(dd, [r[3] for r in rows], "o-", label="single-run RMS deviation")
axes[1].errorbar(dd, [r[1] for r in rows], yerr=[2 * r[2] for r in rows], fmt="s",
                 label="|ensemble mean − ψ| (± 2 s.e.)")
axes[1].loglog(dd, rows[0][3] * (dd / dd[0]) ** -0.5, "k--", lw=0.8, label="∝ d^-1/2")
axes[1].set(xlabel="d", ylabel="sup over time / ψ0", title="discrepancy vs d")
axes[1].legend()
plt.tight_layout()
plt.show()
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 2. The critical learning rate

`critical_lr` solves $\|K\|(\eta) = 1$. Above it the expected loss grows without bound — and
`HomogenizedSGD.risk` refuses to draw a curve there unless asked (`allow_divergent=True`, with a
warning naming the violated assumption). Simulation agrees: converged below, diverged above. The
exact mean-square threshold of the fixed data set (`mean_square_lr_threshold`, from the
$d^2\times d^2$ moment map) is within $O(1/d)$ of it.
""")

code(r"""
d = DIMS[1]
X, y, _ = gaussian_data(d, 2 * d, SEED + 1)
spec = LeastSquaresSpectrum.from_data(X, y)
eta_c = critical_lr(spec, 1)
print(f"d={d}: critical lr {eta_c:.5f}, 2B/tr H = {2 / spec.trace:.5f}, "
      f"GD edge 2/λ_max = {2 / spec.max_eigenvalue:.4f}")
try:
    HomogenizedSGD(spec, 1.2 * eta_c, 1).risk(100)
except ValueError as err:
    print("refused:", str(err)[:110], "…")
for factor in (0.8, 1.2):
    res = sg.simulate(sg.LinearRegression(X, y), sg.sgd(factor * eta_c), steps=20 * d,
                      replicas=8, batch_size=1, seed=SEED, record=("loss",), every=d,
                      on_divergence="record", progress=False)
    last = res["loss"].values[-1]
    print(f"  {factor}× η_c: status {res.status}, final mean loss {np.nanmean(last):.3g}")
from sgdsim.theory import mean_square_lr_threshold

with warnings.catch_warnings():  # small d on purpose: the homogenized error is O(1/d) here
    warnings.simplefilter("ignore")
    for ds in (32, 48):
        Xs, _, _ = gaussian_data(ds, 4 * ds, SEED + ds)
        ms = mean_square_lr_threshold(Xs, 1, rtol=1e-5)
        hom = critical_lr(LeastSquaresSpectrum.from_data(Xs, np.zeros(4 * ds)), 1)
        print(f"d={ds}: homogenized {hom:.4f} vs exact mean-square threshold {ms:.4f} "
              f"(ratio {hom / ms:.3f})")
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 3. A spectral density instead of a data matrix

With Gaussian data the spectrum of $H$ converges to the Marchenko–Pastur law of ratio $r = d/N$;
`LeastSquaresSpectrum.marchenko_pastur` discretizes it (with the expected initial error
$R/d + \sigma^2/(N\lambda)$ per direction and floor $L(\hat w) = \sigma^2(1-r)/2$), so the curve can
be drawn for any size without sampling a matrix. Training and test risk (isotropic population)
for $r = 1/2$ and $r = 2$ (overparameterized: the training loss goes to 0).
""")

code(r"""
fig, ax = plt.subplots(figsize=(6.5, 4))
for r in (0.5, 2.0):
    d = 1000
    mp = LeastSquaresSpectrum.marchenko_pastur(d, int(d / r), signal=1.0, noise_std=0.5)
    curve = HomogenizedSGD(mp, 0.5 * critical_lr(mp, 1), 1).risk(6 * d, every=d // 20)
    ax.plot(curve["step"] / d, curve["loss"], label=f"r = d/N = {r}: training loss")
    ax.axhline(mp.min_loss, color="0.6", lw=0.8, ls=":")
X, y, w_star = gaussian_data(600, 300, SEED)  # r = 2, a data matrix, with its test risk
spec = LeastSquaresSpectrum.from_data(X, y)
model = HomogenizedSGD(spec, 0.5 * critical_lr(spec, 1), 1)
test = model.test_risk(3600, np.eye(600), w_star, 0.25, every=30)
ax.plot(test["step"] / 600, test["test_risk"], "--", label="r = 2 (data matrix): test risk")
ax.set(xlabel="steps / d", ylabel="risk", title="Marchenko–Pastur spectra, lr = 0.5 η_c")
ax.legend()
plt.show()
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 4. Power-law spectra: risk exponents in time

With $\lambda_j = j^{-2\alpha}$ and target coefficients $b_j = j^{-\beta}$ (the linear version of
the model of Paquette, Paquette, Xiao & Pennington 2024), the forcing decays as
$t^{-\rho_F}$, $\rho_F = (2\alpha+2\beta-1)/(2\alpha)$, the kernel as $t^{-\rho_K}$,
$\rho_K = 2 - 1/(2\alpha)$, and the risk as the slower of the two, for $1 \ll \eta t \ll d^{2\alpha}$.

Caveat the code enforces: a power law has intrinsic dimension $\operatorname{tr}H/\lambda_{\max}$
of order one, so the homogenized noise (which drops a rank-one term) is *not* accurate; it warns
(`LowIntrinsicDimensionWarning`). For Gaussian data, `noise="gaussian_streaming"` keeps that term
and is exact for streaming SGD. The simulation uses $N = 100d$ samples (one pass, nearly).
""")

code(r"""
d, n, steps = 200, 20_000, 2000 if QUICK else 9000
alpha = 1.0
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for beta in (0.5, 1.5):
    rng = np.random.default_rng(SEED + int(10 * beta))
    j = np.arange(1, d + 1)
    X = rng.standard_normal((n, d)) * j**-alpha
    y = X @ j**-beta
    spec = LeastSquaresSpectrum.from_data(X, y)
    lr = 0.5 * critical_lr(spec, 1, noise="gaussian_streaming")
    res = sg.simulate(sg.LinearRegression(X, y), sg.sgd(lr), steps=steps, replicas=REPLICAS,
                      batch_size=1, seed=SEED, record=("loss",), every=10, progress=False)
    t = res["loss"]["step"].values.astype(float)
    loss = res["loss"].values
    idx = log_spaced_indices(t, 40)
    fit = fit_power_law(t[idx], loss[idx], window=(100, steps), n_boot=100, seed=SEED)
    pred = power_law_risk_exponent(alpha, beta)
    lo, hi = sorted(-c for c in fit.ci["c"])
    print(f"β={beta}: fitted exponent {-fit.params['c']:.3f} [{lo:.3f}, {hi:.3f}], "
          f"predicted {pred['risk']:.3f} ({'kernel' if pred['phase'] else 'forcing'} phase)")
    theory = HomogenizedSGD(spec, lr, 1, noise="gaussian_streaming").risk(steps)["loss"]
    ax.loglog(t[1:], loss[1:].mean(1), label=f"SGD β={beta}")
    ax.loglog(t[1:], theory[t[1:].astype(int)], "k--", lw=0.8)
ax.plot([], [], "k--", lw=0.8, label="Gaussian-streaming Volterra")
ax.set(xlabel="step", ylabel="training loss", title=f"α = {alpha}, d = {d}")
ax.legend()
plt.show()
print(f"total run time {time.perf_counter() - T_START:.1f} s (QUICK = {QUICK})")
""")


if __name__ == "__main__":
    SOURCE.write(Path(__file__).with_name("06_high_dimensional_sgd.ipynb"))
