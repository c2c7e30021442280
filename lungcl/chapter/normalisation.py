"""The analysis chapter's "Why the network forgets": methods under each normalisation (BatchNorm statistics
updated, frozen, per task; GroupNorm) with probes, and the balanced accuracy the earlier tasks lost split
into representation, calibration and the rest, each read with its interval over runs: a sentence says a
part or a difference is there only when its interval excludes zero."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import metrics as M
from .. import summaries
from ..errors import LungclError
from ..summaries import METHOD_LABELS
from .display import say
from .formats import pct, pts

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
                     **{k: float(split[k].mean()) for k in ("lost", *SPLIT_PARTS, "probe_final", "probe_floor")},
                     "probe_above_floor": float((split.probe_final - split.probe_floor).mean())})
    if not rows:
        raise LungclError("no sequence records with probes (compute them from the runs' stage weights: "
                          "lungcl.experiments.run_probes.attach_probes, or run them with probes=true)")
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


def _method_sentences(summary: pd.DataFrame) -> list[str]:
    """Per method: which normalisation forgets least and whether its interval clears updated statistics'."""
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
        lost_ci = s.loc[m].xs("lost", level="quantity")
        lost = lost_ci["mean"]
        text += (" In balanced accuracy the earlier tasks lose "
                 + ", ".join(f"{n} {100 * v:.1f}" for n, v in lost.items()) + " points")
        # read as the majority class only when the interval over runs lies above updated statistics'
        if best != "update" and "update" in lost.index and lost_ci.loc[best, "lo"] > lost_ci.loc["update", "hi"]:
            text += (f": more with {best} than with updated statistics, beyond the spread between runs, so {best} "
                     "keeps their accuracy by answering the majority class more often, not by remembering them.")
        else:
            text += "."
        lines.append(text)
    return lines


def interval_side(lo: float, hi: float) -> str | None:
    """Where a 95 % interval lies: "above" or "below" zero, "zero" when it contains it, None when it is
    unknown (fewer than two runs)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return "above" if lo > 0 else "below" if hi < 0 else "zero"


def split_reading(runs: pd.DataFrame) -> dict:
    """The lost balanced accuracy, its three parts and the final probe against the floor over ``runs`` (one
    setting's seeds): per quantity (mean, lo, hi), the side of zero each interval lies on
    (:func:`interval_side`), ``main`` (the part with the largest mean) and ``stands_out`` (its interval lies
    above every other part's)."""
    q = {k: M.mean_ci(runs[k]) for k in ("lost", *SPLIT_PARTS, "probe_final", "probe_floor", "probe_above_floor")}
    main = max(SPLIT_PARTS, key=lambda p: q[p][0])
    others_hi = max(q[p][2] for p in SPLIT_PARTS if p != main)
    return {"runs": len(runs), **q, "side": {k: interval_side(v[1], v[2]) for k, v in q.items()}, "main": main,
            "stands_out": bool(np.isfinite(q[main][1]) and q[main][1] > others_hi)}


def setting_readings(runs: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """:func:`split_reading` per (method, normalisation), over that setting's seeds and folds."""
    return {key: split_reading(g) for key, g in runs.groupby(["method", "normalisation"], sort=False)}


def _setting(key: tuple[str, str]) -> str:
    return f"{METHOD_LABELS.get(key[0], key[0])} with {NORMALISATION_LABELS.get(key[1], key[1])}"


def split_verdict(reading: dict) -> str:
    """What one setting's split allows, read off the intervals over its seeds."""
    lost = reading["side"]["lost"]
    if lost is None:
        return "one run, no interval: not read"
    if lost != "above":
        return (f"lost {_cell(reading['lost'])} points, an interval " + ("containing zero" if lost == "zero" else
                                                                         "below zero (a gain)")
                + ": no loss beyond the spread between seeds to split")
    main = reading["main"]
    text = f"lost {_cell(reading['lost'])} points, of which {main} {_cell(reading[main])}"
    return text + (f": **{main}** is the largest part beyond the spread between seeds" if reading["stands_out"]
                   else ": the largest mean, but its interval overlaps another part's, so no part stands out")


def _cell(value: tuple[float, float, float]) -> str:
    return summaries.percent_with_ci(*value)


def split_sentence(readings: dict[tuple[str, str], dict]) -> str:
    """How the balanced accuracy the earlier tasks lost splits, per setting, every clause read off its
    interval over seeds."""
    return ("How the loss splits, per setting (mean [95 % t-interval over seeds]; calibration is what "
            "re-thresholding the head gives back at the end beyond what it gave at the task's own stage): "
            + "; ".join(f"{_setting(k)}: {split_verdict(r)}" for k, r in readings.items()) + ".")


def floor_sentence(readings: dict[tuple[str, str], dict]) -> str:
    """The final probe against the probe on the untrained network (the floor), per setting, read off the
    interval over seeds of their difference; the conclusion says only what every setting supports."""
    groups: dict[str | None, list[str]] = {"above": [], "below": [], "zero": [], None: []}
    for k, r in readings.items():
        d = r["probe_above_floor"]
        groups[r["side"]["probe_above_floor"]].append(
            f"{_setting(k)} {pts(d[0])}" + (f" [{pts(d[1])}, {pts(d[2])}]" if r["side"]["probe_above_floor"] else ""))
    floors = [r["probe_floor"][0] for r in readings.values()]
    text = (f"The probe on the untrained network (the floor) reaches {pct(float(np.nanmean(floors)))} % balanced "
            "accuracy; the probe after the sequence, against it, in points:")
    labels = {"above": "above the floor beyond the spread between seeds",
              "below": "*below* the floor beyond the spread between seeds",
              "zero": "not told apart from the floor (the interval contains zero)", None: "one run, not read"}
    text += " " + "; ".join(f"{labels[side]}: {', '.join(items)}" for side, items in groups.items() if items)
    if groups["above"] and not (groups["below"] or groups["zero"] or groups[None]):
        return text + ". In every setting the trained features hold more than random ones."
    if groups["below"]:
        return text + (". Where the final probe lies below the floor, the trained features hold less of these "
                       "tasks than random ones, and a representation part is a loss against a floor the network "
                       "has sunk under.")
    return text + ". Not every setting's trained features are shown to hold more than random ones."


def normalisation_sentences(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """Per method: which normalisation forgets least and whether its interval clears the default's
    (updated statistics); then, with ``runs`` (:func:`normalisation_runs`), how the lost balanced accuracy
    splits and where the final probe lies against the floor, per setting over its seeds."""
    lines = _method_sentences(summary)
    if runs is not None:
        readings = setting_readings(runs)
        lines += [split_sentence(readings), floor_sentence(readings)]
    return "\n\n".join(f"- {ln}" for ln in lines)


def show_normalisation(records: Sequence) -> pd.DataFrame | None:
    """The method x normalisation table and sentences in the notebook; returns the summary to plot (None
    when those runs were not asked for)."""
    from IPython.display import display

    if not records:
        return None
    runs = normalisation_runs(records)
    summary = normalisation_summary(runs)
    display(summaries.page_table(normalisation_view(summary), "Method x normalisation: test, mean over seeds "
                                 "[95 % t-interval]; accuracy in percent, losses in points"))
    say(normalisation_sentences(summary, runs))
    return summary
