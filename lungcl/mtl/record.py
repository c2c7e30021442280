"""Multi-task run records: ``<results>/mtl/runs/<run id>/record.json`` + ``model.pt``, cached by config hash.

The results folder, its version marker, the per-run lock and the atomic
checkpoint writing are the run engine's (:mod:`lungcl.runs`); multi-task runs
live in their own ``mtl/`` sub-folder because their record has another shape
(no stages, no accuracy matrix; sharing matrices instead).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LungclError
from ..runs.folder import ResultsFolder, RunRecord, check_record_config, read_record_json, record_object
from .config import MTLConfig

MTL_RECORD_SCHEMA = 1
VOLATILE = ("timings", "created", "environment")
REQUIRED = ("schema", "kind", "run_id", "config", "tasks", "n_classes", "metrics", "curves")


class MTLRecord(RunRecord[MTLConfig]):
    """A finished multi-task run: its JSON data and where it lives, with tidy accessors
    (``curves()``: one row per (epoch, split, task): loss, accuracy, balanced accuracy)."""

    config_type = MTLConfig
    volatile = VOLATILE

    def metrics(self, split: str = "test") -> pd.DataFrame:
        """One row per task: every metric at the best checkpoint (intervals as ``<m>_ci_low/high``)."""
        rows = []
        for task in self.tasks:
            m = self.data["metrics"][task][split]
            flat = {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
            for name, (lo, hi) in m.get("ci", {}).items():
                flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = lo, hi
            rows.append({"task": task, **flat})
        return pd.DataFrame(rows).set_index("task")

    def sharing(self, stage: int | None = None) -> pd.DataFrame:
        """The sharing-degree matrix (rows: the task that draws, columns: the task drawn on); overall if no stage."""
        s = self.data.get("sharing")
        if s is None:
            raise LungclError(f"run {self.run_id} ({self.data['config']['model']}) has no gated blocks, "
                              f"so no sharing matrix")
        m = s["overall"] if stage is None else s["per_stage"][stage]
        return pd.DataFrame(np.array(m, dtype=float), index=self.tasks, columns=self.tasks)


def validate_mtl_record(data: object, path: Path) -> dict:
    """The record's schema and kind, keys and id checked against its own configuration."""
    data = record_object(data, path)
    if data.get("schema") != MTL_RECORD_SCHEMA or data.get("kind") != "mtl":
        raise LungclError(f"record {path} is not a multi-task record of schema {MTL_RECORD_SCHEMA} "
                          f"(schema {data.get('schema')}, kind {data.get('kind')}): use another --results folder")
    check_record_config(data, path, REQUIRED, MTLConfig, lambda c: c.run_id)
    return data


def load_mtl_record(ref: str | Path, results: str | Path = "results") -> MTLRecord:
    """A record from a run id (or unique prefix) in ``results``, a run folder or a record file."""
    path = ResultsFolder(Path(results) / "mtl").resolve(str(ref))
    return MTLRecord(validate_mtl_record(read_record_json(path), path), path)
