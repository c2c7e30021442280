"""lungcl tune: a decade grid trained on train, picked on validation, saved with its whole curve."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lungcl.cli.main import main
from lungcl.experiments.config import CONFIG_VERSION
from lungcl.experiments.tune import curve_point, default_values


def test_default_grids_span_the_decades():
    ewc, l2 = default_values("ewc"), default_values("l2")
    assert ewc[0] == 1.0 and ewc[-1] == 1e6 and len(ewc) == 7
    assert l2[0] == pytest.approx(1e-3) and l2[-1] == pytest.approx(1e3)
    assert default_values("online_ewc") == ewc


class _FakeRecord:
    """Validation and test matrices that disagree: the curve must follow validation only."""

    run_id, tasks = "x", ["a", "b"]

    class config:  # noqa: N801
        strength = 3.0

    def accuracy_matrix(self, split, metric):
        values = {"val": [[0.8, 0.5], [0.6, 0.9]], "test": [[0.1, 0.1], [0.1, 0.1]]}[split]
        return pd.DataFrame(np.array(values), columns=self.tasks)


def test_curve_point_reads_the_validation_matrix_only():
    point = curve_point(_FakeRecord(), "final_val_bacc")
    assert point["criterion"] == pytest.approx(0.75)
    assert point["forgetting_val"] == {"a": pytest.approx(0.2)}
    assert point["new_task_val_bacc"] == {"a": 0.8, "b": 0.9}
    assert curve_point(_FakeRecord(), "new_task_val_bacc")["criterion"] == pytest.approx(0.85)


def test_tune_cli_smoke_records_the_curve_and_the_pick(data_dir, smoke_store, tmp_path, capsys):
    argv = ["tune", "--order", "ABC", "--method", "ewc", "--profile", "smoke", "--data-dir", str(data_dir),
            "--results", str(tmp_path), "--quiet", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    strengths = [p["strength"] for p in record["curve"]]
    assert len(strengths) >= 6 and math.log10(max(strengths) / min(strengths)) >= 5
    assert record["split"] == "val" and record["pick"]["strength"] in strengths
    assert record["config_version"] == CONFIG_VERSION and record["select"] == record["base_config"]["select"]
    best = max(p["criterion"] for p in record["curve"] if p["criterion"] is not None)
    assert record["pick"]["criterion"] == best
    flat = len({p["criterion"] for p in record["curve"]}) == 1
    assert record["flat"] == flat and not (flat and record["at_grid_edge"])
    assert all(set(p["final_val_bacc"]) == {"malignancy", "lobulation", "calcification"} for p in record["curve"])
    saved = Path(tmp_path) / "tunes" / f"{record['tune_id']}.json"
    assert json.loads(saved.read_text()) == record
    assert main(argv) == 0 and json.loads(capsys.readouterr().out) == record  # cached runs: same record


def test_tune_rejects_a_method_without_lambda(data_dir, tmp_path, capsys):
    code = main(["tune", "--method", "sgd", "--profile", "smoke", "--results", str(tmp_path)])
    assert code == 2 and "no lambda" in capsys.readouterr().err


def test_a_flat_curve_is_said_to_choose_nothing(data_dir, smoke_store, tmp_path, capsys, monkeypatch):
    """When every lambda scores the same, the record says ``flat`` and the CLI says the curve does not
    choose (not "widen the grid", which would not help)."""
    import importlib

    tune_module = importlib.import_module("lungcl.experiments.tune")  # the module, not the function
    monkeypatch.setattr(tune_module, "curve_point", lambda record, criterion: {
        "strength": record.config.strength, "run_id": record.run_id, "criterion": 0.5})
    code = main(["tune", "--order", "AB", "--method", "l2", "--values", "1,10,100", "--profile", "smoke",
                 "--data-dir", str(data_dir), "--results", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "the curve does not choose" in out and "widen" not in out


def test_a_tune_where_no_lambda_finished_fails(data_dir, smoke_store, tmp_path, capsys):
    """Every lambda diverges (lr=1e8): the curve is shown with each failure, and the exit is 2, not 0."""
    code = main(["tune", "--order", "AB", "--method", "l2", "--values", "1,10", "--profile", "smoke",
                 "--data-dir", str(data_dir), "--results", str(tmp_path), "--quiet", "--set", "lr=1e8",
                 "--set", "epochs=1"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.count("failed: training diverged") == 2
    assert "no lambda of 2 finished" in err and len(err.strip().splitlines()) == 1


def _point(seed: int, criterion: float, old: float, new: float) -> dict:
    return {"seed": seed, "strength": 10.0, "run_id": f"r{seed}", "criterion": criterion,
            "final_val_bacc": {"a": old, "b": new}, "forgetting_val": {"a": 0.1 * seed},
            "new_task_val_bacc": {"a": 0.8, "b": new}, "mean_forgetting_val": 0.1 * seed}


def test_a_lambda_over_seeds_is_the_mean_of_its_seeds_with_their_spread():
    from lungcl.experiments.tune import seed_mean_point

    row = seed_mean_point(10.0, [_point(0, 0.60, 0.5, 0.7), _point(1, 0.70, 0.6, 0.8), _point(2, 0.80, 0.7, 0.9)])
    assert row["criterion"] == pytest.approx(0.70) and row["criterion_sd"] == pytest.approx(0.10)
    assert row["final_val_bacc"] == {"a": pytest.approx(0.6), "b": pytest.approx(0.8)}
    assert row["forgetting_val"] == {"a": pytest.approx(0.1)} and row["mean_forgetting_val"] == pytest.approx(0.1)
    assert row["run_ids"] == ["r0", "r1", "r2"] and [p["seed"] for p in row["per_seed"]] == [0, 1, 2]
    one = seed_mean_point(10.0, [_point(4, 0.6, 0.5, 0.7)])
    assert one["criterion"] == 0.6 and one["criterion_sd"] == 0.0 and "seed" not in one


def test_a_tune_over_seeds_trains_every_lambda_at_every_seed_and_picks_the_mean(data_dir, smoke_store, tmp_path):
    """Two lambdas x two seeds (smoke): four ordinary runs; the curve's criterion is the mean of the seeds'
    own criteria, the pick is the best mean; the one-seed tune of the same base keeps its own id."""
    from lungcl.experiments.config import default_config
    from lungcl.experiments.tune import tune, tune_configs, tune_id

    base = default_config("smoke", tasks="AB", method="l2", data_dir=str(data_dir))
    record = tune(base, [1.0, 100.0], results=tmp_path, progress=False, seeds=[0, 1], workers=1)
    assert record["seeds"] == [0, 1] and "mean over seeds 0, 1" in record["criterion_description"]
    runs = tune_configs(base, [1.0, 100.0], [0, 1])
    assert sorted((c.strength, c.seed) for c in runs) == [(1.0, 0), (1.0, 1), (100.0, 0), (100.0, 1)]
    assert len({c.run_id for c in runs}) == 4 and all((tmp_path / "runs" / c.run_id).is_dir() for c in runs)
    for p in record["curve"]:
        assert [q["seed"] for q in p["per_seed"]] == [0, 1]
        assert p["criterion"] == pytest.approx(np.mean([q["criterion"] for q in p["per_seed"]]))
    assert record["pick"]["criterion"] == max(p["criterion"] for p in record["curve"])
    assert tune_id(base, [1.0, 100.0], "final_val_bacc") == tune_id(base, [1.0, 100.0], "final_val_bacc", [0])
    assert record["tune_id"] != tune_id(base, [1.0, 100.0], "final_val_bacc")


def test_the_spread_lines_say_how_sharply_the_seeds_pick():
    from lungcl.chapter.tune_provenance import tune_spread_lines

    def lam(strength, crits):
        return {"strength": strength, "criterion": float(np.mean(crits)), "criterion_sd": float(np.std(crits, ddof=1)),
                "per_seed": [{"seed": s, "criterion": c} for s, c in enumerate(crits)]}

    record = {"method": "ewc", "seeds": [0, 1, 2], "base_config": {"fisher": "exact"},
              "curve": [lam(1.0, [0.60, 0.62, 0.61]), lam(100.0, [0.70, 0.74, 0.72]), lam(1e4, [0.71, 0.73, 0.75])],
              "pick": {"strength": 1e4}}
    (line,) = tune_spread_lines([record])
    assert "lambda 10000, 73.0%" in line and "the next best, lambda 100, is 1.0 points lower" in line
    assert "behind the pick at 2 of 3 seeds" in line and "from 100 to 10000" in line
    sharp = {**record, "curve": [lam(1.0, [0.60, 0.62, 0.61]), lam(1e4, [0.80, 0.81, 0.82])]}
    assert "only the pick scores within one seed standard deviation" in tune_spread_lines([sharp])[0]
    assert tune_spread_lines([{**record, "seeds": [0]}]) == []
