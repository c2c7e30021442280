"""Probes of a finished run from its kept stage weights equal the probes the run records while it trains
(probes=True), so an analysis reads the sequence chapter's runs instead of training them a second time."""

from __future__ import annotations

import json

import pytest
import torch

from lungcl.errors import LungclError
from lungcl.experiments import default_config, run
from lungcl.experiments import run_probes
from lungcl.experiments.run_probes import PROBES_FILE, attach_probes, probes_of
from lungcl.runs.folder import save_checkpoint


@pytest.mark.parametrize("settings", [{"tasks": "ABC", "method": "ewc"}, {"tasks": "AB", "method": "sgd", "bn": "task"}])
def test_probes_from_stage_weights_equal_the_in_run_probes(data_dir, smoke_store, tmp_path, settings):
    base = default_config("smoke", data_dir=str(data_dir), **settings)
    plain = run(base, tmp_path / "a", progress=False)
    probed = run(base.replace(probes=True), tmp_path / "b", progress=False)
    stages = plain.load_checkpoint()["stages"]
    assert len(stages) == len(plain.tasks)
    assert all(torch.equal(stages[-1][k], v) for k, v in plain.load_checkpoint()["model"].items())
    assert "probes" not in plain.data
    assert probes_of(plain) == json.loads(json.dumps(probed.data["probes"]))  # as the record stores them
    assert json.loads((plain.folder / PROBES_FILE).read_text())["run_id"] == plain.run_id


def test_cached_probes_are_read_not_computed(data_dir, smoke_store, tmp_path, monkeypatch):
    rec = run(default_config("smoke", data_dir=str(data_dir), tasks="AB"), tmp_path, progress=False)
    first = probes_of(rec)

    def refuse(*_a, **_k):
        raise AssertionError("computed again")

    monkeypatch.setattr(run_probes, "compute_probes", refuse)
    assert attach_probes([rec])[0].data["probes"] == first


def test_probes_in_two_processes_equal_probes_in_this_one(data_dir, smoke_store, tmp_path):
    configs = [default_config("smoke", data_dir=str(data_dir), tasks="AB", seed=s) for s in (0, 1)]
    here = [run(c, tmp_path / "here", progress=False) for c in configs]
    there = [run(c, tmp_path / "there", progress=False) for c in configs]
    assert [r.data["probes"] for r in attach_probes(there, workers=2)] == [probes_of(r) for r in here]


def test_a_run_without_stage_weights_says_how_to_get_them(data_dir, smoke_store, tmp_path):
    rec = run(default_config("smoke", data_dir=str(data_dir), tasks="AB"), tmp_path, progress=False)
    checkpoint = rec.load_checkpoint()
    del checkpoint["stages"]  # as lungcl wrote checkpoints before it kept every stage
    save_checkpoint(rec.checkpoint_path, checkpoint)
    with pytest.raises(LungclError, match="before lungcl kept each stage's weights.*delete its folder"):
        probes_of(rec)


def test_the_normalisation_tables_updated_rows_are_the_sequence_chapters_runs(tmp_path):
    from pathlib import Path

    from lungcl import plan
    from lungcl.chapter import runs as chapter_runs
    from lungcl.chapter.setup import ChapterContext

    repo = Path(__file__).resolve().parents[1]
    ctx = ChapterContext("smoke", "phantom", 0, repo / "data", tmp_path / "results")
    analysis = chapter_runs.analysis_chapter(ctx, tasks="ABC", folds=[0], ewc_factors=[1], l2_factors=[1],
                                             online_gamma=0.9, normalisations=["update", "freeze", "task"],
                                             norm_methods=["sgd", "ewc"])
    sequence = {c.run_id for c in chapter_runs.sequence_chapter(ctx, tasks="ABC", method="sgd,ewc")}
    updated = {c.run_id for c in analysis.probed if c.bn == "update" and c.norm == "batch"}
    assert len(updated) == 6 and updated <= sequence  # 2 methods x 3 seeds, none trained a second time
    frozen_here = {c.run_id for c in analysis.probed if c.bn == "freeze" and c.seed == 0}
    assert frozen_here <= {c.run_id for c in analysis.frozen_bn}
    assert not any(c.probes for c in analysis.all)
    # the book's plan probes them after the runs, and counts them
    p = plan.book_plan(repo, profile="smoke", data_dir=repo / "data", results_dir=tmp_path / "results")
    summary = p.summary()
    assert summary["probed"] == summary["probes_to_compute"] == len([r for r in p.runs if r.probed]) > 0
    assert {r.config.run_id for r in p.runs if r.probed} <= set(p.chapters["05_analysis"])
