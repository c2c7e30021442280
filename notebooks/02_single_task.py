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
# Before asking what a network forgets, we need to know what it can learn. This
# chapter trains the shared network on each of the three thesis tasks alone
# (malignancy, lobulation, calcification), with the same budget as one stage of
# the sequences, and reports accuracy, balanced accuracy, sensitivity and
# specificity per task with confidence intervals over the folds, beside the
# thesis's first-stage numbers.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: loaded, not re-run
seed = 0
tasks = "ABC"  # the tasks trained one at a time
folds = [0]  # cross-validation folds to run (0..4)
epochs = None  # None: the profile default

# %% [markdown]
# ```{admonition} This chapter is being written
# :class: warning
# The experiments of this chapter are not in the book yet: the training engine
# it calls is being finished. What you see is the chapter's plan and its
# parameters; no result is shown, so none is claimed.
# ```

# %%
from lungcl.book import chapter_setup

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
print(f"profile {ctx.profile}, source {ctx.source}")
