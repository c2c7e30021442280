"""Continual-learning methods: a penalty added to the task loss and a consolidate step after each task.

``make_method("ewc", strength=...)`` builds one by name; all share :class:`ContinualMethod`'s
interface (``penalty``, ``consolidate``, ``state_dict``, ``load_state_dict``).
"""

from __future__ import annotations

from ..errors import LungclError
from .base import ContinualMethod, FoldedQuadratic, JointTraining
from .ewc import EWCMethod, OnlineEWCMethod
from .l2 import L2Method

METHODS = ("sgd", "l2", "ewc", "online_ewc", "joint")


def make_method(name: str, strength: float = 0.0, fisher_samples: int = 200, fisher: str = "exact",
                gamma: float = 1.0, seed: int = 0) -> ContinualMethod:
    """The method called ``name``; settings a method does not use are ignored (``strength`` of sgd, ...)."""
    if not strength >= 0:
        raise LungclError(f"the regularisation strength must be >= 0, got {strength}")
    if name in ("sgd", "joint"):
        return JointTraining() if name == "joint" else ContinualMethod()
    if name == "l2":
        return L2Method(strength)
    if name == "ewc":
        return EWCMethod(strength, fisher_samples, fisher, seed)
    if name == "online_ewc":
        return OnlineEWCMethod(strength, fisher_samples, fisher, seed, gamma)
    raise LungclError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")


__all__ = ["METHODS", "ContinualMethod", "EWCMethod", "FoldedQuadratic", "JointTraining", "L2Method",
           "OnlineEWCMethod", "make_method"]
