"""Frozen trunk: the stiffest reference. After the first stage nothing shared learns any more.

Stage 1 is plain SGD. From stage 2 on the trunk and every earlier head are frozen: no gradient
(so no momentum and no weight decay either) and the trunk in eval mode (BatchNorm normalises with
the running statistics of stage 1 and no longer updates them); each new task trains its own head
only, a linear classifier on the features learnt for the first task. The earlier tasks therefore
keep their numbers exactly, and a method that protects the old tasks "by freezing" can be told
apart from one that also lets the shared features serve the new tasks.
"""

from __future__ import annotations

from torch import nn

from ..errors import LungclError
from .base import ContinualMethod


class FrozenTrunk(ContinualMethod):
    """SGD on the first task; afterwards only the current task's head learns."""

    name = "frozen"

    def prepare_stage(self, model: nn.Module, stage: int, task: str) -> None:
        """From the second stage on: every parameter but ``task``'s head stops learning, and every module
        but that head is put in eval mode (after the trainer's ``train_mode``)."""
        if stage == 0:
            return
        heads = getattr(model, "heads", None)
        if not isinstance(heads, nn.ModuleDict) or task not in heads:
            raise LungclError(f"method frozen needs a network with one head per task (heads.{task}); "
                              f"this {type(model).__name__} has none for {task!r}")
        own = {id(p) for p in heads[task].parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in own)
        model.eval()
        heads[task].train()
