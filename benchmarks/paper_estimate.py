"""What the ``paper`` profile's book (ResNet-101 on 64 px patches, the thesis's five folds) would cost on GPUs,
estimated on paper from the book's plan.

    python benchmarks/paper_estimate.py [--data-dir data] [--folds 5] [--gpus 1,4,16] [--json]

No GPU is lent to this project, so the paper profile is tested on CPU at toy size and its GPU time is
estimated here. The runs are the book's own plan (:func:`lungcl.plan.book_plan` with the paper profile
and ``folds`` 0..N-1: every chapter's runs, de-duplicated, as ``lungcl book --profile paper`` would
compute them). Each sequence or single-task run is priced in FLOPs (torch's FlopCounterMode on its own
network: a training sample = forward + backward, an evaluated sample = forward) times its sample
counts, from the real split sizes (the nodule table and the patient split; no patches needed): every
stage runs its whole epoch budget (an early stop only makes it cheaper: an upper bound), evaluates
every ``eval_every`` steps (every task on val and test at each ``curve_every``-th evaluation, the
stage's own validation between), and EWC's Fisher costs one training sample per Fisher sample. The
multi-task runs (chapter 06) are counted, not priced (a gated network of their own; minutes each).
GPU time = FLOPs / a sustained rate (assumed, see RATES); on one GPU the plan runs several runs at
once (``--runs-per-gpu``), which is how it approaches the sustained rate, not a speed-up beyond it;
on a cluster of G GPUs the wall time is the plan's longest-first makespan over G. It also measures
this CPU's throughput on the paper model, to show the scale.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections import Counter

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lungcl.data.nodules import load_nodule_table
from lungcl.data.splits import load_or_make_split
from lungcl.data.tasks import make_task
from lungcl.experiments.config import RunConfig
from lungcl.models.resnet import build_resnet, count_parameters
from lungcl.plan import book_plan, makespan
from lungcl.profiles import data_settings

# sustained fp32/TF32 rates to price the FLOPs at (TFLOP/s): a T4-class, an A10/L4-class, an A100 with AMP
RATES = {"T4-class, 4 TFLOP/s sustained": 4.0, "A10/L4-class, 12": 12.0, "A100 with AMP, 60": 60.0}
EWC_METHODS = ("ewc", "online_ewc")


def flops(model: torch.nn.Module, x: torch.Tensor, task: str, train: bool) -> float:
    """FLOPs of one batch: forward (+ backward when ``train``)."""
    model.train(train)
    with FlopCounterMode(display=False) as counter:
        out = model(x, task)
        if train:
            out.sum().backward()
    return float(counter.get_total_flops())


class Pricer:
    """FLOPs per training and evaluated sample of each distinct network, counted once."""

    def __init__(self, batch: int = 4):
        self.batch, self.seen = batch, {}

    def per_sample(self, c: RunConfig) -> tuple[float, float]:
        key = (c.depth, c.width, c.small_input, c.spatial_dims, c.in_channels, c.model_norm, c.profile)
        if key not in self.seen:
            px = data_settings(c.profile).patch_px
            model = build_resnet(c.depth, list(c.tasks), in_channels=c.in_channels, spatial_dims=c.spatial_dims,
                                 width=c.width, num_classes=2, small_input=c.small_input, norm=c.model_norm)
            x = torch.randn(self.batch, c.in_channels, *([px] * c.spatial_dims))
            self.seen[key] = (flops(model, x, c.tasks[0], True) / self.batch,
                              flops(model, x, c.tasks[0], False) / self.batch)
        return self.seen[key]


class SplitSizes:
    """Nodules per task and role (train / val / test) of a fold, from the nodule table and the patient split."""

    def __init__(self, data_dir: str):
        self.nodules = load_nodule_table(data_dir, progress=False)
        self.data_dir, self.cache = data_dir, {}

    def __call__(self, task: str, fold: int, split_seed: int) -> dict[str, int]:
        key = (task, fold, split_seed)
        if key not in self.cache:
            split = load_or_make_split(self.data_dir, self.nodules, split_seed)
            roles = split.roles(fold)
            part = np.array([roles[p] for p in split.part_of(self.nodules.patient_id)])
            labelled = make_task(task).labels(self.nodules) >= 0
            self.cache[key] = {r: int((labelled & (part == r)).sum()) for r in ("train", "val", "test")}
        return self.cache[key]


def run_flops(c: RunConfig, pricer: Pricer, sizes: SplitSizes) -> float:
    """An upper bound of one sequence or single-task run's FLOPs (every stage to its epoch budget)."""
    train_f, eval_f = pricer.per_sample(c)
    size = {t: sizes(t, c.fold, c.split_seed) for t in c.tasks}
    every_task = sum(size[t]["val"] + size[t]["test"] for t in c.tasks)
    total = 0.0
    for k, task in enumerate(c.tasks):
        trained = list(c.tasks[:k + 1]) if c.method == "joint" else [task]
        per_epoch = max(math.ceil(size[t]["train"] / c.batch_size) for t in trained)
        if c.max_steps_per_epoch:
            per_epoch = min(per_epoch, c.max_steps_per_epoch)
        steps = per_epoch * c.epochs
        evals = steps // (c.eval_every or per_epoch) + 2
        full = evals // max(1, c.curve_every) + 2
        scored = (every_task if c.kind == "sequence" else size[task]["val"] + size[task]["test"])
        own_val = sum(size[t]["val"] for t in trained)
        total += steps * c.batch_size * len(trained) * train_f
        total += (min(full, evals) * scored + max(0, evals - full) * own_val) * eval_f
        if c.method in EWC_METHODS:
            total += min(c.fisher_samples, size[task]["train"]) * train_f
    return total


def estimate(data_dir: str, folds: int, runs_per_gpu: int, gpus: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as empty:  # no results: every run of the plan is to compute
        plan = book_plan(profile="paper", data_dir=data_dir, results_dir=empty,
                         overrides={"folds": list(range(folds))}, workers=1)
    kinds = Counter((type(r.config).__name__, getattr(r.config, "kind", "multitask")) for r in plan.runs)
    pricer, sizes = Pricer(), SplitSizes(data_dir)
    priced = [run_flops(r.config, pricer, sizes) for r in plan.runs if isinstance(r.config, RunConfig)]
    total = float(sum(priced))
    out = {"profile": "paper", "folds": folds, "runs": len(plan.runs),
           "runs_by_kind": {f"{a}/{b}": n for (a, b), n in sorted(kinds.items())},
           "priced_runs": len(priced), "pflop": total / 1e15, "runs_per_gpu": runs_per_gpu,
           "per_chapter": {k: len(v) for k, v in plan.chapters.items() if v}, "rates": {}}
    for name, tflops in RATES.items():
        seconds = [f / (tflops * 1e12) for f in priced]
        out["rates"][name] = {"tflops": tflops, "one_gpu_hours": sum(seconds) / 3600,
                              "cluster_hours": {str(g): makespan(seconds, g) / 3600 for g in gpus},
                              "longest_run_minutes": max(seconds) / 60 if seconds else 0.0}
    return out


def cpu_throughput(batch: int) -> dict:
    """This CPU, one thread: training samples per second of the paper network (to show the scale)."""
    torch.set_num_threads(1)
    c = RunConfig(profile="paper", depth=101, width=64)
    px = data_settings("paper").patch_px
    model = build_resnet(c.depth, list(c.tasks), in_channels=c.in_channels, width=c.width,
                         small_input=c.small_input)
    x = torch.randn(batch, c.in_channels, px, px)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    t0 = time.perf_counter()
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x, c.tasks[0]), torch.zeros(batch, dtype=torch.long)).backward()
        opt.step()
    return {"parameters": count_parameters(model), "cpu_train_samples_per_s": 2 * batch / (time.perf_counter() - t0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--folds", type=int, default=5, help="folds per setting (the thesis averaged 5)")
    ap.add_argument("--runs-per-gpu", type=int, default=2, help="runs at once on one GPU (lungcl book --runs-per-gpu)")
    ap.add_argument("--gpus", default="1,4,16", help="cluster sizes to estimate the wall time on")
    ap.add_argument("--batch", type=int, default=8, help="batch of the CPU timing")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gpus = [int(g) for g in args.gpus.split(",") if g.strip()]
    out = estimate(args.data_dir, args.folds, args.runs_per_gpu, gpus)
    out["cpu"] = cpu_throughput(args.batch)
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"paper book, {args.folds} folds: {out['runs']} runs in the plan ({', '.join(f'{n} {k}' for k, n in out['runs_by_kind'].items())}); "
          f"{out['priced_runs']} priced: {out['pflop']:.1f} PFLOP (upper bound: every stage to its epoch budget)")
    print("runs per chapter: " + ", ".join(f"{k} {n}" for k, n in out["per_chapter"].items()))
    print(f"this CPU, 1 thread: {out['cpu']['cpu_train_samples_per_s']:.1f} training samples/s on the "
          f"{out['cpu']['parameters']:,}-parameter network")
    head = "".join(f"{f'{g} GPU(s)':>12s}" for g in gpus)
    print(f"\n{'assumed GPU (sustained)':34s}{'longest run':>13s}{head}")
    for name, r in out["rates"].items():
        cells = "".join(f"{r['cluster_hours'][str(g)]:10.1f} h" for g in gpus)
        print(f"{name:34s}{r['longest_run_minutes']:9.0f} min{cells}")
    print(f"\n(one GPU: {args.runs_per_gpu} runs at once, which is how it nears the sustained rate; GPU rates are "
          "assumptions, not measurements; data loading and augmentation on the CPU can bound a fast GPU below them; "
          "the multi-task runs are not priced)")


if __name__ == "__main__":
    main()
