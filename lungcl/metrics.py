"""Classification metrics, continual-learning summaries of the accuracy matrix, and confidence intervals.

The thesis's "weighted accuracy" is read as balanced accuracy, (sensitivity + specificity) / 2.
The accuracy matrix R[stage, task] has one row per training stage (after training the
stage's task) and one column per task, both in training order, so R[i, i] is task i
right after its own stage. Intervals resample PATIENTS, not nodules: nodules of one
patient are not independent.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import numpy as np

from .errors import LungclError

COUNT_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity")


def _check_binary(y_true, prob_pos) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(prob_pos, dtype=float)
    if y.ndim != 1 or p.shape != y.shape:
        raise LungclError(f"labels and probabilities must be 1-D and of one length, got {y.shape} and {p.shape}")
    if y.size == 0:
        raise LungclError("no samples to compute metrics on")
    if not np.isin(y, (0, 1)).all():
        raise LungclError(f"labels must be 0 or 1, found {sorted(set(np.unique(y).tolist()) - {0, 1})[:3]}")
    if not np.isfinite(p).all():
        raise LungclError("probabilities contain nan or inf")
    return y.astype(np.int64), p


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _from_counts(tp: float, tn: float, fp: float, fn: float) -> dict[str, float]:
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {"accuracy": _ratio(tp + tn, tp + tn + fp + fn), "sensitivity": sens, "specificity": spec,
            "balanced_accuracy": float(np.nanmean([sens, spec])) if not (np.isnan(sens) and np.isnan(spec))
            else float("nan")}


def binary_metrics(y_true, prob_pos, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, sensitivity, specificity, AUC and the confusion counts.

    A sample is called positive when ``prob_pos >= threshold``. Sensitivity (specificity)
    is nan without positives (negatives); AUC is nan unless both classes are present.
    Balanced accuracy with one class present is the recall of that class (scikit-learn's rule).
    """
    y, p = _check_binary(y_true, prob_pos)
    tp, tn, fp, fn = _counts(y, p >= threshold)
    out = _from_counts(tp, tn, fp, fn)  # balanced accuracy: scikit-learn's (the same divisions)
    out["auc"] = _auc(y, p)
    out.update(tp=tp, tn=tn, fp=fp, fn=fn, n=int(y.size))
    return out


def accuracy_matrix(per_stage: Sequence[Mapping[str, float]], tasks: Sequence[str]) -> np.ndarray:
    """R[stage, task] from one {task: accuracy} per stage; nan where a task was not evaluated."""
    tasks = list(tasks)
    unknown = {t for row in per_stage for t in row} - set(tasks)
    if unknown:
        raise LungclError(f"accuracies for tasks not in {tasks}: {sorted(unknown)}")
    return np.array([[float(row.get(t, np.nan)) for t in tasks] for row in per_stage], dtype=float).reshape(
        len(per_stage), len(tasks))


def _square(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise LungclError(f"the accuracy matrix must be square (one stage per task), got shape {R.shape}")
    return R


def average_accuracy(R: np.ndarray) -> float:
    """Mean accuracy over all tasks after the last stage (Chaudhry et al. 2018, A_T)."""
    R = np.asarray(R, dtype=float)
    return float(np.mean(R[-1]))


def forgetting(R: np.ndarray) -> np.ndarray:
    """Per task j: the best accuracy at an earlier stage minus the final one, max_{j<=l<T-1} R[l, j] - R[T-1, j]
    (Chaudhry et al. 2018), with l from the stage that learned j (earlier rows are an untrained head);
    nan for the last task, which has no later stage."""
    R = _square(R)
    T = R.shape[0]
    out = np.full(T, np.nan)
    for j in range(T - 1):
        out[j] = np.max(R[j:T - 1, j]) - R[T - 1, j]  # stages before j never saw task j
    return out


def backward_transfer(R: np.ndarray) -> float:
    """BWT = mean over tasks i < T-1 of R[T-1, i] - R[i, i] (Lopez-Paz & Ranzato 2017); negative = forgetting."""
    R = _square(R)
    T = R.shape[0]
    if T < 2:
        return float("nan")
    return float(np.mean([R[T - 1, i] - R[i, i] for i in range(T - 1)]))


def forward_transfer(R: np.ndarray, single_task: Sequence[float]) -> float:
    """FWT = mean over tasks i > 0 of R[i, i] - s_i: how much better (or worse) each later task is
    learned after the earlier ones than alone from scratch (``single_task[i]``, same budget).

    Not Lopez-Paz & Ranzato's R[i-1, i] - b_i: with one head per task, task i's head is untrained
    before stage i, so R[i-1, i] measures a random head, not transfer."""
    R = _square(R)
    s = np.asarray(single_task, dtype=float)
    T = R.shape[0]
    if s.shape != (T,):
        raise LungclError(f"need one single-task accuracy per task ({T}), got {s.shape}")
    if T < 2:
        return float("nan")
    return float(np.mean([R[i, i] - s[i] for i in range(1, T)]))


def patient_resamples(patient_ids, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n_boot`` index arrays, each drawing as many patients as there are, with replacement,
    and taking every sample (nodule) of a drawn patient along, once per draw."""
    _, inverse = np.unique(np.asarray(patient_ids), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])


def _counts(y: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, tn, fp, fn) of boolean predictions against 0/1 labels."""
    tp = int(np.sum(pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    return tp, tn, int(np.sum(pred & (y == 0))), int(np.sum(~pred & (y == 1)))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """scikit-learn's ROC AUC; nan unless both classes are present."""
    if not 0 < y.sum() < y.size:
        return float("nan")
    from sklearn.metrics import roc_auc_score  # imported here: scikit-learn costs ~1 s of start-up

    return float(roc_auc_score(y, p))


def _metric(y: np.ndarray, p: np.ndarray, pred: np.ndarray, metric: str) -> float:
    if metric == "auc":
        return _auc(y, p)
    return _from_counts(*_counts(y, pred))[metric]


def bootstrap_ci(y_true, prob_pos, patient_ids, metric: str = "accuracy", n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0, threshold: float = 0.5) -> tuple[float, float, float]:
    """(point, lo, hi): the metric and its percentile interval over ``n_boot`` resamples of PATIENTS.

    Each resample draws as many patients as there are, with replacement, and takes all
    their nodules along. Resamples where the metric is undefined (nan) are left out.
    """
    y, p = _check_binary(y_true, prob_pos)
    if metric not in COUNT_METRICS + ("auc",):
        raise LungclError(f"unknown metric {metric!r}; choose one of {', '.join(COUNT_METRICS + ('auc',))}")
    if len(np.asarray(patient_ids)) != y.size:
        raise LungclError("need one patient id per sample")
    if n_boot < 1 or not 0 < alpha < 1:
        raise LungclError(f"need n_boot >= 1 and 0 < alpha < 1, got {n_boot}, {alpha}")
    pred = p >= threshold
    point = float(binary_metrics(y, p, threshold)[metric])
    values = np.array([_metric(y[idx], p[idx], pred[idx], metric)
                       for idx in patient_resamples(patient_ids, n_boot, seed)])
    values = values[~np.isnan(values)]
    if values.size == 0:
        return point, float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi)


def mean_ci(values, alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, lo, hi): Student-t interval of the mean over folds or seeds; nan entries are ignored,
    and with fewer than two values the bounds are nan."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    from scipy import stats  # imported here: scipy.stats costs ~1 s of a run's start-up

    half = float(stats.t.ppf(1 - alpha / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return mean, mean - half, mean + half
