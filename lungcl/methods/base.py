"""The continual-learning method interface, and the quadratic pull-back that L2 and EWC share.

A method adds ``penalty(model)`` to each training step's task loss and, after a task's
stage, ``consolidate``s what it needs to remember (anchors, Fisher diagonals). Its
``state_dict`` holds exactly those tensors, so a checkpoint restores it.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from ..errors import LungclError
from ..fisher import task_parameter_names

Batches = Iterable[tuple[Tensor, Tensor]]


def check_strength(value: float) -> float:
    """``value`` as a penalty strength lambda: a number >= 0 (nan refused), else LungclError."""
    if not value >= 0:  # also rejects nan
        raise LungclError(f"lambda must be >= 0 (the penalty strength), got {value:g}")
    return float(value)


class ContinualMethod:
    """Plain sequential fine-tuning (SGD): no penalty, nothing to consolidate."""

    name = "sgd"
    mixes_seen_tasks = False  # True: the trainer trains on every task seen so far (joint)

    def __init__(self, strength: float = 0.0):
        self.strength = check_strength(strength)
        self.consolidated: list[str] = []  # tasks consolidated so far, in order

    def penalty(self, model: nn.Module) -> Tensor:
        """Scalar added to the task loss."""
        return _zero(model)

    def prepare_stage(self, model: nn.Module, stage: int, task: str) -> None:
        """Before stage ``stage`` (0-based) trains ``task``, after the trainer's ``train_mode``: which
        parameters learn and which modules train. The base method leaves every one learning."""

    def consolidate(self, model: nn.Module, task: str, loader: Batches) -> None:
        """Remember what protects ``task`` after its stage (the base method remembers only its name)."""
        self._note(task)

    def _note(self, task: str) -> None:
        if task in self.consolidated:
            self.consolidated.remove(task)
        self.consolidated.append(task)

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors to checkpoint: the consolidated tasks as ``task/<i>/<name>`` keys, plus the method's own."""
        return {f"task/{i}/{t}": torch.tensor(i) for i, t in enumerate(self.consolidated)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        tasks, own = {}, {}
        for key, value in state.items():
            if key.startswith("task/"):
                _, i, t = split_key(key, 3)
                tasks[int(i)] = t
            else:
                own[key] = value
        self.consolidated = [tasks[i] for i in sorted(tasks)]
        self._load_own(own)

    def _load_own(self, state: dict[str, Tensor]) -> None:
        if state:
            raise LungclError(f"method {self.name!r} keeps no such state as {sorted(state)[0]!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strength={self.strength:g})"


class JointTraining(ContinualMethod):
    """Upper bound: no penalty; the trainer mixes the data of every task seen so far."""

    name = "joint"
    mixes_seen_tasks = True


def _zero(model: nn.Module) -> Tensor:
    p = next(model.parameters(), None)
    return torch.zeros((), device=None if p is None else p.device)


def seen_parameter_names(model: nn.Module, tasks: Iterable[str]) -> list[str]:
    """Trainable parameters any of ``tasks`` uses (trunk + their heads), in the model's order."""
    wanted: set[str] = set()
    for task in tasks:
        wanted.update(task_parameter_names(model, task))
    return [n for n, _ in model.named_parameters() if n in wanted]


class FoldedQuadratic:
    """sum_t (1/2) sum_i w_t,i (theta_i - a_t,i)^2, folded into one quadratic over a flat vector.

    With A = sum_t w_t, m = sum_t w_t a_t / A and c = sum_t w_t a_t^2 - A m^2 (float64),
    sum_t w_t (theta - a_t)^2 = A (theta - m)^2 + c: the same value and gradient, at the
    cost of ONE weighted squared distance per step however many tasks are remembered.
    """

    def __init__(self, sizes: dict[str, int], terms: list[tuple[dict[str, Tensor], dict[str, Tensor]]]):
        """``sizes``: parameter name -> numel (a fixed order); ``terms``: (weights, anchors)
        per remembered task; a name a term lacks has weight 0 in it."""
        self.names = list(sizes)
        self.sizes = dict(sizes)
        if len(terms) == 1:  # exact: no division, no constant
            self.weight, self.anchor = self._flat(terms[0][0]), self._flat(terms[0][1])
            self.constant = 0.0
        else:
            weight = torch.zeros(sum(self.sizes.values()), dtype=torch.float64)
            moment1, moment2 = torch.zeros_like(weight), torch.zeros_like(weight)
            for w, a in terms:
                wf, af = self._flat(w), self._flat(a)
                weight += wf
                moment1 += wf * af
                moment2 += wf * af * af
            anchor = torch.where(weight > 0, moment1 / weight.clamp_min(1e-300), 0.0)
            self.weight, self.anchor = weight, anchor
            self.constant = float((moment2 - weight * anchor * anchor).sum())
        self._cache: tuple[torch.device, torch.dtype, Tensor, Tensor] | None = None

    def _flat(self, d: dict[str, Tensor]) -> Tensor:
        """One float64 CPU vector over ``names``; zeros where ``d`` lacks a name."""
        return torch.cat([d[n].detach().reshape(-1).to("cpu", torch.float64) if n in d
                          else torch.zeros(self.sizes[n], dtype=torch.float64) for n in self.names])

    def value(self, model: nn.Module) -> Tensor:
        """(1/2) [A . (theta - m)^2 + c], differentiable in the model's parameters."""
        named = dict(model.named_parameters())
        missing = [n for n in self.names if n not in named]
        if missing:
            raise LungclError(f"the model lacks parameters the method remembers, e.g. {missing[0]!r}")
        theta = torch.cat([named[n].reshape(-1) for n in self.names])
        if self._cache is None or self._cache[:2] != (theta.device, theta.dtype):
            self._cache = (theta.device, theta.dtype, self.weight.to(theta.device, theta.dtype),
                           self.anchor.to(theta.device, theta.dtype))
        _, _, weight, anchor = self._cache
        if theta.numel() != weight.numel():
            raise LungclError("the model's parameter shapes differ from those the method remembers")
        diff = theta - anchor
        return 0.5 * (torch.dot(weight * diff, diff) + self.constant)


class QuadraticMethod(ContinualMethod):
    """A method whose penalty is strength x a folded quadratic it rebuilds after each consolidation."""

    def __init__(self, strength: float = 0.0):
        super().__init__(strength)
        self._quadratic: FoldedQuadratic | None = None

    @property
    def quadratic(self) -> FoldedQuadratic | None:
        """The folded penalty quadratic (weights A, anchor m over ``names``), None before any task;
        the penalty is strength x its value."""
        return self._quadratic

    def penalty_terms(self) -> list[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        """(weights, anchors) per remembered task, unfolded: penalty = strength/2 sum_t w_t (theta - a_t)^2."""
        return self._terms()

    def _terms(self) -> list[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        """(weights, anchors) of every remembered task; each dict maps parameter name -> tensor."""
        raise NotImplementedError

    def _rebuild(self) -> None:
        terms = self._terms()
        sizes: dict[str, int] = {}
        for w, _ in terms:
            for n, t in w.items():
                sizes.setdefault(n, t.numel())
        self._quadratic = FoldedQuadratic(sizes, terms) if sizes else None

    def penalty(self, model: nn.Module) -> Tensor:
        if self._quadratic is None or self.strength == 0:
            return _zero(model)
        return self.strength * self._quadratic.value(model)


def snapshot(model: nn.Module, names: Iterable[str]) -> dict[str, Tensor]:
    """Detached CPU copies of the named parameters (an anchor theta*)."""
    named = dict(model.named_parameters())
    return {n: named[n].detach().to("cpu", copy=True) for n in names}


def split_key(key: str, parts: int, kinds: Iterable[str] | None = None) -> list[str]:
    """``"fisher/<task>/<param>"`` -> its parts; a clear error for a foreign checkpoint key."""
    fields = key.split("/", parts - 1)
    if len(fields) != parts or (kinds is not None and fields[0] not in kinds):
        raise LungclError(f"unexpected key {key!r} in a continual-method checkpoint")
    return fields
