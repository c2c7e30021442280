"""The run engine (lungcl.runs) gives the numbers the two engines before it gave, and runs in parallel the same.

The fixtures were written by the code before the engine (main at 33830fe) and matched field by field when the
engine landed; they were re-written since by a change that moves the numbers on purpose (CONFIG_VERSION 3:
the faster exact Fisher moves EWC's numbers at float rounding; 4: the kept checkpoint by the class-balanced
validation loss, in the multi-task networks too), so that they keep guarding every later change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lungcl.experiments import default_config, run
from lungcl.experiments.config import ADDED, RunConfig
from lungcl.experiments.runner import SEQUENCES
from lungcl.mtl.config import MTLConfig
from lungcl.mtl.train import MULTITASK, run_mtl
from lungcl.runs.executor import execute

BEFORE = Path(__file__).parent / "fixtures" / "engine_before"
# CPU numbers are bit-identical only on the instruction set that computed them: this machine's fixtures
CAPABILITY = torch.backends.cpu.get_cpu_capability()
MINE = BEFORE / CAPABILITY
# (the label is a display name: it names position streams since they stopped being the default)
VOLATILE = ("timings", "created", "environment", "resumed_from_stage", "label")
PATHS = ("data_dir", "lidc_root", "derm7pt_root")


def comparable(data: dict) -> dict:
    """The record without the clock, the host, the data folder's place, the store build's digest and the
    settings added since at the value that keeps the old behaviour (:data:`ADDED`: not in the run id either)."""
    out = {k: v for k, v in data.items() if k not in VOLATILE}
    out["config"] = {k: v for k, v in data["config"].items()
                     if k not in PATHS and not (k in ADDED and v == ADDED[k])}
    out["provenance"] = {k: v for k, v in data["provenance"].items() if k != "manifest_sha256"}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sequence_ABC_ewc_smoke", "mtl_gated_smoke", "mtl_hard_smoke"])
def test_smoke_runs_give_the_numbers_of_before_the_engine(name, smoke_store, data_dir, tmp_path):
    if not (MINE / f"{name}.json").is_file():
        pytest.skip(f"no {name} fixture computed on a {CAPABILITY} CPU (tests/fixtures/engine_before/README.md "
                    "says how to write one)")
    before = json.loads((MINE / f"{name}.json").read_text())
    settings = {**before["config"], "data_dir": str(data_dir)}
    if name.startswith("sequence"):
        # from_dict reads a setting the fixture leaves out at ADDED's value (streams="position", not the default)
        record = run(RunConfig.from_dict(settings), tmp_path, progress=False)
    else:
        record = run_mtl(MTLConfig.from_dict(settings), tmp_path, progress=False, threads=1)
    assert record.run_id == before["run_id"]
    after, expected = comparable(record.data), comparable(before)
    for key in sorted(set(after) | set(expected)):
        assert after.get(key) == expected.get(key), f"{name}: {key} differs"


@pytest.mark.slow
def test_local_processes_give_the_records_of_one_process(smoke_store, data_dir, tmp_path):
    configs = [MTLConfig.from_dict({**json.loads(next(BEFORE.glob("*/mtl_hard_smoke.json")).read_text())["config"],
                                    "data_dir": str(data_dir), "epochs": 1, "seed": s}) for s in (0, 1)]
    serial = execute(MULTITASK, configs, tmp_path / "serial", workers=1, progress=False)
    parallel = execute(MULTITASK, configs, tmp_path / "parallel", workers=2, progress=False)
    assert serial.ok and parallel.ok and sorted(parallel.computed) == sorted(c.run_id for c in configs)
    assert [comparable(r.data) for r in parallel.records] == [comparable(r.data) for r in serial.records]
    again = execute(MULTITASK, configs, tmp_path / "parallel", workers=2, progress=False)
    assert again.loaded == [c.run_id for c in configs] and not again.computed


def test_a_grid_reports_a_bad_record_and_goes_on(smoke_store, data_dir, tmp_path):
    config = default_config("smoke", data_dir=str(data_dir), tasks="A", epochs=1, max_steps_per_epoch=1)
    first = run(config, tmp_path, progress=False)
    first.path.write_text("{")
    outcome = execute(SEQUENCES, [config], tmp_path, progress=False)
    assert config.run_id in outcome.errors and "corrupt record" in outcome.errors[config.run_id]


def test_typed_stages_and_summaries_write_the_record_json_they_read():
    from lungcl.experiments.record_types import SequenceSummary, StageRecord
    from lungcl.experiments.records import Record

    data = json.loads(next(BEFORE.glob("*/sequence_ABC_ewc_smoke.json")).read_text())
    record = Record(data)
    assert [s.to_dict() for s in record.stages()] == data["stages"]
    assert [s.task for s in record.stages()] == record.tasks
    for split in ("test", "val"):
        for metric in ("accuracy", "balanced_accuracy"):
            summary = record.summary_of(split, metric)
            assert summary.to_dict() == data["summary"][split][metric]
            assert set(summary.final) == set(record.tasks) and summary.mean_forgetting is not None
    assert SequenceSummary.from_dict({"final": {"malignancy": 0.5}}).to_dict() == {"final": {"malignancy": 0.5}}
    assert StageRecord.from_dict(data["stages"][0]) == record.stages()[0]


def test_a_sequence_record_of_another_patch_store_is_recomputed(smoke_store, data_dir, tmp_path, capsys):
    from lungcl.data.store import store_digest

    config = default_config("smoke", data_dir=str(data_dir), tasks="A", epochs=1, max_steps_per_epoch=1)
    first = run(config, tmp_path, progress=False)
    written = first.path.stat().st_mtime_ns
    run(config, tmp_path, progress=False)
    assert first.path.stat().st_mtime_ns == written  # current: loaded, not written again
    data = json.loads(first.path.read_text())
    data["provenance"]["manifest_sha256"] = "0" * 64  # as if the store had been rebuilt since
    first.path.write_text(json.dumps(data))
    again = run(config, tmp_path, progress=False)
    assert again.data["provenance"]["manifest_sha256"] == store_digest(data_dir, "phantom", "smoke")
    assert "another patch store" in capsys.readouterr().err
    assert comparable(again.data) == comparable(first.data)
