"""The gated multi-task network (Coppola et al., CVPR-W 2020): one branch per task, fused by gated blocks.

Every task has its own convolutional branch (a stem and one pre-activation
residual block per stage). After each stage a :class:`GatedBlock` stacks the T
task maps (T*C channels), batch-normalises them, multiplies task ``s``'s channel
group by a gate ``sigmoid(a[t, s])`` (a binary "use it or not" relaxed so it can
be learned) and fuses them with a 1x1 convolution back to C channels for each
task ``t`` (NDDR-CNN style). The fusion starts at ``fusion_init`` (100, as the
source says) on the diagonal of the task's own block and 0 elsewhere, so at
step 0 every task only sees its own maps: T independent branches.

The T branches run as grouped convolutions (``groups=T``): one call per layer
instead of T, with exactly the parameters and outputs of T separate branches.
Heads: BN-ReLU, 1x1 conv, global average pooling, fully connected, per task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LungclError

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_CONV_FN = {2: F.conv2d, 3: F.conv3d}


class GroupedPreActBlock(nn.Module):
    """T pre-activation residual blocks (BN-ReLU-conv x2, He et al. 2016) side by side as grouped convs."""

    def __init__(self, n_tasks: int, c_in: int, c_out: int, stride: int, spatial_dims: int = 2):
        super().__init__()
        conv, norm, t = _CONV[spatial_dims], _NORM[spatial_dims], n_tasks
        self.bn1 = norm(t * c_in)
        self.conv1 = conv(t * c_in, t * c_out, 3, stride=stride, padding=1, bias=False, groups=t)
        self.bn2 = norm(t * c_out)
        self.conv2 = conv(t * c_out, t * c_out, 3, padding=1, bias=False, groups=t)
        # projection shortcut on the pre-activated input (as in He et al.'s pre-activation code)
        self.shortcut = (conv(t * c_in, t * c_out, 1, stride=stride, bias=False, groups=t)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class GatedBlock(nn.Module):
    """Stack T task maps, batch-norm, gate each task's channel group, fuse by a 1x1 conv per task.

    Output task ``t`` = sum_s sigmoid(a[t, s]) * W[t, :, s-block] @ BN(x)_s  (no bias).
    ``fusion_init`` sets W's start: that value on the diagonal of block (t <- t), 0 elsewhere.
    """

    def __init__(self, n_tasks: int, channels: int, fusion_init: float = 100.0, gate_init: float = 0.0,
                 spatial_dims: int = 2):
        super().__init__()
        t, c = n_tasks, channels
        self.n_tasks, self.channels, self.spatial_dims = t, c, spatial_dims
        self.norm = _NORM[spatial_dims](t * c)
        # gate logits a[t, s]: how much output task t takes from input task s
        self.gate_logits = nn.Parameter(torch.full((t, t), float(gate_init)))
        weight = torch.zeros(t, c, t, c)
        for k in range(t):
            weight[k, :, k, :] = fusion_init * torch.eye(c)
        self.fusion = nn.Parameter(weight)  # (out task, out channel, in task, in channel)

    def gates(self) -> torch.Tensor:
        """sigmoid of the gate logits, (T out, T in)."""
        return torch.sigmoid(self.gate_logits)

    def effective_weight(self) -> torch.Tensor:
        """Fusion weights times their gates, (T, C, T, C)."""
        return self.fusion * self.gates()[:, None, :, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, c = self.n_tasks, self.channels
        w = self.effective_weight().reshape(t * c, t * c, *([1] * self.spatial_dims))
        return _CONV_FN[self.spatial_dims](self.norm(x), w)

    def sharing(self) -> np.ndarray:
        """Sharing degree (T, T): mean |effective weight| of block (t <- s), divided by its row's sum."""
        with torch.no_grad():
            d = self.effective_weight().abs().mean(dim=(1, 3)).double()
            return (d / d.sum(dim=1, keepdim=True).clamp_min(1e-300)).cpu().numpy()


def stage_widths(width: int, n_stages: int, param_scale: float) -> list[int]:
    """Channels per stage: ``width * 2**i`` times sqrt(param_scale) (parameters grow with width squared)."""
    if not 0 < param_scale <= 4:
        raise LungclError(f"param_scale must be in (0, 4], got {param_scale:g}")
    return [max(1, round(width * 2 ** i * math.sqrt(param_scale))) for i in range(n_stages)]


class GatedMultiTaskNet(nn.Module):
    """T task branches, a gated block after each stage, and one classifier head per task.

    ``n_classes[t]`` is task t's class count (2 for a binary task, 5 for ratings 1-5, ...).
    ``forward(x)`` returns a list of T logit tensors (N, n_classes[t]).
    """

    def __init__(self, n_classes: Sequence[int], in_channels: int = 1, width: int = 16, n_stages: int = 3,
                 param_scale: float = 1.0, fusion_init: float = 100.0, gate_init: float = 0.0,
                 head_channels: int | None = None, spatial_dims: int = 2,
                 task_names: Sequence[str] | None = None):
        super().__init__()
        if len(n_classes) < 1 or any(int(k) < 2 for k in n_classes):
            raise LungclError(f"every task needs at least 2 classes, got {list(n_classes)}")
        if spatial_dims not in _CONV:
            raise LungclError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if n_stages < 1:
            raise LungclError(f"n_stages must be >= 1, got {n_stages}")
        t = len(n_classes)
        self.n_classes = [int(k) for k in n_classes]
        self.task_names = list(task_names) if task_names is not None else [f"task{k}" for k in range(t)]
        if len(self.task_names) != t:
            raise LungclError(f"{len(self.task_names)} task names for {t} tasks")
        self.widths = stage_widths(width, n_stages, param_scale)
        conv, norm = _CONV[spatial_dims], _NORM[spatial_dims]
        self.n_tasks, self.spatial_dims = t, spatial_dims
        # one stem per task: a dense conv from the shared input to T*C0 channels is exactly T stems
        self.stem = conv(in_channels, t * self.widths[0], 3, padding=1, bias=False)
        self.stages = nn.ModuleList()
        self.gated = nn.ModuleList()
        c_prev = self.widths[0]
        for i, c in enumerate(self.widths):
            self.stages.append(GroupedPreActBlock(t, c_prev, c, stride=1 if i == 0 else 2,
                                                  spatial_dims=spatial_dims))
            self.gated.append(GatedBlock(t, c, fusion_init, gate_init, spatial_dims))
            c_prev = c
        h = head_channels or c_prev
        self.head_norm = norm(t * c_prev)
        self.head_conv = conv(t * c_prev, t * h, 1, bias=False, groups=t)
        self.head_fc = nn.ModuleList([nn.Linear(h, k) for k in self.n_classes])
        self.head_channels = h

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every gated block (N, T*C_i, ...), stage by stage."""
        out, maps = self.stem(x), []
        for stage, gate in zip(self.stages, self.gated):
            out = gate(stage(out))
            maps.append(out)
        return maps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.features(x)[-1]
        z = self.head_conv(F.relu(self.head_norm(z)))
        pooled = z.flatten(2).mean(dim=2)  # global average pooling, (N, T*h)
        chunks = pooled.split(self.head_channels, dim=1)
        return [fc(p) for fc, p in zip(self.head_fc, chunks)]

    def sharing_matrices(self) -> np.ndarray:
        """Sharing degree per stage, (n_stages, T, T); row t says how task t draws on each task s."""
        return np.stack([g.sharing() for g in self.gated])

    def sharing_overall(self) -> np.ndarray:
        """The mean of the per-stage matrices (each row still sums to 1)."""
        return self.sharing_matrices().mean(axis=0)

    def gate_values(self) -> np.ndarray:
        """sigmoid(gate logits) per stage, (n_stages, T, T)."""
        with torch.no_grad():
            return np.stack([g.gates().cpu().numpy() for g in self.gated])


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
