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
# Four looks under the hood: a sweep of the penalty strength lambda (the
# stability-plasticity trade-off), diagnostics of the Fisher information (which
# layers EWC protects), joint training on all tasks at once (an upper bound no
# sequential method should beat), and online EWC.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper
source = "phantom"  # phantom | dicom
data_dir = "data"  # shared data cache
results_dir = "results"  # shared run records: loaded, not re-run
seed = 0
order = "ABC"
lambdas = [1, 10, 100, 1000]  # EWC penalty strengths to sweep
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
