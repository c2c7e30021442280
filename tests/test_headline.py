"""Balanced accuracy is the headline of the chapters' sentences (accuracy stays beside the thesis's tables); the
kept checkpoints and the rule that kept them are shown; the shipped tunes' rules are stated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_records import make_record


def _with_kept(record, baccs: list[float], select: str = "balanced_loss"):
    for stage, bacc in zip(record.data["stages"], baccs):
        stage.update(select=select, best_criterion=0.4, best_val_balanced_accuracy=bacc)
    return record


def test_kept_table_and_sentences_read_the_records():
    from lungcl.chapter import kept

    records = [_with_kept(make_record("sgd", seed=k), [0.7 + 0.01 * k, 0.62, 0.8]) for k in range(2)]
    table = kept.kept_table(records)
    assert table.loc[("SGD", 2, "lobulation", "balanced_loss"), "runs"] == 2
    assert table.loc[("SGD", 1, "malignancy", "balanced_loss"), "val balanced accuracy"] == pytest.approx(0.705)
    assert table.loc[("SGD", 1, "malignancy", "balanced_loss"), "lowest"] == pytest.approx(0.7)
    assert kept.kept_sentence(table).startswith("Every stage of every run kept a checkpoint above 55.0 %")
    assert "(lowest: 62.0 %)" in kept.kept_sentence(table)
    low = kept.kept_table(records + [_with_kept(make_record("ewc", strength=1.0), [0.7, 0.5, 0.8])])
    text = kept.kept_sentence(low)
    assert "EWC stage 2 (lobulation): 50.0 %" in text and "SGD" not in text
    assert "lowest class-balanced validation loss (`select=balanced_loss`)" in kept.rule_sentence(records)
    assert "select=loss" in kept.rule_sentence([make_record("sgd", select="loss")])
    old = kept.kept_table([make_record("sgd")])  # a record of version 3: no kept balanced accuracy, rule "loss"
    assert old.index[0][3] == "loss" and kept.kept_sentence(old).startswith("These records do not hold")


def _sweep(old: float, new: float) -> np.ndarray:
    return np.array([[0.8, 0.5, 0.5], [0.7, 0.8, 0.5], [old, old, new]])


def test_the_analysis_sentences_name_the_metric_they_read():
    from lungcl import summaries
    from lungcl.chapter import analysis

    records = [make_record("ewc", strength=s, R=_sweep(old, new)) for s, old, new in
               ((1.0, 0.6, 0.8), (10.0, 0.7, 0.6))]
    tradeoff = summaries.tradeoff_table(records, metric="balanced_accuracy")
    val = pd.DataFrame({"method": ["ewc", "ewc"], "strength": [1.0, 10.0], "all": [0.55, 0.65]})
    text = analysis.lambda_sentences(tradeoff, val, l2_default=0.5, ewc_default=1.0)
    # make_record's balanced accuracy is its accuracy minus 10 points
    assert text.startswith("- **EWC**: from lambda 1 to 10 in test balanced accuracy, the earlier tasks go from "
                           "50.0 % to 60.0 %")
    updated, frozen = [make_record("sgd", R=_sweep(0.5, 0.9))], [make_record("sgd", R=_sweep(0.7, 0.9))]
    table = analysis.batchnorm_table(updated, frozen, "calcification", metric="balanced_accuracy")
    assert table.loc[("frozen after stage 1", "SGD"), "earlier tasks' final balanced accuracy"] == pytest.approx(0.6)
    assert analysis.batchnorm_sentence(table).startswith(
        "Freezing the statistics changes the mean forgetting of balanced accuracy by SGD")
    transfer = summaries.transfer_table([make_record("sgd", R=_sweep(0.5, 0.9)),
                                         make_record("joint", R=_sweep(0.8, 0.9))], metric="balanced_accuracy")
    assert analysis.reference_notes(transfer, 0.9).startswith(
        "Joint training's average final balanced accuracy minus each sequential method's: SGD +20.0 points")


def test_the_orders_sentences_read_balanced_accuracy_beside_the_thesis_accuracy():
    from lungcl import thesis
    from lungcl.chapter import orders

    records = [make_record(m, order=o, strength=s) for m, s in (("sgd", None), ("ewc", 1.0))
               for o in ("malignancy,lobulation,calcification", "lobulation,malignancy,calcification")]
    spread = orders.headline_spread(records)
    published = thesis.order_spread(thesis.transfer_with_thesis(records))
    assert spread.loc["EWC", "thesis range"] == published.loc["EWC", "thesis range"]
    text = orders.spread_sentences(spread, orders.HEADLINE)
    assert "**SGD**: the average final balanced accuracy ranges over" in text
    if np.isfinite(spread.loc["SGD", "thesis range"]):
        assert "the thesis's, in the accuracy it published, ranges over" in text
    positions = orders.headline_positions(records)
    assert len(positions) == 12 and positions.metric.eq("balanced_accuracy").all()
    assert orders.position_sentence(positions, orders.HEADLINE).startswith(
        "Learned last minus learned first (final balanced accuracy; the thesis's: accuracy), mean over the tasks")


def test_the_sequence_findings_sentences_read_balanced_accuracy():
    from lungcl.chapter import sequence

    records = [make_record(m, strength=s, seed=k) for k in range(2)
               for m, s in (("sgd", None), ("l2", 0.5), ("ewc", 1.0))]
    _, text = sequence.findings_section(records)
    verdict_lines = [ln for ln in text.split("\n\n") if ln.startswith("- ")]
    assert verdict_lines and all(" on balanced accuracy - margin" in ln for ln in verdict_lines)
