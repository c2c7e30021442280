"""Which checkpoint each stage kept, and by which rule: the sentence and table the chapters show (and the
rule of the multi-task runs' kept epoch).

Every stage keeps one checkpoint, chosen on validation by the run's ``select`` rule
(:mod:`lungcl.selection`); the record holds, per stage, the rule, its value and the stage's task(s)'
validation balanced accuracy there. A stage whose kept network scores at most 55 % balanced accuracy
on its own task's validation patients is a network near a constant answer, and the sentence names it.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..selection import HIGHER_IS_BETTER, SELECT_LABELS
from ..summaries import METHOD_LABELS
from .formats import pct

NEAR_CHANCE = 0.55  # a kept checkpoint at or below this validation balanced accuracy is near a constant answer


def _rule(select: str) -> str:
    side = "highest" if select in HIGHER_IS_BETTER else "lowest"
    return f"the {side} {SELECT_LABELS.get(select, select)} (`select={select}`)"


def rule_sentence(records: Sequence) -> str:
    """How these runs' stages chose their checkpoint, from their configurations."""
    rules = sorted({r.config.select for r in records})
    if not rules:
        return "No run to describe."
    text = ("Each stage keeps the checkpoint with " + " or ".join(_rule(s) for s in rules)
            + ", among its evaluations on the validation patients of the task(s) it trains, and stops early "
              "on the same criterion.")
    if "balanced_loss" in rules:
        text += (" The class-balanced loss is the mean over the two classes of each class's mean "
                 "cross-entropy; the unweighted mean (`select=loss`, the thesis's rule) is lowest for a network "
                 "that leans to the majority class on tasks with few positives.")
    return text


def epoch_rule_sentence(records: Sequence) -> str:
    """How these multi-task runs chose the epoch they keep, from their configurations."""
    rules = sorted({r.config.select for r in records})
    if not rules:
        return "No run to describe."
    text = ("Each run keeps the epoch with " + " or ".join(_rule(s) for s in rules) + ", the mean over its tasks "
            "of each task's value on the validation patients.")
    if "balanced_loss" in rules:
        text += (" A task's class-balanced loss is the mean over its classes of each class's mean loss: each "
                 "class weighs the same, whatever its size.")
    return text


def kept_table(records: Sequence) -> pd.DataFrame:
    """Per method and stage: the kept step and the stage's validation balanced accuracy there (mean and
    range over the runs); records of configuration version 3 and before have no such value (nan)."""
    rows = []
    for r in records:
        if r.config.kind != "sequence":
            continue
        for s in r.stages():
            rows.append({"method": METHOD_LABELS.get(r.config.method, r.config.method), "stage": s.stage + 1, "task": s.task,
                         "rule": s.select or "loss", "kept step": s.best_stage_step,
                         "val balanced accuracy": s.best_val_balanced_accuracy})
    if not rows:
        return pd.DataFrame()
    t = pd.DataFrame(rows).astype({"val balanced accuracy": float})
    g = t.groupby(["method", "stage", "task", "rule"], sort=False)
    return pd.DataFrame({"runs": g.size(), "kept step (mean)": g["kept step"].mean(),
                         "val balanced accuracy": g["val balanced accuracy"].mean(),
                         "lowest": g["val balanced accuracy"].min()})


def kept_sentence(table: pd.DataFrame) -> str:
    """Whether any stage kept a network near a constant answer on its own task's validation patients."""
    if table.empty or table["lowest"].isna().all():
        return "These records do not hold their kept checkpoints' validation balanced accuracy."
    low = table[table["lowest"] <= NEAR_CHANCE]
    if not len(low):
        return (f"Every stage of every run kept a checkpoint above {pct(NEAR_CHANCE)} % validation balanced "
                f"accuracy on the task(s) it trained (lowest: {pct(table['lowest'].min())} %): none ended at a "
                "network that answers one class.")
    named = "; ".join(f"{m} stage {st} ({task}): {pct(row['lowest'])} %"
                      for (m, st, task, _), row in low.iterrows())
    return (f"These stages kept a checkpoint at or below {pct(NEAR_CHANCE)} % validation balanced accuracy in "
            f"at least one run, near a network that answers one class: {named}. What the later stages do to "
            "such a task says little about forgetting.")


__all__ = ["NEAR_CHANCE", "epoch_rule_sentence", "kept_sentence", "kept_table", "rule_sentence"]
