"""Multi-task data: every example carries one label per task (-1 = none), for LIDC and Derm7pt alike.

LIDC: one 2D patch per nodule from the patch store (the data layer's windowing
and augmentation), and per characteristic either
- a binary label from ``lungcl.data.tasks`` (consensus median 1-2 vs 4-5, 3 and
  2.5/3.5 dropped; calcification present 1-5 vs absent 6), or
- a multi-class label, the consensus median rounded half up (2.5 -> 3, 3.5 -> 4:
  the tie of two readers goes to the higher rating) minus 1, so ratings 1-5 are
  classes 0-4 (internal structure 1-4, calcification 1-6). A consensus outside
  the scale (one reader's internal structure 5 in LIDC) counts as no label.
An example without a label for a task is kept for the others and masked out of
that task's loss and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from ..data.nodules import CHARACTERISTICS
from ..data.tasks import make_task
from ..data.batches import augment as augment_batch
from ..data.batches import centre_crop, window_hu
from ..errors import LungclError
from .sampler import MISSING

# the top of each characteristic's rating scale (all start at 1)
RATING_SCALE = {name: 5 for name in CHARACTERISTICS} | {"internal_structure": 4, "calcification": 6}


def multiclass_labels(consensus: pd.Series | np.ndarray, scale: int) -> np.ndarray:
    """Class = round-half-up(consensus median) - 1; NaN or outside 1..scale -> -1."""
    x = np.asarray(consensus, dtype=float)
    rating = np.floor(x + 0.5)
    ok = np.isfinite(rating) & (rating >= 1) & (rating <= scale)
    return np.where(ok, rating - 1, MISSING).astype(np.int64)


def lidc_labels(nodules: pd.DataFrame, tasks: list[str], multiclass: bool) -> tuple[np.ndarray, list[int]]:
    """(labels (nodules, tasks) with -1 = no label, class count per task)."""
    cols, counts = [], []
    for name in tasks:
        if multiclass:
            scale = RATING_SCALE[name]
            cols.append(multiclass_labels(nodules[name], scale))
            counts.append(scale)
        else:
            cols.append(make_task(name).labels(nodules).astype(np.int64))
            counts.append(2)
    return np.stack(cols, axis=1), counts


def lidc_label_names(task: str, multiclass: bool) -> list[str]:
    if multiclass:
        return [f"rating {r}" for r in range(1, RATING_SCALE[task] + 1)]
    return ["negative", "positive"]


class MultiTaskSet(Protocol):
    """What the trainer needs of a split: labels (N, T), patients, and batches of items."""

    labels: np.ndarray
    patient_ids: np.ndarray  # groups for the bootstrap intervals

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def batch(self, indices: Sequence[int], key: int = 0) -> tuple[torch.Tensor, torch.Tensor]: ...


class MultiTaskPatches(torch.utils.data.Dataset):
    """LIDC 2D patches with a label per task: items (x float32 (C, H, W) in [0, 1], y int64 (T,), index)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, patch_px: int, augment: bool = False,
                 seed: int = 0, patient_ids: np.ndarray | None = None):
        self.images, self.labels = images, labels.astype(np.int64)
        self.patient_ids = np.arange(len(labels)) if patient_ids is None else np.asarray(patient_ids)
        self.augment, self.seed, self.epoch, self.patch_px = augment, int(seed), 0, patch_px
        self._windowed: torch.Tensor | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: Sequence[int], key: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches and labels of ``indices``, built as one batch from the in-memory patches
        (:mod:`lungcl.data.batches`); the augmentation is seeded once by (seed, epoch, key)."""
        if self._windowed is None:
            self._windowed = window_hu(self.images)
        idx = np.asarray(indices, dtype=np.int64)
        x = self._windowed[torch.from_numpy(idx)]
        if self.augment:
            state = np.random.SeedSequence([self.seed, self.epoch, int(key)]).generate_state(1)[0]
            x = augment_batch(x, self.patch_px, torch.Generator().manual_seed(int(state)))
        else:
            x = centre_crop(x, self.patch_px)
        return x.contiguous(), torch.from_numpy(self.labels[idx])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y = self.batch([index], key=index)
        return x[0], y[0], index


@dataclass
class MultiTaskData:
    """Train / val / test sets of one multi-task problem, with what the record needs to describe it."""

    tasks: list[str]
    n_classes: list[int]
    label_names: dict[str, list[str]]
    train: MultiTaskSet
    val: MultiTaskSet
    test: MultiTaskSet
    in_channels: int
    provenance: dict = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, list[int]]]:
        """Per task, per split: examples of each class (missing labels not counted)."""
        out: dict[str, dict[str, list[int]]] = {}
        for t, task in enumerate(self.tasks):
            out[task] = {}
            for name in ("train", "val", "test"):
                y = getattr(self, name).labels[:, t]
                out[task][name] = [int((y == c).sum()) for c in range(self.n_classes[t])]
        return out


def load_lidc_multitask(data_dir: str | Path, tasks: list[str], fold: int, profile: str = "cpu",
                        source: str = "phantom", multiclass: bool = False, split_seed: int = 0,
                        seed: int = 0, context_slices: int = 0, augment: bool = True) -> MultiTaskData:
    """The store's nodules split by patient (train = other folds, val = ``fold``, test), all tasks at once."""
    from ..data.datasets import load_task_data  # the patch store's reader

    data = load_task_data(data_dir, profile, source, split_seed, context_slices)
    roles = data.split.roles(fold)
    role = np.array([roles[p] for p in data.split.part_of(data.nodules["patient_id"])])
    labels, n_classes = lidc_labels(data.nodules, tasks, multiclass)
    keep = (labels != MISSING).any(axis=1)  # a nodule with no label at all teaches nothing
    patch_px = data.store.settings.patch_px

    def part(name: str, aug: bool) -> MultiTaskPatches:
        idx = np.flatnonzero(keep & (role == name))
        return MultiTaskPatches(data.images[idx], labels[idx], patch_px, aug, seed,
                                patient_ids=data.nodules["patient_id"].to_numpy()[idx])

    out = MultiTaskData(list(tasks), n_classes, {t: lidc_label_names(t, multiclass) for t in tasks},
                        part("train", augment), part("val", False), part("test", False),
                        in_channels=1 + 2 * context_slices,
                        provenance={"dataset": "lidc", **data.store.provenance})
    for t, task in enumerate(tasks):
        if len(set(out.train.labels[:, t].tolist()) - {MISSING}) < 2:
            raise LungclError(f"task {task}: the training split of fold {fold} has fewer than 2 classes "
                              f"({out.counts()[task]['train']}); use a larger profile or drop the task")
    return out


def load_derm7pt_multitask(root: str | Path, tasks: list[str] | None = None, image_px: int = 64,
                           seed: int = 0, augment: bool = True) -> MultiTaskData:
    """The Derm7pt release's train / valid / test splits as a multi-task problem (RGB images)."""
    from .derm7pt import DERM7PT_TASK_NAMES, Derm7ptDataset, label_names, n_classes, read_derm7pt

    names = tuple(tasks) if tasks else DERM7PT_TASK_NAMES
    release = read_derm7pt(root, names)
    sets = {s: Derm7ptDataset(release, s, size=image_px, augment=augment and s == "train", seed=seed)
            for s in ("train", "valid", "test")}
    return MultiTaskData(list(names), [n_classes(t) for t in names], {t: label_names(t) for t in names},
                         sets["train"], sets["valid"], sets["test"], in_channels=3,
                         provenance={"dataset": "derm7pt", **release.provenance})
