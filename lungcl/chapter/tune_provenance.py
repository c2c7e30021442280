"""Under which rules the shipped lambda tunes were made: one computed sentence when they are not today's.

A default lambda is the pick of a tune record shipped with the package (:mod:`lungcl.experiments.tuned`).
Its runs were made under a configuration version and a checkpoint rule (``select``); when those differ
from the runs the book makes now, the pick was not derived from them, and the analysis chapter says so.
"""

from __future__ import annotations

from typing import Sequence

from ..experiments.config import CONFIG_VERSION, RunConfig
from ..experiments.tuned import stale_tunes, tuned_under
from ..methods import METHOD_LABELS
from ..selection import HIGHER_IS_BETTER, SELECT_LABELS


def _names(records: Sequence[dict]) -> str:
    names = []
    for r in records:
        fisher = r.get("base_config", {}).get("fisher", "exact")
        names.append(METHOD_LABELS.get(r["method"], r["method"]) + ("" if fisher == "exact" else f" ({fisher} Fisher)"))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def tune_provenance_sentence(records: Sequence[dict], config: RunConfig) -> str | None:
    """A sentence naming the shipped tunes made under another configuration version or checkpoint rule
    than ``config`` (the book's runs), with both; None when every tune is of today's runs."""
    stale = stale_tunes(list(records), config)
    if not stale:
        return None
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in stale:
        groups.setdefault(tuned_under(r), []).append(r)
    parts = [f"those of {_names(rs)} under version {version} with the {_rule(select)}"
             for (version, select), rs in sorted(groups.items())]
    return (f"The shipped lambda {'curve was' if len(stale) == 1 else 'curves were'} measured under other rules "
            f"than this book's runs (configuration version {CONFIG_VERSION}, each stage keeping the checkpoint "
            f"with the {_rule(config.select)}): {'; '.join(parts)}. The default lambdas are those tunes' picks, "
            f"not re-derived from today's runs (`lungcl tune` re-derives one).")


def _rule(select: str) -> str:
    """``lowest class-balanced validation loss, `select=balanced_loss` ``."""
    side = "highest" if select in HIGHER_IS_BETTER else "lowest"
    return f"{side} {SELECT_LABELS.get(select, select)}, `select={select}`"


__all__ = ["tune_provenance_sentence"]
