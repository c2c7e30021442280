"""Run records summarised as tidy tables: metrics per stage, forgetting and transfer, positions, sweeps.

Every value is a fraction in [0, 1]. Records of one setting that differ only in fold or seed
are collapsed: one run keeps the record's bootstrap interval over test patients, several get
their mean and a Student-t interval over the runs. Nothing here knows the thesis; see
:mod:`lungcl.thesis` for its numbers beside these.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .errors import LungclError
from .methods import METHOD_LABELS
from .methods.ewc import EWCMethod
from .orders import order_label, order_tasks

STAGE_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "auc")
METRIC_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "sensitivity": "sensitivity",
                 "specificity": "specificity", "auc": "AUC"}
QUANTITY_LABELS = {"average_accuracy": "average final accuracy", "mean_forgetting": "mean forgetting",
                   "backward_transfer": "backward transfer (BWT)"}


def _record_keys(record) -> dict:
    c = record.config
    method = "single_task" if c.kind == "single_task" else c.method
    return {"kind": c.kind, "method": method, "strength": c.strength, "gamma": c.gamma,
            "order": order_label(c.tasks), "fold": c.fold, "seed": c.seed}


# ---------------------------------------------------------------- metrics per stage


def summarise_runs(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Collapse the runs (folds, seeds) of each ``keys`` group: one run keeps its own interval
    (a bootstrap over test patients), several get the mean and a t-interval over runs."""
    out = []
    for key, g in table.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key))
        values = g["value"].astype(float).to_numpy()
        if len(g) == 1:
            lo, hi = float(g["ci_low"].iloc[0]), float(g["ci_high"].iloc[0])
            row.update(value=float(values[0]), ci_low=lo, ci_high=hi, n_runs=1,
                       ci="" if np.isnan(lo) else "bootstrap over test patients")
        else:
            mean, lo, hi = M.mean_ci(values)
            row.update(value=mean, ci_low=lo, ci_high=hi, n_runs=len(g), ci=f"t over {len(g)} runs")
        out.append(row)
    return pd.DataFrame(out)


def stage_table(records: Iterable, split: str = "test", metrics: Sequence[str] = STAGE_METRICS,
                seen_only: bool = True) -> pd.DataFrame:
    """One row per (setting, stage, task, metric), summarised over the folds and seeds of the runs:
    value, ci_low, ci_high, n_runs and which interval it is (``ci``). ``seen_only`` leaves out tasks
    whose stage has not come yet (their head is untrained)."""
    rows = []
    for rec in records:
        keys = _record_keys(rec)
        sm = rec.stage_metrics()
        sm = sm[sm.split == split]
        position = {t: i for i, t in enumerate(rec.tasks)}
        for r in sm.to_dict("records"):
            if seen_only and keys["kind"] == "sequence" and position[r["task"]] > r["stage"]:
                continue
            for m in metrics:
                rows.append({**keys, "stage": r["stage"], "trained": r["trained"], "task": r["task"],
                             "metric": m, "value": r.get(m, np.nan),
                             "ci_low": r.get(f"{m}_ci_low", np.nan), "ci_high": r.get(f"{m}_ci_high", np.nan)})
    if not rows:
        raise LungclError("no records to summarise")
    return summarise_runs(pd.DataFrame(rows), ["kind", "method", "strength", "gamma", "order", "stage",
                                               "trained", "task", "metric"])


def single_task_table(records: Iterable, split: str = "test",
                      metrics: Sequence[str] = STAGE_METRICS) -> pd.DataFrame:
    """Each task trained alone (single-task records): one row per task, each metric and its interval."""
    t = stage_table(records, split, metrics)
    t = t[t.kind == "single_task"]
    if t.empty:
        raise LungclError("no single-task records")
    out = pd.DataFrame(index=pd.Index(list(dict.fromkeys(t.task)), name="task"))
    for m in metrics:
        d = t[t.metric == m].set_index("task").reindex(out.index)
        out[m], out[f"{m}_ci_low"], out[f"{m}_ci_high"] = d.value, d.ci_low, d.ci_high
    return out


def majority_baseline(record, split: str = "test") -> pd.DataFrame:
    """Per task of a record: nodules, positives, the positive share, and the accuracy of always
    answering the majority class (the floor an accuracy must be read against)."""
    rows = []
    for task in record.tasks:
        d = record.data["data"][task][split]
        n, pos = int(d["n"]), int(d["positive"])
        rows.append({"task": task, "nodules": n, "positive": pos, "positive_share": pos / n,
                     "majority_accuracy": max(pos, n - pos) / n})
    return pd.DataFrame(rows).set_index("task")


# ---------------------------------------------------------------- forgetting and transfer


def transfer_summary(R: np.ndarray, tasks: Sequence[str]) -> dict[str, float]:
    """Average final accuracy, mean forgetting, BWT and the forgetting of each earlier task of R."""
    f = M.forgetting(R)
    out = {"average_accuracy": M.average_accuracy(R), "mean_forgetting": float(np.nanmean(f[:-1])),
           "backward_transfer": M.backward_transfer(R)}
    out.update({f"forgetting_{t}": float(v) for t, v in zip(list(tasks)[:-1], f[:-1])})
    return out


def transfer_table(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Per (method, lambda, order): average final accuracy, forgetting of each earlier task, mean
    forgetting and BWT, with intervals.

    Intervals: a t-interval over several folds or seeds, else none (nan): an interval for one run
    would need its per-nodule predictions at every stage, which records do not keep.
    """
    rows = []
    for rec in records:
        if rec.config.kind != "sequence":
            continue
        keys = _record_keys(rec)
        R = rec.accuracy_matrix(split, metric).to_numpy()
        for q, v in transfer_summary(R, rec.tasks).items():
            rows.append({**keys, "quantity": q, "value": v, "ci_low": np.nan, "ci_high": np.nan})
    return _quantity_table(rows, metric, "no sequence records for a transfer table")


def _quantity_table(rows: list[dict], metric: str, empty: str) -> pd.DataFrame:
    """Rows of (method, lambda, gamma, order, quantity, value) summarised over runs; none -> ``empty``."""
    if not rows:
        raise LungclError(empty)
    out = summarise_runs(pd.DataFrame(rows), ["method", "strength", "gamma", "order", "quantity"])
    out["metric"] = metric
    return out


def forward_transfer_table(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Per (method, lambda, order): forward transfer, each later task right after its stage minus the
    same task trained alone (:func:`lungcl.metrics.forward_transfer`), paired by fold and seed with
    the single-task records among ``records``; sequences without all their single-task runs are skipped."""
    records = list(records)
    alone = {(r.tasks[0], r.config.fold, r.config.seed): r.accuracy_matrix(split, metric).iloc[0, 0]
             for r in records if r.config.kind == "single_task" and len(r.tasks) == 1}
    rows = []
    for rec in records:
        c = rec.config
        ref = [alone.get((t, c.fold, c.seed)) for t in rec.tasks]
        if c.kind != "sequence" or any(v is None for v in ref):
            continue
        value = M.forward_transfer(rec.accuracy_matrix(split, metric).to_numpy(), ref)
        rows.append({**_record_keys(rec), "quantity": "forward_transfer", "value": value,
                     "ci_low": np.nan, "ci_high": np.nan})
    return _quantity_table(rows, metric,
                           "forward transfer needs sequence records and their single-task runs (same folds, seeds)")


def final_by_position(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Per (method, order, task): the task's position in the order (1 = learned first) and its
    ``metric`` after the last stage, with its interval."""
    t = stage_table(records, split, [metric])
    t = t[t.kind == "sequence"]
    t = t[t.stage == t.groupby("order").stage.transform("max")].copy()
    t["position"] = [order_tasks(order).index(task) + 1 for order, task in zip(t.order, t.task)]
    return t.reset_index(drop=True)


def tradeoff_table(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Per sequence record: method, lambda, fold, the final mean ``metric`` of the earlier tasks ("old"),
    of the last task ("new"), and of all tasks."""
    rows = []
    for r in records:
        if r.config.kind != "sequence":
            continue
        final = r.accuracy_matrix(split, metric).iloc[-1].to_numpy()
        rows.append({"method": r.config.method, "strength": r.config.strength, "gamma": r.config.gamma,
                     "fold": r.config.fold, "old": float(np.mean(final[:-1])), "new": float(final[-1]),
                     "all": float(np.mean(final)), "metric": metric})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- inside the network


def layer_of(name: str) -> str:
    """A parameter's layer: ``trunk.<i>`` or ``head <task>``."""
    parts = name.split(".")
    if parts[0] == "heads" and len(parts) > 2:
        return f"head {parts[1]}"
    return ".".join(parts[:2]) if parts[0] == "trunk" and len(parts) > 2 else parts[0]


def layer_labels(names: Iterable[str]) -> dict[str, str]:
    """``trunk.0`` -> "stem", residual blocks numbered, the last trunk entry (BatchNorm) -> "final norm"."""
    names = list(names)
    layers = list(dict.fromkeys(layer_of(n) for n in names))
    blocks = {layer_of(n) for n in names if n.startswith("trunk.") and n.count(".") >= 3}
    trunk = [ly for ly in layers if ly.startswith("trunk.")]
    labels, k = {}, 0
    for ly in trunk:
        if ly in blocks:
            k += 1
            labels[ly] = f"block {k}"
        else:
            labels[ly] = "stem" if ly == trunk[0] else "final norm"
    labels.update({ly: ly for ly in layers if not ly.startswith("trunk.")})
    return labels


def fisher_layer_table(method_state: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """From an EWC checkpoint's method state (``fisher/<task>/<param>``): per task and layer, the
    Fisher mass (sum), its share of the task's total, the mean per weight and the number of weights."""
    fishers = EWCMethod.from_state(method_state).fishers
    rows = [{"task": task, "param": name, "layer": layer_of(name), "mass": float(f.double().sum()),
             "n": int(f.numel())} for task, fisher in fishers.items() for name, f in fisher.items()]
    if not rows:
        raise LungclError("no Fisher diagonals in this method state (is it an EWC run?)")
    t = pd.DataFrame(rows)
    labels = layer_labels(t.param)
    t = t.groupby(["task", "layer"], sort=False, as_index=False)[["mass", "n"]].sum()
    t["label"] = t.layer.map(labels)
    t["share"] = t.mass / t.groupby("task").mass.transform("sum")
    t["mean"] = t.mass / t.n
    return t


def ewc_anchor(method_state: Mapping[str, torch.Tensor], task: str) -> dict[str, torch.Tensor]:
    """The weights EWC remembered for ``task`` (``anchor/<task>/<param>``): the network right after it."""
    return EWCMethod.from_state(method_state).anchor(task)


def layer_drift_table(models: Mapping[str, Mapping[str, torch.Tensor]],
                      anchor: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Per model (e.g. each method's final weights) and layer: how far the weights moved from ``anchor``
    (e.g. the network after the first task), as ||theta - anchor|| / ||anchor||."""
    rows = []
    labels = layer_labels(anchor)
    for model_name, state in models.items():
        acc: dict[str, list[float]] = {}
        for name, a in anchor.items():
            if name not in state:
                continue
            d = acc.setdefault(layer_of(name), [0.0, 0.0])
            d[0] += float((state[name].double() - a.double()).pow(2).sum())
            d[1] += float(a.double().pow(2).sum())
        for layer, (num, den) in acc.items():
            rows.append({"model": model_name, "layer": layer, "label": labels[layer],
                         "drift": float(np.sqrt(num / den)) if den > 0 else np.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- settings, time, display


SETTINGS_SHOWN = ("depth", "width", "epochs", "max_steps_per_epoch", "batch_size", "lr", "momentum",
                  "weight_decay", "eval_every", "patience", "fisher", "fisher_samples", "penalty_step",
                  "freeze_bn_stats", "n_boot")
STEPS_ROW = "steps trained per stage (mean over runs)"


def settings_table(records: Iterable) -> pd.DataFrame:
    """The training settings of the runs, one column per method (and lambda), for the reader; the last
    row is the budget actually used: the steps each stage trained before its patience ran out (or
    the cap), averaged over the column's runs (per task for single-task runs)."""
    cols: dict[str, dict] = {}
    steps: dict[str, dict[str, list[int]]] = {}
    for r in records:
        c = r.config
        lam = f" λ={c.strength:g}" if c.method in ("l2", "ewc", "online_ewc") else ""
        name = ("single task" if c.kind == "single_task" else METHOD_LABELS.get(c.method, c.method)) + lam
        cols.setdefault(name, {k: getattr(c, k) for k in SETTINGS_SHOWN if hasattr(c, k)})
        for s in r.data.get("stages", []):
            steps.setdefault(name, {}).setdefault(s["task"], []).append(int(s["steps"]))
    for name, per_task in steps.items():
        cols[name][STEPS_ROW] = ", ".join(f"{np.mean(v):.0f}" for v in per_task.values())
    df = pd.DataFrame(cols).astype(str)
    df.index.name = "setting"
    return df


def timing_table(records: Iterable) -> pd.DataFrame:
    """Wall time of each run as recorded when it was computed (one torch thread), in minutes."""
    rows = []
    for r in records:
        t, env = r.data.get("timings", {}), r.data.get("environment", {})
        rows.append({"run": r.config.label, "minutes": t.get("total_s", np.nan) / 60,
                     "stages": len(r.data["stages"]), "threads": env.get("torch_threads"),
                     "cpus": env.get("cpu_count")})
    return pd.DataFrame(rows).set_index("run")


def quantity_label(quantity: str, metric: str = "accuracy") -> str:
    """``forgetting_malignancy`` -> "forgetting of malignancy"; ``average_accuracy`` -> "average final
    accuracy" (or "... balanced accuracy" for that ``metric``)."""
    if quantity.startswith("forgetting_"):
        return "forgetting of " + quantity[len("forgetting_"):]
    if quantity == "average_accuracy":
        return f"average final {METRIC_LABELS.get(metric, metric)}"
    return QUANTITY_LABELS.get(quantity, quantity.replace("_", " "))


def percent_with_ci(value: float, low: float = np.nan, high: float = np.nan, digits: int = 1,
                    ci_digits: int = 0) -> str:
    """``"91.3 [88, 94]"`` (percent); the bracket only when the interval is known."""
    if value is None or pd.isna(value):
        return "-"
    text = f"{100 * value:.{digits}f}"
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        text += f" [{100 * low:.{ci_digits}f}, {100 * high:.{ci_digits}f}]"
    return text


COMPACT_STYLE = [{"selector": "td, th", "props": "white-space: nowrap; font-size: 0.86em; padding: 0.25em 0.55em;"}]


def page_table(table: pd.DataFrame, caption: str, formatter=None):
    """``table`` styled for a book page: caption, compact cells that do not wrap, ``formatter`` if given."""
    styler = table.style
    if formatter is not None:
        styler = styler.format(formatter, na_rep="")
    return styler.set_caption(caption).set_table_styles(COMPACT_STYLE, overwrite=False)


def wide_with_ci(table: pd.DataFrame, index: list[str], columns: str, digits: int = 1) -> pd.DataFrame:
    """A summarised long table (value, ci_low, ci_high) pivoted to text cells "v [lo, hi]" in percent."""
    t = table.copy()
    t["cell"] = [percent_with_ci(v, lo, hi, digits) for v, lo, hi in zip(t.value, t.ci_low, t.ci_high)]
    return t.pivot_table(index=index, columns=columns, values="cell", aggfunc="first", sort=False,
                         observed=True)


__all__ = ["STAGE_METRICS", "METHOD_LABELS", "METRIC_LABELS", "QUANTITY_LABELS", "order_label", "order_tasks",
           "summarise_runs", "stage_table", "single_task_table", "majority_baseline", "transfer_summary",
           "transfer_table", "forward_transfer_table", "final_by_position", "tradeoff_table", "layer_of",
           "layer_labels", "fisher_layer_table", "ewc_anchor", "layer_drift_table", "settings_table",
           "timing_table", "quantity_label", "percent_with_ci", "page_table", "wide_with_ci"]
