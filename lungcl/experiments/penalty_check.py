"""Does the trainer's step descend the stated objective? A quadratic problem with a closed-form argmin.

Task loss (1/2) sum_i a_i (theta_i - b_i)^2, weight decay wd/2 ||theta||^2 and the method's
penalty lambda/2 sum_t sum_i w_t,i (theta_i - m_t,i)^2 (L2: one task, w = 1; EWC: two remembered
tasks with their own Fisher and anchor). The minimiser is, per weight,
theta = (a b + lambda sum_t w_t m_t) / (a + wd + lambda sum_t w_t). Thousands of steps through
:func:`lungcl.experiments.trainer.descend` (the function the trainer calls) must land on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..methods import make_method
from .trainer import ProximalPull, descend, make_optimizer

N_WEIGHTS = 8


class _Weights(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(n, dtype=torch.float64))


@dataclass
class Case:
    method: str
    penalty_step: str
    strength: float
    momentum: float
    weight_decay: float
    steps: int
    distance_to_argmin: float  # max over weights of |theta_end - argmin|


def _problem(method: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(N_WEIGHTS, generator=g, dtype=torch.float64)  # noqa: E731
    curvature, target = u(0.5, 2.0), u(-2.0, 2.0)
    if method == "l2":
        anchor = u(-2.0, 2.0)
        terms = [(torch.ones(N_WEIGHTS, dtype=torch.float64), anchor)]
        state = {"task/0/a": torch.tensor(0), "anchor/theta": anchor}
    else:
        terms = [(u(0.05, 3.0), u(-2.0, 2.0)) for _ in range(2)]
        state = {"task/0/a": torch.tensor(0), "task/1/b": torch.tensor(1)}
        for (w, m), t in zip(terms, "ab"):
            state.update({f"fisher/{t}/theta": w, f"anchor/{t}/theta": m})
    return curvature, target, terms, state


def argmin(curvature, target, terms, strength: float, weight_decay: float) -> torch.Tensor:
    """Closed-form minimiser of loss + wd/2 ||theta||^2 + lambda/2 sum_t w_t (theta - m_t)^2."""
    num = curvature * target + strength * sum(w * m for w, m in terms)
    den = curvature + weight_decay + strength * sum(w for w, _ in terms)
    return num / den


def run_case(method: str, penalty_step: str, strength: float, momentum: float, weight_decay: float,
             steps: int = 4000, lr: float = 0.1, seed: int = 0) -> Case:
    """Descend the quadratic problem with the trainer's own optimiser and step; distance to the argmin."""
    curvature, target, terms, state = _problem(method, seed)
    model = _Weights(N_WEIGHTS)
    penalised = make_method(method, strength=strength)
    penalised.load_state_dict(state)
    optimizer = make_optimizer(model, lr, momentum, weight_decay)
    proximal = ProximalPull(penalised, model, lr, momentum) if penalty_step == "proximal" else None
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * (curvature * (model.theta - target) ** 2).sum()
        descend(model, penalised, optimizer, loss, proximal)
    best = argmin(curvature, target, terms, strength, weight_decay)
    distance = float((model.theta.detach() - best).abs().max())
    return Case(method, penalty_step, strength, momentum, weight_decay, steps, distance)


def gradient_step_stable(method: str, strength: float, momentum: float, weight_decay: float,
                         lr: float = 0.1, seed: int = 0) -> bool:
    """Whether an explicit gradient step on the penalty is stable here: lr * max curvature < 1 + mu
    (half the heavy-ball bound 2 (1 + mu), for a margin). Beyond it only the proximal step applies."""
    curvature, _, terms, _ = _problem(method, seed)
    stiffest = float((curvature + weight_decay + strength * sum(w for w, _ in terms)).max())
    return lr * stiffest < 1 + momentum


def all_cases(strengths=(1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4), momenta=(0.0, 0.9),
              weight_decays=(0.0, 0.05), steps: int = 4000) -> list[dict]:
    """Every (method, step, lambda, momentum, weight decay) case; gradient steps only where stable."""
    cases = []
    for method in ("l2", "ewc"):
        for strength in strengths:
            for momentum in momenta:
                for wd in weight_decays:
                    for step in ("proximal", "gradient"):
                        if step == "gradient" and not gradient_step_stable(method, strength, momentum, wd):
                            continue
                        cases.append(asdict(run_case(method, step, strength, momentum, wd, steps)))
    return cases


__all__ = ["Case", "all_cases", "argmin", "gradient_step_stable", "run_case"]
