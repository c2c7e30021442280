"""The continual-learning trainer: one stage per task, evaluated all along, reported at the best checkpoint.

Stage k trains task k (or, for ``joint``, every task seen so far) with SGD,
loss = cross-entropy + the method's penalty. Every ``eval_every`` steps the
stage's task(s) are evaluated on validation, which the checkpoint rule and the
early stop read (the run's ``select`` rule, :mod:`lungcl.selection`: by default the class-balanced
validation loss, the mean over the stage's tasks); every ``curve_every``-th of those evaluations, the stage's
start and end, and the kept checkpoint score every task of the sequence on
validation and test (the curves of the thesis's Fig. 4.20-4.23; ``curve_every``
1: every evaluation). The weights that score best under the rule are kept in
memory and restored at the stage's end (the thesis's rule was ``select=loss``, the
unweighted loss, which prefers majority-leaning networks on imbalanced tasks). Then the method consolidates (e.g. EWC's Fisher on a class-balanced
sample of the un-augmented training set) and every task is measured. Each stage reseeds from (seed,
stage), so a run resumed at a stage gives the same numbers as an unbroken one.
When the process has a core to spare, each evaluation scores a snapshot of the
weights on a second thread while training runs on; the trainer takes the results
in step order and acts on each as if it had waited for it, so the numbers are those
of evaluating in turn. It waits for an evaluation that may stop the stage (the patience's
last) instead of running ahead steps that the stop would discard.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..data.batches import PatchBatches
from ..data.datasets import PatchDataset, TaskSplits, class_balanced_sample, task_seed
from ..errors import LungclError
from ..selection import better, criterion
from .evaluation import SPLITS, Diverged, Evaluator
from .overlap import Pending, submit

STAGE_SEED_STRIDE = 1_000_003


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def stage_seed(seed: int, stage: int) -> int:
    return seed * STAGE_SEED_STRIDE + stage


def stream_seed(cfg: Any, stage: int, index: int, task: str) -> int:
    """The seed of ``task``'s batch stream in ``stage`` (``index``: its place among the stage's tasks).
    ``streams="task"``: from the task's name and how many earlier stages trained it (joint training
    revisits a task), so that a task gets the same stream wherever it comes in the order."""
    if cfg.streams == "task":
        return task_seed(cfg.seed, task) + 7919 * (stage - list(cfg.tasks).index(task))
    return stage_seed(cfg.seed, stage) + 7919 * index


def train_loader(dataset: PatchDataset, batch_size: int, seed: int) -> PatchBatches:
    """Shuffled, augmented batches in a seeded order from the in-memory patches; the last short
    batch dropped (BatchNorm needs > 1)."""
    return PatchBatches(dataset, batch_size, seed, shuffle=True, drop_last=len(dataset) > batch_size)


def unaugmented(ds: PatchDataset, patch_px: int) -> PatchDataset:
    """The same training nodules without augmentation or up-sampling (for the Fisher)."""
    return PatchDataset(ds.images, ds.labels, ds.patient_ids, ds.nodule_ids, patch_px,
                        augment=False, balance=False, seed=ds.seed)


def fisher_dataset(ds: PatchDataset, patch_px: int, n: int, seed: int) -> PatchDataset:
    """The sample of training nodules a method consolidates on (EWC's Fisher): un-augmented, ``n // 2``
    per class (:func:`lungcl.data.datasets.class_balanced_sample`), so that the Fisher weighs the two
    classes as the up-sampled training batches did, not by their share of the training split."""
    out = unaugmented(ds, patch_px)
    out.order = class_balanced_sample(out.labels, n, seed)
    return out


class _Cycle:
    """An endless stream of training batches: each pass over the loader is a new shuffled,
    newly augmented epoch (the loader's generator runs on)."""

    def __init__(self, loader: PatchBatches):
        self.loader, self.passes = loader, 0
        self._it = iter(loader)

    def __len__(self) -> int:
        return len(self.loader)

    def next(self) -> tuple[Tensor, Tensor]:
        try:
            return next(self._it)
        except StopIteration:
            self.passes += 1
            self._it = iter(self.loader)
            return next(self._it)


@dataclass
class StageResult:
    """What a stage leaves behind besides the model: the best point and the timings."""

    steps: int
    epochs: float
    best_step: int
    best_val_loss: float  # the stage's task(s)' mean validation loss at the kept checkpoint
    stopped_early: bool
    select: str = "balanced_loss"  # the rule that chose the kept checkpoint
    best_criterion: float | None = None  # its value there
    best_val_balanced_accuracy: float | None = None  # the stage's task(s)' mean validation balanced accuracy
    timings: dict = field(default_factory=dict)


@dataclass
class StageContext:
    """Everything a stage needs, built once per run."""

    config: Any  # RunConfig
    model: nn.Module
    method: Any  # ContinualMethod
    splits: dict[str, TaskSplits]
    evaluator: Evaluator
    device: torch.device
    curve: Callable[[dict], None]  # receives one curve point (dict of columns)
    progress: bool = True
    global_step: int = 0
    overlap_eval: bool = False  # evaluate weight snapshots on a second thread while training goes on


def _amp(ctx: StageContext) -> tuple[contextlib.AbstractContextManager, Any]:
    active = bool(ctx.config.amp) and ctx.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.float16) if active else contextlib.nullcontext()
    scaler = torch.amp.GradScaler("cuda", enabled=active)
    return autocast, scaler


class ProximalPull:
    """The method's quadratic pull-back applied implicitly after each optimiser step.

    For lambda/2 sum_i w_i (theta_i - m_i)^2 the proximal step is exact and stable for any
    stiffness: theta <- (theta + c m) / (1 + c). An explicit gradient step diverges once
    lr * lambda * max(w) > 2 (1 + momentum), which caps EWC's lambda when a few weights have a
    large Fisher. With momentum mu the loss gradient reaches the weights through the momentum
    buffer, amplified 1/(1 - mu) at steady state, while this pull acts once per step; so
    c = lr * lambda * w / (1 - mu) puts the fixed point on the stated objective's minimiser
    (loss + weight decay + penalty with the user's lambda; book/theory.md derives it).
    """

    def __init__(self, method: Any, model: nn.Module, lr: float, momentum: float = 0.0):
        if not 0 <= momentum < 1:
            raise LungclError(f"momentum must be in [0, 1) for the proximal penalty step, got {momentum:g}")
        quad = getattr(method, "quadratic", None)
        self.active = quad is not None and getattr(method, "strength", 0.0) > 0
        if not self.active:
            return
        named = dict(model.named_parameters())
        self.params = [named[n] for n in quad.names]
        coef = lr * method.strength * quad.weight / (1.0 - momentum)  # float64, flat over quad.names
        shrink, target = 1.0 / (1.0 + coef), coef * quad.anchor / (1.0 + coef)
        sizes = [quad.sizes[n] for n in quad.names]
        self.shrink = [t.view_as(p).to(p.device, p.dtype) for t, p in zip(shrink.split(sizes), self.params)]
        self.target = [t.view_as(p).to(p.device, p.dtype) for t, p in zip(target.split(sizes), self.params)]

    @torch.no_grad()
    def apply(self) -> None:
        if self.active:
            for p, s, t in zip(self.params, self.shrink, self.target):
                p.mul_(s).add_(t)


def make_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """The stage's SGD (weight decay = wd/2 ||theta||^2 added to the objective)."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def descend(model: nn.Module, method: Any, optimizer: torch.optim.Optimizer, loss: Tensor,
            proximal: ProximalPull | None = None, scaler: Any = None) -> None:
    """One step on loss + weight decay + the method's penalty: the penalty either joins the loss
    (gradient step) or, with ``proximal``, is applied exactly after the SGD step on the loss.
    The trainer and the objective test (tests/test_penalty_objective.py) share this function."""
    total = loss + method.penalty(model) if proximal is None else loss
    if scaler is None:
        total.backward()
        optimizer.step()
    else:
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    if proximal is not None:
        proximal.apply()


def train_stage(ctx: StageContext, stage: int, task: str, train_tasks: list[str],
                eval_tasks: list[str]) -> StageResult:
    """Train one stage; the model ends at the best checkpoint (the ``select`` rule on the stage's task(s))."""
    cfg, model, method = ctx.config, ctx.model, ctx.method
    seed = stage_seed(cfg.seed, stage)
    torch.manual_seed(seed)
    streams = [_Cycle(train_loader(ctx.splits[t].train, cfg.batch_size, stream_seed(cfg, stage, i, t)))
               for i, t in enumerate(train_tasks)]
    per_epoch = max(len(s) for s in streams)
    if cfg.max_steps_per_epoch:
        per_epoch = min(per_epoch, cfg.max_steps_per_epoch)
    total = per_epoch * cfg.epochs
    eval_every = cfg.eval_every or per_epoch
    optimizer = make_optimizer(model, cfg.lr, cfg.momentum, cfg.weight_decay)
    autocast, scaler = _amp(ctx)
    proximal = ProximalPull(method, model, cfg.lr, cfg.momentum) if cfg.penalty_step == "proximal" else None
    timings: dict[str, Any] = {"train_s": 0.0, "eval_s": 0.0, "eval_wait_s": 0.0, "discarded_steps": 0}

    def diverged(step: int, why: str) -> LungclError:
        bar.close()
        return LungclError(f"training diverged in stage {stage + 1} ({task}) at step {step}: {why}; lower lr "
                           f"or lambda (now lr={cfg.lr:g}, lambda={cfg.strength:g})")

    def full(stage_step: int) -> bool:
        """Whether the evaluation at ``stage_step`` scores every task on val and test (a curve point)."""
        return stage_step in (0, total) or (stage_step // eval_every) % cfg.curve_every == 0

    def score(net: nn.Module, stage_step: int) -> list[dict]:
        """At ``net``'s weights (a snapshot's, on the evaluation thread): every task on val and test, or
        (between curve points) the stage's task(s) on validation."""
        t0 = time.perf_counter()
        try:
            if full(stage_step):
                return ctx.evaluator.curve_point(net, eval_tasks)
            return ctx.evaluator.curve_point(net, train_tasks, splits=("val",))
        except Diverged as exc:
            raise diverged(stage_step, str(exc)) from exc
        finally:
            timings["eval_s"] += time.perf_counter() - t0

    def record(point: list[dict], stage_step: int, global_step: int) -> None:
        for row in point:
            ctx.curve({"stage": stage, "trained": task, "step": global_step, "stage_step": stage_step,
                       "epoch": stage_step / per_epoch, **row})

    def keep(done: Pending, point: list[dict]) -> None:
        kept.update(step=done.step, global_step=done.global_step, scored={(r["task"], r["split"]) for r in point})

    bar = tqdm(total=total, desc=f"stage {stage + 1} {task} ({cfg.method})", unit="step",
               disable=not ctx.progress, leave=False)
    best = {"score": None, "loss": math.inf, "bacc": None, "step": 0, "state": None, "since": 0}
    kept: dict[str, Any] = {}  # where the kept weights were evaluated, and what that evaluation scored
    background = ThreadPoolExecutor(1, thread_name_prefix="lungcl-eval") if ctx.overlap_eval else None
    pending: Pending | None = None

    def settle() -> bool:
        """Act on the pending evaluation exactly as if it had run at its step: curves, best
        checkpoint, early stopping. True when the stage stops there (later steps are discarded)."""
        nonlocal pending, total
        t0 = time.perf_counter()
        done, pending = pending, None
        point = done.point.result()
        timings["eval_wait_s"] += time.perf_counter() - t0
        record(point, done.step, done.global_step)
        score = criterion(point, train_tasks, cfg.select)
        bar.set_postfix(val=f"{score:.3f}")
        if done.step == 0:
            return False
        if better(score, best["score"], cfg.select):
            best.update(score=score, loss=criterion(point, train_tasks, "loss"), step=done.step, since=0,
                        bacc=criterion(point, train_tasks, "balanced_accuracy"), state=done.net.state_dict())
            keep(done, point)
        else:
            best["since"] += 1
        if not (cfg.patience and best["since"] >= cfg.patience):
            return False
        if best["state"] is None:  # no better point at all: the weights of the stopping step
            best.update(score=score, loss=criterion(point, train_tasks, "loss"),
                        bacc=criterion(point, train_tasks, "balanced_accuracy"), state=done.net.state_dict())
            keep(done, point)
        timings["discarded_steps"] = ctx.global_step - done.global_step
        total, ctx.global_step = done.step, done.global_step
        return True

    def may_stop(done: Pending) -> bool:
        """Whether the evaluation ``done`` may end the stage: then the training waits for it rather than run
        ahead steps that the stop would discard (same numbers; fewer core-seconds)."""
        return done.step > 0 and bool(cfg.patience) and best["since"] + 1 >= cfg.patience

    stopped = False
    train_mode(model, freeze_norm_stats=cfg.bn == "freeze" and stage > 0)
    method.prepare_stage(model, stage, task)  # e.g. frozen: only the task's head learns from stage 2 on
    bad_steps = 0
    try:
        # where the stage starts (the previous stage's best checkpoint): recorded, not a candidate
        pending = submit(background, score, model, 0, ctx.global_step)
        if total == 0:
            settle()
        t_train = time.perf_counter()  # after the starting evaluation: train_s times training steps only
        for step in range(1, total + 1):
            if pending is not None and (pending.point.done() or may_stop(pending)):
                t_wait = time.perf_counter()
                stop = settle()
                t_train += time.perf_counter() - t_wait  # waiting for an evaluation is not training
                if stop:
                    stopped = True
                    break
            loss = _train_step(model, method, optimizer, streams, train_tasks, autocast, scaler, ctx.device,
                               proximal)
            bad_steps = 0 if math.isfinite(loss) else bad_steps + 1
            if bad_steps > (10 if scaler.is_enabled() else 0):  # AMP's scaler skips a few overflowing steps
                if pending is not None and settle():  # the stage had stopped before this step
                    stopped = True
                    break
                raise diverged(step, f"the loss is {loss}")
            ctx.global_step += 1
            bar.update(1)
            if step % eval_every == 0 or step == total:
                timings["train_s"] += time.perf_counter() - t_train
                if pending is not None and settle():
                    stopped = True
                    break
                pending = submit(background, score, model, step, ctx.global_step)
                if step == total and settle():
                    stopped = True
                t_train = time.perf_counter()
    finally:
        if background is not None:
            background.shutdown(wait=True, cancel_futures=True)
    best_loss, best_step, best_state = best["loss"], best["step"], best["state"]
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if kept and kept["scored"] != {(t, s) for t in eval_tasks for s in SPLITS}:
        # the kept checkpoint on every task, val and test: a point of every curve (what the stage reports)
        t0 = time.perf_counter()
        point = ctx.evaluator.curve_point(model, eval_tasks)
        timings["eval_s"] += time.perf_counter() - t0
        record([r for r in point if (r["task"], r["split"]) not in kept["scored"]], kept["step"], kept["global_step"])
    timings["steps"] = total
    ran = total + timings["discarded_steps"]  # train_s also timed the steps run ahead of a stop
    timings["samples_per_s"] = ran * cfg.batch_size * len(train_tasks) / max(timings["train_s"], 1e-9)
    return StageResult(steps=total, epochs=total / per_epoch, best_step=best_step,
                       best_val_loss=best_loss, stopped_early=stopped, timings=timings, select=cfg.select,
                       best_criterion=_finite(best["score"]), best_val_balanced_accuracy=_finite(best["bacc"]))


def _finite(value: float | None) -> float | None:
    """A number for the record (JSON has no nan)."""
    return None if value is None or not math.isfinite(value) else float(value)


def train_mode(model: nn.Module, freeze_norm_stats: bool = False) -> None:
    """Training mode; with ``freeze_norm_stats`` the BatchNorm layers keep normalising with the
    running statistics they had (their scale and shift still learn)."""
    model.train()
    if freeze_norm_stats:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def _train_step(model: nn.Module, method: Any, optimizer: torch.optim.Optimizer, streams: list[_Cycle],
                train_tasks: list[str], autocast: Any, scaler: Any, device: torch.device,
                proximal: ProximalPull | None = None) -> float:
    """One SGD step: mean cross-entropy over the stage's task(s) + the method's penalty."""
    optimizer.zero_grad(set_to_none=True)
    with autocast:
        loss = 0.0
        for stream, t in zip(streams, train_tasks):
            x, y = stream.next()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss + F.cross_entropy(model(x, t), y)
        loss = loss / len(train_tasks)
    descend(model, method, optimizer, loss, proximal, scaler)
    return float(loss.detach())


def consolidate(ctx: StageContext, task: str) -> float:
    """The method's after-task step on a class-balanced sample of the task's un-augmented training set
    (:func:`fisher_dataset`, ``fisher_samples`` nodules); returns seconds."""
    t0 = time.perf_counter()
    splits = ctx.splits[task]
    seed = stage_seed(ctx.config.seed, 10_000)
    ds = fisher_dataset(splits.train, int(splits.provenance["settings"]["patch_px"]), ctx.config.fisher_samples, seed)
    loader = PatchBatches(ds, min(ctx.config.batch_size, 64), seed)
    ctx.model.eval()
    ctx.method.consolidate(ctx.model, task, _on_device(loader, ctx.device))
    return time.perf_counter() - t0


def _on_device(loader: PatchBatches, device: torch.device) -> Any:
    if device.type == "cpu":
        return loader

    class _Moved:
        def __iter__(self):
            for x, y in loader:
                yield x.to(device), y.to(device)

        def __len__(self):
            return len(loader)
    return _Moved()
