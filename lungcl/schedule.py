"""The order in which a plan computes its runs, and its simulated wall time, with shared first stages.

Runs that train the same first stage (:mod:`lungcl.experiments.first_stage`) compute it once: the
longest of them (the *leader*) trains and stores it, the others load it and train only the later
stages. The cost model: a run's first stage is ``share`` of its cost (one stage of a sequence of
n: 1/n). A run loading a stage that is not stored yet waits (its worker idle) until the leader has
stored it. Pure functions over :class:`Job`; :mod:`lungcl.plan` gives them the book's runs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Collection, Sequence


@dataclass(frozen=True)
class Job:
    """One run to compute: its whole cost (wall seconds on one core), its first stage's key (None: shared
    with no run) and that stage's share of the cost."""

    cost_s: float
    prefix: str | None = None
    share: float = 0.0


@dataclass
class Schedule:
    """The runs in the order they are handed to the workers, and what that costs."""

    order: list[int]  # indices into the jobs
    loads: set[int] = field(default_factory=set)  # jobs that load their first stage instead of training it
    shared_prefixes: int = 0  # first stages trained once (or stored already) for several runs
    core_s: float = 0.0  # core-seconds with the sharing
    saved_core_s: float = 0.0  # core-seconds the sharing saves
    makespan_s: float = 0.0  # simulated wall time on the workers


def effective_cost(job: Job, loads: bool) -> float:
    """A job's cost: whole, or without its first stage when it loads it."""
    return job.cost_s * (1.0 - job.share) if loads else job.cost_s


def plan_schedule(jobs: Sequence[Job], workers: int, stored: Collection[str] = ()) -> Schedule:
    """Which jobs load their first stage (all of a stored one's; all but the longest of another's), the
    order (longest first; a leader comes before the jobs that load its stage, as it is the longest of them)
    and the simulated wall time on ``workers`` (each job to the worker free first; a job loading a stage
    not yet stored starts its later stages when the leader has stored it)."""
    groups: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.prefix is not None:
            groups.setdefault(job.prefix, []).append(i)
    leaders: dict[str, int] = {}
    loads: set[int] = set()
    for key, members in groups.items():
        if key in stored:
            loads.update(members)
        elif len(members) > 1:
            leader = max(members, key=lambda i: (jobs[i].cost_s, -i))
            leaders[key] = leader
            loads.update(i for i in members if i != leader)
    cost = [effective_cost(job, i in loads) for i, job in enumerate(jobs)]
    # longest first; a leader (the longest of its group, whole) is never after a job loading its stage
    order = sorted(range(len(jobs)), key=lambda i: (-cost[i], i not in leaders.values(), i))
    ready: dict[str, float] = {}
    free = [0.0] * max(1, int(workers))
    end = 0.0
    for i in order:
        start = heapq.heappop(free)
        key = jobs[i].prefix
        if key in leaders and leaders[key] == i:
            ready[key] = start + jobs[i].cost_s * jobs[i].share
        elif i in loads and key not in stored:
            start = max(start, ready.get(key, start))
        finish = start + cost[i]
        heapq.heappush(free, finish)
        end = max(end, finish)
    shared = sum(1 for key, members in groups.items() if any(i in loads for i in members))
    return Schedule(order, loads, shared, sum(cost), sum(j.cost_s for j in jobs) - sum(cost), end)


__all__ = ["Job", "Schedule", "effective_cost", "plan_schedule"]
