"""The analysis chapter's "Why the network forgets": methods under each normalisation (BatchNorm statistics
updated, frozen, per task; GroupNorm) with probes, and the balanced accuracy the earlier tasks lost split
into representation, calibration and the rest."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import metrics as M
from .. import summaries
from ..errors import LungclError
from ..summaries import METHOD_LABELS
from .display import say

NORMALISATION_LABELS = {"update": "BatchNorm, statistics updated", "freeze": "BatchNorm, frozen after stage 1",
                        "task": "BatchNorm, statistics per task", "group": "GroupNorm (no statistics)"}
SPLIT_PARTS = ("representation", "calibration", "rest")


def normalisation_of(config: Any) -> str:
    """A run's normalisation as the analysis table names it: update, freeze, task or group."""
    return "group" if config.norm == "group" else config.bn


def normalisation_runs(records: Sequence) -> pd.DataFrame:
    """One row per sequence record with probes: method, normalisation, seed, fold, the test average final
    accuracy and mean forgetting, and the mean over its earlier tasks of the balanced accuracy lost and its
    split (:func:`lungcl.experiments.probes.forgetting_split`)."""
    from ..experiments.probes import forgetting_split

    rows = []
    for r in records:
        if r.config.kind != "sequence" or not r.data.get("probes"):
            continue
        t = summaries.transfer_summary(r.accuracy_matrix("test", "accuracy").to_numpy(), r.tasks)
        split = forgetting_split(r)
        rows.append({"method": r.config.method, "normalisation": normalisation_of(r.config), "seed": r.config.seed,
                     "fold": r.config.fold, "average_accuracy": t["average_accuracy"],
                     "mean_forgetting": t["mean_forgetting"],
                     **{k: float(split[k].mean()) for k in ("lost", *SPLIT_PARTS, "probe_final", "probe_floor")}})
    if not rows:
        raise LungclError("no sequence records with probes (run them with probes=true)")
    return pd.DataFrame(rows)


def normalisation_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method and normalisation, every quantity of :func:`normalisation_runs` as mean, lo, hi (95 %
    t-interval over seeds and folds) and the number of runs."""
    quantities = [c for c in runs.columns if c not in ("method", "normalisation", "seed", "fold")]
    rows = []
    for (m, n), g in runs.groupby(["method", "normalisation"], sort=False):
        for q in quantities:
            mean, lo, hi = M.mean_ci(g[q])
            rows.append({"method": m, "normalisation": n, "quantity": q, "mean": mean, "lo": lo, "hi": hi,
                         "runs": len(g)})
    return pd.DataFrame(rows)


def normalisation_view(summary: pd.DataFrame) -> pd.DataFrame:
    """Method x normalisation: average final accuracy and mean forgetting (test accuracy), the balanced
    accuracy the earlier tasks lost and its three parts, each "mean [interval]" in percent or points."""
    columns = {"average_accuracy": "average final accuracy", "mean_forgetting": "mean forgetting",
               "lost": "balanced accuracy lost", "representation": "of which representation",
               "calibration": "of which calibration", "rest": "of which the rest"}
    s = summary[summary.quantity.isin(list(columns))].copy()
    s["cell"] = [summaries.percent_with_ci(m, lo, hi) for m, lo, hi in zip(s["mean"], s.lo, s.hi)]
    s["method"] = s.method.map(METHOD_LABELS)
    s["normalisation"] = s.normalisation.map(NORMALISATION_LABELS)
    view = s.pivot_table(index=["method", "normalisation"], columns="quantity", values="cell", aggfunc="first",
                         sort=False)
    return view[[c for c in columns if c in view.columns]].rename(columns=columns)


def normalisation_sentences(summary: pd.DataFrame) -> str:
    """Per method: which normalisation forgets least and whether its interval clears the default's
    (updated statistics); then, over all runs, how the lost balanced accuracy splits."""
    s = summary.set_index(["method", "normalisation", "quantity"])
    lines = []
    for m in dict.fromkeys(summary.method):
        f = s.loc[m].xs("mean_forgetting", level="quantity")
        best = f["mean"].idxmin()
        text = (f"**{METHOD_LABELS[m]}**: mean forgetting "
                + ", ".join(f"{n} {100 * r['mean']:.1f}" for n, r in f.iterrows()) + " points")
        if best != "update" and "update" in f.index:
            clear = f.loc[best, "hi"] < f.loc["update", "lo"]
            text += (f"; the least with {NORMALISATION_LABELS[best]}, "
                     + ("and its interval lies below that of updated statistics: a difference beyond the "
                        "spread between runs." if clear else
                        "but the intervals overlap with updated statistics': not a difference beyond the "
                        "spread between runs."))
        else:
            text += "; updated statistics forget the least here."
        lost = s.loc[m].xs("lost", level="quantity")["mean"]
        text += (" In balanced accuracy the earlier tasks lose "
                 + ", ".join(f"{n} {100 * v:.1f}" for n, v in lost.items()) + " points")
        if best != "update" and "update" in lost.index and lost[best] > lost["update"] + 0.02:
            text += (f": more with {best} than with updated statistics, so {best} keeps their accuracy by "
                     "answering the majority class more often, not by remembering them.")
        else:
            text += "."
        lines.append(text)
    parts = {p: summary[summary.quantity == p]["mean"].mean() for p in ("lost", *SPLIT_PARTS)}
    if np.isfinite(parts["lost"]) and parts["lost"] > 0.01:
        main = max(SPLIT_PARTS, key=lambda p: parts[p])
        lines.append(f"Over all these runs the earlier tasks lose {100 * parts['lost']:.1f} points of balanced "
                     f"accuracy on average: {100 * parts['representation']:.1f} in the representation (the probe), "
                     f"{100 * parts['calibration']:.1f} that refitting the head's threshold gives back, "
                     f"{100 * parts['rest']:.1f} in the rest; the largest part is **{main}**.")
    else:
        lines.append(f"Over all these runs the earlier tasks lose {100 * parts['lost']:.1f} points of balanced "
                     "accuracy on average: too little to split into parts.")
    floor = summary[summary.quantity == "probe_floor"]["mean"].mean()
    probe = summary[summary.quantity == "probe_final"]["mean"].mean()
    lines.append(f"The probe on the untrained network reaches {100 * floor:.1f} % balanced accuracy, the probe "
                 f"after the sequence {100 * probe:.1f} %: "
                 + ("random features already separate much of what the tasks ask, so a probe's loss is "
                    "measured against a high floor." if floor > 0.65 else
                    "the trained features hold clearly more than random ones."))
    return "\n\n".join(f"- {ln}" for ln in lines)



def show_normalisation(records: Sequence) -> pd.DataFrame | None:
    """The method x normalisation table and sentences in the notebook; returns the summary to plot (None
    when those runs were not asked for)."""
    from IPython.display import display

    if not records:
        return None
    summary = normalisation_summary(normalisation_runs(records))
    display(summaries.page_table(normalisation_view(summary), "Method x normalisation: test, mean over seeds "
                                 "[95 % t-interval]; accuracy in percent, losses in points"))
    say(normalisation_sentences(summary))
    return summary
