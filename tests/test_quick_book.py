"""The README's quick build (issue 26, item 3): every chapter receives every book setting it reads, so the
discussion finds every run the experiment chapters computed with those settings."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("jupytext")

from lungcl.book import build  # noqa: E402
from lungcl.cli.main import build_parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# on top of the README's settings, fewer runs (one order, one lambda each, no frozen-BN runs): also settings
# the discussion must receive. The README's line alone took 8.7 minutes here (2 busy cores), this 4.4
SMALLER = ["--set", "orders=ABC", "--set", "ewc_factors=[1]", "--set", "l2_factors=[1]", "--set", "frozen_bn=False"]


def readme_quick_build() -> list[str]:
    """The quick ``lungcl book --set ...`` line as README.md writes it, as argv."""
    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines()
                if ln.startswith("lungcl book --set epochs="))
    return shlex.split(line)[1:]


@pytest.mark.slow
def test_the_readme_quick_build_leaves_no_run_of_the_discussion_missing(tmp_path: Path, data_dir: Path):
    from lungcl.cli.book import parse_chapter_settings

    args = build_parser().parse_args(readme_quick_build() + SMALLER)
    overrides = parse_chapter_settings(args.overrides)
    assert {"fisher_variants", "normalisations"} <= set(overrides)  # the settings the issue was about
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "notebooks").mkdir()
    for src in (ROOT / "notebooks").glob("0[3-7]_*.py"):  # the experiment chapters the discussion reads
        if src.stem != "06_multitask_gates":
            shutil.copy(src, tmp_path / "notebooks" / src.name)
    report = build.build_book(root=tmp_path, profile="smoke", data_dir=data_dir, results_dir=tmp_path / "results",
                             render=False, progress=print, overrides=overrides)
    assert [c.name for c in report.chapters] == ["03_sequence_ABC", "04_task_orders", "05_analysis",
                                                 "07_discussion"]
    import nbformat

    discussion = nbformat.read(tmp_path / build.EXECUTED / "07_discussion.ipynb", as_version=4)
    shown = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                      for c in discussion.cells for o in c.get("outputs", []))
    assert "The thesis's findings" in "".join(c.source for c in discussion.cells)
    assert "run(s) of the experiment chapters are not in" not in shown, shown[:400]
    tables = "".join(str(o.get("data", {}).get("text/html", "")) for c in discussion.cells for o in c.get("outputs", []))
    # the verdicts, from the runs found (the smoke networks may not learn: then they say "untestable")
    assert any(v in tables for v in ("reproduced", "inconclusive", "reversed", "untestable"))
