"""Evaluating every task on validation and test, fast enough to do every few steps.

The un-augmented validation and test patches are deterministic, so they are
stacked into tensors once per run (by slicing the in-memory patches). The tasks
share one patient split and their sets are largely the same nodules, so each
split's distinct patches form one pool: an evaluation runs the shared trunk ONCE
per pooled patch and applies every asked task's head to its rows' features
(inference is per-sample, so the numbers are those of one forward pass per task;
tests/test_evaluation.py checks equality). Networks without a shared trunk fall
back to one forward pass per task.
Predictions are remembered by a fingerprint of the network's state: the
report at a stage's best checkpoint and the next stage's starting point are the
weights of an evaluation already done, so they cost no forward pass.
Metrics come from :mod:`lungcl.metrics`; each curve row also holds the class-balanced loss (the mean
over classes of each class's mean cross-entropy, :func:`lungcl.selection.balanced_mean`), from the same
logits, which the checkpoint rule ``select=balanced_loss`` reads.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.datasets import TaskSplits
from ..errors import LungclError
from ..models.resnet import PreActResNet
from .. import metrics as M
from ..selection import balanced_mean

SPLITS = ("val", "test")
CURVE_METRICS = ("accuracy", "balanced_accuracy", "auc")
CI_METRICS = ("accuracy", "balanced_accuracy")


class Diverged(LungclError):
    """The network's outputs are nan or inf: the training diverged."""


# (mean cross-entropy, positive-class probability per nodule, class-balanced mean cross-entropy)
Scored = tuple[float, np.ndarray, float]


@dataclass
class EvalSet:
    """One task's split, materialised: patches, labels, patients, and each item's row in the
    split's pool of distinct patches."""

    x: Tensor
    y: np.ndarray
    patient_ids: np.ndarray
    rows: Tensor | None = None


def materialise(dataset) -> EvalSet:
    """Stack a non-augmented dataset into one tensor (its items never change)."""
    if dataset.augment:
        raise LungclError("evaluation needs an un-augmented dataset")
    return EvalSet(dataset.eval_tensor(), np.asarray(dataset.labels, dtype=np.int64),
                   np.asarray(dataset.patient_ids))


def pool_patches(sets: list[EvalSet], nodule_ids: list[np.ndarray]) -> Tensor:
    """The distinct patches of ``sets`` stacked (a nodule in several sets with the same patch is
    one row; tasks whose splits share no nodule give the concatenation); sets each ``rows``."""
    rows_of: dict = {}
    patches: list[Tensor] = []
    for s, ids in zip(sets, nodule_ids):
        rows = []
        for nodule, x in zip(np.asarray(ids).tolist(), s.x):
            same = rows_of.setdefault(nodule, [])
            row = next((r for r in same if torch.equal(patches[r], x)), None)
            if row is None:
                row = len(patches)
                patches.append(x)
                same.append(row)
            rows.append(row)
        s.rows = torch.as_tensor(rows, dtype=torch.int64)
    return torch.stack(patches) if patches else torch.zeros(0)


class Evaluator:
    """Validation and test predictions of any task, from tensors built once."""

    def __init__(self, splits: dict[str, TaskSplits], device: torch.device, batch_size: int = 128,
                 amp: bool = False, remember: int = 512):
        self.sets = {(t, s): materialise(getattr(sp, s)) for t, sp in splits.items() for s in SPLITS}
        named = sorted(splits)  # the pools in the tasks' name order: the same patches in the same batches
        # whatever the run's order of tasks (so a first stage shared by several orders scores the same bits)
        self.pools = {s: pool_patches([self.sets[(t, s)] for t in named],
                                      [getattr(splits[t], s).nodule_ids for t in named]) for s in SPLITS}
        self.device, self.batch_size = device, batch_size
        self.amp = amp and device.type == "cuda"
        self._seen: OrderedDict[tuple, Scored] = OrderedDict()
        self._remember = remember

    def predict(self, model: nn.Module, task: str, split: str) -> tuple[float, np.ndarray]:
        """(mean cross-entropy, probability of the positive class per nodule); a network state
        already evaluated is answered from memory (the same numbers: inference is deterministic)."""
        return self.predict_many(model, [(task, split)])[(task, split)]

    def predict_many(self, model: nn.Module, pairs: list[tuple[str, str]], remember: bool = True
                     ) -> dict[tuple[str, str], tuple[float, np.ndarray]]:
        """:meth:`predict` of every (task, split) in ``pairs``, with one trunk pass per pooled patch
        for those not remembered. ``remember=False``: computed here and not kept (a partial evaluation,
        whose trunk pass pools fewer patches, leaves the full one to be computed as always)."""
        return {p: (loss, prob) for p, (loss, prob, _) in self.scored(model, pairs, remember).items()}

    def scored(self, model: nn.Module, pairs: list[tuple[str, str]], remember: bool = True
               ) -> dict[tuple[str, str], Scored]:
        """:meth:`predict_many` with each pair's class-balanced loss as a third value."""
        model.eval()
        if not remember:
            return self._forward(model, list(dict.fromkeys(pairs)))
        state = state_fingerprint(model)
        missing = [p for p in dict.fromkeys(pairs) if (state, *p) not in self._seen]
        if missing:
            for pair, result in self._forward(model, missing).items():
                self._seen[(state, *pair)] = result
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        out = {}
        for p in pairs:
            loss, prob, balanced = self._seen[(state, *p)]
            out[p] = (loss, prob.copy(), balanced)
        return out

    @torch.inference_mode()
    def _forward(self, model: nn.Module, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Scored]:
        model.eval()
        shared = isinstance(model, PreActResNet)  # one trunk, a linear head per task
        per_task = shared and model.task_specific_features  # per-task normalisation: a trunk pass per task
        if per_task:
            features = {(t, split): self._pooled_features(model, split, [t], t) for t, split in pairs}
        else:
            features = {split: self._pooled_features(model, split, [t for t, s in pairs if s == split])
                        for split in SPLITS if shared and any(s == split for _, s in pairs)}
        out = {}
        for task, split in pairs:
            s = self.sets[(task, split)]
            if shared:
                pooled, where = features[(task, split) if per_task else split]
                f = pooled[where[s.rows]]

                def logits_at(rows: slice, f: Tensor = f, task: str = task) -> Tensor:
                    return model.classify(f[rows], task)
            else:
                def logits_at(rows: slice, s: EvalSet = s, task: str = task) -> Tensor:
                    return model(s.x[rows].to(self.device), task)
            out[(task, split)] = self._score(logits_at, s.y, task)
        return out

    def _pooled_features(self, model: PreActResNet, split: str, tasks: list[str], task: str | None = None
                         ) -> tuple[Tensor, Tensor]:
        """(trunk features of the pooled patches ``tasks`` need, pool row -> feature row); ``task``
        selects the normalisation statistics of a network that keeps them per task."""
        pool = self.pools[split]
        rows = torch.unique(torch.cat([self.sets[(t, split)].rows for t in tasks]))
        where = torch.full((len(pool),), -1, dtype=torch.int64)
        where[rows] = torch.arange(len(rows))
        x = pool[rows]
        feats = []
        for i in range(0, len(x), self.batch_size):
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                feats.append(batch_features(model, x[i:i + self.batch_size].to(self.device), task))
        return torch.cat(feats), where.to(self.device)

    def _score(self, logits_at: Callable[[slice], Tensor], y_all: np.ndarray, task: str) -> Scored:
        """Mean and class-balanced mean cross-entropy and positive-class probabilities, from the logits
        of each batch."""
        losses, probs, each = [], [], []
        y = torch.as_tensor(y_all)
        for i in range(0, len(y_all), self.batch_size):
            rows = slice(i, i + self.batch_size)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                logits = logits_at(rows).float()
            if not torch.isfinite(logits).all():
                raise Diverged(f"the network's {task} outputs are not finite")
            target = y[rows].to(self.device)
            losses.append(F.cross_entropy(logits, target, reduction="sum").double().cpu())
            each.append(F.cross_entropy(logits, target, reduction="none").double().cpu())
            probs.append(torch.softmax(logits, dim=1)[:, 1].cpu())
        loss = float(torch.stack(losses).sum() / len(y_all))
        balanced = balanced_mean(torch.cat(each).numpy(), y_all)
        return loss, torch.cat(probs).numpy().astype(np.float64), balanced

    def curve_point(self, model: nn.Module, tasks: list[str], splits: tuple[str, ...] = SPLITS) -> list[dict]:
        """Loss, accuracy, balanced accuracy, AUC and class-balanced loss of each task on ``splits`` (val and
        test); a point of fewer splits than all (the validation a decision needs) is not remembered."""
        rows = []
        predictions = self.scored(model, [(task, split) for task in tasks for split in splits],
                                  remember=tuple(splits) == tuple(SPLITS))
        for task in tasks:
            for split in splits:
                loss, prob, balanced = predictions[(task, split)]
                m = M.binary_metrics(self.sets[(task, split)].y, prob)
                rows.append({"task": task, "split": split, "loss": loss,
                             **{k: _num(m[k]) for k in CURVE_METRICS}, "balanced_loss": _num(balanced)})
        return rows

    def report(self, model: nn.Module, task: str, n_boot: int, seed: int, with_ci: bool) -> dict:
        """Every binary metric (and both losses) on val and test; bootstrap CIs over test patients when ``with_ci``."""
        out = {}
        predictions = self.scored(model, [(task, split) for split in SPLITS])
        for split in SPLITS:
            loss, prob, balanced = predictions[(task, split)]
            s = self.sets[(task, split)]
            m = {k: _num(v) for k, v in M.binary_metrics(s.y, prob).items()}
            m["loss"], m["balanced_loss"] = loss, _num(balanced)
            if with_ci and split == "test":
                m["ci"] = {name: [_num(v) for v in M.bootstrap_ci(s.y, prob, s.patient_ids, name,
                                                                  n_boot=n_boot, seed=seed)[1:]]
                           for name in CI_METRICS}
            out[split] = m
        return out

    def test_probabilities(self, model: nn.Module, tasks: list[str]) -> dict[str, list[float]]:
        """Each task's test positive-class probabilities, as the record keeps them (:func:`stored_probabilities`);
        the report just made at these weights is remembered, so this costs no forward pass."""
        predictions = self.predict_many(model, [(t, "test") for t in tasks])
        return {t: stored_probabilities(predictions[(t, "test")][1]) for t in tasks}

    def test_set(self, tasks: list[str]) -> dict[str, dict[str, list]]:
        """Each task's test labels and patient ids, in the order of :meth:`test_probabilities`."""
        return {t: {"labels": self.sets[(t, "test")].y.tolist(),
                    "patients": [str(p) for p in self.sets[(t, "test")].patient_ids]} for t in tasks}

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


def stored_probabilities(prob: np.ndarray, digits: int = 6, threshold: float = 0.5) -> list[float]:
    """Probabilities rounded to ``digits`` decimals for the record, without crossing ``threshold``: every
    nodule keeps the class the network called (``>= threshold``), so counts and balanced accuracy
    recomputed from the record equal the ones it reports."""
    p = np.asarray(prob, dtype=np.float64)
    q = np.round(p, digits)
    q[(p < threshold) & (q >= threshold)] = threshold - 10.0 ** -digits
    return q.tolist()


def batch_features(model: PreActResNet, x: Tensor, task: str | None = None) -> Tensor:
    """``model.features(x, task)``, a batch of one run as two copies of itself: on CPU a batch of one takes
    other kernels (other last bits) than any larger batch, so a patch's features would depend on whether it
    ends a pool alone; with two or more they do not depend on the batch (tests/test_evaluation.py)."""
    if len(x) != 1:
        return model.features(x, task)
    return model.features(x.expand(2, *x.shape[1:]), task)[:1]


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
