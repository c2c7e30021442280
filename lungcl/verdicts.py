"""The thesis's four findings judged on repeated runs: reproduced, reversed, not reproduced or inconclusive.

Findings 1-3 are comparisons between methods (:data:`lungcl.thesis.FINDINGS`: each gives a
*margin* on one order's accuracy matrices, positive in the thesis's direction). A replicate is
one (order, fold, seed) in which every thesis method ran; its margin is computed on those runs.
Over the replicates the margin gets its mean and a 95 % Student-t interval (:func:`metrics.mean_ci`),
and the verdict reads the interval:

- **reproduced**: the interval lies above zero (the finding holds beyond run-to-run spread);
- **reversed**: it lies below zero (the opposite holds);
- **not reproduced**: it contains zero but excludes the margin in the thesis's own tables
  (our runs rule out an effect as large as the thesis's);
- **inconclusive**: it contains both zero and the thesis's margin, or there are fewer than two
  replicates (no interval).

Finding 4 ("task order matters little") is about spread: per method, a one-way ANOVA of the
average final accuracy over orders (replicates within an order as the noise). **reversed**
when the orders differ (p < 0.05); **reproduced** when they do not and the largest difference
between order means is below ``tolerance``; else **inconclusive**.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from . import metrics as M
from . import summaries as S
from .thesis import FINDINGS, THESIS_METHODS, thesis_margin

VERDICTS = ("reproduced", "reversed", "not reproduced", "inconclusive")
INTERVAL = "95 % Student-t interval over runs (one run = one fold and seed of every method)"
ORDER_FINDING = "4. Task order matters little"


def verdict(low: float, high: float, thesis_margin: float = np.nan) -> str:
    """The verdict of a margin's interval [low, high] (positive: the finding's direction)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > 0:
        return "reproduced"
    if high < 0:
        return "reversed"
    if np.isfinite(thesis_margin) and not (low <= thesis_margin <= high):
        return "not reproduced"
    return "inconclusive"


def replicate_matrices(records: Iterable, split: str = "test", metric: str = "accuracy"
                       ) -> dict[tuple[str, int, int], dict[str, np.ndarray]]:
    """(order, fold, seed) -> {method: R} for the sequence records of the thesis's methods at one
    setting each (the first lambda seen per method and order is kept, frozen-BN runs left out)."""
    out: dict[tuple[str, int, int], dict[str, np.ndarray]] = {}
    strengths: dict[tuple[str, str], float] = {}
    for r in records:
        c = r.config
        if c.kind != "sequence" or c.method not in THESIS_METHODS or c.freeze_bn_stats:
            continue
        order = S.order_label(r.tasks)
        if strengths.setdefault((order, c.method), c.strength) != c.strength:
            continue
        out.setdefault((order, c.fold, c.seed), {})[c.method] = r.accuracy_matrix(split, metric).to_numpy()
    return {k: v for k, v in out.items() if set(THESIS_METHODS) <= set(v)}


def finding_margins(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """One row per (finding 1-3, replicate): order, fold, seed and the margin."""
    rows = [{"finding": f, "order": o, "fold": fold, "seed": seed, "margin": float(margin(R))}
            for (o, fold, seed), R in replicate_matrices(records, split, metric).items()
            for f, margin in FINDINGS.items()]
    return pd.DataFrame(rows, columns=["finding", "order", "fold", "seed", "margin"])


def _thesis_margin(finding: str, orders: Iterable[str]) -> float:
    return thesis_margin(finding, orders)


def order_verdicts(records: Iterable, split: str = "test", metric: str = "accuracy",
                   tolerance: float = 0.02) -> pd.DataFrame:
    """Finding 4 per method: orders, runs per order, the range of the order means, ANOVA p, verdict."""
    rows = []
    per: dict[str, dict[str, list[float]]] = {}
    for (order, _, _), R in replicate_matrices(records, split, metric).items():
        for m, mat in R.items():
            per.setdefault(m, {}).setdefault(order, []).append(M.average_accuracy(mat))
    for m, groups in per.items():
        means = {o: float(np.mean(v)) for o, v in groups.items()}
        spread = max(means.values()) - min(means.values())
        p = np.nan
        if len(groups) >= 2 and all(len(v) >= 2 for v in groups.values()):
            p = float(stats.f_oneway(*groups.values()).pvalue)
        v = ("inconclusive" if not np.isfinite(p) else "reversed" if p < 0.05
             else "reproduced" if spread < tolerance else "inconclusive")
        rows.append({"method": m, "orders": len(groups), "runs per order": min(len(g) for g in groups.values()),
                     "range of order means": spread, "anova p": p, "verdict": v})
    return pd.DataFrame(rows, columns=["method", "orders", "runs per order", "range of order means",
                                       "anova p", "verdict"]).set_index("method")


def findings_table(records: Iterable, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Findings 1-3 over the records' replicates: runs, mean margin, its 95 % t-interval, the thesis's
    margin (its tables, mean over the same orders), and the verdict; then finding 4 (all methods
    must be reproduced for it to be; any reversed reverses it)."""
    records = list(records)
    margins = finding_margins(records, split, metric)
    rows = []
    for f in FINDINGS:
        g = margins[margins.finding == f]
        values = g.margin.to_numpy()
        mean, lo, hi = M.mean_ci(values) if len(values) >= 2 else (
            float(values[0]) if len(values) else np.nan, np.nan, np.nan)
        th = _thesis_margin(f, sorted(set(g.order)))
        rows.append({"finding": f, "runs": len(values), "orders": g.order.nunique(), "margin": mean,
                     "ci_low": lo, "ci_high": hi, "thesis margin": th, "verdict": verdict(lo, hi, th)})
    orders = order_verdicts(records, split, metric)
    v4 = ("inconclusive" if orders.empty or (orders.orders < 2).any() else
          "reversed" if (orders.verdict == "reversed").any() else
          "reproduced" if (orders.verdict == "reproduced").all() else "inconclusive")
    rows.append({"finding": ORDER_FINDING, "runs": int(orders["runs per order"].min()) if len(orders) else 0,
                 "orders": int(orders.orders.max()) if len(orders) else 0,
                 "margin": float(orders["range of order means"].max()) if len(orders) else np.nan,
                 "ci_low": np.nan, "ci_high": np.nan, "thesis margin": np.nan, "verdict": v4})
    return pd.DataFrame(rows).set_index("finding")


def verdict_sentences(table: pd.DataFrame, metric_label: str = "accuracy") -> list[str]:
    """One sentence per finding of :func:`findings_table`, its numbers in points."""
    def pts(v: float) -> str:
        return "-" if not np.isfinite(v) else f"{100 * v:+.1f}"

    out = []
    for f, r in table.iterrows():
        if f == ORDER_FINDING:
            out.append(f"**{f}**: {r.verdict} (largest range of the order means of one method "
                       f"{pts(r.margin)} points; an ANOVA over orders needs >= 2 runs per order, here "
                       f"{int(r.runs)}).")
            continue
        ci = (f"[{pts(r.ci_low)}, {pts(r.ci_high)}]" if np.isfinite(r.ci_low)
              else "no interval (one run)")
        th = "" if not np.isfinite(r["thesis margin"]) else f"; the thesis's tables: {pts(r['thesis margin'])}"
        out.append(f"**{f}**: **{r.verdict}** on {metric_label} - margin {pts(r.margin)} points, 95 % "
                   f"interval {ci} over {int(r.runs)} run(s){th}.")
    return out


__all__ = ["VERDICTS", "INTERVAL", "verdict", "replicate_matrices", "finding_margins", "findings_table",
           "order_verdicts", "verdict_sentences"]
