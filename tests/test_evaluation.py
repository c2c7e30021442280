"""The evaluator's shared trunk pass gives the numbers of one forward pass per (task, split)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lungcl.data.datasets import PatchDataset, TaskSplits, load_task_datasets
from lungcl.data.tasks import resolve_tasks
from lungcl.experiments import default_config
from lungcl.experiments import evaluation
from lungcl.experiments.evaluation import SPLITS, Evaluator
from lungcl.experiments.sequence import build_model, train_run


def _per_task_reference(splits: dict[str, TaskSplits], model, task: str, split: str, batch: int = 128):
    """The evaluation as it was before pooling: one forward pass per (task, split), batches of 128 (the trunk
    never on a batch of one: on CPU that takes other kernels, with other last bits, than any larger batch)."""
    ds = getattr(splits[task], split)
    x, y = ds.eval_tensor(), torch.as_tensor(np.asarray(ds.labels, dtype=np.int64))
    losses, probs = [], []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            logits = model.classify(evaluation.batch_features(model, x[i:i + batch], task), task).float()
            losses.append(F.cross_entropy(logits, y[i:i + batch], reduction="sum").double())
            probs.append(torch.softmax(logits, dim=1)[:, 1])
    return float(torch.stack(losses).sum() / len(y)), torch.cat(probs).numpy().astype(np.float64)


def _trained_looking(model):
    """Non-trivial BatchNorm statistics and weights, so that every layer matters."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01)
    return model


def _assert_equal_to_reference(splits, model, batch_size: int = 128):
    ev = Evaluator(splits, torch.device("cpu"), batch_size=batch_size)
    tasks = list(splits)
    point = ev.curve_point(model, tasks)
    assert [(r["task"], r["split"]) for r in point] == [(t, s) for t in tasks for s in SPLITS]
    for row in point:
        loss, prob = _per_task_reference(splits, model, row["task"], row["split"], batch_size)
        got_loss, got_prob = ev.predict(model, row["task"], row["split"])
        assert got_loss == loss == row["loss"]
        assert np.array_equal(got_prob, prob)
    return ev


@pytest.mark.parametrize("tasks", ["ABC", "spiculation,margin,texture"])
def test_pooled_evaluation_equals_one_pass_per_task(smoke_store, data_dir, tasks):
    splits = load_task_datasets(data_dir, resolve_tasks(tasks), fold=0, profile="smoke")
    model = _trained_looking(build_model(default_config("smoke", tasks=tasks), list(splits)))
    ev = _assert_equal_to_reference(splits, model, batch_size=16)  # several batches per set
    for split in SPLITS:  # the pool is every distinct nodule of the split, once
        distinct = set().union(*(set(getattr(sp, split).nodule_ids.tolist()) for sp in splits.values()))
        assert len(ev.pools[split]) == len(distinct) < sum(len(getattr(sp, split)) for sp in splits.values())


def test_tasks_whose_splits_share_no_nodule(smoke_store, data_dir):
    """Disjoint sets pool to their concatenation; a nodule id whose patch differs between tasks
    is not merged; the numbers are still those of one pass per task."""
    base = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke")["malignancy"]

    def part(ds: PatchDataset, keep: np.ndarray, shift: float = 0.0) -> PatchDataset:
        return PatchDataset(ds.images[keep] + np.int16(shift), ds.labels[keep], ds.patient_ids[keep],
                            ds.nodule_ids[keep], ds.patch_px)

    splits = {}
    for k, name in enumerate(("first", "second", "third")):
        sets = {}
        for split in SPLITS:
            ds = getattr(base, split)
            idx = np.arange(len(ds))
            # first and second: disjoint halves; third: the first's nodules with other patches
            keep = idx[idx % 2 == (1 if name == "second" else 0)]
            sets[split] = part(ds, keep, shift=100.0 if name == "third" else 0.0)
        splits[name] = TaskSplits(base.task, base.train, sets["val"], sets["test"], base.provenance)
    model = _trained_looking(build_model(default_config("smoke", tasks="A"), list(splits)))
    ev = _assert_equal_to_reference(splits, model, batch_size=8)
    for split in SPLITS:
        assert len(ev.pools[split]) == sum(len(getattr(sp, split)) for sp in splits.values())


def test_evaluator_remembers_every_pair_of_one_pass(smoke_store, data_dir):
    """A curve point's trunk pass answers each task's report at the same weights (no new pass)."""
    splits = load_task_datasets(data_dir, resolve_tasks("AB"), fold=0, profile="smoke")
    model = build_model(default_config("smoke", tasks="AB"), list(splits))
    ev = Evaluator(splits, torch.device("cpu"))
    passes = []
    real = ev._pooled_features
    ev._pooled_features = lambda *a: passes.append(a[1:]) or real(*a)
    ev.curve_point(model, list(splits))
    assert sorted(passes) == [("test", list(splits)), ("val", list(splits))]
    for task in splits:
        ev.report(model, task, n_boot=10, seed=0, with_ci=True)
    assert len(passes) == 2


def test_smoke_run_record_equals_the_per_task_evaluation(smoke_store, data_dir, monkeypatch):
    """A whole smoke ABC run: pooled evaluation and one pass per task give the same record."""
    config = default_config("smoke", tasks="ABC", method="ewc", data_dir=str(data_dir))
    pooled, _ = train_run(config, progress=False)

    class NotShared(torch.nn.Module):  # the evaluator then runs one forward pass per task
        pass

    monkeypatch.setattr(evaluation, "PreActResNet", NotShared)
    per_task, _ = train_run(config, progress=False)
    for key in ("initial", "stages", "matrices", "summary", "curves", "data"):
        assert pooled[key] == per_task[key], key


def _comparable(data: dict) -> dict:
    return {k: data[k] for k in ("initial", "stages", "matrices", "summary", "curves", "data")}


def test_evaluation_overlapping_training_gives_the_sequential_record(smoke_store, data_dir, monkeypatch):
    """Evaluations on a second thread (slowed down, so that training runs ahead of them) give the record of
    evaluating at each step in turn; the training waits for an evaluation that may stop the stage (the
    patience's last), so no step is run ahead of a stop and discarded."""
    import time

    from lungcl.experiments import sequence, trainer

    config = default_config("smoke", tasks="ABC", method="ewc", data_dir=str(data_dir), epochs=6,
                            patience=2, lr=0.2, eval_every=1)
    monkeypatch.setattr(sequence, "spare_core", lambda: False)
    in_turn, _ = train_run(config, progress=False)
    assert any(s["stopped_early"] for s in in_turn["stages"])  # the stopping path is exercised

    real, real_step = Evaluator.curve_point, trainer._train_step
    busy = {"evaluating": 0, "steps_beside": 0}

    def slow(self, model, tasks, **kw):
        busy["evaluating"] += 1
        time.sleep(0.05)
        try:
            return real(self, model, tasks, **kw)
        finally:
            busy["evaluating"] -= 1

    def step(*a, **kw):
        busy["steps_beside"] += busy["evaluating"] > 0
        return real_step(*a, **kw)

    monkeypatch.setattr(Evaluator, "curve_point", slow)
    monkeypatch.setattr(trainer, "_train_step", step)
    monkeypatch.setattr(sequence, "spare_core", lambda: True)
    overlapped, _ = train_run(config, progress=False)
    assert _comparable(overlapped) == _comparable(in_turn)
    assert busy["steps_beside"] > 0  # training ran on beside evaluations that could not stop it
    assert sum(t["discarded_steps"] for t in overlapped["timings"]["stages"]) == 0


def test_a_patchs_features_do_not_depend_on_the_batch_it_is_in():
    """What pooling relies on: a patch's trunk features are the same bits in any batch, a batch of one
    included (run as two copies of itself; alone it takes other kernels on CPU)."""
    model = _trained_looking(build_model(default_config("smoke", tasks="A"), ["malignancy"])).eval()
    x = torch.rand(40, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = model.features(x)
        for n in (1, 2, 3, 8, 17):
            for i in range(0, 40 - n + 1, 13):
                assert torch.equal(evaluation.batch_features(model, x[i:i + n]), whole[i:i + n]), (n, i)
