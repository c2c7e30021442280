"""Cheaper runs, same numbers: curves of every task at a coarser cadence than the decisions need."""

from __future__ import annotations

import pytest

from lungcl.experiments import default_config, run


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sgd", "ewc"])
def test_a_coarser_curve_cadence_keeps_every_number_of_the_tables(data_dir, smoke_store, tmp_path, method):
    """Every evaluation scores the stage's task on validation (the checkpoint rule and the early stop
    read it); only every ``curve_every``-th, and the kept checkpoint, scores every task on val and test.
    The kept checkpoints, and so every reported number, are those of scoring everything every time."""
    base = default_config("smoke", data_dir=str(data_dir), tasks="ABC", method=method, eval_every=1, patience=3)
    every = run(base, tmp_path / "every", progress=False)
    coarse = run(base.replace(curve_every=3), tmp_path / "coarse", progress=False)
    assert base.run_id != base.replace(curve_every=3).run_id  # the curves differ, so the records do
    for key in ("stages", "matrices", "summary", "initial", "data", "provenance"):
        assert coarse.data[key] == every.data[key], key
    full, few = every.curves(), coarse.curves()
    assert len(few) < len(full)
    # every point the coarse run recorded is the same number at the same step in the full run
    on = ["stage", "step", "task", "split"]
    merged = few.merge(full, on=on, suffixes=("", "_full"), validate="one_to_one")
    assert len(merged) == len(few)
    assert (merged.loss == merged.loss_full).all() and (merged.accuracy == merged.accuracy_full).all()
    # the decisions' evaluations all happened: the stage's own validation at every step of the full run
    for s, stage in enumerate(every.data["stages"]):
        own = full[(full.stage == s) & (full.task == stage["task"]) & (full.split == "val")]
        assert set(own.step) <= set(few[(few.stage == s) & (few.task == stage["task"]) & (few.split == "val")].step)
        # and the kept checkpoint has a point of every task, val and test
        kept = few[(few.stage == s) & (few.stage_step == stage["best_stage_step"])]
        assert {(t, sp) for t in coarse.tasks for sp in ("val", "test")} <= set(zip(kept.task, kept.split))
    # between curve points only the stage's task on validation was scored
    assert len(few[(few.split == "test")]) < len(full[(full.split == "test")])


def test_curve_every_is_a_whole_number_from_one():
    from lungcl.errors import LungclError

    with pytest.raises(LungclError, match="curve_every"):
        default_config("smoke", curve_every=0)
    assert default_config("smoke").run_id == default_config("smoke", curve_every=1).run_id


@pytest.mark.slow
def test_the_cpu_profiles_cheaper_evaluation_reports_every_number_of_scoring_everything_in_turn(
        data_dir, smoke_store, monkeypatch):
    """The cpu profile's cadence (every task's curves at every ``curve_every``-th evaluation only), with the
    evaluations on a second thread and the training waiting only for those that may stop a stage: the
    stages, their kept checkpoints and every table's number are those of scoring every task on val and test
    at every evaluation, in turn."""
    from lungcl.experiments import sequence
    from lungcl.experiments.config import training_settings
    from lungcl.experiments.sequence import train_run

    every = training_settings("cpu")["curve_every"]
    assert every > 1
    base = default_config("smoke", data_dir=str(data_dir), tasks="ABC", method="ewc", eval_every=1, patience=2,
                          epochs=3)
    monkeypatch.setattr(sequence, "spare_core", lambda: False)
    in_turn, _ = train_run(base, progress=False)
    monkeypatch.setattr(sequence, "spare_core", lambda: True)
    cheaper, _ = train_run(base.replace(curve_every=every), progress=False)
    assert any(s["stopped_early"] for s in in_turn["stages"])
    for key in ("stages", "matrices", "summary", "initial", "data"):
        assert cheaper[key] == in_turn[key], key
    assert len(cheaper["curves"]["step"]) < len(in_turn["curves"]["step"])
