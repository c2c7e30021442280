"""The lambda tune's curve: what the validation split says at every decade of lambda."""

from __future__ import annotations

from typing import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..fisher import FISHER_LABELS
from .style import _color, _label, _percent_axis


def tune_curves(tunes: Iterable[Mapping]) -> Figure:
    """One panel per tune record (:func:`lungcl.experiments.tune.tune`): on the VALIDATION split,
    the earlier tasks' and the last task's final balanced accuracy and the criterion against lambda
    (log axis), the pick circled; a diverged lambda is a cross at the bottom."""
    tunes = list(tunes)
    fig, axes = plt.subplots(1, len(tunes), figsize=(3.4 * len(tunes) + 0.4, 3.4), squeeze=False)
    for ax, t in zip(axes[0], tunes):
        ok = [p for p in t["curve"] if p.get("criterion") is not None]
        lam = np.array([p["strength"] for p in ok])
        last = list(ok[0]["final_val_bacc"])[-1] if ok else None
        old = [np.mean([v for k, v in p["final_val_bacc"].items() if k != last]) for p in ok]
        new = [p["final_val_bacc"][last] for p in ok]
        ax.plot(lam, old, "o-", color="0.15", label="earlier tasks")
        ax.plot(lam, new, "s-", color="0.55", label="last task")
        ax.plot(lam, [p["criterion"] for p in ok], "D-", color=_color(t["method"]), label="criterion")
        bad = [p["strength"] for p in t["curve"] if p.get("criterion") is None]
        if bad:
            ax.scatter(bad, [0.03] * len(bad), marker="x", color="0.1", s=60, zorder=6, label="diverged")
        if t.get("pick"):
            ax.scatter([t["pick"]["strength"]], [t["pick"]["criterion"]], s=220, facecolors="none",
                       edgecolors="black", linewidths=1.5, zorder=7, label="pick")
        ax.set_xscale("log")
        ax.set_xlabel("lambda")
        fisher = t.get("base_config", {}).get("fisher", "exact")
        name = _label(t["method"]) + ("" if fisher == "exact" else f", {FISHER_LABELS.get(fisher, fisher)} Fisher")
        ax.set_title(f"{name}\n({t['order']}, fold {t['fold']})", fontsize=9.5)
        _percent_axis(ax, 0.3, 1.0)
    axes[0, 0].set_ylabel("final balanced accuracy (validation)", fontsize=9)
    axes[0, -1].legend(fontsize=7.5, loc="lower left")
    fig.suptitle("lambda chosen on validation: mean final balanced accuracy over the tasks (criterion)",
                 fontsize=10.5)
    fig.tight_layout()
    return fig


__all__ = ["tune_curves"]
