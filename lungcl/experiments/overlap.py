"""Evaluation off the critical path: weight snapshots scored on a second thread while training goes on.

The trainer takes each result in step order and acts on it as if it had waited for it
(see :func:`lungcl.experiments.trainer.train_stage`), so the numbers are those of
evaluating in turn; only where the time goes changes.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..machine import usable_cores


def spare_core() -> bool:
    """Whether this process may use a core beyond torch's threads (then evaluation overlaps training)."""
    return usable_cores() > torch.get_num_threads()


@dataclass
class Pending:
    """An evaluation of the weights at ``step``: ``net`` is their snapshot, ``point`` its curve point."""

    step: int
    global_step: int
    net: nn.Module
    point: Future


def submit(background: ThreadPoolExecutor | None, score: Callable[[nn.Module, int], list[dict]],
           model: nn.Module, step: int, global_step: int) -> Pending:
    """Snapshot the weights and score them: on ``background`` while training goes on, or now. The
    numbers are the same either way (inference on a copy); the trainer acts on them in step order."""
    net = copy.deepcopy(model)
    net.zero_grad(set_to_none=True)
    if background is not None:
        return Pending(step, global_step, net, background.submit(score, net, step))
    done: Future = Future()
    try:
        done.set_result(score(net, step))
    except Exception as exc:  # raised where the trainer takes the result, as from the thread
        done.set_exception(exc)
    return Pending(step, global_step, net, done)
