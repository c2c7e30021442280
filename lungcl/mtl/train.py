"""Training the multi-task networks and writing their records (``lungcl mtl``).

Every epoch draws ``steps_per_epoch`` label-balanced batches (k per label per
task), weighted to undo repeats, and minimises the masked focal loss summed
over tasks (+ L2 as weight decay). After each epoch every task is evaluated on
validation and test (the curves); the weights that score best under the run's
``select`` rule (:mod:`lungcl.selection`; the mean over tasks of each task's
criterion, by default its class-balanced validation loss) are kept and reported at
(the thesis's rule was the lowest validation loss, ``select=loss``). Here a
"loss" is the focal loss the network trains on (cross-entropy at focal_gamma 0). The record holds per-task
metrics, the sharing-degree matrices of the gated blocks (per stage, overall,
and per epoch), the gates, the class counts, config, provenance and timings.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from ..errors import LungclError
from ..metrics import binary_metrics, bootstrap_ci
from ..models.gated import GatedMultiTaskNet, count_parameters, stage_widths
from ..models.hard_sharing import HardSharingNet
from ..profiles import MTL_BOOTSTRAP
from ..runs.determinism import deterministic, torch_threads
from ..runs.engine import RunKind, compute
from ..runs.folder import host_info, package_versions
from ..selection import balanced_mean, better, criterion as select_criterion
from .config import MTLConfig
from .data import MultiTaskData, MultiTaskSet, load_derm7pt_multitask, load_lidc_multitask
from .loss import MaskedMultiTaskFocalLoss
from .record import MTL_RECORD_SCHEMA, MTLRecord, load_mtl_record
from .sampler import MISSING, LabelBalancedBatchSampler, repeat_weights

EVAL_BATCH = 256


def build_model(config: MTLConfig, n_classes: list[int], in_channels: int) -> nn.Module:
    """The configured network, initialised from ``config.seed``."""
    torch.manual_seed(config.seed)
    if config.model == "hard":
        return HardSharingNet(n_classes, list(config.tasks), config.depth, config.trunk_width, in_channels)
    return GatedMultiTaskNet(n_classes, in_channels=in_channels, width=config.width, n_stages=config.n_stages,
                             param_scale=config.param_scale, fusion_init=config.fusion_init,
                             gate_init=config.gate_init, task_names=list(config.tasks))


def load_data(config: MTLConfig) -> MultiTaskData:
    if config.dataset == "derm7pt":
        return load_derm7pt_multitask(config.derm7pt_root, list(config.tasks), config.image_px, config.seed,
                                      config.augment)
    return load_lidc_multitask(config.data_dir, list(config.tasks), config.fold, config.profile, config.source,
                               config.multiclass, config.split_seed, config.seed, config.context_slices,
                               config.augment)


@dataclass
class Evaluation:
    """Loss (summed over tasks) and each task's class probabilities on a whole split."""

    loss: float
    task_loss: list[float]
    task_balanced_loss: list[float]  # per task: the mean over classes of each class's mean focal loss
    probs: list[np.ndarray]  # per task (N, K_t)
    labels: np.ndarray  # (N, T), -1 = none


# channels_last made the convolutions 15-20 % faster on the CPU where it was measured, but torch 2.13's CPU
# backward corrupts the heap with it on an AVX2 machine ("free(): invalid next size": every run of chapter 06
# aborted) and it aborted the ResNet-101 toy test in backward there too: the networks keep PyTorch's default layout
MEMORY_FORMAT = torch.contiguous_format


@torch.no_grad()
def evaluate(model: nn.Module, dataset: MultiTaskSet, criterion: MaskedMultiTaskFocalLoss) -> Evaluation:
    """Un-augmented pass over a split in eval mode; losses are means over each task's labelled examples."""
    model.eval()
    n, t = dataset.labels.shape
    logits: list[list[torch.Tensor]] = [[] for _ in range(t)]
    for start in range(0, n, EVAL_BATCH):
        x, _ = dataset.batch(range(start, min(n, start + EVAL_BATCH)))
        out = model(x.contiguous(memory_format=MEMORY_FORMAT))
        for k in range(t):
            logits[k].append(out[k])
    z = [torch.cat(chunks) for chunks in logits]
    y = torch.as_tensor(dataset.labels)
    total, per_task = criterion(z, y)
    balanced = []
    for k in range(t):
        keep = y[:, k] != MISSING
        balanced.append(balanced_mean(criterion.per_example(z[k][keep], y[keep, k]).numpy(), y[keep, k].numpy())
                        if bool(keep.any()) else float("nan"))
    return Evaluation(float(total), per_task.tolist(), balanced, [zk.softmax(1).numpy() for zk in z],
                      dataset.labels)


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy (mean recall over the classes present); nan with one class."""
    if np.unique(y).size < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # predicted classes absent from y
        return float(balanced_accuracy_score(y, pred))


def _auc(y: np.ndarray, prob: np.ndarray) -> float:
    """ROC AUC (binary), or the mean one-vs-rest AUC over the classes (multi-class); nan unless every
    class is present."""
    if y.size == 0 or np.unique(y).size < prob.shape[1]:
        return float("nan")
    if prob.shape[1] == 2:
        return float(roc_auc_score(y, prob[:, 1]))
    return float(roc_auc_score(y, prob, multi_class="ovr", average="macro", labels=list(range(prob.shape[1]))))


def task_metrics(y: np.ndarray, prob: np.ndarray, patient_ids: np.ndarray, n_boot: int, seed: int) -> dict:
    """Metrics of one task on its labelled examples: binary_metrics (+ patient-bootstrap CIs) or multi-class."""
    keep = y != MISSING
    y, prob, groups = y[keep], prob[keep], patient_ids[keep]
    if y.size == 0:
        return {"n": 0}
    if prob.shape[1] == 2:
        out = binary_metrics(y, prob[:, 1])
        if n_boot > 0:
            out["ci"] = {m: list(bootstrap_ci(y, prob[:, 1], groups, m, n_boot=n_boot, seed=seed)[1:])
                         for m in ("accuracy", "balanced_accuracy")}
        return out
    pred = prob.argmax(1)
    return {"accuracy": float((pred == y).mean()),
            "balanced_accuracy": _balanced_accuracy(y, pred),
            "mae": float(np.abs(pred - y).mean()),  # in rating steps
            "within_one": float((np.abs(pred - y) <= 1).mean()),
            "n": int(y.size), "class_counts": np.bincount(y, minlength=prob.shape[1]).tolist()}


def _curve_rows(epoch: int, split: str, ev: Evaluation, tasks: list[str]) -> list[dict]:
    rows = []
    for k, task in enumerate(tasks):
        y = ev.labels[:, k]
        keep = y != MISSING
        pred = ev.probs[k][keep].argmax(1)
        yk = y[keep]
        bal = _balanced_accuracy(yk, pred)
        rows.append({"epoch": epoch, "split": split, "task": task, "loss": ev.task_loss[k],
                     "accuracy": float((pred == yk).mean()) if yk.size else float("nan"),
                     "balanced_accuracy": bal, "balanced_loss": ev.task_balanced_loss[k],
                     "auc": _auc(yk, ev.probs[k][keep])})
    return rows


def _sharing(model: nn.Module) -> dict | None:
    if not isinstance(model, GatedMultiTaskNet):
        return None
    per_stage = model.sharing_matrices()
    return {"per_stage": per_stage.tolist(), "overall": per_stage.mean(axis=0).tolist(),
            "gates": model.gate_values().tolist()}


def train_mtl(config: MTLConfig, data: MultiTaskData | None = None, progress: bool = True) -> tuple[dict, dict]:
    """Train ``config``'s network; return (record data, checkpoint)."""
    started = time.perf_counter()
    data = data if data is not None else load_data(config)
    tasks = list(config.tasks)
    model = build_model(config, data.n_classes, data.in_channels).to(memory_format=MEMORY_FORMAT)
    criterion = MaskedMultiTaskFocalLoss(config.focal_gamma)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    sampler = LabelBalancedBatchSampler(data.train.labels, config.k_per_label, 1, seed=config.seed)
    steps = config.steps_per_epoch or max(1, math.ceil(len(data.train) / sampler.batch_size))
    sampler.n_batches = steps
    loaded = time.perf_counter()

    curves, sharing_history, best = [], [], None
    bar = tqdm(total=config.epochs * steps, desc=f"mtl {config.label}", unit="step", disable=not progress)
    with deterministic(True):
        for epoch in range(config.epochs):
            sampler.set_epoch(epoch)
            data.train.set_epoch(epoch)
            model.train()
            train_loss = 0.0
            for b, indices in enumerate(sampler):
                x, y = data.train.batch(indices, key=b)
                x = x.contiguous(memory_format=MEMORY_FORMAT)
                loss, _ = criterion(model(x), y, repeat_weights(indices))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                train_loss += float(loss.detach()) / steps
                bar.update(1)
            val, test = evaluate(model, data.val, criterion), evaluate(model, data.test, criterion)
            curves += [{"epoch": epoch + 1, "split": "train", "task": "all", "loss": train_loss}]
            val_rows = _curve_rows(epoch + 1, "val", val, tasks)
            curves += val_rows + _curve_rows(epoch + 1, "test", test, tasks)
            if (s := _sharing(model)) is not None:
                sharing_history.append({"epoch": epoch + 1, "overall": s["overall"]})
            # select=loss: the summed loss, as before (the mean over tasks ranks the epochs alike)
            score = val.loss if config.select == "loss" else select_criterion(val_rows, tasks, config.select)
            if best is None or better(score, best["score"], config.select):
                best = {"epoch": epoch + 1, "loss": val.loss, "score": score, "state": copy.deepcopy(model.state_dict()),
                        "bacc": select_criterion(val_rows, tasks, "balanced_accuracy")}
            bar.set_postfix(train=f"{train_loss:.3f}", val=f"{score:.3f}")
    bar.close()
    trained = time.perf_counter()

    best_epoch, best_val_loss = best["epoch"], best["loss"]
    model.load_state_dict(best["state"])
    n_boot = MTL_BOOTSTRAP[config.profile]
    metrics: dict[str, dict] = {task: {} for task in tasks}
    for split in ("val", "test"):
        ds = getattr(data, split)
        ev = evaluate(model, ds, criterion)
        for k, task in enumerate(tasks):
            metrics[task][split] = {**task_metrics(ev.labels[:, k], ev.probs[k], ds.patient_ids, n_boot,
                                                   config.seed), "loss": ev.task_loss[k]}
    sharing = _sharing(model)
    if sharing is not None:
        sharing["history"] = sharing_history
    full = None
    if isinstance(model, GatedMultiTaskNet):
        full = count_parameters(build_model(config.replace(param_scale=1.0), data.n_classes, data.in_channels))
    record = {
        "schema": MTL_RECORD_SCHEMA, "kind": "mtl", "run_id": config.run_id, "config": config.to_dict(),
        "label": config.label, "tasks": tasks, "n_classes": data.n_classes, "label_names": data.label_names,
        "class_counts": data.counts(), "n_train": len(data.train), "n_val": len(data.val),
        "n_test": len(data.test), "steps_per_epoch": steps, "batch_size": sampler.batch_size,
        "n_parameters": count_parameters(model), "n_parameters_full": full,
        "widths": stage_widths(config.width, config.n_stages, config.param_scale)
        if config.model == "gated" else None,
        "best_epoch": best_epoch, "best_val_loss": best_val_loss, "select": config.select,
        "best_criterion": best["score"], "best_val_balanced_accuracy": best["bacc"],
        "metrics": metrics, "curves": curves,
        "sharing": sharing, "provenance": data.provenance, "environment": _environment(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "timings": {"load_s": loaded - started, "train_s": trained - loaded,
                    "total_s": time.perf_counter() - started},
    }
    return _jsonable(record), {"model": model.state_dict(), "config": config.to_dict()}


def train_multitask(config: MTLConfig, run_dir: Path, progress: bool, threads: int | None) -> tuple[dict, dict]:
    """The engine's ``train``: :func:`train_mtl` with ``threads`` torch threads (None: torch's setting)."""
    with torch_threads(threads):
        return train_mtl(config, progress=progress)


MULTITASK = RunKind(name="mtl", subfolder="mtl", record_type=MTLRecord, load=load_mtl_record,
                    train=train_multitask)


def run_mtl(config: MTLConfig, results: str | Path = "results", progress: bool = True,
            prepare: bool = True, threads: int | None = None) -> MTLRecord:
    """The record of ``config``: loaded if finished (and computed on today's patch store), else trained
    and saved (the LIDC store prepared if missing); see :func:`lungcl.runs.engine.compute`."""
    return compute(MULTITASK, config, results, progress=progress, prepare=prepare, threads=threads)


def single_task_configs(config: MTLConfig) -> list[MTLConfig]:
    """The single-task baselines of ``config``: one gated network (one branch, no sharing) per task.

    ``k_per_label`` is multiplied by the number of tasks, so a single-task batch is as large as the
    multi-task one (2 x k x T draws for binary tasks) and an epoch is about one pass, as there.
    """
    k = config.k_per_label * len(config.tasks)
    return [config.replace(tasks=(t,), model="gated", param_scale=1.0, k_per_label=k) for t in config.tasks]


def _environment() -> dict:
    return {"versions": package_versions(), **host_info("cpu")}


def _jsonable(obj):
    """NaN -> None, numpy -> python, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


__all__ = ["MULTITASK", "build_model", "load_data", "evaluate", "task_metrics", "train_mtl", "train_multitask", "run_mtl",
           "single_task_configs", "Evaluation", "LungclError"]
