"""The thesis's preprocessing and augmentation, as MONAI transforms on (C, H, W) patches.

Window -1000..600 HU -> [0, 1] (ch. 4.2). Training augmentation (ch. 4.2):
rotation by a bounded random angle about the centre, the 8 flips/transposes of
the square (left-right, up-down and diagonal flips: two RandFlip + RandRotate90),
and a translation (random crop of the patch within a few pixels of the centre).
Evaluation takes the centre crop.

These per-patch transforms are the reference; runs use the batched equivalent in
:mod:`lungcl.data.batches`. MONAI is imported when a transform is built (its import
takes over a second, which a run does not need).
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from monai.transforms import Compose, ScaleIntensityRange

HU_WINDOW = (-1000.0, 600.0)
MAX_ROTATION_DEG = 20.0
MAX_SHIFT_PX = 3


def window() -> ScaleIntensityRange:
    """HU window -1000..600 mapped to [0, 1], clipped."""
    from monai.transforms import ScaleIntensityRange

    return ScaleIntensityRange(a_min=HU_WINDOW[0], a_max=HU_WINDOW[1], b_min=0.0, b_max=1.0, clip=True)


def eval_transform(patch_px: int) -> Compose:
    from monai.transforms import CenterSpatialCrop, Compose

    return Compose([window(), CenterSpatialCrop(patch_px)])


def train_transform(patch_px: int) -> Compose:
    """Random rotation, flips, transposition and translation, then the window."""
    from monai.transforms import CenterSpatialCrop, Compose, RandFlip, RandRotate, RandRotate90, RandSpatialCrop

    return Compose([
        window(),
        RandRotate(range_x=math.radians(MAX_ROTATION_DEG), prob=1.0, keep_size=True,
                   padding_mode="border"),
        RandFlip(prob=0.5, spatial_axis=0),
        RandFlip(prob=0.5, spatial_axis=1),
        RandRotate90(prob=0.5, max_k=1),
        CenterSpatialCrop(patch_px + 2 * MAX_SHIFT_PX),
        RandSpatialCrop(patch_px, random_center=True, random_size=False),
    ])


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one item's augmentation: the same whatever order items are drawn in."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


@contextlib.contextmanager
def plain_tensors() -> Iterator[None]:
    """MONAI without its MetaTensor bookkeeping (same numbers, half the time per patch)."""
    from monai.data import get_track_meta, set_track_meta

    previous = get_track_meta()
    set_track_meta(False)
    try:
        yield
    finally:
        set_track_meta(previous)


def apply(transform: Compose, x: np.ndarray) -> torch.Tensor:
    """``transform`` on one (C, H, W) patch, as a plain float32 tensor."""
    with plain_tensors():
        return torch.as_tensor(transform(torch.from_numpy(x)), dtype=torch.float32)
