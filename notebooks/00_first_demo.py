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
# # A first demo: forgetting in two weights
#
# Before any CT scan: one logistic unit with two weights learns task A, then
# task B. Task A's label lives in the first input (the second is nearly
# constant there, so A barely cares about $w_2$); task B's label lives in the
# second input, and in B the first input points the other way. The package's
# own methods train it (`lungcl.methods.make_method`: the same `penalty` and
# `consolidate` the experiments use), with plain full-batch SGD (momentum 0)
# on the task loss plus the penalty, so each run minimises exactly the
# objective of the theory chapter. λ for L2 and EWC is chosen on a validation
# set of the toy data; the numbers below are test accuracies, computed when
# this page was built. It runs in seconds on a CPU.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | paper (the toy is the same on every profile)
source = "phantom"  # unused here: the toy generates its own data
data_dir = "data"  # unused here
results_dir = "results"  # unused here
seed = 0  # seed of the toy data and the Fisher's label draws

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from lungcl import toy
from lungcl.book import chapter_setup

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
tasks = toy.make_tasks(ctx.seed)
runs = toy.compare(ctx.seed)
display(toy.table(runs).style.format("{:.3f}"))

# %% [markdown]
# The figure: the two weights as a plane. Grey contours are task A's training
# loss, dashed ones task B's; each method's path starts at zero, walks to A's
# low-loss region, then towards B, and ends at a square.

# %% tags=["hide-input"]
fig = toy.plot_paths(runs, tasks)

# %% tags=["hide-input"]
sgd, l2, ewc = runs["sgd"], runs["l2"], runs["ewc"]
display(Markdown(
    f"**What happened.** Plain SGD reached {sgd.acc['after_A']['A_test']:.0%} on task A, then, while "
    f"learning B, dragged $w_1$ to {sgd.path[-1][0]:.2f} and A fell to {sgd.acc['after_B']['A_test']:.0%}: "
    f"it forgot. L2 (λ = {l2.strength:g}) kept A at {l2.acc['after_B']['A_test']:.0%} but, pulling every "
    f"weight back equally, let $w_2$ grow only to {l2.path[-1][1]:.2f}: B reached "
    f"{l2.acc['after_B']['B_test']:.0%} against SGD's {sgd.acc['after_B']['B_test']:.0%}. EWC "
    f"(λ = {ewc.strength:g}) held $w_1$ (A's Fisher is large there) and left $w_2$ free "
    f"({ewc.path[-1][1]:.2f}): A {ewc.acc['after_B']['A_test']:.0%}, B {ewc.acc['after_B']['B_test']:.0%}. "
    "Compare the quadratic picture in the theory chapter."))
