"""Multi-task run records: ``<results>/mtl/runs/<run id>/record.json`` + ``model.pt``, cached by config hash.

The results folder, its version marker, the per-run lock and the atomic
checkpoint writing are the continual-learning records' (``lungcl.experiments.records``);
multi-task runs live in their own ``mtl/`` sub-folder because their record has
another shape (no stages, no accuracy matrix; sharing matrices instead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write_json
from ..errors import LungclError
from ..experiments.records import ResultsFolder, load_checkpoint, save_checkpoint
from .config import MTLConfig

MTL_RECORD_SCHEMA = 1
VOLATILE = ("timings", "created", "environment")
REQUIRED = ("schema", "kind", "run_id", "config", "tasks", "n_classes", "metrics", "curves")


@dataclass
class MTLRecord:
    """A finished multi-task run: its JSON data and where it lives, with tidy accessors."""

    data: dict
    path: Path | None = None

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def config(self) -> MTLConfig:
        return MTLConfig.from_dict(self.data["config"])

    @property
    def tasks(self) -> list[str]:
        return list(self.data["tasks"])

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

    def curves(self) -> pd.DataFrame:
        """One row per (epoch, split, task): loss, accuracy, balanced accuracy."""
        return pd.DataFrame(self.data["curves"])

    def comparable(self) -> dict:
        """The record without what differs between identical runs (clock, host)."""
        return {k: v for k, v in self.data.items() if k not in VOLATILE}

    def load_checkpoint(self) -> dict:
        if self.path is None:
            raise LungclError(f"record {self.run_id} has no folder, so no checkpoint")
        return load_checkpoint(self.path.parent / "model.pt")


def mtl_folder(results: str | Path) -> ResultsFolder:
    """The ``mtl`` part of a results folder (the folder itself is checked and marked as lungcl's)."""
    root = ResultsFolder(results).check(create=True).root
    return ResultsFolder(root / "mtl")


def save_mtl_run(folder: ResultsFolder, data: dict, checkpoint: dict) -> MTLRecord:
    """Write the checkpoint, then the record (its presence means the run is finished)."""
    save_checkpoint(folder.run_dir(data["run_id"]) / "model.pt", checkpoint)
    path = folder.record_path(data["run_id"])
    atomic_write_json(path, data)
    return MTLRecord(json.loads(path.read_text()), path)


def validate_mtl_record(data: object, path: Path) -> dict:
    if not isinstance(data, dict):
        raise LungclError(f"corrupt record {path}: not a JSON object")
    if data.get("schema") != MTL_RECORD_SCHEMA or data.get("kind") != "mtl":
        raise LungclError(f"record {path} is not a multi-task record of schema {MTL_RECORD_SCHEMA} "
                          f"(schema {data.get('schema')}, kind {data.get('kind')}): use another --results folder")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise LungclError(f"corrupt record {path}: missing {', '.join(missing)}")
    try:
        config = MTLConfig.from_dict(data["config"])
    except (LungclError, TypeError) as exc:
        raise LungclError(f"corrupt record {path}: bad configuration ({exc})") from exc
    if config.run_id != data["run_id"]:
        raise LungclError(f"record {path} does not match its configuration (id {data['run_id']} vs "
                          f"{config.run_id}): written by another lungcl version or edited")
    return data


def load_mtl_record(ref: str | Path, results: str | Path = "results") -> MTLRecord:
    """A record from a run id (or unique prefix) in ``results``, a run folder or a record file."""
    path = ResultsFolder(Path(results) / "mtl").resolve(str(ref))
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LungclError(f"corrupt record {path}: {exc}; delete its folder to recompute the run") from exc
    except OSError as exc:
        raise LungclError(f"cannot read record {path}: {exc}") from exc
    return MTLRecord(validate_mtl_record(data, path), path)
