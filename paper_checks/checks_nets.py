"""Cohen et al. 2021: progressive sharpening and the edge of stability on the Chebyshev toy.

PAPERS.md §1 / §7.2. Twenty points evenly spaced on [−1, 1] with targets ``T_4(x)``, a 1-100-1 tanh
network (Xavier-normal init, first-layer gain 1.9, no output bias), loss ½·mean-sum MSE,
full-batch training. λ_max (Lanczos, exact Hessian-vector products) starts near 3, rises
(progressive sharpening) and then hovers at the linear-stability threshold of the optimizer:
GD ``2/η``; heavy ball ``(2 + 2β)/η``; PyTorch Nesterov ``(2 + 2β)/((1 + 2β)η)`` **(derived)**.
"""

from __future__ import annotations

import numpy as np

from paper_checks.registry import CheckContext, CheckSkipped, Measurement, check

_PAPER = "Cohen et al. 2021"


def _imports():
    try:
        import torch

        from sgdsim.nets import MLPSpec, chebyshev_toy, init_params, train
    except ImportError as exc:  # pragma: no cover - without the nets extra
        raise CheckSkipped(f"needs the nets extra (torch): {exc}") from exc
    return torch, MLPSpec, chebyshev_toy, init_params, train


# (optimizer, η, β, quick steps, full steps, threshold formula, source)
_RUNS = [
    ("gd", 0.2, 0.0, 6000, 12000, lambda e, b: 2 / e, "GD: 2/η"),
    ("gd", 0.1, 0.0, 12000, 24000, lambda e, b: 2 / e, "GD: 2/η"),
    ("heavy_ball", 0.2, 0.5, 5000, 12000, lambda e, b: (2 + 2 * b) / e, "heavy ball: (2+2β)/η"),
    ("nesterov", 0.2, 0.5, 4000, 12000, lambda e, b: (2 + 2 * b) / ((1 + 2 * b) * e),
     "Nesterov: (2+2β)/((1+2β)η), derived"),
]



def _chebyshev_setup(seed: int):
    """Cohen et al.'s toy (PAPERS.md §1): 20 points, T_4 labels, a 1-100-1 tanh net, Xavier
    init with first-layer gain 1.9, no output bias; single-threaded torch."""
    torch, MLPSpec, chebyshev_toy, init_params, _ = _imports()
    torch.set_num_threads(1)
    spec = MLPSpec((1, 100, 1), "tanh", bias=True, output_bias=False)
    data = chebyshev_toy(20, 4)
    return spec, data, init_params(spec, scheme="xavier", first_layer_gain=1.9, seed=seed)

@check("cohen.eos_chebyshev", paper=_PAPER,
       claim="full-batch GD / heavy ball / Nesterov on a tanh net: λ_max rises from ≈3 and "
             "settles at the optimizer's stability threshold (2/η, (2+2β)/η, …)")
def eos_chebyshev(ctx: CheckContext) -> list[Measurement]:
    *_, train = _imports()
    spec, data, theta0 = _chebyshev_setup(ctx.seed)
    out, curves = [], []
    for opt, lr, beta, q_steps, f_steps, thr, src in _RUNS:
        steps = q_steps if ctx.quick else f_steps
        ds = train(spec, data, theta0, loss="half_mse", optimizer=opt, lr=lr, momentum=beta,
                   steps=steps, every=50, lanczos_tol=1e-6, seed=ctx.seed)
        lam = ds["lambda_max"].values
        st = ds["step"].values
        pred = thr(lr, beta)
        tail = lam[st >= 0.75 * steps]
        label = f"{opt} η={lr}" + (f" β={beta}" if beta else "")
        curves.append((label, st, lam, pred))
        out.append(Measurement(
            quantity=f"{label}: initial λ_max below the threshold (progressive sharpening)",
            predicted=f"< {pred:.3g}", measured=float(lam[0]), passed=bool(lam[0] < 0.5 * pred),
            source="Cohen et al. 2021 (toy starts near 3)", note="status " + ds.attrs["status"],
        ))
        out.append(Measurement(
            quantity=f"{label}: mean λ_max over the last quarter of {steps} steps",
            predicted=pred, measured=float(np.mean(tail)), tolerance=0.1, relative=True,
            source=src,
            note="EoS oscillates a few % around the threshold; 10% still separates the "
                 "GD/heavy-ball/Nesterov thresholds (ratios 1.5, 1.33)",
        ))
    from sgdsim.plotting import figure, finish

    fig, ax = figure(width=6.4, height=4.2)
    for label, st, lam, pred in curves:
        line, = ax.plot(st, lam, label=label)
        ax.axhline(pred, ls="--", color=line.get_color(), lw=0.9,
                   label=f"threshold {pred:.3g} ({label.split()[0]})")
    finish(ax, title="Edge of stability: λ_max rises to the method's threshold and hovers there",
           xlabel="step t", ylabel="sharpness λ_max of the ½-MSE Hessian", legend="lower right")
    ctx.savefig(fig, "cohen_eos_chebyshev")
    return out


@check("cohen.gd_tracks_gradient_flow", paper=_PAPER,
       claim="GD follows gradient flow until its sharpness reaches 2/η, then departs; gradient "
             "flow keeps sharpening past 2/η")
def gd_tracks_gradient_flow(ctx: CheckContext) -> list[Measurement]:
    from sgdsim.curvature import lanczos_eigsh
    from sgdsim.flow import gradient_flow
    from sgdsim.nets import MLPHessian

    spec, data, theta0 = _chebyshev_setup(ctx.seed)
    eta, every = 0.2, 100
    steps = 4000 if ctx.quick else 8000

    def grad(th):
        return MLPHessian(spec, th, data.X, data.y, "half_mse").gradient

    def sharp(th):
        op = MLPHessian(spec, th, data.X, data.y, "half_mse")
        return float(lanczos_eigsh(op, 1, tol=1e-6, seed=ctx.seed).eigenvalues[0])

    th, gd = theta0.copy(), [theta0.copy()]
    for k in range(1, steps + 1):
        th = th - eta * grad(th)
        if k % every == 0:
            gd.append(th.copy())
    times = eta * np.arange(0, steps + 1, every)  # GD step k ↔ gradient-flow time ηk
    # RK4 with dt = 0.5/λ_max (sharpness-aware, as Cohen et al. integrate the flow)
    flow = gradient_flow(grad, theta0, times, sharpness=sharp, safety=0.5, refresh=20)
    G, F = np.array(gd), flow.params
    dev = np.linalg.norm(G - F, axis=1) / np.maximum(np.linalg.norm(F - theta0, axis=1), 1e-12)
    lam = np.array([sharp(g) for g in G])
    cross = int(np.argmax(lam >= 2 / eta)) if np.any(lam >= 2 / eta) else len(lam)
    before = float(np.max(dev[:cross])) if cross > 0 else np.nan
    after = float(dev[-1])
    lam_gf = sharp(F[-1])
    return [
        Measurement(
            quantity=f"max ‖θ_GD − θ_GF‖/‖θ_GF − θ_0‖ before λ_max crosses 2/η={2 / eta:g} "
                     f"(step {cross * every})",
            predicted=0.0, measured=before, tolerance=0.02,
            source="Cohen et al. 2021 (GD tracks gradient flow while stable)",
            note="GD is Euler on the flow: O(η·λ) local drift, measured < 1% here; 2% margin",
        ),
        Measurement(
            quantity=f"relative deviation at step {steps} (after the crossing)",
            predicted=f"> 5 × {before:.3g}", measured=after, passed=bool(after > 5 * before),
            source="Cohen et al. 2021 (GD departs from the flow at the EoS)",
            note="one-sided: departure must dwarf the pre-crossing drift",
        ),
        Measurement(
            quantity=f"λ_max: gradient flow vs GD at step {steps}",
            predicted=f"flow > 1.2·2/η = {2.4 / eta:g}; GD ≈ {2 / eta:g}",
            measured=f"flow {lam_gf:.3g}, GD {lam[-1]:.3g}",
            passed=bool(lam_gf > 1.2 * 2 / eta and abs(lam[-1] - 2 / eta) < 0.2 * 2 / eta),
            source="Cohen et al. 2021 (progressive sharpening continues along the flow)",
            note="GD value is one sample of an oscillating sharpness: 20% band",
        ),
    ]


@check("andreyev.eoss_label_noise", paper="Andreyev & Beneventano 2024",
       claim="minibatch SGD on a label-noise teacher–student MLP: Batch Sharpness rises to 2/η "
             "while λ_max of the full Hessian stays well below it")
def eoss_label_noise(ctx: CheckContext) -> list[Measurement]:
    torch, MLPSpec, _cheb, init_params, train = _imports()
    from sgdsim.nets import teacher_student

    torch.set_num_threads(1)
    # PAPERS.md §3 setup: X ~ N(0, 4/d), tanh teacher 20-32-5 + 0.5 label noise, student
    # 20-64-64-5 tanh, loss ‖f − y‖² without the ½ (their convention), η = 0.2, B = 8
    data = teacher_student(n=512, dim=20, hidden=32, n_outputs=5, label_noise=0.5, seed=ctx.seed)
    spec = MLPSpec((20, 64, 64, 5), "tanh")
    theta0 = init_params(spec, scheme="lecun", seed=ctx.seed)
    eta, B = 0.2, 8
    steps = 40_000 if ctx.quick else 80_000
    ds = train(spec, data, theta0, loss="mse", optimizer="sgd", lr=eta, batch_size=B,
               steps=steps, every=steps // 20, bs_batches=64, seed=ctx.seed)
    st = ds["step"].values
    late = st >= 0.75 * steps
    bs = float(ds["batch_sharpness"].values[late].mean())
    lam = float(ds["lambda_max"].values[late].mean())
    return [
        Measurement(
            quantity=f"Batch Sharpness, mean over the last quarter of {steps} SGD steps (B={B})",
            predicted=2 / eta, measured=bs, tolerance=0.15, relative=True,
            source="Andreyev & Beneventano 2024 (BS stabilizes at 2/η)",
            note="64-batch Monte Carlo records (≈4% s.e. each) on a slowly saturating curve; "
                 "15% band (measured 9.55 at seed 0)",
        ),
        Measurement(
            quantity="λ_max(full Hessian), same window",
            predicted=f"< 0.75·2/η = {1.5 / eta:g} (paper ≈ 4.5)", measured=lam,
            passed=bool(lam < 0.75 * 2 / eta),
            source="Andreyev & Beneventano 2024 (λ_max suppressed below 2/η under SGD)",
            note="one-sided: the claim is suppression, not a value; status " + ds.attrs["status"],
        ),
    ]
