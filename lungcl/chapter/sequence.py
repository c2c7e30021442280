"""The ABC chapter's findings: the class mix to read accuracies against, the intervals of the transfer
summaries, the thesis's findings on our runs, and notes on chance-level tasks and the thesis's test sets."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from .. import summaries, thesis, verdicts
from ..summaries import METHOD_LABELS
from .formats import pts

# the metric the findings' sentences read (accuracy stays in the tables beside the thesis's)
HEADLINE = "balanced_accuracy"
NEEDS_THREE = "The findings compare SGD, L2 and EWC: run all three (`method = \"all\"`) to test them."


def majority_sentence(baseline: pd.DataFrame) -> str | None:
    """The tasks whose majority class alone scores 80 % or more, to read accuracies against (None: none)."""
    imbalanced = baseline[baseline.majority_accuracy >= 0.8]
    if not len(imbalanced):
        return None
    return ("Read every accuracy below against the last column: "
            + "; ".join(f"on **{t}** only {r.positive_share:.0%} of the test nodules are positive, so "
                        f"answering *negative* every time already scores {r.majority_accuracy:.1%}"
                        for t, r in imbalanced.iterrows())
            + ". That is why the tables show balanced accuracy (the mean of sensitivity and "
            "specificity, 50 % for any constant answer) beside accuracy.")


def interval_sentence(transfer: pd.DataFrame) -> str:
    """Which interval the transfer summaries carry, or why they carry none."""
    if transfer.ci_low.isna().all():
        return ("These summaries have no interval here: one run per method gives no spread between runs. "
                "Run several seeds (`seeds`) or folds for a t-interval over runs.")
    return f"Intervals: {transfer.ci.iloc[0]}."


MARGINS = ("margin", "ci_low", "ci_high", "thesis margin")


def findings_side_by_side(findings: Mapping[str, pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """The findings tables of several metrics side by side: columns (metric label, column)."""
    return pd.concat({summaries.METRIC_LABELS[m]: t[list(columns)] for m, t in findings.items()}, axis=1)


def findings_page(view: pd.DataFrame, caption: str):
    """A side-by-side findings table styled for the book, margins and intervals in signed points."""
    return summaries.page_table(view, caption, {c: pts for c in view.columns if c[1] in MARGINS})


def findings_section(records: Sequence):
    """The thesis's findings 1-3 on this chapter's runs: (book table, text), or (None, why not)."""
    findings = {m: verdicts.findings_table(records, metric=m) for m in ("accuracy", "balanced_accuracy")}
    if findings[HEADLINE].runs.max() == 0:
        return None, NEEDS_THREE
    view = findings_side_by_side(findings, ["runs", "margin", "ci_low", "ci_high", "thesis margin", "verdict"])
    table = findings_page(view, "The thesis's findings on our runs: the margin (points, positive in the "
                                "finding's direction), its 95 % t-interval over runs, the thesis's margin, "
                                "and the verdict")
    text = (f"A verdict reads the interval of the margin ({verdicts.INTERVAL}): *reproduced* when it lies "
            "above zero, *reversed* when below, *not reproduced* when it contains zero but not the thesis's "
            "own margin, *inconclusive* when it contains both (or when there is a single run). Finding 4, "
            "that the task order matters little, needs several orders: the task-order chapter and the "
            "discussion test it. The sentences read balanced accuracy, the metric a constant answer cannot "
            "flatter; the accuracy columns are there to set beside the thesis's, which published accuracy.\n\n"
            + "\n\n".join(f"- {ln}" for ln in verdicts.verdict_sentences(
                findings[HEADLINE].drop(index=verdicts.ORDER_FINDING), summaries.METRIC_LABELS[HEADLINE])))
    return table, text


def near_chance_note(stage_table: pd.DataFrame, n_tasks: int) -> str | None:
    """The tasks below 60 % balanced accuracy after the last stage, per method (None: none)."""
    balanced = stage_table[(stage_table.metric == "balanced_accuracy") & (stage_table.stage == n_tasks - 1)]
    near_chance = balanced[balanced.value < 0.6]
    if not len(near_chance):
        return None
    by_method = near_chance.groupby("method", sort=False).task.agg(", ".join)
    return ("After the last stage these tasks are below 60 % balanced accuracy, close to a constant "
            "answer, whatever their plain accuracy: "
            + "; ".join(f"{METHOD_LABELS[m]}: {tasks_}" for m, tasks_ in by_method.items())
            + ". A network that answers the majority class is *not* remembering a task; it has "
            "forgotten it quietly, and plain accuracy hides this.")


def thesis_rows_note(baseline: pd.DataFrame, order: str = "ABC") -> str:
    """What the thesis's sensitivity and specificity imply about its accuracies and its test sets."""
    implied = thesis.thesis_implied_positive_share(order)
    gap = float((implied.sensitivity - implied.specificity).abs().max())
    spread = implied.groupby("task").implied_positive_share.agg(["min", "max"])
    return (f"In every row of the thesis's Tables 4.1-4.6, sensitivity and specificity differ by at most "
            f"{100 * gap:.1f} points, so its accuracy is practically its balanced accuracy whatever the class "
            "mix: its numbers are best compared with our *balanced* accuracy. They also allow a consistency "
            "check. On one test set, accuracy = p x sensitivity + (1 - p) x specificity, where p is the share "
            "of positive nodules, so each published row implies a p. For one task's test set every row should "
            "imply the same p; the thesis's rows imply "
            + "; ".join(f"{r['min']:.0%} to {r['max']:.0%} for {t}" for t, r in spread.iterrows())
            + " (our test sets: " + ", ".join(f"{t} {baseline.loc[t, 'positive_share']:.0%}"
                                              for t in spread.index if t in baseline.index)
            + "). We cannot tell how the thesis's test sets were composed (up-sampled, balanced, or "
              "different per run); we only note that one fixed test set cannot produce these rows.")


def sequence_notes(stage_table: pd.DataFrame, baseline: pd.DataFrame, order: str | None, n_tasks: int,
                   n_folds: int, n_seeds: int) -> str:
    """The chapter's closing notes: chance-level tasks, the thesis's rows (on ABC), what can carry over."""
    notes = [near_chance_note(stage_table, n_tasks), thesis_rows_note(baseline) if order == "ABC" else None,
             "Our numbers come from the phantom, a small network (see the settings) and "
             f"{n_folds} fold(s) with {n_seeds} seed(s), where the thesis used real CT, a ResNet-101 and five "
             "folds: absolute accuracies are not expected to match; whether the methods rank as in the "
             "thesis is the question that can carry over."]
    return "\n\n".join(n for n in notes if n)
