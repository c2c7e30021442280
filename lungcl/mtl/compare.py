"""The chapter's comparison: the gated network in several settings beside its baselines, as tables.

Settings (the source's comparison, on LIDC): binary vs multi-class tasks, all
vs half the parameters, Adam vs plain SGD; baselines: the hard-sharing
multi-head ResNet (same tasks, about the same parameters) and single-task
networks (one branch each, so nothing to share).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..machine import usable_cores
from ..runs.executor import execute, records_or_raise
from .config import MTLConfig
from .record import MTLRecord
from .train import MULTITASK


def comparison_configs(base: MTLConfig, include_sgd: bool = True) -> dict[str, MTLConfig]:
    """Named settings around ``base`` (binary, all parameters): each differs from the first in one thing.

    The last gated setting trains with plain SGD (the continual-learning chapters' optimiser) instead
    of Adam, which shows what the fusion initialisation does to the sharing.
    """
    main = base.replace(model="gated", multiclass=False, param_scale=1.0)
    out = {"gated binary": main,
           "gated binary, half parameters": main.replace(param_scale=0.5),
           "gated multi-class": main.replace(multiclass=True)}
    if include_sgd and main.optimizer != "sgd":
        out["gated binary, SGD"] = main.replace(optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=5e-4)
    out["hard sharing binary"] = main.replace(model="hard")
    return out


def run_all(configs: Sequence[MTLConfig], results: str, workers: int | None = None) -> list[MTLRecord]:
    """The records of ``configs``, in order: finished runs loaded, the others trained ``workers`` at a
    time in local processes (one torch thread each; ``workers`` 1: here, one after the other; None:
    every usable core).
    Any failure -> one LungclError once the others are done."""
    workers = usable_cores() if workers is None else int(workers)
    return records_or_raise(execute(MULTITASK, configs, results, workers=workers, progress=False))


def metric_table(records: Mapping[str, MTLRecord], metric: str = "balanced_accuracy",
                 split: str = "test") -> pd.DataFrame:
    """Tasks (rows) x settings (columns) of one test metric; a missing metric is nan."""
    cols = {}
    for name, rec in records.items():
        m = rec.metrics(split)
        cols[name] = m[metric] if metric in m.columns else pd.Series(float("nan"), index=m.index)
    return pd.DataFrame(cols)


def single_task_column(records: Mapping[str, MTLRecord], metric: str = "balanced_accuracy",
                       split: str = "test") -> pd.Series:
    """The single-task baselines' metric, one value per task."""
    return pd.Series({task: rec.metrics(split).loc[task, metric] for task, rec in records.items()},
                     name="single task")


def run_overview(records: Mapping[str, MTLRecord]) -> pd.DataFrame:
    """Per setting: parameters, batch size, best epoch, training minutes, mean borrowed share."""
    from .sharing import borrowed_share

    rows = []
    for name, rec in records.items():
        d = rec.data
        rows.append({"setting": name, "parameters": d["n_parameters"], "batch": d["batch_size"],
                     "steps/epoch": d["steps_per_epoch"], "best epoch": d["best_epoch"],
                     "minutes": d["timings"]["total_s"] / 60,
                     "borrowed share": float(borrowed_share(rec.sharing()).mean()) if d["sharing"] else None})
    return pd.DataFrame(rows).set_index("setting")
