"""The task-order chapter's sentences: how far the orders spread against the noise of one run, and how a
task's final accuracy depends on its position in the order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import findings, summaries, thesis
from ..summaries import METHOD_LABELS, METRIC_LABELS, order_label
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


# the metric the chapter's sentences read (accuracy stays in the tables beside the thesis's)
HEADLINE = "balanced_accuracy"


def headline_spread(records) -> pd.DataFrame:
    """:func:`lungcl.thesis.order_spread` of the average final balanced accuracy, with the thesis's range and
    sd in the accuracy it published (it reported no balanced accuracy per order)."""
    ours = thesis.order_spread(thesis.transfer_with_thesis(records, metric=HEADLINE))
    published = thesis.order_spread(thesis.transfer_with_thesis(records))
    return ours.assign(**{c: published[c] for c in ("thesis range", "thesis sd")})


def headline_positions(records) -> pd.DataFrame:
    """:func:`lungcl.summaries.final_by_position` in balanced accuracy, with the thesis's final accuracy."""
    keys = ["kind", "method", "strength", "gamma", "order", "task"]
    published = thesis.positions_with_thesis(records)[keys + ["thesis"]]
    return summaries.final_by_position(records, "test", HEADLINE).merge(published, on=keys, how="left")


def spread_sentences(spread: pd.DataFrame, metric: str = "accuracy") -> str:
    """Per method: the range of average final ``metric`` over orders, against one run's interval and the
    thesis's range when known (:func:`lungcl.thesis.order_spread`; the thesis's is in accuracy)."""
    lines = []
    theirs = "the thesis's" if metric == "accuracy" else "the thesis's, in the accuracy it published,"
    for m, r in spread.iterrows():
        text = (f"**{m}**: the average final {METRIC_LABELS[metric]} ranges over {pct(r['range'])} points across "
                f"{int(r.orders)} orders (from {pct(r['min'])} % to {pct(r['max'])} %)")
        if not np.isnan(r["median CI width"]):
            text += (f", against a median interval width of {pct(r['median CI width'])} points for one "
                     f"order: the spread is {noise_word(r['range'] / r['median CI width'])} the noise of one run")
        if not np.isnan(r["thesis range"]):
            text += f"; {theirs} ranges over {pct(r['thesis range'])} points"
        lines.append(text + ".")
    return "\n\n".join(f"- {ln}" for ln in lines)


def _last_minus_first(positions: pd.DataFrame, column: str) -> pd.Series:
    last = positions[positions.position == positions.position.max()].groupby(["method", "task"])[column].mean()
    first = positions[positions.position == 1].groupby(["method", "task"])[column].mean()
    return (last - first).groupby("method").mean()


def position_sentence(positions: pd.DataFrame, metric: str = "accuracy") -> str:
    """Final ``metric`` learned last minus learned first, mean over tasks, per method (and the thesis's, in
    accuracy)."""
    slope, th_slope = _last_minus_first(positions, "value"), _last_minus_first(positions, "thesis")
    which = "" if metric == "accuracy" else f" (final {METRIC_LABELS[metric]}; the thesis's: accuracy)"
    return (f"Learned last minus learned first{which}, mean over the tasks: "
            + "; ".join(f"{METHOD_LABELS[m]} {pts(slope[m])} points"
                        + ("" if np.isnan(th_slope.get(m, np.nan)) else f" (thesis {pts(th_slope[m])})")
                        for m in METHOD_LABELS if m in slope)
            + ". A positive number is forgetting that depends on the position; near zero means the "
              "method keeps a task wherever it comes.")


def initial_weights(configs) -> dict:
    """The networks every order starts from, built as a run builds them (one per distinct order at the first
    config's seed and network settings): whether the trunk is the same in every order, whether the head of
    the task trained k-th is, and per task how many distinct initial heads it has over the orders."""
    import torch

    from ..experiments.sequence import build_model

    first = configs[0]
    orders = list(dict.fromkeys(tuple(c.tasks) for c in configs if c.seed == first.seed))
    nets = {o: build_model(first, list(o)) for o in orders}

    def trunk(net) -> dict:
        return {k: v for k, v in net.state_dict().items() if not k.startswith("heads.")}

    def same(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    ref = orders[0]
    heads = {(o, t): nets[o].heads[t].state_dict() for o in orders for t in o}
    starts = {}
    for t in ref:
        distinct: list[dict] = []
        for o in orders:
            if not any(same(heads[(o, t)], d) for d in distinct):
                distinct.append(heads[(o, t)])
        starts[t] = len(distinct)
    return {"orders": [order_label(list(o)) for o in orders],
            "seed": first.seed, "same_trunk": all(same(trunk(nets[o]), trunk(nets[ref])) for o in orders),
            "same_by_place": all(same(heads[(o, o[k])], heads[(ref, ref[k])]) for o in orders for k in range(len(ref))),
            "starts": starts}


def initial_weights_sentence(found: dict) -> str:
    """What :func:`initial_weights` found, as the chapter states it."""
    n = len(found["orders"])
    text = (f"The initial weights, built as the runs build them (seed {found['seed']}, {n} orders): the trunk "
            + ("starts from the same weights in every order" if found["same_trunk"] else
               "does *not* start from the same weights in every order"))
    if n < 2:
        return text + " (one order: nothing to compare)."
    if found["same_by_place"]:
        text += ("; each head is drawn after the trunk by its place in the order, so the head trained first, "
                 "second, ... starts from the same weights in every order, and a task's head does only where "
                 "the task has the same place")
    if all(k == 1 for k in found["starts"].values()):
        return text + ", and each task's head starts from the same weights in every order (drawn from the seed and " \
                      "the task's name): the orders differ only in their order."
    counts = ", ".join(f"{t} {k}" for t, k in found["starts"].items())
    return text + f" (distinct initial heads per task over the orders: {counts})."
