"""Per task and per split part: positives, negatives, patients; the store's provenance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .datasets import load_task_data
from .splits import SPLIT_NAMES
from .tasks import Task


def data_summary(data_dir: str | Path, tasks: list[Task], profile: str = "cpu", source: str = "phantom",
                 split_seed: int = 0) -> dict:
    """A JSON-ready summary of the prepared data for ``tasks``."""
    data = load_task_data(data_dir, profile, source, split_seed)
    part = data.split.part_of(data.nodules["patient_id"])
    patients = data.nodules["patient_id"].to_numpy()
    out: dict = {"provenance": data.store.provenance, "split_seed": split_seed,
                 "failed_scans": data.store.failures, "tasks": {}}
    for task in tasks:
        labels = task.labels(data.nodules)
        splits = {}
        for name in SPLIT_NAMES:
            sel = part == name
            splits[name] = {"positive": int(((labels == 1) & sel).sum()),
                            "negative": int(((labels == 0) & sel).sum()),
                            "dropped": int(((labels < 0) & sel).sum()),
                            "patients": sorted(set(patients[sel & (labels >= 0)].tolist()))}
        out["tasks"][task.name] = {"rule": task.rule.describe(), "letter": task.letter, "splits": splits}
    return out


def summary_table(summary: dict) -> pd.DataFrame:
    """The summary as a table: one row per task and split part."""
    rows = []
    for task, info in summary["tasks"].items():
        for name, s in info["splits"].items():
            rows.append({"task": task, "split": name, "positive": s["positive"],
                         "negative": s["negative"], "dropped": s["dropped"],
                         "patients": len(s["patients"])})
    return pd.DataFrame(rows)
