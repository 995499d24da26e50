"""Generate ``05_sharpest_directions_and_nsgd.ipynb`` (outputs cleared).

Run ``python notebooks/_make_05.py`` from the repository root after editing the cells below; the
notebook is the artefact CI executes (``pytest --nbmake``), this script is its source.
"""

from __future__ import annotations

from pathlib import Path

from _nbgen import NotebookSource

SOURCE = NotebookSource()
md, code = SOURCE.md, SOURCE.code


# ------------------------------------------------------------------------------------------------
md(r"""
# 05 — The sharpest directions of the loss and the SGD step length (Jastrzębski et al. 2019)

Jastrzębski, Kenton, Ballas, Fischer, Bengio & Storkey (2019, arXiv 1807.05031) make four claims
about how SGD meets the top eigendirections $e_i$ of the training-loss Hessian $H$
($H e_i = \lambda_i e_i$, $\lambda_1 \ge \lambda_2 \ge \dots$):

1. early in training SGD visits increasingly sharp regions, up to a maximum sharpness set by the
   learning rate $\eta$ and the batch size $B$ (larger $\eta$ or smaller $B$ → lower maximum);
2. along the sharpest directions the SGD step is too large: the loss of
   $\theta - \gamma\eta(g_B\cdot e_i)e_i$ is minimized near $\gamma \approx 1/(\eta\lambda_i) < 1$,
   and $\gamma = 1$ often fails to decrease it;
3. the gradient lies largely in the top-$K$ subspace: $\|EE^\top g\|/\|g\| \gg \sqrt{K/D}$;
4. **Nudged SGD** (NSGD), $\theta \leftarrow \theta - \eta(I - (1-\gamma)EE^\top)g$ with
   $\gamma < 1$, ends in sharper regions than SGD. (The paper's *generalization* claim changed
   between versions; we report training losses only and assert nothing about generalization.)

**Setup.** The synthetic teacher–student set of `sgdsim.nets.teacher_student` (512 points,
$X\sim\mathcal N(0, 4/d)$, $d=20$, tanh teacher 20-32-5 plus label noise 0.5), a 20-64-64-5 tanh
student (5829 parameters, LeCun init), loss $L = \frac1N\sum_n\|f(x_n)-y_n\|^2$, float64.
Hessian eigenpairs come from `lanczos_eigsh` (largest *algebraic*, `which='LA'`) on exact
Hessian-vector products (`MLPHessian`). `SGDSIM_QUICK=1` (the default) runs in well under a
minute on two CPU cores.
""")

code(r"""
import os
import time

from sgdsim.plotting import figure, finish, use_style

# the project's figure style; in Jupyter figures show inline (also under MPLBACKEND=agg),
# headless runs outside Jupyter render off-screen
use_style()
import matplotlib.pyplot as plt
import numpy as np
import torch

from sgdsim.curvature import lanczos_eigsh
from sgdsim.nets import MLPHessian, MLPSpec, init_params, teacher_student, train
from sgdsim.nets.directions import (
    mlp_loss_fn,
    random_orthonormal,
    step_line_search,
    subspace_share,
)

torch.set_num_threads(1)  # small matrices: threads only add hand-off overhead
QUICK = os.environ.get("SGDSIM_QUICK", "1") == "1"
STEPS = 2000 if QUICK else 5000      # training length of every run
SEED = 0
T_START = time.perf_counter()

data = teacher_student(n=512, dim=20, hidden=32, n_outputs=5, label_noise=0.5, seed=SEED)
spec = MLPSpec((20, 64, 64, 5), "tanh")
theta0 = init_params(spec, scheme="lecun", seed=SEED)
D = spec.n_params
print("QUICK =", QUICK, "| parameters D =", D, "| steps per run", STEPS)
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 1. Sharpness along training for several $\eta$ and $B$

`train` records $\lambda_1$ every 100 steps (on a fixed 256-point subset, Lanczos residual
$10^{-6}$). Plain SGD cannot sit stably where $\eta\lambda_1 > 2$ (the linear-stability bound of
its mean dynamics), so the sharpness it reaches is capped by $\sim 2/\eta$, and minibatch noise
(smaller $B$) lowers the cap further — this is the mechanism behind claim 1.
""")

code(r"""
RUNS = [(0.05, 32), (0.1, 32), (0.2, 32), (0.1, 8), (0.1, 128)]
traces = {}
t0 = time.perf_counter()
for eta, B in RUNS:
    ds = train(spec, data, theta0, loss="mse", optimizer="sgd", lr=eta, batch_size=B,
               steps=STEPS, every=100, sharpness_samples=256, seed=SEED)
    traces[(eta, B)] = ds
    print(f"η={eta:<5} B={B:<4} max λ_1 = {float(ds.lambda_max.max()):6.2f}   2/η = {2 / eta:5.1f}"
          f"   final loss {float(ds.loss[-1]):.3f}   ({ds.attrs['status']})")
print(f"{len(RUNS)} runs in {time.perf_counter() - t0:.1f} s")

fig, axes = figure(1, 2, width=11, height=3.9, sharey=True,
                   title="Sharpness λ_1 during training: smaller η or larger B, sharper peak")
for ax, keys, title in ((axes[0], RUNS[:3], "B = 32"), (axes[1], [RUNS[4], RUNS[1], RUNS[3]],
                                                         "η = 0.1")):
    for eta, B in keys:
        ds = traces[(eta, B)]
        line, = ax.plot(ds.step, ds.lambda_max, label=f"η = {eta}, B = {B}")
        ax.axhline(2 / eta, color=line.get_color(), ls=":", lw=0.8, label=f"2/η = {2 / eta:g}")
    finish(ax, xlabel="step", title=title, legend="upper left")
axes[0].set_ylabel(r"sharpness $\lambda_1$")
axes[0].set_ylim(0, 45)
plt.show()
""")

md(r"""
**Assertions.** The maximum of $\lambda_1$ over the run decreases strictly along
$\eta = 0.05 \to 0.1 \to 0.2$ and along $B = 128 \to 32 \to 8$ (a one-sided ordering, the
paper's claim), $\lambda_1$ first rises well above its initial value (a factor > 1.5), and no run
exceeds $1.25\times 2/\eta$ (the stability cap; 25% allows the edge-of-stability overshoot of
near-full-batch runs and the subset Hessian).
""")

code(r"""
peak = {k: float(ds.lambda_max.max()) for k, ds in traces.items()}
assert peak[(0.05, 32)] > peak[(0.1, 32)] > peak[(0.2, 32)], peak
assert peak[(0.1, 128)] > peak[(0.1, 32)] > peak[(0.1, 8)], peak
lam_init = float(traces[(0.1, 32)].lambda_max[0])
assert peak[(0.1, 32)] > 1.5 * lam_init, (peak[(0.1, 32)], lam_init)
assert all(peak[(eta, B)] < 1.25 * 2 / eta for eta, B in RUNS), peak
print("orderings hold; rise factor", round(peak[(0.1, 32)] / lam_init, 2))
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 2. The SGD step along the sharpest directions

We train with SGD ($\eta = 0.1$, $B = 32$) and at checkpoints take the top $K = 5$ eigenpairs of
the full-data Hessian. For a fresh minibatch $B$ with gradient $g_B$ and loss $L_B$, we move
along each $e_i$ by the component of the SGD step in it, scaled by $\gamma$:

$$
\ell_i(\gamma) = L_B\bigl(\theta - \gamma\,\eta\,(g_B\cdot e_i)\,e_i\bigr).
$$

**Quadratic model (derived).** With $s = \gamma\eta(g_B\cdot e_i)$,
$\ell_i \approx L_B - s\,(g_B\cdot e_i) + \tfrac12 s^2\, e_i^\top H_B e_i$, minimized at
$\gamma^* = 1/(\eta\, e_i^\top H_B e_i) \approx 1/(\eta\lambda_i)$. So wherever $\eta\lambda_i > 1$
the SGD step ($\gamma = 1$) overshoots the minimum along $e_i$, and where $\eta\lambda_i > 2$ it
*raises* the loss. A random unit direction has curvature $\approx \operatorname{tr}H/D \ll \lambda_1$,
so there $\gamma^* \gg 1$: the step is far too *small*. (`step_line_search` returns the grid
minimizer refined by a parabola, and the model's $\gamma^*$ when given $e_i^\top H_B e_i$.)
""")

code(r"""
ETA, B, K = 0.1, 32, 5
GAMMAS = np.linspace(0.0, 3.0, 61)
CHECKPOINTS = np.linspace(STEPS / 8, STEPS, 8).astype(int)
N_BATCHES = 4 if QUICK else 10
rng = np.random.default_rng(SEED + 1)
full_loss = mlp_loss_fn(spec, data.X, data.y, "mse")
theta, v0, recs = theta0.copy(), None, []
t0 = time.perf_counter()
for t in range(1, STEPS + 1):
    if t in CHECKPOINTS:
        H = MLPHessian(spec, theta, data.X, data.y, "mse")
        eig = lanczos_eigsh(H, K, tol=1e-6, v0=v0, seed=SEED)
        E, lam = eig.eigenvectors, eig.eigenvalues
        v0 = E
        R = random_orthonormal(D, K, seed=int(t))
        rec = dict(step=t, lam=lam, share=subspace_share(H.gradient, E),
                   share_rand=subspace_share(H.gradient, R), share_B=[], top=[], rnd=[], dfull=[],
                   dfull_rand=[])
        for _ in range(N_BATCHES):
            ib = rng.choice(data.n, B, replace=False)
            HB = MLPHessian(spec, theta, data.X[ib], data.y[ib], "mse")
            LB = mlp_loss_fn(spec, data.X[ib], data.y[ib], "mse")
            curv_B = np.einsum("ij,ij->j", E, HB.matmat(E))     # e_iᵀ H_B e_i
            rec["top"].append(step_line_search(LB, theta, HB.gradient, E, ETA, GAMMAS,
                                               curvatures=curv_B))
            rec["rnd"].append(step_line_search(LB, theta, HB.gradient, R, ETA, GAMMAS))
            rec["share_B"].append(subspace_share(HB.gradient, E))
            L0 = full_loss(theta)   # the full training loss after the γ = 1 component
            for key, Dir in (("dfull", E), ("dfull_rand", R)):
                c = Dir.T @ HB.gradient
                rec[key].append([full_loss(theta - ETA * c[i] * Dir[:, i]) - L0 for i in range(K)])
        recs.append(rec)
    idx = rng.choice(data.n, B, replace=False)
    theta = theta - ETA * MLPHessian(spec, theta, data.X[idx], data.y[idx], "mse").gradient
print(f"SGD with {len(CHECKPOINTS)} checkpoint analyses in {time.perf_counter() - t0:.1f} s")
for r in recs:
    print(f"step {r['step']:5d}  λ_1..λ_{K} = {np.round(r['lam'], 2)}   ηλ_1 = {ETA * r['lam'][0]:.2f}")
""")

code(r"""
last = recs[-1]
fig, axes = figure(1, 2, width=11, height=3.9,
                   title="Loss change of a step γ·η along one direction, one minibatch")
s = last["top"][0]
for i in range(K):
    line, = axes[0].plot(s.gammas, s.losses[i] - s.loss0, label=f"$e_{i + 1}$")
    axes[0].axvline(1 / (ETA * last["lam"][i]), color=line.get_color(), ls=":", lw=0.8,
                    label="dotted: γ* = 1/(ηλ_i)")
axes[0].axvline(1.0, color="k", lw=1.0, label="γ = 1: the SGD step")
axes[0].set_title(f"top eigendirections, step {last['step']} (dotted: 1/(ηλ_i))")
sr = last["rnd"][0]
for i in range(K):
    axes[1].plot(sr.gammas, sr.losses[i] - sr.loss0, label=f"random {i + 1}")
axes[1].axvline(1.0, color="k", lw=1.0, label="γ = 1: the SGD step")
axes[1].set_title("random directions (same minibatch)")
for ax in axes:
    finish(ax, xlabel=r"step multiplier $\gamma$")
axes[0].set_ylabel(r"$L_B(\theta - \gamma\eta(g_B\cdot e)e) - L_B(\theta)$")
plt.show()
""")

md(r"""
**Assertions** (checkpoints after the first third of training, all minibatches and top-5
directions):

* the measured minimizer equals the quadratic model's $1/(\eta e_i^\top H_B e_i)$ within 10%
  (grid spacing 0.05 refined by a parabola, plus cubic terms of the loss);
* the median of $\gamma_{\min}\,\eta\lambda_i$ (with the *full*-data $\lambda_i$) is $1 \pm 0.15$
  ($e_i^\top H_B e_i/\lambda_i$ scatters by about ±15% over $B = 32$ batches; the median of many
  values is well inside);
* more than 80% of these searches have $\gamma_{\min} < 1$ (the SGD step overshoots), while every
  random-direction search has its minimum at the end of the grid ($\gamma^* \gg 1$);
* on the **full** training loss, averaged over minibatches, the $\gamma = 1$ component along $e_i$
  fails to decrease it in a sizeable fraction (> 30%) of (checkpoint, direction) pairs — more
  often than along random directions. In the quadratic model
  $\mathbb E\,\Delta L_i = \eta (g\cdot e_i)^2(\eta\lambda_i/2 - 1) + \tfrac12\eta^2\lambda_i
  \operatorname{Var}(g_B\cdot e_i)$: the noise term dominates along sharp directions.
""")

code(r"""
late = [r for r in recs if r["step"] >= STEPS / 3]
gmin = np.array([s.gamma_min for r in late for s in r["top"]])            # (searches, K)
gq = np.array([s.gamma_quadratic for r in late for s in r["top"]])
eta_lam = np.array([ETA * r["lam"] for r in late for _ in r["top"]])
inner = (gq > 0.1) & (gq < 2.9)
q_err = np.max(np.abs(gmin[inner] / gq[inner] - 1))
med = np.median(gmin * eta_lam)
frac_over = np.mean(gmin < 1)
g_rand = np.array([s.gamma_min for r in late for s in r["rnd"]])
d_top = np.concatenate([np.mean(r["dfull"], axis=0) for r in late])
d_rand = np.concatenate([np.mean(r["dfull_rand"], axis=0) for r in late])
print(f"max |γ_min/γ_quad − 1| = {q_err:.3f}   median γ_min·ηλ_i = {med:.3f}")
print(f"fraction γ_min < 1 (top-K) = {frac_over:.2f}   min γ_min (random) = {g_rand.min():.2f}")
print(f"γ=1 fails to decrease the full loss (mean over batches): top-K {np.mean(d_top >= 0):.2f}, "
      f"random {np.mean(d_rand >= 0):.2f}")
assert q_err < 0.10, q_err
assert abs(med - 1.0) < 0.15, med
assert frac_over > 0.8, frac_over
assert g_rand.min() >= 2.9, g_rand.min()
assert np.mean(d_top >= 0) > 0.3 and np.mean(d_top >= 0) > np.mean(d_rand >= 0)
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 3. Gradient concentration in the top-$K$ subspace

For a uniformly random $K$-dimensional subspace $\|Pg\|^2/\|g\|^2 \sim
\mathrm{Beta}(K/2, (D-K)/2)$, with mean exactly $K/D$: the typical share is $\sqrt{K/D}$
(≈ 0.03 here). The share of the full gradient (and of minibatch gradients) in the top-5
Hessian eigenspace is an order of magnitude larger all along training.
""")

code(r"""
steps_ = [r["step"] for r in recs]
share = np.array([r["share"] for r in recs])
share_B = np.array([np.median(r["share_B"]) for r in recs])
share_rand = np.array([r["share_rand"] for r in recs])
base = np.sqrt(K / D)
fig, ax = figure(width=6.4, height=3.9)
ax.plot(steps_, share, "o-", label=r"$\|EE^\top\nabla L\|/\|\nabla L\|$")
ax.plot(steps_, share_B, "s-", label=r"minibatch $g_B$ (median)")
ax.plot(steps_, share_rand, "x-", label="random 5-dim subspace")
ax.axhline(base, color="k", ls=":", label=r"$\sqrt{K/D}$")
ax.set_yscale("log")
finish(ax, xlabel="step", ylabel="share of the gradient in the top-K subspace",
       title=f"The gradient lives in the top-{K} Hessian subspace", legend="center right")
plt.show()
print("shares:", np.round(share, 3), " √(K/D) =", round(base, 4))
# '≫' made concrete: a factor 5 over the random-subspace value, at every checkpoint
assert share.min() > 5 * base and np.median(share_B) > 5 * base
# random baseline: rms of 8 Beta draws has ≈ 12% relative s.e.; 50% band ≈ 4 s.e.
assert abs(np.sqrt(np.mean(share_rand ** 2)) / base - 1) < 0.5
""")

# ------------------------------------------------------------------------------------------------
md(r"""
## 4. Nudged SGD ends sharper than SGD

NSGD (`train(..., optimizer="nudged", nudge_gamma=γ, top_k=K, nudge_every=10)`) uses the
learning rate $\gamma\eta$ along the top-$K$ eigenvectors (refreshed by Lanczos every 10 steps)
and $\eta$ elsewhere. On a quadratic it is stable iff $\gamma\eta\lambda_i < 2$ for $i \le K$ and
$\eta\lambda_i < 2$ for $i > K$ (checked exactly in `paper_checks`), so with $\gamma = 0.1$ the
cap on the top curvatures rises from $2/\eta = 20$ to $200$, and the run drifts into sharper
regions. We assert only that; training losses are printed, and nothing is claimed about
generalization.
""")

code(r"""
GAMMA = 0.1
common = dict(loss="mse", lr=ETA, batch_size=B, steps=STEPS, every=STEPS // 10, top_k=K,
              sharpness_samples=256, seed=SEED)
t0 = time.perf_counter()
run_sgd = train(spec, data, theta0, optimizer="sgd", **common)
run_nsgd = train(spec, data, theta0, optimizer="nudged", nudge_gamma=GAMMA, nudge_every=10,
                 **common)
print(f"SGD and NSGD in {time.perf_counter() - t0:.1f} s")
fig, axes = figure(1, 2, width=11, height=3.9, title=f"Nudged SGD (γ = {GAMMA}) vs SGD, η = {ETA}")
for ds, label in ((run_sgd, "SGD"), (run_nsgd, f"NSGD γ={GAMMA}, K={K}")):
    axes[0].plot(ds.step, ds.lambda_max, "o-", label=label)
    axes[1].plot(ds.step, ds.loss, "o-", label=label)
axes[0].axhline(2 / ETA, color="k", ls=":", label="2/η")
axes[1].set_yscale("log")
finish(axes[0], xlabel="step", ylabel=r"sharpness $\lambda_1$", title="NSGD goes sharper")
finish(axes[1], xlabel="step", ylabel="training loss (log scale)", title="training loss")
plt.show()
l_sgd, l_nsgd = float(run_sgd.lambda_max[-1]), float(run_nsgd.lambda_max[-1])
print(f"final λ_1: SGD {l_sgd:.2f}, NSGD {l_nsgd:.2f} (ratio {l_nsgd / l_sgd:.2f}); "
      f"final training loss: SGD {float(run_sgd.loss[-1]):.3f}, NSGD {float(run_nsgd.loss[-1]):.3f}")
# one-sided: NSGD clearly sharper (SGD is capped near 2/η), yet below its own cap 2/(γη)
assert l_nsgd > 1.2 * l_sgd, (l_nsgd, l_sgd)
assert l_nsgd < 2 / (GAMMA * ETA)
assert run_nsgd.attrs["status"] == "ok" and run_sgd.attrs["status"] == "ok"
""")

md(r"""
## Summary

* The maximum sharpness SGD reaches is ordered in $\eta$ and $B$ and capped near $2/\eta$.
* Along the top eigendirections the minibatch loss is minimized at $\gamma \approx 1/(\eta\lambda_i)
  < 1$ — the quadratic model holds to a few per cent — so the SGD step overshoots there, and on
  average over minibatches it often fails to lower the training loss along them; along random
  directions the same step is far too short.
* The gradient's share in the top-5 eigenspace is ~10–20× the random-subspace value
  $\sqrt{K/D}$.
* Nudged SGD with $\gamma = 0.1$ on the top-5 ends markedly sharper than SGD.
""")

code(r"""
print(f"total run time {time.perf_counter() - T_START:.1f} s (QUICK = {QUICK})")
""")


if __name__ == "__main__":
    SOURCE.write(Path(__file__).with_name("05_sharpest_directions_and_nsgd.ipynb"))
