"""One root for everything (issue 26, item 2): the default data/ and results/ are the book root's wherever
lungcl runs, as for the chapters; a path given on the command line is relative to the current folder."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from lungcl import project
from lungcl.chapter.setup import chapter_setup
from lungcl.cli.common import resolve_folders
from lungcl.errors import LungclError
from lungcl.project import book_folder, where_defaults_go

ROOT = Path(__file__).resolve().parents[1]


def test_from_a_subfolder_the_defaults_are_the_roots_as_for_the_chapters(monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")
    assert book_folder("data") == ROOT / "data" and book_folder("results") == ROOT / "results"
    ctx = chapter_setup("smoke", "phantom", "data", "results", 0)
    assert (ctx.data_dir, ctx.results_dir) == (book_folder("data"), book_folder("results"))
    assert where_defaults_go() is None  # inside the book: nothing to say


def test_a_path_given_on_the_command_line_is_relative_to_the_current_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT / "notebooks")
    assert book_folder("results", "mine") == ROOT / "notebooks" / "mine"
    assert book_folder("data", tmp_path) == tmp_path
    args = argparse.Namespace(results="mine", data_dir=None)
    assert resolve_folders(args) is None
    assert (args.results, args.data_dir) == (str(ROOT / "notebooks" / "mine"), str(ROOT / "data"))


def test_outside_the_tree_the_installed_books_root_is_named(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the package's own book (an editable install) is the root found
    assert book_folder("results") == ROOT / "results"
    assert where_defaults_go() == f"outside the book: data/ and results/ are those of the book at {ROOT}"


def test_outside_any_book_the_current_folder_stands_in_and_one_line_says_so(monkeypatch, tmp_path):
    def no_book(start=None):
        raise LungclError("no lungcl book")

    monkeypatch.setattr(project, "project_root", no_book)  # a wheel install: no book beside the package
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(results=None, data_dir=None)
    note = resolve_folders(args)
    assert (args.results, args.data_dir) == (str(tmp_path / "results"), str(tmp_path / "data"))
    assert note == f"no lungcl book at or above {tmp_path}: data/ and results/ are made here"
    assert chapter_setup("smoke").results_dir == tmp_path / "results"  # the chapters' rule is the same


def test_the_cli_run_from_a_subfolder_reads_the_roots_results():
    """A real call: ``lungcl show`` from notebooks/ looks in the root's results/, not notebooks/results/."""
    proc = subprocess.run([sys.executable, "-m", "lungcl.cli.main", "show", "no-such-run"], cwd=ROOT / "notebooks",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert f"{ROOT / 'results' / 'runs'}" in proc.stderr and "notebooks/results" not in proc.stderr
    assert not (ROOT / "notebooks" / "results").exists() and not (ROOT / "notebooks" / "data").exists()


@pytest.mark.parametrize("argv", [["data", "summary"], ["run"], ["grid"], ["mtl"], ["tune"], ["show", "x"]])
def test_every_command_takes_its_default_folders_from_the_root(argv, monkeypatch):
    from lungcl.cli.main import build_parser

    monkeypatch.chdir(ROOT / "notebooks")
    args = build_parser().parse_args(argv)
    resolve_folders(args)
    for attr, name in (("results", "results"), ("data_dir", "data")):
        if hasattr(args, attr):
            assert getattr(args, attr) == str(ROOT / name), (argv, attr)
