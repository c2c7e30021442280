"""What the shipped lambda tunes can say: under which rules they were made, and how sharply their seeds pick.

A default lambda is the pick of a tune record shipped with the package (:mod:`lungcl.experiments.tuned`).
Its runs were made under a configuration version, a checkpoint rule (``select``) and training settings
(the learning rate, the budget, ...); when any differs from the runs the book makes now (a book re-run with
``--set lr=0.005``, say), the pick was not derived from them, and the analysis chapter says so.
With several seeds, :func:`tune_spread_lines` says how far ahead of the next lambda the pick is, at how
many seeds, and which lambdas score within one seed standard deviation of it.
"""

from __future__ import annotations

from typing import Sequence

from ..experiments.config import CONFIG_VERSION, RunConfig
from ..experiments.tuned import stale_tunes, tuned_settings_differ, tuned_under
from ..methods import METHOD_LABELS
from ..selection import HIGHER_IS_BETTER, SELECT_LABELS


def _names(records: Sequence[dict]) -> str:
    names = []
    for r in records:
        fisher = r.get("base_config", {}).get("fisher", "exact")
        names.append(METHOD_LABELS.get(r["method"], r["method"]) + ("" if fisher == "exact" else f" ({fisher} Fisher)"))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def tune_provenance_sentence(records: Sequence[dict], config: RunConfig) -> str | None:
    """A sentence naming the shipped tunes made under another configuration version, checkpoint rule or
    training setting than ``config`` (the book's runs), with both; None when every tune is of today's runs."""
    stale = stale_tunes(list(records), config)
    if not stale:
        return None
    groups: dict[str, list[dict]] = {}
    for r in stale:
        version, select = tuned_under(r)
        settings = "".join(f", {k} {_value(old)} (here {_value(new)})"
                           for k, (old, new) in tuned_settings_differ(r, config).items())
        groups.setdefault(f"under version {version} with the {_rule(select)}{settings}", []).append(r)
    parts = [f"those of {_names(rs)} {how}" for how, rs in groups.items()]
    return (f"The shipped lambda {'curve was' if len(stale) == 1 else 'curves were'} measured under other rules "
            f"or settings than this book's runs (configuration version {CONFIG_VERSION}, each stage keeping the "
            f"checkpoint with the {_rule(config.select)}): {'; '.join(parts)}. The default lambdas are those tunes' "
            f"picks, not re-derived from this book's runs (`lungcl tune` re-derives one).")


def _value(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _rule(select: str) -> str:
    """``lowest class-balanced validation loss, `select=balanced_loss` ``."""
    side = "highest" if select in HIGHER_IS_BETTER else "lowest"
    return f"{side} {SELECT_LABELS.get(select, select)}, `select={select}`"


def _lam(value: float) -> str:
    return f"{value:g}"


def tune_spread_lines(records: Sequence[dict]) -> list[str]:
    """One markdown line per tune record with several seeds: the pick's criterion (mean and standard
    deviation over the seeds), the next best lambda's distance and at how many seeds the pick is ahead of it,
    and the lambdas within one seed standard deviation of the pick. Empty when no record has several seeds."""
    lines = []
    for r in records:
        seeds = r.get("seeds", [r.get("seed")])
        ok = [p for p in r["curve"] if p.get("criterion") is not None and p.get("per_seed")]
        if len(seeds) < 2 or not r.get("pick") or len(ok) < 2:
            continue
        ranked = sorted(ok, key=lambda p: (-p["criterion"], p["strength"]))
        pick, second = ranked[0], ranked[1]
        ahead = sum(a["criterion"] > b["criterion"] for a, b in zip(pick["per_seed"], second["per_seed"]))
        near = sorted(p["strength"] for p in ok if pick["criterion"] - p["criterion"] <= pick["criterion_sd"])
        span = ("only the pick scores within one seed standard deviation of it" if len(near) == 1 else
                f"every lambda from {_lam(near[0])} to {_lam(near[-1])} scores within one seed standard deviation "
                f"of the pick ({len(near)} of {len(ok)} values), so the seeds fix lambda only to that range")
        lines.append(
            f"- {_names([r])}: lambda {_lam(pick['strength'])}, {pick['criterion']:.1%} "
            f"(sd {100 * pick['criterion_sd']:.1f} points over {len(seeds)} seeds); the next best, lambda "
            f"{_lam(second['strength'])}, is {100 * (pick['criterion'] - second['criterion']):.1f} points lower and "
            f"behind the pick at {ahead} of {len(seeds)} seeds; {span}.")
    return lines


__all__ = ["tune_provenance_sentence", "tune_spread_lines"]
