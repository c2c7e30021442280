"""Elastic weight consolidation (Kirkpatrick et al. 2017) and its online variant (Schwarz et al. 2018).

EWC keeps, for every past task t, the Fisher diagonal F_t (computed on t's training data
at the end of its stage, through t's own head) and the weights theta*_t of that moment:
penalty = (lambda/2) sum_t sum_i F_t,i (theta_i - theta*_t,i)^2. The per-task terms are
folded into one quadratic (same value and gradient), so a step costs the same with one
past task or ten. Online EWC keeps one running Fisher F <- gamma F + F_new and only the
latest anchor.
"""

from __future__ import annotations

import zlib

from torch import Tensor, nn

from ..errors import LungclError
from ..fisher import FISHER_KINDS, fisher_diagonal
from .base import Batches, QuadraticMethod, snapshot, split_key


class FisherMethod(QuadraticMethod):
    """Shared settings of the Fisher-weighted methods."""

    def __init__(self, strength: float = 0.0, fisher_samples: int = 200, fisher: str = "exact",
                 seed: int = 0):
        super().__init__(strength)
        if fisher_samples < 1:
            raise LungclError(f"fisher_samples must be >= 1, got {fisher_samples}")
        if fisher not in FISHER_KINDS:
            raise LungclError(f"unknown Fisher {fisher!r}; choose one of {', '.join(FISHER_KINDS)}")
        self.fisher_samples, self.fisher_kind, self.seed = int(fisher_samples), fisher, seed

    def task_fisher(self, model: nn.Module, task: str, loader: Batches) -> dict[str, Tensor]:
        """The Fisher diagonal (of kind ``fisher_kind``) of ``task`` at the current weights (CPU tensors);
        a sampled Fisher draws its labels with a seed derived from (seed, task)."""
        seed = zlib.crc32(f"{self.seed}/{task}".encode())
        fisher = fisher_diagonal(model, task, loader, self.fisher_samples,
                                 kind=self.fisher_kind, seed=seed)
        return {n: f.detach().cpu() for n, f in fisher.items()}


class EWCMethod(FisherMethod):
    """One quadratic penalty per past task, each weighted by that task's Fisher diagonal."""

    name = "ewc"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fishers: dict[str, dict[str, Tensor]] = {}
        self.anchors: dict[str, dict[str, Tensor]] = {}

    def consolidate(self, model: nn.Module, task: str, loader: Batches) -> None:
        fisher = self.task_fisher(model, task, loader)
        self._note(task)
        self.fishers[task] = fisher
        self.anchors[task] = snapshot(model, fisher)
        self._rebuild()

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> "EWCMethod":
        """The method a checkpoint's method state describes (its Fishers and anchors; no strength)."""
        method = cls()
        method.load_state_dict(dict(state))
        return method

    def anchor(self, task: str) -> dict[str, Tensor]:
        """The weights remembered for ``task``: the network right after its stage."""
        if task not in self.anchors:
            raise LungclError(f"no EWC anchor for task {task!r} in this method state")
        return self.anchors[task]

    def _terms(self):
        return [(self.fishers[t], self.anchors[t]) for t in self.consolidated if t in self.fishers]

    def state_dict(self) -> dict[str, Tensor]:
        state = super().state_dict()
        for task in self.fishers:
            state.update({f"fisher/{task}/{n}": f.clone() for n, f in self.fishers[task].items()})
            state.update({f"anchor/{task}/{n}": a.clone() for n, a in self.anchors[task].items()})
        return state

    def _load_own(self, state: dict[str, Tensor]) -> None:
        self.fishers, self.anchors = {}, {}
        for key, value in state.items():
            kind, task, name = split_key(key, 3, kinds=("fisher", "anchor"))
            store = self.fishers if kind == "fisher" else self.anchors
            store.setdefault(task, {})[name] = value.detach().cpu().clone()
        if any(self.fishers.get(t, {}).keys() != self.anchors.get(t, {}).keys()
               for t in set(self.fishers) | set(self.anchors)):
            raise LungclError("an EWC checkpoint whose Fishers and anchors cover different parameters")
        self._rebuild()


class OnlineEWCMethod(FisherMethod):
    """One running Fisher, decayed by gamma at each new task, and the latest weights as anchor."""

    name = "online_ewc"

    def __init__(self, strength: float = 0.0, fisher_samples: int = 200, fisher: str = "exact",
                 seed: int = 0, gamma: float = 1.0):
        super().__init__(strength, fisher_samples, fisher, seed)
        if not 0 <= gamma <= 1:
            raise LungclError(f"the online-EWC decay gamma must be in [0, 1], got {gamma}")
        self.gamma = float(gamma)
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def consolidate(self, model: nn.Module, task: str, loader: Batches) -> None:
        new = self.task_fisher(model, task, loader)
        self._note(task)
        merged = {n: self.gamma * f for n, f in self.fisher.items()}
        for n, f in new.items():
            merged[n] = merged[n] + f if n in merged else f
        self.fisher = merged
        self.anchor = snapshot(model, merged)
        self._rebuild()

    def _terms(self):
        return [(self.fisher, self.anchor)] if self.fisher else []

    def state_dict(self) -> dict[str, Tensor]:
        state = super().state_dict()
        state.update({f"fisher/{n}": f.clone() for n, f in self.fisher.items()})
        state.update({f"anchor/{n}": a.clone() for n, a in self.anchor.items()})
        return state

    def _load_own(self, state: dict[str, Tensor]) -> None:
        self.fisher, self.anchor = {}, {}
        for key, value in state.items():
            kind, name = split_key(key, 2, kinds=("fisher", "anchor"))
            (self.fisher if kind == "fisher" else self.anchor)[name] = value.detach().cpu().clone()
        if self.fisher.keys() != self.anchor.keys():
            raise LungclError("an online-EWC checkpoint whose Fisher and anchor cover different parameters")
        self._rebuild()
