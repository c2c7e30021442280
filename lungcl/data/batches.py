"""The thesis's preprocessing and augmentation on whole batches, at the speed of the network.

Same distribution as :func:`lungcl.data.transforms.train_transform` (the per-patch MONAI
reference; tests compare the two), but a batch is built with a handful of tensor ops:
index the in-memory patches, window HU -1000..600 -> [0, 1], then ONE ``affine_grid`` /
``grid_sample`` per batch whose per-sample matrix holds

* the rotation (uniform +-20 degrees about the centre, border padding, bilinear),
* the flips / transposition (uniform over the 8 symmetries of the square: the reference's
  two RandFlip + RandRotate90 reach each of them with probability 1/8),
* the translation (the reference's random crop within +-3 px of the centre) and the crop
  itself (the grid has the patch's size).

Flips commute with the rotation up to the sign of the angle and the crop offset's
distribution is symmetric, so folding them into one matrix leaves the distribution unchanged.
Evaluation takes the centre crop by slicing, exactly like ``eval_transform``.
Random draws come from one ``torch.Generator`` per stream: same seed, same batches.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .transforms import HU_WINDOW, MAX_ROTATION_DEG, MAX_SHIFT_PX

PIPELINE_VERSION = 2  # 1: per-patch MONAI in a DataLoader; 2: these batched ops (another random stream)

# the 8 symmetries of the square as 2x2 matrices on (x, y): identity, flips, transpositions, rot90s
_SQUARE_SYMMETRIES = torch.tensor([
    [[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
    [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]],
], dtype=torch.float32)


def window_hu(images: np.ndarray | Tensor) -> Tensor:
    """HU -> [0, 1] over the window -1000..600, clipped, float32 (the arithmetic of MONAI's
    ScaleIntensityRange, so that the numbers are the same)."""
    x = torch.as_tensor(images).to(torch.float32)
    lo, hi = HU_WINDOW
    return ((x - lo) / (hi - lo)).clamp_(0.0, 1.0)


def centre_crop(x: Tensor, patch_px: int) -> Tensor:
    """The central ``patch_px`` square of (N, C, S, S) patches (MONAI CenterSpatialCrop's corner)."""
    r0, c0 = x.shape[-2] // 2 - patch_px // 2, x.shape[-1] // 2 - patch_px // 2
    return x[..., r0:r0 + patch_px, c0:c0 + patch_px]


def augment(x: Tensor, patch_px: int, generator: torch.Generator) -> Tensor:
    """Randomly rotated, flipped / transposed and shifted ``patch_px`` crops of windowed (N, C, S, S)."""
    n, _, side, side_w = x.shape
    if side != side_w:
        raise ValueError(f"patches must be square, got {side}x{side_w}")
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION_DEG)
    symmetry = _SQUARE_SYMMETRIES[torch.randint(0, 8, (n,), generator=generator)]
    span = patch_px + 2 * MAX_SHIFT_PX  # the reference's centre crop, then a random crop in it
    first = side // 2 - span // 2
    start = first + torch.randint(0, span - patch_px + 1, (n, 2), generator=generator)  # (row, col)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    linear = rotation @ symmetry  # (n, 2, 2) on normalised (x, y)
    # output pixel j of the crop is input pixel start + j: normalised x_in = x_out * P/S + shift
    shift = (2 * start.flip(-1).to(torch.float32) + patch_px - side) / side  # (x, y) order
    theta = torch.cat([linear * (patch_px / side), (linear @ shift.unsqueeze(-1))], dim=-1)
    grid = F.affine_grid(theta, [n, x.shape[1], patch_px, patch_px], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class PatchBatches:
    """Batches of a :class:`~lungcl.data.datasets.PatchDataset` from its in-memory patches.

    Each iteration is one epoch: the dataset's items (up-sampled order included) in an order
    shuffled by ``seed``'s generator, augmented when the dataset is; the last short batch is
    dropped when ``drop_last``. Successive iterations continue the same random stream.
    """

    def __init__(self, dataset, batch_size: int, seed: int, shuffle: bool = True,
                 drop_last: bool = False):
        self.x = dataset.windowed()
        self.y = torch.as_tensor(np.asarray(dataset.labels, dtype=np.int64))
        self.order = torch.as_tensor(np.asarray(dataset.order, dtype=np.int64))
        self.patch_px, self.augment = dataset.patch_px, dataset.augment
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.order)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.order)
        order = self.order[torch.randperm(n, generator=self.generator)] if self.shuffle else self.order
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.x[idx]
            x = augment(x, self.patch_px, self.generator) if self.augment else centre_crop(x, self.patch_px)
            yield x.contiguous(), self.y[idx]
