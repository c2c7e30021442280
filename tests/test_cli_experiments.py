"""``lungcl run | grid | sweep-lambda | show``: output contract and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lungcl.cli.main import main


@pytest.fixture(scope="module")
def cli_env(data_dir, smoke_store, tmp_path_factory):
    """Arguments shared by every command: the smoke profile, the session's data, a results folder."""
    results = tmp_path_factory.mktemp("cli-results")
    return ["--profile", "smoke", "--data-dir", str(data_dir), "--results", str(results), "--quiet"], results


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_the_record_path_last_and_show_reads_it(cli_env, capsys):
    common, results = cli_env
    code, out, _ = _run(capsys, "run", "--order", "AB", "--method", "l2", "--lambda", "2", *common)
    assert code == 0
    path = Path(out.strip().splitlines()[-1])
    assert path.name == "record.json" and path.parent.parent == results / "runs"
    assert "accuracy matrix" in out
    run_id = path.parent.name
    code, shown, _ = _run(capsys, "show", run_id[:8], "--results", str(results))
    assert code == 0 and run_id in shown and "forgetting" in shown
    code, js, _ = _run(capsys, "run", "--order", "AB", "--method", "l2", "--lambda", "2", "--json", *common)
    record = json.loads(js)
    assert code == 0 and record["run_id"] == run_id and record["config"]["strength"] == 2.0


def test_run_with_probes_and_show_splits_what_the_earlier_task_lost(cli_env, capsys):
    """``lungcl run --set bn=task --set probes=true``: the record has a probe and a re-thresholded head per
    trained task after every stage, and ``lungcl show`` splits the earlier task's loss."""
    common, results = cli_env
    code, out, _ = _run(capsys, "run", "--order", "AB", "--method", "ewc", "--set", "bn=task",
                        "--set", "probes=true", *common)
    assert code == 0
    record = json.loads(Path(out.strip().splitlines()[-1]).read_text())
    assert record["config"]["bn"] == "task" and len(record["probes"]["stages"]) == 1 + 2
    code, shown, _ = _run(capsys, "show", record["run_id"], "--results", str(results),
                          "--metric", "balanced_accuracy")
    assert code == 0 and "features or heads" in shown
    row = next(ln.split() for ln in shown.splitlines() if ln.startswith(record["tasks"][0]))
    lost, representation, calibration, rest = map(float, row[1:5])
    assert lost == pytest.approx(representation + calibration + rest, abs=0.02)


def test_set_and_tasks_reach_the_config(cli_env, capsys):
    common, _ = cli_env
    code, js, _ = _run(capsys, "run", "--tasks", "spiculation,margin", "--set", "lr=0.01",
                       "--set", "eval_every=0", "--json", *common)
    record = json.loads(js)
    assert code == 0 and record["tasks"] == ["spiculation", "margin"]
    assert record["config"]["lr"] == 0.01 and record["config"]["eval_every"] == 0


def test_single_task_flag(cli_env, capsys):
    common, _ = cli_env
    code, js, _ = _run(capsys, "run", "--single-task", "--tasks", "AB", "--json", *common)
    assert code == 0 and json.loads(js)["kind"] == "single_task"


def test_grid_and_sweep_skip_finished_runs(cli_env, capsys):
    common, _ = cli_env
    argv = ["grid", "--orders", "AB,BA", "--methods", "sgd", "--folds", "0", *common]
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "2 computed, 0 already done, 0 failed" in out
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "0 computed, 2 already done" in out
    code, out, _ = _run(capsys, "sweep-lambda", "--order", "AB", "--method", "ewc", "--values", "0,10", *common)
    assert code == 0 and "2 computed" in out


def test_run_and_grid_take_the_frozen_trunk_reference(cli_env, capsys):
    """``lungcl run --order ABC --method frozen --profile smoke`` (issue 24's check) and a grid beside SGD."""
    common, _ = cli_env
    code, js, _ = _run(capsys, "run", "--order", "ABC", "--method", "frozen", "--lambda", "7", "--json", *common)
    record = json.loads(js)
    assert code == 0 and record["method"] == "frozen" and record["config"]["strength"] == 0.0
    assert [s["trained_tasks"] for s in record["stages"]] == [[t] for t in record["tasks"]]
    R = record["matrices"]["test"]["accuracy"]
    assert R[0][0] == R[1][0] == R[2][0]  # the first task's network is untouched after its stage
    code, out, _ = _run(capsys, "grid", "--orders", "AB", "--methods", "sgd,frozen", "--folds", "0", *common)
    assert code == 0 and "0 failed" in out and "frozen" in out


@pytest.mark.parametrize("argv, message", [
    (["run", "--method", "adam"], "unknown method 'adam'"),
    (["run", "--order", "ABD"], "unknown tasks 'ABD'"),
    (["run", "--tasks", "roundness"], "unknown task"),
    (["run", "--method", "ewc", "--lambda", "-1"], "lambda must be >= 0"),
    (["run", "--set", "epochs=many"], "expected int"),
    (["run", "--set", "colour=red"], "unknown setting 'colour'"),
    (["run", "--fold", "7"], "fold must be 0..4"),
    (["grid", "--orders", "ABC", "--methods", "sgd,magic"], "unknown method 'magic'"),
    (["grid", "--folds", "zero"], "cannot read folds"),
    (["sweep-lambda", "--method", "sgd", "--values", "1"], "has no lambda"),
    (["sweep-lambda", "--method", "ewc", "--values", "1,-5"], "lambda must be >= 0"),
    (["sweep-lambda", "--method", "frozen", "--values", "1"], "has no lambda"),
    (["tune", "--method", "frozen"], "method 'frozen' has no lambda to tune"),
    (["run", "--method", "frozen", "--set", "bn=task"], "a frozen trunk never learns"),
])
def test_bad_input_is_one_line_and_exit_2(cli_env, capsys, argv, message):
    common, _ = cli_env
    code, _, err = _run(capsys, *argv, *common)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_show_errors(cli_env, capsys, tmp_path):
    _, results = cli_env
    code, _, err = _run(capsys, "show", "0000000000000000", "--results", str(results))
    assert code == 2 and "no record" in err
    corrupt = tmp_path / "record.json"
    corrupt.write_text("{not json")
    code, _, err = _run(capsys, "show", str(corrupt))
    assert code == 2 and f"corrupt record {corrupt}" in err and len(err.strip().splitlines()) == 1
    foreign = tmp_path / "passwd"  # a file that is no record at all: said so, not "corrupt ... delete"
    foreign.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, _, err = _run(capsys, "show", str(foreign))
    assert code == 2 and f"{foreign} is not a lungcl run record" in err and "delete" not in err
    assert len(err.strip().splitlines()) == 1


def test_incompatible_results_folder(cli_env, capsys, tmp_path):
    common, _ = cli_env
    (tmp_path / "lungcl-results.json").write_text(json.dumps({"record_schema": 999}))
    code, _, err = _run(capsys, "run", *common, "--results", str(tmp_path))
    assert code == 2 and "record schema 999" in err
