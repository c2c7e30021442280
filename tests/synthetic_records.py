"""Run records built in memory, in the engine's record format, for fast tests of tables and figures.

A record is made from an accuracy matrix R (and optionally per-nodule predictions); every
other field is filled consistently, so ``Record``'s accessors work without training anything.
"""

from __future__ import annotations

import numpy as np
import torch

from lungcl.experiments import Record, default_config
from lungcl.experiments.records import RECORD_SCHEMA

N_TEST = 40


def _metrics(acc: float, with_ci: bool) -> dict:
    m = {"accuracy": acc, "balanced_accuracy": acc - 0.1, "sensitivity": acc - 0.05, "specificity": acc + 0.02,
         "auc": min(acc + 0.03, 1.0), "tp": 10, "tn": 20, "fp": 5, "fn": 5, "n": N_TEST, "loss": 0.5}
    if with_ci:
        m["ci"] = {"accuracy": [acc - 0.05, acc + 0.04], "balanced_accuracy": [acc - 0.15, acc - 0.06]}
    return m


def make_record(method: str = "sgd", order="malignancy,lobulation,calcification", R=None, fold: int = 0,
                kind: str = "sequence", strength: float | None = None, steps: int = 4,
                predictions: dict | None = None, positives: int = 6, seed: int = 0, **settings) -> Record:
    """A finished-looking record of ``method`` on ``order`` whose test accuracy matrix is ``R`` (``settings``:
    more of the configuration, e.g. ``fisher="sampled"``)."""
    cfg = default_config("smoke", tasks=order, method=method, fold=fold, kind=kind, strength=strength, seed=seed,
                         **settings)
    tasks = list(cfg.tasks)
    T = len(tasks)
    if R is None:
        R = np.full((T, T), 0.7) + 0.05 * np.eye(T)
    R = np.asarray(R, dtype=float)
    stages, curves = [], []
    step = 0
    for s, trained in enumerate(tasks):
        seen = tasks if kind == "sequence" else [trained]
        metrics = {t: {"test": _metrics(R[s, tasks.index(t)] if kind == "sequence" else R[s, s], True),
                       "val": _metrics(0.6, False)} for t in seen}
        stages.append({"stage": s, "task": trained, "trained_tasks": [trained], "steps": steps, "epochs": 1.0,
                       "best_stage_step": steps, "best_val_loss": 0.5, "stopped_early": False,
                       "metrics": metrics})
        for k in range(steps + 1):
            for t in seen:
                for split in ("val", "test"):
                    value = R[s, tasks.index(t)] if kind == "sequence" else R[s, s]
                    curves.append({"stage": s, "trained": trained, "step": step + k, "stage_step": k,
                                   "epoch": k / steps, "task": t, "split": split, "loss": 0.5,
                                   "accuracy": value, "balanced_accuracy": value - 0.1, "auc": value})
        step += steps
    matrices = {split: {m: [[stages[s]["metrics"].get(t, {}).get(split, {}).get(m) for t in tasks]
                            for s in range(T)] for m in ("accuracy", "balanced_accuracy")}
                for split in ("test", "val")}
    data = {"schema": RECORD_SCHEMA, "run_id": cfg.run_id, "label": cfg.label, "config": cfg.to_dict(),
            "kind": kind, "method": method, "tasks": tasks, "stages": stages, "matrices": matrices,
            "summary": {}, "curves": {k: [row[k] for row in curves] for k in curves[0]},
            "data": {t: {split: {"n": N_TEST, "positive": positives, "patients": 20}
                         for split in ("train", "val", "test")} for t in tasks},
            "provenance": {"source": "phantom", "settings": {"patch_px": 24}},
            "timings": {"total_s": 12.0}, "environment": {"torch_threads": 1, "cpu_count": 2}}
    if predictions is not None:
        data["predictions"] = {"test": predictions}
    return Record(data)


def sequence_state(tasks: list[str], seed: int = 0) -> tuple[dict, dict]:
    """(model state, EWC method state) of a depth-10 width-8 network, with random Fishers and anchors."""
    from lungcl.models.resnet import build_resnet

    torch.manual_seed(seed)
    model = build_resnet(10, tasks, width=8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    method = {}
    for i, t in enumerate(tasks):
        for name, p in model.named_parameters():
            if name.startswith("heads.") and not name.startswith(f"heads.{t}."):
                continue
            method[f"fisher/{t}/{name}"] = torch.rand_like(p) * (i + 1)
            method[f"anchor/{t}/{name}"] = p.detach().clone() + 0.01 * i
    return state, method
