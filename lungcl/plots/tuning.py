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
    (log axis), the pick circled; a diverged lambda is a cross at the bottom. With several seeds every
    line is their mean, the criterion has a bar of plus or minus one standard deviation over the seeds,
    and each seed's own criterion is a small dot."""
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
        crit = [p["criterion"] for p in ok]
        seeds = t.get("seeds", [t.get("seed", 0)])
        if len(seeds) > 1:
            ax.errorbar(lam, crit, yerr=[p.get("criterion_sd", 0.0) for p in ok], fmt="D-", color=_color(t["method"]),
                        capsize=3, label=f"criterion (mean, sd over {len(seeds)} seeds)")
            for p in ok:
                each = [q["criterion"] for q in p.get("per_seed", [])]
                ax.scatter([p["strength"]] * len(each), each, s=9, color=_color(t["method"]), alpha=0.45, zorder=5)
        else:
            ax.plot(lam, crit, "D-", color=_color(t["method"]), label="criterion")
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
        seeds_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
        ax.set_title(f"{name}\n({t['order']}, fold {t['fold']}, {seeds_text})", fontsize=9.5)
        _percent_axis(ax, 0.3, 1.0)
    axes[0, 0].set_ylabel("final balanced accuracy (validation)", fontsize=9)
    axes[0, -1].legend(fontsize=7.5, loc="lower left")
    fig.suptitle("lambda chosen on validation: mean final balanced accuracy over the tasks (criterion)",
                 fontsize=10.5)
    fig.tight_layout()
    return fig


__all__ = ["tune_curves"]
