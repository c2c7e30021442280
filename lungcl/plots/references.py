"""The stability-plasticity plane of the sequence chapter: every method beside its references."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ..errors import LungclError
from .style import _color, _label, _method_order, _percent_axis


def bounds_plane(runs: pd.DataFrame, first_task: str) -> Figure:
    """Each run's first task's final balanced accuracy (kept) against the later tasks' (learned), one small
    dot per run and a large one at each method's mean, from :func:`lungcl.chapter.references.run_measures`.
    Chance (50 %) dotted."""
    if runs.empty:
        raise LungclError("no sequence runs to place in the plane")
    fig, ax = plt.subplots(figsize=(6.6, 4.2))
    for m in _method_order(runs.method):
        g = runs[runs.method == m]
        ax.scatter(g.later, g["first"], s=18, color=_color(m), alpha=0.5)
        ax.scatter(g.later.mean(), g["first"].mean(), s=110, color=_color(m), edgecolors="black",
                   label=f"{_label(m)} ({len(g)} run{'s' if len(g) > 1 else ''})", zorder=4)
    for line in (ax.axhline, ax.axvline):
        line(0.5, color="0.5", ls=":", lw=1)
    lo = min(0.4, float(runs[["later", "first"]].min().min()) - 0.02)
    _percent_axis(ax, lo, 1.0)
    ax.set_xlim(lo, 1.0)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    ax.set_xlabel("later tasks: final balanced accuracy (learned)")
    ax.set_ylabel(f"{first_task}: final balanced accuracy (kept)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)  # beside: never on a dot
    fig.tight_layout()
    return fig
