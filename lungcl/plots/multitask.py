"""The multi-task chapter's figures: balanced accuracy per setting, sharing over training, forgetting
against sharing. Each takes a table and returns a Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def setting_bars(table: pd.DataFrame) -> Figure:
    """Grouped bars of test balanced accuracy, one group per task, chance level dashed."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    table.plot.bar(ax=ax, width=0.8)
    ax.set(ylabel="test balanced accuracy", ylim=(0.4, 1.0), title="Per task, per setting (binary)")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    return fig


def sharing_growth(history: pd.DataFrame) -> Figure:
    """Mean borrowed share against epoch, one line per setting (log scale)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for name, g in history.groupby("setting", sort=False):
        ax.plot(g.epoch, g["borrowed share"], marker="o", ms=3, label=name)
    ax.set(xlabel="epoch", ylabel="mean borrowed share (log scale)", yscale="log",
           title="How sharing grows during training")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def forgetting_vs_sharing_scatter(link: pd.DataFrame) -> Figure:
    """The first task's drop after the second stage against the pair's sharing degree, one dot per order."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.scatter(link.sharing_mutual, link.drop_first_after_second)
    for order, r in link.iterrows():
        ax.annotate(order, (r.sharing_mutual, r.drop_first_after_second), fontsize=8, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xlabel="sharing degree of the pair (mean of both directions)", ylabel="drop of the first task",
           title="Forgetting vs sharing, six orders")
    fig.tight_layout()
    return fig
