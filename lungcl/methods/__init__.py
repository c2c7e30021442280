"""Continual-learning methods: a penalty added to the task loss and a consolidate step after each task.

``make_method("ewc", strength=...)`` builds one by name; all share :class:`ContinualMethod`'s
interface (``prepare_stage``, ``penalty``, ``consolidate``, ``state_dict``, ``load_state_dict``). The methods'
names, labels and the thesis's three are defined here, once, for the whole package.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import LungclError
from .base import ContinualMethod, FoldedQuadratic, JointTraining, check_strength
from .ewc import EWCMethod, OnlineEWCMethod
from .frozen import FrozenTrunk
from .l2 import L2Method

METHODS = ("sgd", "l2", "ewc", "online_ewc", "frozen", "joint")
THESIS_METHODS = ("sgd", "l2", "ewc")  # the methods the thesis compares
PENALISED = ("l2", "ewc", "online_ewc")  # the methods with a penalty strength lambda
REFERENCES = ("frozen", "joint")  # the references that bound the methods: nothing shared moves / every task's data
# how tables and figures name a method ("single_task": the baselines trained on one task each)
METHOD_LABELS = {"sgd": "SGD", "l2": "L2", "ewc": "EWC", "online_ewc": "online EWC",
                 "frozen": "frozen trunk", "joint": "joint",
                 "single_task": "single task"}


def check_method(name: str) -> str:
    """``name`` if it is a method's, else LungclError listing them."""
    if name not in METHODS:
        raise LungclError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return name


def parse_methods(spec: str | Sequence[str], default: Sequence[str] = THESIS_METHODS) -> list[str]:
    """Methods from ``"all"`` (``default``: the thesis's three), ``"ewc"``, ``"sgd,ewc"`` or a list;
    repeats dropped, an unknown name -> LungclError."""
    if isinstance(spec, str):
        items = list(default) if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    else:
        items = [str(s).strip() for s in spec]
    bad = [m for m in items if m not in METHODS]
    if bad or not items:
        raise LungclError(f"unknown method(s) {', '.join(bad) or '(none)'}; choose from "
                          f"{', '.join(METHODS)} or all")
    return list(dict.fromkeys(items))


def make_method(name: str, strength: float = 0.0, fisher_samples: int = 200, fisher: str = "exact",
                gamma: float = 1.0, seed: int = 0) -> ContinualMethod:
    """The method called ``name``; settings a method does not use are ignored (``strength`` of sgd, ...)."""
    check_strength(strength)
    if check_method(name) not in PENALISED:
        return {"joint": JointTraining, "frozen": FrozenTrunk}.get(name, ContinualMethod)()
    if name == "l2":
        return L2Method(strength)
    if name == "ewc":
        return EWCMethod(strength, fisher_samples, fisher, seed)
    return OnlineEWCMethod(strength, fisher_samples, fisher, seed, gamma)


__all__ = ["METHODS", "THESIS_METHODS", "PENALISED", "REFERENCES", "METHOD_LABELS", "check_method",
           "check_strength", "parse_methods", "ContinualMethod", "EWCMethod", "FoldedQuadratic", "FrozenTrunk",
           "JointTraining", "L2Method", "OnlineEWCMethod", "make_method"]
