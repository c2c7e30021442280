"""The sample EWC's Fisher is computed on: class-balanced, the rarer class repeated when it is small."""

from __future__ import annotations

import numpy as np
import torch

from lungcl.data.batches import PatchBatches
from lungcl.data.datasets import PatchDataset, balanced_order, class_balanced_sample
from lungcl.experiments.trainer import fisher_dataset


def test_a_large_enough_class_gives_half_the_sample_without_repeats():
    labels = np.array([0] * 150 + [1] * 50)
    idx = class_balanced_sample(labels, 64, seed=3)
    assert len(idx) == 64 and (labels[idx] == 1).sum() == 32 and len(np.unique(idx)) == 64
    assert np.array_equal(idx, class_balanced_sample(labels, 64, seed=3))  # seeded
    assert not np.array_equal(idx, class_balanced_sample(labels, 64, seed=4))


def test_a_small_class_is_taken_whole_and_repeated_to_half_the_sample():
    labels = np.array([0] * 95 + [1] * 5)  # 5 % positives, as lobulation's training split
    idx = class_balanced_sample(labels, 20, seed=0)
    pos = idx[labels[idx] == 1]
    assert len(idx) == 20 and len(pos) == 10
    assert sorted(set(pos)) == list(range(95, 100)) and np.bincount(pos)[95:].tolist() == [2] * 5
    odd = class_balanced_sample(labels, 13, seed=0)  # 13 // 2 per class
    assert len(odd) == 12 and (labels[odd] == 1).sum() == 6
    uneven = class_balanced_sample(labels, 14, seed=1)  # 7 per class: 5 whole + 2 drawn without repeats
    assert np.bincount(uneven[labels[uneven] == 1])[95:].sum() == 7


def test_one_class_only_gives_n_of_it():
    labels = np.zeros(30, dtype=int)
    idx = class_balanced_sample(labels, 10, seed=0)
    assert len(idx) == 10 and len(np.unique(idx)) == 10
    assert len(class_balanced_sample(labels, 100, seed=0)) == 30


def test_balanced_order_still_draws_what_it_drew_before_upsample_was_shared():
    labels = np.array([0] * 23 + [1] * 7)
    for seed in range(3):  # the former inline code, verbatim
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        rng = np.random.default_rng(seed)
        reps, extra = divmod(len(neg), len(pos))
        old = np.sort(np.concatenate([neg, np.tile(pos, reps), rng.choice(pos, extra, replace=False)]))
        assert np.array_equal(balanced_order(labels, seed), old)


def test_the_fisher_loader_yields_both_classes_equally_and_unaugmented():
    rng = np.random.default_rng(0)
    images = rng.normal(-500, 200, (60, 3, 12, 12)).astype(np.float32)
    labels = np.array([0] * 54 + [1] * 6)
    train = PatchDataset(images, labels, np.array(["p"] * 60), np.array([f"n{i}" for i in range(60)]), 8,
                         augment=True, balance=True, seed=0)
    ds = fisher_dataset(train, 8, 32, seed=5)
    assert not ds.augment and len(ds) == 32
    ys = torch.cat([y for _, y in PatchBatches(ds, 16, seed=5, shuffle=True)])
    assert ys.tolist().count(1) == 16 and ys.tolist().count(0) == 16
    x, _ = next(iter(PatchBatches(ds, 32, seed=5, shuffle=False)))
    assert torch.equal(x, ds.eval_tensor())  # centre crops, no augmentation
