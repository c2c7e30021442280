"""L2 pull-back: (lambda/2) sum_i (theta_i - theta*_i)^2, uniform stiffness towards the last task's weights.

theta* is the whole shared part after the most recent stage: the trunk and the heads of
every task consolidated so far. The head of a task not yet trained is free.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Batches, QuadraticMethod, seen_parameter_names, snapshot, split_key


class L2Method(QuadraticMethod):
    """Every shared weight pulled back, equally hard, to its value after the previous task."""

    name = "l2"

    def __init__(self, strength: float = 0.0):
        super().__init__(strength)
        self.anchor: dict[str, Tensor] = {}

    def consolidate(self, model: nn.Module, task: str, loader: Batches) -> None:
        self._note(task)
        self.anchor = snapshot(model, seen_parameter_names(model, self.consolidated))
        self._rebuild()

    def _terms(self):
        if not self.anchor:
            return []
        return [({n: torch.ones_like(a) for n, a in self.anchor.items()}, self.anchor)]

    def state_dict(self) -> dict[str, Tensor]:
        return {**super().state_dict(), **{f"anchor/{n}": a.clone() for n, a in self.anchor.items()}}

    def _load_own(self, state: dict[str, Tensor]) -> None:
        self.anchor = {}
        for key, value in state.items():
            _, name = split_key(key, 2, kinds=("anchor",))
            self.anchor[name] = value.detach().cpu().clone()
        self._rebuild()
