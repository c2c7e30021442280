"""``lungcl findings``: the task-order design computed (or loaded) and its findings printed, on the smoke profile."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungcl.cli.main import main
from lungcl.experiments import ResultsFolder, load_record
from lungcl.metrics import binary_metrics


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_findings_json_on_a_smoke_design(data_dir, smoke_store, tmp_path, capsys):
    """Two orders x two seeds x three methods (the smallest design with a spread within every order):
    one object per finding with its estimate, interval, runs per order, adjusted p, verdict and metric; the
    smoke networks, which do not learn, give 'untestable', never 'not reproduced'; the records keep the
    per-nodule test probabilities the intervals resample, and they give the records' own balanced accuracy."""
    argv = ["findings", "--profile", "smoke", "--data-dir", str(data_dir), "--results", str(tmp_path),
            "--orders", "ABC,CBA", "--seeds", "0-1", "--workers", "2"]
    code, out, _ = _run(capsys, *argv, "--json", "--quiet")
    assert code == 0
    report = json.loads(out)
    assert "Holm" in report["correction"] and "test patients" in report["interval"]
    assert len(report["findings"]) == 5 + 3
    for f in report["findings"]:
        assert set(f) >= {"finding", "estimate", "ci", "runs_per_order", "p_adjusted", "verdict", "metric"}
        assert f["runs_per_order"] == {"ABC": 2, "CBA": 2} and f["metric"] == "balanced_accuracy"
        assert len(f["ci"]) == 2
    records = [load_record(p.parent.name, tmp_path) for p in sorted((tmp_path / "runs").glob("*/record.json"))]
    assert len(records) == 12 and ResultsFolder(tmp_path).root == tmp_path
    own_stage = {}
    for r in records:
        test_set, stages = r.test_predictions()
        R = r.accuracy_matrix("test", "balanced_accuracy").to_numpy()
        for s, probs in enumerate(stages):
            for j, t in enumerate(r.tasks):
                assert binary_metrics(test_set[t]["labels"], probs[t])["balanced_accuracy"] == R[s, j]
        for t, v in zip(r.tasks, np.diag(r.accuracy_matrix("val", "balanced_accuracy").to_numpy())):
            own_stage.setdefault(t, []).append(v)
    learned = report["learned"]
    assert learned["per_task"] == pytest.approx({t: np.mean(v) for t, v in own_stage.items()})
    verdicts = {f["verdict"] for f in report["findings"]}
    if min(learned["per_task"].values()) <= 0.55:  # the smoke networks sit at chance
        assert not learned["learned"] and verdicts == {"untestable: the networks did not learn the tasks"}
    else:
        assert not any(v == "not reproduced" and f["ci"][0] == f["ci"][1]
                       for f in report["findings"] for v in [f["verdict"]])
    code, table, err = _run(capsys, *argv)  # loaded, not recomputed: a readable table
    assert code == 0 and "computed" not in err and "p (Holm)" in table and "4. Task order matters little" in table


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "0.7"], "--alpha 0.7"),
    (["--n-boot", "3"], "--n-boot 3"),
    (["--margin", "2"], "--margin 2"),
    (["--seeds", "0,0"], "chapter parameter seeds"),
    (["--orders", "ABD"], "ABD"),
])
def test_bad_options_are_one_line_before_any_run(argv, message, tmp_path, capsys):
    code, out, err = _run(capsys, "findings", "--profile", "smoke", "--data-dir", str(tmp_path / "nowhere"),
                          "--results", str(tmp_path / "results"), *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "results" / "runs").exists()
