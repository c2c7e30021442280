"""torch Datasets of 2D nodule patches per task and split, read from the patch store.

A patch is the nodule's central axial slice of the 1 mm crop (plus
``context_slices`` neighbours above and below as extra channels). Labels come
from the task rule on the readers' consensus; the split is the one global
patient split. Only the training split is augmented and class-balanced (the
minority class up-sampled, as in the thesis).
"""

from __future__ import annotations

import zlib

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic import atomic_write
from ..errors import LungclError
from .nodules import load_nodule_table
from .prepare import select_nodules
from .splits import PatientSplit, load_or_make_split
from .store import PatchStore, central_slices, open_store
from .batches import centre_crop, window_hu
from .tasks import Task
from .transforms import apply, eval_transform, item_seed, train_transform


class PatchDataset(Dataset):
    """2D patches of one task in one split: items are (x float32 (C, H, W) in [0, 1], y int64).

    Items go through the per-patch MONAI transforms (the reference); training and evaluation
    take whole batches from :meth:`windowed` with :mod:`lungcl.data.batches` (same distribution).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, patient_ids: np.ndarray,
                 nodule_ids: np.ndarray, patch_px: int, augment: bool = False, balance: bool = False,
                 seed: int = 0):
        self.images, self.labels = images, labels.astype(np.int64)
        self.patient_ids, self.nodule_ids = patient_ids, nodule_ids
        self.augment, self.seed, self.epoch, self.patch_px = augment, seed, 0, patch_px
        self._windowed: torch.Tensor | None = None
        self._transform = None  # the per-item MONAI reference, built when an item is asked for
        self.order = balanced_order(self.labels, seed) if balance else np.arange(len(self.labels))

    def set_epoch(self, epoch: int) -> None:
        """Augmentation of epoch ``epoch``: deterministic given (seed, epoch, item)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.order)

    @property
    def transform(self):
        """The per-patch MONAI transform of this dataset (the reference of the batched path)."""
        if self._transform is None:
            self._transform = train_transform(self.patch_px) if self.augment else eval_transform(self.patch_px)
        return self._transform

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = int(self.order[index])
        x = self.images[i].astype(np.float32)
        if self.augment:
            self.transform.set_random_state(seed=item_seed(self.seed, self.epoch, index))
        return apply(self.transform, x), torch.tensor(self.labels[i])

    def windowed(self) -> torch.Tensor:
        """Every patch (un-cropped, in stored order) windowed to [0, 1], float32; built once."""
        if self._windowed is None:
            self._windowed = window_hu(self.images)
        return self._windowed

    def eval_tensor(self) -> torch.Tensor:
        """Every item's un-augmented patch (centre crop) as one (N, C, P, P) tensor, in item order."""
        return centre_crop(self.windowed()[torch.as_tensor(self.order)], self.patch_px).contiguous()

    def class_counts(self) -> dict[str, int]:
        return {"negative": int((self.labels == 0).sum()), "positive": int((self.labels == 1).sum())}


def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices with the minority class up-sampled (repeated, then topped up at random) to parity."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if len(pos) == 0 or len(neg) == 0:
        return np.arange(len(labels))
    minority, majority = (pos, neg) if len(pos) < len(neg) else (neg, pos)
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([majority, upsample(minority, len(majority), rng)]))


def upsample(indices: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``indices`` repeated whole, then topped up at random without repeats, to ``k`` items (k >= len)."""
    reps, extra = divmod(k, len(indices))
    return np.concatenate([np.tile(indices, reps), rng.choice(indices, extra, replace=False)])


def class_balanced_sample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n // 2`` items per class (at least one): drawn without repeats from a class that
    has that many, else the whole class, up-sampled (:func:`upsample`) so that each class weighs half in a
    mean over the sample, as in the up-sampled training batches. With one class only: ``n`` of it."""
    classes = [np.flatnonzero(labels == c) for c in (0, 1)]
    classes = [c for c in classes if len(c)]
    rng = np.random.default_rng(seed)
    if len(classes) < 2:
        every = np.arange(len(labels))
        return np.sort(rng.choice(every, min(n, len(every)), replace=False))
    k = max(n // 2, 1)
    return np.sort(np.concatenate([rng.choice(c, k, replace=False) if len(c) >= k else upsample(c, k, rng)
                                   for c in classes]))


@dataclass
class TaskSplits:
    """One task's train / val / test datasets for one cross-validation fold."""

    task: Task
    train: PatchDataset
    val: PatchDataset
    test: PatchDataset
    provenance: dict = field(default_factory=dict)


@dataclass
class TaskData:
    """The nodules of the store with their patches, patients and split parts."""

    store: PatchStore
    nodules: "object"  # pandas DataFrame, rows aligned with ``images``
    images: np.ndarray
    split: PatientSplit


def load_task_data(data_dir: str | Path, profile: str = "cpu", source: str = "phantom",
                   split_seed: int = 0, context_slices: int = 0) -> TaskData:
    """The store's nodules, their central slices and the patient split."""
    store = open_store(data_dir, source, profile)
    table = select_nodules(load_nodule_table(data_dir, build=False), store.settings)
    split = load_or_make_split(data_dir, table, split_seed)
    ids, images = central_slices(store, context_slices)
    nodules = table.set_index("nodule_id").loc[ids].reset_index()
    return TaskData(store, nodules, images, split)


def task_seed(seed: int, task: str) -> int:
    """A seed from the run seed and a task's NAME (crc32: the same in every process and order)."""
    return (int(seed) * 1_000_003 + zlib.crc32(task.encode())) % 2**31


def load_task_datasets(data_dir: str | Path, tasks: list[Task], fold: int, profile: str = "cpu",
                       source: str = "phantom", split_seed: int = 0, seed: int = 0,
                       context_slices: int = 0, augment: bool = True, balance: bool = True,
                       seed_by_name: bool = False) -> dict[str, TaskSplits]:
    """Per task: train (folds other than ``fold``), val (``fold``) and test datasets. Each task's
    up-sampling and augmentation are seeded by ``seed`` and the task's position in ``tasks``, or with
    ``seed_by_name`` by the task's name (:func:`task_seed`), the same in whatever order it comes."""
    data = load_task_data(data_dir, profile, source, split_seed, context_slices)
    roles = data.split.roles(fold)
    part = data.split.part_of(data.nodules["patient_id"])
    role = np.array([roles[p] for p in part])
    patch_px = data.store.settings.patch_px
    out = {}
    for t_index, task in enumerate(tasks):
        labels = task.labels(data.nodules)

        def subset(name: str, augment_: bool, balance_: bool) -> PatchDataset:
            idx = np.flatnonzero((labels >= 0) & (role == name))
            return PatchDataset(data.images[idx], labels[idx], data.nodules["patient_id"].to_numpy()[idx],
                                data.nodules["nodule_id"].to_numpy()[idx], patch_px, augment_, balance_,
                                seed=task_seed(seed, task.name) if seed_by_name else seed * 1000 + t_index)

        splits = TaskSplits(task, subset("train", augment, balance), subset("val", False, False),
                            subset("test", False, False), provenance=data.store.provenance)
        for name in ("train", "val", "test"):
            ds = getattr(splits, name)
            if len(set(ds.labels.tolist())) < 2:
                raise LungclError(f"task {task.name}: the {name} split of fold {fold} has only one class "
                                  f"({ds.class_counts()}); use a larger profile or another rule")
        out[task.name] = splits
    return out
