"""``lungcl mtl`` on the smoke profile: a record is written, a second identical call loads it."""

import json

import numpy as np
import pytest

from lungcl.cli.main import main
from lungcl.mtl.record import load_mtl_record


@pytest.fixture(scope="module")
def smoke_mtl(smoke_store, data_dir, tmp_path_factory):
    results = tmp_path_factory.mktemp("mtl-results")
    args = ["mtl", "--profile", "smoke", "--data-dir", str(data_dir), "--results", str(results), "--quiet"]
    return args, results


def test_mtl_writes_a_record_and_loads_it_again(smoke_mtl, capsys, monkeypatch):
    args, results = smoke_mtl
    assert main(args) == 0
    out = capsys.readouterr().out
    path = out.strip().splitlines()[-1]
    record = load_mtl_record(path, results)
    d = record.data
    assert d["tasks"][0] == "subtlety" and len(d["tasks"]) == 9 and d["n_classes"] == [2] * 9
    assert set(d["metrics"]["malignancy"]) == {"val", "test"}
    assert {"accuracy", "balanced_accuracy", "sensitivity", "specificity", "auc"} <= set(
        d["metrics"]["malignancy"]["test"])
    per_stage = np.array(d["sharing"]["per_stage"])
    assert per_stage.shape == (3, 9, 9)
    np.testing.assert_allclose(per_stage.sum(axis=2), 1.0)
    assert len(d["sharing"]["history"]) == d["config"]["epochs"]
    assert "sharing degree" in out

    # the second identical call loads the record: training is never entered
    import lungcl.mtl.train as train

    def boom(*a, **k):
        raise AssertionError("retrained a finished run")

    monkeypatch.setattr(train, "train_mtl", boom)
    mtime = (results / "mtl" / "runs" / record.run_id / "record.json").stat().st_mtime_ns
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == path
    assert (results / "mtl" / "runs" / record.run_id / "record.json").stat().st_mtime_ns == mtime
    assert main(args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == record.run_id


@pytest.mark.slow
def test_same_config_same_numbers(smoke_mtl, data_dir, tmp_path):
    """Determinism: a fresh run of the same configuration gives the same record (clock aside)."""
    args, results = smoke_mtl
    main(args)
    first = load_mtl_record(next((results / "mtl" / "runs").iterdir()).name, results)
    again = ["mtl", "--profile", "smoke", "--data-dir", str(data_dir), "--results", str(tmp_path), "--quiet"]
    assert main(again) == 0
    second = load_mtl_record(first.run_id, tmp_path)
    a, b = first.comparable(), second.comparable()
    a.pop("provenance"), b.pop("provenance")
    assert a == b


def test_hard_baseline_and_multiclass_settings(smoke_store, data_dir, tmp_path, capsys):
    base = ["mtl", "--profile", "smoke", "--data-dir", str(data_dir), "--results", str(tmp_path), "--quiet",
            "--set", "epochs=1", "--set", "steps_per_epoch=1", "--tasks", "malignancy,lobulation,texture"]
    assert main(base + ["--model", "hard"]) == 0
    hard = load_mtl_record(capsys.readouterr().out.strip().splitlines()[-1], tmp_path)
    assert hard.data["sharing"] is None and hard.data["config"]["model"] == "hard"
    assert main(base + ["--multiclass", "--param-scale", "0.5"]) == 0
    multi = load_mtl_record(capsys.readouterr().out.strip().splitlines()[-1], tmp_path)
    assert multi.data["n_classes"] == [5, 5, 5]
    assert {"accuracy", "balanced_accuracy", "mae"} <= set(multi.data["metrics"]["malignancy"]["test"])
    assert multi.data["n_parameters"] < multi.data["n_parameters_full"]


@pytest.mark.parametrize("extra, message", [
    (["--set", "bogus=1"], "unknown setting 'bogus'"),
    (["--tasks", "nonsense"], "unknown tasks 'nonsense'"),
    (["--model", "hard", "--param-scale", "0.5"], "param_scale applies to the gated network only"),
    (["--derm7pt", "/no/such/folder"], "Derm7pt folder not found: /no/such/folder"),
    (["--set", "epochs=zero"], "--set epochs=zero: expected int"),
])
def test_bad_input_is_one_line(extra, message, tmp_path, capsys):
    code = main(["mtl", "--profile", "smoke", "--results", str(tmp_path), "--data-dir", str(tmp_path),
                 "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_record_of_another_patch_store_is_recomputed(smoke_store, data_dir, tmp_path, monkeypatch, capsys):
    import lungcl.mtl.train as train
    from lungcl.data.store import store_digest
    from lungcl.mtl.config import default_mtl_config

    config = default_mtl_config("smoke", data_dir=str(data_dir), tasks="malignancy,texture", epochs=1,
                                steps_per_epoch=1)
    first = train.run_mtl(config, tmp_path, progress=False)
    assert first.data["provenance"]["manifest_sha256"] == store_digest(data_dir, "phantom", "smoke")
    calls = []
    real = train.train_mtl
    monkeypatch.setattr(train, "train_mtl", lambda *a, **k: calls.append(1) or real(*a, **k))
    train.run_mtl(config, tmp_path, progress=False)
    assert calls == []  # same store: loaded
    path = train.MULTITASK.folder(tmp_path).record_path(config.run_id)
    data = json.loads(path.read_text())
    data["provenance"]["manifest_sha256"] = "0" * 64  # as if the store had been rebuilt since
    path.write_text(json.dumps(data))
    again = train.run_mtl(config, tmp_path, progress=False)
    assert calls == [1] and again.data["provenance"]["manifest_sha256"] == store_digest(data_dir, "phantom", "smoke")
    assert "another patch store" in capsys.readouterr().err
