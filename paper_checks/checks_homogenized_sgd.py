"""Homogenized SGD on least squares (Paquette, Paquette, Adlam & Pennington 2022; Paquette, Lee,
Pedregosa & Paquette 2021; Paquette, Paquette, Xiao & Pennington 2024).

The expected risk of minibatch SGD (batches drawn with replacement, multi-pass on a fixed data
set, ``sgd(lr)`` as in sgdsim) solves a Volterra / discrete renewal equation driven by the
spectrum of ``H = XᵀX/N`` (:mod:`sgdsim.theory.homogenized`). Checked here against
``sgdsim.simulate`` on ``LinearRegression`` at d in the hundreds to thousands, against the exact
fixed-data second moments (``LinRegMoments``) at small d, for the critical learning rate (kernel
norm 1) against divergence in simulation and against ``mean_square_lr_threshold``, and for the
power-law risk exponent of (near-)streaming SGD fitted with ``sgdsim.analysis``.
"""

from __future__ import annotations

import warnings

import numpy as np

import sgdsim as sg
from paper_checks.registry import CheckContext, Measurement, check
from sgdsim.analysis import fit_power_law, log_spaced_indices
from sgdsim.theory import LinRegMoments, mean_square_lr_threshold
from sgdsim.theory.homogenized import (
    HomogenizedSGD,
    LeastSquaresSpectrum,
    LowIntrinsicDimensionWarning,
    critical_lr,
    power_law_risk_exponent,
)

_PAPER = "Paquette, Paquette, Adlam & Pennington 2022"


def _gaussian_data(d: int, n: int, seed: int, noise: float = 0.5):
    """X ~ N(0, 1)^(n×d), w* ~ N(0, I/d), y = Xw* + noise·ε."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) / np.sqrt(d)
    return X, X @ w + noise * rng.standard_normal(n), w


@check("homogenized.sim_vs_volterra", paper=_PAPER,
       claim="the ensemble-mean training loss and test risk of SGD on least squares follow the "
             "homogenized Volterra curve, and single runs concentrate on it as d grows")
def sim_vs_volterra(ctx: CheckContext) -> list[Measurement]:
    import matplotlib.pyplot as plt

    dims = (200, 500, 1000) if ctx.quick else (500, 1000, 2000)
    R = 48 if ctx.quick else 128
    B, sigma = 1, 0.5
    out, rows = [], []
    fig, (ax_c, ax_d) = plt.subplots(1, 2, figsize=(11, 4.2))
    for d in dims:
        X, y, w_star = _gaussian_data(d, 2 * d, ctx.seed + d)
        spec = LeastSquaresSpectrum.from_data(X, y)
        lr = 0.5 * critical_lr(spec, B)
        steps, every = 4 * d, d // 5  # 21 records (recording params costs ~0.1-0.3 s each)
        model = HomogenizedSGD(spec, lr, B)
        theory = model.risk(steps, every=every)["loss"]
        test_theory = model.test_risk(steps, np.eye(d), w_star, sigma**2, every=every)["test_risk"]
        res = sg.simulate(sg.LinearRegression(X, y), sg.sgd(lr), steps=steps, replicas=R,
                          batch_size=B, sampling="with_replacement", seed=ctx.seed,
                          record=("loss", "params"), every=every, progress=False)
        w = res["params"].values  # (n_rec, R, d)
        loss = res["loss"].values
        test = 0.5 * np.sum((w - w_star) ** 2, axis=-1) + 0.5 * sigma**2
        for name, samples, pred in (("training loss", loss, theory), ("test risk", test,
                                                                     test_theory)):
            mean = samples.mean(axis=1)
            se = samples.std(axis=1, ddof=1) / np.sqrt(R)
            dev = float(np.max(np.abs(mean - pred)) / pred[0])
            tol = float(4 * np.max(se) / pred[0] + 1.0 / d)
            out.append(Measurement(
                quantity=f"d={d}, N={2 * d}: sup_k |E_sim − ψ_k| / ψ_0, {name}",
                predicted=0.0, measured=dev, tolerance=tol,
                source="homogenized discrete renewal equation on the data's exact spectrum",
                note=f"4·max s.e. of the mean over R={R} replicas + 1/d (the homogenized bias; "
                     "0.3-0.5/d measured against exact moments at N = 4d, check vs_exact_moments)",
            ))
            if name == "training loss":
                rms = float(np.sqrt(np.mean((samples - pred[:, None]) ** 2, axis=1)).max()
                            / pred[0])
                rows.append((d, dev, float(np.max(se) / pred[0]), rms))
                ax_c.plot(np.arange(pred.size) * every / d, pred, "k-", lw=1,
                          label=f"homogenized (Volterra), d={d}")
                ax_c.fill_between(np.arange(pred.size) * every / d, mean - 2 * se, mean + 2 * se,
                                  alpha=0.4, label=f"SGD d={d} (mean ± 2 s.e.)")
    ax_c.set(xlabel="steps / d", ylabel="training loss", title="SGD vs homogenized SGD, η = 0.5 η_c")
    ax_c.legend(fontsize=8)
    dd = np.array([r[0] for r in rows], dtype=float)
    rms = np.array([r[3] for r in rows])
    slope = float(np.polyfit(np.log(dd), np.log(rms), 1)[0])
    ax_d.loglog(dd, rms, "o-", label="single-run RMS deviation / ψ_0")
    ax_d.errorbar(dd, [r[1] for r in rows], yerr=[4 * r[2] for r in rows], fmt="s",
                  label="|ensemble mean − ψ| / ψ_0 (± 4 s.e.)")
    ax_d.loglog(dd, rms[0] * (dd / dd[0]) ** -0.5, "k--", lw=0.8, label="∝ d^-1/2")
    ax_d.loglog(dd, 1.0 / dd, "k:", lw=0.8, label="1/d allowance")
    ax_d.set(xlabel="d (N = 2d)", ylabel="sup over time", title="discrepancy vs dimension")
    ax_d.legend(fontsize=8)
    ctx.savefig(fig, "homogenized_sim_vs_volterra")
    out.append(Measurement(
        quantity="log-log slope of the single-run RMS deviation vs d (concentration; sup_k RMS/ψ_0 "
                 + ", ".join(f"{r[3]:.4f} at d={r[0]}" for r in rows) + ")",
        predicted=-0.5, measured=slope, tolerance=0.2,
        source="fluctuations of a sum of d weakly dependent modes (the papers' d^{-1/2+ε} bound)",
        note=f"RMS over R={R} has relative s.e. 1/sqrt(2R) ≈ {1 / np.sqrt(2 * R):.0%}: slope "
             "s.e. ≈ 0.1 over a 5× range",
    ))
    return out


@check("homogenized.vs_exact_moments", paper="Paquette, Lee, Pedregosa & Paquette 2021",
       claim="on a fixed data set the homogenized risk curve approaches the exact second-moment "
             "recursion as d grows (error < 1/d at N = 4d)")
def vs_exact_moments(ctx: CheckContext) -> list[Measurement]:
    import matplotlib.pyplot as plt

    dims = (12, 24, 48) if ctx.quick else (12, 24, 48, 96)
    seeds = 6
    errs = {"noisy": [], "noiseless": []}
    fig, (ax_e, ax_c) = plt.subplots(1, 2, figsize=(11, 4.2))
    warnings.simplefilter("ignore", LowIntrinsicDimensionWarning)  # small d is the point here
    for d in dims:
        per = {"noisy": [], "noiseless": []}
        for s in range(seeds):
            X, y, w = _gaussian_data(d, 4 * d, ctx.seed + 100 * d + s)
            for lab, yy in (("noisy", y), ("noiseless", X @ w)):
                spec = LeastSquaresSpectrum.from_data(X, yy)
                lr = 0.5 * critical_lr(spec, 1)
                exact = LinRegMoments(X, yy, lr=lr, batch_size=1).transient(
                    5 * d, np.zeros(d))["loss"]
                hom = HomogenizedSGD(spec, lr, 1).risk(5 * d)["loss"]
                per[lab].append(float(np.max(np.abs(hom - exact)) / exact.max()))
                if d == 24 and s == 0:
                    ax_c.plot(exact, label=f"exact moments ({lab})")
                    ax_c.plot(hom, "--", label=f"homogenized ({lab})")
        for lab in errs:
            errs[lab].append(float(np.mean(per[lab])))
    out = []
    for lab, e in errs.items():
        slope = float(np.polyfit(np.log(dims), np.log(e), 1)[0])
        ax_e.loglog(dims, e, "o-", label=f"{lab} labels (slope {slope:.2f})")
        for d, v in zip(dims, e):
            out.append(Measurement(
                quantity=f"{lab} labels, d={d}, N={4 * d}: sup|ψ − exact|/sup exact "
                         f"(mean of {seeds} data sets)",
                predicted="< 1/d", measured=v, passed=bool(v < 1.0 / d),
                source="LinRegMoments (exact for the fixed data set)",
                note="pass if < 1/d: the dropped noise terms (rank-one HZH, leverage "
                     "covariance, residual cross term) are O(1/d) relative",
            ))
        out.append(Measurement(
            quantity=f"{lab} labels: log-log slope of the error vs d",
            predicted="in [-1.3, -0.4]", measured=slope, passed=bool(-1.3 <= slope <= -0.4),
            source="O(1/d) bias + O(N^-1/2) data-set fluctuation of the dropped noise terms",
            note=f"mean of {seeds} data sets per d (single ones scatter by ±50%); -1 for the "
                 "bias, -1/2 for the fluctuation (the theorems' d^(-1/2+ε)), ±0.1 margin",
        ))
    ax_e.loglog(dims, 1.0 / np.asarray(dims, float), "k:", label="1/d")
    ax_e.set(xlabel="d (N = 4d)", ylabel="sup |ψ − exact| / sup exact",
             title="homogenized vs exact fixed-data moments")
    ax_e.legend(fontsize=8)
    ax_c.set(xlabel="step", ylabel="E L(w_k)", title="d = 24, η = 0.5 η_c, B = 1")
    ax_c.legend(fontsize=8)
    ctx.savefig(fig, "homogenized_vs_exact_moments")
    return out


@check("homogenized.critical_lr", paper="Paquette, Lee, Pedregosa & Paquette 2021",
       claim="SGD converges below the lr at which the Volterra kernel norm reaches 1 and diverges "
             "above it; this threshold approaches the exact mean-square threshold as d grows")
def critical_lr_check(ctx: CheckContext) -> list[Measurement]:
    import matplotlib.pyplot as plt

    out = []
    d = 500
    X, y, _ = _gaussian_data(d, 2 * d, ctx.seed + 7)
    spec = LeastSquaresSpectrum.from_data(X, y)
    eta_c = critical_lr(spec, 1)
    out.append(Measurement(
        quantity=f"d={d}: critical lr (discrete kernel norm = 1) vs 2B/tr H (continuous)",
        predicted=2.0 / spec.trace, measured=eta_c, tolerance=2.0 / d, relative=True,
        source="closed form η tr(H)/(2B) = 1", note="discrete vs continuous differ by O(η λ) = O(1/d)",
    ))
    problem = sg.LinearRegression(X, y)
    steps = 4000
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    for factor in (0.8, 1.25):
        lr = factor * eta_c
        res = sg.simulate(problem, sg.sgd(lr), steps=steps, replicas=16, batch_size=1,
                          seed=ctx.seed, record=("loss",), every=100, on_divergence="record",
                          progress=False)
        loss = res["loss"].values
        ratio = float(np.nanmean(loss[-1]) / loss[0].mean()) if np.all(np.isfinite(loss[-1])) \
            else np.inf
        model = HomogenizedSGD(spec, lr, 1)
        ax_s.semilogy(res["loss"]["step"].values, np.nanmean(loss, axis=1), label=f"SGD {factor}× η_c")
        if factor < 1:
            psi_inf = model.stationary_loss()
            meas = float(np.mean(loss[-5:]))
            out.append(Measurement(
                quantity=f"{factor}× η_c: final mean loss vs the Volterra limit L(ŵ)/(1−‖K‖)",
                predicted=psi_inf, measured=meas, tolerance=0.1, relative=True,
                source="homogenized stationary loss (eq. (59))",
                note="converges; 10%: ‖K‖=0.8 amplifies the O(1/d) bias by 1/(1−‖K‖) plus "
                     "s.e. of 16 replicas × 5 records",
            ))
        else:
            out.append(Measurement(
                quantity=f"{factor}× η_c: loss after {steps} steps / initial loss",
                predicted="diverges (> 1e3)", measured=f"{ratio:.3g} ({res.status})",
                passed=bool(res.status == "diverged" or ratio > 1e3),
                source="kernel norm > 1", note="Volterra predicts growth ×5e2 per 2000 steps here",
            ))
    ax_s.axhline(HomogenizedSGD(spec, 0.8 * eta_c, 1).stationary_loss(), color="k", ls=":",
                 label="Volterra limit at 0.8 η_c")
    ax_s.set(xlabel="step", ylabel="mean training loss", title=f"d={d}, N={2 * d}, B=1")
    ax_s.legend(fontsize=8)
    dims = (32, 48) if ctx.quick else (16, 32, 48, 64)
    gaps, gaps_gs = [], []
    for dd in dims:
        per, per_gs = [], []
        for s in range(2):
            Xs, _, _ = _gaussian_data(dd, 4 * dd, ctx.seed + dd + 1000 * s)
            ms = mean_square_lr_threshold(Xs, 1, rtol=1e-6)
            spec_s = LeastSquaresSpectrum.from_data(Xs, np.zeros(4 * dd))
            per.append(critical_lr(spec_s, 1) / ms - 1)
            per_gs.append(critical_lr(spec_s, 1, noise="gaussian_streaming") / ms - 1)
        gaps.append(float(np.mean(per)))
        gaps_gs.append(float(np.mean(per_gs)))
        out.append(Measurement(
            quantity=f"d={dd}: Gaussian-streaming critical lr / mean-square threshold − 1 "
                     f"(mean of 2 data sets)",
            predicted=0.0, measured=gaps_gs[-1], tolerance=3.0 / dd,
            source="mean_square_lr_threshold", note="keeps the rank-one term: the gap left is "
            "the data set's leverage fluctuation; same 3/d allowance",
        ))
        out.append(Measurement(
            quantity=f"d={dd}, N={4 * dd}: homogenized critical lr / mean-square threshold − 1 "
                     f"(mean of 2 data sets: {per[0]:.4f}, {per[1]:.4f})",
            predicted=0.0, measured=gaps[-1], tolerance=3.0 / dd,
            source="mean_square_lr_threshold (exact moment map, bisection)",
            note="O(1/d) gap from the dropped rank-one and leverage terms; 3/d allowance "
                 "(1-2/d measured)",
        ))
    ax_t.plot(dims, np.asarray(gaps) * np.asarray(dims), "o-", label="d·(η_hom/η_ms − 1)")
    ax_t.plot(dims, np.asarray(gaps_gs) * np.asarray(dims), "s-",
              label="d·(η_gauss/η_ms − 1), Gaussian-streaming")
    ax_t.axhline(3.0, color="k", ls=":", label="tolerance (3/d)")
    ax_t.set(xlabel="d (N = 4d)", ylabel="d × relative gap", ylim=(-1, 3.5),
             title="critical lr vs exact mean-square threshold")
    ax_t.legend(fontsize=8)
    ctx.savefig(fig, "homogenized_critical_lr")
    return out


@check("homogenized.power_law_exponent",
       paper="Paquette, Paquette, Xiao & Pennington 2024 (4+3 phases)",
       claim="for λ_j = j^{-2α} and target b_j = j^{-β}, streaming SGD's risk decays as "
             "t^{-min(ρ_F, ρ_K)} (forcing or kernel phase)")
def power_law_exponent(ctx: CheckContext) -> list[Measurement]:
    import matplotlib.pyplot as plt

    d = 200
    n = 20_000 if ctx.quick else 60_000  # one-pass regime: steps·B/N ≤ 0.15
    steps = 3000 if ctx.quick else 9000
    R = 48 if ctx.quick else 128
    window = (100, steps)
    alpha = 1.0
    out = []
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for beta, frac in ((0.5, 0.5), (1.5, 0.5)):
        rng = np.random.default_rng(ctx.seed + int(10 * beta))
        j = np.arange(1, d + 1)
        X = rng.standard_normal((n, d)) * j ** -alpha
        y = X @ (j ** -beta)  # noiseless: L(ŵ) = 0
        data_spec = LeastSquaresSpectrum.from_data(X, y)
        # tr(H)/λ_max ≈ 1.6: the rank-one noise term is not negligible; Gaussian streaming
        lr = frac * critical_lr(data_spec, 1, noise="gaussian_streaming")
        res = sg.simulate(sg.LinearRegression(X, y), sg.sgd(lr), steps=steps, replicas=R,
                          batch_size=1, seed=ctx.seed, record=("loss",), every=10,
                          progress=False)
        t = res["loss"]["step"].values.astype(float)
        loss = res["loss"].values
        idx = log_spaced_indices(t, 40)
        fit = fit_power_law(t[idx], loss[idx], window=window, n_boot=100, seed=ctx.seed)
        measured = -fit.params["c"]
        lo, hi = sorted((-fit.ci["c"][0], -fit.ci["c"][1]))
        pred = power_law_risk_exponent(alpha, beta)
        data_curve = HomogenizedSGD(data_spec, lr, 1, noise="gaussian_streaming").risk(steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowIntrinsicDimensionWarning)
            hom_curve = HomogenizedSGD(data_spec, lr, 1).risk(steps)["loss"]
        vfit = fit_power_law(t[idx], data_curve["loss"][t[idx].astype(int)], window=window)
        bias = abs(-vfit.params["c"] - pred["risk"])
        phase = "kernel" if pred["phase"] else "forcing"
        out.append(Measurement(
            quantity=f"β={beta} ({phase} phase, ρ_F={pred['forcing']:.3g}, ρ_K={pred['kernel']:.3g}): "
                     f"risk exponent, SGD fit on [{window[0]}, {window[1]}] [95% CI {lo:.3f}, {hi:.3f}]",
            predicted=pred["risk"], measured=measured,
            tolerance=float(0.5 * (hi - lo) + bias),
            source="closed form min(ρ_F, ρ_K)",
            note=f"CI half-width + finite-window offset of the Volterra curve on the same "
                 f"window ({-vfit.params['c']:.3f} vs {pred['risk']:.3f})",
        ))
        out.append(Measurement(
            quantity=f"β={beta}: SGD exponent vs the Volterra curve's on the same window",
            predicted=float(-vfit.params["c"]), measured=measured,
            tolerance=float(0.5 * (hi - lo)) + 0.02,
            source="Gaussian-streaming Volterra solve on the data spectrum",
            note="95% bootstrap CI half-width over replicas + 0.02 (one-pass vs 15% resampling)",
        ))
        ax.loglog(t[1:], loss[1:].mean(axis=1), label=f"SGD β={beta} (mean of {R})")
        win = idx[t[idx] >= window[0]]
        ti = t[win].astype(int)
        boot_rng = np.random.default_rng(ctx.seed)
        resamples = [boot_rng.integers(0, R, R) for _ in range(200)]
        for name, curve in (("Gaussian-streaming", data_curve["loss"]), ("homogenized", hom_curve)):
            mean_log = float(np.mean(np.log(loss[win].mean(axis=1) / curve[ti])))
            boot = [np.mean(np.log(loss[win][:, b].mean(axis=1) / curve[ti])) for b in resamples]
            lo_b, hi_b = np.percentile(boot, [2.5, 97.5])
            asserted = name == "Gaussian-streaming"
            out.append(Measurement(
                quantity=f"β={beta}: mean over the window of log(E_sim / ψ), {name} equation "
                         f"[95% bootstrap CI {lo_b:.3f}, {hi_b:.3f}]",
                predicted=0.0, measured=mean_log,
                tolerance=float(0.5 * (hi_b - lo_b) + 0.1) if asserted else None,
                passed=None if asserted else True,
                source=f"{name} Volterra solve on the data spectrum",
                note="CI half-width + 0.1 (the data set's own fourth moments: the exact fixed-data "
                     "moments differ from the Gaussian-streaming curve by 2-20% at N = 100d, d=30)"
                     if asserted else "reported, not asserted: tr(H)/λ_max = 1.6 violates the "
                     "homogenized assumption",
            ))
        ax.loglog(t[1:], data_curve["loss"][t[1:].astype(int)], "k--", lw=0.8,
                  label=f"Gaussian-streaming Volterra, β={beta}")
        ax.loglog(t[1:], hom_curve[t[1:].astype(int)], "k:", lw=0.8,
                  label=f"homogenized Volterra, β={beta} (assumption violated)")
        ax.loglog(t[idx], fit.predict(t[idx]), ":", lw=2,
                  label=f"fit t^-{measured:.2f} (pred {pred['risk']:.2f})")
    ax.axvspan(*window, color="0.9", zorder=0)
    ax.set(xlabel="step", ylabel="training loss", title=f"power-law spectrum α={alpha}, d={d}")
    ax.legend(fontsize=8)
    ctx.savefig(fig, "homogenized_power_law")
    return out
