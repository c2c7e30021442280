"""Runs on the smoke profile: records, determinism, caching, resume, corrupt files, grids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lungcl.errors import LungclError
from lungcl.experiments import (Record, default_config, execute_grid, load_record, records_table, run,
                                run_grid)
from lungcl.experiments import sequence
from lungcl.experiments.records import RECORD_SCHEMA
from lungcl.runs.folder import RESULTS_MARKER, ResultsFolder, load_checkpoint


@pytest.fixture(scope="module")
def smoke(data_dir, smoke_store):
    """A smoke configuration maker over the session's phantom store (2 tasks to stay quick)."""
    def make(**kw):
        kw.setdefault("tasks", "AB")
        return default_config("smoke", data_dir=str(data_dir), **kw)
    return make


@pytest.fixture(scope="module")
def ewc_record(smoke, tmp_path_factory) -> Record:
    return run(smoke(tasks="ABC", method="ewc"), tmp_path_factory.mktemp("results"), progress=False)


def test_record_holds_what_a_chapter_needs(ewc_record: Record):
    d = ewc_record.data
    tasks = ["malignancy", "lobulation", "calcification"]
    assert d["schema"] == RECORD_SCHEMA and d["tasks"] == tasks and d["order"] == "ABC"
    assert d["run_id"] == ewc_record.config.run_id == ewc_record.path.parent.name
    assert [s["task"] for s in d["stages"]] == tasks
    R = ewc_record.accuracy_matrix()
    assert R.shape == (3, 3) and list(R.columns) == tasks
    assert ((R.to_numpy() >= 0) & (R.to_numpy() <= 1)).all()
    # every task is measured after every stage (unseen ones too, for forward transfer)
    last = d["stages"][-1]["metrics"]
    for t in tasks:
        for key in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "auc", "tp", "tn", "fp", "fn"):
            assert key in last[t]["test"]
        lo, hi = last[t]["test"]["ci"]["accuracy"]
        assert lo <= last[t]["test"]["accuracy"] <= hi
    assert "ci" not in d["stages"][0]["metrics"]["calcification"]["test"]  # not yet learned
    s = d["summary"]["test"]["accuracy"]
    assert set(s["forgetting"]) == set(tasks[:2])
    assert s["average_accuracy"] == pytest.approx(R.iloc[-1].mean())
    assert s["forgetting"]["malignancy"] == pytest.approx(R.iloc[:2, 0].max() - R.iloc[2, 0])
    # curves: every task of the sequence on val and test at every evaluation, across stages
    curves = ewc_record.curves()
    assert set(curves["task"]) == set(tasks) and set(curves["split"]) == {"val", "test"}
    assert curves["step"].is_monotonic_increasing and curves["stage"].max() == 2
    assert {"torch", "monai", "numpy", "lungcl"} <= set(d["environment"])
    assert d["provenance"]["source"] == "phantom" and d["timings"]["total_s"] > 0
    ckpt = ewc_record.load_checkpoint()
    assert any(k.startswith("fisher/") for k in ckpt["method"]) and "trunk.0.weight" in ckpt["model"]


def test_record_round_trip_by_id_prefix_folder_and_file(ewc_record: Record):
    results = ewc_record.path.parents[2]
    for ref in (ewc_record.run_id, ewc_record.run_id[:6], ewc_record.path.parent, ewc_record.path):
        again = load_record(ref, results)
        assert again.data == ewc_record.data
    assert records_table([ewc_record]).loc[0, "method"] == "ewc"


def test_same_config_gives_the_same_record(smoke, ewc_record: Record, tmp_path):
    again = run(ewc_record.config, tmp_path, progress=False)
    assert again.comparable() == ewc_record.comparable()
    a, b = again.load_checkpoint()["model"], ewc_record.load_checkpoint()["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_is_loaded_not_recomputed(ewc_record: Record, monkeypatch):
    monkeypatch.setattr(sequence, "train_run", _must_not_train)
    again = run(ewc_record.config, ewc_record.path.parents[2], progress=False)
    assert again.data == ewc_record.data


def _must_not_train(*args, **kwargs):
    raise AssertionError("a finished run was recomputed")


def test_interrupted_run_resumes_at_its_last_finished_stage(smoke, tmp_path, monkeypatch):
    config = smoke(method="ewc")
    reference = run(config, tmp_path / "a", progress=False)

    real = sequence.train_stage
    calls = []

    def interrupt_second_stage(ctx, stage, *args, **kw):
        calls.append(stage)
        if stage == 1 and len(calls) == 2:
            raise KeyboardInterrupt
        return real(ctx, stage, *args, **kw)

    monkeypatch.setattr(sequence, "train_stage", interrupt_second_stage)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "b", progress=False)
    folder = ResultsFolder(tmp_path / "b")
    assert not folder.is_finished(config.run_id)  # nothing half-written is taken for a result
    assert (folder.run_dir(config.run_id) / "partial.pt").exists()
    resumed = run(config, tmp_path / "b", progress=False)
    assert calls == [0, 1, 1]  # stage 0 was not trained again
    assert resumed.data["resumed_from_stage"] == 1
    assert resumed.comparable() == reference.comparable()
    assert not (folder.run_dir(config.run_id) / "partial.pt").exists()


def test_interrupted_grid_resumes_without_recomputing(smoke, tmp_path, monkeypatch):
    configs = [smoke(method=m) for m in ("sgd", "l2", "ewc")]
    real = sequence.train_run
    trained = []

    def stop_at_third(config, *args, **kw):
        if len(trained) == 2:
            raise KeyboardInterrupt
        trained.append(config.method)
        return real(config, *args, **kw)

    monkeypatch.setattr(sequence, "train_run", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        run_grid(configs, tmp_path, progress=False)
    assert trained == ["sgd", "l2"]

    def count(config, *args, **kw):
        trained.append(config.method)
        return real(config, *args, **kw)

    monkeypatch.setattr(sequence, "train_run", count)
    outcome = execute_grid(configs + configs[:1], tmp_path, progress=False)  # a repeated id is run once
    assert trained == ["sgd", "l2", "ewc"]
    assert outcome.loaded == [configs[0].run_id, configs[1].run_id] and outcome.computed == [configs[2].run_id]
    assert [r.config.method for r in outcome.records] == ["sgd", "l2", "ewc"]


def test_corrupt_record_is_a_clear_error_and_the_grid_goes_on(smoke, tmp_path):
    good, bad = smoke(method="sgd"), smoke(method="l2")
    run_grid([good, bad], tmp_path, progress=False)
    path = ResultsFolder(tmp_path).record_path(bad.run_id)
    path.write_text(path.read_text()[:100])
    with pytest.raises(LungclError, match=f"corrupt record {path}"):
        load_record(bad.run_id, tmp_path)
    outcome = execute_grid([bad, good], tmp_path, progress=False)
    assert list(outcome.errors) == [bad.run_id] and str(path) in outcome.errors[bad.run_id]
    assert [r.run_id for r in outcome.records] == [good.run_id]
    with pytest.raises(LungclError, match="1 run"):
        run_grid([bad, good], tmp_path, progress=False)


def test_edited_or_foreign_records_are_refused(ewc_record: Record, tmp_path):
    data = json.loads(ewc_record.path.read_text())
    edited = tmp_path / "edited" / "record.json"  # a record is a record.json (another name is not one)
    edited.parent.mkdir()
    edited.write_text(json.dumps({**data, "config": {**data["config"], "lr": 9.0}}))
    with pytest.raises(LungclError, match="does not match its configuration"):
        load_record(edited)
    old = tmp_path / "old" / "record.json"
    old.parent.mkdir()
    old.write_text(json.dumps({**data, "schema": 0}))
    with pytest.raises(LungclError, match="schema 0"):
        load_record(old)


def test_incompatible_results_folder_is_refused(smoke, tmp_path):
    (tmp_path / RESULTS_MARKER).write_text(json.dumps({"record_schema": RECORD_SCHEMA + 1}))
    with pytest.raises(LungclError, match="incompatible|record schema"):
        run(smoke(), tmp_path, progress=False)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("mine")
    with pytest.raises(LungclError, match="not a lungcl results folder"):
        run(smoke(), other, progress=False)


def test_corrupt_checkpoint_is_a_clear_error(ewc_record: Record, tmp_path):
    broken = tmp_path / "model.pt"
    broken.write_bytes(ewc_record.checkpoint_path.read_bytes()[:500])
    with pytest.raises(LungclError, match=f"corrupt checkpoint {broken}") as info:
        load_checkpoint(broken)
    assert f"delete the run's folder {tmp_path} and run again" in str(info.value)  # how to recompute
    assert "\n" not in str(info.value)


def test_single_task_baselines_train_each_task_from_scratch(smoke, tmp_path):
    rec = run(smoke(kind="single_task"), tmp_path, progress=False)
    assert rec.data["kind"] == "single_task"
    R = rec.accuracy_matrix().to_numpy()
    assert np.isfinite(np.diag(R)).all() and np.isnan(R[0, 1]) and np.isnan(R[1, 0])
    ckpt = rec.load_checkpoint()
    assert set(ckpt["model"]) == {"malignancy", "lobulation"}
    assert set(rec.curves()["task"]) == {"malignancy", "lobulation"}


def test_joint_trains_every_seen_task(smoke, tmp_path):
    rec = run(smoke(method="joint"), tmp_path, progress=False)
    assert rec.data["stages"][1]["trained_tasks"] == ["malignancy", "lobulation"]
    assert rec.data["stages"][0]["trained_tasks"] == ["malignancy"]


def test_diverging_training_is_a_clear_error_and_leaves_no_record(smoke, tmp_path):
    config = smoke(method="sgd", lr=1e12)
    with pytest.raises(LungclError, match="training diverged in stage 1"):
        run(config, tmp_path, progress=False)
    assert not ResultsFolder(tmp_path).is_finished(config.run_id)


def test_two_processes_never_compute_the_same_run(smoke, tmp_path):
    folder = ResultsFolder(tmp_path).check(create=True)
    config = smoke()
    with folder.lock(config.run_id):
        with pytest.raises(LungclError, match="being computed by another process"):
            run(config, tmp_path, progress=False, prepare=False)


@pytest.mark.slow
def test_parallel_grids_give_the_same_records_as_serial(smoke, tmp_path):
    """--workers 2: two local processes; with dask, a Dask LocalCluster; the records are the same."""
    configs = [smoke(method=m) for m in ("sgd", "ewc")]
    serial = run_grid(configs, tmp_path / "serial", progress=False)
    local = run_grid(configs, tmp_path / "local", workers=2, progress=False)
    assert [r.comparable() for r in local] == [r.comparable() for r in serial]
    assert all(r.data["environment"]["pid"] != serial[0].data["environment"]["pid"] for r in local)
    pytest.importorskip("distributed")
    dask = execute_grid(configs, tmp_path / "dask", workers=2, dask=True, progress=False)
    assert dask.ok and [r.comparable() for r in dask.records] == [r.comparable() for r in serial]


def test_paper_profile_builds_and_trains_on_cpu_at_toy_size():
    """The paper profile's ResNet-101 (at width 2 here) takes a 64 px batch and one SGD step on CPU."""
    from contextlib import nullcontext

    from lungcl.experiments.sequence import build_method, build_model
    from lungcl.experiments.trainer import _train_step, resolve_device

    # amp acts on CUDA only (default_config refuses it where torch sees none): set past that check
    config = default_config("paper", width=2, method="ewc").replace(amp=True)
    assert config.depth == 101 and config.device == "auto"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(config, list(config.tasks))
    batch = (torch.rand(4, 1, 64, 64), torch.tensor([0, 1, 0, 1]))

    class Stream:
        def next(self):
            return batch

    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss = _train_step(model, build_method(config), optimizer, [Stream()], ["malignancy"], nullcontext(),
                       torch.amp.GradScaler("cuda", enabled=False), torch.device("cpu"))
    assert np.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_frozen_norm_statistics_mode():
    from lungcl.experiments.sequence import build_model
    from lungcl.experiments.trainer import train_mode

    model = build_model(default_config("smoke"), ["malignancy"])
    train_mode(model, freeze_norm_stats=True)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and model.training
    assert all(p.requires_grad for p in model.parameters())
    train_mode(model)
    assert all(m.training for m in norms)


def test_proximal_pull_is_the_exact_step_and_stays_stable_where_gradient_steps_diverge():
    """theta <- (theta + c m) / (1 + c) with c = lr * lambda * F: the exact minimiser of the step."""
    from lungcl.experiments.trainer import ProximalPull
    from lungcl.methods import make_method

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    method = make_method("l2", strength=1e6)
    method.consolidate(model, "a", [])
    anchor = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    lr = 0.1
    pull = ProximalPull(method, model, lr)
    pull.apply()
    c = lr * 1e6
    for p, a in zip(model.parameters(), anchor):
        assert torch.allclose(p, (a + 1.0 + c * a) / (1 + c), atol=1e-6)
        assert (p - a).abs().max() < 1e-4  # pulled (almost) onto the anchor, not flung away
    assert not ProximalPull(make_method("sgd"), model, lr).active


def test_proximal_penalty_step_runs(smoke, tmp_path):
    rec = run(smoke(method="ewc", strength=1e4, penalty_step="proximal"), tmp_path, progress=False)
    assert np.isfinite(rec.accuracy_matrix().to_numpy()).all()


@pytest.mark.slow
def test_grid_sent_to_an_existing_dask_scheduler(smoke, ewc_record, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        [rec] = run_grid([ewc_record.config], tmp_path, scheduler=cluster.scheduler_address, progress=False)
    assert rec.comparable() == ewc_record.comparable()
    with pytest.raises(LungclError, match="cannot reach the Dask scheduler"):
        run_grid([smoke(seed=5)], tmp_path, scheduler="tcp://127.0.0.1:9", progress=False)


def test_frozen_is_sgd_in_the_first_stage_then_moves_only_each_new_head(smoke):
    """``--method frozen``: stage 1 is SGD's, bit for bit (weights, BatchNorm statistics, metrics, curves);
    afterwards the trunk (statistics included) and every earlier head stay those of stage 1, bit for bit,
    while each new head learns."""
    states, data = {}, {}
    for method in ("sgd", "frozen"):
        after: list[dict] = []
        data[method], final = sequence.train_run(smoke(tasks="ABC", method=method), progress=False,
                                                 on_stage=lambda s: after.append(  # copies: on CPU the
                                                     {k: v.clone() for k, v in s["model"].items()}))  # live tensors
        states[method] = after + [final["model"]]
    assert smoke(method="frozen", strength=5.0).strength == 0.0 and data["frozen"]["method"] == "frozen"
    sgd, frozen = states["sgd"], states["frozen"]
    assert all(torch.equal(sgd[0][k], frozen[0][k]) for k in sgd[0])
    assert data["sgd"]["stages"][0]["metrics"] == data["frozen"]["stages"][0]["metrics"]
    first = [i for i, s in enumerate(data["sgd"]["curves"]["stage"]) if s == 0]
    assert all(data["sgd"]["curves"][c][i] == data["frozen"]["curves"][c][i]
               for c in ("step", "task", "split", "loss", "accuracy") for i in first)
    a, b, c = data["frozen"]["tasks"]

    def part(state: dict, *heads: str) -> dict:
        return {k: v for k, v in state.items() if not k.startswith("heads.") or k.split(".")[1] in heads}

    for later in frozen[1:]:  # the trunk and head A after stages 2 and 3 are those after stage 1
        kept = part(frozen[0], a)
        assert all(torch.equal(kept[k], later[k]) for k in kept)
    assert all(torch.equal(frozen[1][k], frozen[2][k]) for k in part(frozen[1], b) if k.startswith(f"heads.{b}."))
    for stage, head in ((1, b), (2, c)):  # each new head learned in its own stage
        assert any(not torch.equal(frozen[stage - 1][k], frozen[stage][k]) for k in frozen[stage]
                   if k.startswith(f"heads.{head}."))
    assert any(not torch.equal(sgd[0][k], sgd[2][k]) for k in sgd[0] if k.startswith("trunk."))  # SGD moved on
    R = np.array(data["frozen"]["matrices"]["test"]["balanced_accuracy"], dtype=float)
    assert R[1, 0] == R[0, 0] == R[2, 0] and R[2, 1] == R[1, 1]  # nothing an earlier task uses has moved


def test_frozen_refuses_per_task_batchnorm_statistics(smoke):
    with pytest.raises(LungclError, match="bn=task gives each task its own trunk statistics"):
        smoke(method="frozen", bn="task")
    assert smoke(method="frozen", norm="group").norm == "group" and smoke(method="frozen", bn="freeze").bn == "freeze"
