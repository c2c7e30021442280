"""The single-task chapter's tables and sentences: each task alone beside the thesis, the majority class,
the contour's geometry and the readers, and what each task's numbers say."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import summaries
from ..summaries import METRIC_LABELS, percent_with_ci
from .formats import pct, pts

STARTING_LEVEL = ("What matters for the next chapters is the level each task starts from: a task that is learned "
                  "poorly cannot be forgotten much, and its forgetting says little about the methods.")


def has_thesis(single: pd.DataFrame) -> bool:
    """Whether the thesis has a first-stage accuracy for any of these tasks."""
    return "thesis_mean" in single and single.thesis_mean.notna().any()


def single_view(single: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Each task's metrics with intervals, the thesis's first-stage range and the majority class, as text."""
    metrics = [m for m in summaries.STAGE_METRICS if m in single]
    view = pd.DataFrame({METRIC_LABELS[m]: [percent_with_ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
                                            for _, r in single.iterrows()] for m in metrics}, index=single.index)
    if has_thesis(single):
        view["thesis: accuracy learned first"] = [
            "-" if pd.isna(r.thesis_mean) else
            f"{pct(r.thesis_mean)} ({pct(r.thesis_min)}-{pct(r.thesis_max)}, {int(r.thesis_runs)} runs)"
            for _, r in single.iterrows()]
    view["majority class"] = baseline.majority_accuracy.reindex(view.index).map(pct)
    return view


def reference_comparison(single: pd.DataFrame, geometry: pd.DataFrame, readers: pd.DataFrame) -> pd.DataFrame:
    """The network's balanced accuracy and AUC beside the geometry baseline's and the readers', as text."""
    return pd.DataFrame({
        "CNN: balanced accuracy": [percent_with_ci(r.balanced_accuracy, r.balanced_accuracy_ci_low,
                                                   r.balanced_accuracy_ci_high) for _, r in single.iterrows()],
        "geometry: balanced accuracy": geometry.balanced_accuracy.reindex(single.index).map(pct),
        "readers: balanced accuracy": readers.balanced_accuracy.reindex(single.index).map(pct),
        "CNN: AUC": single.auc.map(pct),
        "geometry: AUC": geometry.auc.reindex(single.index).map(pct),
        "readers: AUC": readers.auc.reindex(single.index).map(pct)}, index=single.index)


def reference_verdicts(single: pd.DataFrame, geometry: pd.DataFrame, readers: pd.DataFrame) -> str:
    """Per task: does the network beat the geometry baseline beyond its interval, and the readers?"""
    lines = []
    for task, r in single.iterrows():
        geo, rd = geometry.loc[task, "balanced_accuracy"], readers.loc[task, "balanced_accuracy"]
        ci_high = r.balanced_accuracy_ci_high if not pd.isna(r.balanced_accuracy_ci_high) else r.balanced_accuracy
        ci_low = r.balanced_accuracy_ci_low if not pd.isna(r.balanced_accuracy_ci_low) else r.balanced_accuracy
        if ci_high < geo:
            verdict = (f"the network does **not** beat the contour's geometry alone ({pct(geo)} %): its whole "
                       "interval lies below it")
        elif ci_low > geo:
            verdict = f"the network beats the contour's geometry alone ({pct(geo)} %) beyond its interval"
        else:
            verdict = (f"the network is not distinguishable from the contour's geometry alone ({pct(geo)} %), "
                       "which lies inside its interval")
        verdict += (f"; the readers agree with each other at {pct(rd)} %"
                    + (", and the network is above that" if ci_low > rd else ""))
        lines.append(f"**{task}**: balanced accuracy {pct(r.balanced_accuracy)} %: {verdict}.")
    return "\n\n".join(f"- {ln}" for ln in lines)


def task_sentences(single: pd.DataFrame, baseline: pd.DataFrame) -> str:
    """Per task: accuracy against the majority class, why it falls short (threshold, no separation, or
    false alarms on a rare class) and the thesis's accuracy."""
    lines = []
    for task, r in single.iterrows():
        maj = baseline.loc[task, "majority_accuracy"]
        text = (f"**{task}**: accuracy {percent_with_ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high)} %, "
                f"against {pct(maj)} % for always answering the majority class; balanced accuracy "
                f"{pct(r.balanced_accuracy)} %, AUC {pct(r.auc)} %.")
        if r.balanced_accuracy < 0.6 and r.auc >= 0.65:
            text += (" Its yes/no answers barely separate the classes although its scores rank them better "
                     "than chance (the AUC): the decision threshold, not the ranking, is off.")
        elif r.balanced_accuracy < 0.6:
            text += " The network barely separates the classes on this task."
        elif r.accuracy < maj:
            share = baseline.loc[task, "positive_share"]
            text += (f" Its accuracy is *below* the majority-class floor although it separates the classes "
                     f"better than chance: it calls {pct(1 - r.specificity, 0)} % of the negative nodules "
                     f"positive, and with only {pct(share, 0)} % positives those false alarms cost more "
                     "accuracy than the positives it finds gain. Trained on up-sampled (balanced) batches, "
                     "the network does not know how rare the positives are.")
        if not pd.isna(r.get("thesis_mean", np.nan)):
            text += (f" The thesis: {pct(r.thesis_mean)} % accuracy "
                     f"({pts(r.accuracy - r.thesis_mean)} points for us).")
        lines.append(text)
    return "\n\n".join(f"- {ln}" for ln in lines)


def thesis_level_sentence(single: pd.DataFrame) -> str | None:
    """How far apart the thesis's first-stage accuracies lie (None when it has none for these tasks)."""
    if not has_thesis(single):
        return None
    width = float((single.thesis_max - single.thesis_min).max())
    return (f"The thesis's first-stage accuracies of one task differ by at most {pct(width)} points "
            f"between its runs, and lie between {pct(single.thesis_min.min())} % and "
            f"{pct(single.thesis_max.max())} % for all three tasks: it learned every task to about the "
            "same level (and, as the next chapter shows, equally well on both classes). Ours come from phantom "
            "patches and a far smaller network; a gap between its numbers and ours is a statement about the "
            "data and the budget, not about the methods, which this chapter does not compare.")
