"""Accuracy curves during training: the whole sequence, and each task trained alone."""

from __future__ import annotations

from typing import Iterable, Sequence

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
    _label,
    _method_order,
    _percent_axis,
    _sequence_records,
)

# ---------------------------------------------------------------- curves across the stages


def accuracy_curves(records: Iterable, metric: str = "accuracy", split: str = "test", thesis: bool = True,
                    majority: bool = True) -> Figure:
    """The thesis's Fig. 4.20-4.23: every task's ``metric`` during the whole sequence, one panel per task
    (in training order), one line per method (mean over runs), stage boundaries as dashed lines.

    A task is drawn from its own stage on (before it, its head is untrained). Filled dots: the
    value reported for each stage, placed at the stage's kept checkpoint (the run's ``select`` rule on
    the stage's task, :mod:`lungcl.selection`), which the next stage starts from; hollow diamonds: the thesis's value at the
    stage's end; dotted grey: always answering the majority class.
    """
    recs = _sequence_records(records)
    tasks = recs[0].tasks
    # runs whose stages stopped at different steps (patience) are aligned stage by stage: stage s starts
    # after the longest stage s - 1 of any run, and the curve is the mean of the runs still training
    longest = [max(r.data["stages"][s]["steps"] for r in recs) for s in range(len(tasks))]
    offset = np.concatenate([[0], np.cumsum(longest)[:-1]])
    curves = []
    for r in recs:
        c = r.curves()
        c = c[c.split == split].assign(method=r.config.method, fold=r.config.fold, seed=r.config.seed)
        c = c.assign(step=offset[c.stage.to_numpy()] + c.stage_step.to_numpy())
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
    colors = sns.color_palette("colorblind", len(metrics))
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
