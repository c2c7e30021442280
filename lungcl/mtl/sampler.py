"""The source's label-balanced batches: k examples of every label of every task, weighted to undo repeats.

A batch is drawn task by task and label by label: for task t and each label c
that task has in the training set, k examples whose task-t label is c (without
replacement when at least k exist, otherwise with replacement). A batch holds
sum_t (labels of t) x k draws; one nodule can be drawn more than once (e.g. a
malignant nodule is also drawn as a lobulated one). Each draw gets weight
``1 / m``, m = how often its nodule occurs in the batch, so that every distinct
nodule weighs 1 in total however many times it was drawn.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from ..errors import LungclError

MISSING = -1


class LabelBalancedBatchSampler(Sampler[list[int]]):
    """``n_batches`` batches of dataset indices, k per (task, label); deterministic given (seed, epoch)."""

    def __init__(self, labels: np.ndarray, k: int, n_batches: int, seed: int = 0):
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise LungclError(f"labels must be (examples, tasks), got shape {labels.shape}")
        if k < 1 or n_batches < 1:
            raise LungclError(f"k and n_batches must be >= 1, got k={k}, n_batches={n_batches}")
        self.k, self.n_batches, self.seed, self.epoch = int(k), int(n_batches), int(seed), 0
        # (task, label, indices having it), in task order then label order
        self.pools: list[tuple[int, int, np.ndarray]] = []
        for t in range(labels.shape[1]):
            present = sorted(int(c) for c in np.unique(labels[:, t]) if c != MISSING)
            if not present:
                raise LungclError(f"task {t} has no labelled example to sample")
            for c in present:
                self.pools.append((t, c, np.flatnonzero(labels[:, t] == c)))

    @property
    def batch_size(self) -> int:
        return self.k * len(self.pools)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def batch(self, b: int) -> list[int]:
        """Batch ``b`` of the current epoch (the same whenever it is asked for)."""
        rng = np.random.default_rng([self.seed, self.epoch, b])
        out: list[int] = []
        for _, _, pool in self.pools:
            out.extend(rng.choice(pool, self.k, replace=len(pool) < self.k).tolist())
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for b in range(self.n_batches):
            yield self.batch(b)


def repeat_weights(indices: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Weight 1/m for each draw, m = occurrences of its index in the batch (float32, same order)."""
    idx = torch.as_tensor(np.asarray(indices)).long()
    _, inverse, counts = torch.unique(idx, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].float()
