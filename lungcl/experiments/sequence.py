"""One whole run in memory: data, model, method, the stages, and the record's content.

``train_run`` is pure with respect to files: it returns the record data and the
final checkpoint, and hands a resumable state to ``on_stage`` after each
finished stage (the runner saves it); ``resume`` continues from such a state.
"""

from __future__ import annotations

import copy
import json
import time
import zlib
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import torch

from .. import metrics as M
from ..data.datasets import load_task_datasets
from ..data.tasks import resolve_tasks
from ..errors import LungclError
from ..methods import make_method
from ..models.resnet import build_resnet
from ..orders import order_label
from .config import RunConfig
from .evaluation import Evaluator
from ..runs.determinism import deterministic, torch_threads
from ..runs.folder import host_info, package_versions
from .record_types import SequenceSummary, StageRecord
from .records import RECORD_SCHEMA
from .first_stage import first_stage
from ..runs.prefix import PrefixStore
from .probes import floor_probes, stage_probes, training_sets
from .trainer import StageContext, consolidate, resolve_device, stage_seed, train_stage
from .overlap import spare_core

OnStage = Callable[[dict], None]


def head_seed(seed: int, task: str) -> int:
    """The seed of ``task``'s head: from the run seed and the task's NAME (the same in every order)."""
    return (int(seed) * 1_000_003 + zlib.crc32(f"head/{task}".encode())) % 2**31


def build_model(config: RunConfig, tasks: list[str]) -> torch.nn.Module:
    """The config's pre-activation ResNet with one head per task: the trunk initialised from the seed, each
    head from the seed and its task's name (:func:`head_seed`), so no weight depends on the order of the tasks."""
    torch.manual_seed(config.seed)
    return build_resnet(config.depth, tasks, in_channels=config.in_channels,
                        spatial_dims=config.spatial_dims, width=config.width, num_classes=2,
                        small_input=config.small_input, norm=config.model_norm,
                        head_seeds={t: head_seed(config.seed, t) for t in tasks})


def build_method(config: RunConfig) -> Any:
    return make_method(config.method, strength=config.strength, fisher_samples=config.fisher_samples,
                       fisher=config.fisher, gamma=config.gamma, seed=config.seed)


def load_splits(config: RunConfig) -> dict:
    """The run's tasks as train / val / test datasets of 2D patches."""
    if config.spatial_dims != 2:
        raise LungclError("the datasets give 2D patches (C, H, W); spatial_dims=3 needs 3D patches, "
                          "which lungcl.data does not produce yet")
    return load_task_datasets(config.data_dir, resolve_tasks(",".join(config.tasks)), config.fold,
                              profile=config.profile, source=config.source, split_seed=config.split_seed,
                              seed=config.seed, context_slices=config.context_slices,
                              augment=config.augment, balance=config.balance,
                              seed_by_name=config.streams == "task")


def train_run(config: RunConfig, progress: bool = True, resume: dict | None = None,
              on_stage: OnStage | None = None, threads: int | None = 1,
              prefixes: PrefixStore | None = None) -> tuple[dict, dict]:
    """Train every stage of ``config``; return (record data, final checkpoint).

    CPU numbers depend (in the last bits) on torch's thread count, so runs use ``threads``
    (default 1; None = leave torch's setting) and the record notes it; use grid workers for more cores.
    ``prefixes``: where first stages shared with other runs are stored (:mod:`.first_stage`); the
    record is the same with or without.
    """
    t_start = time.perf_counter()
    device = resolve_device(config.device)
    tasks = list(config.tasks)
    with deterministic(device.type == "cpu"), torch_threads(threads):
        t0 = time.perf_counter()
        splits = load_splits(config)
        evaluator = Evaluator(splits, device, amp=config.amp)
        load_s = time.perf_counter() - t0
        state = json.loads(resume["progress"]) if resume else _fresh_state(config)
        state["timings"]["load_data_s"] = state["timings"].get("load_data_s", 0.0) + load_s
        if config.kind == "single_task":
            models = _single_task(config, splits, evaluator, device, progress, state, resume, on_stage)
            checkpoint = {"kind": "single_task", "run_id": config.run_id, "tasks": tasks, "model": models}
        else:
            model, method, kept = _sequence(config, splits, evaluator, device, progress, state, resume, on_stage,
                                            prefixes)
            checkpoint = {"kind": "sequence", "run_id": config.run_id, "tasks": tasks,
                          "model": {k: v.cpu() for k, v in model.state_dict().items()},
                          "method": method.state_dict(), "stages": kept}
        state["timings"]["total_s"] = state["timings"].get("total_s", 0.0) + time.perf_counter() - t_start
        data = _record_data(config, splits, evaluator, state, device)
    return data, checkpoint


def _fresh_state(config: RunConfig) -> dict:
    return {"next_stage": 0, "stages": [], "curves": [], "initial": None,
            "timings": {"stages": []}, "resumed_from_stage": None}


def _sequence(config, splits, evaluator, device, progress, state, resume, on_stage, prefixes=None):
    tasks = list(config.tasks)
    model = build_model(config, tasks).to(device)
    method = build_method(config)
    if resume:
        model.load_state_dict(resume["model"])
        method.load_state_dict(resume["method"])
        state["resumed_from_stage"] = state["next_stage"]
    # the untrained network's scores (kept in the record), reported after the first stage: that
    # stage's starting evaluation scores these weights off the critical path and is remembered
    # each stage's kept weights (as its report scored them): what analyses of a finished run read
    # (lungcl.experiments.stage_probes), so that they need no second run of the same training
    kept: list[dict] = list(resume.get("stages", [])) if resume else []
    untrained = copy.deepcopy(model) if state["initial"] is None else None
    trains = training_sets(splits, tasks) if config.probes else {}
    if config.probes and "probes" not in state:
        t0 = time.perf_counter()
        state["probes"] = {"floor": floor_probes(model, trains, evaluator, tasks, device), "stages": []}
        state["timings"]["probes_s"] = time.perf_counter() - t0
    ctx = StageContext(config, model, method, splits, evaluator, device, state["curves"].append,
                       progress, global_step=sum(s["steps"] for s in state["stages"]),
                       overlap_eval=_overlap(device))
    for stage in range(state["next_stage"], len(tasks)):
        task = tasks[stage]
        train_tasks = tasks[:stage + 1] if method.mixes_seen_tasks else [task]
        if stage == 0:  # computed here, or loaded from a run that trained the same first stage
            result, state["initial"] = first_stage(
                ctx, prefixes, lambda: train_stage(ctx, 0, task, train_tasks, tasks),
                lambda: {t: evaluator.report(untrained, t, config.n_boot, config.seed, with_ci=False)
                         for t in tasks})
            untrained = None
        else:
            result = train_stage(ctx, stage, task, train_tasks, tasks)
        consolidate_s = consolidate(ctx, task)
        t0 = time.perf_counter()
        metrics = {t: evaluator.report(model, t, config.n_boot, stage_seed(config.seed, stage),
                                       with_ci=i <= stage) for i, t in enumerate(tasks)}
        probabilities = evaluator.test_probabilities(model, tasks)
        report_s = time.perf_counter() - t0
        if config.probes:
            t0 = time.perf_counter()
            state["probes"]["stages"] += stage_probes(model, trains, evaluator, tasks, stage, device)
            state["timings"]["probes_s"] += time.perf_counter() - t0
        _finish_stage(state, stage, task, train_tasks, result, metrics, consolidate_s, report_s, probabilities)
        kept.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        if on_stage is not None and stage + 1 < len(tasks):
            on_stage({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                      "method": method.state_dict(), "progress": json.dumps(state),
                      "run_id": config.run_id, "stages": kept})
    return model, method, kept


def _single_task(config, splits, evaluator, device, progress, state, resume, on_stage):
    """Each task alone, from the same fresh initialisation: the single-task baselines."""
    tasks = list(config.tasks)
    models = dict(resume["model"]) if resume else {}
    state["initial"] = state["initial"] or {}
    for stage in range(state["next_stage"], len(tasks)):
        task = tasks[stage]
        model = build_model(config, [task]).to(device)
        untrained = copy.deepcopy(model)  # reported after the stage (its starting evaluation is remembered)
        method = build_method(config)
        ctx = StageContext(config, model, method, splits, evaluator, device, state["curves"].append,
                           progress, global_step=sum(s["steps"] for s in state["stages"]),
                           overlap_eval=_overlap(device))
        result = train_stage(ctx, stage, task, [task], [task])
        state["initial"][task] = evaluator.report(untrained, task, config.n_boot, config.seed, with_ci=False)
        t0 = time.perf_counter()
        metrics = {task: evaluator.report(model, task, config.n_boot, stage_seed(config.seed, stage),
                                          with_ci=True)}
        _finish_stage(state, stage, task, [task], result, metrics, 0.0, time.perf_counter() - t0)
        models[task] = {k: v.cpu() for k, v in model.state_dict().items()}
        if on_stage is not None and stage + 1 < len(tasks):
            on_stage({"model": models, "method": {}, "progress": json.dumps(state), "run_id": config.run_id})
    return models


def _overlap(device: torch.device) -> bool:
    """Evaluation on a second thread when a CPU run has a core to spare (same numbers either way)."""
    return device.type == "cpu" and spare_core()


def _finish_stage(state, stage, task, train_tasks, result, metrics, consolidate_s, report_s,
                  probabilities=None) -> None:
    state["stages"].append(StageRecord(stage=stage, task=task, trained_tasks=list(train_tasks),
                                       steps=result.steps, epochs=result.epochs,
                                       best_stage_step=result.best_step, best_val_loss=result.best_val_loss,
                                       stopped_early=result.stopped_early, metrics=metrics,
                                       select=result.select, best_criterion=result.best_criterion,
                                       best_val_balanced_accuracy=result.best_val_balanced_accuracy,
                                       test_probabilities=probabilities).to_dict())
    state["timings"]["stages"].append({**result.timings, "consolidate_s": consolidate_s,
                                       "report_s": report_s})
    state["next_stage"] = stage + 1


def _matrix(state: dict, tasks: list[str], split: str, metric: str) -> list[list[float | None]]:
    return [[s["metrics"].get(t, {}).get(split, {}).get(metric) for t in tasks] for s in state["stages"]]


def _summary(R: np.ndarray, tasks: list[str]) -> dict:
    """Average final accuracy, forgetting and BWT of R. (Forward transfer needs the single-task
    runs: :func:`lungcl.summaries.forward_transfer_table`.)"""
    forgetting = M.forgetting(R)
    return SequenceSummary(average_accuracy=float(M.average_accuracy(R)),
                           forgetting={t: float(f) for t, f in zip(tasks[:-1], forgetting[:-1])},
                           mean_forgetting=float(np.mean(forgetting[:-1])) if len(tasks) > 1 else 0.0,
                           backward_transfer=float(M.backward_transfer(R)) if len(tasks) > 1 else 0.0,
                           final={t: float(v) for t, v in zip(tasks, R[-1])}).to_dict()


def _record_data(config: RunConfig, splits: dict, evaluator: Evaluator, state: dict,
                 device: torch.device) -> dict:
    tasks = list(config.tasks)
    matrices = {split: {m: _matrix(state, tasks, split, m) for m in ("accuracy", "balanced_accuracy")}
                for split in ("test", "val")}
    if config.kind == "sequence":
        summary = {split: {m: _summary(np.array(matrices[split][m], dtype=float), tasks)
                           for m in ("accuracy", "balanced_accuracy")} for split in ("test", "val")}
    else:
        summary = {split: {m: SequenceSummary(final={s["task"]: s["metrics"][s["task"]][split][m]
                                                     for s in state["stages"]}).to_dict()
                           for m in ("accuracy", "balanced_accuracy")} for split in ("test", "val")}
    curves = {k: [row[k] for row in state["curves"]] for k in (state["curves"][0] if state["curves"] else {})}
    provenance = next(iter(splits.values())).provenance
    return {"schema": RECORD_SCHEMA, "run_id": config.run_id, "data_version": config.data_version,
            "label": config.label,
            "config": config.to_dict(), "kind": config.kind, "method": config.method,
            "tasks": tasks, "order": order_label(tasks), "seed": config.seed,
            "initial": state["initial"], "stages": state["stages"], "matrices": matrices,
            "summary": summary, "curves": curves, "data": evaluator.counts(splits),
            "provenance": provenance, "timings": state["timings"],
            "resumed_from_stage": state["resumed_from_stage"],
            **({"probes": state["probes"]} if "probes" in state else {}),
            **({"test_set": evaluator.test_set(tasks)} if config.kind == "sequence" else {}),
            "environment": {**package_versions(), **host_info(str(device))},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
