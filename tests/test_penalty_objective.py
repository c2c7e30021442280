"""The trainer's step lands on the argmin of loss + weight decay + lambda/2 sum_t F_t (theta - theta*_t)^2."""

import pytest

from lungcl.experiments.penalty_check import gradient_step_stable, run_case

STRENGTHS = [1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4]


@pytest.mark.parametrize("method", ["l2", "ewc"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_proximal_step_lands_on_the_stated_objectives_argmin(method, momentum, weight_decay):
    for strength in STRENGTHS:
        case = run_case(method, "proximal", strength, momentum, weight_decay, steps=3000)
        assert case.distance_to_argmin < 1e-3, case


@pytest.mark.parametrize("method", ["l2", "ewc"])
def test_gradient_step_lands_on_the_same_argmin_where_stable(method):
    ran = 0
    for strength in STRENGTHS[:4]:
        for momentum in (0.0, 0.9):
            if gradient_step_stable(method, strength, momentum, 0.05):
                case = run_case(method, "gradient", strength, momentum, 0.05, steps=3000)
                assert case.distance_to_argmin < 1e-3, case
                ran += 1
    assert ran >= 4


def test_unscaled_proximal_step_would_miss_the_argmin_with_momentum():
    """The old coefficient (lr lambda F, no 1/(1 - mu)) is the objective with lambda (1 - mu): far off."""
    from lungcl.experiments import penalty_check
    from lungcl.experiments.trainer import ProximalPull

    class Unscaled(ProximalPull):
        def __init__(self, method, model, lr, momentum=0.0):
            super().__init__(method, model, lr * (1 - momentum), momentum)

    original = penalty_check.ProximalPull
    penalty_check.ProximalPull = Unscaled
    try:
        case = run_case("ewc", "proximal", 1.0, 0.9, 0.0, steps=3000)
    finally:
        penalty_check.ProximalPull = original
    assert case.distance_to_argmin > 1e-2
