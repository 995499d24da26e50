"""Generate ``01_sgd_on_quadratics_and_linear_regression.ipynb`` (outputs cleared).

Run ``python notebooks/_make_01.py`` from the repository root after editing the cells below; the
notebook is the artefact CI executes (``pytest --nbmake``), this script is its source.
"""

from __future__ import annotations

from pathlib import Path

from _nbgen import NotebookSource

SOURCE = NotebookSource()
md, code = SOURCE.md, SOURCE.code


# ------------------------------------------------------------------------------------------------
md(r"""
# 01 — SGD on noisy quadratics and linear regression: simulation vs exact theory

This notebook checks three exact statements about PyTorch-style SGD against ensembles simulated
with `sgdsim.simulate`:

1. **Noisy quadratic, heavy-ball momentum + weight decay.** The ensemble-mean loss follows the
   exact moment recursion at *every* step, and the stationary per-mode variance is the solution
   of a discrete Lyapunov (Stein) equation — larger than the Langevin (SDE) value by the
   $O(\eta)$ factor $1/\bigl(1 - \eta a/(2(1+\beta))\bigr)$.
2. **Linear regression with real minibatch noise** (state-dependent, not Gaussian), batches
   drawn with and without replacement: the exact second-moment recursion predicts the mean
   loss transient and the stationary excess loss; a Gaussian model with the noise frozen at the
   minimum does not.
3. **Stability thresholds** of GD, heavy ball and Nesterov: the final loss jumps from ~0 to
   divergence exactly at the closed-form critical learning rate.

Every comparison ends in an `assert` with a stated tolerance, so CI fails if the numbers
disagree. `SGDSIM_QUICK=1` (the default) picks sizes that run in well under a minute after
Numba's one-off compilation; `SGDSIM_QUICK=0` runs larger ensembles (tighter error bars).
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
from sgdsim.theory import LinRegMoments, NoisyQuadraticMoments, lr_threshold

QUICK = os.environ.get("SGDSIM_QUICK", "1") == "1"
SIZES = {
    # replicas R and steps T of each ensemble
    "quad": {"R": 2000, "T": 2000} if QUICK else {"R": 6000, "T": 2500},
    "linreg": {"R": 2000, "T": 600} if QUICK else {"R": 8000, "T": 1500},
    "sweep": {"T": 1000, "points": 41} if QUICK else {"T": 3000, "points": 81},
}
BACKEND = "numba"  # the first simulate call compiles the kernels (~20-40 s, cached on disk)
T_START = time.perf_counter()
print("QUICK =", QUICK, SIZES)
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 1. Heavy-ball SGD with weight decay on a noisy quadratic

**Problem.** $L(\theta) = \tfrac12 (\theta-\theta^*)^\top H (\theta-\theta^*)$ with a power-law
spectrum $\lambda_i = i^{-p}$, $i = 1..d$ (`sg.power_law_spectrum`), and *label-like* gradient
noise: a minibatch gradient is $\nabla L(\theta) + \xi$ with
$\xi \sim \mathcal N(0, \sigma^2 H / B)$
(`sg.LabelNoise`).

**Optimizer** (`sg.sgd(lr, momentum=β, weight_decay=λ_wd)`, PyTorch convention):

$$
g_k = \nabla L_B(\theta_k) + \lambda_{\rm wd}\,\theta_k,\qquad
b_{k+1} = \beta\, b_k + g_k,\qquad
\theta_{k+1} = \theta_k - \eta\, b_{k+1}
$$

(with $b_1 = g_0$ on the first step). In the eigenbasis of $H$ every mode is independent, with
curvature $a_i = \lambda_i + \lambda_{\rm wd}$ and fixed point
$\theta_{\lambda,i} = \lambda_i\theta^*_i / a_i$. The deviation $x = \theta - \theta_\lambda$
and the buffer form a state $z = (x, b)$ that obeys a **linear** recursion
$z_{k+1} = A_i z_k + p_i \xi_k$, so its mean and covariance evolve exactly:

$$
\mu_{k+1} = A_i \mu_k, \qquad \Sigma_{k+1} = A_i \Sigma_k A_i^\top + c_i\, p_i p_i^\top,\qquad
c_i = \sigma^2\lambda_i / B .
$$

`NoisyQuadraticMoments.transient` iterates this and returns

$$
\mathbb E L(\theta_k) = \tfrac12\sum_i \lambda_i
\bigl[\Sigma_{k,xx} + (\mu_{k,x} + \theta_{\lambda,i} - \theta^*_i)^2\bigr].
$$

Below, an ensemble of $R$ replicas started at $\theta_0 = 0$ is compared with it step by step.
""")

code(r"""
d, p_exp = 40, 2.0
lam = sg.power_law_spectrum(d, p_exp)            # λ_1 = 1 ... λ_d = d^-2
theta_star = np.ones(d)
sigma2, B = 0.005, 1
eta, beta, wd = 1.0, 0.9, 1e-4                    # ηλ_max = 1, well inside the HB limit 2(1+β)
quad = sg.Quadratic.from_eigenvalues(lam, minimum=theta_star, noise=sg.LabelNoise(sigma2))
opt = sg.sgd(eta, momentum=beta, weight_decay=wd)
R, T = SIZES["quad"]["R"], SIZES["quad"]["T"]

t0 = time.perf_counter()
traj = sg.simulate(quad, opt, steps=T, replicas=R, batch_size=B, seed=1,
                   record=("loss",), every=1, backend=BACKEND)
t_sim = time.perf_counter() - t0

theory = NoisyQuadraticMoments.from_problem(quad, opt, batch_size=B)
exact = theory.transient(T, np.zeros(d), every=1)
print(f"simulate: {R} replicas x {T} steps in {t_sim:.1f} s (includes Numba compilation if not cached)")
print(f"stationary E[L]: exact {theory.stationary_loss():.5f}, "
      f"ensemble at step T {traj['loss'].values[-1].mean():.5f}")
""")

md(r"""
**Agreement test.** At each of ~40 log-spaced steps the ensemble mean $\bar L_k$ has standard
error $s_k/\sqrt R$ (replicas are independent; $R \ge 2000$ makes the mean Gaussian by the CLT), so
$z_k = (\bar L_k - \mathbb E L_k)/(s_k/\sqrt R)$ is standard normal under the theory. We require
$\max_k |z_k| < 4.5$: with 40 (positively correlated) steps the Bonferroni false-alarm
probability is below $40 \times 7\cdot 10^{-6} \approx 3\cdot 10^{-4}$.
""")

code(r"""
loss = traj["loss"].values                         # (steps + 1, R)
steps = traj["loss"]["step"].values
mean, se = loss.mean(axis=1), loss.std(axis=1, ddof=1) / np.sqrt(R)
check_at = np.unique(np.geomspace(1, T, 40).astype(int))
z_quad = (mean[check_at] - exact["loss"][check_at]) / se[check_at]
print(f"max |z| over {check_at.size} steps: {np.abs(z_quad).max():.2f}")
assert np.abs(z_quad).max() < 4.5, z_quad
""")

code(r"""
lo, hi = np.quantile(loss, [0.1, 0.9], axis=1)
fig, ax = plt.subplots(figsize=(7, 4.2))
k = steps[1:]
ax.fill_between(k, lo[1:], hi[1:], color="C0", alpha=0.25, label="ensemble 10–90% band")
ax.plot(k, mean[1:], color="C0", lw=2, label=f"ensemble mean (R = {R})")
ax.plot(exact["step"][1:], exact["loss"][1:], "k--", lw=1.2, label="exact moment recursion")
ax.axhline(theory.stationary_loss(), color="C3", ls=":", label="exact stationary loss")
ax.set(xscale="log", yscale="log", xlabel="step k", ylabel=r"$L(\theta_k)$",
       title=rf"heavy ball $\beta={beta}$, $\eta={eta}$, $\lambda_{{wd}}={wd}$, d={d}, $p={p_exp}$")
ax.legend(fontsize=8)
fig.tight_layout()
""")

md(r"""
### Stationary per-mode variance: exact vs Langevin

The stationary covariance solves the Stein equation
$\Sigma = A_i \Sigma A_i^\top + c_i p_i p_i^\top$
(`theory.stationary_mode_variance()`, a batched $4\times4$ solve). For heavy ball, eliminating
the buffer gives the AR(2) process $x_{k+1} = (1+\beta-\eta a)x_k - \beta x_{k-1} - \eta\xi_k$,
whose variance has the closed form

$$
\operatorname{Var}_\infty(x_i)
= \frac{\eta\, c_i\,(1+\beta)}{a_i(1-\beta)\bigl(2(1+\beta) - \eta a_i\bigr)}
= \underbrace{\frac{\eta\, c_i}{2 a_i (1-\beta)}}_{\text{Langevin / SDE}}\;
\frac{1}{1 - \dfrac{\eta a_i}{2(1+\beta)}} .
$$

The first factor is what the continuous-time (Langevin) approximation gives; the second is the
exact discrete-time correction, $1 + O(\eta a)$: it matters for the stiff modes and diverges at
the stability edge $\eta a = 2(1+\beta)$. We check (i) the closed form against the Stein solve
(to rounding), (ii) the ensemble variance of each mode at step $T$ against the exact value.
The replicas are independent Gaussian samples (linear dynamics, Gaussian noise), so the sample
variance has relative standard error $\sqrt{2/(R-1)}$; with 40 modes we require $\max|z| < 4$
(Bonferroni false alarm $40 \times 6\cdot10^{-5} \approx 2.5\cdot10^{-3}$). Modes relax within
~150 steps, so $T$ is deep in the stationary regime ($e^{-T/75}$ residual).
""")

code(r"""
# theory quantities are per eigenmode, in the order of theory.eigenvectors (sharpest first)
a = theory.curvature                               # a_i = λ_i + λ_wd
c = np.diag(theory.noise_eig)                      # c_i = σ² λ_i / B
var_exact = theory.stationary_mode_variance()
var_langevin = eta * c / (2 * a * (1 - beta))
factor = 1.0 / (1.0 - eta * a / (2 * (1 + beta)))
# (i) hand-derived AR(2) closed form vs the Stein solve: agree to rounding (1e-10 relative)
np.testing.assert_allclose(var_langevin * factor, var_exact, rtol=1e-10)

# (ii) ensemble: rotate the final parameters into the theory's eigenbasis, x̃ = Qᵀθ
modes_T = traj.final_params @ theory.eigenvectors  # (R, d), columns ordered like `a`
var_sim = modes_T.var(axis=0, ddof=1)
rel_se = np.sqrt(2.0 / (R - 1))
z_var = (var_sim / var_exact - 1.0) / rel_se
z_lang = (var_sim / var_langevin - 1.0) / rel_se
top = np.argmax(a)                                 # the stiffest mode
print(f"max |z| vs exact: {np.abs(z_var).max():.2f}; "
      f"stiffest mode vs Langevin: z = {z_lang[top]:.1f}")
print(f"stiffest mode: exact/Langevin = {factor[top]:.3f}, "
      f"simulated/Langevin = {var_sim[top] / var_langevin[top]:.3f}")
assert np.abs(z_var).max() < 4.0, z_var
# the Langevin value must be rejected where the correction is large (36% here, ~16 SE at R=2000)
assert z_lang[top] > 6.0, z_lang[top]
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 4.2))
x = eta * a
grid = np.geomspace(x.min(), 2 * (1 + beta) * 0.95, 300)
ax.plot(grid, 1 / (1 - grid / (2 * (1 + beta))), "k-", label=r"exact: $1/(1-\eta a/(2(1+\beta)))$")
ax.axhline(1.0, color="C3", ls=":", label="Langevin (SDE): 1")
ax.errorbar(x, var_sim / var_langevin, yerr=2 * rel_se * var_sim / var_langevin, fmt="o", ms=4,
            color="C0", label=rf"simulated, $\pm 2$ SE (R = {R})")
ax.axvline(2 * (1 + beta), color="0.5", ls="--", lw=0.8)
ax.text(2 * (1 + beta) * 0.97, 1.05, r"$\eta a = 2(1+\beta)$", ha="right", fontsize=8, color="0.4")
ax.set(xscale="log", yscale="log", xlabel=r"$\eta a_i$ (mode stiffness)",
       ylabel=r"Var$(\theta_i)$ / Langevin value", title="stationary per-mode variance")
ax.legend(fontsize=8)
fig.tight_layout()
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 2. Linear regression with real minibatch noise

**Problem.** $L(w) = \frac1{2N}\lVert Xw - y\rVert^2$ on a synthetic data set
(`sg.LinearRegression.synthetic`: $X_{n i} \sim \mathcal N(0,1)$, $y = Xw^* + 0.5\,\varepsilon$).
With $e = w - \hat w$ (least-squares solution, residuals $r = y - X\hat w$) the minibatch gradient
is $g = \frac1B\sum_{n\in b} x_n(x_n^\top e - r_n)$: its noise depends on $e$ — it is
*multiplicative*, not Gaussian. Its conditional covariance is $\frac{\kappa}{B}S(e)$ with

$$
\kappa = 1 \ \text{(with replacement)},\qquad
\kappa = \frac{N-B}{N-1}\ \text{(B distinct samples per step)} .
$$

For plain SGD $e_{k+1} = e_k - \eta g_k$ the second moment $Z = \mathbb E\, e e^\top$ still closes
exactly (`LinRegMoments`):

$$
Z' = (I-\eta H) Z (I-\eta H) + \frac{\eta^2\kappa}{B}\Bigl[F(Z) - 2G(m) + R - H Z H\Bigr],\quad
F(Z) = \frac1N\sum_n (x_n^\top Z x_n)\, x_n x_n^\top ,
$$

with $G(m) = \frac1N \sum_n r_n (x_n^\top m)\, x_n x_n^\top$,
$R = \frac1N\sum_n r_n^2 x_n x_n^\top$,
$m = \mathbb E e$, and the excess loss is exactly $\tfrac12\operatorname{tr}(HZ)$. The fourth-moment
term $F(Z) - HZH \succeq 0$ is what a Gaussian model with noise frozen at the minimum
(covariance $\kappa R/B$) misses: it underestimates the stationary loss.

A small data set ($N = 64$, $B = 16$) makes $\kappa = 48/63$ visibly different from 1.
""")

code(r"""
data = sg.LinearRegression.synthetic(n=64, dim=10, noise_std=0.5, seed=0)
Bl, eta_l = 16, 0.3
Rl, Tl = SIZES["linreg"]["R"], SIZES["linreg"]["T"]
w0 = np.zeros(data.dim)
lin = {}
for label, sampling, replacement in [("with replacement", "with_replacement", True),
                                     ("without replacement", "without_replacement", False)]:
    t0 = time.perf_counter()
    tr = sg.simulate(data, sg.sgd(eta_l), steps=Tl, replicas=Rl, batch_size=Bl, sampling=sampling,
                     seed=2, record=("loss",), backend=BACKEND)
    t_sim = time.perf_counter() - t0
    mom = LinRegMoments(data.X, data.y, lr=eta_l, batch_size=Bl, replacement=replacement)
    frozen = NoisyQuadraticMoments(hessian=mom.H, noise_cov=mom.kappa * mom.residual_noise,
                                   lr=eta_l, batch_size=Bl)
    excess = tr["loss"].values - data.min_loss     # (steps + 1, R)
    tail = excess[Tl // 2:].mean(axis=0)           # per-replica time average of the second half
    lin[label] = dict(
        excess=excess, exact=mom.transient(Tl, w0), kappa=mom.kappa,
        stat_exact=mom.stationary_excess_loss(), stat_frozen=frozen.stationary_loss(),
        stat_sim=tail.mean(), stat_se=tail.std(ddof=1) / np.sqrt(Rl),
    )
    r = lin[label]
    print(f"{label:20s} κ = {r['kappa']:.3f}, simulate {t_sim:.1f} s | stationary excess loss: "
          f"simulated {r['stat_sim']:.5f} ± {r['stat_se']:.1e}, exact {r['stat_exact']:.5f}, "
          f"frozen-noise Gaussian {r['stat_frozen']:.5f}")
""")

md(r"""
**Agreement tests.** (a) Transient: $z_k$ of the ensemble-mean excess loss at ~40 log-spaced
steps, $\max|z| < 4.5$ (as in part 1). (b) Stationary: each replica's time average over the
second half (the loss relaxes in ~20 steps, so $T/2$ is stationary) is one independent sample;
its mean must match $\tfrac12\operatorname{tr}(HZ_\infty)$ within 4 SE. (c) The frozen-noise
Gaussian prediction must be rejected (> 6 SE), and the two sampling schemes must differ (> 6 SE).
""")

code(r"""
check_l = np.unique(np.geomspace(1, Tl, 40).astype(int))
for label, r in lin.items():
    m, s = r["excess"].mean(axis=1), r["excess"].std(axis=1, ddof=1) / np.sqrt(Rl)
    z = (m[check_l] - r["exact"]["excess_loss"][check_l]) / s[check_l]
    z_stat = (r["stat_sim"] - r["stat_exact"]) / r["stat_se"]
    z_frozen = (r["stat_sim"] - r["stat_frozen"]) / r["stat_se"]
    print(f"{label:20s} transient max|z| = {np.abs(z).max():.2f}, stationary z = {z_stat:.2f}, "
          f"vs frozen-noise Gaussian z = {z_frozen:.1f}")
    assert np.abs(z).max() < 4.5, z
    assert abs(z_stat) < 4.0, z_stat
    assert z_frozen > 6.0, z_frozen
rw, rwo = lin["with replacement"], lin["without replacement"]
z_diff = (rw["stat_sim"] - rwo["stat_sim"]) / np.hypot(rw["stat_se"], rwo["stat_se"])
ratio_exact, ratio_sim = rw["stat_exact"] / rwo["stat_exact"], rw["stat_sim"] / rwo["stat_sim"]
print(f"with vs without replacement: z = {z_diff:.1f} "
      f"(exact ratio {ratio_exact:.3f}, simulated {ratio_sim:.3f})")
assert z_diff > 6.0, z_diff
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 4.2))
kl = np.arange(1, Tl + 1)
for color, (label, r) in zip(("C0", "C2"), lin.items()):
    lo, hi = np.quantile(r["excess"][1:], [0.1, 0.9], axis=1)
    ax.fill_between(kl, lo, hi, color=color, alpha=0.15)
    ax.plot(kl, r["excess"][1:].mean(axis=1), color=color, lw=2,
            label=rf"{label} ($\kappa$ = {r['kappa']:.2f}): ensemble mean, 10–90% band")
    ax.plot(kl, r["exact"]["excess_loss"][1:], "k--", lw=1)
    ax.axhline(r["stat_exact"], color=color, ls=":", lw=1)
    ax.axhline(r["stat_frozen"], color=color, ls="-.", lw=1)
ax.plot([], [], "k--", label="exact moment recursion")
ax.plot([], [], "k:", label=r"exact stationary $\frac{1}{2}$tr$(HZ_\infty)$")
ax.plot([], [], "k-.", label="Gaussian noise frozen at the minimum")
ax.set(xscale="log", yscale="log", xlabel="step k", ylabel=r"$L(w_k) - L(\hat w)$",
       title=rf"linear regression N={data.n_samples}, d={data.dim}, B={Bl}, $\eta$={eta_l}")
ax.legend(fontsize=7)
fig.tight_layout()
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 3. Stability thresholds

On a mode of curvature $a$ the noiseless iteration is $z_{k+1} = A z_k$; it converges iff the
spectral radius of $A$ is below 1. The Jury conditions on $z^2 - \operatorname{tr}(A)z + \det A$
give the critical $\eta a$ (`sgdsim.theory.threshold`, `lr_threshold(a, method, β)`):

| method | update ($g = a\theta$) | unstable iff |
|---|---|---|
| GD | $\theta' = \theta - \eta g$ | $\eta a > 2$ |
| heavy ball | $b' = \beta b + g,\ \theta' = \theta - \eta b'$ | $\eta a > 2(1+\beta)$ |
| Nesterov | same $b'$, $\theta' = \theta - \eta(g+\beta b')$ | $\eta a > \tfrac{2+2\beta}{1+2\beta}$ |

The stiffest mode ($a = \lambda_{\max}$) sets the limit for the whole quadratic. We sweep
$\eta/\eta^*$ from 0.9 to 1.1 on a noiseless 10-mode quadratic ($\lambda_i = 1/i$, start at
distance $\lVert\theta^*\rVert = \sqrt{10}$) and record the final loss; with
`on_divergence="record"` a diverged run (‖θ‖² above $10^{20}\times$ its scale) is frozen and
flagged instead of raising. Below threshold the slowest contraction of the top mode is at most
$\max(|1 - \eta a|, \sqrt\beta)$ per step, so by $\eta \le 0.98\,\eta^*$ the loss has fallen by
many orders of magnitude; above $1.02\,\eta^*$ it grows geometrically until flagged.
""")

code(r"""
lam_s = sg.power_law_spectrum(10, 1.0)
quad_s = sg.Quadratic.from_eigenvalues(lam_s, minimum=np.ones(10))
Ts, ratios = SIZES["sweep"]["T"], np.linspace(0.9, 1.1, SIZES["sweep"]["points"])
L0 = float(quad_s.loss(np.zeros(10)))
methods = {"GD": ("gd", {}), "heavy ball β=0.9": ("heavy_ball", {"momentum": 0.9}),
           "Nesterov β=0.9": ("nesterov", {"momentum": 0.9, "nesterov": True})}
sweep = {}
for name, (method, kw) in methods.items():
    eta_star = lr_threshold(lam_s.max(), method, kw.get("momentum", 0.0))
    final, diverged = [], []
    for ratio in ratios:
        run = sg.simulate(quad_s, sg.sgd(ratio * eta_star, **kw), steps=Ts, replicas=1,
                          record=("loss",), every=Ts, on_divergence="record", backend=BACKEND)
        final.append(float(run["loss"].values[-1, 0]))
        diverged.append(run.status == "diverged")
    sweep[name] = dict(eta_star=eta_star, final=np.array(final), diverged=np.array(diverged))
    first = ratios[np.argmax(diverged)]
    print(f"{name:18s} η* = {eta_star:.4f}; diverged for η/η* ≥ {first:.3f}")

for name, s in sweep.items():
    below, above = ratios <= 0.98, ratios >= 1.02
    # converged: loss down > 10 decades (top-mode contraction ≤ 0.98^T ≈ 2e-9 at T=1000)
    assert np.all(s["final"][below] < 1e-10 * L0) and not s["diverged"][below].any(), name
    # diverged: growth ≥ 1.02^T per step on the top mode, past the 1e20 threshold within T steps
    assert s["diverged"][above].all(), name
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 4.2))
ceiling, floor = 1e24, 1e-33
for i, (color, (name, s)) in enumerate(zip(("C0", "C1", "C2"), sweep.items())):
    y = np.clip(np.where(s["diverged"], np.nan, s["final"]), floor, None)
    ax.plot(ratios, y, "o-", ms=3, color=color, label=rf"{name} ($\eta^*$ = {s['eta_star']:.3f})")
    # diverged runs (NaN loss after the flag): crosses above the plot's data, one row per method
    ax.plot(ratios[s["diverged"]], np.full(s["diverged"].sum(), ceiling * 1e3**i), "x", color=color)
ax.axvline(1.0, color="k", ls="--", lw=1, label=r"theory: $\eta = \eta^*$ (lr_threshold)")
ax.axhline(L0, color="0.6", lw=0.8, ls=":", label="initial loss")
ax.text(0.9, ceiling * 1e3, "× = diverged (flagged by on_divergence='record')", fontsize=8)
ax.set(yscale="log", ylim=(floor / 10, ceiling * 1e9), xlabel=r"$\eta / \eta^*$",
       ylabel=rf"final loss after {Ts} steps", title="stability edge, noiseless quadratic")
ax.legend(fontsize=8, loc="center left")
fig.tight_layout()
""")

md(r"""
## 4. Starting in the stationary state: parameters *and* momentum buffer

With momentum the stationary law is a joint Gaussian of $(\theta, b)$: the Stein equation above,
solved for the stacked state (`theory.stationary_state_cov()`, shape $(2d, 2d)$). Drawing
$\theta_0$ from its marginal alone is not enough: an empty buffer makes PyTorch's first step
$b_1 = g_0$, which kicks the ensemble out of stationarity. `simulate(..., init_buffer=b0)` starts
the buffer too, and then the mean squared displacement has the exact stationary form
$\mathbb E\lVert\theta_k-\theta_0\rVert^2 = \sum_i 2\,[Z_{ii} - A_i^k Z_{ii}]_{\theta\theta}$
(`theory.msd`). The test: $|z| < 4.5$ at 25 log-spaced steps (as in part 1), for the joint start
only.
""")

code(r"""
S_joint = theory.stationary_state_cov()            # (2d, 2d): Cov of (θ − θ_λ, b)
rng = np.random.default_rng(7)
z0 = rng.multivariate_normal(np.zeros(2 * d), S_joint, size=R, method="cholesky")
theta0, buf0 = theory.theta_reg + z0[:, :d], z0[:, d:]
Tm = 400
ks = np.unique(np.geomspace(1, Tm, 25).astype(int))
msd_exact = theory.msd(ks)
runs = {}
for label, b0 in (("θ and buffer stationary", buf0), ("θ stationary, empty buffer", None)):
    tr = sg.simulate(quad, opt, steps=Tm, replicas=R, batch_size=B, seed=3, init=theta0,
                     init_buffer=b0, record=("dist2",), backend=BACKEND)
    d2 = tr["dist2"].values[ks]                       # (k, R)
    runs[label] = (d2.mean(axis=1), d2.std(axis=1, ddof=1) / np.sqrt(R))
m_joint, s_joint = runs["θ and buffer stationary"]
z_joint = (m_joint - msd_exact) / s_joint
m_half, s_half = runs["θ stationary, empty buffer"]
z_half = (m_half - msd_exact) / s_half
print(f"joint start: max |z| = {np.abs(z_joint).max():.2f}; empty buffer: |z| at k=1 = {abs(z_half[0]):.0f}")
assert np.abs(z_joint).max() < 4.5, z_joint
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 4.2))
for (label, (m, s)), color in zip(runs.items(), ("C0", "C1")):
    ax.errorbar(ks, m, yerr=2 * s, fmt="o", ms=3, color=color, label=f"{label} (±2 s.e.)")
ax.plot(ks, msd_exact, "k--", lw=1.2, label="exact stationary-start MSD (theory.msd)")
ax.set(xscale="log", yscale="log", xlabel="step k", ylabel=r"$E\|\theta_k-\theta_0\|^2$",
       title="MSD from a stationary start: the buffer matters")
ax.legend(fontsize=8)
fig.tight_layout()
""")

md(r"""
## Summary

* Part 1: the ensemble-mean loss of heavy-ball SGD with weight decay tracks the exact moment
  recursion at every step, and the stationary per-mode variance matches the Stein solution; the
  Langevin value is off by the factor $1/(1-\eta a/(2(1+\beta)))$ on stiff modes.
* Part 2: with real, state-dependent minibatch noise the exact recursion (including the
  fourth-moment term $F(Z)$ and the without-replacement factor $\kappa$) predicts the transient and
  the stationary excess loss; a Gaussian model with noise frozen at the minimum underestimates it.
* Part 3: the closed-form critical learning rates of GD, heavy ball and Nesterov are exactly where
  the final loss jumps from numerical zero to divergence.
* Part 4: a run started from the joint stationary law of parameters and momentum buffer
  (`init_buffer`) has the exact stationary-start MSD from the first step; with an empty buffer
  the first step breaks stationarity.
""")

code(r"""
print(f"total run time {time.perf_counter() - T_START:.1f} s (QUICK = {QUICK})")
""")


if __name__ == "__main__":
    SOURCE.write(Path(__file__).with_name("01_sgd_on_quadratics_and_linear_regression.ipynb"))
