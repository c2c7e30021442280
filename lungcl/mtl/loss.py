"""Focal cross-entropy summed over tasks, with per-example weights and missing labels masked out.

Per task t: the weighted mean over the examples that have a task-t label of
MONAI's softmax focal loss, FL = -(1 - p_y)^gamma log p_y (no alpha):
``L_t = sum_i w_i m_it FL_it / sum_i w_i m_it`` with m_it = 1 if example i has a
label for t (not -1) else 0. The total is ``sum_t L_t``; a task without a single
labelled example in the batch adds 0. The L2 weight penalty is the optimiser's
weight decay (for SGD, decay wd on theta is the gradient of wd/2 ||theta||^2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import FocalLoss
from torch import nn

from .sampler import MISSING


class MaskedMultiTaskFocalLoss(nn.Module):
    """``forward(logits per task, targets (N, T) with -1 = no label, weights (N,))`` -> (total, per task (T,))."""

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = float(gamma)
        self.focal = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=self.gamma, reduction="none",
                               ignore_index=MISSING)

    def per_example(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss of each example (N,); 0 where the label is missing."""
        return self.focal(logits, target.long().unsqueeze(1)).sum(dim=1)

    def forward(self, logits: Sequence[torch.Tensor], targets: torch.Tensor,
                weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n = targets.shape[0]
        w = torch.ones(n, device=targets.device) if weights is None else weights.to(logits[0].dtype)
        per_task = []
        for t, z in enumerate(logits):
            mask = (targets[:, t] != MISSING).to(z.dtype)
            denom = (w * mask).sum()
            if denom <= 0:
                per_task.append(z.sum() * 0.0)  # keeps the graph; contributes nothing
                continue
            per_task.append((w * mask * self.per_example(z, targets[:, t])).sum() / denom)
        stacked = torch.stack(per_task)
        return stacked.sum(), stacked.detach()
