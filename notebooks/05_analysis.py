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
#    every task seen so far and trains on all of it at each stage (the usual
#    upper reference, since it never has to remember; a reference, not a
#    bound: the numbers below say where it ends), and each task trained
#    *alone* (the single-task chapter).
# 4. **Which Fisher?** EWC with the exact Fisher against the three
#    approximations in use (a sampled label, the true label, squared batch
#    gradients), each at the lambda validation chose for it, over three seeds.
# 5. **Why the network forgets**: BatchNorm's statistics updated, frozen or
#    kept per task, or GroupNorm, which has none; and after every stage a
#    linear probe of each earlier task's features and its head re-thresholded,
#    which split what a task lost into representation, calibration and the rest.
# 6. **Online EWC**, which keeps one running Fisher with a decay instead of one
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
fisher_variants = ["sampled", "empirical", "batched"]  # EWC again with these Fishers ([]: skip the section)
variant_seeds = None  # seeds of the Fisher comparison (None: seed, seed + 1, seed + 2, as the sequence chapter)
normalisations = ["update", "freeze", "task", "group"]  # BatchNorm statistics updated / frozen / per task; GroupNorm
norm_methods = None  # methods run under every normalisation (then probed) at their default lambda; None: the profile's
norm_seeds = None  # their seeds (None: seed, seed + 1, seed + 2)
epochs = None  # epochs per stage (None: the profile default)
folds = [0]  # cross-validation folds (0-4)
select = "balanced_loss"  # the checkpoint each stage keeps: balanced_loss | loss | balanced_accuracy | auc
workers = None  # runs computed at once, one CPU core each (None: every usable core; `lungcl book --workers`)

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from lungcl import plots, summaries, thesis
from lungcl.chapter import analysis as story, runs as chapter_runs
from lungcl.chapter.setup import chapter_setup
from lungcl.chapter.tune_provenance import tune_provenance_sentence, tune_spread_lines
from lungcl.experiments import tuned

ctx = chapter_setup(profile, source, data_dir, results_dir, seed, tasks=tasks, ewc_factors=ewc_factors,
                    l2_factors=l2_factors, online_gamma=online_gamma, frozen_bn=frozen_bn,
                    fisher_variants=fisher_variants, variant_seeds=variant_seeds,
                    normalisations=normalisations, norm_methods=norm_methods, norm_seeds=norm_seeds,
                    epochs=epochs, folds=folds, workers=workers, select=select)
plan = chapter_runs.analysis_chapter(ctx, tasks=tasks, folds=folds, epochs=epochs, ewc_factors=ewc_factors,
                                 l2_factors=l2_factors, online_gamma=online_gamma, frozen_bn=frozen_bn,
                                 fisher_variants=fisher_variants, variant_seeds=variant_seeds, select=select,
                                 normalisations=normalisations, norm_methods=norm_methods, norm_seeds=norm_seeds)
ewc_default, l2_default = plan.ewc_default, plan.l2_default
task_names = list(plan.references[0].tasks)
runs = chapter_runs.run_configs(plan.all, ctx.results_dir, workers, allow_failures=True, probed=plan.probed)
records = runs.records
chapter_runs.show_run_card(ctx, runs)  # how this page was computed
sequence_records = [r for r in plan.records_of(records, "main") if r.config.kind == "sequence"]
frozen_records, variant_records = plan.records_of(records, "frozen_bn"), plan.records_of(records, "variants")
failed = {(cfg.method, cfg.strength): msg for cfg, msg in runs.failed.values()}
chapter_runs.show_failures(runs)

# %% [markdown]
# ## Where the default lambdas come from
#
# Each profile's default lambda per method is not a guess: on the cpu profile
# it is the pick of `lungcl tune --order ABC --method M --profile cpu --seeds 0-2`
# (fold 0), which trains the whole sequence at every decade of lambda (EWC and
# online EWC 1 to 10^6, L2 10^-3 to 10^3) at each seed and picks the lambda with
# the best mean final balanced accuracy on the **validation** split, averaged
# over the seeds; test data is never read. The tune records ship with the
# package (`lungcl/reference/tuned/`), so this figure is drawn from them rather
# than re-trained (about 60 runs); each panel's title names its seeds, and the
# lines below say how sharply the seeds pick.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per penalised method, on the validation split: the earlier tasks', the last task's and the mean final balanced accuracy against lambda on a log axis, the picked lambda circled."}}
shipped = tuned.reference_tunes(profile)
if shipped:
    plots.tune_curves(shipped)
    plt.show()
    provenance = tune_provenance_sentence(shipped, plan.references[0]) or "These tunes were made under this book's rules."
    display(Markdown("\n\n".join([provenance, "\n".join(tune_spread_lines(shipped))])))
else:
    display(Markdown(f"No tune record ships for the {profile} profile: its lambdas are starting points."))

# %% [markdown]
# ## The stability-plasticity trade-off
#
# For each lambda, the left panels show the balanced accuracy after the last
# stage of the earlier tasks (their mean: stability) and of the last task
# (plasticity); the dashed lines are plain SGD, lambda = 0. The right panel
# puts the two against each other: a method is better when its points lie
# further up and to the right, and the labels say which lambda got there.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per penalised method, earlier tasks' and the last task's final balanced accuracy against the penalty strength lambda, with SGD as dashed lines; and old against new balanced accuracy in one plane, diverged runs as crosses."}}
tradeoff = summaries.tradeoff_table(sequence_records, metric="balanced_accuracy")
plots.lambda_tradeoff(tradeoff[tradeoff.method.isin(story.THESIS_THREE)], failed)
plt.show()
display(story.tradeoff_view(tradeoff).style.format("{:.1%}").set_caption(
    "Final test balanced accuracy after the whole sequence (mean over the tasks of each group)"))

# %% tags=["hide-input"]
# lambda is CHOSEN on the validation split (mean final balanced accuracy over the tasks, the criterion of
# `lungcl tune`); the test numbers are only reported for the chosen value
chosen_on_val = summaries.tradeoff_table(sequence_records, split="val", metric="balanced_accuracy")
display(Markdown(story.lambda_sentences(tradeoff, chosen_on_val, l2_default, ewc_default)))
display(Markdown(story.LAMBDA_CAVEAT))

# %% [markdown]
# ## What EWC protects
#
# After each task EWC stores the diagonal of the Fisher information
# $F_i$ of every weight: how much the task's log-likelihood changes when the
# weight moves. Its penalty $\frac{\lambda}{2} \sum_i F_i (\theta_i -
# \theta^*_i)^2$ makes weights with a large $F_i$ stiff and leaves the others
# free. The Fisher is averaged over a class-balanced sample of the task's
# un-augmented training nodules (`fisher_samples` of them, half per class, the
# rarer class repeated when it has fewer), so that it weighs the two classes as
# the up-sampled training batches did rather than by the majority class. Below, from the EWC run at the default lambda: the share of each
# task's Fisher mass per layer (where the task's knowledge sits, in EWC's
# eyes), the mean Fisher per weight, and how far each method moved each layer
# away from the network after the first stage (which is the same network for
# all three methods: the first stage has no penalty and the same seed).

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per layer of the network: each task's share of the Fisher information, the mean Fisher per weight on a log scale, and how far each method moved each layer's weights."}}
fisher, drift = story.fisher_and_drift(sequence_records, task_names, l2_default, ewc_default, folds[0])
plots.fisher_per_layer(fisher[fisher.task != task_names[-1]], drift)
plt.show()

# %% tags=["hide-input"]
same_start = story.same_first_stage(sequence_records, l2_default, ewc_default, folds[0])
display(Markdown(story.fisher_sentences(fisher, drift, task_names[0], l2_default, ewc_default, same_start)))

# %% [markdown]
# ## Which Fisher?
#
# EWC's Fisher is an expectation over the labels *the model* would give:
# $F = \mathbb{E}_x \sum_y p(y \mid x) \, (\nabla \log p(y \mid x))^2$. For a
# two-class head it has a closed form, one per-sample gradient of the logit
# difference weighted by $p(1-p)$, and that **exact** Fisher is what our
# EWC uses. Three cheaper stand-ins are common (see the theory chapter and
# van de Ven, 2025, who compares them the same way): one **sampled** label per
# input (Kirkpatrick et al.'s recipe and our former default), the **empirical**
# Fisher with the true label, and **batched**, the square of mini-batch
# gradients (what Avalanche and FACIL compute), whose scale shrinks with the
# batch size. A Fisher's scale and λ trade against each other, so each
# variant is compared at the λ that `lungcl tune` chose *for it* on the
# validation split (ABC, fold 0, seed 0; its curve is below), then run with
# the same seeds as the sequence chapter's exact-Fisher EWC.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per Fisher variant, on the validation split: the earlier tasks', the last task's and the mean final balanced accuracy of EWC against lambda on a log axis, the picked lambda circled."}}
shipped_variants = tuned.variant_tunes(profile, fisher_variants)
if shipped_variants:
    plots.tune_curves(list(shipped_variants.values()))
    plt.show()

# %% tags=["hide-input"]
distances = story.show_fisher_variants(variant_records, task_names[0], plan.variant_strengths, plan.variant_tuned)

# %% [markdown]
# How far each stand-in lies from the exact Fisher, layer by layer. All of
# them are the Fisher of the first task at the *same* network (the one after
# the first stage, which no penalty has touched yet), so the difference is
# the estimator's alone: the relative distance $\lVert F_v - F \rVert /
# \lVert F \rVert$ (1 is as far as the exact Fisher is from zero) and the
# correlation across the layer's weights (1: the same shape, whatever the
# scale), each the mean over the seeds.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per layer, for the sampled, empirical and batched Fisher of the first task: the relative distance to the exact Fisher on a log axis, and the correlation with it."}}
if distances is not None:
    plots.fisher_variant_distance(distances)
    plt.show()

# %% [markdown]
# ## Where the forgetting comes from: BatchNorm's statistics
#
# A batch-normalisation layer normalises with the mean and variance of its
# inputs; in training mode it keeps *running* estimates of them, which the
# network uses at test time. They are buffers, not weights: no gradient, and
# so no L2 or EWC penalty, touches them, and each stage re-estimates them on
# its own task's images. Below, the three methods run once more with those
# statistics frozen after the first stage (BatchNorm's scale and shift still
# learn). If the balanced accuracy of the earlier tasks then stays up, the forgetting
# above was largely a shift of the statistics the old heads were calibrated
# to, not lost knowledge. The AUC column is a second witness: it does not
# depend on where the decision threshold lies, so a task whose AUC stays high
# while its accuracy collapses still has its features, but its head's
# threshold no longer fits them.

# %% tags=["hide-input"]
if frozen_records:
    updated = story.default_runs(sequence_records, l2_default, ewc_default, methods=story.THESIS_THREE)
    bn_table = story.batchnorm_table(updated, frozen_records, task_names[-1], metric="balanced_accuracy")
    display(bn_table.style.format("{:.1%}").set_caption(
        "Updated or frozen BatchNorm statistics: final test balanced accuracy, forgetting (balanced accuracy "
        "points) and the earlier tasks' final balanced accuracy and AUC"))
    display(Markdown(story.batchnorm_sentence(bn_table)))
else:
    display(Markdown(story.BATCHNORM_NOT_RUN))

# %% [markdown]
# ## Why the network forgets: normalisation, features and heads
#
# The frozen statistics above are one cure for the *cross-task normalisation
# effect* (see the theory chapter); two others are one set of BatchNorm
# statistics per task, selected by the head being evaluated, and GroupNorm,
# which normalises each image by itself and keeps no statistics at all. Each
# method of `norm_methods` runs under every normalisation, with several seeds
# (the updated statistics are the sequence chapter's runs, not trained again),
# and each run is probed from the weights it kept at every stage: there, each
# earlier task gets a linear
# probe on the frozen features (what the representation still holds) and its
# own head with the decision threshold refitted on the task's validation
# patients (what calibration alone gives back, counted beyond what it gave
# back at the task's own stage). The balanced accuracy a task lost from the
# end of its own stage to the end of the sequence is split into those two
# parts and the rest, each read with its interval over the seeds. The cpu book runs SGD and EWC, the two ends
# of forgetting; the paper profile (or `-y "norm_methods: [sgd, l2, ewc,
# online_ewc, joint]"`) adds L2, online EWC and joint, twelve runs each.

# %% tags=["hide-input"]
norm_summary = story.show_normalisation(plan.records_of(records, "normalisation"))

# %% tags=["hide-input"] mystnb={"image": {"alt": "Per method, one bar per normalisation: the balanced accuracy the earlier tasks lost by the end of the sequence, split into representation, calibration and the rest, the whole loss as a black tick."}}
if norm_summary is not None:
    plots.forgetting_split_bars(norm_summary, story.NORMALISATION_LABELS)
    plt.show()

# %% [markdown]
# ## Joint training, each task alone, and online EWC
#
# Every method on one figure, after the last stage: the sequential methods at
# their default lambda, online EWC (decay `online_gamma`), joint training
# (the data of every earlier task stays available: the usual upper
# reference for remembering, not a bound), and each task trained alone (the black ticks: what the
# network learns of a task with nothing else to learn).

# %% tags=["hide-input"] mystnb={"image": {"alt": "Grouped bars after the last stage: each task's accuracy and balanced accuracy for every method and lambda, with each task trained alone as a black line."}}
defaults = story.default_runs(sequence_records, l2_default, ewc_default)
table = thesis.stage_table_with_thesis(defaults, metrics=["accuracy", "balanced_accuracy"])
alone_table = summaries.single_task_table([r for r in records if r.config.kind == "single_task"])
plots.metric_bars(table, metrics=("accuracy", "balanced_accuracy"), stages=[-1],
                  reference={m: alone_table[m].to_dict() for m in ("accuracy", "balanced_accuracy")},
                  title="After the last stage: every method, and each task alone (black)")
plt.show()
transfer = thesis.transfer_with_thesis(defaults)
display(summaries.page_table(
    thesis.transfer_side_by_side(transfer),
    "Average final accuracy, forgetting and BWT of every method (percent; thesis where it has the run)"))

# %% tags=["hide-input"]
display(Markdown(story.reference_notes(summaries.transfer_table(defaults, metric="balanced_accuracy"), online_gamma)))

# %% [markdown]
# ## Try it
#
# 1. **A finer sweep** around the best lambda: `-y "{ewc_factors: [3, 10, 30, 100]}"`.
#    (Two new runs: 10 and 100 are there already.)
# 2. **Forgetful online EWC**: `-p online_gamma 0.5`. Does the first task fade?
#    (One new run.)
# 3. **Another order**: `-p tasks CBA`. Does the best lambda depend on which
#    task comes first? (About ten new runs, the whole chapter.)
# 4. **Fewer seeds for the Fisher comparison**: `-y "{variant_seeds: [0]}"`
#    leaves no interval: what can the table still say?
# 5. **The Fisher of another task**: the table `fisher` holds every task's
#    Fisher per layer; compare `fisher[fisher.task == "lobulation"]` with the
#    first task's. Do the tasks lean on the same layers?

# %% tags=["hide-input"]
chapter_runs.show_run_times(records)

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
