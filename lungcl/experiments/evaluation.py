"""Evaluating every task on validation and test, fast enough to do every few steps.

The un-augmented validation and test patches are deterministic, so they are
stacked into tensors once per run (by slicing the in-memory patches); an
evaluation is then a few batched forward passes per task under inference mode.
Predictions are remembered by a fingerprint of the network's state: the
report at a stage's best checkpoint and the next stage's starting point are the
weights of an evaluation already done, so they cost no forward pass.
Metrics come from :mod:`lungcl.metrics`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.datasets import TaskSplits
from ..errors import LungclError
from .. import metrics as M

SPLITS = ("val", "test")
CURVE_METRICS = ("accuracy", "balanced_accuracy", "auc")
CI_METRICS = ("accuracy", "balanced_accuracy")


class Diverged(LungclError):
    """The network's outputs are nan or inf: the training diverged."""


@dataclass
class EvalSet:
    """One task's split, materialised: patches, labels, patients."""

    x: Tensor
    y: np.ndarray
    patient_ids: np.ndarray


def materialise(dataset) -> EvalSet:
    """Stack a non-augmented dataset into one tensor (its items never change)."""
    if dataset.augment:
        raise LungclError("evaluation needs an un-augmented dataset")
    return EvalSet(dataset.eval_tensor(), np.asarray(dataset.labels, dtype=np.int64),
                   np.asarray(dataset.patient_ids))


class Evaluator:
    """Validation and test predictions of any task, from tensors built once."""

    def __init__(self, splits: dict[str, TaskSplits], device: torch.device, batch_size: int = 128,
                 amp: bool = False, remember: int = 64):
        self.sets = {(t, s): materialise(getattr(sp, s)) for t, sp in splits.items() for s in SPLITS}
        self.device, self.batch_size = device, batch_size
        self.amp = amp and device.type == "cuda"
        self._seen: OrderedDict[tuple, tuple[float, np.ndarray]] = OrderedDict()
        self._remember = remember

    def predict(self, model: nn.Module, task: str, split: str) -> tuple[float, np.ndarray]:
        """(mean cross-entropy, probability of the positive class per nodule); a network state
        already evaluated is answered from memory (the same numbers: inference is deterministic)."""
        model.eval()
        key = (state_fingerprint(model), task, split)
        if key not in self._seen:
            self._seen[key] = self._forward(model, task, split)
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        loss, prob = self._seen[key]
        return loss, prob.copy()

    @torch.inference_mode()
    def _forward(self, model: nn.Module, task: str, split: str) -> tuple[float, np.ndarray]:
        s = self.sets[(task, split)]
        model.eval()
        losses, probs = [], []
        y = torch.as_tensor(s.y)
        for i in range(0, len(s.x), self.batch_size):
            xb = s.x[i:i + self.batch_size].to(self.device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                logits = model(xb, task).float()
            if not torch.isfinite(logits).all():
                raise Diverged(f"the network's {task} outputs are not finite")
            yb = y[i:i + self.batch_size].to(self.device)
            losses.append(F.cross_entropy(logits, yb, reduction="sum").double().cpu())
            probs.append(torch.softmax(logits, dim=1)[:, 1].cpu())
        loss = float(torch.stack(losses).sum() / len(s.y))
        return loss, torch.cat(probs).numpy().astype(np.float64)

    def curve_point(self, model: nn.Module, tasks: list[str]) -> list[dict]:
        """Loss, accuracy, balanced accuracy and AUC of each task on val and test."""
        rows = []
        for task in tasks:
            for split in SPLITS:
                loss, prob = self.predict(model, task, split)
                m = M.binary_metrics(self.sets[(task, split)].y, prob)
                rows.append({"task": task, "split": split, "loss": loss,
                             **{k: _num(m[k]) for k in CURVE_METRICS}})
        return rows

    def report(self, model: nn.Module, task: str, n_boot: int, seed: int, with_ci: bool) -> dict:
        """Every binary metric on val and test; bootstrap CIs over test patients when ``with_ci``."""
        out = {}
        for split in SPLITS:
            loss, prob = self.predict(model, task, split)
            s = self.sets[(task, split)]
            m = {k: _num(v) for k, v in M.binary_metrics(s.y, prob).items()}
            m["loss"] = loss
            if with_ci and split == "test":
                m["ci"] = {name: [_num(v) for v in M.bootstrap_ci(s.y, prob, s.patient_ids, name,
                                                                  n_boot=n_boot, seed=seed)[1:]]
                           for name in CI_METRICS}
            out[split] = m
        return out

    def counts(self, splits: dict[str, TaskSplits]) -> dict:
        """Per task and split: nodules, positives, patients (train: before up-sampling)."""
        out: dict = {}
        for task, sp in splits.items():
            for name in ("train",) + SPLITS:
                ds = getattr(sp, name)
                y, pid = np.asarray(ds.labels), np.asarray(ds.patient_ids)
                out.setdefault(task, {})[name] = {"n": int(len(y)), "positive": int(y.sum()),
                                                  "patients": int(len(set(pid.tolist())))}
            out[task]["train"]["n_per_epoch"] = int(len(sp.train))
        return out


def state_fingerprint(model: nn.Module) -> bytes:
    """A digest of every parameter and buffer (names, shapes, values) of ``model``."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in model.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


def _num(v):
    """JSON-friendly numbers: numpy scalars to Python, NaN to None."""
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
