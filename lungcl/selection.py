"""Which checkpoint a stage keeps (and when it stops early): the ``select`` rule, shared by every trainer.

On validation sets with 5-30 % positives the unweighted mean cross-entropy (``loss``, the rule until
config version 4) is lowest for a network that leans to the majority class: a constant answer at the
prior scores 0.19 nats on lobulation, a classifier with AUC 0.9 about 0.40. ``balanced_loss`` (the
default) weighs the classes equally: the mean over classes of each class's mean cross-entropy.
``balanced_accuracy`` and ``auc`` keep the highest score instead. With several tasks in a stage (joint
training, the multi-task network) the criterion is the mean over the tasks of each task's criterion.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

from .errors import LungclError

SELECT_RULES = ("balanced_loss", "loss", "balanced_accuracy", "auc")
HIGHER_IS_BETTER = ("balanced_accuracy", "auc")
DEFAULT_SELECT = "balanced_loss"
# what each rule reads, for a sentence or a table heading
SELECT_LABELS = {"balanced_loss": "class-balanced validation loss", "loss": "validation loss",
                 "balanced_accuracy": "validation balanced accuracy", "auc": "validation AUC"}


def check_select(select: object) -> str:
    """``select`` itself, or one line naming the choices."""
    if select not in SELECT_RULES:
        raise LungclError(f"select must be one of {', '.join(SELECT_RULES)}, got {select!r}")
    return str(select)


def balanced_mean(losses: np.ndarray, labels: np.ndarray) -> float:
    """The mean over the classes present of each class's mean per-example loss (nan without examples)."""
    losses, labels = np.asarray(losses, dtype=np.float64), np.asarray(labels)
    classes = np.unique(labels)
    if classes.size == 0:
        return float("nan")
    return float(np.mean([losses[labels == c].mean() for c in classes]))


def criterion(rows: Iterable[Mapping], tasks: Iterable[str], select: str, split: str = "val") -> float:
    """The rule's value at one evaluation: the mean over ``tasks`` of their ``select`` column on
    ``split`` (``rows``: the evaluator's curve rows, one per task and split). A task whose value is
    undefined (AUC or balanced accuracy of a split with one class: the same at every evaluation) is left
    out; nan when no task has a value, and such an evaluation is never better than another."""
    check_select(select)
    by_task = {r["task"]: r.get(select) for r in rows if r["split"] == split}
    values = [v for v in (by_task.get(t) for t in tasks) if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def better(candidate: float, best: float | None, select: str) -> bool:
    """Whether ``candidate`` beats ``best`` under ``select`` (strictly; nothing beats a missing best
    but a finite value, and a nan candidate never wins)."""
    if candidate is None or not math.isfinite(candidate):
        return False
    if best is None or not math.isfinite(best):
        return True
    return candidate > best if select in HIGHER_IS_BETTER else candidate < best


__all__ = ["SELECT_RULES", "HIGHER_IS_BETTER", "DEFAULT_SELECT", "SELECT_LABELS", "check_select", "balanced_mean",
           "criterion", "better"]
