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
# # Single-task baselines: each task on its own
#
# Before asking what a network forgets, we need to know what it can learn.
# This chapter trains a fresh network on each of the thesis's three tasks
# alone (A = malignancy, B = lobulation, C = calcification), with exactly the
# budget of one stage of the sequences in the next chapters (same network,
# learning rate and stopping rule: train until the validation loss has not
# improved for a number of evaluations, the *patience*, up to a cap of
# epochs), and reports accuracy, balanced accuracy,
# sensitivity, specificity and AUC on the test patients, each with a 95 %
# interval.
#
# These are the starting points: the first stage of every sequence is such a
# single-task training, and the later stages can only lose (forget) or, at
# best, keep what this chapter shows.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: same settings are loaded, not re-run
seed = 0  # network initialisation and data order
tasks = "ABC"  # each trained alone: ABC, or e.g. spiculation,margin,texture
epochs = None  # epochs (None: the profile default, as one stage of a sequence)
folds = [0]  # cross-validation folds (0-4); the thesis averages all five
workers = 2  # runs computed in parallel (one CPU core each)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from lungcl import baselines, chapters, plots, summaries, thesis
from lungcl.chapter_context import chapter_setup
from lungcl.data.tasks import resolve_tasks
from lungcl.summaries import METRIC_LABELS, percent_with_ci

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
task_names = [t.name for t in resolve_tasks(tasks)]
configs = chapters.single_task_configs(ctx, task_names, folds, epochs=epochs)
records = chapters.run_configs(configs, ctx.results_dir, workers).records

# %% [markdown]
# ## The runs and the data they see
#
# One run per task (and fold): a new network, initialised from the seed, with
# one head, trained on that task's training patients; the checkpoint with the
# lowest validation loss is kept (the thesis's rule) and measured on the test
# patients. The minority class is up-sampled during training, as in the
# thesis.

# %% tags=["hide-input"]
display(summaries.settings_table(records).style.set_caption(
    f"Training settings ({ctx.profile} profile, {len(folds)} fold(s), seed {ctx.seed})"))
baseline = pd.concat([summaries.majority_baseline(r) for r in records]).groupby(level=0, sort=False).first()
display(baseline.style.format({"positive_share": "{:.1%}", "majority_accuracy": "{:.1%}"})
        .set_caption(f"Test nodules per task ({records[0].data['provenance']['source']} patches)"))

# %% [markdown]
# ## Learning each task
#
# Accuracy, balanced accuracy and AUC during training, on the validation
# patients (dashed: what chooses the checkpoint) and the test patients
# (solid). The dotted line is what answering the majority class scores in
# accuracy: on an imbalanced task the accuracy curve can sit on it while the
# network learns nothing, which the balanced accuracy (50 % for any constant
# answer) and the AUC (50 % for a random ranking) reveal.

# %% tags=["hide-input"] mystnb={"image": {"alt": "One panel per task: accuracy, balanced accuracy and AUC on the test set (solid) and validation set (dashed) against training step, with the majority-class level dotted."}}
fig = plots.training_curves(records)
plt.show()

# %% [markdown]
# ## Results, beside the thesis
#
# Our values with their 95 % interval (a bootstrap over the test patients for
# one fold, a t-interval over folds for several). The thesis reports no
# separate single-task experiment, but in the three orders that start with a
# task, the first stage *is* a single-task training (no penalty acts before a
# second task), repeated for each method: the thesis column is the mean of
# those runs and their range. Its later diagonal entries (B after A, ...) are
# not single-task numbers, since the network had learned other tasks before.
# The thesis published sensitivity and specificity only for order ABC, so the
# comparison is on accuracy.

# %% tags=["hide-input"] mystnb={"image": {"alt": "One panel per task: bars of test accuracy, balanced accuracy, sensitivity, specificity and AUC with intervals, beside the thesis's range and the majority-class accuracy."}}
single = thesis.single_task_with_thesis(records)
metrics = [m for m in summaries.STAGE_METRICS if m in single]
view = pd.DataFrame({METRIC_LABELS[m]: [percent_with_ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
                                        for _, r in single.iterrows()] for m in metrics}, index=single.index)
if "thesis_mean" in single and single.thesis_mean.notna().any():
    view["thesis: accuracy learned first"] = [
        "-" if pd.isna(r.thesis_mean) else
        f"{100 * r.thesis_mean:.1f} ({100 * r.thesis_min:.1f}-{100 * r.thesis_max:.1f}, {int(r.thesis_runs)} runs)"
        for _, r in single.iterrows()]
view["majority class"] = baseline.majority_accuracy.reindex(view.index).map(lambda v: f"{100 * v:.1f}")
display(summaries.page_table(view, "Each task alone: test set, percent [95 % interval]"))
fig = plots.single_task_bars(single, majority=baseline.majority_accuracy.to_dict())
plt.show()

# %% [markdown]
# ## Two references: the contour alone, and the readers
#
# A CNN's score means little without something to read it against. Beside
# each network we put two references, computed by the package on the same
# nodules:
#
# - **geometry**: a class-balanced logistic regression (scikit-learn) on the
#   consensus contour's geometry alone (volume, diameter, principal axes and
#   their ratios, sphericity; never a rating), trained on the *same* training
#   patients as the network, its regularisation chosen on the same validation
#   patients, measured on the same test patients. A network that does not beat
#   it has learned nothing the nodule's outline does not already say.
# - **readers**: one radiologist's rating, turned into a label by the task's
#   rule, against the label of the median of the *other* readers of that
#   nodule (every LIDC nodule with at least three readers; a rating in the
#   rule's dropped middle counts as half right). It says how far humans agree
#   with each other on the question: a reference, not a ceiling.

# %% tags=["hide-input"]
refs = pd.concat([baselines.reference_table(ctx.data_dir, task_names, fold=f, profile=ctx.profile,
                                            source=ctx.source, split_seed=configs[0].split_seed,
                                            cache_dir=ctx.results_dir) for f in folds])
refs = refs.groupby(level=[0, 1], sort=False)[["balanced_accuracy", "auc"]].mean()
geometry, readers = refs.xs("geometry", level="reference"), refs.xs("readers", level="reference")
compare = pd.DataFrame({
    "CNN: balanced accuracy": [percent_with_ci(r.balanced_accuracy, r.balanced_accuracy_ci_low,
                                               r.balanced_accuracy_ci_high) for _, r in single.iterrows()],
    "geometry: balanced accuracy": geometry.balanced_accuracy.reindex(single.index).map(lambda v: f"{100 * v:.1f}"),
    "readers: balanced accuracy": readers.balanced_accuracy.reindex(single.index).map(lambda v: f"{100 * v:.1f}"),
    "CNN: AUC": single.auc.map(lambda v: f"{100 * v:.1f}"),
    "geometry: AUC": geometry.auc.reindex(single.index).map(lambda v: f"{100 * v:.1f}"),
    "readers: AUC": readers.auc.reindex(single.index).map(lambda v: f"{100 * v:.1f}")}, index=single.index)
display(summaries.page_table(compare, f"The network beside its references: test set, percent "
                                      f"({len(folds)} fold(s); CNN with its 95 % interval)"))
ref_lines = []
for task, r in single.iterrows():
    geo, rd = geometry.loc[task, "balanced_accuracy"], readers.loc[task, "balanced_accuracy"]
    ci_high = r.balanced_accuracy_ci_high if not pd.isna(r.balanced_accuracy_ci_high) else r.balanced_accuracy
    ci_low = r.balanced_accuracy_ci_low if not pd.isna(r.balanced_accuracy_ci_low) else r.balanced_accuracy
    if ci_high < geo:
        verdict = (f"the network does **not** beat the contour's geometry alone ({100 * geo:.1f} %): its whole "
                   "interval lies below it")
    elif ci_low > geo:
        verdict = f"the network beats the contour's geometry alone ({100 * geo:.1f} %) beyond its interval"
    else:
        verdict = (f"the network is not distinguishable from the contour's geometry alone ({100 * geo:.1f} %), "
                   "which lies inside its interval")
    verdict += (f"; the readers agree with each other at {100 * rd:.1f} %"
                + (", and the network is above that" if ci_low > rd else ""))
    ref_lines.append(f"**{task}**: balanced accuracy {100 * r.balanced_accuracy:.1f} %: {verdict}.")
display(Markdown("\n\n".join(f"- {ln}" for ln in ref_lines)))

# %% [markdown]
# ## What the numbers say

# %% tags=["hide-input"]
lines = []
for task, r in single.iterrows():
    maj = baseline.loc[task, "majority_accuracy"]
    text = (f"**{task}**: accuracy {percent_with_ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high)} %, "
            f"against {100 * maj:.1f} % for always answering the majority class; balanced accuracy "
            f"{100 * r.balanced_accuracy:.1f} %, AUC {100 * r.auc:.1f} %.")
    if r.balanced_accuracy < 0.6 and r.auc >= 0.65:
        text += (" Its yes/no answers barely separate the classes although its scores rank them better "
                 "than chance (the AUC): the decision threshold, not the ranking, is off.")
    elif r.balanced_accuracy < 0.6:
        text += " The network barely separates the classes on this task."
    elif r.accuracy < maj:
        share = baseline.loc[task, "positive_share"]
        text += (f" Its accuracy is *below* the majority-class floor although it separates the classes "
                 f"better than chance: it calls {100 * (1 - r.specificity):.0f} % of the negative nodules "
                 f"positive, and with only {100 * share:.0f} % positives those false alarms cost more "
                 "accuracy than the positives it finds gain. Trained on up-sampled (balanced) batches, "
                 "the network does not know how rare the positives are.")
    if not pd.isna(r.get("thesis_mean", np.nan)):
        text += (f" The thesis: {100 * r.thesis_mean:.1f} % accuracy "
                 f"({100 * (r.accuracy - r.thesis_mean):+.1f} points for us).")
    lines.append(text)
display(Markdown("\n\n".join(f"- {ln}" for ln in lines)))
if "thesis_mean" in single and single.thesis_mean.notna().any():
    width = float((single.thesis_max - single.thesis_min).max())
    display(Markdown(
        f"The thesis's first-stage accuracies of one task differ by at most {100 * width:.1f} points "
        f"between its runs, and lie between {100 * single.thesis_min.min():.1f} % and "
        f"{100 * single.thesis_max.max():.1f} % for all three tasks: it learned every task to about the "
        "same level (and, as the next chapter shows, equally well on both classes). Ours come from phantom "
        "patches and a far smaller network; a gap between its numbers and ours is a statement about the "
        "data and the budget, not about the methods, which this chapter does not compare."))
display(Markdown(
    "What matters for the next chapters is the level each task starts from: a task that is learned "
    "poorly cannot be forgotten much, and its forgetting says little about the methods."))

# %% [markdown]
# ## Try it
#
# 1. **A short budget**: `-p epochs 2` caps each task at two epochs (about
#    100 steps, the budget before the stages trained to a plateau). How much
#    balanced accuracy does it cost, and does the network still beat the
#    geometry reference? (Three new runs.)
# 2. **Other characteristics**: `-p tasks spiculation,margin,texture`, or
#    `-p tasks all` for the nine. Which are easy on the phantom and which are
#    hard, and does that follow how many nodules each keeps? (One run each.)
# 3. **Fold-to-fold spread**: `-y "{folds: [0, 1, 2, 3, 4]}"`, as the thesis.
#    Are the t-intervals over folds wider or narrower than the bootstrap
#    intervals of one fold? (Four new runs per task.)

# %% tags=["hide-input"]
chapters.show_run_times(records)

# %% [markdown]
# ## Exercises
#
# ```{exercise} Reading balanced accuracy
# :label: ex-single-bca
#
# One task in this chapter shows high accuracy but balanced accuracy near 50 %.
# What does the network do on it? Which of sensitivity or specificity is near 1?
# ```
#
# ```{solution} ex-single-bca
# :class: dropdown
#
# It answers the majority class (negative) almost always: specificity near 1,
# sensitivity near 0. Balanced accuracy reveals it; accuracy hides it.
# ```
#
# ```{exercise} More epochs (runnable, smoke profile)
# :label: ex-single-epochs
#
# Execute this chapter on the smoke profile with more epochs:
# `papermill notebooks/02_single_task.ipynb out.ipynb -p profile smoke -p epochs 4`
# (make the `.ipynb` once with `jupytext --to ipynb`; a few minutes on a laptop).
# Does balanced accuracy change, and by more than its confidence interval?
# ```
#
# ```{solution} ex-single-epochs
# :class: dropdown
#
# A correct answer compares the two tables' balanced accuracies with their
# intervals; on the smoke profile (150 patients) the intervals are wide, so a
# change inside them is not evidence either way.
# ```
#
# ```{exercise} Why single-task runs matter
# :label: ex-single-upper
#
# Why is a network trained on one task alone the reference for forgetting in the
# next chapters?
# ```
#
# ```{solution} ex-single-upper
# :class: dropdown
#
# It is what the network reaches on that task with nothing else to remember: the
# accuracy a continual learner would ideally keep. Forgetting and transfer are
# measured against it.
# ```
