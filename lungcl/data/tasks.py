"""Binary tasks from LIDC characteristics: which consensus ratings count as positive or negative.

Default rule (the thesis's, ch. 4.2.3): negative = consensus median in [1, 2],
positive = [4, 5], everything else (3, 2.5, 3.5) dropped. Calcification is
different: its ratings 1-5 are kinds of calcification and 6 is "absent", so the
literal rule leaves no negatives. Its default is calcified (median in [1, 5])
= positive vs absent (median 6) = negative; a tie between a calcium rating and
"absent" (median 5.5) is dropped as uncertain, like 2.5 or 3.5 elsewhere.
A rule is a setting: ``TaskRule.parse("pos=4-5,neg=1-2")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import LungclError
from .nodules import CHARACTERISTICS

THESIS_LETTERS = {"A": "malignancy", "B": "lobulation", "C": "calcification"}
THESIS_ORDERS = ("ABC", "ACB", "BAC", "BCA", "CAB", "CBA")


@dataclass(frozen=True)
class TaskRule:
    """Closed intervals of the consensus median that make a nodule positive or negative."""

    positive: tuple[float, float] = (4.0, 5.0)
    negative: tuple[float, float] = (1.0, 2.0)

    def label(self, consensus: np.ndarray | pd.Series) -> np.ndarray:
        """1 positive, 0 negative, -1 dropped."""
        x = np.asarray(consensus, dtype=float)
        pos = (x >= self.positive[0]) & (x <= self.positive[1])
        neg = (x >= self.negative[0]) & (x <= self.negative[1])
        if np.any(pos & neg):
            raise LungclError(f"task rule {self} has overlapping positive and negative ranges")
        return np.where(pos, 1, np.where(neg, 0, -1)).astype(np.int8)

    def describe(self) -> str:
        def rng(r: tuple[float, float]) -> str:
            return f"{r[0]:g}" if r[0] == r[1] else f"{r[0]:g}-{r[1]:g}"
        return f"positive {rng(self.positive)}, negative {rng(self.negative)}"

    @classmethod
    def parse(cls, text: str) -> "TaskRule":
        """From ``"pos=4-5,neg=1-2"`` (intervals of the consensus median, inclusive)."""
        parts: dict[str, tuple[float, float]] = {}
        try:
            for item in text.split(","):
                key, value = item.split("=")
                lo, _, hi = value.partition("-")
                parts[key.strip()] = (float(lo), float(hi or lo))
            return cls(positive=parts["pos"], negative=parts["neg"])
        except (ValueError, KeyError) as exc:
            raise LungclError(f"cannot read task rule {text!r}; write it like 'pos=4-5,neg=1-2'") from exc


DEFAULT_RULES: dict[str, TaskRule] = {name: TaskRule() for name in CHARACTERISTICS}
DEFAULT_RULES["calcification"] = TaskRule(positive=(1.0, 5.0), negative=(6.0, 6.0))


@dataclass(frozen=True)
class Task:
    """A named binary task on one characteristic."""

    characteristic: str
    rule: TaskRule

    @property
    def name(self) -> str:
        return self.characteristic

    @property
    def letter(self) -> str | None:
        return {v: k for k, v in THESIS_LETTERS.items()}.get(self.characteristic)

    def labels(self, nodules: pd.DataFrame) -> np.ndarray:
        return self.rule.label(nodules[self.characteristic])


def make_task(name: str, rules: dict[str, TaskRule] | None = None) -> Task:
    """A task from a characteristic name or thesis letter (A, B, C)."""
    key = THESIS_LETTERS.get(name.strip(), name.strip().lower())
    if key not in CHARACTERISTICS:
        raise LungclError(f"unknown task {name!r}; choose from A, B, C or {', '.join(CHARACTERISTICS)}")
    return Task(key, (rules or {}).get(key, DEFAULT_RULES[key]))


def resolve_tasks(spec: str, rules: dict[str, TaskRule] | None = None) -> list[Task]:
    """Tasks from ``"ABC"``, ``"spiculation,margin,texture"`` or ``"all"`` (the nine)."""
    spec = spec.strip()
    if spec == "all":
        names = list(CHARACTERISTICS)
    elif "," in spec or spec.lower() in CHARACTERISTICS:
        names = [s for s in spec.split(",") if s.strip()]
    elif spec and all(c in THESIS_LETTERS for c in spec):
        names = list(spec)
    else:
        raise LungclError(f"unknown tasks {spec!r}; use an order like ABC, 'all', "
                          f"or names from {', '.join(CHARACTERISTICS)}")
    tasks = [make_task(n, rules) for n in names]
    if len({t.name for t in tasks}) != len(tasks):
        raise LungclError(f"task list {spec!r} names a task twice")
    return tasks
