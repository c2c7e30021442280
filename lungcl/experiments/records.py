"""Continual-learning run records: what a sequence's ``record.json`` holds and how it is checked.

The results folder, the lock and the checkpoints are the engine's (:mod:`lungcl.runs.folder`);
this module adds the sequence record's accessors (accuracy matrix, stage metrics) and its
validation (schema, keys, matrix shapes, id against its own configuration).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LungclError
from ..runs.folder import ResultsFolder, RunRecord, check_record_config, read_record_json, record_object
from .config import UNHASHED, RunConfig
from .record_types import SequenceSummary, StageRecord

RECORD_SCHEMA = 1
# keys that differ between two runs of the same configuration (clock, machine)
VOLATILE = ("timings", "created", "environment", "resumed_from_stage")
REQUIRED = ("schema", "run_id", "config", "kind", "tasks", "stages", "matrices", "summary", "curves")


class Record(RunRecord[RunConfig]):
    """A finished continual-learning run: its JSON data (``data``) and where it lives, with tidy accessors
    (``curves()``: one row per (evaluation step, task, split): loss, accuracy, balanced accuracy, AUC)."""

    config_type = RunConfig
    volatile = VOLATILE

    @property
    def summary(self) -> dict:
        return self.data["summary"]

    def summary_of(self, split: str = "test", metric: str = "accuracy") -> SequenceSummary:
        """``metric`` on ``split`` summarised over the run (average, forgetting, BWT, final values)."""
        return SequenceSummary.from_dict(self.data["summary"][split][metric])

    def stages(self) -> list[StageRecord]:
        """The run's stages in order, typed."""
        return [StageRecord.from_dict(s) for s in self.data["stages"]]

    def test_predictions(self) -> tuple[dict[str, dict[str, list]], list[dict[str, list[float]]]] | None:
        """(each task's test labels and patient ids, per stage each task's test positive-class probabilities
        at the kept checkpoint); None for a record written before they were kept."""
        stages = self.data["stages"]
        if "test_set" not in self.data or any(s.get("test_probabilities") is None for s in stages):
            return None
        return self.data["test_set"], [s["test_probabilities"] for s in stages]

    def accuracy_matrix(self, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
        """R[stage, task]: ``metric`` of every task (columns) after each stage (rows)."""
        values = self.data["matrices"][split][metric]
        index = [f"after {s['task']}" for s in self.data["stages"]]
        return pd.DataFrame(np.array(values, dtype=float), index=index, columns=self.tasks)

    def stage_metrics(self) -> pd.DataFrame:
        """One row per (stage, task, split) with every binary metric at the stage's best checkpoint."""
        rows = []
        for s in self.stages():
            for task in [t for t in self.tasks if t in s.metrics]:
                for split, m in sorted(s.metrics[task].items(), key=lambda kv: kv[0] != "val"):
                    flat = {k: v for k, v in m.items() if not isinstance(v, dict)}
                    for name, ci in m.get("ci", {}).items():
                        flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = ci
                    rows.append({"stage": s.stage, "trained": s.task, "task": task,
                                 "split": split, **flat})
        return pd.DataFrame(rows)

    def comparable(self) -> dict:
        """The record without what legitimately differs between identical runs (clock, host, where the
        data folder is); the configuration normalised (settings added later filled with their defaults)."""
        out = super().comparable()
        out["config"] = {k: v for k, v in self.config.to_dict().items() if k not in UNHASHED}
        return out


# ---------------------------------------------------------------- reading

def validate_record(data: Any, path: Path) -> dict:
    """The record's schema version, keys and id checked against its own configuration."""
    schema = record_object(data, path).get("schema")
    if schema != RECORD_SCHEMA:
        raise LungclError(f"record {path} has schema {schema}; this lungcl reads {RECORD_SCHEMA} "
                          f"(written by another version): use another --results folder")
    try:
        check_record_config(data, path, REQUIRED, RunConfig, lambda c: c.id_for(data.get("data_version")))
        n_stages, n_tasks = len(data["stages"]), len(data["tasks"])
        for split, mats in data["matrices"].items():
            for name, m in mats.items():
                if np.shape(np.array(m, dtype=float)) != (n_stages, n_tasks):
                    raise LungclError(f"corrupt record {path}: {split} {name} matrix is not "
                                      f"{n_stages}x{n_tasks}")
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:  # edited or damaged fields
        raise LungclError(f"corrupt record {path}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:160] if str(exc) else ''}") from exc
    return data


def load_record(ref: str | Path, results: str | Path = "results") -> Record:
    """A record from a run id (or unique prefix) in ``results``, a run folder or a record file."""
    folder = ResultsFolder(results)
    path = folder.resolve(str(ref))
    if path.parent.parent.name == "runs":
        ResultsFolder(path.parent.parent.parent).check()
    data = validate_record(read_record_json(path), path)
    if path.parent.name != data["run_id"] and path.parent.parent.name == "runs":
        raise LungclError(f"record {path} belongs to run {data['run_id']}, not to its folder {path.parent.name}")
    return Record(data, path)


