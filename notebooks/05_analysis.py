# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why EWC works (and when it does not)
#
# The previous chapters compared the methods at one penalty strength each.
# This one looks under the hood, on the ABC sequence:
#
# 1. **The strength lambda.** Too weak a penalty and the network forgets; too
#    strong and it cannot learn the new task. A sweep of lambda for EWC and for
#    L2 draws this *stability-plasticity trade-off*.
# 2. **What EWC protects.** The Fisher information of each task, layer by
#    layer, read from the EWC run's checkpoint, and how far each method let
#    each layer move away from the network that had just learned the first
#    task.
# 3. **Two reference points.** *Joint* training, which keeps the data of
#    every task seen so far and trains on all of it at each stage (what no
#    sequential method can beat, since it never has to remember), and each
#    task trained *alone* (the single-task chapter).
# 4. **Online EWC**, which keeps one running Fisher with a decay instead of one
#    penalty per past task (see the theory chapter).

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: same settings are loaded, not re-run
seed = 0  # network initialisation and data order
tasks = "ABC"  # the task order
ewc_factors = [0.1, 1, 10]  # EWC lambdas to sweep (x the profile default)
l2_factors = [0.1, 1, 10]  # L2 lambdas to sweep (x the profile default)
online_gamma = 0.9  # decay of the running Fisher of online EWC (1: never forget)
frozen_bn = True  # SGD, L2, EWC once more with BatchNorm's running statistics frozen after stage 1
epochs = None  # epochs per stage (None: the profile default)
folds = [0]  # cross-validation folds (0-4)
workers = 2  # runs computed in parallel (one CPU core each)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from lungcl import chapters, plots, summaries, thesis
from lungcl.chapter_context import chapter_setup
from lungcl.summaries import METHOD_LABELS, percent_with_ci

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
plan = chapters.analysis_configs(ctx, chapters.parse_orders(tasks)[0], ewc_factors,
                                 l2_factors, online_gamma, folds, epochs=epochs, frozen_bn=frozen_bn)
ewc_default, l2_default = plan.ewc_default, plan.l2_default
task_names = list(plan.references[0].tasks)
runs = chapters.run_configs(plan.all, ctx.results_dir, workers, allow_failures=True)
records = runs.records
sequence_records = [r for r in records if r.config.kind == "sequence" and not r.config.freeze_bn_stats]
frozen_records = [r for r in records if r.config.freeze_bn_stats]
failed = {(cfg.method, cfg.strength): msg for cfg, msg in runs.failed.values()}
chapters.show_failures(runs)

# %% [markdown]
# ## The stability-plasticity trade-off
#
# For each lambda, the left panels show the accuracy after the last stage of
# the earlier tasks (their mean: stability) and of the last task
# (plasticity); the dashed lines are plain SGD, lambda = 0. The right panel
# puts the two against each other: a method is better when its points lie
# further up and to the right, and the labels say which lambda got there.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per penalised method, earlier tasks' and the last task's final accuracy against the penalty strength lambda, with SGD as dashed lines; and old against new accuracy in one plane, diverged runs as crosses."}}
tradeoff = summaries.tradeoff_table(sequence_records)
fig = plots.lambda_tradeoff(tradeoff[tradeoff.method.isin(["sgd", "l2", "ewc"])], failed)
plt.show()
view = tradeoff[tradeoff.method.isin(["sgd", "l2", "ewc"])].groupby(["method", "strength"], sort=False)[
    ["old", "new", "all"]].mean().reset_index()
view["method"] = view.method.map(METHOD_LABELS)
view["strength"] = view.strength.map(lambda v: f"{v:g}")
view = view.rename(columns={"strength": "lambda", "old": "earlier tasks", "new": "last task",
                            "all": "all tasks"}).set_index(["method", "lambda"])
display(view.style.format("{:.1%}").set_caption(
    "Final test accuracy after the whole sequence (mean over the tasks of each group)"))

# %% tags=["hide-input"]
lines = []
# lambda is CHOSEN on the validation split (mean final balanced accuracy over the tasks, the criterion of
# `lungcl tune`); the test numbers are only reported for the chosen value
chosen_on_val = summaries.tradeoff_table(sequence_records, split="val", metric="balanced_accuracy")
for m in ("ewc", "l2"):
    d = tradeoff[(tradeoff.method == m)].groupby("strength")[["old", "new", "all"]].mean()
    v = chosen_on_val[chosen_on_val.method == m].groupby("strength")["all"].mean()
    if len(d) < 2 or v.empty:
        continue
    lo, hi = d.index.min(), d.index.max()
    best = v.idxmax()
    lines.append(
        f"**{METHOD_LABELS[m]}**: from lambda {lo:g} to {hi:g}, the earlier tasks go from "
        f"{100 * d.loc[lo, 'old']:.1f} % to {100 * d.loc[hi, 'old']:.1f} % and the last task from "
        f"{100 * d.loc[lo, 'new']:.1f} % to {100 * d.loc[hi, 'new']:.1f} %; chosen on validation "
        f"(mean final balanced accuracy {100 * v.loc[best]:.1f} %), lambda {best:g} gives a test mean over all "
        f"tasks of {100 * d.loc[best, 'all']:.1f} %"
        + (f" (the default the other chapters use is {ewc_default if m == 'ewc' else l2_default:g})."))
display(Markdown("\n\n".join(f"- {ln}" for ln in lines)))
display(Markdown(
    "A lambda that holds the earlier tasks better *and* learns the last task as well does not exist "
    "when the tasks compete for the same weights: the penalty buys stability with plasticity. The "
    "thesis used one lambda per method and did not report how it was chosen; choosing it on the test "
    "accuracy, as this table would tempt one to, would flatter the method, so the lambda named above is "
    "the one the validation split picks (`lungcl tune` does the same over a wider grid)."))

# %% [markdown]
# ## What EWC protects
#
# After each task EWC stores the diagonal of the Fisher information
# $F_i$ of every weight: how much the task's log-likelihood changes when the
# weight moves. Its penalty $\frac{\lambda}{2} \sum_i F_i (\theta_i -
# \theta^*_i)^2$ makes weights with a large $F_i$ stiff and leaves the others
# free. Below, from the EWC run at the default lambda: the share of each
# task's Fisher mass per layer (where the task's knowledge sits, in EWC's
# eyes), the mean Fisher per weight, and how far each method moved each layer
# away from the network after the first stage (which is the same network for
# all three methods: the first stage has no penalty and the same seed).

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per layer of the network: each task's share of the Fisher information, the mean Fisher per weight on a log scale, and how far each method moved each layer's weights."}}
ewc_record = next(r for r in sequence_records if r.config.method == "ewc" and r.config.strength == ewc_default
                  and r.config.fold == folds[0])
ewc_state = ewc_record.load_checkpoint()
fisher = summaries.fisher_layer_table(ewc_state["method"])
first_task = task_names[0]
anchor = summaries.ewc_anchor(ewc_state["method"], first_task)
finals = {"ewc": ewc_state["model"]}
for m in ("sgd", "l2"):
    rec = next((r for r in sequence_records if r.config.method == m and r.config.fold == folds[0]
                and r.config.strength == (l2_default if m == "l2" else 0.0)), None)
    if rec is not None:
        finals[m] = rec.load_checkpoint()["model"]
drift = summaries.layer_drift_table({m: finals[m] for m in ("sgd", "l2", "ewc") if m in finals}, anchor)
fig = plots.fisher_per_layer(fisher[fisher.task != task_names[-1]], drift)
plt.show()


def first_stage_curve(m: str, strength: float) -> pd.DataFrame:
    rec = next(r for r in sequence_records if r.config.method == m and r.config.strength == strength
               and r.config.fold == folds[0])
    c = rec.curves()
    return c[c.stage == 0][["step", "task", "split", "loss"]].reset_index(drop=True)


starts = [first_stage_curve(m, s) for m, s in (("sgd", 0.0), ("l2", l2_default), ("ewc", ewc_default))
          if any(r.config.method == m for r in sequence_records)]
same_start = all(s.equals(starts[0]) for s in starts[1:])

# %% tags=["hide-input"]
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
display(Markdown("\n\n".join(text)))

# %% [markdown]
# ## Where the forgetting comes from: BatchNorm's statistics
#
# A batch-normalisation layer normalises with the mean and variance of its
# inputs; in training mode it keeps *running* estimates of them, which the
# network uses at test time. They are buffers, not weights: no gradient, and
# so no L2 or EWC penalty, touches them, and each stage re-estimates them on
# its own task's images. Below, the three methods run once more with those
# statistics frozen after the first stage (BatchNorm's scale and shift still
# learn). If the accuracy of the earlier tasks then stays up, the forgetting
# above was largely a shift of the statistics the old heads were calibrated
# to, not lost knowledge. The AUC column is a second witness: it does not
# depend on where the decision threshold lies, so a task whose AUC stays high
# while its accuracy collapses still has its features, but its head's
# threshold no longer fits them.

# %% tags=["hide-input"]
if frozen_records:
    bn_runs = {"updated (as above)": [r for r in sequence_records if (r.config.method, r.config.strength) in
                                       {("sgd", 0.0), ("l2", l2_default), ("ewc", ewc_default)}],
               "frozen after stage 1": frozen_records}
    rows = []
    for bn, recs in bn_runs.items():
        tv = summaries.transfer_table(recs).set_index(["method", "quantity"]).value
        final = summaries.stage_table(recs, metrics=["accuracy", "auc"])
        final = final[final.stage == final.stage.max()]
        for m in [m for m in METHOD_LABELS if (m, "mean_forgetting") in tv]:
            earlier = final[(final.method == m) & (final.task != task_names[-1])]
            rows.append({"BatchNorm statistics": bn, "method": METHOD_LABELS[m],
                         "average final accuracy": tv[(m, "average_accuracy")],
                         "mean forgetting": tv[(m, "mean_forgetting")],
                         "earlier tasks' final accuracy": earlier[earlier.metric == "accuracy"].value.mean(),
                         "earlier tasks' final AUC": earlier[earlier.metric == "auc"].value.mean()})
    bn_table = pd.DataFrame(rows).set_index(["BatchNorm statistics", "method"])
    display(bn_table.style.format("{:.1%}").set_caption(
        "Updated or frozen BatchNorm statistics: final test accuracy, forgetting (accuracy points) and the "
        "earlier tasks' final accuracy and AUC"))
    forget = bn_table["mean forgetting"].unstack(0).reindex(
        [METHOD_LABELS[m] for m in METHOD_LABELS if METHOD_LABELS[m] in set(bn_table.index.get_level_values(1))])
    gain = forget["updated (as above)"] - forget["frozen after stage 1"]
    text = ("Freezing the statistics changes the mean forgetting by "
            + ", ".join(f"{m} {100 * forget.loc[m, 'updated (as above)']:.1f} -> "
                        f"{100 * forget.loc[m, 'frozen after stage 1']:.1f} points" for m in forget.index) + ". ")
    if (gain > 0.05).sum() > len(gain) / 2:
        text += ("For most methods that is a large drop: whatever a penalty does to the weights, a network whose "
                 "normalisation drifts under the old heads forgets anyway, so on this network and data a good part "
                 "of catastrophic forgetting is not in the weights at all. ")
    else:
        text += ("That is no large drop for most methods: here the forgetting is mostly in the weights, where the "
                 "penalties act. ")
    text += ("The thesis does not say how it handled BatchNorm; PyTorch's defaults update the statistics, as our "
             "main runs do. One run per setting: differences of a few points are within the noise of one "
             "training run.")
    display(Markdown(text))
else:
    display(Markdown("Set `frozen_bn = True` in the parameters to run this comparison (three more runs)."))

# %% [markdown]
# ## Joint training, each task alone, and online EWC
#
# Every method on one figure, after the last stage: the sequential methods at
# their default lambda, online EWC (decay `online_gamma`), joint training
# (the data of every earlier task stays available: an upper bound for
# remembering), and each task trained alone (the black ticks: what the
# network learns of a task with nothing else to learn).

# %% tags=["hide-input"] mystnb={"image": {"alt": "Grouped bars after the last stage: each task's accuracy and balanced accuracy for every method and lambda, with each task trained alone as a black line."}}
defaults = [r for r in sequence_records
            if (r.config.method, r.config.strength) in {("sgd", 0.0), ("l2", l2_default), ("ewc", ewc_default),
                                                       ("joint", 0.0), ("online_ewc", ewc_default)}]
table = thesis.stage_table_with_thesis(defaults, metrics=["accuracy", "balanced_accuracy"])
alone_table = summaries.single_task_table([r for r in records if r.config.kind == "single_task"])
last = table.stage.max()
fig = plots.metric_bars(table, metrics=("accuracy", "balanced_accuracy"), stages=[-1],
                        reference={m: alone_table[m].to_dict() for m in ("accuracy", "balanced_accuracy")},
                        title="After the last stage: every method, and each task alone (black)")
plt.show()
transfer = thesis.transfer_with_thesis(defaults)
display(summaries.page_table(
    thesis.transfer_side_by_side(transfer),
    "Average final accuracy, forgetting and BWT of every method (percent; thesis where it has the run)"))

# %% tags=["hide-input"]
tv = transfer.set_index(["method", "quantity"]).value
notes = []
if ("joint", "average_accuracy") in tv:
    gap = {m: tv[("joint", "average_accuracy")] - tv[(m, "average_accuracy")]
           for m in ("sgd", "l2", "ewc", "online_ewc") if (m, "average_accuracy") in tv}
    notes.append("Joint training ends "
                 + ", ".join(f"{100 * g:+.1f} points above {METHOD_LABELS[m]}" for m, g in gap.items())
                 + " in average final accuracy: the room left for a sequential method to improve.")
if ("online_ewc", "mean_forgetting") in tv and ("ewc", "mean_forgetting") in tv:
    notes.append(f"Online EWC (gamma {online_gamma:g}) forgets {100 * tv[('online_ewc', 'mean_forgetting')]:.1f} "
                 f"points on average, EWC {100 * tv[('ewc', 'mean_forgetting')]:.1f}. With three tasks the two "
                 "differ only in where the penalty is anchored (online EWC: at the latest weights) and in how "
                 "much the first task's Fisher still counts after the decay.")
display(Markdown("\n\n".join(notes)))

# %% [markdown]
# ## Try it
#
# 1. **A finer sweep** around the best lambda: `-y "{ewc_factors: [3, 10, 30, 100]}"`.
#    (Two new runs: 10 and 100 are there already.)
# 2. **Forgetful online EWC**: `-p online_gamma 0.5`. Does the first task fade?
#    (One new run.)
# 3. **Another order**: `-p tasks CBA`. Does the best lambda depend on which
#    task comes first? (About ten new runs, the whole chapter.)
# 4. **The Fisher of another task**: the table `fisher` holds every task's
#    Fisher per layer; compare `fisher[fisher.task == "lobulation"]` with the
#    first task's. Do the tasks lean on the same layers?

# %% tags=["hide-input"]
chapters.show_run_times(records)

# %% [markdown]
# ## Exercises
#
# ```{exercise} Choosing λ honestly
# :label: ex-analysis-sweep
#
# Why must λ be chosen on validation data and not on the test accuracies shown
# here?
# ```
#
# ```{solution} ex-analysis-sweep
# :class: dropdown
#
# Choosing on test selects the luckiest λ on those very patients, so the test
# number overstates what the choice would do on new data.
# ```
#
# ```{exercise} Online EWC with γ = 1 (runnable, smoke profile)
# :label: ex-analysis-gamma
#
# Re-run with `-p profile smoke -p online_gamma 1.0 -y "{ewc_factors: [1], l2_factors: [1]}"`
# (lists go through papermill's `-y`, YAML; `-p` passes text).
# With γ = 1 and three tasks, how does online EWC's penalty differ from EWC's?
# ```
#
# ```{solution} ex-analysis-gamma
# :class: dropdown
#
# With γ = 1 the running Fisher is the sum of all tasks' Fishers, but only the
# latest anchor is kept; EWC keeps each task's own anchor. The numbers are close
# when the anchors are close.
# ```
#
# ```{exercise} BatchNorm statistics
# :label: ex-analysis-bn
#
# Why can a network forget even when every weight is held exactly?
# ```
#
# ```{solution} ex-analysis-bn
# :class: dropdown
#
# BatchNorm's running means and variances are not weights: they follow the new
# task's data, so the old task sees differently normalised features.
# ```
