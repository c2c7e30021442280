"""A chapter page's run card (lungcl.chapter.run_card) and the front page's execution table (lungcl.book.execution_table)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lungcl.book import execution_table
from lungcl.chapter import run_card
from lungcl.errors import LungclError

DEFAULTS_CELL = 'profile = "cpu"  # smoke | cpu | paper\nseeds = None  # the repeated runs\nfolds = [0]\n'
INJECTED_CELL = '# Parameters\nprofile = "smoke"\ndata_dir = "/tmp/data"\n'


def test_parameters_are_the_names_the_parameter_cells_assign_with_their_values_as_run():
    namespace = {"In": ["", DEFAULTS_CELL, INJECTED_CELL, "import os\nctx = setup(profile)\n", "x = f(1)\n"],
                 "profile": "smoke", "seeds": None, "folds": [0], "data_dir": "/tmp/data", "ctx": object(),
                 "x": 2}
    values, defaults = run_card.parameters_as_run(namespace)
    assert values == {"profile": "smoke", "seeds": None, "folds": [0], "data_dir": "/tmp/data"}
    assert defaults == {"profile": "cpu", "seeds": None, "folds": [0]}
    assert run_card.parameters_as_run({}) == ({}, {})  # not a notebook kernel


def test_a_cell_with_anything_but_literal_assignments_is_not_a_parameter_cell():
    cells = run_card.parameter_cells(["a = 1\nb = [1, -2.5, 'x', None]\n", "a = 1\nprint(a)\n", "a = b\n",
                                      "a, b = 1, 2\n", "def f(:\n", "# only a comment\n"])
    assert cells == [{"a": 1, "b": [1, -2.5, "x", None]}]


@dataclass
class _Config:
    label: str


@dataclass
class _Record:
    run_id: str
    data: dict

    @property
    def config(self) -> _Config:
        return _Config(f"ABC ewc seed {self.run_id[-1]}")


def _record(run_id: str, created: datetime, seconds: float) -> _Record:
    return _Record(run_id, {"created": created.isoformat(timespec="seconds"), "timings": {"total_s": seconds}})


def test_a_run_written_after_the_page_started_was_computed_by_it_and_an_older_one_loaded():
    started = datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=timezone.utc)
    entries = run_card.run_entries([_record("aaaa1", started - timedelta(days=1), 90.0),
                                    _record("bbbb2", started + timedelta(seconds=30), 200.0),
                                    _Record("cccc3", {})], started)
    assert [(e.run_id, e.status, e.seconds) for e in entries] == [
        ("aaaa1", "loaded", 90.0), ("bbbb2", "computed", 200.0), ("cccc3", "loaded", None)]
    assert entries[0].label == "ABC ewc seed 1" and entries[0].created == "2026-01-01 03:04:05"


def _card(**kw) -> run_card.RunCard:
    started = datetime(2026, 1, 2, tzinfo=timezone.utc)
    base = dict(executed="2026-01-02T10:00:00+00:00", parameters={"profile": "smoke", "seeds": None},
                defaults={"profile": "cpu", "seeds": None}, commit="0123456789abcdef" * 2 + "01234567",
                dirty=True, versions={"lungcl": "0.1.0", "torch": "2.13.0", "python": "3.11.7"},
                store="phantom / smoke", store_digest="f" * 64, cores=2, gpu=None,
                runs=run_card.run_entries([_record("aaaa1", started - timedelta(days=1), 90.0),
                                           _record("bbbb2", started + timedelta(hours=1), 200.0)], started))
    return run_card.RunCard(**{**base, **kw})


def test_the_card_names_date_commit_versions_store_machine_parameters_and_runs():
    card = _card()
    assert card.changed == ["profile"]
    assert card.summary() == ("2026-01-02 10:00:00 UTC · commit 01234567 (uncommitted changes) · lungcl 0.1.0, "
                              "torch 2.13.0, python 3.11.7 · 2 run(s) read")
    text = card.markdown()
    for expected in ("lungcl commit: 0123456789ab with uncommitted changes", "patch store: phantom / smoke, digest "
                     + "f" * 16, "machine: 2 cores, no GPU", "`profile = 'smoke'` (default `'cpu'`)",
                     "`seeds = None`", "2 run(s): 1 computed by this execution, 1 loaded from the results folder; "
                     "4.8 min of recorded wall time in all", "`aaaa1` ABC ewc seed 1: loaded, 90.0 s"):
        assert expected in text, expected
    html = card.html()
    assert html.startswith('<div class="lungcl-run-card">') and html.count("<details>") == 2
    assert "<td><code>&#x27;smoke&#x27;</code></td><td><code>&#x27;cpu&#x27;</code></td>" in html
    assert "<td><code>bbbb2</code></td><td>ABC ewc seed 2</td><td>computed</td><td>3.3 min</td>" in html


def test_the_card_says_what_it_does_not_know():
    card = _card(commit=None, dirty=None, store=None, store_digest=None, parameters={}, runs=[], gpu="A100")
    text = card.markdown()
    assert "not a git checkout" in text and "patch store: none read by this page" in text
    assert "parameters as run: not recorded" in text and "no recorded runs" in text and "GPU: A100" in text
    assert "<details>" not in card.html() and "&lt;" not in card.summary()
    assert "<script>" not in _card(parameters={"tasks": "<script>"}).html()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_commit_and_dirty_tree_from_git(tmp_path: Path):
    assert run_card.code_commit(tmp_path) == (None, None)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert run_card.code_commit(tmp_path) == (head, False)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert run_card.code_commit(tmp_path) == (head, True)


def test_collect_reads_no_store_when_the_page_reads_none(tmp_path: Path):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    card = run_card.collect({"seed": 0}, {"seed": 0}, [], now, tmp_path, None, "smoke", now=now)
    assert card.store is None and card.executed == "2026-01-02T03:04:05+00:00"
    assert set(card.versions) >= {"lungcl", "torch", "python"} and card.cores
    assert run_card.collect({}, {}, [], now, tmp_path, "phantom", "smoke").store == "phantom / smoke"


def test_execution_table_has_every_chapter_and_the_builds_totals():
    rows = [execution_table.ExecutionRow("00_first_demo", "A first demo", "current", "2026-01-01T10:00:00+00:00", 12.0),
            execution_table.ExecutionRow("03_sequence_ABC", "The ABC | sequence", "executed",
                                      "2026-01-02T10:00:00+00:00", 300.0),
            execution_table.ExecutionRow("05_analysis", "Analysis", "not selected", None, None)]
    text = execution_table.render_table(rows, build_seconds=330.0, last_render_seconds=40.0)
    assert "| 00_first_demo: A first demo | unchanged: not executed again | 2026-01-01 10:00:00 | 12 s |" in text
    assert "| 03_sequence_ABC: The ABC / sequence | executed by this build | 2026-01-02 10:00:00 | 5.0 min |" in text
    assert "| 05_analysis: Analysis | not executed (left out by --only) | ? | ? |" in text
    assert ("Executing every chapter took 5.2 min in their last executions (1 chapter(s) without a recorded "
            "time). This build executed 1 of the 3 chapters in 5.0 min and spent 5.5 min in all before "
            "rendering; rendering the HTML took 40 s in the build before.") in text
    assert "rendering the HTML" not in execution_table.render_table(rows, 1.0, None)


def test_book_pdf_without_chromium_is_one_clear_line_before_any_work(tmp_path, monkeypatch, capsys):
    from lungcl.book import pdf
    from lungcl.cli.main import main

    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    with pytest.raises(LungclError, match="apt-get install chromium"):
        pdf.find_chromium()
    code = main(["book", "--pdf", "--profile", "smoke", "--data-dir", str(tmp_path / "data"),
                 "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "headless Chromium" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()
