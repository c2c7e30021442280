"""The lambda sweep's stability-plasticity trade-off and the Fisher per layer."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import LungclError
from ..fisher import FISHER_LABELS
from .style import _color, _label, _method_order, _percent_axis

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
            ax.scatter(bad, [0.03] * len(bad), marker="x", color="0.1", s=60, zorder=6)
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
        handles.append(Line2D([], [], color="0.1", marker="x", ls="", label="diverged"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5)
    metric = table["metric"].iloc[0] if "metric" in table and len(table) else "accuracy"
    fig.suptitle(f"Final test {metric.replace('_', ' ')} after the whole sequence, against the penalty strength",
                 fontsize=11)
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
    palette = sns.color_palette("colorblind", len(tasks))
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


def fisher_variant_distance(table: pd.DataFrame) -> Figure:
    """Per layer, how far each Fisher variant lies from the exact one (from
    :func:`lungcl.fisher.fisher_variant_table`): relative L2 distance (log scale) and correlation."""
    key = "layer" if "layer" in table.columns else "parameter"
    if table.empty or key not in table.columns:
        raise LungclError("no Fisher comparison rows to plot")
    layers = list(dict.fromkeys(table[key]))
    variants = list(dict.fromkeys(table.variant))
    palette = sns.color_palette("colorblind", len(variants))
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 0.22 * len(layers) * len(variants) ** 0.5 + 1.8), sharey=True)
    y = np.arange(len(layers))
    h = 0.8 / len(variants)
    for k, variant in enumerate(variants):
        d = table[table.variant == variant].set_index(key).reindex(layers)
        for ax, column in zip(axes, ("relative_distance", "correlation")):
            ax.barh(y + (k - (len(variants) - 1) / 2) * h, d[column], height=h, color=palette[k],
                    label=FISHER_LABELS.get(variant, variant))
    axes[0].set_xscale("log")
    axes[0].axvline(1.0, color="0.4", lw=0.8, ls=":")
    axes[0].set_title("||F_variant - F_exact|| / ||F_exact||", fontsize=10)
    axes[1].set_xlim(min(0.0, float(table.correlation.min()) - 0.05), 1.0)
    axes[1].set_title("correlation with the exact Fisher", fontsize=10)
    axes[0].set_yticks(y, layers, fontsize=8)
    axes[0].invert_yaxis()
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(variants), frameon=False, fontsize=8.5)
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))
    return fig


def forgetting_split_bars(summary: pd.DataFrame, labels: Mapping[str, str] | None = None) -> Figure:
    """Per method (panel) and normalisation (bar): the balanced accuracy the earlier tasks lost, split into
    representation, calibration and the rest (from :func:`lungcl.chapter.analysis.normalisation_summary`;
    a part below zero is drawn to the left), the whole loss as a black tick."""
    parts = ("representation", "calibration", "rest")
    methods = list(dict.fromkeys(summary.method))
    if not methods:
        raise LungclError("no normalisation runs to plot")
    norms = list(dict.fromkeys(summary.normalisation))
    palette = dict(zip(parts, sns.color_palette("colorblind", len(parts))))
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods) + 1.6, 0.5 * len(norms) + 1.6),
                             sharey=True, squeeze=False)
    for ax, m in zip(axes[0], methods):
        s = summary[summary.method == m].pivot_table(index="normalisation", columns="quantity", values="mean",
                                                      sort=False).reindex(norms)
        y = np.arange(len(norms))
        pos, neg = np.zeros(len(norms)), np.zeros(len(norms))
        for p in parts:
            v = 100 * s[p].to_numpy()
            left = np.where(v >= 0, pos, neg)
            ax.barh(y, v, left=left, color=palette[p], height=0.6, label=p)
            pos, neg = pos + np.clip(v, 0, None), neg + np.clip(v, None, 0)
        ax.scatter(100 * s["lost"], y, marker="|", s=300, color="black", zorder=5, label="lost in all")
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(_label(m), fontsize=10)
        ax.set_xlabel("balanced accuracy lost (points)", fontsize=8.5)
        ax.set_yticks(y, [(labels or {}).get(n, n) for n in norms], fontsize=8)
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(fontsize=7.5, loc="lower right")
    fig.suptitle("What the earlier tasks lost by the end of the sequence, and where", fontsize=10.5)
    fig.tight_layout()
    return fig
