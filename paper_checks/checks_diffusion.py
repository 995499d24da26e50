"""Diffusion laws: Kunin et al.'s anomalous exponent and Hoffer et al.'s ultra-slow diffusion.

PAPERS.md §5 and §6, checks 7 (anomalous exponent 1/p on power-law spectra, ≈1 for isotropic
noise, saturation with weight decay) and 8 (ultra-slow diffusion on random potentials: Sinai's
walk, ``⟨x²⟩ ∝ (log t)⁴``, preferred over a power law).

Closed form used here (derived in this module's docstring, β = 0, per mode i with curvature
``a_i = λ_i + λ_wd`` and per-step noise variance ``c_i = C_ii / B``): from the stationary start
``θ_0 ~ N(0, diag Var_i)`` with ``Var_i = η c_i / (a_i (2 − η a_i))`` (the fixed point of
``Var ← (1 − ηa)² Var + η² c``), ``θ_k = (1 − ηa)^k θ_0 + noise independent of θ_0``, so
``Cov(θ_k, θ_0) = (1 − ηa)^k Var`` and ``E‖θ_k − θ_0‖² = Σ_i 2 Var_i (1 − (1 − η a_i)^k)``.
With ``λ_i = i^−p`` and ``C ∝ H`` every mode has the same ``Var_i ≈ ηc/2``, and the modes with
``η λ_i k ≳ 1`` (``i ≲ (ηk)^{1/p}``) have saturated: ``E‖θ_k − θ_0‖² ∝ k^{1/p}`` in the window
``1/(ηλ_1) ≪ k ≪ 1/(ηλ_d)``.

Heavy-ball momentum (PyTorch convention ``buf ← β buf + g``, ``θ ← θ − η buf``): per mode
``x_{k+1} = φ₁ x_k − β x_{k−1} − η ξ_k`` with ``φ₁ = 1 + β − η a``, an AR(2) process. Its
stationary variance is ``Var = η c (1+β) / ((1−β) a (2(1+β) − η a))`` and its autocorrelation
``ρ_k = r₂^k + (ρ₁ − r₂)(r₁^k − r₂^k)/(r₁ − r₂)`` with ``ρ₁ = φ₁/(1+β)`` and ``r₁,₂`` the roots
of ``z² − φ₁ z + β``, so ``E‖θ_k − θ_0‖² = Σ_i 2 Var_i (1 − ρ_k,i)`` from stationarity. An
overdamped mode (``η a < (1 − √β)²``) relaxes in ``(1−β)/(η a)`` steps, an underdamped one
decays as ``β^{k/2}`` (e-fold time ``2/ln(1/β)`` ≈ 19 steps at β = 0.9); so the same mode
counting gives ``k^{1/p}`` with ``i*(k) = (ηk/(1−β))^{1/p}``, for ``k ≫ 1/(1−β)``.

Ultra-slow diffusion on a rough potential with ``E[(V(x+r) − V(x))²] ∝ r^α``: to get a distance
``x`` the walker must cross barriers ``~ σ x^{α/2}``, which takes ``t ~ exp(σ x^{α/2}/T)``, so
``x ~ (T log t / σ)^{2/α}`` and ``⟨x²⟩ ∝ (log t)^{4/α}`` (Sinai: α = 1).
"""

from __future__ import annotations

import numpy as np

import sgdsim as sg
from paper_checks.registry import CheckContext, Measurement, check
from sgdsim.analysis import Law, compare_laws, ensemble_msd, fit_power_law, plot_loglog
from sgdsim.analysis.plots import plot_vs_loglog
from sgdsim.lattice import brownian_potential, lattice_walk, rough_lattice_potential
from sgdsim.plotting import finish
from sgdsim.theory.lyapunov import NoisyQuadraticMoments


def exact_msd(k: np.ndarray, lam: np.ndarray, c: np.ndarray, eta: float, wd: float = 0.0):
    """``E‖θ_k − θ_0‖²`` of SGD (β = 0) from its stationary state, per the module docstring."""
    a = lam + wd
    var = eta * c / (a * (2.0 - eta * a))
    k = np.asarray(k, dtype=np.float64)[:, None]
    return np.sum(2.0 * var * -np.expm1(k * np.log1p(-eta * a)), axis=1)


def _window(lam: np.ndarray, eta: float) -> tuple[float, float]:
    """The anomalous window 1/(ηλ_1) ≪ k ≪ 1/(ηλ_d), a decade inside at each end."""
    return 10.0 / (eta * lam.max()), 0.1 / (eta * lam.min())


@check("kunin.anomalous_exponent_exact", paper="Kunin et al. 2021",
       claim="with λ_i ∝ i^(−p) and Σ ∝ H, E‖θ_k − θ_0‖² ∝ k^(1/p) (exact formula); isotropic "
             "noise gives exponent ≈ 1")
def anomalous_exponent_exact(ctx: CheckContext) -> list[Measurement]:
    eta, d = 0.5, 200_000
    out = []
    for p in (1.5, 2.0, 3.0):
        lam = sg.power_law_spectrum(d, p)
        # window by the number of saturated modes i*(k) = (ηk)^(1/p) ∈ [10, d/100]: the
        # unsaturated tail Σ_{i>i*} i^−p is cut by d only at relative order (i*/d)^(p−1)
        lo, hi = 10.0**p / eta, (d / 100) ** p / eta
        k = np.unique(np.geomspace(lo, hi, 40).round())
        fit = fit_power_law(k, exact_msd(k, lam, lam, eta))
        out.append(Measurement(
            quantity=f"exponent c of E‖θ_k−θ_0‖², p={p:g}, Σ ∝ H (exact formula)",
            predicted=1.0 / p, measured=fit.params["c"], tolerance=0.05,
            source="mode-counting: i*(k) = (ηk)^(1/p) saturated modes (module docstring)",
            note="exact curve, no noise; 0.05 covers the discreteness of the first modes and "
                 f"the (i*/d)^(p−1) edge term (window k ∈ [{lo:.3g}, {hi:.3g}], d={d})"))
    d = 2000
    lam = sg.power_law_spectrum(d, 2.0)
    lo = 10.0 / (eta * lam.max())
    hi = (d / 10) ** 2.0 / eta  # at most d/10 modes saturated: correction ≲ p/(p+1)·0.1
    k = np.unique(np.geomspace(lo, hi, 60).round())
    fit = fit_power_law(k, exact_msd(k, lam, np.ones(d), eta))
    out.append(Measurement(
        quantity="exponent c, isotropic noise C = I, p=2 (exact formula)",
        predicted=1.0, measured=fit.params["c"], tolerance=0.05,
        source="unsaturated modes each add η²c per step: E ≈ η²c·k·(d − p·i*/(p+1))",
        note="saturated fraction i*/d ≤ 0.1 in the window bends the slope by < 0.05"))
    return out


def _stationary_init(lam, c, eta, wd):
    var = eta * c / ((lam + wd) * (2.0 - eta * (lam + wd)))

    def init(rng, replicas):
        return rng.standard_normal((replicas, lam.size)) * np.sqrt(var)

    return init, var


def _simulate_msd(lam, c, eta, wd, steps, replicas, seed):
    problem = sg.Quadratic.from_eigenvalues(lam, noise=sg.AdditiveNoise(c))
    init, var = _stationary_init(lam, c, eta, wd)
    res = sg.simulate(problem, sg.sgd(eta, weight_decay=wd), steps=steps, replicas=replicas,
                      batch_size=1, seed=seed, init=init, record=("dist2",), backend="numpy",
                      progress=False)
    return ensemble_msd(res["dist2"], n_points=60, n_boot=0), var


@check("kunin.anomalous_exponent_sim", paper="Kunin et al. 2021",
       claim="simulated SGD from stationarity on a power-law quadratic diffuses anomalously with "
             "exponent 1/p (Σ ∝ H), ≈ 1 with isotropic noise, and saturates with weight decay")
def anomalous_exponent_sim(ctx: CheckContext) -> list[Measurement]:
    eta, d, p = 0.5, 100, 2.0
    R = 200 if ctx.quick else 1000
    lam = sg.power_law_spectrum(d, p)
    lo, hi = _window(lam, eta)
    out = []
    curve, _ = _simulate_msd(lam, lam, eta, 0.0, int(hi), R, ctx.seed)
    fit = fit_power_law(curve, window=(lo, hi), n_boot=300, seed=ctx.seed)
    k = curve.times[(curve.times >= lo) & (curve.times <= hi)]
    c_exact = fit_power_law(k, exact_msd(k, lam, lam, eta)).params["c"]
    out.append(Measurement(
        quantity=f"exponent c, p={p:g}, Σ ∝ H (simulation, {R} replicas)",
        predicted=1.0 / p, measured=fit.params["c"], tolerance=0.1,
        source="mode counting (module docstring)",
        note=f"bootstrap 95% CI {fit.ci['c'][0]:.3f}–{fit.ci['c'][1]:.3f}; exact formula on the "
             f"same window gives {c_exact:.3f}; 0.1 = CI half-width + finite-window bias"))
    curve_iso, _ = _simulate_msd(lam, np.full(d, 0.01), eta, 0.0, int(hi), R, ctx.seed + 1)
    fit_iso = fit_power_law(curve_iso, window=(lo, hi), n_boot=300, seed=ctx.seed)
    c_iso = fit_power_law(k, exact_msd(k, lam, np.full(d, 0.01), eta)).params["c"]
    out.append(Measurement(
        quantity=f"exponent c, isotropic noise (simulation, {R} replicas)",
        predicted=1.0, measured=fit_iso.params["c"], tolerance=0.1,
        source="unsaturated modes add η²c per step",
        note=f"bootstrap 95% CI {fit_iso.ci['c'][0]:.3f}–{fit_iso.ci['c'][1]:.3f}; exact formula "
             f"on the same window gives {c_iso:.3f} (d = {d}: saturated modes bend it)"))
    wd = 0.02  # saturation time 1/(η λ_wd) = 100 steps
    curve_wd, var = _simulate_msd(lam, lam, eta, wd, 5000, R, ctx.seed + 2)
    cmp = compare_laws(curve_wd, window=(1.0, 5000.0), laws=("power", "saturating"),
                       n_boot=300, seed=ctx.seed)
    out.append(Measurement(
        quantity="law of E‖θ_k−θ_0‖² with weight decay λ_wd=0.02",
        predicted=Law.SATURATING.value, measured=cmp.outcome.value,
        passed=cmp.outcome == Law.SATURATING, source="exact formula: every mode saturates",
        note=cmp.reason))
    plateau = float(2.0 * var.sum())
    late = curve_wd.samples[curve_wd.times >= 2000].mean()
    se = curve_wd.samples[curve_wd.times >= 2000].mean(axis=0).std(ddof=1) / np.sqrt(R)
    out.append(Measurement(
        quantity="plateau of E‖θ_k−θ_0‖² (k ≥ 2000 ≫ 1/(ηλ_wd))",
        predicted=plateau, measured=float(late), tolerance=float(5 * se),
        source="2 Σ_i Var_i, Var_i = ηc_i/(a_i(2 − ηa_i)) (closed form)",
        note="5 standard errors of the replica mean (replicas independent)"))
    ax = plot_loglog(curve, fits=[fit], label="noise Σ ∝ H")
    plot_loglog(curve_iso, fits=[fit_iso], ax=ax, label="isotropic noise")
    plot_loglog(curve_wd, fits=[cmp.fits["saturating"]], ax=ax, label=f"λ_wd = {wd:g}",
                title="SGD on a power-law quadratic: anomalous diffusion (Kunin et al. 2021)")
    finish(ax, legend="outside")
    ctx.savefig(ax.figure, "kunin_anomalous_diffusion")
    return out


@check("hoffer.sinai_ultraslow", paper="Hoffer et al. 2017",
       claim="a random walk on a Brownian (α = 1) potential diffuses ultra-slowly: "
             "⟨x²⟩ ∝ (log t)^(4) and median |x| ∝ (log t)^2, a log law preferred to a power law")
def sinai_ultraslow(ctx: CheckContext) -> list[Measurement]:
    walkers, steps = (1500, 100_000) if ctx.quick else (2000, 1_000_000)
    # T = σ/2: the Sinai regime sets in after a few steps (barriers ≫ T beyond ~4 sites)
    V = brownian_potential(6001, n_potentials=walkers, sigma=1.0, seed=ctx.seed)
    walk = lattice_walk(V, steps, walkers=walkers, temperature=0.5, n_records=50, seed=ctx.seed)
    curve = ensemble_msd(walk.to_dataarray(), n_boot=300, seed=ctx.seed)
    window = (100.0, float(steps))  # ≥ 3 decades
    cmp = compare_laws(curve, window=window, laws=("power", "log"), n_boot=300, seed=ctx.seed)
    gam = cmp.fits["log"]
    t_lo, t_mid = 100.0, steps / 10
    out = [
        Measurement(quantity="law preferred for ⟨x²⟩ (mean), window "
                             f"[{window[0]:g}, {window[1]:g}]",
                    predicted=Law.LOG.value, measured=cmp.outcome.value,
                    passed=cmp.outcome == Law.LOG, source="Sinai 1982",
                    note=cmp.reason + f"; naive power-law exponent "
                                      f"{cmp.fits['power'].params['c']:.2f}"),
    ]
    # Sinai's law holds as t → ∞; at t ≤ 1e5–1e6 the fitted exponents sit below it by an
    # O(1/ln t) correction. Fit at two run lengths and extrapolate (as in rough_field_ultraslow):
    # the claim passes if the law is inside the extrapolation's paired-bootstrap 95% CI. (The sign
    # of the raw drift alone is not required: between t = 1e4 and 1e5 it is often within noise.)
    for label, stat, scale, pred in (("⟨x²⟩ ∝ (log t)^γ", np.mean, 1.0, 4.0),
                                     ("median |x| ∝ (log t)^κ (κ = γ/2 of median x²)",
                                      np.median, 0.5, 2.0)):
        g1, g2, ginf, b2, binf = _gamma_extrapolated(curve, t_lo, t_mid, float(steps), 300,
                                                     ctx.seed, statistic=stat)
        g1, g2, ginf, b2, binf = (scale * g1, scale * g2, scale * ginf, scale * b2, scale * binf)
        ci2, ci_inf = np.percentile(b2, [2.5, 97.5]), np.percentile(binf, [2.5, 97.5])
        out.append(Measurement(
            quantity=f"{label}: exponent extrapolated from t_max = {t_mid:g} and {steps:g}",
            predicted=pred, measured=ginf, tolerance=float(0.5 * (ci_inf[1] - ci_inf[0])),
            passed=bool(ci_inf[0] <= pred <= ci_inf[1]), source="Sinai 1982",
            note=f"raw exponent {g1:.2f} (t ≤ {t_mid:g}) → {g2:.2f} (t ≤ {steps:g}, 95% CI "
                 f"{ci2[0]:.2f}–{ci2[1]:.2f}), biased low by the O(1/ln t) finite-time "
                 f"correction; O(1/ln t) extrapolation 95% CI {ci_inf[0]:.2f}–{ci_inf[1]:.2f}; "
                 "passes if the law is inside that CI"))
    out += [
        Measurement(quantity="walkers that reached the box edge", predicted=0,
                    measured=int(walk.hit_boundary.sum()), tolerance=0.0,
                    source="box of 6001 sites ≫ (T log t/σ)² ≈ 50",
                    note="a reflecting wall would bias ⟨x²⟩; none may touch it"),
    ]
    ax = plot_vs_loglog(curve, fits=[gam, cmp.fits["power"]], label="walkers",
                        title="Sinai walk (Brownian potential): ⟨x²⟩ ∝ (ln t)^4")
    ctx.savefig(ax.figure, "hoffer_sinai_ultraslow")
    return out


def heavy_ball_msd(k: np.ndarray, lam: np.ndarray, c: np.ndarray, eta: float, beta: float):
    """``E‖θ_k − θ_0‖²`` of heavy ball from its stationary state (AR(2) form, module docstring).

    ``k`` (n,) steps, ``lam`` (d,) curvatures, ``c`` (d,) per-step noise variances; returns (n,).
    """
    a = np.asarray(lam, dtype=np.float64)
    phi1 = 1.0 + beta - eta * a
    var = eta * c * (1.0 + beta) / ((1.0 - beta) * a * (2.0 * (1.0 + beta) - eta * a))
    disc = np.sqrt((phi1**2 - 4.0 * beta).astype(np.complex128))
    r1, r2 = 0.5 * (phi1 + disc), 0.5 * (phi1 - disc)
    rho1 = phi1 / (1.0 + beta)
    k = np.asarray(k, dtype=np.float64)[:, None]
    split = np.abs(r1 - r2) > 1e-7  # near critical damping use the confluent limit k r^(k−1)
    gap = np.where(split, r1 - r2, 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        dd = np.where(split, (r1**k - r2**k) / gap, k * r1 ** (k - 1.0))
    rho = (r2**k + (rho1 - r2) * dd).real
    return np.sum(2.0 * var * (1.0 - rho), axis=1)


_BETA = 0.9  # PyTorch heavy ball, as in Kunin et al.'s experiments


def _momentum_window(p: float, eta: float, d: int, beta: float = _BETA) -> tuple[float, float]:
    """Window in steps where ``i*(k) = (ηk/(1−β))^{1/p}`` lies in [10, d/100] and
    ``k ≥ 20/(1−β)`` (≈ 10 e-folds of the underdamped modes' ``β^{k/2}`` decay)."""
    lo = max((1.0 - beta) * 10.0**p / eta, 20.0 / (1.0 - beta))
    return lo, (1.0 - beta) * (d / 100.0) ** p / eta


@check("kunin.anomalous_exponent_momentum", paper="Kunin et al. 2021",
       claim="with heavy-ball momentum (β = 0.9), λ_i ∝ i^(−p) and Σ ∝ H, E‖θ_k − θ_0‖² from "
             "stationarity still grows as k^(1/p) (exact formula and simulation)")
def anomalous_exponent_momentum(ctx: CheckContext) -> list[Measurement]:
    beta = _BETA
    out = []
    # the AR(2) closed form against the library's per-mode Lyapunov solve (independent route)
    lam = sg.power_law_spectrum(1500, 2.0)
    ks = np.array([1, 2, 3, 10, 57, 200, 1000, 10**4, 10**6])
    ref = NoisyQuadraticMoments(lam, lam, 0.5, momentum=beta).msd(ks)
    dev = float(np.max(np.abs(heavy_ball_msd(ks, lam, lam, 0.5, beta) / ref - 1.0)))
    out.append(Measurement(
        quantity="max relative gap, AR(2) closed form vs Lyapunov-solve msd (d=1500, p=2)",
        predicted=0.0, measured=dev, tolerance=1e-8,
        source="NoisyQuadraticMoments.msd (2×2 stationary Stein solve, matrix powers)",
        note="two exact routes; 1e-8 allows round-off in r^k near critical damping"))
    eta, d = 0.5, 100_000
    for p in (1.5, 2.0, 3.0):
        lam = sg.power_law_spectrum(d, p)
        lo, hi = _momentum_window(p, eta, d)
        k = np.unique(np.geomspace(lo, hi, 30).round())
        fit = fit_power_law(k, heavy_ball_msd(k, lam, lam, eta, beta))
        out.append(Measurement(
            quantity=f"exponent c, p={p:g}, Σ ∝ H, β={beta:g} (exact formula)",
            predicted=1.0 / p, measured=fit.params["c"], tolerance=0.05,
            source="mode counting with i*(k) = (ηk/(1−β))^(1/p) (module docstring)",
            note="exact curve, no noise; 0.05 covers the first modes' discreteness and the "
                 f"(i*/d)^(p−1) edge term (window k ∈ [{lo:.3g}, {hi:.3g}], η={eta:g}, d={d})"))
    R = 300 if ctx.quick else 1000
    steps = 2000
    lo = 20.0 / (1.0 - beta)
    ax = None
    # (p, η, d): η puts i*(lo) at 10–30 modes, d ≥ 20·i*(steps) keeps the edge term ≲ 0.04
    for j, (p, eta, d) in enumerate([(1.5, 0.05, 2000), (2.0, 0.1, 1000), (3.0, 0.5, 500)]):
        lam = sg.power_law_spectrum(d, p)
        mom = NoisyQuadraticMoments(lam, lam, eta, momentum=beta)
        sd = np.sqrt(mom.stationary_mode_variance())
        problem = sg.Quadratic.from_eigenvalues(lam, noise=sg.AdditiveNoise(lam))
        res = sg.simulate(problem, sg.sgd(eta, momentum=beta), steps=steps, replicas=R,
                          batch_size=1, seed=ctx.seed + 10 + j, record=("dist2",),
                          init=lambda rng, n, sd=sd: rng.standard_normal((n, sd.size)) * sd,
                          backend="numba", progress=False)
        curve = ensemble_msd(res["dist2"], n_points=60, n_boot=0)
        fit = fit_power_law(curve, window=(lo, steps), n_boot=300, level=0.99, seed=ctx.seed)
        k = curve.times[(curve.times >= lo) & (curve.times <= steps)].astype(np.int64)
        # θ_0 ~ stationary marginal, buffer empty (simulate's PyTorch first step): exact mean
        # over θ_0 = the fixed-start formula at θ_0,i = sd_i (per-mode quadratic in θ_0,i)
        c_ex = fit_power_law(k, mom.msd(k, theta0=sd)).params["c"]
        c_st = fit_power_law(k, heavy_ball_msd(k, lam, lam, eta, beta)).params["c"]
        ci = fit.ci["c"]
        out.append(Measurement(
            quantity=f"exponent c, p={p:g}, β={beta:g} (simulation, {R} replicas, d={d}, η={eta:g})",
            predicted=1.0 / p, measured=fit.params["c"], tolerance=0.1,
            source="mode counting (module docstring)",
            note=f"99% bootstrap CI {ci[0]:.3f}–{ci[1]:.3f}; window k ∈ [{lo:g}, {steps}]; 0.1 "
                 "= CI half-width + the finite-d edge term of the exact curve"))
        out.append(Measurement(
            quantity=f"exact-formula exponent on the same window, p={p:g}",
            predicted=c_ex, measured=fit.params["c"], passed=bool(ci[0] <= c_ex <= ci[1]),
            source="NoisyQuadraticMoments.msd, θ_0 from the stationary marginal, empty buffer",
            note=f"passes if inside the simulation's 99% bootstrap CI (3 such tests); from a "
                 f"fully stationary (θ, buf) start the exact fit is {c_st:.3f}"))
        ax = plot_loglog(curve, fits=[fit], ax=ax, label=f"λ_i = i^−{p:g}",
                         title=f"Heavy ball (β = {beta:g}) on λ_i = i^−p, Σ ∝ H: "
                               "E‖θ_k − θ_0‖² ∝ k^(1/p)")
    finish(ax, legend="outside")
    ctx.savefig(ax.figure, "kunin_anomalous_momentum")
    return out


def _crossover_distance(alpha: float) -> float:
    """Distance beyond which the α-law barrier ``σ x^{α/2}`` exceeds the extreme lattice-scale
    barrier ``σ √(2 ln x)`` of ~x nearly independent increments (1 if it always does)."""
    from scipy.optimize import brentq

    def f(lx: float) -> float:
        return 0.5 * alpha * lx - 0.5 * np.log(2.0 * lx)

    return 1.0 if f(1.0) >= 0 else float(np.exp(brentq(f, 1.0, 200.0)))


def _gamma_extrapolated(curve, t_lo: float, t_mid: float, t_hi: float, n_boot: int, seed: int,
                        statistic=np.mean):
    """γ of ``stat(x²) = a (log t)^γ`` (``statistic`` over walkers: mean or median) fitted on
    [t_lo, t_mid] and [t_lo, t_hi], and the O(1/ln t) extrapolation
    ``γ∞ = (γ₂ ln t_hi − γ₁ ln t_mid)/(ln t_hi − ln t_mid)`` (from ``γ_eff = γ∞ + b/ln t_max``),
    each with a paired replica bootstrap (same resamples for both windows).
    Returns ``(γ₁, γ₂, γ∞, samples of γ₂, samples of γ∞)``."""
    t, S = curve.times, curve.samples
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, S.shape[1], size=(n_boot, S.shape[1]))
    M = np.vstack([statistic(S, axis=1)] + [statistic(S[:, i], axis=1) for i in idx])  # (1+B, T)
    g = []
    for hi in (t_mid, t_hi):
        w = (t >= t_lo) & (t <= hi)
        X = np.vstack([np.ones(w.sum()), np.log(np.log(t[w]))]).T
        g.append(np.linalg.lstsq(X, np.log(M[:, w]).T, rcond=None)[0][1])
    l1, l2 = np.log(t_mid), np.log(t_hi)
    ginf = (g[1] * l2 - g[0] * l1) / (l2 - l1)
    return float(g[0][0]), float(g[1][0]), float(ginf[0]), g[1][1:], ginf[1:]


@check("hoffer.rough_field_ultraslow", paper="Hoffer et al. 2017",
       claim="a random walk on a rough potential with E[(V(x+r) − V(x))²] ∝ r^α diffuses as "
             "⟨x²⟩ ∝ (log t)^(4/α); resolvable at quick sizes for α = 1.5, not for α = 0.5")
def rough_field_ultraslow(ctx: CheckContext) -> list[Measurement]:
    walkers, steps = (1500, 100_000) if ctx.quick else (2000, 1_000_000)
    temperature, t_lo, t_mid = 0.5, 100.0, steps / 10  # T = σ/2 as in hoffer.sinai_ultraslow
    out = []
    ax = None
    for j, alpha in enumerate((0.5, 1.5)):
        # periodic field of period 8192 ≫ the largest excursion (~10² sites), reflecting box
        V = rough_lattice_potential(8192, alpha=alpha, n_potentials=walkers, seed=ctx.seed + j)
        walk = lattice_walk(V, steps, walkers=walkers, temperature=temperature, n_records=50,
                            seed=ctx.seed + j)
        curve = ensemble_msd(walk.to_dataarray(), n_boot=0)
        cmp = compare_laws(curve, window=(t_lo, float(steps)), laws=("power", "log"),
                           n_boot=300, seed=ctx.seed)
        g1, g2, ginf, b2, binf = _gamma_extrapolated(curve, t_lo, t_mid, float(steps), 300,
                                                     ctx.seed)
        ci2, ci_inf = np.percentile(b2, [2.5, 97.5]), np.percentile(binf, [2.5, 97.5])
        pred = 4.0 / alpha
        toward = np.sign(g2 - g1) == np.sign(pred - g2)  # the drift points at 4/α
        x_rms = float(np.sqrt(curve.samples[-1].mean()))
        x_c = _crossover_distance(alpha)
        head = f"α={alpha:g}, T={temperature:g}, t ∈ [{t_lo:g}, {steps:g}]"
        fin = (f"γ = {g1:.2f} (t ≤ {t_mid:g}) → {g2:.2f} (t ≤ {steps:g}, 95% CI "
               f"{ci2[0]:.2f}–{ci2[1]:.2f}); O(1/ln t) extrapolation γ∞ = {ginf:.2f} (95% CI "
               f"{ci_inf[0]:.2f}–{ci_inf[1]:.2f})")
        if x_rms > 3.0 * x_c:  # "x ≫ x_c" read as a factor 3
            out.append(Measurement(
                quantity=f"law preferred for ⟨x²⟩, {head}", predicted=Law.LOG.value,
                measured=cmp.outcome.value, passed=cmp.outcome == Law.LOG,
                source="barrier argument (module docstring)",
                note=cmp.reason + f"; naive power-law exponent {cmp.fits['power'].params['c']:.2f}"))
            out.append(Measurement(
                quantity=f"γ∞ in ⟨x²⟩ ∝ (log t)^γ, extrapolated from t_max = {t_mid:g} and "
                         f"{steps:g}, {head}",
                predicted=pred, measured=ginf,
                tolerance=float(0.5 * (ci_inf[1] - ci_inf[0])),
                passed=bool(toward and ci_inf[0] <= pred <= ci_inf[1]),
                source="barrier argument: x ~ (T log t/σ)^(2/α)",
                note=fin + "; the raw γ at t ≤ t_max is biased by the O(1/ln t) finite-time "
                           "correction (it drifts toward 4/α with t_max); passes if the drift "
                           "points at 4/α and 4/α is inside γ∞'s paired-bootstrap 95% CI"))
        else:
            out.append(Measurement(
                quantity=f"resolvable at this size? {head}",
                predicted=f"no: x_rms < 3·x_c = {3 * x_c:.0f}",
                measured=f"{cmp.outcome.value} preferred, x_rms = {x_rms:.0f}, γ = {g2:.2f}",
                passed=bool(x_rms <= 3.0 * x_c),
                source="x_c: σx^(α/2) = σ√(2 ln x), lattice-scale extreme barriers dominate below",
                note=f"cannot resolve (log t)^{pred:g} here: the α-law barriers do not yet "
                     f"dominate, so even γ∞ misses {pred:g}; {fin}; {cmp.reason}"))
            out.append(Measurement(
                quantity=f"direction of the γ drift with run length, {head}",
                predicted=f"toward {pred:g}", measured=f"{g1:.2f} → {g2:.2f}",
                passed=bool(toward), source="pre-asymptotic γ_eff relaxes toward 4/α",
                note="sign of γ(t ≤ t_max) − γ(t ≤ t_max/10) vs 4/α − γ; magnitude not claimed"))
        out.append(Measurement(
            quantity=f"walkers that reached the box edge, α={alpha:g}", predicted=0,
            measured=int(walk.hit_boundary.sum()), tolerance=0.0,
            source="box of 8192 sites ≫ the excursions",
            note="a reflecting wall (or the field's period) would bias ⟨x²⟩; none may touch it"))
        ax = plot_vs_loglog(curve, fits=[cmp.fits["log"], cmp.fits["power"]], ax=ax,
                            label=f"α = {alpha:g}",
                            title="Walk on a rough potential, increments ∝ r^α: ⟨x²⟩ ∝ (ln t)^(4/α)")
    finish(ax, legend="outside")
    ctx.savefig(ax.figure, "hoffer_rough_field_ultraslow")
    return out
