"""The results folder every kind of run shares: records, checkpoints, the per-run lock.

``<results>/<sub>/runs/<run id>/record.json`` + ``model.pt`` (``sub``: empty for the
continual-learning sequences, ``mtl`` for the multi-task network). The checkpoint is
written first and the record last, so a record's presence means the run is finished;
an interrupted run leaves at most ``partial.pt``. Loading checks the JSON and that the
record matches its own configuration; anything else is a :class:`LungclError` naming the file.
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
from ..atomic import atomic_write, atomic_write_json, make_folder
from ..errors import LungclError

RESULTS_SCHEMA = 1  # the results folder's layout; a folder of another schema is refused
RESULTS_MARKER = "lungcl-results.json"

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
            if schema != RESULTS_SCHEMA:
                raise LungclError(f"results folder {self.root} was written by a lungcl with record schema "
                                  f"{schema}; this one reads {RESULTS_SCHEMA}: use another --results folder")
        elif create:
            if self.root.exists() and any(self.root.iterdir()) and not (self.root / "runs").is_dir():
                raise LungclError(f"{self.root} exists and is not a lungcl results folder; "
                                  f"choose another --results folder")
            atomic_write_json(marker, {"record_schema": RESULTS_SCHEMA, "lungcl_version": __version__})
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
        folder = make_folder(self.run_dir(run_id))
        lock = folder / ".lock"
        try:
            fh = open(lock, "w")
        except IsADirectoryError as exc:
            raise LungclError(f"{lock} is a folder, not the run's lock file; delete it and run again") from exc
        except OSError as exc:  # a read-only or full file system
            raise LungclError(f"cannot take the run's lock {lock}: {exc.strerror or exc}") from exc
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:
                raise RunBusy(f"run {run_id} is being computed by another process "
                              f"({folder}); wait for it or stop it") from exc
            try:
                _remove_stale_temporaries(folder)
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_stale_temporaries(folder: Path) -> None:
    """The half-written files (``.NAME.*.tmp``) a killed writer of this run left; called under the run's lock."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading and writing

RecordT = TypeVar("RecordT", bound=RunRecord)


def save_run(results: ResultsFolder, data: dict, checkpoint: dict,
             record_type: type[RecordT]) -> RecordT:
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
    fix = (f"delete the run's folder {path.parent} and run again the command (or book chapter) that "
           f"computed it: the run is then computed anew")
    if not path.exists():
        raise LungclError(f"checkpoint {path} is missing; {fix}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged zip / pickle
        first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:120]  # some have no message
        raise LungclError(f"corrupt checkpoint {path} ({type(exc).__name__}: {first}); {fix}") from exc
    if not isinstance(obj, dict) or "model" not in obj:
        raise LungclError(f"corrupt checkpoint {path}: no model state; {fix}")
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


def read_record_json(path: Path) -> Any:
    """The parsed JSON of a record file; not a record file, unreadable or not JSON -> LungclError naming it."""
    if path.name != "record.json":
        raise LungclError(f"{path} is not a lungcl run record (a record is <results>/runs/<run id>/record.json); "
                          f"give a run id, a run folder or its record.json")
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
