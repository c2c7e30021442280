"""Run records on disk: ``<results>/runs/<run id>/record.json`` + ``model.pt``, written atomically.

The checkpoint is written first and the record last, so a record's presence
means the run is finished; an interrupted run leaves at most ``partial.pt``
(the last finished stage) from which it resumes. Loading checks the schema
version and that the record matches its own configuration; anything else is a
:class:`LungclError` naming the file.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Iterable, Iterator, TypeVar

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..atomic import atomic_write, atomic_write_json
from ..errors import LungclError
from .config import UNHASHED, RunConfig

RECORD_SCHEMA = 1
RESULTS_MARKER = "lungcl-results.json"
# keys that differ between two runs of the same configuration (clock, machine)
VOLATILE = ("timings", "created", "environment", "resumed_from_stage")
REQUIRED = ("schema", "run_id", "config", "kind", "tasks", "stages", "matrices", "summary", "curves")

ConfigT = TypeVar("ConfigT")


@dataclass
class RunRecord(Generic[ConfigT]):
    """What every finished run's record has: its JSON data, where it lives, its config, curves and checkpoint.

    Subclasses name their configuration class (``config_type``) and the keys that differ
    between two runs of the same configuration (``volatile``).
    """

    data: dict
    path: Path | None = None
    config_type: ClassVar[Any]
    volatile: ClassVar[tuple[str, ...]] = ()

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def config(self) -> ConfigT:
        return self.config_type.from_dict(self.data["config"])

    @property
    def tasks(self) -> list[str]:
        return list(self.data["tasks"])

    @property
    def folder(self) -> Path | None:
        return None if self.path is None else self.path.parent

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.path is None else self.path.parent / "model.pt"

    def curves(self) -> pd.DataFrame:
        """The evaluation curves, one row per (step or epoch, task, split)."""
        return pd.DataFrame(self.data["curves"])

    def comparable(self) -> dict:
        """The record without what legitimately differs between identical runs (clock, host)."""
        return {k: v for k, v in self.data.items() if k not in self.volatile}

    def load_checkpoint(self) -> dict:
        """The final model (and method) state dicts (``torch.load(weights_only=True)``)."""
        if self.checkpoint_path is None:
            raise LungclError(f"record {self.run_id} has no folder, so no checkpoint")
        return load_checkpoint(self.checkpoint_path)


class Record(RunRecord[RunConfig]):
    """A finished continual-learning run: its JSON data (``data``) and where it lives, with tidy accessors
    (``curves()``: one row per (evaluation step, task, split): loss, accuracy, balanced accuracy, AUC)."""

    config_type = RunConfig
    volatile = VOLATILE

    @property
    def summary(self) -> dict:
        return self.data["summary"]

    def accuracy_matrix(self, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
        """R[stage, task]: ``metric`` of every task (columns) after each stage (rows)."""
        values = self.data["matrices"][split][metric]
        index = [f"after {s['task']}" for s in self.data["stages"]]
        return pd.DataFrame(np.array(values, dtype=float), index=index, columns=self.tasks)

    def stage_metrics(self) -> pd.DataFrame:
        """One row per (stage, task, split) with every binary metric at the stage's best checkpoint."""
        rows = []
        for s in self.data["stages"]:
            for task in [t for t in self.tasks if t in s["metrics"]]:
                for split, m in sorted(s["metrics"][task].items(), key=lambda kv: kv[0] != "val"):
                    flat = {k: v for k, v in m.items() if not isinstance(v, dict)}
                    for name, ci in m.get("ci", {}).items():
                        flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = ci
                    rows.append({"stage": s["stage"], "trained": s["task"], "task": task,
                                 "split": split, **flat})
        return pd.DataFrame(rows)

    def comparable(self) -> dict:
        """The record without what legitimately differs between identical runs (clock, host, where the
        data folder is); the configuration normalised (settings added later filled with their defaults)."""
        out = super().comparable()
        out["config"] = {k: v for k, v in self.config.to_dict().items() if k not in UNHASHED}
        return out


# ---------------------------------------------------------------- the results folder

class RunBusy(LungclError):
    """Another process holds the run's lock (it is computing the run)."""


class ResultsFolder:
    """A results folder: a version marker and one sub-folder per run id."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def check(self, create: bool = False) -> "ResultsFolder":
        """Refuse a folder written by an incompatible lungcl; optionally mark a new one as ours."""
        marker = self.root / RESULTS_MARKER
        for path in (self.root, self.root / "runs"):
            if path.exists() and not path.is_dir():
                raise LungclError(f"--results {self.root}: {path} is a file, not a folder; "
                                  f"choose another --results folder")
        if marker.exists():
            try:
                schema = json.loads(marker.read_text())["record_schema"]
            except (json.JSONDecodeError, UnicodeDecodeError, OSError, KeyError, TypeError) as exc:
                raise LungclError(f"{marker} is corrupt ({exc}); is {self.root} a lungcl results folder?") from exc
            if schema != RECORD_SCHEMA:
                raise LungclError(f"results folder {self.root} was written by a lungcl with record schema "
                                  f"{schema}; this one reads {RECORD_SCHEMA}: use another --results folder")
        elif create:
            if self.root.exists() and any(self.root.iterdir()) and not (self.root / "runs").is_dir():
                raise LungclError(f"{self.root} exists and is not a lungcl results folder; "
                                  f"choose another --results folder")
            atomic_write_json(marker, {"record_schema": RECORD_SCHEMA, "lungcl_version": __version__})
        return self

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def record_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "record.json"

    def is_finished(self, run_id: str) -> bool:
        return self.record_path(run_id).exists()

    def run_ids(self) -> list[str]:
        runs = self.root / "runs"
        return sorted(p.name for p in runs.iterdir() if (p / "record.json").exists()) if runs.is_dir() else []

    def resolve(self, ref: str) -> Path:
        """A record path from a run id, a unique id prefix, a run folder or a record file."""
        p = Path(ref)
        if p.is_file():
            return p
        if p.is_dir():
            return p / "record.json"
        if self.record_path(ref).exists():
            return self.record_path(ref)
        matches = [r for r in self.run_ids() if r.startswith(ref)] if len(ref) >= 4 else []
        if len(matches) == 1:
            return self.record_path(matches[0])
        if len(matches) > 1:
            raise LungclError(f"run id prefix {ref!r} matches {len(matches)} runs in {self.root}; give more digits")
        raise LungclError(f"no record {ref!r}: not a file, nor a finished run in {self.root / 'runs'}")

    @contextmanager
    def lock(self, run_id: str, wait: bool = False) -> Iterator[None]:
        """Hold the run's lock: two processes never compute (or write) the same run.

        Busy -> :class:`RunBusy`, or with ``wait`` block until the holder is done.
        ``flock`` is released by the OS when its holder dies, so a killed worker leaves no stale lock.
        """
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:
                raise RunBusy(f"run {run_id} is being computed by another process "
                              f"({folder}); wait for it or stop it") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- reading and writing

RecordT = TypeVar("RecordT", bound=RunRecord)


def save_run(results: ResultsFolder, data: dict, checkpoint: dict,
             record_type: type[RecordT] = Record) -> RecordT:  # type: ignore[assignment]
    """Write the checkpoint, then the record (its presence means done); drop the partial state."""
    folder = results.run_dir(data["run_id"])
    save_checkpoint(folder / "model.pt", checkpoint)
    path = results.record_path(data["run_id"])
    atomic_write_json(path, data)
    partial = folder / "partial.pt"
    if partial.exists():
        partial.unlink()
    return record_type(json.loads(path.read_text()), path)


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    atomic_write(path, lambda p: p.write_bytes(buf.getvalue()))


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by :func:`save_checkpoint`; a corrupt file -> LungclError naming it."""
    path = Path(path)
    if not path.exists():
        raise LungclError(f"checkpoint {path} is missing")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged zip / pickle
        first = (str(exc).strip().splitlines() or [""])[0][:200]  # some errors have no message
        raise LungclError(f"corrupt checkpoint {path}: {type(exc).__name__}: {first}") from exc
    if not isinstance(obj, dict) or "model" not in obj:
        raise LungclError(f"corrupt checkpoint {path}: no model state")
    return obj


def record_object(data: Any, path: Path) -> dict:
    """``data`` if it is a JSON object, else a LungclError naming the file."""
    if not isinstance(data, dict):
        raise LungclError(f"corrupt record {path}: not a JSON object")
    return data


def check_record_config(data: dict, path: Path, required: Iterable[str], config_type: Any,
                        run_id_of: Callable[[Any], str]) -> Any:
    """The record's configuration, once its ``required`` keys are there and its id is ``run_id_of(config)``."""
    missing = [k for k in required if k not in data]
    if missing:
        raise LungclError(f"corrupt record {path}: missing {', '.join(missing)}")
    try:
        config = config_type.from_dict(data["config"])
    except (LungclError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise LungclError(f"corrupt record {path}: bad configuration ({exc})") from exc
    expected = run_id_of(config)
    if expected != data["run_id"]:
        raise LungclError(f"record {path} does not match its configuration (id {data['run_id']} vs "
                          f"{expected}): written by another lungcl version or edited")
    return config


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


def read_record_json(path: Path) -> Any:
    """The parsed JSON of a record file; unreadable or not JSON -> LungclError naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LungclError(f"corrupt record {path}: {exc}; delete its folder to recompute the run") from exc
    except OSError as exc:
        raise LungclError(f"cannot read record {path}: {exc}") from exc


def package_versions() -> dict[str, str]:
    """Versions of what decides the numbers: python, torch, monai, numpy, lungcl."""
    import platform
    from importlib.metadata import version

    # monai's installed version without importing it (its import costs seconds at every run's end)
    return {"python": platform.python_version(), "torch": torch.__version__, "monai": version("monai"),
            "numpy": np.__version__, "lungcl": __version__}


def host_info(device: str) -> dict:
    return {"device": device, "torch_threads": torch.get_num_threads(), "pid": os.getpid(),
            "cpu_count": os.cpu_count()}
