"""The book as one plan: every chapter's runs listed from its parameters cell, computed before the chapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lungcl import plan
from lungcl.book import build
from lungcl.chapter import runs as chapter_runs
from lungcl.experiments import ResultsFolder, load_record
from lungcl.project import chapter_sources

REPO = Path(__file__).resolve().parents[1]

TOC = ("format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/_executed/02_single_task\n"
       "  - file: notebooks/_executed/03_sequence_ABC\n")
HEADER = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # {title}

# %% tags=["parameters"]
profile = "cpu"
source = "phantom"
data_dir = "data"
results_dir = "results"
seed = 0
tasks = "AB"
epochs = 1
folds = [0]
workers = 1
{extra}
# %%
from lungcl.chapter import runs as chapter_runs
from lungcl.chapter.setup import chapter_setup

ctx = chapter_setup(profile, source, data_dir, results_dir, seed)
runs = chapter_runs.run_configs({call}, ctx.results_dir, workers)
print("computed", runs.computed, "loaded", runs.loaded)
'''
SINGLE = HEADER.format(title="Alone", extra="", call="chapter_runs.single_task_chapter(ctx, tasks=tasks, folds=folds, "
                                                     "epochs=epochs)")
SEQUENCE = HEADER.format(title="In turn", extra='method = "sgd,ewc"\nseeds = [0]\n',
                         call="chapter_runs.sequence_chapter(ctx, tasks=tasks, method=method, folds=folds, "
                              "epochs=epochs, seeds=seeds)")


@pytest.fixture
def planned_book(tmp_path: Path) -> Path:
    """Two chapters that compute runs, named as the book's chapters 02 and 03 (so the plan knows them)."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text(TOC)
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "notebooks" / "02_single_task.py").write_text(SINGLE)
    (tmp_path / "notebooks" / "03_sequence_ABC.py").write_text(SEQUENCE)
    return tmp_path


def test_makespan_runs_the_longest_first_on_the_free_worker():
    assert plan.makespan([], 4) == 0
    assert plan.makespan([5, 3, 3, 2, 2, 2], 2) == 9  # LPT: {5, 2, 2} and {3, 3, 2}: 9 and 8
    assert plan.makespan([10, 1, 1], 8) == 10  # never below the longest run
    assert plan.makespan([1] * 16, 4) == 4


def test_every_chapter_that_computes_runs_asks_for_them_through_its_plan_function():
    sources = {p.stem: p.read_text() for p in chapter_sources(REPO)}
    for name, declare in chapter_runs.CHAPTER_RUNS.items():
        assert name in sources, f"{name} is planned but has no notebook"
        assert f"{declare.__name__}(" in sources[name], f"{name} does not call chapters.{declare.__name__}"
    computing = {n for n, text in sources.items() if "run_configs(" in text or "run_all(" in text}
    assert computing <= set(chapter_runs.CHAPTER_RUNS), "a chapter computes runs that the book's plan does not list"


def test_the_books_plan_lists_every_chapters_runs_without_computing_any(tmp_path: Path):
    results = tmp_path / "results"
    p = plan.book_plan(REPO, profile="smoke", data_dir=REPO / "data", results_dir=results, workers=16)
    summary = json.loads(plan.plan_json(p))
    assert summary["cached"] == 0 and summary["to_compute"] == summary["runs"] > 0
    assert summary["workers"] == 16
    chapters_with_runs = {n for n, c in summary["chapters"].items() if c["runs"]}
    assert chapters_with_runs == set(chapter_runs.CHAPTER_RUNS)
    # de-duplicated: the sequence chapter's seed-0 runs are also the task-order chapter's ABC runs
    assert summary["asked_by_chapters"] > summary["runs"] == len({r.config.run_id for r in p.runs})
    assert set(p.chapters["03_sequence_ABC"]) & set(p.chapters["04_task_orders"])
    assert summary["estimated_wall_minutes"] * 16 >= summary["estimated_core_minutes"] - 1e-6
    assert not results.exists() or not list(ResultsFolder(results).root.glob("runs/*/record.json"))
    # a setting reaches the plan as it reaches the chapters
    fewer = plan.book_plan(REPO, profile="smoke", data_dir=REPO / "data", results_dir=results,
                           overrides={"seeds": [0], "normalisations": []})
    assert len(fewer.chapters["03_sequence_ABC"]) < len(p.chapters["03_sequence_ABC"])
    assert len(fewer.runs) < len(p.runs)


def test_cli_book_plan_json_prints_the_plan(tmp_path: Path, capsys):
    from lungcl.cli.main import main

    assert main(["book", "--root", str(REPO), "--profile", "smoke", "--plan", "--json", "--workers", "3",
                 "--results", str(tmp_path / "results"), "--only", "03"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["workers"] == 3 and set(out["chapters"]) == {"03_sequence_ABC"} and out["runs"] > 0
    assert main(["book", "--root", str(REPO), "--set", "workers=3", "--plan"]) == 2
    assert "--workers" in capsys.readouterr().err


@pytest.mark.slow
def test_the_plan_computes_every_run_before_the_chapters_which_then_only_load(planned_book: Path, data_dir: Path,
                                                                               tmp_path: Path):
    lines: list[str] = []
    results = planned_book / "results"
    p, outcome, report = plan.build_planned_book(planned_book, profile="smoke", data_dir=data_dir,
                                                 results_dir=results, workers=2, render=False,
                                                 progress=lines.append)
    assert [c.status for c in report.chapters] == ["executed", "executed"]
    ids = {r.config.run_id for r in p.runs}
    assert len(ids) == 4 and set(outcome.computed) == ids and not outcome.errors  # 2 alone + AB sgd, ewc
    assert p.summary()["shared_prefixes"] == 1  # AB's SGD and EWC train the same first stage: once
    firsts = [load_record(i, results).data["timings"]["stages"][0].get("first_stage") for i in ids]
    assert sorted(f for f in firsts if f) == ["computed", "loaded"]
    computed_at = next(i for i, ln in enumerate(lines) if ln.startswith("the plan:"))
    first_chapter = next(i for i, ln in enumerate(lines) if "02_single_task: executing" in ln)
    assert computed_at < first_chapter
    import nbformat

    for name in ("02_single_task", "03_sequence_ABC"):
        executed = nbformat.read(planned_book / build.EXECUTED / f"{name}.ipynb", as_version=4)
        text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert "computed 0 loaded" in text, f"{name} computed runs the plan should have: {text}"

    # the same chapters built one after the other, each computing its own runs, on one core
    serial = tmp_path / "serial"
    report = build.build_book(planned_book, profile="smoke", data_dir=data_dir, results_dir=serial,
                             render=False, force=True, progress=lambda _: None, workers=1)
    assert [c.status for c in report.chapters] == ["executed", "executed"]
    for run_id in ids:
        assert load_record(run_id, serial).comparable() == load_record(run_id, results).comparable()


def test_the_plan_benchmark_prints_the_makespan_of_every_worker_count(tmp_path: Path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "plan.py"), "--profile", "smoke", "--json",
                          "--workers", "2,16", "--results", str(tmp_path / "results")],
                         capture_output=True, text=True, check=True, cwd=REPO)
    two, sixteen = json.loads(out.stdout)
    for row in (two, sixteen):
        assert {"makespan_s", "core_s", "runs", "shared_prefixes", "probed", "probes_core_s"} <= set(row)
        assert row["makespan_s"] * row["workers"] >= row["core_s"] - 0.1 * row["workers"] and row["probed"] > 0  # rounded
    assert two["core_s"] == sixteen["core_s"] and sixteen["makespan_s"] < two["makespan_s"]
    assert two["cost_basis"]["nominal"] == two["runs"]  # nothing finished in an empty results folder
