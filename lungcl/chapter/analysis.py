"""The analysis chapter's findings: the lambda trade-off and the lambda validation chooses, where EWC's
Fisher sits and how far each method moved those layers, BatchNorm's statistics, joint and online EWC.
"Which Fisher?" lives in :mod:`.fisher_variants`, "Why the network forgets" in :mod:`.normalisation`;
both are re-exported here, the module the chapter reads."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .. import summaries
from ..summaries import METHOD_LABELS, METRIC_LABELS
# the chapter reads every section's computations from this module (``story``)
from .fisher_variants import (VARIANTS_NOT_RUN, fisher_distances, fisher_variant_distances,  # noqa: F401
                              fisher_variant_sentences, fisher_variant_summary, fisher_variant_view,
                              show_fisher_variants)
from .normalisation import (NORMALISATION_LABELS, normalisation_runs, normalisation_sentences,  # noqa: F401
                            normalisation_summary, normalisation_view, show_normalisation)
from .records import find, select

THESIS_THREE = ("sgd", "l2", "ewc")

LAMBDA_CAVEAT = (
    "A lambda that holds the earlier tasks better *and* learns the last task as well does not exist "
    "when the tasks compete for the same weights: the penalty buys stability with plasticity. The "
    "thesis used one lambda per method and did not report how it was chosen; choosing it on the test "
    "accuracy, as this table would tempt one to, would flatter the method, so the lambda named above is "
    "the one the validation split picks (`lungcl tune` does the same over a wider grid).")

BATCHNORM_NOT_RUN = "Set `frozen_bn = True` in the parameters to run this comparison (three more runs)."


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
    metric = tradeoff["metric"].iloc[0] if "metric" in tradeoff and len(tradeoff) else "accuracy"
    where = "" if metric == "accuracy" else f" in test {METRIC_LABELS[metric]}"
    lines = []
    for m in ("ewc", "l2"):
        d = tradeoff[tradeoff.method == m].groupby("strength")[["old", "new", "all"]].mean()
        v = chosen_on_val[chosen_on_val.method == m].groupby("strength")["all"].mean()
        if len(d) < 2 or v.empty:
            continue
        lo, hi, best = d.index.min(), d.index.max(), v.idxmax()
        lines.append(
            f"**{METHOD_LABELS[m]}**: from lambda {lo:g} to {hi:g}{where}, the earlier tasks go from "
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


def batchnorm_table(updated: Sequence, frozen: Sequence, last_task: str, metric: str = "accuracy") -> pd.DataFrame:
    """Final ``metric``, forgetting (in ``metric``) and the earlier tasks' final ``metric`` / AUC with BatchNorm's
    running statistics updated (``updated`` runs) or frozen after the first stage (``frozen`` runs)."""
    rows, label = [], METRIC_LABELS[metric]
    for bn, recs in {"updated (as above)": updated, "frozen after stage 1": frozen}.items():
        tv = summaries.transfer_table(recs, metric=metric).set_index(["method", "quantity"]).value
        final = summaries.stage_table(recs, metrics=[metric, "auc"])
        final = final[final.stage == final.stage.max()]
        for m in [m for m in METHOD_LABELS if (m, "mean_forgetting") in tv]:
            earlier = final[(final.method == m) & (final.task != last_task)]
            rows.append({"BatchNorm statistics": bn, "method": METHOD_LABELS[m],
                         f"average final {label}": tv[(m, "average_accuracy")],
                         "mean forgetting": tv[(m, "mean_forgetting")],
                         f"earlier tasks' final {label}": earlier[earlier.metric == metric].value.mean(),
                         "earlier tasks' final AUC": earlier[earlier.metric == "auc"].value.mean()})
    table = pd.DataFrame(rows).set_index(["BatchNorm statistics", "method"])
    table.attrs["metric"] = metric
    return table


def batchnorm_sentence(bn_table: pd.DataFrame) -> str:
    """How freezing the statistics changes forgetting, and whether that is a large drop for most methods
    (more than 5 points for over half of them)."""
    shown = set(bn_table.index.get_level_values(1))
    forget = bn_table["mean forgetting"].unstack(0).reindex(
        [METHOD_LABELS[m] for m in METHOD_LABELS if METHOD_LABELS[m] in shown])
    gain = forget["updated (as above)"] - forget["frozen after stage 1"]
    metric = bn_table.attrs.get("metric", "accuracy")
    of = "" if metric == "accuracy" else f" of {METRIC_LABELS[metric]}"
    text = (f"Freezing the statistics changes the mean forgetting{of} by "
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
    metric = transfer["metric"].iloc[0] if "metric" in transfer and len(transfer) else "accuracy"
    label = METRIC_LABELS[metric]
    notes = []
    if ("joint", "average_accuracy") in tv:
        gap = {m: tv[("joint", "average_accuracy")] - tv[(m, "average_accuracy")]
               for m in ("sgd", "l2", "ewc", "online_ewc") if (m, "average_accuracy") in tv}
        below = [METHOD_LABELS[m] for m, g in gap.items() if g < 0]
        notes.append(f"Joint training's average final {label} minus each sequential method's: "
                     + ", ".join(f"{METHOD_LABELS[m]} {100 * g:+.1f} points" for m, g in gap.items())
                     + (": the room left for a sequential method to improve." if not below else
                        f"; {', '.join(below)} end(s) above joint training here: joint training is the usual "
                        "upper reference, not a bound."))
    if ("online_ewc", "mean_forgetting") in tv and ("ewc", "mean_forgetting") in tv:
        notes.append(f"Online EWC (gamma {online_gamma:g}) forgets "
                     f"{100 * tv[('online_ewc', 'mean_forgetting')]:.1f} points of {label} on average, EWC "
                     f"{100 * tv[('ewc', 'mean_forgetting')]:.1f}. With three tasks the two differ only in where "
                     "the penalty is anchored (online EWC: at the latest weights) and in how much the first "
                     "task's Fisher still counts after the decay.")
    return "\n\n".join(notes)
