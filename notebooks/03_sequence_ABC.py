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
# The thesis's main experiment: train malignancy (A), then lobulation (B), then
# calcification (C), with plain SGD fine-tuning, the L2 pull-back and EWC. The
# chapter shows the accuracy of every seen task across the three stages (the
# thesis's Fig. 4.20-4.23), accuracy, balanced accuracy, sensitivity and
# specificity after each stage (Tables 4.1-4.6), the accuracy matrix (Table
# 4.7), and forgetting and transfer with confidence intervals, each beside the
# thesis's numbers.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: loaded, not re-run
seed = 0
order = "ABC"  # the task order
methods = ["sgd", "l2", "ewc"]
l2_lambda = None  # None: the profile default
ewc_lambda = None  # None: the profile default
folds = [0]
epochs = None

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
