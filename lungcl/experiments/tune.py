"""lambda chosen on validation: a decade grid trained on the fold's train split, picked on its VALIDATION split.

Each lambda is an ordinary cached run per seed (``runner.execute_grid``: resumable, optionally on Dask).
The criterion reads only the validation accuracy matrix of each record; test numbers are never
looked at. With several seeds a lambda's criterion is the mean over its seeds (their standard
deviation beside it), and a lambda with a failed seed cannot be picked. The tune record keeps the
whole curve (per lambda: the criterion, every task's final validation balanced accuracy, forgetting
and new-task accuracy on validation, each a mean over the seeds, and every seed's own point), the
split and the pick, the configuration version and the checkpoint rule (``select``) its runs were
made under, saved atomically as ``<results>/tunes/<hash of its settings>.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..runs import config as configs
from ..atomic import atomic_write_json
from ..errors import LungclError
from ..metrics import forgetting
from .config import CONFIG_VERSION, RunConfig
from .runner import DEFAULT_RESULTS, Report, execute_grid, sweep_configs

TUNE_SPLIT = "val"
# decade grids wide enough to see both ends of the trade-off (too weak: forgets; too strong: cannot learn)
DEFAULT_DECADES: dict[str, tuple[int, int]] = {"ewc": (0, 6), "online_ewc": (0, 6), "l2": (-3, 3)}


def default_values(method: str) -> list[float]:
    """The default lambda grid of ``method``: every decade of DEFAULT_DECADES."""
    if method not in DEFAULT_DECADES:
        raise LungclError(f"method {method!r} has no lambda to tune; use l2, ewc or online_ewc")
    lo, hi = DEFAULT_DECADES[method]
    return [float(10.0 ** e) for e in range(lo, hi + 1)]


def _final_mean(R: np.ndarray) -> float:
    return float(np.mean(R[-1]))


def _new_task_mean(R: np.ndarray) -> float:
    return float(np.mean(np.diag(R)))


# name -> (description, function of the validation balanced-accuracy matrix R[stage, task])
CRITERIA: dict[str, tuple[str, Callable[[np.ndarray], float]]] = {
    "final_val_bacc": ("mean final validation balanced accuracy over the sequence's tasks", _final_mean),
    "new_task_val_bacc": ("mean validation balanced accuracy of each task right after its stage", _new_task_mean),
}


def curve_point(record: Any, criterion: str) -> dict:
    """One lambda's row of the curve, from the record's validation balanced-accuracy matrix only."""
    R = record.accuracy_matrix(TUNE_SPLIT, "balanced_accuracy").to_numpy(dtype=float)
    tasks = list(record.tasks)
    forget = forgetting(R)
    return {"strength": record.config.strength, "run_id": record.run_id,
            "criterion": CRITERIA[criterion][1](R),
            "final_val_bacc": dict(zip(tasks, map(float, R[-1]))),
            "forgetting_val": dict(zip(tasks[:-1], map(float, forget[:len(tasks) - 1]))),
            "new_task_val_bacc": dict(zip(tasks, map(float, np.diag(R)))),
            "mean_forgetting_val": float(np.mean(forget[:len(tasks) - 1])) if len(tasks) > 1 else 0.0}


def tune_seeds(base: RunConfig, seeds: Sequence[int] | None) -> list[int]:
    """The seeds a tune trains (default: the base's), each once, in the order given."""
    chosen = list(dict.fromkeys(int(s) for s in (seeds if seeds else [base.seed])))
    if any(s < 0 for s in chosen):
        raise LungclError(f"seeds must be >= 0, got {chosen}")
    return chosen


def tune_configs(base: RunConfig, values: list[float], seeds: Sequence[int] | None = None) -> list[RunConfig]:
    """Every run of the tune: ``base`` at each lambda of ``values`` and each seed (lambda-major)."""
    return [c.replace(seed=s) for c in sweep_configs(base, values) for s in tune_seeds(base, seeds)]


def tune_id(base: RunConfig, values: list[float], criterion: str, seeds: Sequence[int] | None = None) -> str:
    """Hash of the tune's settings: the runs it reads (their ids) and the criterion. A one-seed tune keeps the
    id it had before tunes had several seeds."""
    runs = [c.run_id for c in tune_configs(base, values, seeds)]
    return configs.hash_id(json.dumps({"runs": runs, "criterion": criterion, "split": TUNE_SPLIT},
                                      sort_keys=True))


def tune_path(results: str | Path, base: RunConfig, values: list[float], criterion: str,
              seeds: Sequence[int] | None = None) -> Path:
    return Path(results) / "tunes" / f"{tune_id(base, values, criterion, seeds)}.json"


def seed_mean_point(strength: float, points: list[dict]) -> dict:
    """One lambda's row over its seeds: every number the mean of the seeds' (``criterion_sd`` their sample
    standard deviation, 0 with one seed), each seed's own row under ``per_seed``."""
    if len(points) == 1:
        only = {k: v for k, v in points[0].items() if k != "seed"}
        return {**only, "strength": strength, "run_ids": [only["run_id"]], "criterion_sd": 0.0, "per_seed": points}

    def mean_of(key: str) -> dict:
        return {t: float(np.mean([p[key][t] for p in points])) for t in points[0][key]}

    crit = np.array([p["criterion"] for p in points], dtype=float)
    return {"strength": strength, "run_id": points[0]["run_id"], "run_ids": [p["run_id"] for p in points],
            "criterion": float(crit.mean()), "criterion_sd": float(crit.std(ddof=1)),
            "final_val_bacc": mean_of("final_val_bacc"), "forgetting_val": mean_of("forgetting_val"),
            "new_task_val_bacc": mean_of("new_task_val_bacc"),
            "mean_forgetting_val": float(np.mean([p["mean_forgetting_val"] for p in points])),
            "per_seed": points}


def tune(base: RunConfig, values: list[float] | None = None, criterion: str = "final_val_bacc",
         results: str | Path = DEFAULT_RESULTS, workers: int | None = None, scheduler: str | None = None,
         progress: bool = True, report: Report | None = None, dask: bool = False,
         devices: list[int] | None = None, seeds: Sequence[int] | None = None) -> dict:
    """Train ``base`` at every lambda of ``values`` (default: the method's decade grid) and every seed of
    ``seeds`` (default: the base's), pick the lambda with the highest validation ``criterion`` (its mean over
    the seeds); save and return the tune record. A lambda that diverged at any seed stays on the curve as a
    failure (criterion None, its error kept) and cannot be picked."""
    if base.method not in DEFAULT_DECADES:
        raise LungclError(f"method {base.method!r} has no lambda to tune; use l2, ewc or online_ewc")
    if criterion not in CRITERIA:
        raise LungclError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    values = sorted({float(v) for v in (values or default_values(base.method))})
    seeds = tune_seeds(base, seeds)
    grid = tune_configs(base, values, seeds)
    outcome = execute_grid(grid, results, workers=workers, scheduler=scheduler, progress=progress, report=report,
                           dask=dask, devices=devices)
    by_id = {r.run_id: r for r in outcome.records}
    curve = []
    for v in values:
        runs = [c for c in grid if c.strength == v]
        missing = [c for c in runs if c.run_id not in by_id]
        if missing:
            curve.append({"strength": v, "run_id": runs[0].run_id, "run_ids": [c.run_id for c in runs],
                          "criterion": None, "error": "; ".join(
                              f"seed {c.seed}: {outcome.errors.get(c.run_id, 'not run')}" for c in missing)
                          if len(runs) > 1 else outcome.errors.get(missing[0].run_id, "not run")})
            continue
        points = [{"seed": c.seed, **curve_point(by_id[c.run_id], criterion)} for c in runs]
        curve.append(seed_mean_point(v, points))
    finite = [p for p in curve if p["criterion"] is not None and math.isfinite(p["criterion"])]
    pick = max(finite, key=lambda p: (p["criterion"], -p["strength"])) if finite else None
    # every value scores the same (e.g. every network predicts its majority class): the curve says
    # nothing about lambda, and the pick is only the tie-break (the smallest)
    flat = len(finite) > 1 and max(p["criterion"] for p in finite) - min(p["criterion"] for p in finite) < 1e-9
    description = CRITERIA[criterion][0] + (f", its mean over seeds {', '.join(map(str, seeds))}"
                                             if len(seeds) > 1 else "")
    record = {"kind": "tune", "tune_id": tune_id(base, values, criterion, seeds), "method": base.method,
              "config_version": CONFIG_VERSION, "select": base.select,
              "order": base.label.split()[0], "fold": base.fold, "seed": seeds[0], "seeds": seeds,
              "profile": base.profile,
              "split": TUNE_SPLIT, "criterion": criterion, "criterion_description": description,
              "values": values, "base_config": base.replace(strength=0.0).to_dict(), "curve": curve,
              "pick": None if pick is None else {"strength": pick["strength"], "criterion": pick["criterion"],
                                                 "run_id": pick["run_id"]},
              "flat": flat,
              "at_grid_edge": pick is not None and not flat and pick["strength"] in (values[0], values[-1])}
    atomic_write_json(tune_path(results, base, values, criterion, seeds), record)
    return record


__all__ = ["CRITERIA", "DEFAULT_DECADES", "TUNE_SPLIT", "curve_point", "default_values", "seed_mean_point", "tune",
           "tune_configs", "tune_id", "tune_path", "tune_seeds"]
