"""Generate ``03_ultraslow_vs_anomalous_diffusion.ipynb`` (outputs cleared).

Run ``python notebooks/_make_03.py`` from the repository root after editing the cells below; the
notebook is the artefact CI executes (``pytest --nbmake``), this script is its source.
"""

from __future__ import annotations

from pathlib import Path

from _nbgen import NotebookSource

SOURCE = NotebookSource()
md, code = SOURCE.md, SOURCE.code


# ------------------------------------------------------------------------------------------------
md(r"""
# 03 — Ultra-slow vs anomalous diffusion, side by side, with the fits and their uncertainty

Two mechanisms have been proposed for the slow growth of $\langle\lVert\theta_t-\theta_0\rVert^2\rangle$
seen when training networks with SGD:

* **Ultra-slow diffusion** (Hoffer et al. 2017): a random walk on a *random* (Brownian, Sinai)
  potential is trapped behind ever higher barriers, $\langle x^2\rangle \propto (\log t)^4$.
* **Anomalous diffusion** (Kunin et al. 2021): SGD at stationarity on a quadratic whose spectrum
  is a power law $\lambda_i = i^{-p}$, with gradient noise $\propto H$, saturates the stiff modes
  one after the other, $\mathbb E\lVert\theta_k-\theta_0\rVert^2 \propto k^{1/p}$.

With $p = 2$ both give a naive log-log slope near $0.5$ over the same few decades, so **a single
fitted exponent cannot tell them apart**. This notebook simulates both with `sgdsim`, fits both
laws with replica-bootstrap confidence intervals (`sgdsim.analysis`), lets an information
criterion plus a bootstrap win rate decide (`compare_laws`), and shows the diagnostic that
separates them at a glance: the local exponent over sliding one-decade windows drifts down for
Sinai and stays nearly flat for the power-law spectrum. A short `sgdsim.sweep` section closes
with the anomalous exponent over a small grid of $p$ and learning rate.

Every claim ends in an `assert` with a stated tolerance. `SGDSIM_QUICK=1` (the default) picks
sizes that run in well under a minute after Numba's one-off compilation; `SGDSIM_QUICK=0` runs
larger ensembles and longer walks.
""")

code(r"""
import os
import time

from sgdsim.plotting import use_style

# the project's figure style; in Jupyter figures show inline (also under MPLBACKEND=agg),
# headless runs outside Jupyter render off-screen
use_style()
import matplotlib.pyplot as plt
import numpy as np

import sgdsim as sg
from sgdsim.analysis import (
    Law,
    compare_laws,
    ensemble_msd,
    fit_power_law,
    plot_loglog,
    plot_vs_loglog,
)
from sgdsim.lattice import brownian_potential, lattice_walk
from sgdsim.sweep.plots import heatmap, lines

QUICK = os.environ.get("SGDSIM_QUICK", "1") == "1"
SIZES = {
    # Sinai walk: walkers (one potential each) and steps; anomalous SGD: replicas
    "sinai": {"W": 1000, "T": 100_000} if QUICK else {"W": 2000, "T": 1_000_000},
    "anomalous": {"R": 200} if QUICK else {"R": 1000},
    "sweep": {"R": 100} if QUICK else {"R": 400},
}
N_BOOT = 200 if QUICK else 1000   # bootstrap resamples of the replicas, for every CI below
T_START = time.perf_counter()
print("QUICK =", QUICK, SIZES)
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 1. Ultra-slow diffusion: Sinai's walk on a Brownian potential

**Model** (`sgdsim.lattice`). A 1-D chain whose site energies form a random walk,
$V(x+1)-V(x) \sim \mathcal N(0,\sigma^2)$ iid (`brownian_potential`, one independent potential per
walker, so averages are over the disorder too). A walker at temperature $T$ proposes a hop to a
random neighbour and accepts it with the Metropolis probability $\min(1, e^{-\Delta V/T})$
(`lattice_walk`). To travel a distance $x$ it must cross barriers of height $\sim\sigma\sqrt{x}$,
which takes a time $t \sim e^{\sigma\sqrt x/T}$ (Arrhenius), hence $x \sim (T\log t/\sigma)^2$ and
Sinai's law

$$
\langle x_t^2\rangle \propto (\log t)^4 \qquad (t\to\infty).
$$

$T = \sigma/2$ makes the regime set in after a few sites. The box (6001 sites) is far wider than
the $\sim (T\log t/\sigma)^2 \approx 50$ sites the walkers reach, so its reflecting walls play no
role (checked below).
""")

code(r"""
W, T_walk = SIZES["sinai"]["W"], SIZES["sinai"]["T"]
t0 = time.perf_counter()
V = brownian_potential(6001, n_potentials=W, sigma=1.0, seed=0)
walk = lattice_walk(V, T_walk, walkers=W, temperature=0.5, n_records=50, seed=0)
sinai = ensemble_msd(walk.to_dataarray(), n_boot=N_BOOT, seed=0)
print(f"{W} walkers x {T_walk} steps in {time.perf_counter() - t0:.1f} s; "
      f"walkers that touched the box edge: {int(walk.hit_boundary.sum())}")
assert int(walk.hit_boundary.sum()) == 0  # a wall would bias ⟨x²⟩; none may touch it
""")

md(r"""
**Fits.** Both candidate laws are fitted by least squares on $\log\langle x^2\rangle$ over the window
$t \in [10^2, T]$ (three decades or more: telling a log law from a power law needs that much).
Power: $\langle x^2\rangle = a\,t^c$; log: $\langle x^2\rangle = a(\log t)^\gamma$. The 95%
intervals come from resampling the *walkers* (the independent units) with replacement and
refitting. `compare_laws` declares a law only if its AIC beats the other by $\ge 10$ **and** it
wins in $\ge 95\%$ of the bootstrap resamples; otherwise it says "undecided".

**Assertions.** (a) The log law is declared. (b) $\gamma$ is within $0.6$ of Sinai's $4$: at
$t \le 10^6$ the $O(1/\log t)$ corrections to the asymptotic law bias the fitted $\gamma$ low by
$\approx 0.2$–$0.3$ at this temperature (paper_checks `hoffer.sinai_ultraslow`), and the bootstrap
95% half-width is $\approx 0.2$ with 1000 walkers.
""")

code(r"""
win_sinai = (100.0, float(T_walk))
cmp_sinai = compare_laws(sinai, window=win_sinai, laws=("power", "log"), n_boot=N_BOOT, seed=0)
pow_s, log_s = cmp_sinai.fits["power"], cmp_sinai.fits["log"]
print("Sinai walk:", cmp_sinai.reason)
print(f"  log law  : gamma = {log_s.params['gamma']:.2f}  "
      f"(95% CI {log_s.ci['gamma'][0]:.2f}-{log_s.ci['gamma'][1]:.2f}), AIC {log_s.aic:.1f}")
print(f"  power law: c     = {pow_s.params['c']:.3f} "
      f"(95% CI {pow_s.ci['c'][0]:.3f}-{pow_s.ci['c'][1]:.3f}), AIC {pow_s.aic:.1f}")
assert cmp_sinai.outcome == Law.LOG, cmp_sinai.reason
assert abs(log_s.params["gamma"] - 4.0) < 0.6, log_s.params  # finite-t bias + CI (see above)
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 2. Anomalous diffusion: SGD at stationarity on a power-law spectrum

**Model.** $L(\theta) = \tfrac12\theta^\top H\theta$ with $H = \operatorname{diag}(\lambda_i)$,
$\lambda_i = i^{-p}$, $i = 1..d$ (`sg.power_law_spectrum`), and label-noise-like gradient noise
$\xi \sim \mathcal N(0, \sigma^2 H/B)$ (`sg.LabelNoise`), so each mode follows
$\theta_{i,k+1} = (1-\eta\lambda_i)\theta_{i,k} - \eta\xi_{i,k}$ with noise variance
$c_i = \sigma^2\lambda_i/B$.

**Exact MSD from stationarity.** The stationary variance solves
$\mathrm{Var}_i = (1-\eta\lambda_i)^2\mathrm{Var}_i + \eta^2 c_i$, i.e.
$\mathrm{Var}_i = \eta c_i / \bigl(\lambda_i(2-\eta\lambda_i)\bigr)$ — for $c_i\propto\lambda_i$ the
same $\approx \eta\sigma^2/(2B)$ for every mode. Starting from $\theta_0$ drawn from that
stationary law (the `init` callable below), $\theta_k = (1-\eta\lambda_i)^k\theta_0 +$ noise
independent of $\theta_0$, so

$$
\mathbb E\lVert\theta_k-\theta_0\rVert^2 = \sum_i 2\,\mathrm{Var}_i\bigl(1-(1-\eta\lambda_i)^k\bigr).
$$

Mode $i$ has saturated once $\eta\lambda_i k \gtrsim 1$, i.e. for $i \lesssim (\eta k)^{1/p}$; as each
contributes the same $2\,\mathrm{Var}$, the MSD grows like the number of saturated modes,
$\propto k^{1/p}$, in the window $1/(\eta\lambda_1) \ll k \ll 1/(\eta\lambda_d)$ (a decade inside
each end below: $k\in[20, 2000]$ for $\eta = 0.5$, $d = 100$, $p = 2$).
""")

code(r"""
def exact_msd(k, lam, c, eta):
    # E‖θ_k − θ_0‖² from the stationary state of SGD (β = 0), the formula above
    var = eta * c / (lam * (2.0 - eta * lam))
    k = np.asarray(k, dtype=np.float64)[:, None]
    return np.sum(2.0 * var * -np.expm1(k * np.log1p(-eta * lam)), axis=1)


def stationary_init(lam, c, eta):
    # θ_0 ~ N(0, diag Var_i): the exact stationary law, so no burn-in is needed
    std = np.sqrt(eta * c / (lam * (2.0 - eta * lam)))
    return lambda rng, replicas: rng.standard_normal((replicas, lam.size)) * std


def anomalous_window(lam, eta):
    # a decade inside 1/(ηλ_1) ≪ k ≪ 1/(ηλ_d)
    return 10.0 / (eta * lam.max()), 0.1 / (eta * lam.min())


d, p_exp, eta, sigma2, B = 100, 2.0, 0.5, 0.01, 1
R = SIZES["anomalous"]["R"]
lam = sg.power_law_spectrum(d, p_exp)
c_noise = sigma2 * lam / B
quad = sg.Quadratic.from_eigenvalues(lam, noise=sg.LabelNoise(sigma2))
win_anom = anomalous_window(lam, eta)
steps = int(np.ceil(win_anom[1]))
t0 = time.perf_counter()
traj = sg.simulate(quad, sg.sgd(eta), steps=steps, replicas=R, batch_size=B, seed=1,
                   init=stationary_init(lam, c_noise, eta), record=("dist2",), progress=False)
anom = ensemble_msd(traj["dist2"], n_points=60, n_boot=N_BOOT, seed=0)
print(f"{R} replicas x {steps} steps in {time.perf_counter() - t0:.1f} s "
      f"(includes Numba compilation if not cached); fit window k in {win_anom}")
""")

md(r"""
**Simulation vs exact formula, pointwise.** At each of the ~60 recorded steps the replica mean
of $\lVert\theta_k-\theta_0\rVert^2$ has standard error $s_k/\sqrt R$ (replicas independent; each is
a sum over 100 modes, so the mean is close to Gaussian), and $z_k = (\bar D_k - \mathbb E D_k)/(s_k/\sqrt R)$
is standard normal under the formula. We require $\max_k|z_k| < 4.5$ (Bonferroni false-alarm
probability $< 60\times 7\cdot10^{-6} \approx 4\cdot10^{-4}$). This also checks that the
simulator's label noise has covariance $\sigma^2 H/B$ and that the start is stationary.
""")

code(r"""
msd_exact = exact_msd(anom.times, lam, c_noise, eta)
se = anom.samples.std(axis=1, ddof=1) / np.sqrt(R)
z_anom = (anom.msd - msd_exact) / se
print(f"max |z| over {anom.times.size} record steps: {np.abs(z_anom).max():.2f}")
assert np.abs(z_anom).max() < 4.5, z_anom
""")

md(r"""
**Fits.** Same procedure as for Sinai, on the anomalous window. **Assertions.** (a) The power law
is declared. (b) The fitted exponent is within $0.1$ of $1/p$: the finite window bends the exact
curve's slope by a few hundredths (the exact formula fitted on the same record steps is printed:
$\approx 0.47$ for $p = 2$), and the bootstrap 95% half-width is $\approx 0.01$–$0.02$. (c) The
sharper test: the simulated exponent is within $0.05$ of the exact formula's exponent on the same
window, i.e. $\gtrsim 5$ bootstrap standard errors (half-width/1.96) at $R = 200$.
""")

code(r"""
cmp_anom = compare_laws(anom, window=win_anom, laws=("power", "log"), n_boot=N_BOOT, seed=0)
pow_a, log_a = cmp_anom.fits["power"], cmp_anom.fits["log"]
in_win = (anom.times >= win_anom[0]) & (anom.times <= win_anom[1])
c_exact_win = fit_power_law(anom.times[in_win], msd_exact[in_win]).params["c"]
print("power-law spectrum:", cmp_anom.reason)
print(f"  power law: c     = {pow_a.params['c']:.3f} "
      f"(95% CI {pow_a.ci['c'][0]:.3f}-{pow_a.ci['c'][1]:.3f}); 1/p = {1 / p_exp:.3f}, "
      f"exact formula on the same window {c_exact_win:.3f}")
print(f"  log law  : gamma = {log_a.params['gamma']:.2f} "
      f"(95% CI {log_a.ci['gamma'][0]:.2f}-{log_a.ci['gamma'][1]:.2f})")
assert cmp_anom.outcome == Law.POWER, cmp_anom.reason
assert abs(pow_a.params["c"] - 1.0 / p_exp) < 0.1, pow_a.params      # window bias + CI
assert abs(pow_a.params["c"] - c_exact_win) < 0.05, (pow_a.params, c_exact_win)  # ≳ 5 SE
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 3. Side by side

Top row: log-log axes, where a power law is a straight line. Bottom row: $\langle x^2\rangle$
against $\log t$ on log-log axes (`plot_vs_loglog`), where a log law $a(\log t)^\gamma$ is a
straight line. Shaded bands are the 95% bootstrap intervals of the ensemble mean; the fitted laws
are drawn over their windows. The Sinai curve is straight only in the bottom panel, the
power-law-spectrum curve only in the top one — although their naive power-law exponents are
nearly equal (table below).
""")

code(r"""
fig, axes = plt.subplots(2, 2, figsize=(10, 7))
plot_loglog(sinai, fits=[pow_s], ax=axes[0, 0], label="Sinai walk")
plot_loglog(anom, fits=[pow_a], ax=axes[0, 1], label=rf"SGD, $\lambda_i=i^{{-{p_exp:g}}}$")
axes[0, 1].plot(anom.times, msd_exact, "k--", lw=0.8, label="exact formula")
axes[0, 1].legend(fontsize=7)
plot_vs_loglog(sinai, fits=[log_s], ax=axes[1, 0], label="Sinai walk")
plot_vs_loglog(anom, fits=[log_a], ax=axes[1, 1], label=rf"SGD, $\lambda_i=i^{{-{p_exp:g}}}$")
axes[0, 0].set_title(f"ultra-slow: {cmp_sinai.outcome.value} law declared")
axes[0, 1].set_title(f"anomalous: {cmp_anom.outcome.value} law declared")
axes[0, 0].set_ylabel(r"$\langle x_t^2\rangle$")
axes[1, 0].set_ylabel(r"$\langle x_t^2\rangle$")
fig.tight_layout()

rows = [("Sinai walk", cmp_sinai), (f"SGD, p={p_exp:g}", cmp_anom)]
print(f"{'':14s} {'power c (95% CI)':>24s} {'log gamma (95% CI)':>24s} "
      f"{'dAIC power':>11s} {'dAIC log':>9s}  declared")
for name, cmp in rows:
    fp, fl = cmp.fits["power"], cmp.fits["log"]
    print(f"{name:14s} {fp.params['c']:7.3f} ({fp.ci['c'][0]:.3f}-{fp.ci['c'][1]:.3f})"
          f"   {fl.params['gamma']:7.2f} ({fl.ci['gamma'][0]:.2f}-{fl.ci['gamma'][1]:.2f})"
          f"   {cmp.delta['power']:9.1f} {cmp.delta['log']:9.1f}  {cmp.outcome.value}")
""")

md(r"""
### The local exponent: drifting vs flat

A cleaner diagnostic than any single fit: fit $a\,t^c$ on sliding one-decade windows
$[t, 10t]$, each with its bootstrap 95% interval. For a log law the local slope is
$d\log\langle x^2\rangle/d\log t = \gamma/\log t$, which keeps falling (Sinai's asymptote
$4/\log t$ is drawn); for anomalous diffusion it is nearly flat at $\approx 1/p$ inside the
window (it slips by a few hundredths over two decades, exactly as the exact formula's local
exponent, drawn dashed, does: the finite spectrum $i \le d$ starts to matter at late times).

**Assertions.** For Sinai, the interval of the latest window lies entirely below that of the
window starting at $t = 100$ (non-overlapping 95% intervals: a conservative test of the drift).
For SGD, every local exponent agrees with the exact formula's within $0.08$ (a one-decade fit
from $R = 200$ replicas has a bootstrap half-width up to $\approx 0.04$; $0.08 \approx 4$ SE).
""")

code(r"""
def local_exponents(curve, starts, msd_ref=None):
    out = []
    for t in starts:
        f = fit_power_law(curve, window=(t, 10 * t), n_boot=N_BOOT, seed=0)
        row = [t * np.sqrt(10), f.params["c"], *f.ci["c"]]
        if msd_ref is not None:
            m = (curve.times >= t) & (curve.times <= 10 * t)
            row.append(fit_power_law(curve.times[m], msd_ref[m]).params["c"])
        out.append(row)
    return np.array(out)


loc_s = local_exponents(sinai, 10.0 ** np.arange(1.0, np.log10(T_walk) - 0.99, 0.5))  # half-decade
loc_a = local_exponents(anom, np.geomspace(win_anom[0], win_anom[1] / 10, 5), msd_exact)

fig, ax = plt.subplots(figsize=(7, 4.2))
for loc, color, name in [(loc_s, "C0", "Sinai walk"), (loc_a, "C1", rf"SGD, $p={p_exp:g}$")]:
    ax.errorbar(loc[:, 0], loc[:, 1], yerr=[loc[:, 1] - loc[:, 2], loc[:, 3] - loc[:, 1]],
                fmt="o", color=color, capsize=2, label=f"{name}: local exponent, 95% CI")
tt = np.geomspace(30, T_walk, 100)
ax.plot(tt, 4 / np.log(tt), "C0:", label=r"Sinai asymptote $4/\log t$")
ax.plot(loc_a[:, 0], loc_a[:, 4], "C1--", label="exact formula, same windows")
ax.axhline(1 / p_exp, color="C1", lw=0.8, ls=":", label=r"$1/p$")
ax.set(xscale="log", xlabel="window centre t (steps)", ylabel="fitted exponent c on [t, 10t]",
       title="local power-law exponent")
ax.legend(fontsize=8)
fig.tight_layout()

first = int(np.argmin(np.abs(loc_s[:, 0] / np.sqrt(10) - 100.0)))  # the window starting at 100
print(f"Sinai local exponent: {loc_s[first, 1]:.3f} at t~{loc_s[first, 0]:.0f} -> "
      f"{loc_s[-1, 1]:.3f} at t~{loc_s[-1, 0]:.0f}")
print(f"SGD local exponents {np.round(loc_a[:, 1], 3)}, exact {np.round(loc_a[:, 4], 3)}")
assert loc_s[-1, 3] < loc_s[first, 2], loc_s          # CIs disjoint: the exponent drifts down
assert np.abs(loc_a[:, 1] - loc_a[:, 4]).max() < 0.08, loc_a   # ≈ 4 SE of a one-decade fit
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 4. A small sweep: the anomalous exponent over $p$ and learning rate

`sg.sweep(fn, Grid(...))` evaluates `fn` at every grid point and returns an `xarray.Dataset` with
one dimension per swept parameter (here run serially, in memory). Each point simulates the
power-law quadratic from its stationary state and returns the fitted exponent, its bootstrap
interval, and the exact formula's exponent on the same window. $d$ is chosen per $p$ so that the
window $[10/(\eta\lambda_1), 0.1/(\eta\lambda_d)]$ spans two decades ($d^p = 10^4$). The learning
rate only shifts the window ($k \propto 1/\eta$), so the exponent should depend on $p$ alone.

**Assertions.** At every point and seed: within $0.1$ of $1/p$ (window bias up to $\approx 0.07$
at $p = 1.5$, see the exact column, plus the CI), and within $0.05$ of the exact formula's
exponent ($\approx 3$–$5$ bootstrap SE at $R = 100$).
""")

code(r"""
def sweep_point(p, lr, seed):
    d_p = round(1e4 ** (1.0 / p))
    lam_p = sg.power_law_spectrum(d_p, p)
    c_p = sigma2 * lam_p / B
    lo, hi = anomalous_window(lam_p, lr)
    problem = sg.Quadratic.from_eigenvalues(lam_p, noise=sg.LabelNoise(sigma2))
    tr = sg.simulate(problem, sg.sgd(lr), steps=int(np.ceil(hi)), replicas=SIZES["sweep"]["R"],
                     batch_size=B, seed=seed, init=stationary_init(lam_p, c_p, lr),
                     record=("dist2",), progress=False)
    curve = ensemble_msd(tr["dist2"], n_points=60, n_boot=0)
    fit = fit_power_law(curve, window=(lo, hi), n_boot=N_BOOT, seed=seed)
    k = curve.times[(curve.times >= lo) & (curve.times <= hi)]
    c_ex = fit_power_law(k, exact_msd(k, lam_p, c_p, lr)).params["c"]
    return {"c": fit.params["c"], "c_lo": fit.ci["c"][0], "c_hi": fit.ci["c"][1],
            "c_exact": c_ex}


t0 = time.perf_counter()
grid = sg.sweep.Grid(sg.sweep.product(p=[1.5, 2.0], lr=[0.25, 0.5]), seeds=2)
ds = sg.sweep(sweep_point, grid, executor="serial", progress=False)
print(f"sweep of {ds.attrs['sweep_n_points']} points in {time.perf_counter() - t0:.1f} s")
print(ds[["c", "c_exact"]].to_dataframe().round(3))
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
heatmap(ds, "c", x="lr", y="p", ax=axes[0])
axes[0].set_title("fitted exponent c (mean over 2 seeds)")
lines(ds, "c", x="p", hue="lr", ax=axes[1])
pp = np.array([1.5, 2.0])
axes[1].plot(pp, 1 / pp, "k:", label="1/p")
axes[1].plot(pp, ds["c_exact"].isel(lr=1, seed=0), "k--", lw=0.8,
             label=f"exact formula (lr={float(ds.lr[1]):g})")
axes[1].legend(fontsize=8)
axes[1].set_title("c vs p (band: 95% Student-t over 2 seeds: wide)")
fig.tight_layout()

c = ds["c"].values                                     # (p, lr, seed)
inv_p = 1.0 / ds["p"].values[:, None, None]
assert not ds["failed"].any()
assert np.abs(c - inv_p).max() < 0.1, c - inv_p              # window bias + CI
assert np.abs(c - ds["c_exact"].values).max() < 0.05, c - ds["c_exact"].values   # ≈ 3-5 SE
""")

md(r"""
## Summary

* Over three decades the Sinai walk's MSD is declared a **log law**
  ($\gamma$ close to Sinai's 4, biased low by finite-time corrections), while SGD at stationarity
  on a $p = 2$ power-law spectrum is declared a **power law** with exponent $\approx 1/p$ — even
  though a naive log-log fit gives both an exponent near 0.5.
* The simulated anomalous MSD matches the exact stationary formula
  $\sum_i 2\mathrm{Var}_i(1-(1-\eta\lambda_i)^k)$ at every recorded step.
* The local exponent on sliding windows drifts down as $\approx 4/\log t$ for Sinai and stays
  nearly flat for the power-law spectrum: the most direct way to tell the two mechanisms apart.
* The sweep shows the anomalous exponent depends on $p$, not on the learning rate.
""")

code(r"""
print(f"total run time {time.perf_counter() - T_START:.1f} s (QUICK = {QUICK})")
""")


if __name__ == "__main__":
    SOURCE.write(Path(__file__).with_name("03_ultraslow_vs_anomalous_diffusion.ipynb"))
