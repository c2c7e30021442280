"""Continual-learning experiments as cached records: configure, run, grid, sweep, load.

The notebooks' entry points::

    cfg = default_config("cpu", tasks="ABC", method="ewc")
    rec = run(cfg)                      # loads the record if it exists, else trains and saves it
    rec.accuracy_matrix()               # R[stage, task] as a DataFrame
    recs = run_grid(grid_configs(["ABC", "BAC"], ["sgd", "l2", "ewc"], folds=[0], seeds=[0]))
    records_table(recs)                 # one row per run
"""

from __future__ import annotations

import pandas as pd

from ..orders import order_label
from ..runs.executor import GridOutcome, unique_configs
from ..runs.folder import ResultsFolder
from .config import RunConfig, default_config, parse_overrides
from .records import Record, load_record
from .runner import execute_grid, grid_configs, run, run_grid, sweep_configs
from .tune import tune


def records_table(records: list[Record], split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """One row per record: order, method, lambda, fold, seed and its summary numbers."""
    rows = []
    for r in records:
        c = r.config
        row = {"run_id": r.run_id, "kind": c.kind, "order": order_label(c.tasks), "method": c.method,
               "strength": c.strength, "fold": c.fold, "seed": c.seed}
        s = r.summary_of(split, metric)
        for key in ("average_accuracy", "mean_forgetting", "backward_transfer"):
            if getattr(s, key) is not None:
                row[key] = getattr(s, key)
        row.update({f"final_{t}": v for t, v in s.final.items()})
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["RunConfig", "Record", "ResultsFolder", "GridOutcome", "default_config", "parse_overrides",
           "run", "run_grid", "execute_grid", "grid_configs", "sweep_configs", "unique_configs",
           "load_record", "records_table", "tune"]
