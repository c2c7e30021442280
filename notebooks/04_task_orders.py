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
# # All six task orders
#
# Does it matter which task comes first? This chapter runs the three methods
# over all six orders of A, B and C (ABC, ACB, BAC, BCA, CAB, CBA) and compares
# the final accuracy and forgetting per order with the thesis's Tables 5.7-5.11.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: loaded, not re-run
seed = 0
orders = ["ABC", "ACB", "BAC", "BCA", "CAB", "CBA"]
methods = ["sgd", "l2", "ewc"]
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
