"""Pre-activation ResNet (He et al. 2016, "Identity mappings in deep residual networks") with one head per task.

MONAI's ``ResNet`` is the original post-activation design (conv-BN-ReLU, ReLU after the
addition), so the thesis's pre-activation network is written here, in one file: every
block is BN-ReLU-conv, the shortcut is the identity unless the shape changes (then a 1x1
projection of the pre-activated input), and a final BN-ReLU precedes global pooling.
As in timm's ResNetV2 (BiT) the stem is a bare convolution: each block pre-activates its
own input. One code path gives 2D and 3D (``spatial_dims``).

Hard parameter sharing: parameters named ``trunk.*`` are shared by every task and
``heads.<task>.*`` belong to one task; the continual-learning methods and the Fisher
diagonal rely on these names.

Normalisation (``norm``): ``batch`` (BatchNorm, the thesis's network), ``task`` (BatchNorm with
one set of running statistics per task, selected by the head being used; the scale and shift
stay shared: task-specific BN as in Cha et al. CVPR 2023) or ``group`` (GroupNorm, which keeps
no running statistics at all).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..errors import LungclError

# depth -> (block kind, blocks per stage); widths double at each of the four stages.
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}


# the torch layers MONAI's Conv / Norm / Pool factories give per dimension (without importing
# MONAI, whose import costs over a second of every run's start-up)
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def _conv(spatial_dims: int, c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Module:
    return _CONV[spatial_dims](c_in, c_out, kernel_size=kernel, stride=stride,
                               padding=kernel // 2, bias=False)


NORMS = ("batch", "task", "group")


class TaskBatchNorm(nn.Module):
    """BatchNorm with one set of running statistics per task and one shared scale and shift.

    The network sets :attr:`task` before each forward (:meth:`PreActResNet.forward`); training on
    one task moves only that task's statistics, so an earlier task's head is evaluated with the
    statistics it was trained with. Its parameters are ``weight`` and ``bias``, as BatchNorm's.
    """

    def __init__(self, spatial_dims: int, channels: int, tasks: Sequence[str]):
        super().__init__()
        self.stats = nn.ModuleDict({t: _BATCH_NORM[spatial_dims](channels, affine=False) for t in tasks})
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.task = next(iter(self.stats))

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self.stats[self.task](x) * self.weight.view(shape) + self.bias.view(shape)


def _norm(spatial_dims: int, channels: int, norm: str = "batch", tasks: Sequence[str] = ()) -> nn.Module:
    if norm == "task":
        return TaskBatchNorm(spatial_dims, channels, tasks)
    if norm == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    return _BATCH_NORM[spatial_dims](channels)


def _head(features: int, num_classes: int, seed: int | None) -> nn.Linear:
    """A task's linear head: from torch's global generator, or (``seed``) from its own, leaving the global one
    as it was."""
    if seed is None:
        return nn.Linear(features, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(features, num_classes)


class _PreActBlock(nn.Module):
    """Pre-activation residual block: (BN-ReLU-conv) x len(kernels), plus the shortcut.

    Convolution ``i`` (``conv1``, ``conv2``, ...) has kernel ``kernels[i]`` and follows ``norm<i>``;
    the one at ``stride_at`` carries the stride. The last one outputs ``channels * expansion``;
    the shortcut is the identity unless the shape changes (then a 1x1 projection of the
    pre-activated input).
    """

    expansion: int
    kernels: tuple[int, ...]
    stride_at: int

    def __init__(self, spatial_dims: int, c_in: int, channels: int, stride: int = 1, norm: str = "batch",
                 tasks: Sequence[str] = ()):
        super().__init__()
        c_out = channels * self.expansion
        n = len(self.kernels)
        sizes = [c_in] + [channels] * (n - 1) + [c_out]
        for i, kernel in enumerate(self.kernels):  # registered as norm1, conv1, norm2, conv2, ...
            self.add_module(f"norm{i + 1}", _norm(spatial_dims, sizes[i], norm, tasks))
            self.add_module(f"conv{i + 1}", _conv(spatial_dims, sizes[i], sizes[i + 1], kernel,
                                                  stride if i == self.stride_at else 1))
        self.act = nn.ReLU(inplace=False)
        self.shortcut = (_conv(spatial_dims, c_in, c_out, 1, stride)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act(self.norm1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        for i in range(2, len(self.kernels) + 1):
            out = getattr(self, f"conv{i}")(self.act(getattr(self, f"norm{i}")(out)))
        return out + skip


class PreActBasicBlock(_PreActBlock):
    """BN-ReLU-conv3x3 (strided), BN-ReLU-conv3x3, plus the shortcut (ResNet-10/18/34)."""

    expansion, kernels, stride_at = 1, (3, 3), 0


class PreActBottleneck(_PreActBlock):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (strided), BN-ReLU-conv1x1 (x4 channels), plus the shortcut."""

    expansion, kernels, stride_at = 4, (1, 3, 1), 1


class PreActResNet(nn.Module):
    """Shared pre-activation ResNet trunk and one linear head per task (hard parameter sharing)."""

    def __init__(self, depth: int, tasks: Sequence[str], in_channels: int = 1, spatial_dims: int = 2,
                 width: int = 64, num_classes: int = 2, small_input: bool = True, norm: str = "batch",
                 head_seeds: Mapping[str, int] | None = None):
        """``head_seeds`` (one per task): each head initialised from its own seed, drawing nothing from
        torch's global generator, so the trunk's weights and every head's are the same whatever the
        other tasks and their order (a run's first stage is then shared by every order with that first
        task); None: the heads drawn in turn after the trunk's first draws (as before)."""
        super().__init__()
        if depth not in DEPTHS:
            raise LungclError(f"unknown ResNet depth {depth}; choose one of {', '.join(map(str, DEPTHS))}")
        if spatial_dims not in (2, 3):
            raise LungclError(f"spatial_dims must be 2 or 3, not {spatial_dims}")
        if width < 1 or in_channels < 1 or num_classes < 2:
            raise LungclError(f"need width >= 1, in_channels >= 1, num_classes >= 2 "
                              f"(got {width}, {in_channels}, {num_classes})")
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise LungclError(f"need at least one task and no repeats, got {tasks}")
        bad = [t for t in tasks if not t or "." in t]
        if bad:
            raise LungclError(f"task names must be non-empty and contain no '.': {bad}")
        if norm not in NORMS:
            raise LungclError(f"unknown normalisation {norm!r}; choose one of {', '.join(NORMS)}")
        if head_seeds is not None and set(head_seeds) != set(tasks):
            raise LungclError(f"head_seeds must name every task once: {sorted(tasks)}, got {sorted(head_seeds)}")
        kind, counts = DEPTHS[depth]
        block = PreActBasicBlock if kind == "basic" else PreActBottleneck
        self.depth, self.spatial_dims, self.width = depth, spatial_dims, width
        self.tasks = tuple(tasks)
        self.norm = norm

        if small_input:  # 32-px patches: keep resolution for the first stage
            stem: list[nn.Module] = [_conv(spatial_dims, in_channels, width, 3)]
        else:  # the ImageNet stem: 7x7 stride 2, then 3x3 max-pool stride 2
            stem = [_conv(spatial_dims, in_channels, width, 7, stride=2),
                    _MAX_POOL[spatial_dims](kernel_size=3, stride=2, padding=1)]
        layers: list[nn.Module] = stem
        c_in = width
        for stage, n_blocks in enumerate(counts):
            channels = width * 2 ** stage
            for i in range(n_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(block(spatial_dims, c_in, channels, stride, norm, tasks))
                c_in = channels * block.expansion
        layers += [_norm(spatial_dims, c_in, norm, tasks), nn.ReLU(inplace=False),
                   _AVG_POOL[spatial_dims](1), nn.Flatten(1)]
        self.trunk = nn.Sequential(*layers)
        self.num_features = c_in
        self.heads = nn.ModuleDict({t: _head(c_in, num_classes, None if head_seeds is None else head_seeds[t])
                                    for t in tasks})
        # found once, not at every forward (a plain list: the modules stay registered in the trunk)
        self._task_norms = [m for m in self.trunk.modules() if isinstance(m, TaskBatchNorm)]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, TaskBatchNorm)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def task_specific_features(self) -> bool:
        """Whether the trunk's output depends on the task (per-task normalisation statistics)."""
        return self.norm == "task"

    def features(self, x: Tensor, task: str | None = None) -> Tensor:
        """Shared representation (N, F) of a batch (N, C, *spatial); with per-task statistics
        (``norm="task"``) those of ``task``, which must then be given."""
        if x.dim() != self.spatial_dims + 2:
            raise LungclError(f"expected a {self.spatial_dims + 2}-D batch (N, C, *spatial), "
                              f"got shape {tuple(x.shape)}")
        if self.task_specific_features:
            if task is None:
                raise LungclError("this network normalises with per-task statistics: say which task's")
            self._check_task(task)
            for m in self._task_norms:
                m.task = task
        return self.trunk(x)

    def forward(self, x: Tensor, task: str) -> Tensor:
        """Logits (N, num_classes) of ``task``'s head."""
        self._check_task(task)
        return self.heads[task](self.features(x, task))

    def classify(self, features: Tensor, task: str) -> Tensor:
        """Logits of ``task``'s head from trunk features (N, F): evaluation runs the trunk once
        for every task's head."""
        self._check_task(task)
        return self.heads[task](features)

    def _check_task(self, task: str) -> None:
        if task not in self.heads:
            raise LungclError(f"this network has no head for task {task!r}; it has {', '.join(self.tasks)}")

    def head_names(self) -> list[str]:
        """The tasks with a head, in order (their parameters are ``heads.<task>.*``)."""
        return list(self.heads.keys())


def build_resnet(depth: int, tasks: Sequence[str], **kw) -> PreActResNet:
    """A :class:`PreActResNet`; keyword arguments as its constructor."""
    return PreActResNet(depth, tasks, **kw)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["DEPTHS", "NORMS", "TaskBatchNorm", "PreActBasicBlock", "PreActBottleneck", "PreActResNet", "build_resnet",
           "count_parameters"]
