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
# learning rate and stopping rule: train until the validation criterion has
# not improved for a number of evaluations, the *patience*, up to a cap of
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
select = "balanced_loss"  # the checkpoint each run keeps: balanced_loss | loss | balanced_accuracy | auc
workers = None  # runs computed at once, one CPU core each (None: every usable core; `lungcl book --workers`)

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from lungcl import baselines, plots, summaries, thesis
from lungcl.chapter import kept, runs as chapter_runs, say
from lungcl.chapter import single_task as story
from lungcl.chapter.setup import chapter_setup
from lungcl.data.tasks import resolve_tasks

ctx = chapter_setup(profile, source, data_dir, results_dir, seed, tasks=tasks, epochs=epochs, folds=folds,
                    workers=workers, select=select)
task_names = [t.name for t in resolve_tasks(tasks)]
configs = chapter_runs.single_task_chapter(ctx, tasks=tasks, folds=folds, epochs=epochs, select=select)
records = chapter_runs.run_configs(configs, ctx.results_dir, workers).records
chapter_runs.show_run_card(ctx, records)  # how this page was computed

# %% [markdown]
# ## The runs and the data they see
#
# One run per task (and fold): a new network, initialised from the seed, with
# one head, trained on that task's training patients; one checkpoint is kept,
# chosen on the validation patients by the rule stated below the table, and
# measured on the test patients. The minority class is up-sampled during
# training, as in the thesis.

# %% tags=["hide-input"]
display(summaries.settings_table(records).style.set_caption(
    f"Training settings ({ctx.profile} profile, {len(folds)} fold(s), seed {ctx.seed})"))
baseline = pd.concat([summaries.majority_baseline(r) for r in records]).groupby(level=0, sort=False).first()
display(baseline.style.format({"positive_share": "{:.1%}", "majority_accuracy": "{:.1%}"})
        .set_caption(f"Test nodules per task ({records[0].data['provenance']['source']} patches)"))
say(kept.rule_sentence(records))

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
display(summaries.page_table(story.single_view(single, baseline), "Each task alone: test set, percent [95 % interval]"))
plots.single_task_bars(single, majority=baseline.majority_accuracy.to_dict())
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
display(summaries.page_table(story.reference_comparison(single, geometry, readers),
                             f"The network beside its references: test set, percent "
                             f"({len(folds)} fold(s); CNN with its 95 % interval)"))
display(Markdown(story.reference_verdicts(single, geometry, readers)))

# %% [markdown]
# ## What the numbers say

# %% tags=["hide-input"]
display(Markdown(story.task_sentences(single, baseline)))
say(story.thesis_level_sentence(single))
display(Markdown(story.STARTING_LEVEL))

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
chapter_runs.show_run_times(records)

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
