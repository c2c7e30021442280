"""The thesis's findings judged by the interval of their margin over repeated runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_records import make_record  # noqa: E402

from lungcl import verdicts  # noqa: E402

F1 = "1. EWC forgets the first task less than SGD"


def test_verdict_reads_the_interval():
    assert verdicts.verdict(0.01, 0.05) == "reproduced"
    assert verdicts.verdict(-0.05, -0.01) == "reversed"
    assert verdicts.verdict(-0.02, 0.02, thesis_margin=0.10) == "not reproduced"
    assert verdicts.verdict(-0.02, 0.12, thesis_margin=0.10) == "inconclusive"
    assert verdicts.verdict(np.nan, np.nan, thesis_margin=0.10) == "inconclusive"


def _runs(forget_ewc: list[float], forget_sgd: list[float], order: str = "ABC") -> list:
    """Sequences of A, B, C: the first task learned to 0.9, then lost by the given amounts."""
    tasks = {"ABC": "malignancy,lobulation,calcification", "CBA": "calcification,lobulation,malignancy"}[order]
    recs = []
    for seed, (fe, fs) in enumerate(zip(forget_ewc, forget_sgd)):
        for method, f in (("sgd", fs), ("l2", (fe + fs) / 2), ("ewc", fe)):
            R = np.array([[0.9, 0.5, 0.5], [0.9 - f / 2, 0.8, 0.5], [0.9 - f, 0.8, 0.8]])
            recs.append(make_record(method, tasks, R=R, seed=seed))
    return recs


def test_ewc_keeping_the_first_task_in_every_seed_is_reproduced():
    table = verdicts.findings_table(_runs([0.01, 0.02, 0.015], [0.10, 0.12, 0.11]))
    row = table.loc[F1]
    assert row.runs == 3 and row.ci_low > 0 and row.verdict == "reproduced"
    assert row.margin == pytest.approx(np.mean([0.09, 0.10, 0.095]))
    assert np.isfinite(row["thesis margin"])  # ABC is one of the thesis's orders


def test_opposite_margins_are_reversed_and_noise_is_not_a_verdict():
    assert verdicts.findings_table(_runs([0.10, 0.12, 0.11], [0.01, 0.02, 0.015])).loc[F1].verdict == "reversed"
    noisy = verdicts.findings_table(_runs([0.10, 0.0, 0.05], [0.0, 0.10, 0.06])).loc[F1]
    assert noisy.ci_low < 0 < noisy.ci_high and noisy.verdict in ("inconclusive", "not reproduced")
    one = verdicts.findings_table(_runs([0.01], [0.10])).loc[F1]
    assert one.runs == 1 and one.verdict == "inconclusive"  # one run: no interval, no verdict


def test_order_finding_needs_several_runs_per_order():
    same = _runs([0.01, 0.02], [0.10, 0.11], "ABC") + _runs([0.01, 0.02], [0.10, 0.11], "CBA")
    table = verdicts.order_verdicts(same)
    assert set(table.index) == {"sgd", "l2", "ewc"} and (table["runs per order"] == 2).all()
    assert verdicts.findings_table(same).loc[verdicts.ORDER_FINDING].verdict == "reproduced"
    single = _runs([0.01], [0.10], "ABC") + _runs([0.01], [0.10], "CBA")
    assert verdicts.findings_table(single).loc[verdicts.ORDER_FINDING].verdict == "inconclusive"
    assert len(verdicts.verdict_sentences(verdicts.findings_table(same))) == 6
