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
from lungcl.chapter import runs as chapter_runs
from lungcl.chapter.setup import chapter_setup

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
chapter_runs.show_run_card(ctx, reads_store=False)  # how this page was computed
tasks = toy.make_tasks(ctx.seed)
runs = toy.compare(ctx.seed)
display(toy.table(runs).style.format("{:.3f}"))

# %% [markdown]
# The figure: the two weights as a plane. Grey contours are task A's training
# loss, dashed ones task B's; each method's path starts at zero, walks to A's
# low-loss region, then towards B, and ends at a square.

# %% tags=["hide-input"] mystnb={"image": {"alt": "The plane of the two weights w1 and w2: grey contours of task A's loss, dashed contours of task B's, and the path of SGD, L2 and EWC from zero to task A's low-loss region and then towards task B, each ending at a square."}}
fig = toy.plot_paths(runs, tasks)

# %% tags=["hide-input"]
sgd, l2, ewc = runs["sgd"], runs["l2"], runs["ewc"]
display(Markdown(
    f"**What happened.** Plain SGD reached {sgd.acc['after_A']['A_test']:.0%} on task A, then, while "
    f"learning B, dragged w1 to {sgd.path[-1][0]:.2f} and A fell to {sgd.acc['after_B']['A_test']:.0%}: "
    f"it forgot. L2 (λ = {l2.strength:g}) kept A at {l2.acc['after_B']['A_test']:.0%} but, pulling every "
    f"weight back equally, let w2 grow only to {l2.path[-1][1]:.2f}: B reached "
    f"{l2.acc['after_B']['B_test']:.0%} against SGD's {sgd.acc['after_B']['B_test']:.0%}. EWC "
    f"(λ = {ewc.strength:g}) held w1 (A's Fisher is large there) and left w2 free "
    f"({ewc.path[-1][1]:.2f}): A {ewc.acc['after_B']['A_test']:.0%}, B {ewc.acc['after_B']['B_test']:.0%}. "
    "Compare the quadratic picture in the theory chapter."))

# %% [markdown]
# ## Exercises
#
# ```{exercise} Read the picture
# :label: ex-demo-picture
#
# From the figure alone: which weight does task A's loss depend on, and which
# does task B need to change? Predict where L2 with a ten times larger λ would
# end, then check with `toy.run_sequence("l2", 1.0, tasks)` (seconds).
# ```
#
# ```{solution} ex-demo-picture
# :class: dropdown
#
# A's grey contours are nearly vertical lines: its loss depends on $w_1$ only. B
# needs $w_2$ to grow (and would like $w_1$ negative). A larger L2 λ holds both
# weights closer to the end of task A, so $w_2$ ends lower and B's accuracy
# drops further, while A stays near its accuracy after A.
# ```
#
# ```{exercise} Is the result robust?
# :label: ex-demo-seeds
#
# Re-run the comparison for seeds 1 to 5 (`toy.compare(seed)` then
# `toy.table(...)`; under 30 s on a laptop). For every seed, does SGD forget
# more than half of task A while EWC forgets less than 10 points?
# ```
#
# ```{solution} ex-demo-seeds
# :class: dropdown
#
# Yes: the construction makes it so (the test `tests/test_toy.py` checks seeds
# 0-2). A correct answer is a table per seed with SGD's "forgetting of A"
# around 0.8-0.9 and EWC's and L2's below 0.1; EWC's "B after B" at least L2's,
# or within a point.
# ```
#
# ```{exercise} Remove the conflict
# :label: ex-demo-conflict
#
# In task B the first input points against the label (`-0.5 * separation`
# in `lungcl/toy.py`, `make_tasks`). Copy `make_tasks` into a cell, set that
# factor to 0 and re-run the three methods. How much does SGD forget now, and
# why?
# ```
#
# ```{solution} ex-demo-conflict
# :class: dropdown
#
# Much less: without the conflict B's gradient no longer pushes $w_1$ below
# zero, only shrinks it slightly while $w_2$ grows. Forgetting needs
# *interference*: the new task's gradient moving weights the old task relies
# on. The methods then differ little.
# ```
