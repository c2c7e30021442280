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
# # The ABC sequence: SGD, L2 and EWC
#
# The thesis's main experiment. One network with a shared trunk and one head
# per task learns **A = malignancy**, then **B = lobulation**, then
# **C = calcification**. Each stage trains only the current task's data; the
# earlier tasks' data are gone. Three ways of training are compared:
#
# - **SGD**: plain fine-tuning; nothing protects the earlier tasks;
# - **L2**: every weight is pulled back towards its value after the previous
#   task, all equally hard;
# - **EWC**: every weight is pulled back in proportion to how much the earlier
#   tasks depend on it (its Fisher information).
#
# Two references bound them, run with the same seeds, folds and selection:
#
# - **frozen trunk**: after the first task nothing shared moves any more (the
#   trunk, its BatchNorm statistics and the first head are fixed); each later
#   task trains only its own head on the first task's features. It keeps the
#   first task exactly, at whatever cost to the later ones;
# - **joint**: each stage trains on the data of every task seen so far, which
#   the continual methods are not allowed to do.
#
# The chapter follows the thesis's section 4.4: the accuracy of every task
# during the whole sequence (its Fig. 4.20-4.23), the accuracy, sensitivity and
# specificity of every seen task after each stage (its Tables 4.1-4.6), and the
# accuracy matrix (its Table 4.7), with our confidence intervals and the
# thesis's numbers beside ours. It then measures forgetting as a number, and
# asks where we differ from the thesis and why.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: same settings are loaded, not re-run
seed = 0  # network initialisation and data order
seeds = None  # the repeated runs of each method (None: seed, seed + 1, seed + 2)
tasks = "ABC"  # the task order: ABC, CBA, ... or e.g. spiculation,margin,texture
method = "all"  # all (sgd, l2 and ewc) or some of them, e.g. ewc or sgd,ewc
references = "frozen,joint"  # the references run beside them: frozen, joint, both, or "" (none)
l2_lambda = None  # L2 strength (None: the profile default)
ewc_lambda = None  # EWC strength (None: the profile default)
epochs = None  # epochs per stage (None: the profile default)
folds = [0]  # cross-validation folds (0-4); the thesis averages all five
select = "balanced_loss"  # the checkpoint each stage keeps: balanced_loss | loss | balanced_accuracy | auc
workers = None  # runs computed at once, one CPU core each (None: every usable core; `lungcl book --workers`)

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from lungcl import plots, summaries, thesis
from lungcl.chapter import kept, pct, runs as chapter_runs, say
from lungcl.chapter import references as bounds
from lungcl.chapter import sequence as story
from lungcl.chapter.setup import chapter_setup

ctx = chapter_setup(profile, source, data_dir, results_dir, seed, seeds=seeds, tasks=tasks, method=method,
                    references=references, l2_lambda=l2_lambda, ewc_lambda=ewc_lambda, epochs=epochs, folds=folds,
                    workers=workers, select=select)
run_seeds = chapter_runs.chapter_seeds(ctx.seed, seeds)
configs = chapter_runs.sequence_chapter(ctx, tasks=tasks, method=method, folds=folds, epochs=epochs,
                                   l2_lambda=l2_lambda, ewc_lambda=ewc_lambda, seeds=seeds, references=references,
                                   select=select)
runs = chapter_runs.run_configs(configs, ctx.results_dir, workers, allow_failures=True)
records = runs.records  # one record per method, fold and seed: loaded, or computed now
chapter_runs.show_run_card(ctx, runs)  # how this page was computed
order = thesis.thesis_order(records[0].tasks)  # "ABC" etc., None for other tasks
task_names = records[0].tasks
chapter_runs.show_failures(runs)

# %% [markdown]
# ## The runs
#
# Every run below is a record in the results folder, named by a hash of its
# settings: asking for the same settings again loads it. The settings come
# from the profile (printed here), with the parameters of this chapter on
# top. The thesis trained a ResNet-101 and averaged five folds; the `cpu`
# profile is a much smaller network, sized so that the whole book runs on a
# laptop. Each stage trains until its validation criterion (stated with the
# curves below) has stopped improving (the patience, in evaluations) or the
# epoch cap is reached.
#
# Every method is run several times, with different seeds (the network's
# initialisation and the order of the training batches; the patients are the
# same). A single run cannot tell a difference between methods from the
# difference between two seeds of one method: every number below is the mean
# over the runs, with a 95 % Student-t interval over them (the runs' spread,
# which includes the test set's sampling only as far as the runs differ).

# %% tags=["hide-input"]
display(summaries.settings_table(records).style.set_caption(
    f"Training settings ({ctx.profile} profile, {len(folds)} fold(s), seeds {', '.join(map(str, run_seeds))})"))
baseline = summaries.majority_baseline(records[0])
display(baseline.style.format({"positive_share": "{:.1%}", "majority_accuracy": "{:.1%}"})
        .set_caption(f"Test nodules per task ({records[0].data['provenance']['source']} patches)"))
say(story.majority_sentence(baseline))

# %% [markdown]
# ## Every task during the whole sequence (Fig. 4.20-4.23)
#
# One panel per task, in training order; the x-axis is the training step over
# the three stages, whose boundaries are the dashed lines. A task appears from
# its own stage on (before it, its head has never been trained). A method that
# remembers keeps the earlier panels' lines flat after their stage; a method
# that forgets sees them drop as soon as the next stage starts. Each stage
# keeps one checkpoint, chosen on validation (the rule is stated after the
# figures): the filled dots mark it, and its values are the ones in the tables;
# the next stage starts from it, so a curve may jump back at a stage boundary.
# The hollow diamonds are the thesis's values after each stage, and the
# dotted line is what "always the majority class" would score.

# %% tags=["hide-input"] mystnb={"image": {"alt": "One panel per task in training order: its test accuracy during the whole sequence for each method, with stage boundaries as dashed lines, the thesis's values as hollow diamonds and the majority-class level dotted."}}
fig = plots.accuracy_curves(records, "accuracy")
plt.show()

# %% [markdown]
# The same curves in **balanced accuracy**, where a network that answers one
# class for every nodule sits at 50 % whatever the class mix:

# %% tags=["hide-input"] mystnb={"image": {"alt": "The same panels in balanced accuracy: each task's test balanced accuracy during the sequence for each method, with chance level (0.5) dotted."}}
fig = plots.accuracy_curves(records, "balanced_accuracy", thesis=False, majority=False)
for ax in fig.axes:
    ax.axhline(0.5, color="0.5", ls=":", lw=1.2)
plt.show()
say(kept.rule_sentence(records))
kept_stages = kept.kept_table(records)
display(summaries.page_table(kept_stages, "The kept checkpoints: each stage's step and its task's validation "
                                          "balanced accuracy there (percent; mean and lowest over the runs)",
                             {"val balanced accuracy": pct, "lowest": pct, "kept step (mean)": "{:.0f}"}))
say(kept.kept_sentence(kept_stages))

# %% [markdown]
# ## After each stage (Tables 4.1-4.6)
#
# The thesis reports accuracy, sensitivity and specificity of every task seen
# so far after each stage. Our values are the mean over the runs (seeds and
# folds), followed by the 95 % t-interval over them (with a single run: a
# bootstrap over test patients); the thesis's number is in the next column
# where it published one.

# %% tags=["hide-input"]
stage_table = thesis.stage_table_with_thesis(records)
for stage, trained in enumerate(task_names):
    display(summaries.page_table(
        thesis.stage_side_by_side(stage_table, stage),
        f"After stage {stage + 1} (trained: {trained}): test set, percent [95 % interval]"))

# %% [markdown]
# The same numbers as bars, one row per stage, with the thesis's values as
# hollow diamonds:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Grouped bars: every task seen so far after each training stage, for each method, in test accuracy, balanced accuracy, sensitivity and specificity, with intervals."}}
fig = plots.metric_bars(stage_table, title="Every seen task after each stage (test set)")
plt.show()

# %% [markdown]
# ## The accuracy matrix (Table 4.7)
#
# Row *i* of the matrix is the accuracy of every task after stage *i*; the
# diagonal is each task just after it was learned, and what lies below the
# diagonal is what the later stages did to it. Table 4.7 of the thesis lists
# the same numbers by task and method.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Heat maps, one per method: test accuracy of each task (columns) after each training stage (rows), with the thesis's matrices below when available."}}
matrix = thesis.matrix_side_by_side(records)
display(summaries.page_table(
    matrix, "Test accuracy (%) of each task (rows) after each stage (columns): ours and the thesis's", pct))
plots.matrix_heatmaps(records)
plt.show()

# %% [markdown]
# ## Forgetting and transfer
#
# Three numbers summarise a matrix $R$ (rows: stages, columns: tasks, $T$
# tasks): the **average final accuracy** $\frac1T\sum_j R_{T,j}$; the
# **forgetting** of an earlier task $j$, its best accuracy at any stage
# minus its final one, $\max_{l<T} R_{l,j} - R_{T,j}$ (0 = nothing lost);
# and the **backward transfer** $\mathrm{BWT} = \frac{1}{T-1}\sum_{j<T}
# (R_{T,j} - R_{j,j})$, negative when the later stages hurt the earlier tasks.
# The thesis did not compute them; its column applies the same formulas to its
# Table 4.7.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Bars per method of average final accuracy, forgetting of each earlier task and backward transfer, with intervals and the thesis's values as diamonds."}}
transfer = thesis.transfer_with_thesis(records)
display(summaries.page_table(
    thesis.transfer_side_by_side(transfer),
    "Average final accuracy, forgetting and BWT (percent; ours with 95 % interval where known)"))
plots.transfer_bars(transfer)
plt.show()
display(Markdown(story.interval_sentence(transfer)))

# %% [markdown]
# On an imbalanced task, accuracy exaggerates forgetting as much as it
# flatters learning: a network that turns to answering *positive* for every
# nodule loses almost all of its accuracy on a task with 5 % positives, and
# one that turns to *negative* loses none. The same summaries in **balanced
# accuracy** (the thesis has no counterpart):

# %% tags=["hide-input"] mystnb={"image": {"alt": "The same bars in balanced accuracy: average final balanced accuracy, forgetting of each earlier task and backward transfer per method."}}
transfer_bal = summaries.transfer_table(records, metric="balanced_accuracy")
display(summaries.page_table(
    thesis.transfer_side_by_side(transfer_bal),
    "Average final balanced accuracy, forgetting and BWT in balanced accuracy (percent)"))
fig = plots.transfer_bars(transfer_bal)
fig.suptitle("The same in balanced accuracy", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## EWC between its references
#
# Where does EWC sit between doing nothing for the old tasks (SGD) and
# freezing everything they use (the frozen trunk), and where against joint
# training? Three numbers per run, in balanced accuracy on the test set: the
# average over the tasks at the end, the first task at the end (what was
# kept) and the later tasks at the end (what the network could still learn).
# Two methods are compared run by run (the same seed gives them the same
# initialisation and the same first stage), with a 95 % t-interval of the
# differences over the runs; the sentence below the figure is computed from
# them.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Each run as a dot: the first task's final balanced accuracy (kept) against the later tasks' (learned), per method and reference, with each method's mean as a large dot and chance dotted."}}
bound_runs = bounds.run_measures(records)
display(summaries.page_table(bounds.bounds_view(bounds.bounds_table(bound_runs)),
                             "Final balanced accuracy (percent, mean [95 % t-interval over runs]): the methods "
                             "and their references"))
fig = plots.bounds_plane(bound_runs, task_names[0])
plt.show()
display(Markdown(bounds.between_sentence(bound_runs, task_names)))

# %% [markdown]
# ## Where we agree with the thesis, and where we do not
#
# The thesis's four findings (chapter 4.4.3), checked against our runs. The
# sentences below are computed from the records, not written by hand.

# %% tags=["hide-input"]
findings_table, findings_text = story.findings_section(records)
if findings_table is not None:
    display(findings_table)
display(Markdown(findings_text))
display(Markdown(story.sequence_notes(stage_table, baseline, order, len(task_names), len(folds), len(run_seeds))))

# %% [markdown]
# ## Try it
#
# Each exercise changes the parameters cell (in Jupyter, or with
# `papermill notebooks/03_sequence_ABC.ipynb out.ipynb -p NAME VALUE`). Runs
# whose settings are already in the results folder are loaded; only new
# settings are trained. The table after the exercises gives the measured
# time of each run of this chapter.
#
# 1. **A stiffer or softer EWC**: `-p method ewc -p ewc_lambda 1000000` (then 1),
#    the two ends of the grid the default was tuned on.
#    Does task A hold better, and what happens to task C? (One new run per seed each.)
# 2. **Another order**: `-p tasks CBA`. Does calcification, learned first,
#    survive better than malignancy did? (Five new runs per seed, the references
#    included; the task-order chapter runs all six orders.)
# 3. **Other questions**: `-p tasks spiculation,margin,texture`. The thesis has
#    no numbers for these; do the methods rank the same way? (Five new runs per seed.)
# 4. **Less training**: `-p epochs 2` caps every stage at two epochs, short
#    of the plateau. Does SGD forget less when it trains less on each new
#    task, and do the verdicts change? (Five new runs per seed.)
# 5. **Several folds**: `-y "{folds: [0, 1, 2]}"` adds the fold-to-fold spread
#    to the t-intervals, as the thesis averaged five folds. (Two new runs per
#    method, reference and seed.)
# 6. **Without the references**: `-p references ""` runs the three methods
#    only (nothing new: their runs are loaded).

# %% tags=["hide-input"]
chapter_runs.show_run_times(records)

# %% [markdown]
# ## Exercises
#
# ```{exercise} Forgetting from the matrix
# :label: ex-abc-forgetting
#
# From this chapter's accuracy matrix for SGD, compute by hand the forgetting of
# task A: its accuracy just after stage A minus its accuracy at the end. Check
# it against the chapter's forgetting table.
# ```
#
# ```{solution} ex-abc-forgetting
# :class: dropdown
#
# Forgetting of A = R[A after A] - R[A after C]; a correct answer matches the
# chapter's value to the printed precision.
# ```
#
# ```{exercise} A stronger EWC (runnable, smoke profile)
# :label: ex-abc-lambda
#
# Re-run with `-p profile smoke -p method ewc -p ewc_lambda 300` (papermill, a
# few minutes). Does the forgetting of A fall? What happens to the last task's
# accuracy?
# ```
#
# ```{solution} ex-abc-lambda
# :class: dropdown
#
# Typically forgetting falls while the last task's balanced accuracy drops: the
# stability-plasticity trade-off of the theory chapter. If neither moves beyond
# the intervals, say so: that is also a correct answer on the smoke data.
# ```
#
# ```{exercise} Why are the results mixed?
# :label: ex-abc-why-mixed
#
# Give two reasons from the theory chapter why EWC might not beat SGD clearly
# here, although it does in the first demo.
# ```
#
# ```{solution} ex-abc-why-mixed
# :class: dropdown
#
# For example: the diagonal Fisher ignores correlations between weights; the
# Laplace approximation is local and the network moves far; BatchNorm statistics
# are not protected; λ is chosen on a small validation set; the tasks may
# interfere little, leaving little to protect.
# ```
