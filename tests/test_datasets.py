"""torch Datasets on the patch store: windowing, augmentation, balancing, no leakage."""

import numpy as np
import torch

from lungcl.data.datasets import balanced_order, load_task_datasets
from lungcl.data.tasks import resolve_tasks


def test_shapes_window_and_splits(smoke_store, data_dir):
    tasks = resolve_tasks("ABC")
    data = load_task_datasets(data_dir, tasks, fold=0, profile="smoke", context_slices=1)
    patch = smoke_store.settings.patch_px
    for name, splits in data.items():
        x, y = splits.train[0]
        assert x.shape == (3, patch, patch) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert y.dtype == torch.int64
        tr, va, te = (set(getattr(splits, s).patient_ids) for s in ("train", "val", "test"))
        assert not tr & va and not tr & te and not va & te
        assert splits.provenance["source"] == "phantom"


def test_train_is_balanced_eval_is_not(smoke_store, data_dir):
    data = load_task_datasets(data_dir, resolve_tasks("B"), fold=1, profile="smoke")
    s = data["lobulation"]
    train_labels = s.train.labels[s.train.order]
    assert abs(int((train_labels == 1).sum()) - int((train_labels == 0).sum())) == 0
    assert len(s.val) == len(s.val.labels) and (s.val.labels == 1).sum() < (s.val.labels == 0).sum()


def test_augmentation_is_deterministic_per_epoch_and_eval_is_fixed(smoke_store, data_dir):
    a = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke", seed=7)["malignancy"]
    b = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke", seed=7)["malignancy"]
    assert torch.equal(a.train[3][0], b.train[3][0])
    first = a.train[3][0]
    a.train.set_epoch(1)
    assert not torch.equal(first, a.train[3][0])
    assert torch.equal(a.test[0][0], b.test[0][0])
    c = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke", augment=False)["malignancy"]
    # without augmentation, train items are the windowed centre crop of the stored slice
    hu = smoke_store.load(c.train.nodule_ids[0])[0]
    side, patch = hu.shape[0], smoke_store.settings.patch_px
    lo = (side - patch) // 2
    expected = np.clip((hu[side // 2, lo:lo + patch, lo:lo + patch] + 1000) / 1600, 0, 1)
    assert np.allclose(c.train[int(np.flatnonzero(c.train.order == 0)[0])][0][0].numpy(), expected, atol=1e-6)


def test_balanced_order_upsamples_minority():
    labels = np.array([0] * 10 + [1] * 3)
    order = balanced_order(labels, seed=0)
    assert (labels[order] == 1).sum() == (labels[order] == 0).sum() == 10
    assert set(order[labels[order] == 1]) == {10, 11, 12}
    assert np.array_equal(order, balanced_order(labels, seed=0))
