"""The typed parts of a sequence record: one dataclass per stage and per summary, serialised to the record's JSON.

A reader sees the shape (``record.stages()[0].best_val_loss``,
``record.summary_of("test", "accuracy").mean_forgetting``) instead of nested
keys; ``to_dict`` gives exactly the JSON the record has always held, so
records written before these types read the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

# metrics[task][split] -> the binary metrics at the stage's best checkpoint (+ "ci": name -> [low, high])
StageMetrics = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class StageRecord:
    """One stage of a run: the task it trained, how long, where it stopped, and every task's metrics after it.

    ``select`` names the rule that chose the kept checkpoint (:mod:`lungcl.selection`), ``best_criterion``
    its value there and ``best_val_balanced_accuracy`` the stage's task(s)' mean validation balanced accuracy
    there; records of config version 3 and before have none of the three (None; kept out of their JSON)."""

    stage: int
    task: str
    trained_tasks: list[str]  # the task itself, or every task seen so far (joint)
    steps: int
    epochs: int
    best_stage_step: int  # the step (within the stage) whose weights were kept
    best_val_loss: float
    stopped_early: bool
    metrics: StageMetrics
    select: str | None = None
    best_criterion: float | None = None
    best_val_balanced_accuracy: float | None = None
    # every task's test positive-class probabilities at the kept checkpoint (rounded, the called class kept;
    # labels and patients once per run in the record's "test_set"); None in records written before
    test_probabilities: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if not (k in OPTIONAL_STAGE_FIELDS and v is None)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StageRecord":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)
                      if f.name in d or f.name not in OPTIONAL_STAGE_FIELDS})


# added with config version 4 (class-balanced selection; the test probabilities): absent from older records
OPTIONAL_STAGE_FIELDS = ("select", "best_criterion", "best_val_balanced_accuracy", "test_probabilities")


@dataclass(frozen=True)
class SequenceSummary:
    """One metric on one split, summarised over the run (single-task runs have ``final`` only)."""

    average_accuracy: float | None = None  # mean over tasks after the last stage
    forgetting: dict[str, float] | None = None  # per task but the last: best earlier value - final value
    mean_forgetting: float | None = None
    backward_transfer: float | None = None
    final: dict[str, float | None] = field(default_factory=dict)  # every task after the last stage

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SequenceSummary":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


__all__ = ["StageRecord", "SequenceSummary", "StageMetrics"]
