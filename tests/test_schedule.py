"""The plan's order and simulated wall time when runs share their first stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from lungcl import plan
from lungcl.schedule import Job, plan_schedule

REPO = Path(__file__).resolve().parents[1]


def test_a_shared_first_stage_is_trained_once_by_the_longest_run_of_those_sharing_it():
    jobs = [Job(30.0, "a", 1 / 3), Job(60.0, "a", 1 / 3), Job(30.0, "a", 1 / 3), Job(45.0, None), Job(9.0, "b", 1 / 3)]
    s = plan_schedule(jobs, workers=1)
    assert s.loads == {0, 2}  # job 1 (the longest) trains "a"; "b" has one run: nothing shared
    assert s.shared_prefixes == 1
    assert s.saved_core_s == pytest.approx(20.0) and s.core_s == pytest.approx(174.0 - 20.0)
    assert s.order == [1, 3, 0, 2, 4]  # longest first by what each still costs
    assert s.makespan_s == pytest.approx(s.core_s)  # one worker never waits: the leader has gone before
    # already stored: every run of it loads
    stored = plan_schedule(jobs, workers=1, stored={"a", "b"})
    assert stored.loads == {0, 1, 2, 4} and stored.shared_prefixes == 2
    assert stored.saved_core_s == pytest.approx(43.0)


def test_a_run_loading_a_first_stage_waits_for_its_leader_to_store_it():
    jobs = [Job(90.0, "a", 1 / 3), Job(90.0, "a", 1 / 3)]
    s = plan_schedule(jobs, workers=2)
    # the second starts with the first, waits 30 s for its stage 1, then trains 60 s: both end at 90
    assert s.makespan_s == pytest.approx(90.0) and s.core_s == pytest.approx(150.0)
    alone = plan_schedule([Job(90.0), Job(90.0)], workers=2)
    assert alone.makespan_s == pytest.approx(plan.makespan([90.0, 90.0], 2)) and alone.loads == set()


def test_the_books_plan_counts_its_shared_first_stages_and_orders_their_leaders_first(tmp_path: Path):
    p = plan.book_plan(REPO, profile="smoke", data_dir=REPO / "data", results_dir=tmp_path / "results", workers=2)
    summary = p.summary()
    assert summary["shared_prefixes"] > 0 and summary["first_stages_loaded"] > summary["shared_prefixes"]
    assert summary["saved_core_minutes"] > 0
    whole = sum(r.cost_s for r in p.runs)
    probes = summary["probes_to_compute"] * plan.PROBES_S["smoke"] / 60  # after the runs, from their stage weights
    assert summary["probes_to_compute"] == summary["probed"] > 0
    assert summary["estimated_core_minutes"] == pytest.approx((whole / 60) - summary["saved_core_minutes"] + probes,
                                                              abs=0.02)
    # every order of a method and seed with the same first task shares it: ABC's and ACB's SGD runs, say
    by_key: dict = {}
    for r in p.runs:
        if r.first_stage:
            by_key.setdefault(r.first_stage, []).append(r)
    firsts = {(r.config.tasks[0], r.config.seed) for group in by_key.values() for r in group}
    assert any(len({r.config.tasks for r in g}) > 1 and len({r.config.method for r in g}) > 1
               for g in by_key.values())
    assert len(by_key) >= len(firsts)
    # the order: the run that trains a shared first stage before every run that loads it
    todo = [r.config.run_id for r in p.todo]
    for group in by_key.values():
        if len(group) > 1:
            places = sorted(todo.index(r.config.run_id) for r in group)
            leader = max(group, key=lambda r: r.cost_s)
            assert todo.index(leader.config.run_id) == places[0]
