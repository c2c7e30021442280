"""The form every chapter parameter must have, checked before any work.

One rule per parameter the chapters' ``parameters`` cells declare (a test checks that every declared
parameter has one and that its default passes). ``lungcl book --set`` checks its values here before
executing any chapter, and each chapter passes its parameters to ``chapter_setup``, which checks them
here too, so a papermill ``-p`` value is refused before the chapter trains anything. A check looks at
the value's form only (an integer, a list of seeds, ...); names (methods, tasks, Fisher variants) are
checked by the functions that read them, also before any run starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import LungclError
from ..profiles import PROFILES
from ..selection import SELECT_RULES


@dataclass(frozen=True)
class Rule:
    """What a parameter's value must be: ``ok(value)``, and ``form`` naming it for the error."""

    form: str
    ok: Callable[[Any], bool]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _list_of(item: Callable[[Any], bool], distinct: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, (list, tuple)) or not all(item(x) for x in v):
            return False
        return not distinct or (len(v) > 0 and len(set(v)) == len(v))
    return ok


def _or_none(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or ok(v)


def _seed(v: Any) -> bool:
    return _int(v) and v >= 0


def _fold(v: Any) -> bool:
    return _int(v) and 0 <= v <= 4


_SEEDS = Rule("None or a list of distinct integers >= 0, e.g. [0, 1]", _or_none(_list_of(_seed, distinct=True)))
_LAMBDA = Rule("None or a number >= 0", _or_none(lambda v: _number(v) and v >= 0))
_FACTORS = Rule("a list of numbers > 0, e.g. [0.1, 1, 10]", _list_of(lambda v: _number(v) and v > 0))
_NAMES = Rule("a list of names, e.g. [\"sampled\"] ([]: none)", _list_of(_text))
_BOOL = Rule("True or False", lambda v: isinstance(v, bool))
_PATH = Rule("a folder, e.g. \"data\"", lambda v: _text(v) or isinstance(v, os.PathLike))
_NAME_OR_NAMES = Rule("a name such as \"all\" or \"sgd,ewc\", or a list of names", lambda v: _text(v) or (
    _list_of(_text)(v) and len(v) > 0))

RULES: dict[str, Rule] = {
    "profile": Rule(f"one of {', '.join(PROFILES)}", lambda v: v in PROFILES),
    "source": Rule("phantom or dicom", lambda v: v in ("phantom", "dicom")),
    "data_dir": _PATH,
    "results_dir": _PATH,
    "seed": Rule("an integer >= 0", _seed),
    "seeds": _SEEDS,
    "variant_seeds": _SEEDS,
    "norm_seeds": _SEEDS,
    "fold": Rule("an integer 0..4", _fold),
    "folds": Rule("a list of distinct integers 0..4, e.g. [0]", _list_of(_fold, distinct=True)),
    "epochs": Rule("None or an integer >= 1", _or_none(lambda v: _int(v) and v >= 1)),
    "workers": Rule("None (every usable core) or an integer >= 1", lambda v: v is None or (_int(v) and v >= 1)),
    "tasks": Rule("a task order or names, e.g. \"ABC\" or \"spiculation,margin\"", _text),
    "orders": _NAME_OR_NAMES,
    "method": _NAME_OR_NAMES,
    "references": Rule("methods as \"frozen,joint\" or a list (\"\" or []: none)",
                       lambda v: isinstance(v, str) or _list_of(_text)(v)),
    "norm_methods": Rule("None, or methods as \"sgd,ewc\" or a list", _or_none(_NAME_OR_NAMES.ok)),
    "l2_lambda": _LAMBDA,
    "ewc_lambda": _LAMBDA,
    "ewc_factors": _FACTORS,
    "l2_factors": _FACTORS,
    "online_gamma": Rule("a number in (0, 1]", lambda v: _number(v) and 0 < v <= 1),
    "frozen_bn": _BOOL,
    "sgd_comparison": _BOOL,
    "single_task_baselines": _BOOL,
    "fisher_variants": _NAMES,
    "normalisations": _NAMES,
    "streams": Rule("task or position", lambda v: v in ("task", "position")),
    "select": Rule(f"one of {', '.join(SELECT_RULES)}", lambda v: v in SELECT_RULES),
    "fusion_init": Rule("a number > 0", lambda v: _number(v) and v > 0),
    "optimizer": Rule("adam or sgd", lambda v: v in ("adam", "sgd")),
}


def check_chapter_settings(settings: Mapping[str, Any]) -> None:
    """A one-line :class:`LungclError` naming the first parameter whose value has the wrong form
    (a parameter without a rule, e.g. one of a test's own notebook, is not checked)."""
    for name, value in settings.items():
        rule = RULES.get(name)
        if rule is not None and not rule.ok(value):
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise LungclError(f"chapter parameter {name}={shown}: expected {rule.form}")


__all__ = ["RULES", "Rule", "check_chapter_settings"]
