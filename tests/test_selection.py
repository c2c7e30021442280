"""The checkpoint rule (``select``): on an imbalanced task the unweighted loss keeps a majority-leaning network,
the class-balanced loss the discriminating one; every trainer keeps the checkpoint its rule names."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from lungcl.errors import LungclError
from lungcl.metrics import binary_metrics
from lungcl.selection import SELECT_RULES, balanced_mean, better, check_select, criterion


def _imbalanced(rng: np.random.Generator, n: int, share: float = 0.05, separation: float = 1.8):
    """One feature, ``share`` positives shifted by ``separation`` (a classifier's AUC about 0.90)."""
    y = (np.arange(n) < round(share * n)).astype(np.int64)
    rng.shuffle(y)
    x = rng.normal(size=n) + separation * y
    return torch.tensor(x, dtype=torch.float32)[:, None], torch.tensor(y)


def _checkpoints(steps: int = 200, every: int = 10) -> list[tuple[int, dict]]:
    """A short training of a logistic unit on 5 % positives, batches weighted 50/50 (as the up-sampled
    training batches are), starting at the prior (a network that has learned only the class balance);
    one validation curve row per ``every`` steps, scored as the evaluator scores them."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    (x, y), (xv, yv) = _imbalanced(rng, 2000), _imbalanced(rng, 2000)
    w = torch.zeros(1, requires_grad=True)
    b = torch.tensor([math.log(0.05 / 0.95)], requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=0.05)
    class_weight = torch.tensor([0.5 / 0.95, 0.5 / 0.05])

    def logits(inputs: torch.Tensor) -> torch.Tensor:
        z = inputs[:, 0] * w + b
        return torch.stack([torch.zeros_like(z), z], dim=1)

    rows = []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        F.cross_entropy(logits(x), y, weight=class_weight).backward()
        optimizer.step()
        if step % every == 0:
            with torch.no_grad():
                z = logits(xv)
                each = F.cross_entropy(z, yv, reduction="none").double().numpy()
                prob = torch.softmax(z, dim=1)[:, 1].double().numpy()
            m = binary_metrics(yv.numpy(), prob)
            rows.append((step, {"task": "lobulation", "split": "val", "loss": float(each.mean()),
                                "balanced_loss": balanced_mean(each, yv.numpy()),
                                "balanced_accuracy": m["balanced_accuracy"], "auc": m["auc"]}))
    return rows


def _kept(points: list[tuple[int, dict]], select: str) -> tuple[int, dict]:
    """The checkpoint a trainer keeps: the first strictly better under ``select``."""
    best, kept = None, None
    for step, row in points:
        score = criterion([row], ["lobulation"], select)
        if better(score, best, select):
            best, kept = score, (step, row)
    return kept


def test_the_unweighted_loss_keeps_a_majority_leaning_checkpoint_and_the_balanced_loss_a_discriminating_one():
    points = _checkpoints()
    loss_step, by_loss = _kept(points, "loss")
    balanced_step, by_balanced = _kept(points, "balanced_loss")
    assert by_loss["loss"] < 0.19  # below a constant answer at the prior (0.199 nats at 5 %) ...
    assert by_loss["balanced_accuracy"] < 0.6  # ... by calling nearly every nodule negative
    assert by_balanced["balanced_accuracy"] > 0.75 and balanced_step > loss_step
    _, by_bacc = _kept(points, "balanced_accuracy")
    assert by_bacc["balanced_accuracy"] >= by_balanced["balanced_accuracy"] > by_loss["balanced_accuracy"]


def test_balanced_mean_weighs_each_class_equally():
    losses, labels = np.array([0.1, 0.1, 0.1, 2.0]), np.array([0, 0, 0, 1])
    assert balanced_mean(losses, labels) == pytest.approx((0.1 + 2.0) / 2)
    assert losses.mean() == pytest.approx(0.575)
    assert math.isnan(balanced_mean(np.array([]), np.array([])))


def test_the_criterion_is_the_mean_over_the_stage_tasks_and_reads_validation_only():
    rows = [{"task": "a", "split": "val", "loss": 0.2, "auc": 0.9},
            {"task": "b", "split": "val", "loss": 0.6, "auc": None},  # one class: AUC undefined
            {"task": "a", "split": "test", "loss": 9.0, "auc": 0.1}]
    assert criterion(rows, ["a", "b"], "loss") == pytest.approx(0.4)
    assert criterion(rows, ["a"], "auc") == pytest.approx(0.9)
    assert criterion(rows, ["a", "b"], "auc") == pytest.approx(0.9)  # b's AUC is undefined at every evaluation
    assert math.isnan(criterion(rows, ["b"], "auc"))  # nothing defined: never better than a defined value
    assert better(0.3, 0.4, "loss") and not better(0.4, 0.4, "loss") and better(0.5, 0.4, "auc")
    assert better(0.1, None, "balanced_accuracy") and not better(float("nan"), 0.4, "loss")


def test_a_bad_rule_is_one_line_naming_the_choices(capsys):
    from lungcl.cli.main import main
    from lungcl.experiments.config import default_config
    from lungcl.mtl.config import default_mtl_config

    for make in (default_config, default_mtl_config):
        with pytest.raises(LungclError, match="select must be one of balanced_loss, loss, balanced_accuracy, auc"):
            make("smoke", select="accuracy")
    assert main(["run", "--order", "ABC", "--profile", "smoke", "--set", "select=lowest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "select must be one of" in err[0]
    assert check_select("auc") == "auc" and SELECT_RULES[0] == "balanced_loss"
    from lungcl.book.parameters import check_chapter_settings

    check_chapter_settings({"select": "balanced_accuracy"})
    with pytest.raises(LungclError, match="chapter parameter select='lowest': expected one of balanced_loss, loss"):
        check_chapter_settings({"select": "lowest"})


def test_select_is_in_the_run_id_and_version_4():
    from lungcl.experiments.config import CONFIG_VERSION, canonical_json, default_config

    base = default_config("cpu", method="ewc")
    assert CONFIG_VERSION == 4 and base.select == "balanced_loss"
    assert '"select":"balanced_loss"' in canonical_json(base)
    assert base.replace(select="loss").run_id != base.run_id
    assert "select=loss" in base.replace(select="loss").label and "select" not in base.label


def test_a_stage_record_of_version_3_still_loads():
    from lungcl.experiments.record_types import StageRecord

    old = {"stage": 0, "task": "malignancy", "trained_tasks": ["malignancy"], "steps": 4, "epochs": 1,
           "best_stage_step": 4, "best_val_loss": 0.6, "stopped_early": False, "metrics": {}}
    stage = StageRecord.from_dict(old)
    assert stage.select is None and stage.best_val_balanced_accuracy is None and stage.to_dict() == old


def _criterion_by_step(record, select: str, stage: int = 0) -> pd.Series:
    """The mean over the stage's trained tasks of ``select`` on validation, per evaluation (step 0 excluded)."""
    trained = record.stages()[stage].trained_tasks
    curves = record.curves()
    rows = curves[(curves.stage == stage) & (curves.split == "val") & curves.task.isin(trained)
                  & (curves.stage_step > 0)]
    return rows.groupby("stage_step")[select].mean()


@pytest.mark.slow
@pytest.mark.parametrize("select,method", [("loss", "sgd"), ("balanced_loss", "sgd"), ("balanced_accuracy", "sgd"),
                                           ("balanced_loss", "joint")])
def test_the_trainer_keeps_the_checkpoint_its_rule_names(select, method, smoke_store, data_dir, tmp_path):
    from lungcl.cli.experiments import render_record
    from lungcl.experiments import default_config, run

    config = default_config("smoke", data_dir=str(data_dir), tasks="B" if method == "sgd" else "AB", method=method,
                            epochs=2, max_steps_per_epoch=6, eval_every=2, select=select)
    record = run(config, tmp_path, progress=False)
    last = len(record.tasks) - 1  # joint: the last stage trains both tasks, the criterion is their mean
    stage = record.stages()[last]
    values = _criterion_by_step(record, select, last)
    best = values.max() if select == "balanced_accuracy" else values.min()
    assert stage.best_stage_step == values[values == best].index[0]  # the first of the best
    assert stage.select == select and record.config.select == select
    assert stage.best_criterion == pytest.approx(best)
    assert stage.best_val_balanced_accuracy == pytest.approx(
        _criterion_by_step(record, "balanced_accuracy", last)[stage.best_stage_step])
    assert record.data["stages"][last]["best_val_balanced_accuracy"] == stage.best_val_balanced_accuracy
    assert f"step {stage.best_stage_step} by {select}" in render_record(record)


@pytest.mark.slow
def test_the_multitask_network_keeps_the_epoch_its_rule_names(smoke_store, data_dir, tmp_path):
    from lungcl.mtl.config import default_mtl_config
    from lungcl.mtl.train import run_mtl

    config = default_mtl_config("smoke", data_dir=str(data_dir), tasks="malignancy,lobulation", epochs=3,
                                steps_per_epoch=2, select="balanced_accuracy")
    record = run_mtl(config, tmp_path, progress=False, threads=1)
    curves = pd.DataFrame(record.data["curves"])
    val = curves[curves.split == "val"].groupby("epoch")["balanced_accuracy"].mean()
    assert record.data["best_epoch"] == val.idxmax() and record.data["select"] == "balanced_accuracy"
    assert record.data["best_val_balanced_accuracy"] == pytest.approx(val.max())
    assert {"balanced_loss", "auc"} <= set(curves[curves.split == "val"].columns)
