"""Argument checks of sgdsim.optim and the shared _validation rules (issue 14).

One rule for numbers given as strings: a TypeError naming the parameter, everywhere. Values
that used to be accepted or failed obscurely are listed with what they did before.
"""

from __future__ import annotations

import numpy as np
import pytest

import sgdsim as sg
from sgdsim._validation import as_float_array, check_bool, check_choice, check_positive


@pytest.mark.parametrize(
    "call, param",
    [
        (lambda: sg.sgd("0.1"), "lr"),  # before: accepted as 0.1
        (lambda: sg.sgd(0.1, momentum="0.1", nesterov=True), "momentum"),  # before: str < int error
        (lambda: sg.sgd(0.1, 0.9, nesterov="yes"), "nesterov"),  # before: accepted as True
        (lambda: sg.sgd(0.1, 0.9, nesterov=1), "nesterov"),
        (lambda: sg.sgd(True), "lr"),  # a bool is not a learning rate
        (lambda: sg.sgd(0.1, weight_decay="0"), "weight_decay"),
        (lambda: sg.nudged_sgd(0.1, "0.5", 2), "gamma"),
        (lambda: sg.step_lr(0.1, 5), "milestones"),  # before: "'int' object is not iterable"
        (lambda: sg.step_lr(0.1, "5"), "milestones"),
        (lambda: sg.step_lr(0.1, [2.5]), "milestones"),
        (lambda: sg.warmup_lr("0.1", 3), "base"),
        (lambda: sg.Schedule(0.1), "fn"),
        (lambda: sg.constant_lr(0.1).values("3"), "steps"),
        (lambda: sg.constant_lr(0.1).values(3, start=-1), "start"),
    ],
)
def test_bad_optimizer_arguments_named(call, param):
    with pytest.raises(TypeError if param not in ("start",) else ValueError, match=f"`{param}`"):
        call()


def test_numbers_stored_as_floats_and_flags_as_bools():
    opt = sg.sgd(np.float32(0.1), momentum=np.float64(0.5), nesterov=np.bool_(True))
    assert type(opt.momentum) is float and opt.nesterov is True
    assert opt.describe()["momentum"] == 0.5


def test_schedule_windows_equal_the_whole_schedule():
    # truth: MultiStepLR, lr·factor^(number of milestones ≤ t), written out by hand
    sched = sg.step_lr(0.2, [3, 7], 0.5)
    expect = np.array([0.2] * 3 + [0.1] * 4 + [0.05] * 5)
    np.testing.assert_array_equal(sched.values(12), expect)
    np.testing.assert_array_equal(sched.values(5, start=4), expect[4:9])
    far = sched.values(2, start=10**15)  # a window far out costs two entries, not 10**15
    np.testing.assert_array_equal(far, [0.05, 0.05])


def test_schedule_that_cannot_fit_is_refused_with_its_size():
    # before: np.arange(10**12) → MemoryError (or swapping) inside simulate
    with pytest.raises(ValueError, match=r"`steps`=1000000000000 needs .* TiB"):
        sg.constant_lr(0.1).values(10**12)


def test_shared_rules():
    with pytest.raises(TypeError, match="`x` must be array-like"):
        as_float_array("x", ["1", "2"])  # NumPy would parse these silently
    with pytest.raises(TypeError, match="`x` must be array-like"):
        as_float_array("x", [1 + 2j])
    with pytest.raises(TypeError, match="`a` must be a real number, got str"):
        check_positive("a", "1")
    with pytest.raises(TypeError, match="`f` must be True or False"):
        check_bool("f", "False")
    assert check_choice("m", np.str_("gd"), ("gd", "ema")) == "gd"
    with pytest.raises(ValueError, match="`m` must be one of"):
        check_choice("m", np.array(["gd", "ema"]), ("gd",))  # an array is not a choice
