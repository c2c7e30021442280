"""The discussion's findings: the thesis's verdicts on every run, how much order matters, and the notes
on what differs from the thesis (starting level, imbalance, its test sets, folds, the analysis runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import baselines, findings, summaries, thesis
from .. import metrics as M
from ..summaries import METHOD_LABELS
from ..fisher import FISHER_LABELS
from ..selection import SELECT_LABELS
from .analysis import THESIS_THREE, default_runs, default_strengths
from .fisher_variants import differs_from_exact, fisher_variant_summary
from .normalisation import NORMALISATION_LABELS, normalisation_runs, setting_readings
from .formats import pct, pts

COMPANY = (
    "We are not the first to find EWC harder to reproduce than to cite. Avalanche's "
    "continual-learning-baselines report EWC on Permuted MNIST at .83 accuracy against the .94 of "
    "its reference, and mark it not reproduced; mammoth's REPRODUCIBILITY.md marks online EWC as not "
    "reproduced either. A verdict other than *reproduced* here is in that company, and says as much "
    "about how sensitive EWC is to its setting (lambda, budget, normalisation) as about the thesis.")


def bullets(lines: Sequence[str]) -> str:
    """Markdown bullets, one per line."""
    return "\n\n".join(f"- {ln}" for ln in lines)


def missing_runs_sentence(absent: Sequence, results_name: str) -> str | None:
    """How many of the experiment chapters' runs are not there yet (None: all are)."""
    if not absent:
        return None
    return (f"**{len(absent)} run(s) of the experiment chapters are not in `{results_name}/`** (e.g. "
            f"{absent[0].label}); build the chapters before this one (`lungcl book` does). The discussion "
            "below uses what is there.")


def design_records(records: Sequence, design: Sequence) -> list:
    """The records, among ``records``, of the task-order chapter's design (``design``: its configurations)."""
    ids = {c.run_id for c in design}
    return [r for r in records if r.config.run_id in ids]


def verdicts_page(design: Sequence):
    """The thesis's findings tested on the task-order design's records (:func:`lungcl.findings.findings_report`,
    the numbers of ``lungcl findings``): a book table, and the verdict bullets with how they were computed."""
    report = findings.findings_report(design)
    table = summaries.page_table(findings.findings_table(report),
                                 "The thesis's findings on the task-order chapter's runs: estimate and interval "
                                 "(points of test balanced accuracy), runs, p and Holm-adjusted p, verdict")
    return table, bullets(findings.verdict_sentences(report)) + "\n\n" + findings.scheme_text(report)


def order_sentences(transfer: pd.DataFrame) -> tuple[str, str]:
    """Per method, the spread of average final accuracy over orders (ours, the thesis's); and the
    difference between the methods it is read against."""
    spread = thesis.order_spread(transfer)
    per_method = bullets([f"**{m}**: our six orders span {pct(r['range'])} points of average final accuracy, "
                          f"the thesis's {pct(r['thesis range'])}." for m, r in spread.iterrows()])
    avg = transfer[transfer.quantity == "average_accuracy"].groupby("method")[["value", "thesis"]].mean()
    between = avg.max() - avg.min()
    return per_method, (
        f"Between the methods, the mean (over orders) average final accuracy differs by {pct(between['value'])} "
        f"points in our runs and by {pct(between['thesis'])} in the thesis's. Order matters little where "
        "the spread across orders is small against that difference, and against the spread between runs, "
        "which finding 4's test above weighs.")


def starting_level_note(alone: Sequence, data_dir: Path, results_dir: Path, fold: int, profile: str,
                        source: str) -> str | None:
    """Each task trained alone against the geometry baseline and the thesis's first stages (None when the
    thesis has no first stage for these tasks)."""
    single = thesis.single_task_with_thesis(alone)
    c, px = alone[0].config, alone[0].data["provenance"]["settings"]["patch_px"]
    if not len((single.accuracy - single.thesis_mean).dropna()):
        return None
    geometry = baselines.reference_table(data_dir, list(single.index), fold, profile, source, c.split_seed,
                                         cache_dir=results_dir).xs("geometry", level="reference")
    return ("**The starting level.** Trained alone, our networks reach "
            + ", ".join(f"{pct(r.accuracy)} % on {t}" for t, r in single.iterrows())
            + " (balanced accuracy " + ", ".join(f"{pct(r.balanced_accuracy)} %" for _, r in single.iterrows())
            + "; a class-balanced logistic regression on the contour's geometry alone, same patients: "
            + ", ".join(f"{pct(v)} %" for v in geometry.balanced_accuracy)
            + f"); the thesis's first stages reach {pct(single.thesis_min.min())}-"
              f"{pct(single.thesis_max.max())} % on every task. Our runs learn on phantom patches with a "
              f"ResNet of depth {c.depth} and width {c.width} on {px}-pixel patches, at most {c.epochs} epoch(s) "
              f"of at most {c.max_steps_per_epoch} steps per task"
            + (f", stopped once the {SELECT_LABELS[c.select]} had not improved for {c.patience} evaluations "
               f"({c.patience * c.eval_every} steps)" if c.patience else "")
            + "; the thesis trained a ResNet-101 on real CT.")


def imbalance_note(record) -> str | None:
    """The tasks whose majority class alone scores 80 % or more on our test set (None: no such task)."""
    base = summaries.majority_baseline(record)
    rare = base[base.majority_accuracy >= 0.8]
    if not len(rare):
        return None
    return ("**Class imbalance.** On our test sets, "
            + "; ".join(f"{t} has {r.positive_share:.0%} positive nodules (always answering *negative*: "
                        f"{r.majority_accuracy:.1%})" for t, r in rare.iterrows())
            + ". A network can keep a high accuracy on such a task while it answers one class, which is "
              "forgetting the task, not keeping it; the findings above are therefore tested on balanced "
              "accuracy.")


def thesis_test_sets_note(order: str = "ABC") -> str:
    """The positive shares the thesis's rows imply, which one test set per task cannot all have."""
    implied = thesis.thesis_implied_positive_share(order)
    rng = implied.groupby("task").implied_positive_share.agg(["min", "max"])
    return ("**The thesis's test sets.** Its sensitivity and specificity are within a few points of its "
            "accuracy in every row, so its accuracies read like balanced accuracies. Taken as computed on one "
            "test set per task, its rows imply positive shares of "
            + "; ".join(f"{r['min']:.0%}-{r['max']:.0%} for {t}" for t, r in rng.iterrows())
            + ": one test set cannot give all of them, so its test sets were composed in a way the text does "
              "not state (balanced, up-sampled, or different per run). Our test set is one fixed sixth of the "
              "patients, with LIDC's own class mix.")


def folds_and_seeds_note(n_seeds: int, n_orders: int = 6, n_folds: int = 1) -> str:
    """How many folds and seeds the verdicts rest on."""
    return ("**Folds and seeds.** The thesis averaged five folds; the findings above rest on "
            f"{n_folds} fold(s) with {n_seeds} seed(s) per method in each of {n_orders} order(s) (the task-order "
            "chapter's runs). Every run is scored on the same test patients (one fixed sixth), so the intervals "
            "include the sampling of that test set and the spread between seeds, not that between other "
            "test sets; the analysis chapter's studies have their own seeds, stated there.")


def lambda_notes(seq: Sequence) -> list[str]:
    """Per penalised method swept over two or more lambdas: where the earlier and last tasks end."""
    trade = summaries.tradeoff_table(seq)
    notes = []
    for m in ("ewc", "l2"):
        d = trade[trade.method == m].groupby("strength")[["old", "new", "all"]].mean()
        if len(d) >= 2:
            notes.append(f"**{METHOD_LABELS[m]}'s lambda**: over the sweep ({', '.join(f'{v:g}' for v in d.index)}) "
                         f"the earlier tasks end between {pct(d.old.min())} and {pct(d.old.max())} % and the "
                         f"last task between {pct(d.new.min())} and {pct(d.new.max())} %.")
    return notes


def final_accuracy_note(seq: Sequence, l2_default: float, ewc_default: float) -> str | None:
    """Average final balanced accuracy of every method at its default lambda, and whether joint ends above them all."""
    tv = summaries.transfer_table(seq, metric="balanced_accuracy")
    strengths = set(default_strengths(l2_default, ewc_default).items())
    tv = tv[(tv.quantity == "average_accuracy")
            & tv.apply(lambda r: (r.method, r.strength) in strengths, axis=1)]
    if not len(tv):
        return None
    final = dict(zip(tv.method, tv.value))
    text = ("**Average final balanced accuracy on ABC**: "
            + ", ".join(f"{METHOD_LABELS[m]} {pct(v)} %" for m, v in final.items()) + ".")
    if "joint" in final:
        below = [METHOD_LABELS[m] for m, v in final.items() if m != "joint" and v > final["joint"]]
        text += (" Joint training, which never has to remember, is the usual upper reference (not a bound); "
                 + ("here it ends above every sequential method." if not below else
                    f"here it ends below {', '.join(below)}."))
    return text


def ewc_fisher_note(seq: Sequence, ewc_default: float) -> str | None:
    """Where the first task's Fisher mass sits in the EWC run at the default lambda (None: no such run)."""
    ewc = next((r for r in seq if r.config.method == "ewc" and r.config.strength == ewc_default), None)
    if ewc is None:
        return None
    fisher = summaries.fisher_layer_table(ewc.load_checkpoint()["method"])
    first = fisher[fisher.task == ewc.tasks[0]].set_index("label").share
    return (f"**Where EWC looks**: {first.max():.0%} of the first task's Fisher mass sits in its "
            f"*{first.idxmax()}*; the penalty is strongest there and weakest where the Fisher is small.")


def batchnorm_note(seq: Sequence, frozen: Sequence, l2_default: float, ewc_default: float) -> str:
    """Mean forgetting (balanced accuracy) with BatchNorm's statistics frozen against updated, read as a drop
    of more than 5 points for most methods, a rise of more than 5, or neither."""
    updated = default_runs(seq, l2_default, ewc_default, methods=THESIS_THREE)
    mf = {bn: summaries.transfer_table(recs, metric="balanced_accuracy").set_index(["method", "quantity"]).value
          .xs("mean_forgetting", level=1) for bn, recs in (("updated", updated), ("frozen", frozen))}
    both = [m for m in mf["frozen"].index if m in mf["updated"].index]
    gain = pd.Series({m: mf["updated"][m] - mf["frozen"][m] for m in both})
    text = ("**BatchNorm's statistics**: with them frozen after the first stage, the mean forgetting of balanced "
            "accuracy is "
            + ", ".join(f"{METHOD_LABELS[m]} {pct(mf['frozen'][m])} (updated: {pct(mf['updated'][m])})"
                        for m in both) + " points")
    if len(gain) and (gain > 0.05).sum() > len(gain) / 2:
        text += (": for most methods a drop of more than 5 points, so on this network much of what looks like "
                 "forgetting is the normalisation drifting under the old heads, which no weight penalty can hold.")
    elif len(gain) and (gain < -0.05).sum() > len(gain) / 2:
        text += (": freezing them *raises* the forgetting for most methods, so the drifting statistics are not "
                 "what makes these networks forget.")
    else:
        text += (": no drop of more than 5 points for most methods, so here the forgetting is mostly in the "
                 "weights, where the penalties act.")
    runs = min(sum(r.config.method == m for r in recs) for recs in (updated, frozen) for m in both) if both else 0
    return text + (" (One run per setting: a few points are within one run's noise.)" if runs == 1 else
                   f" (At least {runs} runs per setting, means without intervals here.)" if runs else "")


def fisher_variant_note(variants: Sequence) -> str | None:
    """Whether any Fisher stand-in, each at its validated lambda, differs from the exact Fisher in average
    final test balanced accuracy beyond the spread between runs (paired by seed)."""
    if not any(r.config.fisher != "exact" for r in variants):
        return None
    s = fisher_variant_summary(variants).set_index(["variant", "quantity"])
    rows = s.xs("average_accuracy", level="quantity").drop(index="exact", errors="ignore")
    differ = [v for v, r in rows.iterrows() if differs_from_exact(r)]
    each = ", ".join(f"{FISHER_LABELS[v]} {pts(r.minus_exact)} points" for v, r in rows.iterrows())
    if differ:
        return (f"**Which Fisher**: each at its own lambda, against the exact Fisher: {each}; "
                f"{', '.join(FISHER_LABELS[v] for v in differ)} differ(s) beyond the spread between runs.")
    pairs = int(rows.pairs.min())
    bounds = np.abs(rows[["minus_exact_lo", "minus_exact_hi"]].to_numpy(dtype=float))
    widest = float(bounds[np.isfinite(bounds)].max()) if np.isfinite(bounds).any() else float("nan")
    intervals = ", ".join(f"{FISHER_LABELS[v]} [{pts(r.minus_exact_lo)}, {pts(r.minus_exact_hi)}]"
                          for v, r in rows.iterrows())
    if not np.isfinite(widest):
        return (f"**Which Fisher**: each at its own lambda, against the exact Fisher: {each}; with {pairs} pair(s) "
                "of runs there is no interval, so the variants are not told apart either way.")
    return (f"**Which Fisher**: each at its own lambda, against the exact Fisher: {each}; no interval "
            f"excludes zero, so at {pairs} seeds the variants cannot be told apart from the exact Fisher. That is "
            f"not evidence that they do the same: the 95 % intervals ({intervals} points) allow differences "
            f"of up to {100 * widest:.1f} points of average final accuracy either way (van de Ven, 2025, "
            "compares the variants the same way, each at its own lambda).")


def normalisation_note(runs: Sequence) -> str | None:
    """How much of the forgetting is normalisation, representation and calibration, from the analysis
    chapter's method x normalisation runs (None without them); the best normalisation named from the
    numbers, and the split read per setting off its interval over seeds."""
    if not any(r.data.get("probes") for r in runs):
        return None
    table = normalisation_runs(runs)
    forget = table.groupby("normalisation").mean_forgetting.mean()
    lost = table.groupby("normalisation").lost.mean()
    text = ("**Why the network forgets**: mean forgetting over the methods run, by normalisation: "
            + ", ".join(f"{n} {pct(v)}" for n, v in forget.items()) + " points")
    if "update" in forget.index and len(forget) > 1:
        best = forget.drop("update").idxmin()
        gain = forget["update"] - forget[best]
        ci = {n: M.mean_ci(table[table.normalisation == n].mean_forgetting) for n in (best, "update")}
        clear = ci[best][2] < ci["update"][1]  # both intervals known and apart
        lost_ci = {n: M.mean_ci(table[table.normalisation == n].lost) for n in (best, "update")}
        majority = gain > 0 and lost_ci[best][1] > lost_ci["update"][2]  # more lost, beyond the spread
        text += (f". The least forgetting is with {NORMALISATION_LABELS[best]} ({best}), {pct(gain)} points "
                 "below updated statistics: "
                 + ("but the intervals over runs overlap, so not a difference beyond the spread between runs"
                    if not clear else
                    "but in balanced accuracy the earlier tasks lose more with it "
                    f"({pct(lost[best])} against {pct(lost['update'])} points), so it mostly keeps them on "
                    "their majority class rather than remembering them" if majority else
                    "most of the forgetting is the normalisation, which no weight penalty holds"
                    if gain > forget["update"] / 2 else
                    "less than half of it, so most of the forgetting is in the weights and heads")
                 if gain > 0 else ". No other normalisation forgets less than updated statistics")
    readings = setting_readings(table)
    standing = {k: r["main"] for k, r in readings.items() if r["side"]["lost"] == "above" and r["stands_out"]}
    mains = set(standing.values())
    text += (f". In {len(standing)} of the {len(readings)} settings (method x normalisation) the earlier tasks lose "
             "balanced accuracy with one part of the split larger than the others beyond the spread between seeds")
    if len(mains) == 1 and len(standing) == len(readings):
        main = mains.pop()
        text += (f": **{main}** in every one"
                 + ("; a practitioner should first refit the old heads' thresholds on a little validation data "
                    "before reaching for a weight penalty" if main == "calibration" else
                    "; the features themselves forget, which is what a weight penalty is for"
                    if main == "representation" else
                    "; neither the features nor the threshold explain most of it: the heads' directions no "
                    "longer fit the features"))
    elif standing:
        text += ": " + ", ".join(f"{k[0]}/{k[1]} {m}" for k, m in standing.items()) + \
            "; no one part explains the forgetting in every setting"
    else:
        text += ": the split does not say which part explains the forgetting"
    return text + "."


def analysis_notes(analysis: Sequence, l2_default: float, ewc_default: float, variants: Sequence = (),
                   normalisation: Sequence = ()) -> str:
    """The analysis chapter's runs summed up as bullets (or a note that they are not there yet); with
    ``variants`` (the Fisher comparison's EWC runs) a bullet on which Fisher, with ``normalisation`` (the
    method x normalisation runs) one on why the network forgets."""
    seq = [r for r in analysis if r.config.kind == "sequence" and not r.config.freeze_bn_stats]
    frozen = [r for r in analysis if r.config.freeze_bn_stats]
    adds: list[str | None] = []
    if seq:
        adds += lambda_notes(seq)
        adds += [final_accuracy_note(seq, l2_default, ewc_default), ewc_fisher_note(seq, ewc_default)]
    if frozen and seq:
        adds.append(batchnorm_note(seq, frozen, l2_default, ewc_default))
    adds.append(fisher_variant_note(variants))
    adds.append(normalisation_note(normalisation))
    return bullets([a for a in adds if a]) or "The analysis chapter's runs are not there yet."
