"""Label-balanced batches, repeat weights and the masked focal loss."""

import numpy as np
import pytest
import torch

from lungcl.errors import LungclError
from lungcl.mtl.data import multiclass_labels
from lungcl.mtl.loss import MaskedMultiTaskFocalLoss
from lungcl.mtl.sampler import LabelBalancedBatchSampler, repeat_weights

LABELS = np.array([  # 8 examples, 2 tasks; -1 = no label
    [0, 2], [0, 1], [1, 0], [1, -1], [0, 0], [1, 2], [-1, 1], [0, 0],
])


def test_batches_hold_k_per_label_of_every_task():
    k = 3
    sampler = LabelBalancedBatchSampler(LABELS, k=k, n_batches=4, seed=1)
    assert sampler.batch_size == k * (2 + 3) and len(sampler) == 4
    for batch in sampler:
        assert len(batch) == sampler.batch_size
        chunks = [batch[i * k:(i + 1) * k] for i in range(5)]
        for (task, label, _), chunk in zip(sampler.pools, chunks):
            assert all(LABELS[i, task] == label for i in chunk)
        assert [(t, c) for t, c, _ in sampler.pools] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]


def test_sampler_draws_without_replacement_when_it_can_and_is_deterministic():
    sampler = LabelBalancedBatchSampler(LABELS, k=2, n_batches=3, seed=7)
    first = list(sampler)
    assert first == list(LabelBalancedBatchSampler(LABELS, k=2, n_batches=3, seed=7))
    for batch in first:
        for i in range(len(sampler.pools)):
            chunk = batch[2 * i:2 * i + 2]
            assert len(set(chunk)) == 2  # every pool has >= 2 examples
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_repeat_weights_undo_repeats():
    idx = [4, 2, 4, 7, 4, 2]
    w = repeat_weights(idx)
    np.testing.assert_allclose(w.numpy(), [1 / 3, 1 / 2, 1 / 3, 1, 1 / 3, 1 / 2])
    # every distinct example weighs 1 in total
    totals = {i: float(w[[j for j, v in enumerate(idx) if v == i]].sum()) for i in set(idx)}
    assert totals == pytest.approx({2: 1.0, 4: 1.0, 7: 1.0})


def test_sampler_errors():
    with pytest.raises(LungclError, match="no labelled example"):
        LabelBalancedBatchSampler(np.array([[0, -1], [1, -1]]), k=1, n_batches=1)
    with pytest.raises(LungclError, match="shape"):
        LabelBalancedBatchSampler(np.array([0, 1]), k=1, n_batches=1)


def test_focal_loss_masks_missing_labels_and_weights_examples():
    torch.manual_seed(0)
    loss_fn = MaskedMultiTaskFocalLoss(gamma=2.0)
    z0 = torch.randn(4, 2, requires_grad=True)
    z1 = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([[0, 2], [1, -1], [-1, 0], [1, 1]])
    w = torch.tensor([1.0, 0.5, 1.0, 0.25])
    total, per_task = loss_fn([z0, z1], y, w)

    def focal(z, t):
        p = z.softmax(1)[torch.arange(len(t)), t]
        return -(1 - p) ** 2 * p.log()

    rows0, rows1 = [0, 1, 3], [0, 2, 3]
    ref0 = (w[rows0] * focal(z0[rows0], y[rows0, 0])).sum() / w[rows0].sum()
    ref1 = (w[rows1] * focal(z1[rows1], y[rows1, 1])).sum() / w[rows1].sum()
    torch.testing.assert_close(per_task, torch.stack([ref0, ref1]).detach())
    torch.testing.assert_close(total, ref0 + ref1)
    total.backward()
    assert torch.all(z0.grad[2] == 0) and torch.all(z1.grad[1] == 0)  # masked rows get no gradient
    assert z0.grad[0].abs().sum() > 0


def test_a_task_without_labels_in_the_batch_adds_nothing():
    loss_fn = MaskedMultiTaskFocalLoss()
    z = [torch.randn(2, 2, requires_grad=True), torch.randn(2, 2, requires_grad=True)]
    total, per_task = loss_fn(z, torch.tensor([[0, -1], [1, -1]]))
    assert per_task[1] == 0 and torch.isfinite(total)
    total.backward()
    assert torch.all(z[1].grad == 0)


def test_multiclass_labels_round_half_up_and_mask_out_of_scale():
    got = multiclass_labels(np.array([1.0, 2.5, 3.5, 5.0, np.nan, 4.5]), scale=4)
    assert got.tolist() == [0, 2, 3, -1, -1, -1]


def test_lidc_labels_binary_rule_and_multiclass(nodules):
    from lungcl.data.tasks import make_task
    from lungcl.mtl.data import lidc_labels

    tasks = ["malignancy", "calcification", "internal_structure"]
    binary, counts = lidc_labels(nodules, tasks, multiclass=False)
    assert counts == [2, 2, 2] and binary.shape == (len(nodules), 3)
    for k, name in enumerate(tasks):
        np.testing.assert_array_equal(binary[:, k], make_task(name).labels(nodules))
    assert (binary[nodules["malignancy"].to_numpy() == 3, 0] == -1).all()  # rating 3: no label
    multi, counts = lidc_labels(nodules, tasks, multiclass=True)
    assert counts == [5, 6, 4]
    mal = nodules["malignancy"].to_numpy()
    np.testing.assert_array_equal(multi[mal == 2.5, 0], 2)  # tie 2.5 -> rating 3 -> class 2
    assert multi[:, 2].max() <= 3 and (multi[nodules["internal_structure"].to_numpy() > 4, 2] == -1).all()
