"""The probes of a finished sequence run (:mod:`.probes`), computed from the weights its checkpoint keeps of
every stage, so that an analysis needs no second run of the same training.

A run recorded with ``probes=True`` computes them while it trains; any other sequence run can have them
afterwards: :func:`probes_of` rebuilds the untrained network from the run's seed (its probe floor) and loads
each stage's kept weights, scores them exactly as the in-run path does (same data, same thread count,
deterministic algorithms: ``tests/test_run_probes.py`` checks the two agree field by field) and caches the
result in ``probes.json`` beside the record. So the analysis chapter's "statistics updated" rows are the
sequence chapter's own runs. Runs computed before checkpoints kept every stage (lungcl < 0.1 of
2026-12) have no stage weights: they say so, with the fix.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import torch

from ..atomic import atomic_write_json
from ..errors import LungclError
from ..runs.determinism import deterministic, torch_threads
from .evaluation import Evaluator
from .probes import floor_probes, stage_probes, training_sets

PROBES_FILE = "probes.json"


def _cache_path(record: Any) -> Path | None:
    return None if record.folder is None else record.folder / PROBES_FILE


def cached_probes(record: Any) -> dict | None:
    """The run's probes without computing anything: recorded in the run, or cached beside it; else None."""
    if record.data.get("probes"):
        return record.data["probes"]
    path = _cache_path(record)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged cache is computed again
    return data["probes"] if data.get("run_id") == record.run_id and "probes" in data else None


def compute_probes(record: Any, threads: int = 1) -> dict:
    """The probes of ``record``'s run from its checkpoint's stage weights: {"floor": ..., "stages": [...]},
    as a ``probes=True`` run records them."""
    from .sequence import build_model, load_splits  # sequence imports probes: import here, not at the top

    config = record.config
    if config.kind != "sequence":
        raise LungclError(f"probes are read from sequence runs, not {config.kind} run {record.run_id}")
    checkpoint = record.load_checkpoint()
    tasks = list(config.tasks)
    stages = checkpoint.get("stages") or []
    if len(stages) != len(tasks):
        raise LungclError(
            f"run {record.run_id} ({config.label}) was computed before lungcl kept each stage's weights in its "
            f"checkpoint, so its probes cannot be read from it: delete its folder {record.folder} and compute "
            f"it again (the book or `lungcl run` does so)")
    device = torch.device("cpu")
    with deterministic(True), torch_threads(threads):
        splits = load_splits(config)
        evaluator = Evaluator(splits, device, amp=False)
        trains = training_sets(splits, tasks)
        model = build_model(config, tasks).to(device)
        out = {"floor": floor_probes(model, trains, evaluator, tasks, device), "stages": []}
        for stage, weights in enumerate(stages):
            model.load_state_dict(weights)
            out["stages"] += stage_probes(model, trains, evaluator, tasks, stage, device)
    return out


def probes_of(record: Any, threads: int = 1) -> dict:
    """The run's probes: recorded, cached, or computed now (and cached in ``probes.json``)."""
    found = cached_probes(record)
    if found is not None:
        return found
    t0 = time.perf_counter()
    probes = compute_probes(record, threads)
    path = _cache_path(record)
    if path is not None:
        atomic_write_json(path, {"run_id": record.run_id, "probes": probes, "probes_s": time.perf_counter() - t0})
    return probes


def _probe_in_worker(folder: str) -> str | None:
    from .records import load_record

    try:
        probes_of(load_record(folder))
    except LungclError as exc:
        return str(exc)
    return None


def attach_probes(records: Sequence[Any], workers: int = 1) -> list[Any]:
    """``records`` with their probes in ``record.data["probes"]``: cached ones loaded, the others computed,
    ``workers`` at a time (separate processes, one torch thread each: the numbers do not depend on it).
    A run whose probes cannot be computed -> LungclError naming it."""
    todo = [r for r in records if cached_probes(r) is None]
    if todo and workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
            errors = list(pool.map(_probe_in_worker, [str(r.folder) for r in todo]))
        failed = [e for e in errors if e]
        if failed:
            raise LungclError(f"{len(failed)} run(s) could not be probed, e.g. {failed[0]}")
    for r in records:
        r.data["probes"] = probes_of(r)
    return list(records)


__all__ = ["PROBES_FILE", "attach_probes", "cached_probes", "compute_probes", "probes_of"]
