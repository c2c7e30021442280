"""The hard-sharing multi-task network: one shared pre-activation ResNet trunk and one head per task.

The plain multi-head baseline of the multi-task chapter, beside the gated network
(:mod:`lungcl.models.gated`): every task reads the same features.
"""

from __future__ import annotations

import torch
from torch import nn

from .resnet import build_resnet


class HardSharingNet(nn.Module):
    """One shared trunk (``build_resnet``), T heads.

    ``build_resnet`` gives every head the same class count, so heads get the largest
    one and task t reads its first ``n_classes[t]`` logits (the others get no gradient).
    """

    def __init__(self, n_classes: list[int], tasks: list[str], depth: int, width: int, in_channels: int):
        super().__init__()
        self.n_classes, self.task_names = list(n_classes), list(tasks)
        self.net = build_resnet(depth, tasks, in_channels=in_channels, width=width,
                                num_classes=max(n_classes), small_input=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.net.features(x)
        return [self.net.heads[t](f)[:, :k] for t, k in zip(self.task_names, self.n_classes)]
