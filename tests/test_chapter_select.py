"""The checkpoint rule ``select`` as a chapter parameter: every chapter that computes runs declares it and
passes it into every run it asks for; the default asks for the very runs it asked for before, and the
book's plan and ``lungcl book --set select=...`` carry it (nothing is computed here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lungcl import plan
from lungcl.book.build import BUILD_PARAMETERS
from lungcl.chapter import kept, multitask
from lungcl.chapter import runs as chapter_runs
from lungcl.chapter.setup import chapter_setup
from lungcl.errors import LungclError
from lungcl.experiments import default_config
from lungcl.selection import DEFAULT_SELECT

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(chapter_runs.CHAPTER_RUNS)
DISCUSSION = "07_discussion"


def cell(chapter: str) -> dict:
    """The chapter's parameters cell as the plan reads it, without the build's own settings and ``select``."""
    values = plan.cell_values(REPO / "notebooks" / f"{chapter}.py")
    return {k: v for k, v in values.items() if k not in BUILD_PARAMETERS and k != "select"}


@pytest.fixture(scope="module")
def ctx():
    return chapter_setup("smoke", "phantom", REPO / "data", "results", 0)


def test_every_chapter_that_computes_runs_declares_select_with_the_default_rule():
    for chapter in (*CHAPTERS, DISCUSSION):
        assert plan.cell_values(REPO / "notebooks" / f"{chapter}.py").get("select") == DEFAULT_SELECT, chapter


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_asks_for_todays_runs_by_default_and_carries_another_rule_into_every_run(chapter, ctx):
    declare = chapter_runs.CHAPTER_RUNS[chapter]
    values = cell(chapter)
    today = chapter_runs.chapter_configs(chapter, ctx, values)
    assert today and all(c.select == DEFAULT_SELECT for c in today)
    default = chapter_runs.chapter_configs(chapter, ctx, {**values, "select": DEFAULT_SELECT})
    assert [c.run_id for c in default] == [c.run_id for c in today]
    other = chapter_runs.chapter_configs(chapter, ctx, {**values, "select": "loss"})
    assert len(other) == len(today) and all(c.select == "loss" for c in other)
    assert not {c.run_id for c in other} & {c.run_id for c in today}
    if chapter == "06_multitask_gates":  # the base configuration the chapter reports from
        assert declare(ctx, **values, select="auc")[0].select == "auc"


def test_the_discussion_reads_the_runs_of_the_rule_it_is_given(ctx):
    values = cell(DISCUSSION)
    args = [values.pop(k) for k in ("tasks", "orders", "method", "folds")]
    today, today_plan = chapter_runs.experiment_runs(ctx, *args, **values)
    default, default_plan = chapter_runs.experiment_runs(ctx, *args, **values, select=DEFAULT_SELECT)
    assert [c.run_id for c in default + default_plan.all] == [c.run_id for c in today + today_plan.all]
    other, other_plan = chapter_runs.experiment_runs(ctx, *args, **values, select="balanced_accuracy")
    runs = other + other_plan.all
    assert len(runs) == len(today + today_plan.all) and {c.select for c in runs} == {"balanced_accuracy"}
    # the very runs the task-order and analysis chapters ask for under that rule
    orders = chapter_runs.orders_chapter(ctx, **{**cell("04_task_orders"), "select": "balanced_accuracy"})
    analysis = chapter_runs.analysis_chapter(ctx, **{**cell("05_analysis"), "select": "balanced_accuracy"})
    assert {c.run_id for c in orders} <= {c.run_id for c in other}
    assert {c.run_id for c in analysis.all} == {c.run_id for c in other_plan.all}


def test_the_multitask_chapter_reads_the_sgd_sequences_of_its_rule(monkeypatch, tmp_path):
    asked = []

    class Folder:  # nothing is finished: record which runs were looked for
        def __init__(self, root):
            pass

        def is_finished(self, run_id):
            asked.append(run_id)
            return False

    monkeypatch.setattr(multitask, "ResultsFolder", Folder)
    _, missing = multitask.sgd_sequences("smoke", "phantom", tmp_path, tmp_path, 0, 0, "loss")
    assert len(missing) == len(asked) == 6
    assert asked == [default_config("smoke", tasks=o, method="sgd", seed=0, fold=0, source="phantom",
                                    data_dir=str(tmp_path), select="loss").run_id for o in missing]


def test_the_books_plan_carries_select_into_every_run(tmp_path):
    results = tmp_path / "results"
    today = plan.book_plan(REPO, profile="smoke", data_dir=REPO / "data", results_dir=results)
    loss = plan.book_plan(REPO, profile="smoke", data_dir=REPO / "data", results_dir=results,
                          overrides={"select": "loss"})
    assert {c for c, ids in loss.chapters.items() if ids} == set(chapter_runs.CHAPTER_RUNS)
    assert len(loss.runs) == len(today.runs) and all(r.config.select == "loss" for r in loss.runs)
    assert not results.exists() or not list(results.rglob("record.json"))


def test_a_bad_rule_is_refused_in_one_line_before_any_work(tmp_path, capsys):
    from lungcl.cli.main import main

    results = tmp_path / "results"
    assert main(["book", "--root", str(REPO), "--profile", "smoke", "--set", "select=lowest", "--plan",
                 "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lungcl: ") and "chapter parameter select='lowest'" in err and "balanced_loss" in err
    assert "\n" not in err and not results.exists()
    with pytest.raises(LungclError, match="chapter parameter select='lowest'") as info:  # a papermill -p value
        chapter_setup("smoke", "phantom", "data", "results", 0, select="lowest")
    assert "\n" not in str(info.value)


def test_the_multitask_rule_sentence_reads_the_runs():
    runs = [SimpleNamespace(config=SimpleNamespace(select="balanced_loss"))] * 2
    text = kept.epoch_rule_sentence(runs)
    assert "the lowest class-balanced validation loss (`select=balanced_loss`)" in text and "classes" in text
    other = kept.epoch_rule_sentence([SimpleNamespace(config=SimpleNamespace(select="auc"))])
    assert "the highest validation AUC (`select=auc`)" in other and "class-balanced" not in other
    assert kept.epoch_rule_sentence([]) == "No run to describe."
