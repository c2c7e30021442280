"""Forgetting, transfer and task orders: transfer bars, order comparison, position effect."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import LungclError
from ..summaries import quantity_label
from .style import THESIS_STYLE, _color, _dodge, _label, _method_order

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
