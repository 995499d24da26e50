"""Regression tests for the input checks that the public-API fuzz (tests/test_fuzz_public_api.py)
found missing in the SDE front door, the scheme moments, the field kernels, the teacher–student
theory, MLPProblem and the replica trainers: one input each, refused with the parameter named."""

from __future__ import annotations

import re

import numpy as np
import pytest

import sgdsim
from sgdsim import fields
from sgdsim.sde import baoab, euler_maruyama, exact_ou
from sgdsim.theory import schemes
from sgdsim.theory import teacher_student as ts
from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin


def _refused(param: str, fn, *args, exc=(ValueError, TypeError), **kw) -> None:
    with pytest.raises(exc, match=re.escape(f"`{param}`")):
        fn(*args, **kw)


OU = LinearSDE(np.eye(1), np.eye(1))
UL = UnderdampedLangevin(np.ones(1), 1.0, np.ones(1))


@pytest.mark.parametrize("seed", [True, "3", -1, 2.5])
@pytest.mark.parametrize("integrator, model", [(euler_maruyama, OU), (exact_ou, OU), (baoab, UL)])
def test_sde_seed_checked(integrator, model, seed):
    """Before: True ran as seed 1, '3' and -1 failed inside SeedSequence without the name."""
    _refused("seed", integrator, model, dt=0.1, steps=2, replicas=1, seed=seed, backend="numpy")


@pytest.mark.parametrize("fn", [schemes.scheme_transition, schemes.scheme_stationary_covariance])
@pytest.mark.parametrize("model", [None, "ou", np.eye(2)])
def test_scheme_model_checked(fn, model):
    """Before: AttributeError ('NoneType' has no attribute 'dim')."""
    _refused("model", fn, "euler_maruyama", model, 0.1)


def test_scheme_moments_model_checked():
    _refused("model", schemes.scheme_moments, "exact_ou", None, 0.1, 3)


def test_ou_velocity_step_checks_its_arrays():
    """Before: a friction of the wrong length broadcast silently; None gave a bare TypeError."""
    _refused("Dv", schemes.ou_velocity_step, np.ones(7), np.eye(1), 0.1)
    _refused("friction", schemes.ou_velocity_step, None, np.eye(1), 0.1)
    _refused("Dv", schemes.ou_velocity_step, np.ones(1), None, 0.1)
    _refused("dt", schemes.ou_velocity_step, np.ones(1), np.eye(1), "0.1")


@pytest.mark.parametrize("fn, n", [(ts.i2, 2), (ts.i3, 3), (ts.i4, 4), (ts.j2, 2)])
def test_gaussian_integrals_refuse_strings(fn, n):
    """Before: "could not convert string to float" without the name."""
    _refused("C", fn, [["a"] * n] * n)
    _refused("C", fn, np.full((n, n), np.nan))


def test_field_kernels_check_the_namespace():
    """Before: AttributeError ('str' object has no attribute 'asarray')."""
    W, b, amp, X = np.ones((2, 1)), np.zeros(2), np.ones(2), np.ones((3, 1))
    _refused("xp", fields.linear_field, "numpy", np.eye(1), np.zeros(1))
    _refused("xp", fields.noise_map, None, np.ones(1), np.eye(1), True)
    _refused("xp", fields.rff_field, 3, W, b, amp)
    _refused("xp", fields.rff_gradient, None, X, W, b, amp)
    _refused("xp", fields.rff_phases, None, X, W, b)
    _refused("X", fields.rff_phases, np, "0.1", W, b)
    _refused("amp", fields.rff_gradient, np, X, W, b, None)


def test_field_factories_check_their_arrays():
    _refused("M", fields.linear_field, np, np.ones((2, 3)), np.zeros(2))
    _refused("M", fields.linear_field, np, np.ones((2, 3)), np.zeros(1))  # M first (many-example fuzz)
    _refused("x_star", fields.linear_field, np, np.eye(2), np.zeros(3))
    _refused("b", fields.rff_field, np, np.ones((2, 1)), np.zeros(3), np.ones(2))
    _refused("amp", fields.rff_field, np, np.ones((2, 1)), np.zeros(2), np.ones(5))
    _refused("diag", fields.noise_map, np, np.ones(1), np.eye(1), "yes")


def test_noise_map_checks_nd():
    _refused("nd", fields.noise_map, np, "0.1", None, True)
    _refused("nd", fields.noise_map, np, [[1.0]], None, True)


def test_field_kernels_still_compute_the_formulas():
    """The checks change no value: −Σ amp sin(W·x + b) W against a hand loop."""
    rng = np.random.default_rng(0)
    W, b, amp, X = rng.normal(size=(3, 2)), rng.normal(size=3), rng.random(3), rng.normal(size=(4, 2))
    want = np.array([-sum(amp[m] * np.sin(W[m] @ x + b[m]) * W[m] for m in range(3)) for x in X])
    np.testing.assert_allclose(fields.rff_field(np, W, b, amp)(X), want, rtol=1e-12)  # rounding only
    M = rng.normal(size=(2, 2))
    np.testing.assert_allclose(fields.linear_field(np, M, np.ones(2))(X), (X - 1.0) @ M.T, rtol=1e-12)


try:
    from sgdsim import nets
except ImportError:  # the nets extra (PyTorch) is not installed
    nets = None
needs_nets = pytest.mark.skipif(nets is None, reason="needs the nets extra (PyTorch)")


@needs_nets
def test_mlp_problem_checks_its_arguments():
    """Before: AttributeError ('NoneType' has no attribute 'n_params'); X/y unchecked."""
    spec = nets.MLPSpec((2, 3, 1))
    X, y = np.ones((4, 2)), np.ones(4)
    _refused("spec", nets.MLPProblem, None, X, y)
    _refused("X", nets.MLPProblem, spec, "0.1", y)
    _refused("X", nets.MLPProblem, spec, np.ones((4, 3)), y)
    _refused("y", nets.MLPProblem, spec, X, np.ones(5))
    _refused("y", nets.MLPProblem, spec, X, ["a"] * 4)


@needs_nets
@pytest.mark.parametrize(
    "trainer, extra",
    [
        ("replica_noisy_gd", {"noise_trace": 0.1}),
        ("replica_sgd", {"batch_size": 2}),
    ],
)
def test_replica_trainers_check_spec_data_and_strings(trainer, extra):
    """Before: AttributeError for a non-MLPSpec `spec` / non-Dataset `data`; lr='0.1' parsed."""
    fn = getattr(nets, trainer)
    spec = nets.MLPSpec((2, 3, 1))
    data = nets.Dataset(np.ones((4, 2)), np.ones((4, 1)), "regression")
    th = np.zeros((2, spec.n_params))
    kw = {"lr": 0.1, "steps": 2, "record": [0, 2], **extra}
    _refused("spec", fn, "spec", data, th, **kw)
    _refused("data", fn, spec, "0.1", th, **kw)
    _refused("theta0", fn, spec, data, "0.1", **kw)
    _refused("lr", fn, spec, data, th, **{**kw, "lr": "0.1"})
    out = fn(spec, data, th, **kw)
    assert out.shape == (2, 2, spec.n_params) and np.all(np.isfinite(out))


def _self_stab():
    """L = ½yx² − y/2 on θ = (x, y): the central-flow toy of tests/test_central_flow.py."""
    return sgdsim.CustomProblem(
        dim=2,
        grad=lambda th: np.array([th[1] * th[0], 0.5 * th[0] ** 2 - 0.5]),
        loss=lambda th: 0.5 * th[1] * th[0] ** 2 - 0.5 * th[1],
        hvp=lambda th, v: np.array([th[1] * v[0] + th[0] * v[1], th[0] * v[0]]),
    )


@pytest.mark.parametrize("param, value", [("beta", None), ("beta2", None), ("fd_step", True), ("seed", "3")])
def test_central_flow_checks_reals_and_seed(param, value):
    """Before: beta=None gave float()'s TypeError without the name; seed='3' was accepted (many-
    example fuzz)."""
    _refused(
        param, sgdsim.central_flow, _self_stab(), 0.5, [0.0, 3.0], np.array([0.0, 1.0]), **{param: value}
    )


@pytest.mark.parametrize("record", [3, None, 2.5])
def test_sde_record_must_be_names(record):
    """Before: record=3 gave "'int' object is not iterable" without the name (many-example fuzz)."""
    _refused(
        "record", euler_maruyama, OU, dt=0.1, steps=2, replicas=1, seed=0, backend="numpy", record=record
    )


@pytest.mark.parametrize("param, value", [("rtol", "0.1"), ("rtol", np.nan), ("atol", -1.0), ("atol", True)])
def test_order_parameter_ode_checks_tolerances(param, value):
    """Before: rtol='0.1' reached solve_ivp (a UFuncTypeError), NaN tolerances could spin in
    the solver (many-example fuzz: a 30-s hang)."""
    Q0, R0, T = 0.1 * np.eye(1), np.zeros((1, 1)), np.eye(1)
    _refused(param, ts.integrate_order_parameters, Q0, R0, T, 0.5, 1.0, **{param: value})
