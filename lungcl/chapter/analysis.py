"""The analysis chapter's findings: the lambda trade-off and the lambda validation chooses, where EWC's
Fisher sits and how far each method moved those layers, which Fisher (exact, sampled, empirical,
batched) at its own validated lambda, BatchNorm's statistics, joint and online EWC."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import metrics as M
from .. import summaries
from ..errors import LungclError
from ..fisher import FISHER_KINDS, FISHER_LABELS, compare_fishers
from ..methods.ewc import EWCMethod
from ..summaries import METHOD_LABELS
from .display import say
from .formats import pts
from .records import find, select

THESIS_THREE = ("sgd", "l2", "ewc")

LAMBDA_CAVEAT = (
    "A lambda that holds the earlier tasks better *and* learns the last task as well does not exist "
    "when the tasks compete for the same weights: the penalty buys stability with plasticity. The "
    "thesis used one lambda per method and did not report how it was chosen; choosing it on the test "
    "accuracy, as this table would tempt one to, would flatter the method, so the lambda named above is "
    "the one the validation split picks (`lungcl tune` does the same over a wider grid).")

BATCHNORM_NOT_RUN = "Set `frozen_bn = True` in the parameters to run this comparison (three more runs)."
VARIANTS_NOT_RUN = ("Set `fisher_variants` in the parameters (e.g. `[\"sampled\", \"empirical\", \"batched\"]`) "
                    "to run this comparison (three runs per variant).")


def default_strengths(l2_default: float, ewc_default: float) -> dict[str, float]:
    """Each method's lambda in the runs the other chapters share (SGD and joint have none)."""
    return {"sgd": 0.0, "l2": l2_default, "ewc": ewc_default, "joint": 0.0, "online_ewc": ewc_default}


def default_runs(records: Sequence, l2_default: float, ewc_default: float,
                 methods: Sequence[str] = ("sgd", "l2", "ewc", "joint", "online_ewc")) -> list:
    """The records of ``methods`` at their default lambda."""
    strengths = default_strengths(l2_default, ewc_default)
    return [r for r in records if r.config.method in methods
            and (r.config.method, r.config.strength) in strengths.items()]


def tradeoff_view(tradeoff: pd.DataFrame) -> pd.DataFrame:
    """Mean final accuracy of the earlier tasks, the last task and all tasks, per method and lambda."""
    view = tradeoff[tradeoff.method.isin(THESIS_THREE)].groupby(["method", "strength"], sort=False)[
        ["old", "new", "all"]].mean().reset_index()
    view["method"] = view.method.map(METHOD_LABELS)
    view["strength"] = view.strength.map(lambda v: f"{v:g}")
    return view.rename(columns={"strength": "lambda", "old": "earlier tasks", "new": "last task",
                                "all": "all tasks"}).set_index(["method", "lambda"])


def lambda_sentences(tradeoff: pd.DataFrame, chosen_on_val: pd.DataFrame, l2_default: float,
                     ewc_default: float) -> str:
    """Per penalised method swept over two or more lambdas: what the sweep moves and what validation picks."""
    defaults = default_strengths(l2_default, ewc_default)
    lines = []
    for m in ("ewc", "l2"):
        d = tradeoff[tradeoff.method == m].groupby("strength")[["old", "new", "all"]].mean()
        v = chosen_on_val[chosen_on_val.method == m].groupby("strength")["all"].mean()
        if len(d) < 2 or v.empty:
            continue
        lo, hi, best = d.index.min(), d.index.max(), v.idxmax()
        lines.append(
            f"**{METHOD_LABELS[m]}**: from lambda {lo:g} to {hi:g}, the earlier tasks go from "
            f"{100 * d.loc[lo, 'old']:.1f} % to {100 * d.loc[hi, 'old']:.1f} % and the last task from "
            f"{100 * d.loc[lo, 'new']:.1f} % to {100 * d.loc[hi, 'new']:.1f} %; chosen on validation "
            f"(mean final balanced accuracy {100 * v.loc[best]:.1f} %), lambda {best:g} gives a test mean over "
            f"all tasks of {100 * d.loc[best, 'all']:.1f} % (the default the other chapters use is "
            f"{defaults[m]:g}).")
    return "\n\n".join(f"- {ln}" for ln in lines)


def fisher_and_drift(records: Sequence, tasks: Sequence[str], l2_default: float, ewc_default: float,
                     fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """EWC's Fisher per layer and task, and how far SGD, L2 and EWC moved each layer from EWC's weights
    after the first task (relative drift)."""
    ewc_state = find(records, method="ewc", strength=ewc_default, fold=fold).load_checkpoint()
    fisher = summaries.fisher_layer_table(ewc_state["method"])
    anchor = summaries.ewc_anchor(ewc_state["method"], tasks[0])
    finals = {"ewc": ewc_state["model"]}
    for m in ("sgd", "l2"):
        found = select(records, method=m, fold=fold, strength=l2_default if m == "l2" else 0.0)
        if found:
            finals[m] = found[0].load_checkpoint()["model"]
    drift = summaries.layer_drift_table({m: finals[m] for m in THESIS_THREE if m in finals}, anchor)
    return fisher, drift


def same_first_stage(records: Sequence, l2_default: float, ewc_default: float, fold: int) -> bool:
    """Whether SGD, L2 and EWC (those that ran) logged the same first-stage losses: one starting network."""
    strengths = default_strengths(l2_default, ewc_default)
    starts = []
    for m in THESIS_THREE:
        if select(records, method=m):
            c = find(records, method=m, strength=strengths[m], fold=fold).curves()
            starts.append(c[c.stage == 0][["step", "task", "split", "loss"]].reset_index(drop=True))
    return all(s.equals(starts[0]) for s in starts[1:])


def fisher_sentences(fisher: pd.DataFrame, drift: pd.DataFrame, first_task: str, l2_default: float,
                     ewc_default: float, same_start: bool) -> str:
    """Where the first task's Fisher mass sits, how far each method moved those layers, EWC's stiffness."""
    f1 = fisher[fisher.task == first_task].set_index("label")
    top = f1.share.idxmax()
    trunk = f1[~f1.index.str.startswith("head")]
    d = drift.pivot_table(index="label", columns="model", values="drift")
    heavy = f1.share.sort_values(ascending=False)
    heavy_layers = list(heavy.index[:max(1, int((heavy.cumsum() < 0.5).sum()) + 1)])
    text = [f"For **{first_task}**, {heavy.loc[top]:.0%} of the Fisher mass sits in *{top}*; the layers "
            f"holding half of it are {', '.join(heavy_layers)}."]
    if {"sgd", "ewc"} <= set(d.columns):
        moved = {m: float(d.loc[heavy_layers, m].mean()) for m in d.columns}
        text.append("In those layers the weights moved (relative to their size) by "
                    + ", ".join(f"{METHOD_LABELS[m]} {v:.1%}" for m, v in moved.items())
                    + " between the end of the first stage and the end of the sequence.")
    stiff = ewc_default * trunk["mean"]
    text.append(f"EWC's stiffness per weight, lambda x F, ranges over the trunk's layers from "
                f"{stiff.min():.2g} to {stiff.max():.2g} (mean per layer); L2 holds every weight with the same "
                f"stiffness, its lambda = {l2_default:g}.")
    text.append("The network after the first stage is the same for all three methods: their first-stage "
                "curves agree in every evaluated loss to the last digit." if same_start else
                "Careful: the three methods' first-stage accuracies differ, so their runs did not start the "
                "second stage from the same network, and the drift is measured from EWC's.")
    text.append("BatchNorm's running means and variances are not weights: no penalty holds them, and every "
                "stage re-estimates them on its own task's images, a way to forget that EWC cannot see.")
    return "\n\n".join(text)


def batchnorm_table(updated: Sequence, frozen: Sequence, last_task: str) -> pd.DataFrame:
    """Final accuracy, forgetting and the earlier tasks' final accuracy / AUC with BatchNorm's running
    statistics updated (``updated`` runs) or frozen after the first stage (``frozen`` runs)."""
    rows = []
    for bn, recs in {"updated (as above)": updated, "frozen after stage 1": frozen}.items():
        tv = summaries.transfer_table(recs).set_index(["method", "quantity"]).value
        final = summaries.stage_table(recs, metrics=["accuracy", "auc"])
        final = final[final.stage == final.stage.max()]
        for m in [m for m in METHOD_LABELS if (m, "mean_forgetting") in tv]:
            earlier = final[(final.method == m) & (final.task != last_task)]
            rows.append({"BatchNorm statistics": bn, "method": METHOD_LABELS[m],
                         "average final accuracy": tv[(m, "average_accuracy")],
                         "mean forgetting": tv[(m, "mean_forgetting")],
                         "earlier tasks' final accuracy": earlier[earlier.metric == "accuracy"].value.mean(),
                         "earlier tasks' final AUC": earlier[earlier.metric == "auc"].value.mean()})
    return pd.DataFrame(rows).set_index(["BatchNorm statistics", "method"])


def batchnorm_sentence(bn_table: pd.DataFrame) -> str:
    """How freezing the statistics changes forgetting, and whether that is a large drop for most methods
    (more than 5 points for over half of them)."""
    shown = set(bn_table.index.get_level_values(1))
    forget = bn_table["mean forgetting"].unstack(0).reindex(
        [METHOD_LABELS[m] for m in METHOD_LABELS if METHOD_LABELS[m] in shown])
    gain = forget["updated (as above)"] - forget["frozen after stage 1"]
    text = ("Freezing the statistics changes the mean forgetting by "
            + ", ".join(f"{m} {100 * forget.loc[m, 'updated (as above)']:.1f} -> "
                        f"{100 * forget.loc[m, 'frozen after stage 1']:.1f} points" for m in forget.index) + ". ")
    if (gain > 0.05).sum() > len(gain) / 2:
        text += ("For most methods that is a large drop: whatever a penalty does to the weights, a network whose "
                 "normalisation drifts under the old heads forgets anyway, so on this network and data a good "
                 "part of catastrophic forgetting is not in the weights at all. ")
    else:
        text += ("That is no large drop for most methods: here the forgetting is mostly in the weights, where "
                 "the penalties act. ")
    return text + ("The thesis does not say how it handled BatchNorm; PyTorch's defaults update the statistics, "
                   "as our main runs do. One run per setting: differences of a few points are within the noise "
                   "of one training run.")


def reference_notes(transfer: pd.DataFrame, online_gamma: float) -> str:
    """What joint training leaves to gain, and online EWC's forgetting against EWC's (when they ran)."""
    tv = transfer.set_index(["method", "quantity"]).value
    notes = []
    if ("joint", "average_accuracy") in tv:
        gap = {m: tv[("joint", "average_accuracy")] - tv[(m, "average_accuracy")]
               for m in ("sgd", "l2", "ewc", "online_ewc") if (m, "average_accuracy") in tv}
        notes.append("Joint training ends "
                     + ", ".join(f"{100 * g:+.1f} points above {METHOD_LABELS[m]}" for m, g in gap.items())
                     + " in average final accuracy: the room left for a sequential method to improve.")
    if ("online_ewc", "mean_forgetting") in tv and ("ewc", "mean_forgetting") in tv:
        notes.append(f"Online EWC (gamma {online_gamma:g}) forgets "
                     f"{100 * tv[('online_ewc', 'mean_forgetting')]:.1f} points on average, EWC "
                     f"{100 * tv[('ewc', 'mean_forgetting')]:.1f}. With three tasks the two differ only in where "
                     "the penalty is anchored (online EWC: at the latest weights) and in how much the first "
                     "task's Fisher still counts after the decay.")
    return "\n\n".join(notes)


# ---------------------------------------------------------------- which Fisher?

VARIANT_QUANTITIES = {"val_balanced_accuracy": "validation: mean final balanced accuracy",
                      "average_accuracy": "test: average final accuracy",
                      "mean_forgetting": "test: mean forgetting (points)"}


def _variant_values(record) -> dict[str, float]:
    """One EWC run's validation criterion and its test average final accuracy and mean forgetting."""
    test = summaries.transfer_summary(record.accuracy_matrix("test", "accuracy").to_numpy(), record.tasks)
    val = record.accuracy_matrix("val", "balanced_accuracy").to_numpy()[-1]
    return {"val_balanced_accuracy": float(np.nanmean(val)), "average_accuracy": test["average_accuracy"],
            "mean_forgetting": test["mean_forgetting"]}


def fisher_variant_summary(records: Sequence) -> pd.DataFrame:
    """Per Fisher variant of the EWC ``records`` and quantity (:data:`VARIANT_QUANTITIES`): the mean over
    runs with its 95 % t-interval, and the difference to the exact Fisher's run of the same fold and seed
    (paired) with its interval."""
    values = {(r.config.fisher, r.config.fold, r.config.seed): _variant_values(r) for r in records
              if r.config.method == "ewc" and r.config.kind == "sequence"}
    rows = []
    for variant in [v for v in FISHER_KINDS if any(k[0] == v for k in values)]:
        runs = {k[1:]: v for k, v in values.items() if k[0] == variant}
        for q in VARIANT_QUANTITIES:
            mean, lo, hi = M.mean_ci([v[q] for v in runs.values()])
            paired = [v[q] - values[("exact", *key)][q] for key, v in runs.items() if ("exact", *key) in values]
            d, d_lo, d_hi = M.mean_ci(paired) if variant != "exact" else (np.nan, np.nan, np.nan)
            rows.append({"variant": variant, "quantity": q, "runs": len(runs), "mean": mean, "lo": lo, "hi": hi,
                         "minus_exact": d, "minus_exact_lo": d_lo, "minus_exact_hi": d_hi, "pairs": len(paired)})
    if not rows:
        raise LungclError("no EWC sequence records to compare Fisher variants on")
    return pd.DataFrame(rows)


def fisher_variant_view(summary: pd.DataFrame, strengths: Mapping[str, float],
                        tuned: Mapping[str, bool]) -> pd.DataFrame:
    """The variants side by side: lambda (and where it came from), runs, and each quantity as
    "mean [interval]" in percent (forgetting in points), with the paired difference to exact."""
    def cell(m: float, lo: float, hi: float) -> str:
        return "" if np.isnan(m) else f"{100 * m:.1f}" + ("" if np.isnan(lo) else f" [{100 * lo:.1f}, {100 * hi:.1f}]")

    rows = []
    for variant, g in summary.groupby("variant", sort=False):
        row = {"Fisher": FISHER_LABELS[variant], "lambda": f"{strengths.get(variant, np.nan):g}",
               "lambda chosen": "on validation" if tuned.get(variant) else "profile default",
               "runs": int(g.runs.iloc[0])}
        for q, label in VARIANT_QUANTITIES.items():
            r = g.set_index("quantity").loc[q]
            row[label] = cell(r["mean"], r["lo"], r["hi"])
            if q != "val_balanced_accuracy":
                row[f"{label.split(':')[1].strip()} minus exact's"] = cell(
                    r["minus_exact"], r["minus_exact_lo"], r["minus_exact_hi"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("Fisher")


def fisher_distances(pairs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> pd.DataFrame:
    """(variant, exact Fisher, variant's Fisher) triples, each Fisher a {parameter: tensor} of one task at
    one network -> per variant and layer (:func:`lungcl.summaries.layer_of`, labelled) the mean over the
    triples of :func:`lungcl.fisher.compare_fishers`' relative distance, relative L1, correlation, scale."""
    import torch

    rows = []
    for k, (variant, exact, other) in enumerate(pairs):
        labels = summaries.layer_labels(exact)
        grouped: dict[str, dict[str, Any]] = {"exact": {}, "other": {}}
        for name in exact:
            layer = labels[summaries.layer_of(name)]
            for key, fisher in (("exact", exact), ("other", other)):
                if name not in fisher:
                    raise LungclError(f"Fisher {variant!r} lacks parameter {name!r}")
                prev = grouped[key].get(layer)
                flat = fisher[name].detach().double().flatten()
                grouped[key][layer] = flat if prev is None else torch.cat([prev, flat])
        for row in compare_fishers(grouped["exact"], {variant: grouped["other"]}):
            rows.append({**row, "pair": k})
    if not rows:
        raise LungclError("no Fisher pairs to compare")
    t = pd.DataFrame(rows).rename(columns={"parameter": "layer"})
    return t.groupby(["variant", "layer"], sort=False, as_index=False)[
        ["relative_distance", "relative_l1", "correlation", "scale"]].mean()


def fisher_variant_distances(records: Sequence, task: str) -> pd.DataFrame:
    """:func:`fisher_distances` of ``task``'s Fisher in every non-exact EWC record against the exact-Fisher
    record of the same fold and seed: both were computed at the same network, the one after the first
    stage (no penalty acts before the second), so the difference is the variant's alone."""
    exact = {(r.config.fold, r.config.seed): r for r in records if r.config.fisher == "exact"}
    pairs = []
    for r in records:
        partner = exact.get((r.config.fold, r.config.seed))
        if r.config.fisher == "exact" or partner is None:
            continue
        fishers = [EWCMethod.from_state(x.load_checkpoint()["method"]).fishers[task] for x in (partner, r)]
        pairs.append((r.config.fisher, *fishers))
    return fisher_distances(pairs)


def fisher_variant_sentences(summary: pd.DataFrame, distances: pd.DataFrame | None,
                             strengths: Mapping[str, float]) -> str:
    """Per variant: its test average final accuracy against exact's (paired interval: a difference or
    within the spread between runs), how far its Fisher lies from the exact one and at what scale."""
    s = summary.set_index(["variant", "quantity"])
    lines = []
    for variant in [v for v in FISHER_KINDS if v != "exact" and (v, "average_accuracy") in s.index]:
        r = s.loc[(variant, "average_accuracy")]
        d, lo, hi = r["minus_exact"], r["minus_exact_lo"], r["minus_exact_hi"]
        if np.isnan(lo):
            verdict = f"{pts(d)} points against exact, from too few paired runs for an interval"
        elif lo > 0 or hi < 0:
            verdict = (f"{pts(d)} points against exact [{pts(lo)}, {pts(hi)}]: "
                       + ("better" if lo > 0 else "worse") + ", beyond the spread between runs")
        else:
            verdict = (f"{pts(d)} points against exact [{pts(lo)}, {pts(hi)}]: the interval contains zero, "
                       "so no difference from exact shows beyond the spread between runs")
        text = (f"**{FISHER_LABELS[variant]}** (lambda {strengths.get(variant, np.nan):g}): average final test "
                f"accuracy {verdict}.")
        if distances is not None and variant in set(distances.variant):
            dv = distances[distances.variant == variant]
            text += (f" Its Fisher of the first task lies a median {dv.relative_distance.median():.2f} (relative "
                     f"L2) from the exact one over the layers, with correlation {dv.correlation.median():.2f} and "
                     f"{dv.scale.median():.3g} times its mass")
            ratio = strengths.get(variant, np.nan) / strengths.get("exact", np.nan)
            text += (f"; its lambda is {ratio:g} times exact's." if np.isfinite(ratio) else ".")
        lines.append(text)
    return "\n\n".join(f"- {ln}" for ln in lines)


# ---------------------------------------------------------------- normalisation, features and heads

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


# ---------------------------------------------------------------- shown in the chapter


def show_fisher_variants(records: Sequence, first_task: str, strengths: Mapping[str, float],
                         tuned: Mapping[str, bool]) -> pd.DataFrame | None:
    """The Fisher comparison's table and sentences in the notebook; returns the layer distances to plot
    (None and a note when the comparison did not run)."""
    from IPython.display import display

    if not records:
        say(VARIANTS_NOT_RUN)
        return None
    summary = fisher_variant_summary(records)
    distances = fisher_variant_distances(records, first_task)
    display(summaries.page_table(fisher_variant_view(summary, strengths, tuned),
                                 "EWC with each Fisher at its lambda: mean over seeds [95 % t-interval], percent"))
    say(fisher_variant_sentences(summary, distances, strengths))
    return distances


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
