"""The task-order chapter's sentences: how far the orders spread against the noise of one run, and how a
task's final accuracy depends on its position in the order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import findings
from ..summaries import METHOD_LABELS
from .formats import pct, pts

NO_INTERVAL = ("With one run per order, these summaries carry no interval (an interval over runs needs several "
               "seeds or folds); read the spread against the per-task intervals of the next figure, or re-run "
               "with several seeds (`seeds`).")
NEEDS_THREE = ("Finding 4 is tested on SGD, L2 and EWC run at the same orders, folds and seeds: run all three "
               "(`method = \"all\"`) to test it.")


def order_finding(records) -> str:
    """Finding 4 ("task order matters little") as the discussion tests it (:func:`lungcl.findings.findings_report`
    on the same runs: the same numbers and adjusted p), with how it was computed."""
    report = findings.findings_report(records)
    if not report["replicates"]:
        return NEEDS_THREE
    return ("\n\n".join(f"- {ln}" for ln in findings.verdict_sentences(report, "order"))
            + "\n\n" + findings.scheme_text(report))


def noise_word(ratio: float) -> str:
    """A spread read against the median interval width: below 1, 1 to 2, 2 and above."""
    return "smaller than" if ratio < 1 else "comparable to" if ratio < 2 else "larger than"


def spread_sentences(spread: pd.DataFrame) -> str:
    """Per method: the range of average final accuracy over orders, against one run's interval and the
    thesis's range when known (:func:`lungcl.thesis.order_spread`)."""
    lines = []
    for m, r in spread.iterrows():
        text = (f"**{m}**: the average final accuracy ranges over {pct(r['range'])} points across "
                f"{int(r.orders)} orders (from {pct(r['min'])} % to {pct(r['max'])} %)")
        if not np.isnan(r["median CI width"]):
            text += (f", against a median interval width of {pct(r['median CI width'])} points for one "
                     f"order: the spread is {noise_word(r['range'] / r['median CI width'])} the noise of one run")
        if not np.isnan(r["thesis range"]):
            text += f"; the thesis's ranges over {pct(r['thesis range'])} points"
        lines.append(text + ".")
    return "\n\n".join(f"- {ln}" for ln in lines)


def _last_minus_first(positions: pd.DataFrame, column: str) -> pd.Series:
    last = positions[positions.position == positions.position.max()].groupby(["method", "task"])[column].mean()
    first = positions[positions.position == 1].groupby(["method", "task"])[column].mean()
    return (last - first).groupby("method").mean()


def position_sentence(positions: pd.DataFrame) -> str:
    """Final accuracy learned last minus learned first, mean over tasks, per method (and the thesis's)."""
    slope, th_slope = _last_minus_first(positions, "value"), _last_minus_first(positions, "thesis")
    return ("Learned last minus learned first, mean over the tasks: "
            + "; ".join(f"{METHOD_LABELS[m]} {pts(slope[m])} points"
                        + ("" if np.isnan(th_slope.get(m, np.nan)) else f" (thesis {pts(th_slope[m])})")
                        for m in METHOD_LABELS if m in slope)
            + ". A positive number is forgetting that depends on the position; near zero means the "
              "method keeps a task wherever it comes.")
