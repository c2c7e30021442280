"""The first chapter's toy: SGD forgets, L2 holds too stiffly, EWC keeps task A and learns B (several seeds)."""

import numpy as np
import pytest
import torch

from lungcl import toy
from lungcl.errors import LungclError


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sgd_forgets_l2_stiff_ewc_keeps(seed):
    torch.set_num_threads(1)
    runs = toy.compare(seed)
    sgd, l2, ewc = runs["sgd"], runs["l2"], runs["ewc"]
    assert sgd.forgetting > 0.5  # A's test accuracy collapses
    assert ewc.forgetting < 0.1 and l2.forgetting < 0.1
    assert ewc.acc["after_B"]["B_test"] > 0.8  # B still learned
    assert l2.acc["after_B"]["B_test"] < sgd.acc["after_B"]["B_test"] - 0.03  # L2: B learned less
    assert ewc.path[-1][1] > l2.path[-1][1] + 0.5  # EWC leaves w2 free, L2 holds it back
    assert ewc.val_score >= l2.val_score - 0.01  # chosen on validation, EWC is at least as good


def test_deterministic_and_bad_input():
    tasks = toy.make_tasks(3)
    a, b = toy.run_sequence("ewc", 1.0, tasks), toy.run_sequence("ewc", 1.0, tasks)
    assert np.array_equal(a.path, b.path) and a.acc == b.acc
    with pytest.raises(LungclError):
        toy.make_tasks(0, n=1)
