"""Results per stage: accuracy-matrix heat maps, metric bars per stage, single-task bars."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import LungclError
from ..summaries import METRIC_LABELS
from ..thesis import THESIS_METHODS, thesis_matrix, thesis_order
from .style import (
    THESIS_STYLE,
    _color,
    _dodge,
    _label,
    _method_order,
    _percent_axis,
    _sequence_records,
    short_name,
)

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
    colors = sns.color_palette("colorblind", len(metrics))
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
