"""The findings' statistics (lungcl.findings) on synthetic designs: every order x seeds, with per-nodule
test predictions, so that the two-level bootstrap, Holm's correction, the equivalence test and the
"untestable" branch are checked against effects we put in."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_records import make_record  # noqa: E402

from lungcl import findings as F  # noqa: E402
from lungcl.data.tasks import THESIS_ORDERS  # noqa: E402
from lungcl.orders import order_tasks  # noqa: E402

F1 = "1. EWC forgets the first task less than SGD"
ORDERS = list(THESIS_ORDERS)


def _targets(forget: dict[str, float], learn: float = 0.85) -> dict[str, np.ndarray]:
    """Per method a balanced-accuracy matrix: each task learned to ``learn``, every earlier task losing
    ``forget[method]`` per later stage; tasks not trained yet at chance."""
    out = {}
    for m, f in forget.items():
        R = np.full((3, 3), 0.5)
        for s in range(3):
            for j in range(s + 1):
                R[s, j] = learn - f * (s - j)
        out[m] = R
    return out


def _record(method: str, order: str, seed: int, R: np.ndarray, rng: np.random.Generator | None,
            test_set: dict | None, val: float = 0.8):
    """A record whose test balanced accuracy matrix is ``R`` (with ``rng``: drawn nodule by nodule on
    ``test_set``, and the matrix recomputed from those predictions) and whose tasks reach ``val`` on validation."""
    rec = make_record(method, ",".join(order_tasks(order)), R=np.full((3, 3), 0.7), seed=seed)
    tasks = rec.tasks
    if rng is not None:
        stages = []
        for s in range(3):
            probs = {}
            for j, t in enumerate(tasks):
                y = np.asarray(test_set[t]["labels"])
                correct = rng.random(len(y)) < R[s, j]
                called = np.where(correct, y == 1, y == 0)
                probs[t] = np.where(called, 0.9, 0.1).tolist()
                R[s, j] = (called[y == 1].mean() + (~called)[y == 0].mean()) / 2
            rec.data["stages"][s]["test_probabilities"] = probs
            stages.append(probs)
        rec.data["test_set"] = test_set
    rec.data["matrices"]["test"]["balanced_accuracy"] = R.tolist()
    rec.data["matrices"]["val"]["balanced_accuracy"] = np.where(np.eye(3) > 0, val, 0.5).tolist()
    return rec


def _test_set(order: str, rng: np.random.Generator, patients: int = 60) -> dict:
    """Per task: 1-2 nodules for each of ``patients`` patients, a third of them positive."""
    out = {}
    for t in order_tasks(order):
        ids = [f"P{i:03d}" for i in range(patients) for _ in range(1 + i % 2)]
        out[t] = {"labels": (rng.random(len(ids)) < 0.33).astype(int).tolist(), "patients": ids}
    return out


def design(forget: dict[str, float], seeds: int = 3, spread: float = 0.0, val: float = 0.8,
           predictions: bool = True, seed: int = 0) -> list:
    """SGD, L2 and EWC on every order x ``seeds``; each seed moves every matrix by N(0, ``spread``)."""
    rng = np.random.default_rng(seed)
    records = []
    for order in ORDERS:
        for s in range(seeds):
            shift = rng.normal(0, spread)
            test_set = _test_set(order, rng)
            for m, R in _targets(forget).items():
                records.append(_record(m, order, s, R + shift, rng if predictions else None, test_set, val))
    return records


def _finding(report: dict, name: str) -> dict:
    return next(f for f in report["findings"] if f["finding"] == name)


def test_holm_adjusts_step_down():
    np.testing.assert_allclose(F.holm([0.01, 0.04, 0.03, 0.2]), [0.04, 0.09, 0.09, 0.2])
    adjusted = F.holm([0.5, np.nan, 0.01])
    assert np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02) and adjusted[0] == pytest.approx(0.5)


def test_a_known_effect_is_reproduced_with_its_runs_and_holm():
    report = F.findings_report(design({"sgd": 0.20, "l2": 0.10, "ewc": 0.02}), n_boot=200)
    f1 = _finding(report, F1)
    assert f1["verdict"] == "reproduced" and f1["metric"] == "balanced_accuracy"
    assert f1["runs_per_order"] == {o: 3 for o in ORDERS} and set(f1["per_order"]) == set(ORDERS)
    assert f1["estimate"] == pytest.approx(np.mean(list(f1["per_order"].values())))  # order a fixed effect
    assert f1["ci"][0] > 0 and f1["ci"][0] <= f1["estimate"] <= f1["ci"][1]
    assert 0.3 < f1["estimate"] < 0.42  # 2 x (0.20 - 0.02) of forgetting, up to the test set's sampling
    p = [f["p"] for f in report["findings"]]
    np.testing.assert_allclose([f["p_adjusted"] for f in report["findings"]], F.holm(p))
    assert len(report["findings"]) == 5 + 3 and "Holm" in report["correction"]
    assert "test patients" in report["interval"] and report["learned"]["learned"]


def test_a_zero_effect_is_not_reproduced():
    report = F.findings_report(design({"sgd": 0.10, "l2": 0.10, "ewc": 0.10}, seed=1), n_boot=200)
    f1 = _finding(report, F1)
    assert f1["ci"][0] < 0 < f1["ci"][1] and f1["p_adjusted"] > 0.05
    assert f1["verdict"] in ("not reproduced", "inconclusive")
    assert f1["ci"][1] - f1["ci"][0] > 0.005  # the test set's sampling widens it: not a zero-width interval


def test_the_interval_includes_the_test_sets_sampling():
    """Without any spread between seeds, the interval still has the width of the test set's sampling;
    records without predictions give the between-run spread only (zero here) and say so."""
    forget = {"sgd": 0.20, "l2": 0.10, "ewc": 0.02}
    with_predictions = _finding(F.findings_report(design(forget), n_boot=200), F1)
    without = F.findings_report(design(forget, predictions=False), n_boot=200)
    assert with_predictions["ci"][1] - with_predictions["ci"][0] > 0.01
    assert _finding(without, F1)["ci"][1] - _finding(without, F1)["ci"][0] == pytest.approx(0)
    assert "spread between runs only" in without["interval"]


def _order_design(step: float, noise: float, seed: int = 0) -> list:
    """Average final balanced accuracy = 0.7 + ``step`` x the order's index + N(0, ``noise``) per run."""
    rng = np.random.default_rng(seed)
    records = []
    for k, order in enumerate(ORDERS):
        for s in range(3):
            for m in ("sgd", "l2", "ewc"):
                R = np.full((3, 3), 0.5)
                R[np.tril_indices(3)] = 0.7 + step * k + rng.normal(0, noise)
                records.append(_record(m, order, s, R, None, None))
    return records


def test_order_equivalence_passes_for_a_tenth_of_a_point_and_fails_for_five():
    close = F.findings_report(_order_design(0.001 / 5, 0.0005), n_boot=50)
    far = F.findings_report(_order_design(0.05 / 5, 0.0005), n_boot=50)
    for m in ("sgd", "l2", "ewc"):
        near, apart = (_finding(r, f"{F.ORDER_FINDING} ({m})") for r in (close, far))
        assert near["verdict"] == "reproduced" and near["p_adjusted"] < 0.05 and near["ci"][1] < 0.02
        assert near["estimate"] == pytest.approx(0.001, abs=0.003)
        assert apart["verdict"] == "reversed" and apart["p_adjusted"] > 0.05 and apart["ci"][0] > 0.02
        assert apart["variance_shares"]["order"] > 0.9  # the orders, not the seeds, move it
        assert near["runs_per_order"] == {o: 3 for o in ORDERS}


def test_networks_that_did_not_learn_are_untestable_never_not_reproduced():
    report = F.findings_report(design({"sgd": 0.0, "l2": 0.0, "ewc": 0.0}, val=0.5), n_boot=50)
    assert not report["learned"]["learned"]
    assert {f["verdict"] for f in report["findings"]} == {F.UNTESTABLE}
    assert F.UNTESTABLE in F.verdict_sentences(report)[0]


def test_sentences_state_verdict_interval_runs_and_adjusted_p():
    report = F.findings_report(design({"sgd": 0.20, "l2": 0.10, "ewc": 0.02}), n_boot=100)
    lines = F.verdict_sentences(report)
    assert len(lines) == 8 and "reproduced" in lines[0] and "Holm-adjusted p" in lines[0]
    assert "3 run(s) in each of 6 order(s)" in lines[0]
    table = F.findings_table(report)
    assert list(table.verdict) == [f["verdict"] for f in report["findings"]]


def test_two_settings_of_one_method_at_a_replicate_are_refused():
    from lungcl.errors import LungclError

    recs = design({"sgd": 0.2, "l2": 0.1, "ewc": 0.0}, seeds=1, predictions=False)
    other = make_record("ewc", "malignancy,lobulation,calcification", strength=123.0)
    with pytest.raises(LungclError, match="two ewc runs"):
        F.replicates(recs + [other])


def test_stored_probabilities_keep_the_called_class_and_old_stages_read_the_same():
    from lungcl.experiments.evaluation import stored_probabilities
    from lungcl.experiments.record_types import StageRecord

    p = np.array([0.4999996, 0.5, 0.1234567891, 0.99999999])
    stored = stored_probabilities(p)
    assert stored[0] < 0.5 <= stored[1] and stored[2] == 0.123457 and ((np.array(stored) >= 0.5) == (p >= 0.5)).all()
    old = {"stage": 0, "task": "malignancy", "trained_tasks": ["malignancy"], "steps": 2, "epochs": 1,
           "best_stage_step": 2, "best_val_loss": 0.5, "stopped_early": False, "metrics": {}}
    assert StageRecord.from_dict(old).to_dict() == old  # a record written before keeps its JSON
    assert make_record("sgd").test_predictions() is None
