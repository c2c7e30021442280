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
# # Multi-task sharing with gated blocks
#
# Continual learning shares one network across tasks learned one after the
# other. Multi-task learning shares it across tasks learned together. This
# chapter trains a network with one branch per characteristic and *gated
# blocks* that learn how much each task borrows from the others (after
# Coppola et al., "Interpreting mechanisms of prediction for skin cancer
# diagnosis using multi-task learning", CVPR 2020 workshops), and reads the
# learned fusion weights as a task-by-task *sharing degree*. A radiologist's
# nine LIDC characteristics are a checklist like the dermatologist's 7-point
# checklist, so we ask the same question of them: which characteristics share
# features, does the answer depend on how the question is posed (binary or
# multi-class, many or few parameters), and does it say anything about which
# task orders forget least in the continual-learning chapters?

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: runs with the same settings are loaded, not re-run
seed = 0
tasks = "all"  # the characteristics to learn together
epochs = None  # None: the profile default
fusion_init = 100.0  # start of the fusion on a task's own maps: 100 the source's, 1 the normalised one
optimizer = "adam"  # adam | sgd
sgd_comparison = True  # one more run: the binary setting with plain SGD (the fusion's start then matters)
single_task_baselines = True  # one single-branch network per task (nothing to share)
fold = 0
select = "balanced_loss"  # the epoch each run keeps (mean over tasks): balanced_loss | loss | balanced_accuracy | auc
workers = None  # runs trained at once, one CPU core each (None: every usable core; `lungcl book --workers`)

# %%
import warnings

import matplotlib.pyplot as plt
from IPython.display import display

from lungcl.chapter import multitask as story
from lungcl.chapter import runs as chapter_runs
from lungcl.chapter import kept, say
from lungcl.chapter.runs import multitask_chapter
from lungcl.chapter.setup import chapter_setup
from lungcl.mtl.compare import metric_table, run_all, run_overview, single_task_column
from lungcl.mtl.sharing import (forgetting_vs_sharing, plot_sharing, plot_sharing_grid, sharing_summary,
                                short_names, top_pairs)
from lungcl.plots import multitask as figures

warnings.filterwarnings("ignore", category=UserWarning)
ctx = chapter_setup(profile, source, data_dir, results_dir, seed, tasks=tasks, epochs=epochs,
                    fusion_init=fusion_init, optimizer=optimizer, sgd_comparison=sgd_comparison,
                    single_task_baselines=single_task_baselines, fold=fold, workers=workers, select=select)
base, configs, alone_configs = multitask_chapter(  # the comparison's runs and each task's single-task baseline
    ctx, tasks=tasks, epochs=epochs, fusion_init=fusion_init, optimizer=optimizer, sgd_comparison=sgd_comparison,
    single_task_baselines=single_task_baselines, fold=fold, select=select)
print(f"profile {ctx.profile}, source {ctx.source}, {len(base.tasks)} tasks, {base.epochs} epochs")
# every run of the chapter at once, the single-task baselines (one per task) included
done = run_all(list(configs.values()) + list(alone_configs.values()), str(ctx.results_dir), workers)
chapter_runs.show_run_card(ctx, done)  # how this page was computed

# %% [markdown]
# ## The network
#
# Every task $t$ has its own convolutional branch: a stem and one
# pre-activation residual block per stage (BN-ReLU-conv twice, as in the
# rest of the book), three stages that halve the resolution and double the
# channels. After each stage a **gated block** joins the $T$ branches. It
# stacks their maps ($T \times C$ channels), batch-normalises them, and gives
# every task $t$ its own mix
#
# $$ \mathrm{out}_t = \sum_{s=1}^{T} \sigma(a_{ts})\, W_{ts}\, \mathrm{BN}(x)_s , $$
#
# where $x_s$ are task $s$'s $C$ maps, $W_{ts}$ is a $C \times C$ block of a
# $1 \times 1$ convolution and $\sigma(a_{ts})$ a learnable gate: a yes/no
# choice "does task $t$ use task $s$?" relaxed by a sigmoid so that it can be
# learned by gradient descent. The source starts $W_{tt}$ at $100 \cdot I$ and
# every other block at 0, so at step 0 every task sees only its own maps: $T$
# independent networks. Each task ends in a head (BN-ReLU, $1\times1$
# convolution, global average pooling, a fully connected layer).
#
# **Sharing degree.** For each gated block, $d_{ts}$ is the mean absolute
# value of the gated block $\sigma(a_{ts}) W_{ts}$, and
# $S_{ts} = d_{ts} / \sum_{s'} d_{ts'}$: the share of task $t$'s fused input
# that comes from task $s$ (each row sums to 1; $S = I$ at the start). The
# "overall" matrix is the mean over the three blocks. $1 - S_{tt}$ is how much
# task $t$ *borrows*.
#
# **The initial value 100 is not innocent.** Everything that reads a gated
# block's output starts with batch normalisation, so multiplying a row of
# fusion weights by any constant does not change what the network computes
# (the book's tests check that initialisations 100 and 1 give the same
# outputs). It does change how the weights learn: for a weight that the loss
# only sees through a normalisation, the gradient shrinks like one over the
# weight's size, so with plain SGD a fusion that starts at 100 moves about
# $100^2$ times more slowly, relative to its size, than one that starts at 1.
# Adam divides each step by the gradient's own running size, so its steps do
# not shrink. We keep the source's 100 and train with Adam (learning rate
# $10^{-3}$, L2 penalty $10^{-5}$), and show one run with the book's plain SGD
# to make the point visible. (The source's optimiser is not stated in the
# review we follow.)

# %% tags=["hide-input"]
display(story.network_sizes(base).style.set_caption(f"The networks of this chapter for {len(base.tasks)} binary tasks"))

# %% [markdown]
# "Half the parameters" scales every width by $\sqrt{1/2}$ (a layer's
# parameters grow with the square of its width). The hard-sharing baseline is
# the continual-learning chapters' network: one shared pre-activation ResNet
# trunk with a head per task, trained on all tasks at once, sized to about
# the gated network's parameters.
#
# ## Batches, labels and loss
#
# Most characteristics are lopsided (few lobulated or spiculated nodules, almost
# no "air" internal structure), so a random batch would often hold a single
# class of some task. As in the source, every batch draws $k$ nodules for each
# label of each task; one nodule can be drawn several times in one batch (say,
# as a malignant and as a lobulated nodule), so each draw is weighted
# $1/m$, $m$ = how often that nodule occurs in the batch: every distinct
# nodule counts once. The loss is the focal cross-entropy
# $-(1-p_y)^{2} \log p_y$ (MONAI's), averaged with those weights over the
# nodules that have a label for the task and summed over tasks, plus an L2
# weight penalty. A nodule without a label for a task (a consensus of 3
# under the binary rule) is masked out of that task's loss but still teaches
# the others.
#
# Binary tasks use the book's rules (consensus 1-2 vs 4-5; calcification
# present vs absent). Multi-class tasks use the ratings themselves: the
# consensus median rounded half up (2.5 becomes 3) is the class, so most
# characteristics have 5 classes, internal structure 4 and calcification 6.

# %% tags=["hide-input"]
records, singles = dict(zip(configs, done)), dict(zip(alone_configs, done[len(configs):]))
main_name = next(iter(records))
main = records[main_name]
display(story.class_counts(main).style.set_caption("Training nodules per class (binary: 0 negative, 1 positive)"))
say(story.data_sentence(main, base.k_per_label))

# %% tags=["hide-input"]
display(run_overview(records).style.format({"minutes": "{:.1f}", "borrowed share": "{:.3f}", "parameters": "{:,}"},
                                           na_rep="-").set_caption("The runs"))

# %% [markdown]
# ## Does learning together help?
#
# Balanced accuracy on the test patients at the epoch each run keeps (the
# one its `select` rule prefers on validation, the mean over the tasks; the
# rule these runs used is stated below the figure), per task, for every setting and the baselines (balanced
# accuracy is the mean of sensitivity and specificity, the honest reading of
# the thesis's "weighted accuracy"; with very rare positives it is the number
# that shows whether the positives were found at all). The single-task
# baselines are the gated network's own branch trained on one task alone
# (nothing to share), with batches as large as the multi-task ones and the
# same number of epochs.

# %% tags=["hide-input"]
binary = {k: v for k, v in records.items() if "multi-class" not in k}
table = metric_table(binary, "balanced_accuracy")
if single_task_baselines:
    table["single task"] = single_task_column(singles, "balanced_accuracy")
display(table.style.format("{:.3f}", na_rep="-").background_gradient(axis=None, cmap="Blues")
        .set_caption("Test balanced accuracy, binary tasks"))

# %% tags=["hide-input"] mystnb={"image": {"alt": "Grouped bars, one group per task: test balanced accuracy of every multi-task and single-task setting, with chance level (0.5) dashed."}}
figures.setting_bars(table)
plt.show()
# the choice is made on validation
say(story.best_setting_sentence(table, metric_table(binary, "balanced_accuracy", split="val")))
say(kept.epoch_rule_sentence(done))

# %% tags=["hide-input"]
ci = main.metrics("test")[["balanced_accuracy", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high", "n"]]
display(ci.style.format({c: "{:.3f}" for c in ci.columns if c != "n"}, na_rep="-")
        .set_caption(f"{main_name}: test balanced accuracy with 95 % intervals (bootstrap over patients)"))

# %% [markdown]
# The multi-class setting asks for the rating itself, a harder question; its
# test accuracy, balanced accuracy (mean recall over the ratings present) and
# mean absolute error in rating steps:

# %% tags=["hide-input"]
multi_name = next(k for k in records if "multi-class" in k)
mm = records[multi_name].metrics("test")[["n", "accuracy", "balanced_accuracy", "mae", "within_one"]]
display(mm.style.format({"accuracy": "{:.3f}", "balanced_accuracy": "{:.3f}", "mae": "{:.2f}",
                         "within_one": "{:.3f}"}, na_rep="-").set_caption(multi_name))

# %% [markdown]
# ## Which characteristics share features?
#
# The overall sharing matrix of the main run: row $t$ shows where task $t$'s
# fused input comes from. The diagonal (a task's own maps) is blanked so the
# colour scale shows only what tasks borrow from each other.

# %% tags=["hide-input"] mystnb={"image": {"alt": "A heat map of the gated network's sharing degree between every pair of tasks; greener means more sharing."}}
sharing = main.sharing()
fig, ax = plt.subplots(figsize=(6.4, 5.4))
plot_sharing(sharing, ax=ax, title=f"{main_name}: overall sharing degree")
plt.show()
display(top_pairs(sharing, 5).style.format({"sharing": "{:.3g}"})
        .set_caption("The five most shared pairs (mean of both directions)"))
say(story.sharing_sentence(sharing))

# %% [markdown]
# ### Across settings
#
# The source compared its sharing matrices across experiment settings and
# found almost no sharing between binary tasks and more with half the
# parameters. The same comparison here, on one colour scale:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Sharing-degree heat maps side by side, one per gated network, on a common colour scale."}}
gated = {k: v for k, v in records.items() if v.data["sharing"] is not None}
plot_sharing_grid(gated)
plt.show()
say("Labels: " + ", ".join(f"{a} = {t}" for a, t in zip(short_names(list(sharing.index)), sharing.index)))
summary = sharing_summary(gated)
display(summary.style.format({c: "{:.4f}" for c in summary.columns if c != "top_pair"})
        .set_caption("Mean borrowed share per setting (overall and per gated block)"))

# %% tags=["hide-input"] mystnb={"image": {"alt": "Lines per gated network: the share of features each task borrows from the others, against training epoch."}}
history = story.sharing_history(gated)
figures.sharing_growth(history)
plt.show()
say(story.growing_sentence(history))
say(story.sgd_sentence(summary, main_name, base.optimizer, base.fusion_init))

# %% [markdown]
# ## Sharing and forgetting
#
# In the task-order chapter a network learns one task and then another. If two
# characteristics rely on the same features, learning the second could either
# protect the first (the features stay useful) or overwrite it (the features
# are bent to the new labels). Each of the six orders has one *first* and one
# *second* task, so each ordered pair of A = malignancy, B = lobulation,
# C = calcification appears once. The table puts the first task's drop in
# test accuracy right after the second stage (plain SGD, the chapter's fold and
# seed) beside the two tasks' sharing degree in the gated network.

# %% tags=["hide-input"] mystnb={"image": {"alt": "A scatter of the six task orders: the first task's accuracy drop after the second stage against the two tasks' sharing degree."}}
sequences, missing = story.sgd_sequences(ctx.profile, ctx.source, ctx.data_dir, ctx.results_dir, ctx.seed, fold, select)
if sequences and all(t in sharing.index for t in ("malignancy", "lobulation", "calcification")):
    link = forgetting_vs_sharing(sharing, sequences)
    display(link.style.format({c: "{:.3f}" for c in link.columns if c not in ("first", "second")})
            .set_caption("First task's accuracy drop after the second stage (SGD) vs sharing"))
    figures.forgetting_vs_sharing_scatter(link)
    plt.show()
    say(story.correlation_sentence(link))
say(story.missing_sequences_sentence(missing, ctx.results_dir.name))

# %% [markdown]
# ## What to take away
#
# - The gated network learns all characteristics at once from label-balanced
#   batches; compare its per-task balanced accuracy with the single-task and
#   hard-sharing baselines above before crediting sharing with any gain.
# - The sharing matrix is a reading of weights, not of features: its level
#   depends on how it is normalised and, strongly, on how the fusion is
#   initialised and optimised. Differences *between pairs* and *between
#   settings* under one recipe are the interpretable part.
# - On the phantom data (the book's default) the ratings are real but the
#   pixels are simulated, so which characteristics share features says more
#   about the phantom's rendering than about radiology; with `source = "dicom"`
#   the same chapter runs on real CT.
#
# ## Try it
#
# - `fusion_init = 1.0`: the normalised start. The network computes the same
#   function at step 0; does it end up sharing more, and the same pairs?
#   (One cpu run takes a few minutes on a laptop CPU, the whole chapter with
#   its baselines about half an hour.)
# - `lungcl mtl --tasks spiculation,margin,lobulation,malignancy --multiclass`:
#   four shape characteristics alone, as ratings.
# - `lungcl mtl --derm7pt PATH/TO/release_v0 --set image_px=64`: the source's
#   own data, if you have the Derm7pt release.

# %% [markdown]
# ## Exercises
#
# ```{exercise} Multi-task versus continual
# :label: ex-mtl-contrast
#
# What does the multi-task network have that a continual learner does not?
# ```
#
# ```{solution} ex-mtl-contrast
# :class: dropdown
#
# All tasks' data at once: nothing to forget; the question becomes what to share.
# ```
#
# ```{exercise} Optimizer (runnable, smoke profile)
# :label: ex-mtl-sgd
#
# Run `-p profile smoke -p optimizer sgd -p sgd_comparison False`. Does the
# sharing matrix change?
# ```
#
# ```{solution} ex-mtl-sgd
# :class: dropdown
#
# A correct answer compares the two sharing matrices; with plain SGD the fusion
# weights move less from their start, so the matrix stays closer to its
# initialisation.
# ```
#
# ```{exercise} Baselines
# :label: ex-mtl-baseline
#
# Why train one single-branch network per task beside the gated network?
# ```
#
# ```{solution} ex-mtl-baseline
# :class: dropdown
#
# Without them a gain from sharing cannot be told from the network simply being
# bigger or trained longer.
# ```
