"""Shared first stages: what stage 1 reads, that every method trains it as SGD does, and that a run built on a
stored first stage records, field by field, what the same run computes whole."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from lungcl.experiments import default_config, run
from lungcl.experiments.first_stage import (FIRST_STAGE_AS_SGD, first_stage_key, in_task_order,
                                            shares_first_stage)
from lungcl.methods import METHODS
from lungcl.runs.prefix import PrefixStore


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_no_weight_depends_on_the_order_of_the_tasks():
    """Each head from (seed, its task's name), drawing nothing from the trunk's generator: the trunk is the
    same for any tasks, and a task's head the same in any order (the first stage is then shared)."""
    from lungcl.experiments.sequence import build_model

    config = default_config("smoke")
    abc = _state(build_model(config, ["malignancy", "lobulation", "calcification"]))
    cba = _state(build_model(config, ["calcification", "lobulation", "malignancy"]))
    alone = _state(build_model(config, ["lobulation"]))
    assert _same(abc, cba)
    assert all(torch.equal(abc[k], v) for k, v in alone.items())
    other_seed = _state(build_model(config.replace(seed=1), ["malignancy", "lobulation", "calcification"]))
    heads = [k for k in abc if k.startswith("heads.")]
    assert heads and all(not torch.equal(abc[k], other_seed[k]) for k in heads if k.endswith("weight"))
    # two heads of one network differ (their seeds differ by the task's name)
    assert not torch.equal(abc["heads.malignancy.weight"], abc["heads.lobulation.weight"])


def test_the_first_stage_key_reads_what_stage_one_reads():
    base = default_config("smoke", tasks="ABC", method="sgd")
    key = first_stage_key(base, "store")
    same = [base.replace(method="ewc", strength=1e4), base.replace(method="l2", strength=3.0),
            base.replace(method="online_ewc", strength=10.0, gamma=0.5), base.replace(method="joint"),
            base.replace(method="ewc", strength=10.0, fisher="sampled", fisher_samples=7),
            base.replace(tasks=("malignancy", "calcification", "lobulation")), base.replace(bn="freeze"),
            base.replace(probes=True), base.replace(n_boot=7), base.replace(penalty_step="gradient"),
            base.replace(data_dir="elsewhere")]
    assert all(shares_first_stage(c) and first_stage_key(c, "store") == key for c in same)
    other = [base.replace(seed=1), base.replace(tasks="BAC"), base.replace(tasks="AB"), base.replace(lr=0.01),
             base.replace(epochs=2), base.replace(eval_every=1), base.replace(curve_every=2),
             base.replace(patience=2), base.replace(bn="task"), base.replace(norm="group"),
             base.replace(streams="position"), base.replace(fold=1), base.replace(augment=False)]
    assert len({first_stage_key(c, "store") for c in other} | {key}) == len(other) + 1
    assert first_stage_key(base, "another store") != key  # a rebuilt patch store: another first stage
    assert first_stage_key(base, "store", threads=2) != first_stage_key(base, "store", threads=1)
    assert not shares_first_stage(base.replace(tasks="A"))
    assert not shares_first_stage(default_config("smoke", kind="single_task", tasks="A"))
    assert set(FIRST_STAGE_AS_SGD) <= set(METHODS)


def test_curve_rows_follow_the_order_of_the_runs_tasks():
    rows = [{"step": 0, "task": t, "split": s} for t in "ABC" for s in ("val", "test")]
    rows += [{"step": 2, "task": "A", "split": "val"}]
    rows += [{"step": 4, "task": "A", "split": "val"}] + [{"step": 4, "task": t, "split": s}
                                                          for t in "ABC" for s in ("val", "test")][1:]
    acb = in_task_order(rows, list("ACB"))
    assert [(r["step"], r["task"], r["split"]) for r in acb[:6]] == [
        (0, "A", "val"), (0, "A", "test"), (0, "C", "val"), (0, "C", "test"), (0, "B", "val"), (0, "B", "test")]
    assert [r["task"] for r in acb[6:]] == ["A", "A", "A", "C", "C", "B", "B"]
    assert in_task_order(rows, list("ABC")) == rows


@pytest.mark.slow
def test_every_method_trains_stage_one_as_sgd_bit_for_bit(data_dir, smoke_store):
    """No penalty before a task is learned: the penalty is zero and the proximal step does nothing, and joint
    training mixes only the first task; so the kept weights and the curves of stage 1 are SGD's."""
    from lungcl.experiments.evaluation import Evaluator
    from lungcl.experiments.sequence import build_method, build_model, load_splits
    from lungcl.experiments.trainer import StageContext, train_stage

    base = default_config("smoke", data_dir=str(data_dir), tasks="ABC", method="sgd")
    splits = load_splits(base)
    evaluator = Evaluator(splits, torch.device("cpu"))
    tasks = list(base.tasks)

    def stage_one(config):
        model, rows = build_model(config, tasks), []
        ctx = StageContext(config, model, build_method(config), splits, evaluator, torch.device("cpu"),
                           rows.append, progress=False)
        result = train_stage(ctx, 0, tasks[0], [tasks[0]], tasks)
        return _state(model), rows, (result.steps, result.best_step, result.best_val_loss)

    sgd = stage_one(base)
    for method in FIRST_STAGE_AS_SGD:
        for step in ("proximal", "gradient"):
            config = base.replace(method=method, strength=0.0 if method in ("sgd", "joint") else 1e3,
                                  penalty_step=step)
            state, rows, result = stage_one(config)
            assert _same(state, sgd[0]) and rows == sgd[1] and result == sgd[2], (method, step)


@pytest.mark.slow
def test_a_run_on_a_shared_first_stage_records_what_it_computes_whole(data_dir, smoke_store, tmp_path):
    """ABC with SGD stores its first stage; EWC on ACB (another method, lambda, Fisher and order of the later
    tasks, BatchNorm frozen after stage 1, probes) loads it. Its record equals, every field but the clock and
    the host, that of the same run computed whole in a fresh results folder, curves included."""
    base = default_config("smoke", data_dir=str(data_dir), tasks="ABC", method="sgd", eval_every=1, patience=2)
    shared = tmp_path / "shared"
    leader = run(base, shared, progress=False)
    assert leader.data["timings"]["stages"][0]["first_stage"] == "computed"
    keys = PrefixStore(shared).keys()
    assert len(keys) == 1
    followers = [base.replace(method="ewc", strength=30.0, tasks="ACB", probes=True, fisher="sampled", bn="freeze")]
    for i, config in enumerate(followers):
        built = run(config, shared, progress=False)
        first = built.data["timings"]["stages"][0]
        assert first["first_stage"] == "loaded" and first["first_stage_s"] > 0
        whole = run(config, tmp_path / f"whole{i}", progress=False)
        assert whole.data["timings"]["stages"][0]["first_stage"] == "computed"
        assert built.comparable() == whole.comparable(), config.label
        assert built.curves().equals(whole.curves())
        assert torch.equal(built.load_checkpoint()["model"]["heads.lobulation.weight"],
                           whole.load_checkpoint()["model"]["heads.lobulation.weight"])
    assert PrefixStore(shared).keys() == keys  # loaded, not computed again


def test_a_first_stage_is_computed_once_while_another_run_waits_for_it(tmp_path):
    """Two runs needing one first stage at once: the second waits for the first's lock and loads what it
    stored; a damaged file is said and computed again; a writer's leftover temporary file is never read."""
    store = PrefixStore(tmp_path)
    started, calls = threading.Event(), []

    def slow() -> dict:
        calls.append("first")
        started.set()
        time.sleep(0.5)
        return {"model": {"w": torch.ones(2)}, "stage": "{}"}

    def second() -> dict:
        calls.append("second")
        return {"model": {"w": torch.zeros(2)}, "stage": "{}"}

    out: dict = {}
    first = threading.Thread(target=lambda: out.setdefault("first", store.shared("k", slow)))
    first.start()
    started.wait(5)
    got, computed = store.shared("k", second)
    first.join()
    assert calls == ["first"] and not computed and out["first"][1]
    assert torch.equal(got["model"]["w"], torch.ones(2))
    assert store.keys() == ["k"]
    # a half-written prefix (an interrupted writer's temporary) is not a prefix
    tmp = store.path("j").parent / f".{store.path('j').name}.x.tmp"
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(b"half")
    assert store.load("j") is None and store.keys() == ["k"]
    assert store.shared("j", second)[1] and not tmp.exists()
    # a damaged one is computed again
    Path(store.path("k")).write_bytes(b"not a checkpoint")
    again, computed = store.shared("k", second)
    assert computed and torch.equal(again["model"]["w"], torch.zeros(2))
