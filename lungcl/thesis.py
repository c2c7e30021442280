"""The thesis's published numbers, read from the CSV the package ships, beside ours.

The thesis's tables (4.1-4.7, 5.7-5.11) are in ``lungcl/reference/thesis_results.csv``
(one row per method, order, task and stage, in percent; sensitivity and specificity only
for order ABC). Nothing here types a thesis number. Values are returned as fractions.
The ``*_with_thesis`` functions take our summaries (:mod:`lungcl.summaries`) and add the
thesis's value in a ``thesis`` column wherever it published the same quantity.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import metrics as M
from . import summaries as S
from .data.tasks import THESIS_LETTERS, THESIS_ORDERS
from .errors import LungclError
from .methods import THESIS_METHODS
from .orders import thesis_order

THESIS_METRICS = ("accuracy", "sensitivity", "specificity")
_COLUMNS = ("order", "thesis_table", "method", "task", "trained_through", "accuracy", "sensitivity",
            "specificity")


@functools.lru_cache(maxsize=1)
def _read_csv() -> pd.DataFrame:
    path = resources.files("lungcl") / "reference" / "thesis_results.csv"
    try:
        with resources.as_file(path) as p:
            df = pd.read_csv(p, dtype={"thesis_table": str, "order": str})
    except FileNotFoundError as exc:
        raise LungclError(f"the thesis's numbers are missing from the package ({path})") from exc
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing:
        raise LungclError(f"{path} lacks column(s) {', '.join(missing)}")
    return df


def thesis_results() -> pd.DataFrame:
    """Every published number: order, table, method (sgd/l2/ewc), task and trained (task names), their
    letters, stage (0-based position of the trained task in the order), metrics as fractions."""
    df = _read_csv().copy()
    df["method"] = df["method"].str.lower()
    df["task_letter"], df["trained_letter"] = df["task"], df["trained_through"]
    df["task"] = df["task_letter"].map(THESIS_LETTERS)
    df["trained"] = df["trained_letter"].map(THESIS_LETTERS)
    df["stage"] = [o.index(t) for o, t in zip(df["order"], df["trained_letter"])]
    for m in THESIS_METRICS:
        df[m] = df[m] / 100.0
    return df[["order", "thesis_table", "method", "task", "task_letter", "trained", "trained_letter", "stage",
               *THESIS_METRICS]]


def thesis_matrix(order: str, method: str, metric: str = "accuracy") -> pd.DataFrame:
    """The thesis's R[stage, task] for ``order`` (rows "after <task>", columns in training order); nan
    where it has no number (tasks not trained yet)."""
    df = thesis_results()
    rows = df[(df.order == order) & (df.method == method)]
    if rows.empty:
        raise LungclError(f"the thesis has no {method} run of order {order!r}")
    tasks = S.order_tasks(order)
    R = pd.DataFrame(np.nan, index=[f"after {t}" for t in tasks], columns=tasks)
    for r in rows.itertuples():
        R.loc[f"after {r.trained}", r.task] = getattr(r, metric)
    return R


def thesis_first_stage() -> pd.DataFrame:
    """Per task, the thesis's accuracy right after learning it FIRST (the orders starting with it, every
    method: no penalty acts yet, so these are single-task trainings): mean, min, max, number of runs."""
    df = thesis_results()
    first = df[(df.stage == 0) & (df.task == df.trained)]
    out = first.groupby("task")["accuracy"].agg(["mean", "min", "max", "count"])
    out.columns = ["thesis_mean", "thesis_min", "thesis_max", "thesis_runs"]
    return out.reindex([t for t in THESIS_LETTERS.values() if t in out.index])


def thesis_implied_positive_share(order: str = "ABC") -> pd.DataFrame:
    """On one test set accuracy = p sens + (1 - p) spec, so p = (acc - spec) / (sens - spec) is the
    positive share each published row implies; the rows of one task should all imply the same p."""
    t = thesis_results()
    t = t[(t.order == order) & t.sensitivity.notna()].copy()
    t["implied_positive_share"] = (t.accuracy - t.specificity) / (t.sensitivity - t.specificity)
    return t[["method", "task", "trained", "accuracy", "sensitivity", "specificity", "implied_positive_share"]]


def thesis_transfer(order: str, method: str) -> dict[str, float]:
    """Average final accuracy, forgetting per earlier task, mean forgetting and BWT of a thesis run
    (the formulas of :mod:`lungcl.metrics` applied to its published matrix)."""
    return S.transfer_summary(thesis_matrix(order, method).to_numpy(), S.order_tasks(order))


# ---------------------------------------------------------------- beside ours


def add_thesis(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`lungcl.summaries.stage_table` with a ``thesis`` column where the thesis has the number
    (its SGD / L2 / EWC sequences of A, B, C: accuracy in every order, sensitivity and specificity in ABC)."""
    th = thesis_results().melt(id_vars=["order", "method", "task", "trained"], value_vars=list(THESIS_METRICS),
                               var_name="metric", value_name="thesis").dropna(subset=["thesis"])
    merged = table.merge(th, on=["order", "method", "task", "trained", "metric"], how="left")
    merged.loc[(merged["kind"] != "sequence").to_numpy(), "thesis"] = np.nan
    return merged


def stage_table_with_thesis(records: Iterable, split: str = "test",
                            metrics: Sequence[str] = S.STAGE_METRICS) -> pd.DataFrame:
    """Our metrics per stage and task (:func:`lungcl.summaries.stage_table`) with the thesis's column."""
    return add_thesis(S.stage_table(records, split, metrics))


def single_task_with_thesis(records: Iterable, split: str = "test",
                            metrics: Sequence[str] = S.STAGE_METRICS) -> pd.DataFrame:
    """Each task alone (ours, with intervals) and the thesis's accuracy when it learned the task first."""
    return S.single_task_table(records, split, metrics).join(thesis_first_stage(), how="left")


def transfer_with_thesis(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """:func:`lungcl.summaries.transfer_table` with the same quantities computed on the thesis's matrix."""
    out = S.transfer_table(records, split, metric)
    out["thesis"] = [thesis_transfer(r.order, r.method).get(r.quantity, np.nan)
                     if metric == "accuracy" and r.order in THESIS_ORDERS and r.method in THESIS_METHODS
                     else np.nan for r in out.itertuples()]
    return out


def positions_with_thesis(records: Iterable, split: str = "test") -> pd.DataFrame:
    """:func:`lungcl.summaries.final_by_position` (accuracy) with the thesis's final accuracy."""
    t = S.final_by_position(records, split, "accuracy")
    return add_thesis(t.assign(metric="accuracy"))


def order_spread(transfer: pd.DataFrame, quantity: str = "average_accuracy") -> pd.DataFrame:
    """Per method: the spread of ``quantity`` across task orders (min, max, range, sd), ours and the
    thesis's, beside the median width of our per-order intervals (is the spread larger than the noise?)."""
    t = transfer[transfer.quantity == quantity]
    rows = []
    for method in [m for m in S.METHOD_LABELS if m in set(t.method)]:
        g = t[t.method == method]
        th = g["thesis"].dropna() if "thesis" in g else pd.Series(dtype=float)
        rows.append({"method": S.METHOD_LABELS[method], "orders": len(g),
                     "min": g.value.min(), "max": g.value.max(), "range": g.value.max() - g.value.min(),
                     "sd": g.value.std(ddof=1) if len(g) > 1 else np.nan,
                     "median CI width": float(np.nanmedian(g.ci_high - g.ci_low))
                     if g.ci_high.notna().any() else np.nan,
                     "thesis range": th.max() - th.min() if len(th) else np.nan,
                     "thesis sd": th.std(ddof=1) if len(th) > 1 else np.nan})
    return pd.DataFrame(rows).set_index("method")


# ---------------------------------------------------------------- the thesis's findings, tested


def _forgetting(R: np.ndarray) -> np.ndarray:
    return M.forgetting(R)[:-1]  # the earlier tasks' forgetting (the last task has none)


def _new_tasks(R: np.ndarray) -> float:
    return float(np.diag(R)[1:].mean())  # the later tasks right after their own stage


# finding -> its margin on one order's {method: R} (positive: the finding holds in that order). "Forgets":
# mean forgetting of the earlier tasks (the first task's for finding 1); "learns the new tasks": the
# diagonal after the first stage (each later task right after its own stage)
FINDINGS = {
    "1. EWC forgets the first task less than SGD":
        lambda R: _forgetting(R["sgd"])[0] - _forgetting(R["ewc"])[0],
    "2a. SGD forgets the most":
        lambda R: _forgetting(R["sgd"]).mean() - max(_forgetting(R[m]).mean() for m in R if m != "sgd"),
    "2b. SGD learns the new tasks best":
        lambda R: _new_tasks(R["sgd"]) - max(_new_tasks(R[m]) for m in R if m != "sgd"),
    "3a. L2 forgets less than SGD":
        lambda R: _forgetting(R["sgd"]).mean() - _forgetting(R["l2"]).mean(),
    "3b. L2 learns the later tasks worst":
        lambda R: min(_new_tasks(R[m]) for m in R if m != "l2") - _new_tasks(R["l2"]),
}


def thesis_margin(finding: str, orders: Iterable[str]) -> float:
    """A finding's margin (:data:`FINDINGS`) on the thesis's own tables, mean over those of ``orders`` it
    published (nan: none of them)."""
    values = [FINDINGS[finding]({m: thesis_matrix(o, m).to_numpy() for m in THESIS_METHODS})
              for o in orders if o in THESIS_ORDERS]
    return float(np.mean(values)) if values else np.nan


def _claim_checks(matrices: dict[str, dict[str, np.ndarray]], min_margin: float) -> list[dict]:
    """Per finding: in how many orders it holds (margin > ``min_margin``), in how many the opposite holds
    (margin < -``min_margin``), and the mean margin (positive: in the finding's direction)."""
    rows = []
    for finding, margin in FINDINGS.items():
        margins = np.array([margin(R) for R in matrices.values() if set(THESIS_METHODS) <= set(R)])
        rows.append({"finding": finding, "orders": len(margins), "holds in": int((margins > min_margin).sum()),
                     "reversed in": int((margins < -min_margin).sum()),
                     "mean margin": float(margins.mean()) if len(margins) else np.nan})
    return rows


def claims_table(records: Iterable, split: str = "test", metric: str = "accuracy",
                 min_margin: float = 0.01) -> pd.DataFrame:
    """The thesis's findings 1-3 (:data:`FINDINGS`) tested in every order of our sequence records (mean
    over folds per order and method) and in the thesis's own tables: the orders in which each holds
    by more than ``min_margin`` (1 point), those in which the opposite does, and the mean margin."""
    ours: dict[str, dict[str, list]] = {}
    for r in records:
        if r.config.kind == "sequence" and r.config.method in THESIS_METHODS:
            ours.setdefault(S.order_label(r.tasks), {}).setdefault(r.config.method, []).append(
                r.accuracy_matrix(split, metric).to_numpy())
    ours_R = {o: {m: np.mean(v, axis=0) for m, v in d.items()} for o, d in ours.items()}
    theirs = {o: {m: thesis_matrix(o, m).to_numpy() for m in THESIS_METHODS} for o in ours_R if o in THESIS_ORDERS}
    out = pd.DataFrame(_claim_checks(ours_R, min_margin)).set_index("finding")
    out.columns = [f"{c} (ours)" for c in out.columns]
    if theirs:
        th = pd.DataFrame(_claim_checks(theirs, min_margin)).set_index("finding")
        for c in th.columns:
            out[f"{c} (thesis)"] = th[c]
    return out


# ---------------------------------------------------------------- side-by-side tables for the page


def _thesis_cell(v: float) -> str:
    return "-" if pd.isna(v) else f"{100 * v:.2f}"


def _method_categories(methods: Iterable[str]) -> list[str]:
    present = set(methods)
    return [S.METHOD_LABELS[m] for m in S.METHOD_LABELS if m in present]


def matrix_side_by_side(records: Iterable, metric: str = "accuracy", split: str = "test") -> pd.DataFrame:
    """The layout of the thesis's Table 4.7: a row per (task, method), a column pair (ours, thesis) per
    stage; ours as the mean over runs; blank above the diagonal (tasks not trained yet)."""
    t = stage_table_with_thesis(records, split, [metric])
    t = t[t.kind == "sequence"]
    if t.empty:
        raise LungclError("no sequence records for an accuracy matrix")
    tasks = list(t[["stage", "trained"]].drop_duplicates().sort_values("stage").trained)
    cols = pd.MultiIndex.from_product([[f"after {x}" for x in tasks], ["ours", "thesis"]])
    index = pd.MultiIndex.from_product([tasks, _method_categories(t.method)], names=["task", "method"])
    out = pd.DataFrame(np.nan, index=index, columns=cols)
    for r in t.itertuples():
        row = (r.task, S.METHOD_LABELS[r.method])
        out.loc[row, (f"after {r.trained}", "ours")] = r.value
        out.loc[row, (f"after {r.trained}", "thesis")] = r.thesis
    if out.xs("thesis", axis=1, level=1).isna().all().all():
        out = out.drop(columns="thesis", level=1)
    return out


def stage_side_by_side(table: pd.DataFrame, stage: int, metrics: Sequence[str] = S.STAGE_METRICS) -> pd.DataFrame:
    """One stage of :func:`stage_table_with_thesis` as the thesis's Tables 4.1-4.6: rows (task, method),
    our metrics as "v [lo, hi]" and the thesis's value after each metric it published."""
    part = table[table.stage == stage].copy()
    if part.empty:
        raise LungclError(f"no stage {stage} in the table")
    part["method"] = pd.Categorical(part.method.map(S.METHOD_LABELS), _method_categories(part.method))
    part = part.sort_values("method", kind="stable")
    ours = S.wide_with_ci(part, ["task", "method"], "metric")
    out = pd.DataFrame(index=ours.index)
    has_thesis = "thesis" in part and part.thesis.notna().any()
    th = part.pivot_table(index=["task", "method"], columns="metric", values="thesis", aggfunc="first",
                          observed=True) if has_thesis else pd.DataFrame()
    for m in [m for m in metrics if m in ours]:
        out[S.METRIC_LABELS.get(m, m)] = ours[m]
        if has_thesis and m in th:
            out[f"{S.METRIC_LABELS.get(m, m)} (thesis)"] = th[m].reindex(out.index).map(_thesis_cell)
    return out


def transfer_side_by_side(transfer: pd.DataFrame) -> pd.DataFrame:
    """:func:`transfer_with_thesis` as a row per quantity and a column pair (ours, thesis) per method."""
    has_thesis = "thesis" in transfer and transfer.thesis.notna().any()
    methods = [m for m in S.METHOD_LABELS if m in set(transfer.method)]
    cols = pd.MultiIndex.from_product([[S.METHOD_LABELS[m] for m in methods],
                                       ["ours", "thesis"] if has_thesis else ["ours"]])
    metric = transfer["metric"].iloc[0] if "metric" in transfer else "accuracy"
    quantities = [S.quantity_label(q, metric) for q in dict.fromkeys(transfer.quantity)]
    out = pd.DataFrame("", index=quantities, columns=cols)
    for r in transfer.itertuples():
        q, m = S.quantity_label(r.quantity, metric), S.METHOD_LABELS[r.method]
        out.loc[q, (m, "ours")] = S.percent_with_ci(r.value, r.ci_low, r.ci_high)
        if has_thesis:
            out.loc[q, (m, "thesis")] = _thesis_cell(r.thesis)
    return out


__all__ = ["THESIS_METHODS", "THESIS_METRICS", "thesis_results", "thesis_order", "thesis_matrix",
           "thesis_first_stage", "thesis_implied_positive_share", "thesis_transfer", "add_thesis",
           "stage_table_with_thesis", "single_task_with_thesis", "transfer_with_thesis", "positions_with_thesis",
           "order_spread", "FINDINGS", "thesis_margin", "claims_table", "matrix_side_by_side", "stage_side_by_side", "transfer_side_by_side"]
