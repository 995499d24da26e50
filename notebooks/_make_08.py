"""Generate ``08_central_flows.ipynb`` (outputs cleared).

Run ``python notebooks/_make_08.py`` from the repository root after editing the cells below; the
notebook is the artefact CI executes (``pytest --nbmake``), this script is its source.
"""

from __future__ import annotations

from pathlib import Path

from _nbgen import NotebookSource

SOURCE = NotebookSource()
md, code = SOURCE.md, SOURCE.code

md(r"""
# 08 — Central flows: where gradient descent goes at the edge of stability

Cohen, Damian, Talwalkar, Kolter & Lee ("Understanding Optimization in Deep Learning with Central
Flows", 2024) model the **time average** $w(t)$ of an optimizer that oscillates at the edge of
stability. With an oscillation $\delta$ of covariance $\Sigma$ on the top Hessian eigenvectors,
the averaged gradient is $\nabla L(w) + \tfrac12\nabla\langle\Sigma, H(w)\rangle$, and for GD

$$\frac{dw}{dt} = -\eta\Big[\nabla L(w) + \tfrac12 \nabla\langle \Sigma(t), H(w)\rangle\Big],
\qquad \Sigma \succeq 0,\; H \preceq \tfrac{2}{\eta}\text{ on the edge},\;
\langle \Sigma, \tfrac2\eta - H\rangle = 0,$$

($t$ in GD steps): $\Sigma$ is the smallest oscillation that keeps every edge eigenvalue from
rising past $2/\eta$ (a complementarity problem when several are at the edge). With one edge
eigenvalue $S$ this is $\sigma^2 = 2\langle -\nabla L, \nabla S\rangle / \|\nabla S\|^2$, the
projection of gradient flow onto $\{S \le 2/\eta\}$. The flow predicts the time-averaged loss
$L(w) + \tfrac12\langle\Sigma, H\rangle$ and the variance $u_i^\top\Sigma u_i$ along each edge
eigenvector.

`sgdsim.central_flow(problem, lr, theta0, steps, optimizer='gd'|'rmsprop'|'heavy_ball')`
integrates it for any problem with `grad` and `hvp` (`CustomProblem`, `Quadratic`,
`sgdsim.nets.MLPProblem`). `SGDSIM_QUICK=1` (the default) runs in well under a minute.
""")

code(r"""
import os
import time

import matplotlib.pyplot as plt

from sgdsim.plotting import use_style

# the project's figure style; in Jupyter figures show inline (also under MPLBACKEND=agg),
# headless runs outside Jupyter render off-screen
use_style()
import numpy as np

import sgdsim as sg

QUICK = os.environ.get("SGDSIM_QUICK", "1") == "1"
T_START = time.perf_counter()
print("QUICK =", QUICK)
""")

md(r"""
## 1. The self-stabilization toy $L(x, y) = \tfrac12 y x^2 - c y$

The sharpness is $S = y$; gradient flow from $x = 0$ keeps $x = 0$ and sharpens forever
($y = y_0 + ct$). By hand: $\nabla S = (0, 1)$, $\nabla L = (0, -c)$, so at the edge
$\sigma^2 = 2c$, $S = 2/\eta$, and the predicted averaged loss is
$-2c/\eta + \tfrac12\cdot 2c\cdot 2/\eta = 0$. GD (with a $10^{-8}$ gradient-noise floor, without
which an iterate at $x = 0$ stays there) runs a relaxation oscillation around that point.
""")

code(r"""
c, eta = 0.75, 0.02
steps = 30_000 if QUICK else 200_000


def grad(th):
    return np.array([th[1] * th[0], 0.5 * th[0] ** 2 - c])


def hvp(th, v):
    return np.array([th[1] * v[0] + th[0] * v[1], th[0] * v[0]])


def loss(th):
    return 0.5 * th[1] * th[0] ** 2 - c * th[1]


toy = sg.CustomProblem(dim=2, grad=grad, loss=loss, hvp=hvp)
y0 = 2 / eta - 1
cf = sg.central_flow(toy, eta, [0.0, y0], np.linspace(0, 2000, 101), substeps=2)
print(f"central flow at step 2000: S = {cf.sharpness[-1]:.6g} (2/η = {2 / eta:g}), "
      f"σ² = {cf.variances[-1, 0]:.6g} (2c = {2 * c}), loss = {cf.loss[-1]:.2g}; "
      f"{cf.n_hvp} HVPs, {cf.seconds:.2f} s")

rng = np.random.default_rng(0)
w = np.array([0.0, y0])
traj = np.empty((steps + 1, 2))
traj[0] = w
for k in range(steps):
    w = w - eta * (grad(w) + 1e-8 * rng.standard_normal(2))
    traj[k + 1] = w
x, y = traj[:, 0], traj[:, 1]
late = slice(steps // 5, None)
print(f"GD over steps {steps // 5}–{steps}: ⟨x²⟩ = {np.mean(x[late] ** 2):.4f}, "
      f"⟨ηS/2⟩ = {np.mean(eta * y[late] / 2):.4f}, ⟨L⟩ = {np.mean(loss(traj[late].T)):.3f} "
      f"(L itself swings by ±{np.std(loss(traj[late].T)):.0f})")
""")

code(r"""
k = np.arange(steps + 1)
fig, axs = plt.subplots(1, 2, figsize=(11, 4))
axs[0].plot(k[::5], y[::5], lw=0.5, label="GD sharpness S = y")
axs[0].plot(k, y0 + c * eta * k, label="gradient flow: y₀ + cηk")
axs[0].plot(cf.steps, cf.sharpness, "--", lw=2, label="central flow")
axs[0].axhline(2 / eta, color="k", ls=":", lw=0.8, label="2/η")
axs[0].set_ylim(2 / eta - 3, 2 / eta + 8)
axs[0].set_xlabel("step k")
axs[0].set_ylabel("sharpness S")
axs[0].set_title(f"toy ½yx² − cy: c={c}, η={eta}")
axs[0].legend(fontsize=8)
axs[1].plot(k[:3000], x[:3000] ** 2, lw=0.5, label="GD x²")
axs[1].axhline(cf.variances[-1, 0], color="C2", ls="--", label="central flow σ² = 2c")
axs[1].set_xlabel("step k")
axs[1].set_ylabel("x² (oscillation along u = e_x)")
axs[1].set_title("GD's oscillation vs the predicted variance")
axs[1].legend(fontsize=8)
plt.tight_layout()
plt.show()
assert abs(np.mean(x[late] ** 2) - 2 * c) < 0.1  # telescoped y-update: error ∝ 1/T
""")

md(r"""
## 2. Two eigenvalues at the edge

$L = \tfrac12 y_1 x_1^2 + \tfrac12(\rho y_1 + y_2) x_2^2 - c_1 y_1 - c_2 y_2$ has edge eigenvalues
$\lambda_1 = y_1$ and $\lambda_2 = \rho y_1 + y_2$ whose gradients $(1, 0)$ and $(\rho, 1)$ are
not orthogonal, so their variances are coupled: with both at the edge the complementarity
problem gives $\sigma_2^2 = 2c_2$, $\sigma_1^2 = 2c_1 - 2\rho c_2$. $\lambda_1$ reaches the edge
first (alone, $\sigma_1^2 = 2c_1$); $\lambda_2$ joins later and is added to the edge set; when
both sit at $2/\eta$ they are degenerate, so $\Sigma$ (not the eigenbasis) is the basis-free answer.
""")

code(r"""
c1, c2, rho = 0.75, 0.4, 0.5


def grad2(th):
    x1, x2, y1, y2 = th
    return np.array([y1 * x1, (rho * y1 + y2) * x2,
                     0.5 * x1 ** 2 + 0.5 * rho * x2 ** 2 - c1, 0.5 * x2 ** 2 - c2])


def hvp2(th, v):
    x1, x2, y1, y2 = th
    H = np.array([[y1, 0, x1, 0], [0, rho * y1 + y2, rho * x2, x2],
                  [x1, rho * x2, 0, 0], [0, x2, 0, 0]])
    return H @ v


two = sg.CustomProblem(dim=4, grad=grad2, hvp=hvp2)
w0 = np.array([0, 0, 2 / eta - 1, 2 / eta - 2 - rho * (2 / eta - 1)])
cf2 = sg.central_flow(two, eta, w0, np.linspace(0, 600, 121), substeps=2)
var = np.array([(b @ X @ b.T)[[0, 1], [0, 1]] if b.shape[1] else [0.0, 0.0]
                for b, X in zip(cf2.edge_basis, cf2.edge_cov)])
fig, axs = plt.subplots(1, 2, figsize=(11, 4))
axs[0].plot(cf2.steps, cf2.eigenvalues[:, 0], label="λ₁ (largest)")
axs[0].plot(cf2.steps, cf2.eigenvalues[:, 1], label="λ₂")
axs[0].axhline(2 / eta, color="k", ls=":", lw=0.8, label="2/η")
axs[0].set_xlabel("step k")
axs[0].set_ylabel("eigenvalue λ")
axs[0].set_title("central flow: eigenvalues reach the edge one by one")
axs[0].legend(fontsize=8)
axs[1].plot(cf2.steps, var[:, 0], label="Σ_x1x1")
axs[1].plot(cf2.steps, var[:, 1], label="Σ_x2x2")
axs[1].axhline(2 * c1 - 2 * rho * c2, color="C0", ls=":", lw=0.8, label="2c₁ − 2ρc₂")
axs[1].axhline(2 * c2, color="C1", ls=":", lw=0.8, label="2c₂")
axs[1].set_xlabel("step k")
axs[1].set_ylabel("predicted oscillation variance")
axs[1].set_title("the complementarity problem couples the variances")
axs[1].legend(fontsize=8)
plt.tight_layout()
plt.show()
print("final Σ (x-block):", np.round(var[-1], 10), "edge set sizes seen:", sorted(set(cf2.n_edge)))
assert np.allclose(var[-1], [2 * c1 - 2 * rho * c2, 2 * c2], atol=1e-8)
""")

md(r"""
## 3. Heavy-ball momentum (our derivation, not the paper's)

For $v \leftarrow \beta v - \eta\nabla L$, $w \leftarrow w + v$ a period-2 oscillation needs
$\lambda = 2(1+\beta)/\eta$, and the slow motion is $dw/dt = -\tfrac{\eta}{1-\beta}[\nabla L +
\tfrac12\nabla\langle\Sigma, H\rangle]$ with the same complementarity condition at that
threshold. On the toy it predicts $y \to 2(1+\beta)/\eta$ and $\sigma^2 = 2c$ — which the
heavy-ball $y$-update, summed over a long window, also gives exactly. A heavy-ball run with a
noise floor (its $\langle y\rangle$ comes out a few per cent below $2(1+\beta)/\eta$; see
below why):
""")

code(r"""
beta = 0.5
tau = 2 * (1 + beta) / eta
cfm = sg.central_flow(toy, eta, [0.0, tau - 1], np.array([0.0, 2000.0]), optimizer="heavy_ball",
                      beta=beta, substeps=2)
rng = np.random.default_rng(1)
w, v = np.array([0.0, tau - 1]), np.zeros(2)
hb = np.empty((steps + 1, 2))
hb[0] = w
for kk in range(steps):
    v = beta * v - eta * (grad(w) + 1e-8 * rng.standard_normal(2))
    w = w + v
    hb[kk + 1] = w
print(f"heavy ball β={beta}: central flow S = {cfm.sharpness[-1]:.4f}, σ² = "
      f"{cfm.variances[-1, 0]:.4f}; heavy-ball GD ⟨y⟩ = {np.mean(hb[late, 1]):.3f} "
      f"(2(1+β)/η = {tau:g}), ⟨x²⟩ = {np.mean(hb[late, 0] ** 2):.4f}")
""")

md(r"""
The offset is not an error of the threshold. The flow's fixed point is an *exact* period-2 orbit
of heavy ball ($x = \pm\sqrt{2c}$, $y = 2(1+\beta)/\eta$, $v_x = \pm 2\sqrt{2c}$); started
there, heavy ball stays on it. The orbit is weakly unstable — the exact two-step Jacobian has
$|\mu| \approx 1 + 2(1+\beta)c\eta^2/(1-\beta)^3$ (GD: $1 + 2c\eta^2$) — so a perturbed or
noise-seeded run spirals out into a large relaxation cycle whose average $y$ depends on how deep
$x$ falls between bursts, i.e. on the noise floor:
""")

code(r"""
def heavy_ball(w, v, n, floor, rng):
    ys = np.empty(n)
    for kk in range(n):
        g = grad(w) + (floor * rng.standard_normal(2) if floor else 0.0)
        v = beta * v - eta * g
        w = w + v
        ys[kk] = w[1]
    return ys

x0 = np.sqrt(2 * c)
on_orbit = heavy_ball(np.array([x0, tau]), np.array([2 * x0, 0.0]), 2000, 0.0, rng)
print(f"started on the orbit, no noise: ⟨y⟩/τ − 1 = {on_orbit.mean() / tau - 1:+.1e}")
for floor in (1e-4, 1e-12):
    ys = heavy_ball(np.array([0.0, tau - 1]), np.zeros(2), steps, floor, rng)
    print(f"from x = 0, floor {floor:g}: ⟨y⟩/τ − 1 = {ys[late].mean() / tau - 1:+.4f}")
""")

md(r"""
## 4. RMSProp on Cohen et al.'s tanh toy network (from the paper)

RMSProp $\nu_k = \beta_2\nu_{k-1} + (1-\beta_2)g_k^2$, $w \leftarrow w - \eta g_k/(\sqrt{\nu_k}+
\varepsilon)$ is preconditioned GD with $P = \mathrm{diag}(\sqrt\nu+\varepsilon)/\eta$; its edge is
$\lambda_{\max}(P^{-1}H) = 2$, and in its central flow $\nu$ is fed by the oscillation too:
$d\nu/dt = \tfrac{1-\beta_2}{\beta_2}[\nabla L^2 + \mathrm{diag}(H\Sigma H) - \nu]$.
""")

code(r"""
import torch

from sgdsim.curvature import lanczos_eigsh
from sgdsim.nets import MLPProblem, MLPSpec, chebyshev_toy, init_params

torch.set_num_threads(1)
spec = MLPSpec((1, 100, 1), "tanh", bias=True, output_bias=False)
data = chebyshev_toy(20, 4)
th0 = init_params(spec, scheme="xavier", first_layer_gain=1.9, seed=0)
net = MLPProblem(spec, data.X, data.y, "half_mse")
lr, b2, eps = 0.008, 0.99, 1e-2
n_steps = 1000 if QUICK else 4000
rec = np.arange(0, n_steps + 1, 50, dtype=float)
nu0 = net.grad(th0) ** 2
cfr = sg.central_flow(net, lr, th0, rec, optimizer="rmsprop", beta2=b2, eps=eps, nu0=nu0,
                      eig_refresh=12, lanczos_tol=1e-5)
th, nu, L, S = th0.copy(), nu0.copy(), [], []
for kk in range(n_steps + 1):
    h = net.at(th)
    g = h.gradient
    nu = b2 * nu + (1 - b2) * g * g
    L.append(h.loss_value)
    if kk % 50 == 0:
        D = 1 / np.sqrt(np.sqrt(nu) + eps)
        S.append(lanczos_eigsh(lambda u, D=D, h=h: D * h(D * u), 1, dim=th.size,
                               tol=1e-6).eigenvalues[0])
    th = th - lr * g / (np.sqrt(nu) + eps)
L = np.array(L)
Lbar = np.convolve(L, np.ones(101) / 101, mode="same")
fig, axs = plt.subplots(1, 2, figsize=(11, 4))
axs[0].plot(L, color="0.8", lw=0.6, label="RMSProp loss")
axs[0].plot(np.arange(50, n_steps - 49), Lbar[50:-50], label="RMSProp, 101-step average")
axs[0].plot(rec, cfr.loss, "--", label="central flow L(w) + ½⟨Σ,H⟩")
axs[0].set_xlabel("step k")
axs[0].set_ylabel("loss (½-MSE)")
axs[0].set_title(f"RMSProp, η={lr}, β₂={b2}, ε={eps}")
axs[0].legend(fontsize=8)
axs[1].plot(rec, S, label="RMSProp λ_max(diag(√ν+ε)⁻¹H)")
axs[1].plot(rec, cfr.sharpness, "--", label="central flow")
axs[1].axhline(2 / lr, color="k", ls=":", lw=0.8, label="2/η")
axs[1].set_xlabel("step k")
axs[1].set_ylabel("preconditioned sharpness")
axs[1].legend(fontsize=8)
plt.tight_layout()
plt.show()
i = len(rec) - 3
print(f"step {int(rec[i])}: central flow loss {cfr.loss[i]:.5f}, RMSProp averaged "
      f"{Lbar[int(rec[i])]:.5f}; {cfr.n_hvp} HVPs, {cfr.seconds:.1f} s")
""")

md(r"""
## Summary and limits

* The central flow holds every edge eigenvalue at the threshold and predicts the averaged loss and
  the oscillation variance; on the toys GD's long-window averages match it within their
  batch-means error bars (`python -m paper_checks --only central_flow`).
* New edge eigenvalues join as they arrive; with several at the edge the variances are coupled
  through the complementarity problem, and an eigenvalue can leave the edge.
* On the digits MLP (paper check `cohen2024.central_flow_digits_mlp`) two to four eigenvalues sit
  at the edge at once, nearly degenerate, and the oscillation is shared among them: compare the
  total, $\mathrm{tr}\,\Sigma$, with GD's period-2 variance
  $\tfrac14\|w_k - \tfrac12(w_{k-1}+w_{k+1})\|^2$, not one eigenvector's share (that gives
  0.6–0.7 of $\sigma_1^2$).
* Where it departs from GD: the flow equilibrates the oscillation instantly, GD has to grow it
  from whatever seeds it — on small nets GD overshoots $2/\eta$ and catapults when entering the
  edge, and its oscillation comes in bursts, so agreement holds for averages over bursts, not
  step by step; it is a deterministic (full-batch) theory.
""")

code(r"""
print(f"total run time {time.perf_counter() - T_START:.1f} s (QUICK = {QUICK})")
""")


if __name__ == "__main__":
    SOURCE.write(Path(__file__).with_name("08_central_flows.ipynb"))
