"""Metrics on hand-computed confusion matrices, accuracy-matrix summaries, patient bootstrap, t-intervals."""

import math

import numpy as np
import pytest

from lungcl.errors import LungclError
from lungcl.metrics import (accuracy_matrix, average_accuracy, backward_transfer, binary_metrics, bootstrap_ci,
                            forgetting, forward_transfer, mean_ci, patient_resamples)

Y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
P = [0.9, 0.8, 0.4, 0.6, 0.1, 0.2, 0.7, 0.3, 0.55, 0.05]


def test_binary_metrics_by_hand():
    m = binary_metrics(Y, P)
    # predicted positive at p >= 0.5: 1 1 0 1 | 0 0 1 0 1 0
    assert (m["tp"], m["fn"], m["fp"], m["tn"], m["n"]) == (3, 1, 2, 4, 10)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert m["auc"] == pytest.approx(21 / 24)  # 21 of the 24 (positive, negative) pairs ordered right
    strict = binary_metrics(Y, P, threshold=0.75)
    assert (strict["tp"], strict["fn"], strict["fp"], strict["tn"]) == (2, 2, 0, 6)
    assert strict["accuracy"] == pytest.approx(0.8)


def test_one_class_gives_nan_where_undefined():
    m = binary_metrics([0, 0, 0], [0.2, 0.7, 0.1])
    assert math.isnan(m["auc"]) and math.isnan(m["sensitivity"])
    assert m["specificity"] == pytest.approx(2 / 3) and m["balanced_accuracy"] == pytest.approx(2 / 3)


def test_bad_inputs_are_user_errors():
    with pytest.raises(LungclError):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(LungclError):
        binary_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(LungclError):
        binary_metrics([], [])
    with pytest.raises(LungclError):
        bootstrap_ci(Y, P, list(range(10)), metric="f1")


R = np.array([[0.90, 0.50, 0.40],
              [0.95, 0.80, 0.50],
              [0.60, 0.75, 0.85]])


def test_accuracy_matrix_from_stage_dicts():
    stages = [{"A": 0.9}, {"A": 0.95, "B": 0.8}, {"A": 0.6, "B": 0.75, "C": 0.85}]
    got = accuracy_matrix(stages, ["A", "B", "C"])
    assert got.shape == (3, 3) and np.isnan(got[0, 1]) and np.isnan(got[1, 2])
    assert got[2].tolist() == [0.6, 0.75, 0.85]
    with pytest.raises(LungclError):
        accuracy_matrix([{"D": 1.0}], ["A"])


def test_continual_summaries_by_hand():
    assert average_accuracy(R) == pytest.approx((0.6 + 0.75 + 0.85) / 3)
    f = forgetting(R)
    assert f[0] == pytest.approx(0.95 - 0.60)  # the best earlier stage, not the first
    assert f[1] == pytest.approx(0.80 - 0.75)
    assert np.isnan(f[2])
    assert backward_transfer(R) == pytest.approx(((0.60 - 0.90) + (0.75 - 0.80)) / 2)
    # R[i, i] against the same task learned alone: B 0.80 vs 0.70, C 0.85 vs 0.90
    assert forward_transfer(R, [0.9, 0.70, 0.90]) == pytest.approx(((0.80 - 0.70) + (0.85 - 0.90)) / 2)
    with pytest.raises(LungclError):
        forward_transfer(R, [0.5, 0.5])
    with pytest.raises(LungclError):
        backward_transfer(R[:2])


def test_patient_resamples_keep_patients_whole():
    ids = np.array(["p1", "p1", "p2", "p3", "p3", "p3", "p4"])
    for idx in patient_resamples(ids, 50, seed=3):
        counts = np.bincount(idx, minlength=len(ids))
        draws = {}
        for i, pid in enumerate(ids):
            draws.setdefault(pid, set()).add(counts[i])
        assert all(len(c) == 1 for c in draws.values())  # every nodule of a patient, equally often
        assert sum(c.pop() for c in draws.values()) == 4  # as many patient draws as patients


def test_bootstrap_is_patient_level_and_deterministic():
    rng = np.random.default_rng(0)
    n = 40
    y = rng.integers(0, 2, n)
    p = np.clip(y * 0.3 + rng.normal(0.35, 0.25, n), 0, 1)
    pid = np.arange(n)
    point, lo, hi = bootstrap_ci(y, p, pid, n_boot=300, seed=1)
    assert point == pytest.approx(binary_metrics(y, p)["accuracy"]) and lo <= point <= hi and lo < hi
    assert bootstrap_ci(y, p, pid, n_boot=300, seed=1) == (point, lo, hi)
    assert bootstrap_ci(y, p, pid, n_boot=300, seed=2) != (point, lo, hi)
    # Every patient gets a second, identical nodule: a patient-level bootstrap gives the same
    # interval (a nodule-level one would wrongly narrow it, counting the copies as evidence).
    twice = bootstrap_ci(np.repeat(y, 2), np.repeat(p, 2), np.repeat(pid, 2), n_boot=300, seed=1)
    assert twice == pytest.approx((point, lo, hi))
    auc = bootstrap_ci(y, p, pid, metric="auc", n_boot=200)
    assert auc[1] <= auc[0] <= auc[2]


def test_mean_ci():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n), s = 1
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    one = mean_ci([0.7])
    assert one[0] == 0.7 and math.isnan(one[1]) and math.isnan(one[2])
    assert mean_ci([1.0, float("nan"), 3.0])[0] == 2.0
    assert all(math.isnan(v) for v in mean_ci([]))


def test_counts_and_balanced_accuracy_equal_scikit_learn_exactly():
    """binary_metrics counts by numpy; its numbers are scikit-learn's to the last bit."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

    rng = np.random.default_rng(0)
    for n in [2, 3, 7, 50, 441] * 20:
        y = rng.integers(0, 2, n)
        p = rng.random(n).round(int(rng.integers(1, 4)))  # ties and p == 0.5 on the threshold
        m = binary_metrics(y, p)
        pred = (p >= 0.5).astype(int)
        tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel().tolist()
        assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
        if 0 < y.sum() < n:
            assert m["balanced_accuracy"] == balanced_accuracy_score(y, pred)
            assert m["auc"] == roc_auc_score(y, p)
        else:
            assert math.isnan(m["auc"])
