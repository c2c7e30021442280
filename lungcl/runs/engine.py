"""The one run engine: the record of a configuration, loaded when finished and current, else computed.

A kind of run (the continual-learning sequences, the multi-task network) supplies
only a :class:`RunKind`: its results sub-folder, its record class and loader, and
``train(config, run folder, progress, threads) -> (record data, checkpoint)``. The
engine does the rest the same way for every kind: the results folder and its
marker, the per-run lock (two processes never compute one run), the patch store
prepared once (before a run, or once per store before a grid), and staleness: a
finished record whose patch store has since been rebuilt (another manifest digest)
is computed again, with a note on stderr. Grids run through
:func:`lungcl.runs.executor.execute`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..data.store import store_digest
from ..errors import LungclError
from .config import StoreRef
from .folder import ResultsFolder, RunRecord, save_run

DEFAULT_RESULTS = "results"

Train = Callable[[Any, Path, bool, "int | None"], tuple[dict, dict]]  # (config, run dir, progress, threads)
Load = Callable[[str, "str | Path"], RunRecord]  # (run id or prefix, results folder) -> checked record


@dataclass(frozen=True)
class RunKind:
    """What a kind of run gives the engine. Its functions must be module-level (workers import them by name)."""

    name: str
    subfolder: str  # "" (the results folder itself) or e.g. "mtl"
    record_type: type[RunRecord]
    load: Load
    train: Train

    def folder(self, results: str | Path) -> ResultsFolder:
        """The kind's part of a results folder (the folder itself checked and marked as lungcl's)."""
        root = ResultsFolder(results).check(create=True).root
        return ResultsFolder(root / self.subfolder) if self.subfolder else ResultsFolder(root)


def prepare_store(store: StoreRef, progress: bool = True, workers: int = 2) -> None:
    """The patch store a run reads (built when missing, at once when present)."""
    from ..data.prepare import prepare_store as prepare

    prepare(store.data_dir, source=store.source, profile=store.profile, lidc_root=store.lidc_root,
            workers=workers, progress=progress)


def prepare_stores(configs: Iterable[Any], progress: bool = True) -> None:
    """Every patch store the configurations read, each once (workers must not race to build one)."""
    for store in dict.fromkeys(c.store for c in configs if c.store is not None):
        prepare_store(store, progress)


def is_stale(record: RunRecord, config: Any) -> bool:
    """True when ``record`` was computed on another build of the patch store ``config`` reads."""
    store = config.store
    current = None if store is None else store_digest(store.data_dir, store.source, store.profile)
    return current is not None and (record.data.get("provenance") or {}).get("manifest_sha256") != current


def current_record(kind: RunKind, config: Any, results: str | Path) -> RunRecord | None:
    """The finished record of ``config`` if it is current (computed on today's patch store), else None."""
    if not kind.folder(results).is_finished(config.run_id):
        return None
    record = kind.load(config.run_id, results)
    if is_stale(record, config):
        print(f"lungcl: record {config.run_id} was computed on another patch store; computing it again",
              file=sys.stderr)
        return None
    return record


def compute(kind: RunKind, config: Any, results: str | Path = DEFAULT_RESULTS, progress: bool = True,
            prepare: bool = True, threads: int | None = 1, wait: bool = False) -> RunRecord:
    """The record of ``config``: loaded if finished and current, else computed under the run's lock and saved.

    ``threads``: torch threads for the training (None: leave torch's setting). A run another process
    is computing raises :class:`~lungcl.runs.folder.RunBusy`, or with ``wait`` is waited for.
    """
    folder = kind.folder(results)
    record = current_record(kind, config, results)
    if record is not None:
        return record
    if prepare and config.store is not None:
        prepare_store(config.store, progress)
    with folder.lock(config.run_id, wait=wait):
        record = current_record(kind, config, results)  # finished by another process while we waited?
        if record is not None:
            return record
        data, checkpoint = kind.train(config, folder.run_dir(config.run_id), progress, threads)
        return save_run(folder, data, checkpoint, kind.record_type)


def run_in_worker(kind: RunKind, config: dict, results: str) -> str | None:
    """Compute one run in a worker process (one torch thread); None when done, else the one-line error."""
    import torch

    torch.set_num_threads(1)
    config_type = kind.record_type.config_type
    try:
        compute(kind, config_type.from_dict(config), results, progress=False, prepare=False)
        return None
    except LungclError as exc:
        return str(exc)


__all__ = ["DEFAULT_RESULTS", "RunKind", "compute", "current_record", "is_stale", "prepare_store",
           "prepare_stores", "run_in_worker"]
