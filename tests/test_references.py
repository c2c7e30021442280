"""EWC placed between SGD, the frozen trunk and joint training (lungcl.chapter.references), on synthetic
records whose balanced-accuracy matrices are set by hand (``make_record``: balanced accuracy = R - 0.1)."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_records import make_record

from lungcl.chapter import references as ref
from lungcl.errors import LungclError


def matrix(first_own: float, first_final: float, later: float) -> np.ndarray:
    """A 3-task accuracy matrix: the first task after its stage and at the end, the later tasks' level."""
    return np.array([[first_own, 0.5, 0.5], [first_final, later, 0.5], [first_final, later, later]]) + 0.1


def records(spec: dict[str, list[tuple[float, float, float]]]) -> list:
    """One record per (method, seed): ``spec[method][seed]`` = (first after its stage, first final, later)."""
    strengths = {"l2": 1.0, "ewc": 10.0}
    return [make_record(m, R=matrix(*v), seed=k, strength=strengths.get(m))
            for m, values in spec.items() for k, v in enumerate(values)]


def sentence(spec) -> str:
    recs = records(spec)
    return ref.between_sentence(ref.run_measures(recs), recs[0].tasks)


JITTERS = {"sgd": (-0.01, 0.0, 0.01), "ewc": (0.005, 0.005, -0.01), "frozen": (0.01, -0.01, 0.0),
           "joint": (0.0, 0.01, -0.01)}  # three seeds with a spread between them (mean 0), per method


def seeds(first_own: float, first_final: float, later: float, method: str) -> list[tuple[float, float, float]]:
    return [(first_own, first_final + j, later - j) for j in JITTERS[method]]


def spec(**levels: tuple[float, float, float]) -> dict[str, list[tuple[float, float, float]]]:
    return {m: seeds(*v, method=m) for m, v in levels.items()}


def test_run_measures_and_the_bounds_table() -> None:
    recs = records({**spec(joint=(0.8, 0.78, 0.75), sgd=(0.8, 0.6, 0.8), frozen=(0.8, 0.8, 0.7)),
                    "ewc": [(0.8, 0.7, 0.72)]})
    runs = ref.run_measures(recs)
    ewc = runs[runs.method == "ewc"].iloc[0]
    assert ewc.learned == pytest.approx(0.8) and ewc["first"] == pytest.approx(0.7)
    assert ewc.later == pytest.approx(0.72) and ewc.average == pytest.approx((0.7 + 0.72 * 2) / 3)
    table = ref.bounds_table(runs)
    assert list(table.index) == ["SGD", "EWC", "frozen trunk", "joint"]  # BOUNDED's order, present ones only
    assert table.runs.tolist() == [3, 1, 3, 3]
    assert table.loc["SGD", "first"] == pytest.approx(0.6)
    assert table.loc["SGD", "first low"] < table.loc["SGD", "first"] < table.loc["SGD", "first high"]
    assert np.isnan(table.loc["EWC", "first low"])  # one run: no interval
    view = ref.bounds_view(table)
    assert view.loc["EWC", ref.MEASURES["first"]] == "70.0"
    assert view.loc["SGD", ref.MEASURES["first"]].startswith("60.0 [")
    with pytest.raises(LungclError, match="2 task orders"):
        ref.run_measures(recs + [make_record("sgd", order="lobulation,malignancy,calcification")])


def test_ewc_keeps_more_than_sgd_learns_less_than_frozen_and_does_less_than_freezing() -> None:
    text = sentence(spec(sgd=(0.8, 0.6, 0.8), ewc=(0.8, 0.7, 0.68), frozen=(0.8, 0.8, 0.75)))
    assert text.startswith("On the first task (malignancy), EWC keeps it better than SGD (EWC 70.0 %, SGD 60.0 %: "
                           "+10.0 points, 95 % interval over 3 paired runs [")
    assert "on the later tasks it learns them worse than the frozen trunk (EWC 68.0 %, frozen trunk 75.0 %" in text
    assert "EWC does less than freezing the trunk after the first task" in text
    assert "Joint" not in text


def test_ewc_does_more_than_freezing_and_sits_below_joint() -> None:
    text = sentence(spec(sgd=(0.8, 0.6, 0.8), ewc=(0.8, 0.75, 0.8), frozen=(0.8, 0.8, 0.6), joint=(0.8, 0.85, 0.85)))
    assert "EWC keeps it better than SGD" in text and "learns them better than the frozen trunk" in text
    assert "EWC does more than freezing the trunk after the first task" in text
    assert "Joint training, which trains on every task's data at every stage, reaches 85.0 % on average; " \
           "EWC is below it (" in text


def test_indistinguishable_from_freezing_and_from_sgd() -> None:
    ewc = [(0.8, 0.6 + j, 0.7 - j) for j in (-0.02, 0.0, 0.02)]  # around SGD on the first task, frozen's average
    text = sentence({"sgd": [(0.8, 0.6 + j, 0.8) for j in (0.01, -0.01, 0.0)], "ewc": ewc,
                     "frozen": [(0.8, 0.8, 0.6 + j) for j in (0.01, 0.0, -0.01)]})
    assert "keeps it no differently from SGD as far as the runs can tell" in text
    assert "the runs cannot tell EWC from freezing the trunk after the first task" in text


def test_one_seed_gives_numbers_but_no_verdict() -> None:
    text = sentence({"sgd": [(0.8, 0.6, 0.8)], "ewc": [(0.8, 0.7, 0.72)], "frozen": [(0.8, 0.8, 0.75)],
                     "joint": [(0.8, 0.8, 0.8)]})
    assert text.startswith("With one run per method no interval separates the methods")
    assert "EWC 70.0 %, SGD 60.0 %: +10.0 points, one run each, no interval" in text
    assert "than freezing the trunk after" not in text and "cannot tell" not in text and "below it" not in text
    assert "Run several seeds" in text and "reaches 80.0 % on average (EWC" in text


def test_runs_that_did_not_learn_the_first_task_place_nothing() -> None:
    text = sentence(spec(sgd=(0.52, 0.5, 0.5), ewc=(0.55, 0.5, 0.5), frozen=(0.52, 0.5, 0.5)))
    assert text.startswith("EWC cannot be placed between SGD and the frozen trunk here: no run learned the "
                           "first task (malignancy: at most 55.0 % balanced accuracy")


def test_the_sentence_needs_sgd_ewc_and_frozen() -> None:
    assert sentence(spec(sgd=(0.8, 0.6, 0.8), ewc=(0.8, 0.7, 0.7))) == ref.NEEDS


def texts(fig) -> set[str]:
    """Every legend entry, title and x tick label of a figure."""
    out = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    for ax in fig.axes:
        out |= set(ax.get_legend_handles_labels()[1]) | {ax.get_title()} | {t.get_text() for t in ax.get_xticklabels()}
    return out


def test_the_sequence_chapters_tables_and_figures_take_the_references() -> None:
    """Frozen and joint records beside the thesis's methods: the thesis's columns stay theirs (the references
    have none: "-" or blank), the findings read the three methods only, and every figure draws the five."""
    import matplotlib.pyplot as plt

    from lungcl import plots, summaries, thesis
    from lungcl.chapter import sequence

    recs = records(spec(sgd=(0.8, 0.6, 0.8), ewc=(0.8, 0.7, 0.7), frozen=(0.8, 0.8, 0.6), joint=(0.8, 0.8, 0.8)))
    recs += [make_record("l2", R=matrix(*v), seed=k, strength=1.0) for k, v in enumerate(seeds(0.8, 0.7, 0.7, "ewc"))]
    stages = thesis.stage_table_with_thesis(recs)
    assert stages[stages.method.isin(["frozen", "joint"])].thesis.isna().all()
    assert stages[stages.method == "ewc"].thesis.notna().any()
    side = thesis.stage_side_by_side(stages, 2)
    assert {"frozen trunk", "joint"} <= set(side.index.get_level_values("method"))
    assert (side.xs("frozen trunk", level="method")["accuracy (thesis)"] == "-").all()
    matrix_view = thesis.matrix_side_by_side(recs)
    assert matrix_view.xs("joint", level="method").xs("thesis", axis=1, level=1).isna().all().all()
    transfer = thesis.transfer_with_thesis(recs)
    assert transfer[transfer.method == "frozen"].thesis.isna().all()
    view = thesis.transfer_side_by_side(transfer)
    assert list(view.columns.get_level_values(0).unique()) == ["SGD", "L2", "EWC", "frozen trunk", "joint"]
    assert (view[("frozen trunk", "thesis")] == "-").all()
    table, _ = sequence.findings_section(recs)
    assert table is not None and table.data.loc[:, ("accuracy", "runs")].iloc[0] == 3  # the three methods, 3 seeds
    balanced = summaries.transfer_table(recs, metric="balanced_accuracy")
    for fig in (plots.accuracy_curves(recs, "accuracy"), plots.metric_bars(stages), plots.matrix_heatmaps(recs),
                plots.transfer_bars(balanced), plots.bounds_plane(ref.run_measures(recs), recs[0].tasks[0])):
        assert any("frozen trunk" in x for x in texts(fig)), fig
        plt.close(fig)


def test_the_sequence_chapter_runs_the_references_with_the_methods_seeds_and_folds() -> None:
    """``references`` (a chapter parameter): the same seeds, folds and epochs as the methods; the book's plan
    reads the same function with the notebook's cell, so it sees the runs."""
    from pathlib import Path

    from lungcl.chapter import runs as chapter_runs
    from lungcl.chapter.setup import chapter_setup
    from lungcl.book.parameters import check_chapter_settings
    from lungcl.plan import cell_values

    ctx = chapter_setup("smoke", "phantom", "data", "results", 0)
    both = chapter_runs.sequence_chapter(ctx, method="sgd,ewc", folds=[0, 1], epochs=2, references="frozen,joint")
    assert {(c.method, c.seed, c.fold, c.epochs) for c in both} == {
        (m, s, f, 2) for m in ("sgd", "ewc", "frozen", "joint") for s in (0, 1, 2) for f in (0, 1)}
    assert {c.run_id for c in chapter_runs.sequence_chapter(ctx, method="sgd,ewc", folds=[0, 1], epochs=2,
                                                        references=["frozen", "joint"])} == {c.run_id for c in both}
    for none in ("", []):
        assert {c.method for c in chapter_runs.sequence_chapter(ctx, method="ewc", references=none)} == {"ewc"}
    with pytest.raises(LungclError, match="references: unknown reference 'ewc'; choose from frozen, joint"):
        chapter_runs.sequence_chapter(ctx, references="frozen,ewc")
    cell = cell_values(Path(__file__).resolve().parents[1] / "notebooks" / "03_sequence_ABC.py")
    assert cell["references"] == "frozen,joint"
    planned = chapter_runs.chapter_configs("03_sequence_ABC", ctx, {k: v for k, v in cell.items() if k not in (
        "profile", "source", "data_dir", "results_dir", "seed", "workers")})
    assert {"frozen", "joint"} <= {c.method for c in planned}
    for ok in ("frozen,joint", "", [], ["joint"]):
        check_chapter_settings({"references": ok})
    for bad in (3, [1], None):
        with pytest.raises(LungclError, match="chapter parameter references="):
            check_chapter_settings({"references": bad})
