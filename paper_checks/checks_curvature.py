"""Andreyev & Beneventano 2024: Batch Sharpness and its relatives on a tiny linear regression.

PAPERS.md §7.4. For linear regression ``g_B = X_Bᵀr_B/B`` and ``H_B = X_BᵀX_B/B`` are exact, so
every expectation over batches can be computed exactly by enumerating all multisets of ``B``
indices (with their multinomial probabilities). The Monte Carlo estimators (seeded, stopped on a
relative standard error) must agree with the enumeration within their reported errors, and the
inequality chain must hold:

* always, per batch: step sharpness ``g_BᵀH_Bg_B/‖g_B‖² ≤ λ_max(H_B)`` (Rayleigh quotient);
* hence always: Batch Sharpness ``E_B[step sharpness] ≤ E_B[λ_max(H_B)]``;
* always: ``E_B[λ_max(H_B)] ≥ λ_max(H)`` (Jensen; ``λ_max`` is convex and ``E_B H_B = H``);
* not ordered in general: Batch Sharpness vs ``λ_max(H)`` (reported, not asserted).
"""

from __future__ import annotations

import numpy as np

from paper_checks.registry import CheckContext, Measurement, check
from sgdsim.curvature import (
    batch_quantities,
    enumerate_batches,
    least_squares_oracle,
    step_sharpness,
)

_PAPER = "Andreyev & Beneventano 2024"
_QUANTS = ("batch_sharpness", "ratio_of_expectations", "batch_lambda_max", "gni")


def _problem(seed: int, quick: bool):
    n, d = (10, 4) if quick else (14, 6)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(1.5, 0.5, d)  # anisotropic features
    y = X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    w = np.zeros(d)  # start of training: gradients far from zero
    return X, y, w


@check("andreyev.batch_sharpness_estimator", paper=_PAPER,
       claim="Monte Carlo estimates of Batch Sharpness (and the ratio-of-expectations, batch "
             "λ_max and GNI variants) agree with exact enumeration of all batches")
def batch_sharpness_estimator(ctx: CheckContext) -> list[Measurement]:
    X, y, w = _problem(ctx.seed, ctx.quick)
    n, B = X.shape[0], 3
    orc = least_squares_oracle(X, y, w)
    exact = batch_quantities(orc, n, B, _QUANTS, method="exact")
    mc = batch_quantities(orc, n, B, _QUANTS, method="monte_carlo", seed=ctx.seed,
                          rtol=0.01 if ctx.quick else 0.002, min_batches=300)
    out = []
    for q in _QUANTS:
        out.append(Measurement(
            quantity=f"{q} (n={n}, B={B}, with replacement; MC {mc[q].n_batches} batches)",
            predicted=exact[q].value,
            measured=mc[q].value,
            tolerance=4.0 * mc[q].stderr,
            source=f"exact enumeration of {exact[q].n_batches} multisets",
            note="4 reported standard errors (p ≈ 6e-5 per row, the suite's |z| < 4 convention: "
                 "with ~170 rows a 3σ bound would fail a correct suite every few runs; full mode "
                 "at seed 0 draws a −3.2σ batch sample, confirmed by plain i.i.d. sampling of "
                 "the exact per-batch values)",
        ))
    # closed form for B = 1: H_i = x_i x_iᵀ, g_i ∥ x_i ⇒ step sharpness = ‖x_i‖² for each i
    one = batch_quantities(orc, n, 1, ("batch_sharpness",))["batch_sharpness"].value
    out.append(Measurement(
        quantity="Batch Sharpness at B=1 (exact enumeration)",
        predicted=float(np.mean(np.sum(X * X, axis=1))), measured=one,
        tolerance=1e-12, relative=True, source="closed form mean ‖x_i‖²",
        note="float64 roundoff of sums of a few terms",
    ))
    return out


@check("andreyev.sharpness_inequalities", paper=_PAPER,
       claim="step sharpness ≤ λ_max(H_B) per batch; Batch Sharpness ≤ E_B λ_max(H_B); "
             "E_B λ_max(H_B) ≥ λ_max(H) (Jensen)")
def sharpness_inequalities(ctx: CheckContext) -> list[Measurement]:
    X, y, w = _problem(ctx.seed + 1, ctx.quick)
    n = X.shape[0]
    orc = least_squares_oracle(X, y, w)
    lam_full = float(np.linalg.eigvalsh(X.T @ X / n)[-1])
    out = []
    for B in (1, 2, 3):
        gaps = []
        for idx, _p in enumerate_batches(n, B):
            g, HB = orc(idx)
            gaps.append(step_sharpness(g, HB) - float(np.linalg.eigvalsh(HB)[-1]))
        worst = max(gaps)
        ex = batch_quantities(orc, n, B, ("batch_sharpness", "batch_lambda_max"))
        bs, blm = ex["batch_sharpness"].value, ex["batch_lambda_max"].value
        tol = 1e-12 * blm  # roundoff of a Rayleigh quotient vs eigvalsh
        out += [
            Measurement.at_most(
                f"B={B}: max over {len(gaps)} batches of step sharpness − λ_max(H_B)",
                measured=worst, bound=0.0, slack=tol, source="Rayleigh quotient bound",
                note="holds for every batch; slack 1e-12·λ_max for the round-off of a Rayleigh "
                     "quotient against eigvalsh",
            ),
            Measurement.at_most(
                f"B={B}: Batch Sharpness ≤ E_B λ_max(H_B)", measured=bs, bound=blm, slack=tol,
                source="expectation of the per-batch bound",
                note=f"exact enumeration, slack 1e-12·λ_max round-off; for comparison λ_max(H) = "
                     f"{lam_full:.6g} (no general ordering between Batch Sharpness and λ_max(H))",
            ),
            Measurement.at_least(
                f"B={B}: E_B λ_max(H_B) ≥ λ_max(H)", measured=blm, bound=lam_full, slack=tol,
                source="Jensen (λ_max convex, E_B H_B = H)",
                note="exact enumeration; slack 1e-12·λ_max round-off",
            ),
        ]
    return out
