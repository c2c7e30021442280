"""Every figure of the experiment chapters: each function takes records or tables and returns a Figure.

Colours are fixed per method across the book (SGD, L2, EWC, ...). Where the thesis has
a number, the figure marks it with a hollow diamond in the method's colour; our values
are filled. Values are fractions, drawn as percent.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .errors import LungclError
from .summaries import METHOD_LABELS, METRIC_LABELS, quantity_label
from .thesis import THESIS_METHODS, thesis_matrix, thesis_order

_PALETTE = sns.color_palette("colorblind", 8)
METHOD_COLORS = {"sgd": _PALETTE[3], "l2": _PALETTE[1], "ewc": _PALETTE[0], "online_ewc": _PALETTE[4],
                 "joint": _PALETTE[2], "single_task": _PALETTE[7]}
THESIS_STYLE = dict(marker="D", s=46, facecolors="white", linewidths=1.6, zorder=5)


def _method_order(methods: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(methods))
    return [m for m in METHOD_COLORS if m in present] + [m for m in present if m not in METHOD_COLORS]


def _color(method: str):
    return METHOD_COLORS.get(method, "0.3")


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def short_name(task: str) -> str:
    """A tick label: ``calcification`` -> ``calcif.``."""
    return task if len(task) <= 8 else task[:6] + "."


def _percent_axis(ax, lo: float = 0.0, hi: float = 1.0) -> None:
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))


def _sequence_records(records: Iterable) -> list:
    recs = [r for r in records if r.config.kind == "sequence"]
    if not recs:
        raise LungclError("no sequence records to draw")
    orders = {tuple(r.tasks) for r in recs}
    if len(orders) > 1:
        raise LungclError(f"records of several task orders given ({len(orders)}); draw one order at a time")
    return recs


# ---------------------------------------------------------------- curves across the stages


def accuracy_curves(records: Iterable, metric: str = "accuracy", split: str = "test", thesis: bool = True,
                    majority: bool = True) -> Figure:
    """The thesis's Fig. 4.20-4.23: every task's ``metric`` during the whole sequence, one panel per task
    (in training order), one line per method (mean over folds), stage boundaries as dashed lines.

    A task is drawn from its own stage on (before it, its head is untrained). Filled dots: the
    value reported for each stage, placed at the stage's best checkpoint (lowest validation loss of
    the stage's task), which the next stage starts from; hollow diamonds: the thesis's value at the
    stage's end; dotted grey: always answering the majority class.
    """
    recs = _sequence_records(records)
    tasks = recs[0].tasks
    curves = []
    for r in recs:
        c = r.curves()
        c = c[c.split == split].assign(method=r.config.method, fold=r.config.fold, seed=r.config.seed)
        curves.append(c)
    c = pd.concat(curves)
    c = c.groupby(["method", "stage", "step", "task"], as_index=False)[metric].mean()
    bounds = c.groupby("stage")["step"].agg(["min", "max"])
    order = thesis_order(tasks) if thesis and metric == "accuracy" else None
    methods = _method_order(c.method)
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 2.1 * len(tasks) + 0.7), sharex=True, squeeze=False)
    for row, task in enumerate(tasks):
        ax = axes[row, 0]
        for m in methods:
            d = c[(c.method == m) & (c.task == task) & (c.stage >= row)]
            ax.plot(d.step, d[metric], color=_color(m), lw=1.6, label=_label(m))
            runs = [r for r in recs if r.config.method == m]
            for stage in range(row, len(tasks)):
                reported = np.mean([r.accuracy_matrix(split, metric).iloc[stage, row] for r in runs]) \
                    if metric in ("accuracy", "balanced_accuracy") else np.nan
                # the reported weights are the stage's best checkpoint: mark where in the stage it was
                best = np.mean([bounds.loc[stage, "min"] + r.data["stages"][stage]["best_stage_step"]
                                for r in runs])
                ax.scatter([best], [reported], color=_color(m), s=30, zorder=6)
                if order and m in THESIS_METHODS:
                    th = thesis_matrix(order, m).iloc[stage, row]
                    ax.scatter([bounds.loc[stage, "max"]], [th], edgecolors=_color(m), **THESIS_STYLE)
        if majority and split in ("test", "val"):
            d = recs[0].data["data"][task][split]
            share = d["positive"] / d["n"]
            ax.axhline(max(share, 1 - share), color="0.5", ls=":", lw=1.2)
        for stage in range(1, len(tasks)):
            ax.axvline(bounds.loc[stage, "min"], color="0.35", ls="--", lw=1)
        if row > 0:  # before its own stage the task's head is untrained: nothing to draw
            ax.axvspan(bounds.loc[0, "min"], bounds.loc[row, "min"], color="0.93", zorder=0)
            ax.text((bounds.loc[0, "min"] + bounds.loc[row, "min"]) / 2, 0.5, "not trained yet",
                    ha="center", va="center", color="0.55", fontsize=8)
        _percent_axis(ax)
        ax.set_ylabel(f"{chr(65 + row) if order else ''} {task}".strip(), fontsize=9)
    top = axes[0, 0]
    for stage, task in enumerate(tasks):
        mid = (bounds.loc[stage, "min"] + bounds.loc[stage, "max"]) / 2
        top.annotate(f"train {task}", (mid, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                     textcoords="offset points", ha="center", va="bottom", fontsize=9, fontweight="bold")
    axes[-1, 0].set_xlabel("training step (all stages, one after the other)")
    handles = [Line2D([], [], color=_color(m), lw=2, label=_label(m)) for m in methods]
    handles.append(Line2D([], [], color="0.3", marker="o", ls="", label="reported (best checkpoint)"))
    if order:
        handles.append(Line2D([], [], color="0.3", marker="D", markerfacecolor="white", ls="", label="thesis"))
    if majority:
        handles.append(Line2D([], [], color="0.5", ls=":", label="majority class"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5,
               bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(f"Test {METRIC_LABELS.get(metric, metric)} of every task during the sequence "
                 f"{' -> '.join(tasks)}", y=1.0)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig


def training_curves(records: Iterable, metrics: Sequence[str] = ("accuracy", "balanced_accuracy", "auc"),
                    majority: bool = True) -> Figure:
    """Each task trained alone (single-task records): one panel per task, ``metrics`` on validation
    (dashed) and test (solid) against the training step, mean over folds; the dotted line is the
    test set's majority-class accuracy."""
    recs = [r for r in records if r.config.kind == "single_task"]
    if not recs:
        raise LungclError("no single-task records to draw")
    c = pd.concat([r.curves() for r in recs])
    tasks = list(dict.fromkeys(t for r in recs for t in r.tasks))
    c = c.groupby(["task", "split", "stage_step"], as_index=False)[list(metrics)].mean()
    colors = sns.color_palette("deep", len(metrics))
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.7 * len(tasks) + 0.4, 3.0), squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks):
        for k, m in enumerate(metrics):
            for split, ls in (("val", "--"), ("test", "-")):
                d = c[(c.task == task) & (c.split == split)]
                ax.plot(d.stage_step, d[m], ls=ls, color=colors[k], lw=1.5)
        if majority:
            r = next(r for r in recs if task in r.tasks)
            n, pos = r.data["data"][task]["test"]["n"], r.data["data"][task]["test"]["positive"]
            ax.axhline(max(pos, n - pos) / n, color="0.5", ls=":", lw=1.2)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("training step")
        _percent_axis(ax, 0, 1.02)
    handles = [Line2D([], [], color=colors[k], lw=2, label=METRIC_LABELS.get(m, m)) for k, m in enumerate(metrics)]
    handles += [Line2D([], [], color="0.3", ls="-", label="test"), Line2D([], [], color="0.3", ls="--", label="validation")]
    if majority:
        handles.append(Line2D([], [], color="0.5", ls=":", label="majority class"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


# ---------------------------------------------------------------- accuracy matrices


def matrix_heatmaps(records: Iterable, metric: str = "accuracy", split: str = "test",
                    thesis: bool = True) -> Figure:
    """R[stage, task] as heat maps, one per method (mean over folds); with the thesis's matrix below
    when it has the run. Cells above the diagonal (tasks not trained yet) are left blank."""
    recs = _sequence_records(records)
    tasks = recs[0].tasks
    methods = _method_order(r.config.method for r in recs)
    order = thesis_order(tasks) if thesis and metric == "accuracy" else None
    th_methods = [m for m in methods if order and m in THESIS_METHODS]
    n_rows = 2 if th_methods else 1
    fig, axes = plt.subplots(n_rows, len(methods), figsize=(2.6 * len(methods) + 0.6, 2.4 * n_rows + 0.4),
                             squeeze=False)
    mask = np.triu(np.ones((len(tasks), len(tasks)), dtype=bool), k=1)
    short = [short_name(t) for t in tasks]

    def draw(ax, R: np.ndarray, title: str) -> None:
        sns.heatmap(R * 100, mask=mask, annot=True, fmt=".1f", vmin=50, vmax=100, cmap="viridis", cbar=False,
                    ax=ax, xticklabels=short, yticklabels=[f"after {s}" for s in short],
                    annot_kws={"fontsize": 10}, linewidths=0.5, linecolor="white")
        ax.set_title(title, fontsize=10)
        ax.grid(False)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("task tested", fontsize=8)

    for k, m in enumerate(methods):
        R = np.mean([r.accuracy_matrix(split, metric).to_numpy() for r in recs if r.config.method == m], axis=0)
        draw(axes[0, k], R, f"ours: {_label(m)}")
        if n_rows == 2:
            if m in th_methods:
                draw(axes[1, k], thesis_matrix(order, m).to_numpy(), f"thesis: {_label(m)}")
            else:
                axes[1, k].axis("off")
    fig.suptitle(f"Test {METRIC_LABELS.get(metric, metric)} (%) after each stage: row = stage, "
                 "column = task (colours from 50 % up)", fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- metrics per stage, with intervals


def _dodge(n: int, width: float = 0.8) -> np.ndarray:
    step = width / n
    return (np.arange(n) - (n - 1) / 2) * step


def metric_bars(table: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "balanced_accuracy", "sensitivity",
                                                                "specificity"),
                stages: Sequence[int] | None = None, reference: Mapping[str, Mapping[str, float]] | None = None,
                title: str | None = None) -> Figure:
    """Bars of ``metrics`` (columns of panels) per stage (rows), task on x, one bar per method, with
    interval whiskers; hollow diamonds mark the thesis (``thesis`` column, see
    :func:`lungcl.thesis.add_thesis`); ``reference`` (metric -> task -> value) draws a black tick per task
    (e.g. the task trained alone)."""
    t = table[table.metric.isin(metrics)]
    if t.empty:
        raise LungclError(f"no rows for metrics {list(metrics)}")
    all_stages = sorted(t.stage.unique())
    stages = all_stages if stages is None else [all_stages[s] for s in stages]
    methods = _method_order(t.method)
    tasks = list(dict.fromkeys(t.sort_values("stage").task))
    fig, axes = plt.subplots(len(stages), len(metrics), figsize=(max(2.1 * len(metrics) + 0.6, 7.0), 2.1 * len(stages) + 0.9),
                             squeeze=False, sharey=True)
    offsets = _dodge(len(methods))
    for i, stage in enumerate(stages):
        trained = t[t.stage == stage].trained.iloc[0]
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            d = t[(t.stage == stage) & (t.metric == metric)]
            for k, m in enumerate(methods):
                dm = d[d.method == m].set_index("task").reindex(tasks)
                x = np.arange(len(tasks)) + offsets[k]
                ax.bar(x, dm.value, width=0.8 / len(methods), color=_color(m), label=_label(m))
                lo, hi = dm.value - dm.ci_low, dm.ci_high - dm.value
                ok = dm.ci_low.notna().to_numpy()
                ax.errorbar(x[ok], dm.value[ok], yerr=[lo[ok], hi[ok]], fmt="none", ecolor="0.15", lw=1, capsize=2)
                if "thesis" in dm and dm.thesis.notna().any():
                    ax.scatter(x, dm.thesis, edgecolors="black", **THESIS_STYLE)
            ref = (reference or {}).get(metric, {})
            for x, task in enumerate(tasks):
                if task in ref and task in set(d.task):
                    ax.hlines(ref[task], x - 0.45, x + 0.45, color="black", lw=2, zorder=6)
            ax.set_xticks(np.arange(len(tasks)), [short_name(t) for t in tasks], fontsize=8)
            _percent_axis(ax, 0, 1.05)
            if i == 0:
                ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
            if j == 0:
                ax.set_ylabel(f"after {trained}", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=_color(m), label=_label(m)) for m in methods]
    if "thesis" in t and t.thesis.notna().any():
        handles.append(Line2D([], [], color="black", marker="D", markerfacecolor="white", ls="", label="thesis"))
    if reference is not None:
        handles.append(Line2D([], [], color="black", lw=2, label="single task"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def single_task_bars(table: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "balanced_accuracy",
                                                                     "sensitivity", "specificity", "auc"),
                     majority: Mapping[str, float] | None = None) -> Figure:
    """Each task alone (from :func:`lungcl.thesis.single_task_with_thesis`): one panel per task, a bar per metric
    with its interval; the thesis's first-stage accuracy as a diamond with its range over runs, and
    the majority-class accuracy as a dotted line."""
    tasks = list(table.index)
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.7 * len(tasks) + 0.5, 3.2), sharey=True, squeeze=False)
    colors = sns.color_palette("deep", len(metrics))
    for ax, task in zip(axes[0], tasks):
        r = table.loc[task]
        vals = np.array([r.get(m, np.nan) for m in metrics], dtype=float)
        lo = np.array([r.get(f"{m}_ci_low", np.nan) for m in metrics], dtype=float)
        hi = np.array([r.get(f"{m}_ci_high", np.nan) for m in metrics], dtype=float)
        x = np.arange(len(metrics))
        ax.bar(x, vals, color=colors)
        ok = ~np.isnan(lo)
        ax.errorbar(x[ok], vals[ok], yerr=[vals[ok] - lo[ok], hi[ok] - vals[ok]], fmt="none", ecolor="0.15",
                    capsize=3, lw=1)
        if "thesis_mean" in r and not np.isnan(r.get("thesis_mean", np.nan)):
            ax.vlines(0, r.thesis_min, r.thesis_max, color="black", lw=1.2, zorder=6)
            ax.scatter([0], [r.thesis_mean], edgecolors="black", **THESIS_STYLE)
        if majority is not None and task in majority:
            ax.axhline(majority[task], color="0.4", ls=":", lw=1.3)
        ax.set_xticks(x, [METRIC_LABELS.get(m, m) for m in metrics], fontsize=8, rotation=30, ha="right")
        ax.set_title(task, fontsize=10)
        _percent_axis(ax, 0, 1.05)
    handles = [Line2D([], [], color="black", marker="D", markerfacecolor="white", ls="-",
                      label="thesis: accuracy when learned first (range over runs)"),
               Line2D([], [], color="0.4", ls=":", label="majority class (accuracy)")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False, fontsize=8.5)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# ---------------------------------------------------------------- forgetting, transfer, orders


def transfer_bars(transfer: pd.DataFrame, order: str | None = None) -> Figure:
    """Average final accuracy, forgetting of each earlier task, and BWT per method, with intervals and
    the thesis's values (from :func:`lungcl.thesis.transfer_with_thesis`), for one task order."""
    t = transfer if order is None else transfer[transfer.order == order]
    if t.order.nunique() != 1:
        raise LungclError("transfer_bars draws one task order; pass order=")
    quantities = ["average_accuracy"] + [q for q in t.quantity.unique() if q.startswith("forgetting_")] \
        + ["backward_transfer"]
    quantities = [q for q in quantities if q in set(t.quantity)]
    methods = _method_order(t.method)
    fig, axes = plt.subplots(1, len(quantities), figsize=(2.1 * len(quantities) + 0.5, 3.0), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        d = t[t.quantity == q].groupby("method").first().reindex(methods)
        x = np.arange(len(methods))
        ax.bar(x, d.value, color=[_color(m) for m in methods])
        ok = d.ci_low.notna().to_numpy()
        ax.errorbar(x[ok], d.value[ok], yerr=[(d.value - d.ci_low)[ok], (d.ci_high - d.value)[ok]], fmt="none",
                    ecolor="0.15", capsize=3, lw=1)
        if "thesis" in d and d.thesis.notna().any():
            ax.scatter(x, d.thesis, edgecolors="black", **THESIS_STYLE)
        ax.axhline(0, color="0.2", lw=0.8)
        ax.set_xticks(x, [_label(m) for m in methods], fontsize=8)
        ax.set_title(quantity_label(q, t["metric"].iloc[0] if "metric" in t else "accuracy"), fontsize=10)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    if "thesis" in t and t.thesis.notna().any():
        fig.legend(handles=[Line2D([], [], color="black", marker="D", markerfacecolor="white", ls="",
                                   label="thesis (same formula on its Table 4.7)")],
                   loc="lower center", frameon=False, fontsize=8.5)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig.tight_layout()
    return fig


def order_comparison(transfer: pd.DataFrame, quantities: Sequence[str] = ("average_accuracy",
                                                                           "mean_forgetting")) -> Figure:
    """Per task order, ``quantities`` for each method (dots with intervals) and the thesis's (diamonds)."""
    methods = _method_order(transfer.method)
    orders = list(dict.fromkeys(transfer.order))
    fig, axes = plt.subplots(1, len(quantities), figsize=(4.0 * len(quantities), 3.3), squeeze=False)
    offsets = _dodge(len(methods), 0.6)
    for ax, q in zip(axes[0], quantities):
        for k, m in enumerate(methods):
            d = transfer[(transfer.method == m) & (transfer.quantity == q)].set_index("order").reindex(orders)
            x = np.arange(len(orders)) + offsets[k]
            ok = d.ci_low.notna().to_numpy()
            ax.errorbar(x[ok], d.value[ok], yerr=[(d.value - d.ci_low)[ok], (d.ci_high - d.value)[ok]],
                        fmt="none", ecolor=_color(m), lw=1.2, capsize=2)
            ax.scatter(x, d.value, color=_color(m), s=28, zorder=4, label=_label(m))
            if "thesis" in d and d.thesis.notna().any():
                ax.scatter(x, d.thesis, edgecolors=_color(m), **THESIS_STYLE)
        ax.set_xticks(np.arange(len(orders)), orders)
        ax.set_xlabel("task order")
        ax.set_title(quantity_label(q, transfer["metric"].iloc[0] if "metric" in transfer else "accuracy"),
                     fontsize=10)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    handles = [Line2D([], [], color=_color(m), marker="o", ls="", label=_label(m)) for m in methods]
    if "thesis" in transfer and transfer.thesis.notna().any():
        handles.append(Line2D([], [], color="0.3", marker="D", markerfacecolor="white", ls="", label="thesis"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def position_effect(table: pd.DataFrame, metric_label: str = "final accuracy") -> Figure:
    """From :func:`lungcl.thesis.positions_with_thesis`: one panel per task, its final value against its
    position in the order (1 = learned first), one line per method through the mean of the orders
    (dots: each order), hollow diamonds: the thesis's mean."""
    tasks = list(dict.fromkeys(table.task))
    methods = _method_order(table.method)
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.7 * len(tasks) + 0.4, 3.1), squeeze=False, sharey=True)
    offsets = _dodge(len(methods), 0.3)
    for ax, task in zip(axes[0], tasks):
        d = table[table.task == task]
        for k, m in enumerate(methods):
            dm = d[d.method == m]
            mean = dm.groupby("position").value.mean()
            ax.plot(mean.index + offsets[k], mean.values, "-", color=_color(m), lw=1.8, label=_label(m))
            ax.scatter(dm.position + offsets[k], dm.value, color=_color(m), s=14, alpha=0.7)
            th = dm.groupby("position").thesis.mean().dropna() if "thesis" in dm else []
            if len(th):
                ax.scatter(th.index + offsets[k], th.values, edgecolors=_color(m), **THESIS_STYLE)
        positions = sorted(d.position.unique())
        ax.set_xticks(positions, [{1: "first", 2: "second", 3: "third"}.get(p, str(p)) for p in positions])
        ax.set_xlabel("position in the order")
        ax.set_title(task, fontsize=10)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    axes[0, 0].set_ylabel(metric_label)
    handles = [Line2D([], [], color=_color(m), marker="o", label=_label(m)) for m in methods]
    if "thesis" in table and table.thesis.notna().any():
        handles.append(Line2D([], [], color="0.3", marker="D", markerfacecolor="white", ls="", label="thesis"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


# ---------------------------------------------------------------- the lambda sweep


def lambda_tradeoff(table: pd.DataFrame, failed: Mapping[tuple[str, float], str] | None = None) -> Figure:
    """The stability-plasticity trade-off (from :func:`lungcl.summaries.tradeoff_table`): old and new tasks' final
    accuracy against lambda, one panel per penalised method (SGD, lambda = 0, as dashed lines), and
    old against new in one plane. ``failed``: (method, lambda) -> why, drawn as crosses."""
    failed = dict(failed or {})
    t = table.groupby(["method", "strength"], as_index=False)[["old", "new", "all"]].mean()
    swept = [m for m in _method_order(t.method) if m not in ("sgd", "joint")]
    sgd = t[t.method == "sgd"]
    fig, axes = plt.subplots(1, len(swept) + 1, figsize=(3.2 * (len(swept) + 1) + 0.3, 3.5), squeeze=False)
    for ax, m in zip(axes[0], swept):
        d = t[(t.method == m) & (t.strength > 0)].sort_values("strength")
        ax.plot(d.strength, d.old, "o-", color="0.15")
        ax.plot(d.strength, d.new, "s-", color=_color(m))
        if not sgd.empty:
            ax.axhline(float(sgd.old.iloc[0]), color="0.15", ls="--", lw=1)
            ax.axhline(float(sgd.new.iloc[0]), color=_color(m), ls="--", lw=1)
        bad = [lam for (mm, lam) in failed if mm == m and lam > 0]
        if bad:
            ax.scatter(bad, [0.03] * len(bad), marker="x", color="red", s=60, zorder=6)
        ax.set_xscale("log")
        ax.set_xlabel("lambda")
        ax.set_title(f"{_label(m)}", fontsize=10)
        _percent_axis(ax)
    ax = axes[0, -1]
    for m in swept + (["sgd"] if not sgd.empty else []):
        d = t[t.method == m].sort_values("strength")
        ax.plot(d.new, d.old, "o-" if m != "sgd" else "*", color=_color(m), label=_label(m),
                ms=6 if m != "sgd" else 12)
        if m != "sgd":
            for r in d.itertuples():
                ax.annotate(f"{r.strength:g}", (r.new, r.old), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("last task (plasticity)")
    ax.set_ylabel("earlier tasks (stability)", fontsize=9)
    ax.set_title("old against new (labels: lambda)", fontsize=10)
    _percent_axis(ax)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    ax.legend(fontsize=8)
    handles = [Line2D([], [], color="0.15", marker="o", label="earlier tasks (mean)"),
               Line2D([], [], color="0.5", marker="s", label="last task"),
               Line2D([], [], color="0.3", ls="--", label="SGD (lambda 0)")]
    if failed:
        handles.append(Line2D([], [], color="red", marker="x", ls="", label="diverged"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5)
    fig.suptitle("Final test accuracy after the whole sequence, against the penalty strength", fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# ---------------------------------------------------------------- Fisher diagnostics


def fisher_per_layer(fisher: pd.DataFrame, drift: pd.DataFrame | None = None) -> Figure:
    """Left: each layer's share of a task's Fisher mass (what EWC holds hardest); middle: the mean
    Fisher per weight (log); right (with ``drift``): how far each method moved each layer."""
    n = 3 if drift is not None else 2
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n + 0.4, 3.8), squeeze=False)
    layers = list(dict.fromkeys(fisher.label))
    tasks = list(dict.fromkeys(fisher.task))
    palette = sns.color_palette("deep", len(tasks))
    y = np.arange(len(layers))
    h = 0.8 / len(tasks)
    for k, task in enumerate(tasks):
        d = fisher[fisher.task == task].set_index("label").reindex(layers)
        axes[0, 0].barh(y + (k - (len(tasks) - 1) / 2) * h, d.share, height=h, color=palette[k], label=task)
        axes[0, 1].barh(y + (k - (len(tasks) - 1) / 2) * h, d["mean"], height=h, color=palette[k], label=task)
    axes[0, 0].set_title("share of the task's Fisher mass", fontsize=10)
    axes[0, 0].xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    axes[0, 1].set_xscale("log")
    axes[0, 1].set_title("mean Fisher per weight (log)", fontsize=10)
    for ax in axes[0, :2]:
        ax.set_yticks(y, layers, fontsize=8)
        ax.invert_yaxis()
    axes[0, 0].legend(fontsize=8, title="Fisher of", title_fontsize=8)
    if drift is not None:
        ax = axes[0, 2]
        models = list(dict.fromkeys(drift.model))
        dl = [la for la in layers if la in set(drift.label)]
        yy = np.arange(len(dl))
        hh = 0.8 / len(models)
        for k, m in enumerate(models):
            d = drift[drift.model == m].set_index("label").reindex(dl)
            ax.barh(yy + (k - (len(models) - 1) / 2) * hh, d.drift, height=hh, color=_color(m), label=_label(m))
        ax.set_yticks(yy, dl, fontsize=8)
        ax.invert_yaxis()
        ax.set_title("weight change since the first task", fontsize=10)
        ax.set_xlabel("||theta - theta*|| / ||theta*||", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["METHOD_COLORS", "accuracy_curves", "training_curves", "matrix_heatmaps", "metric_bars",
           "single_task_bars", "transfer_bars", "order_comparison", "position_effect", "lambda_tradeoff",
           "fisher_per_layer"]
