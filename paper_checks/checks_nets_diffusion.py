"""Diffusion of the weights of a small network: Kunin et al. (after convergence) and Hoffer et al.

PAPERS.md §5 / §7.7 and §6 / §7.8, on the label-noise teacher–student regression set
(:func:`sgdsim.nets.teacher_student`) with a small tanh MLP and loss ``‖f − y‖²`` (mean over
samples, no ½).

* ``kunin.net_anomalous_diffusion``: long after the loss has converged, SGD keeps moving:
  ``E‖θ_{t0+k} − θ_{t0}‖²`` grows as ``k^c`` with ``0 < c < 1`` (fit as the authors did: least
  squares of the log MSD on log k over the last 2/3 of the log-time window; replica-bootstrap CI).
* ``hoffer.net_log_distance``: in the initial high-learning-rate phase ``‖w_t − w_0‖`` grows
  like a power of ``log t`` (ultra-slow diffusion); the log law is compared with a power law by
  :func:`sgdsim.analysis.compare_laws`, and the local exponent ``d log D / d log t`` must fall
  like ``1/log t`` (log law) rather than stay constant (power law).

Many independent SGD replicas are run at once by :func:`sgdsim.nets.replicas.replica_sgd`, a
NumPy implementation of the same update as :func:`sgdsim.nets.train` (``θ ← θ − η(g_B + λ_wd θ)``)
vectorized over replicas; its gradient is held against the fused :class:`sgdsim.nets.MLPHessian`
gradient inside each check (an independent implementation, torch), so a wrong gradient fails the
check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from paper_checks.registry import CheckContext, CheckSkipped, Measurement, check


def _nets():
    try:
        import torch

        from sgdsim import nets
    except ImportError as exc:  # pragma: no cover - without the nets extra
        raise CheckSkipped(f"needs the nets extra (torch): {exc}") from exc
    torch.set_num_threads(1)
    return nets


def gradient_agreement(nets: Any, spec: Any, data: Any, theta: np.ndarray, loss: str) -> float:
    """Max relative difference between :func:`~sgdsim.nets.replicas.replica_gradients` and
    ``MLPHessian.gradient`` on the full data set, over the rows of ``theta (R, n_params)``."""
    from sgdsim.nets.replicas import replica_gradients

    X = np.broadcast_to(data.X, (theta.shape[0], *data.X.shape))
    Y = np.broadcast_to(data.y, (theta.shape[0], *data.y.shape))  # labels stay integer
    g = replica_gradients(spec, theta, X, Y, loss)
    err = 0.0
    for r in range(theta.shape[0]):
        ref = nets.MLPHessian(spec, theta[r], data.X, data.y, loss).gradient
        err = max(err, float(np.max(np.abs(g[r] - ref)) / np.max(np.abs(ref))))
    return err


def _digits_setup(nets: Any, seed: int, replicas: int):
    """Digits (1797 × 64, 10 classes), a 64-16-10 tanh MLP, one LeCun init per replica."""
    data = nets.digits()
    spec = nets.MLPSpec((64, 16, 10), "tanh")
    theta0 = np.array([nets.init_params(spec, seed=seed * 1000 + r) for r in range(replicas)])
    return data, spec, theta0


def _log_records(steps: int, n: int = 40) -> np.ndarray:
    return np.unique(np.r_[0, np.geomspace(1, steps, n).astype(np.int64)])


@check("kunin.net_anomalous_diffusion", paper="Kunin et al. 2021",
       claim="after the loss of a small net has converged, SGD keeps moving: "
             "E‖θ_{t0+k} − θ_{t0}‖² grows as k^c with 0 < c < 1 (anomalous diffusion)")
def net_anomalous_diffusion(ctx: CheckContext) -> list[Measurement]:
    nets = _nets()
    from sgdsim.analysis import ensemble_msd, fit_power_law, last_fraction_window
    from sgdsim.nets.replicas import replica_sgd

    # Kunin et al.'s ingredients on a small scale: cross-entropy, weight decay (so a stationary
    # state exists), η = 0.5, B = 32 from 1797 digits; burn-in until the loss is flat
    R = 8 if ctx.quick else 16
    # burn-in: with 5000 steps the regularized loss still falls ~5% per 2500 steps and the
    # leftover drift makes the last decade of the MSD near-ballistic (local slope ≈ 0.9); 20 000
    # steps remove it
    burn, steps = (20_000, 10_000) if ctx.quick else (40_000, 40_000)
    eta, B, wd = 0.5, 32, 5e-3
    data, spec, theta0 = _digits_setup(nets, ctx.seed, R)
    grad_err = gradient_agreement(nets, spec, data, theta0[:2], "cross_entropy")
    kw = dict(lr=eta, batch_size=B, weight_decay=wd, loss="cross_entropy")
    Tb = replica_sgd(spec, data, theta0, steps=burn, record=[burn // 2, burn],
                     seed=ctx.seed + 1, **kw)

    def loss(th):
        return float(np.mean([nets.MLPHessian(spec, t, data.X, data.y, "cross_entropy")
                              .loss_value + 0.5 * wd * t @ t for t in th]))

    rec = _log_records(steps)
    traj = replica_sgd(spec, data, Tb[-1], steps=steps, record=rec, seed=ctx.seed + 2, **kw)
    l_half = loss(Tb[0])
    l_rec = np.array([loss(th) for th in traj])  # replica-mean loss at every record
    l_start = float(l_rec[rec <= steps // 10].mean())  # first decade of lags (most records)
    l_end = float(l_rec[rec >= steps // 10].mean())  # last decade
    msd = ensemble_msd(traj, rec, kind="positions", n_boot=0)
    window = last_fraction_window(msd.times, 2.0 / 3.0, scale="log")
    fit = fit_power_law(msd, window=window, n_boot=500, seed=ctx.seed)
    lo, hi = fit.ci["c"]
    t = msd.times
    tail = t >= t[-1] / 10
    local = float(np.polyfit(np.log(t[tail]), np.log(msd.msd[tail]), 1)[0])
    drift = abs(l_end - l_start) / l_start
    from sgdsim.plotting import figure, finish

    fig, ax = figure(width=5.2, height=3.8)
    ax.loglog(t, msd.msd, "o", ms=3, label="replica mean")
    tw = t[(t >= window[0]) & (t <= window[1])]
    ax.loglog(tw, fit.predict(tw), "-", label=f"power-law fit ∝ k^{fit.params['c']:.2f}")
    finish(ax, title="MLP at a minimum: sub-diffusive SGD (Kunin et al. 2021)",
           xlabel="steps k after convergence", ylabel="E‖θ_{t0+k} − θ_{t0}‖²")
    ctx.savefig(fig, "kunin_net_anomalous_diffusion")
    return [
        Measurement(
            quantity="max relative gap: vectorized replica gradient vs MLPHessian.gradient",
            predicted=0.0, measured=grad_err, tolerance=1e-10,
            source="independent implementation (torch, fused R-operator module)",
            note="same float64 sums in another order: round-off ~1e-15",
        ),
        Measurement(
            quantity=f"relative change of the regularized loss over the {steps} measured steps "
                     f"(after {burn} burn-in steps): mean over k ≤ {steps // 10} vs k ≥ {steps // 10} "
                     f"(loss {l_half:.4g} at burn/2)",
            predicted=0.0, measured=drift, tolerance=0.03,
            source="premise of the claim: the loss has converged before t0",
            note="record-averaged loss: measured ≤ 0.9% at seeds 0–3; with a 5000-step burn-in "
                 "it still falls ≈ 5% per 2500 steps: 3%",
        ),
        Measurement(
            quantity="local exponent of the MSD over the last decade of lags (still growing?)",
            predicted="> 0.1", measured=local, passed=bool(local > 0.1),
            source="Kunin et al. 2021 (parameters keep moving long after convergence)",
            note="one-sided: a confined (saturated) walk has exponent → 0",
        ),
        Measurement(
            quantity=f"power-law exponent c of the MSD over k ∈ [{window[0]:.0f}, "
                     f"{window[1]:.0f}] (last 2/3 of the log-time range), {R} replicas",
            predicted="0 < c < 1", measured=f"{fit.params['c']:.3f} (95% CI {lo:.3f}–{hi:.3f})",
            passed=bool(0.0 < lo and hi < 1.0),
            source="Kunin et al. 2021 (anomalous diffusion after convergence)",
            note="replica-bootstrap 95% CI must lie inside (0, 1); per-decade slopes vary "
                 "(≈0.2–0.5), so c is an average over the window",
        ),
    ]


@check("hoffer.net_log_distance", paper="Hoffer et al. 2017",
       claim="in the initial high-learning-rate phase the distance ‖w_t − w_0‖ of a small net "
             "grows logarithmically in t: a (log t)^γ law is preferred over a power law")
def net_log_distance(ctx: CheckContext) -> list[Measurement]:
    nets = _nets()
    from sgdsim.analysis import Law, compare_laws, ensemble_msd
    from sgdsim.nets.replicas import replica_sgd

    R = 8 if ctx.quick else 16
    steps = 10_000 if ctx.quick else 30_000
    eta, B = 0.5, 32  # a high constant learning rate, no schedule (Hoffer's first phase)
    data, spec, theta0 = _digits_setup(nets, ctx.seed, R)
    rec = _log_records(steps, 50)
    traj = replica_sgd(spec, data, theta0, lr=eta, batch_size=B, steps=steps, record=rec,
                       loss="cross_entropy", seed=ctx.seed + 1)
    msd = ensemble_msd(traj, rec, kind="positions", n_boot=0)
    window = (10.0, float(steps))  # ≥ 3 decades (PAPERS.md §6), after the first ~10 steps
    cmp = compare_laws(msd, laws=("power", "log"), window=window, n_boot=500,
                       seed=ctx.seed)
    t = msd.times
    slope = np.gradient(np.log(msd.msd), np.log(t))
    early = float(np.mean(slope[(t >= 10) & (t <= 100)]))
    late = float(np.mean(slope[t >= steps / 10]))
    from sgdsim.plotting import figure, finish

    fig, ax = figure(width=5.2, height=3.8)
    ax.semilogx(t, np.sqrt(msd.msd), "o", ms=3, label="rms over replicas")
    tw = t[t >= window[0]]
    for law, f in cmp.fits.items():
        ax.semilogx(tw, np.sqrt(f.predict(tw)), label=f"{law}-law fit")
    finish(ax, title="MLP weight distance follows a log law, not a power law (Hoffer et al. 2017)",
           xlabel="step t", ylabel="distance ‖w_t − w_0‖")
    ctx.savefig(fig, "hoffer_net_log_distance")
    gam = cmp.fits["log"].params["gamma"] / 2
    return [
        Measurement(
            quantity=f"law of ‖w_t − w_0‖² over t ∈ [10, {steps}] (digits, 64-16-10, CE, η={eta}, "
                     f"B={B}, {R} replicas)",
            predicted="log", measured=f"{cmp.outcome.value}: {cmp.reason}",
            passed=bool(cmp.outcome == Law.LOG),
            source="Hoffer et al. 2017 (‖w_t − w_0‖ ~ log t in the high-lr phase)",
            note=f"AIC gap ≥ 10 and ≥ 95% bootstrap wins (compare_laws); ‖w_t − w_0‖ ∝ "
                 f"(log t)^{gam:.2f}. On separable data CE also predicts log growth "
                 "(implicit bias), so this does not single out the random-potential mechanism",
        ),
        Measurement(
            quantity="local exponent d log‖Δw‖²/d log t: mean over t ∈ [10, 100] vs last decade",
            predicted="decreasing (log law: ∝ 1/log t; power law: constant)",
            measured=f"{early:.2f} → {late:.2f}", passed=bool(late < 0.5 * early),
            source="(log t)^γ has local exponent γ/log t",
            note="log law: ratio ≈ log(√10·10)/log(√10·1e3) ≈ 0.43 (measured lower: the early "
                 "window is still in the transient); power law: 1; threshold 0.5",
        ),
    ]
