"""EWC between its references, from the records: SGD (nothing protects the old tasks), the frozen trunk
(nothing shared moves after the first task) and joint training (every task's data at every stage).

Three measures per run, in balanced accuracy on the test set: the **average** final balanced accuracy
over the tasks, the **first** task's final balanced accuracy (what is kept of the oldest task) and the
mean final balanced accuracy of the **later** tasks (what the shared network still learns). Two methods
are compared run by run (same fold and seed: same initialisation, same first stage), through the mean
of their differences and its 95 % Student-t interval over those pairs; every clause of the sentence is
chosen by those numbers.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import metrics as M
from ..errors import LungclError
from ..summaries import METHOD_LABELS, order_label
from .formats import pct, pts

MEASURES = {"average": "average final balanced accuracy", "first": "first task's final balanced accuracy",
            "later": "later tasks' final balanced accuracy"}
BOUNDED = ("sgd", "l2", "ewc", "frozen", "joint")  # the methods of the bounds table, in its order
LEARNED = 0.55  # a first task at or below this balanced accuracy after its own stage was not learned
NEEDS = ("Placing EWC between SGD and the frozen trunk needs runs of all three: `method` with sgd and ewc, "
         "`references` with frozen.")


def run_measures(records: Iterable, split: str = "test", metric: str = "balanced_accuracy") -> pd.DataFrame:
    """One row per sequence run of one order: method, fold, seed, the first task right after its stage
    (``learned``) and the three :data:`MEASURES`; the first lambda seen per method is kept (the sequence
    chapter runs one per method)."""
    rows, strengths = [], {}
    for r in records:
        c = r.config
        if c.kind != "sequence" or strengths.setdefault(c.method, c.strength) != c.strength:
            continue
        R = r.accuracy_matrix(split, metric).to_numpy(dtype=float)
        rows.append({"method": c.method, "order": order_label(r.tasks), "fold": c.fold, "seed": c.seed,
                     "learned": R[0, 0], "average": float(np.mean(R[-1])), "first": R[-1, 0],
                     "later": float(np.mean(R[-1, 1:]))})
    table = pd.DataFrame(rows, columns=["method", "order", "fold", "seed", "learned", *MEASURES])
    if table.order.nunique() > 1:
        raise LungclError(f"records of {table.order.nunique()} task orders: place EWC on one order at a time")
    return table


def bounds_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method of :data:`BOUNDED` present in :func:`run_measures`: runs, and each measure's mean with its
    95 % t-interval over the runs (nan with one run)."""
    rows = []
    for m in [m for m in BOUNDED if m in set(runs.method)]:
        g = runs[runs.method == m]
        row = {"method": METHOD_LABELS[m], "runs": len(g)}
        for q in MEASURES:
            row[q], row[f"{q} low"], row[f"{q} high"] = M.mean_ci(g[q].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def bounds_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`bounds_table` for the page: "mean [low, high]" in percent per measure."""
    def cell(r: pd.Series, q: str) -> str:
        ci = "" if np.isnan(r[f"{q} low"]) else f" [{pct(r[f'{q} low'])}, {pct(r[f'{q} high'])}]"
        return pct(r[q]) + ci

    return pd.DataFrame({"runs": table.runs, **{MEASURES[q]: [cell(r, q) for _, r in table.iterrows()]
                                                for q in MEASURES}}, index=table.index)


def paired_difference(runs: pd.DataFrame, a: str, b: str, measure: str) -> dict:
    """``a`` minus ``b`` on ``measure`` over the runs both have (same fold and seed): the two means, the
    mean difference, its 95 % t-interval (nan bounds with one pair) and the number of pairs."""
    wide = runs.pivot_table(index=["fold", "seed"], columns="method", values=measure, aggfunc="first")
    pairs = wide[[a, b]].dropna() if {a, b} <= set(wide.columns) else pd.DataFrame(columns=[a, b])
    diff, low, high = M.mean_ci((pairs[a] - pairs[b]).to_numpy())
    return {"a": float(pairs[a].mean()) if len(pairs) else np.nan,
            "b": float(pairs[b].mean()) if len(pairs) else np.nan,
            "diff": diff, "low": low, "high": high, "pairs": len(pairs)}


def _direction(d: dict, above: str, below: str, level: str) -> str:
    """``above`` / ``below`` when the interval excludes zero, ``level`` when it holds it; no interval: none."""
    if d["pairs"] < 2:
        return "no interval"
    return above if d["low"] > 0 else below if d["high"] < 0 else level


def _numbers(d: dict, name_a: str, name_b: str) -> str:
    ci = ("one run each, no interval" if d["pairs"] < 2
          else f"95 % interval over {d['pairs']} paired runs [{pts(d['low'])}, {pts(d['high'])}]")
    return f"{name_a} {pct(d['a'])} %, {name_b} {pct(d['b'])} %: {pts(d['diff'])} points, {ci}"


def between_sentence(runs: pd.DataFrame, tasks: Sequence[str]) -> str:
    """Where EWC sits between SGD and the frozen trunk (and below or beside joint training), every clause
    chosen by the paired differences of :func:`paired_difference`; or why it cannot be said."""
    if not {"sgd", "ewc", "frozen"} <= set(runs.method):
        return NEEDS
    first = tasks[0]
    learned = runs[runs.method.isin(["sgd", "ewc", "frozen"])].learned
    if (learned <= LEARNED).all():
        return (f"EWC cannot be placed between SGD and the frozen trunk here: no run learned the first task "
                f"({first}: at most {pct(learned.max())} % balanced accuracy right after its own stage, where "
                f"a constant answer scores 50 %), so there was nothing to keep or to freeze.")
    kept = paired_difference(runs, "ewc", "sgd", "first")
    new = paired_difference(runs, "ewc", "frozen", "later")
    more = paired_difference(runs, "ewc", "frozen", "average")
    keeps = _direction(kept, "keeps it better than SGD", "keeps it worse than SGD",
                       "keeps it no differently from SGD as far as the runs can tell")
    learns = _direction(new, "learns them better than the frozen trunk", "learns them worse than the frozen trunk",
                        "learns them no differently from the frozen trunk as far as the runs can tell")
    verdict = _direction(more, "EWC does more than freezing the trunk after the first task",
                         "EWC does less than freezing the trunk after the first task",
                         "the runs cannot tell EWC from freezing the trunk after the first task")
    if verdict == "no interval":
        text = (f"With one run per method no interval separates the methods from the spread between seeds: "
                f"on the first task ({first}) {_numbers(kept, 'EWC', 'SGD')}; on the later tasks "
                f"{_numbers(new, 'EWC', 'frozen trunk')}; on average {_numbers(more, 'EWC', 'frozen trunk')}. "
                "Run several seeds (`seeds`) to tell whether EWC does more than freezing the trunk.")
    else:
        text = (f"On the first task ({first}), EWC {keeps} ({_numbers(kept, 'EWC', 'SGD')}); on the later "
                f"tasks it {learns} ({_numbers(new, 'EWC', 'frozen trunk')}). In average final balanced "
                f"accuracy, {verdict} ({_numbers(more, 'EWC', 'frozen trunk')}).")
    if "joint" in set(runs.method):
        joint = paired_difference(runs, "ewc", "joint", "average")
        place = _direction(joint, "above", "below", "not distinguishable from")
        text += (f" Joint training, which trains on every task's data at every stage, reaches "
                 f"{pct(joint['b'])} % on average" + ("" if place == "no interval" else
                                                      f"; EWC is {place} it") + f" ({_numbers(joint, 'EWC', 'joint')}).")
    return text


__all__ = ["BOUNDED", "LEARNED", "MEASURES", "NEEDS", "between_sentence", "bounds_table", "bounds_view",
           "paired_difference", "run_measures"]
