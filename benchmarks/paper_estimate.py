"""What the ``paper`` profile (ResNet-101 on 64 px patches) would cost on a GPU, estimated on paper.

    python benchmarks/paper_estimate.py [--data-dir data] [--folds 5]

No GPU is lent to this project, so the paper profile is tested on CPU at toy
size and its GPU time is estimated here from counted FLOPs (torch's
FlopCounterMode: one training step = forward + backward, an evaluation =
forward) and the run's step counts from the real task sizes (the cpu
profile's splits: the same nodules, only the patch size differs). It also
measures this CPU's throughput on the paper model, to show the scale, and
prints the GPU time for a few assumed sustained rates (a GPU rarely sustains
more than 30-50 % of its peak on a network this small per sample).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from lungcl.data.datasets import load_task_datasets
from lungcl.data.tasks import resolve_tasks
from lungcl.experiments.config import default_config
from lungcl.models.resnet import build_resnet, count_parameters
from lungcl.profiles import data_settings

# sustained fp32/TF32 rates to price the FLOPs at (TFLOP/s): a T4-class, an A10/L4-class, an A100 with AMP
RATES = {"T4-class, 4 TFLOP/s sustained": 4.0, "A10/L4-class, 12": 12.0, "A100 with AMP, 60": 60.0}


def flops(model: torch.nn.Module, x: torch.Tensor, task: str, train: bool) -> float:
    """FLOPs of one batch: forward (+ backward when ``train``)."""
    model.train(train)
    with FlopCounterMode(display=False) as counter:
        out = model(x, task)
        if train:
            out.sum().backward()
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--folds", type=int, default=5, help="folds per setting (the thesis averaged 5)")
    ap.add_argument("--batch", type=int, default=8, help="batch for counting and for the CPU timing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = default_config("paper")
    px = data_settings("paper").patch_px
    tasks = list(cfg.tasks)
    model = build_resnet(cfg.depth, tasks, in_channels=cfg.in_channels, width=cfg.width,
                         small_input=cfg.small_input)
    x = torch.randn(args.batch, cfg.in_channels, px, px)
    train_per_sample = flops(model, x, tasks[0], True) / args.batch
    eval_per_sample = flops(model, x, tasks[0], False) / args.batch

    t0 = time.perf_counter()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x, tasks[0]), torch.zeros(args.batch, dtype=torch.long)).backward()
        opt.step()
    cpu_samples_s = 3 * args.batch / (time.perf_counter() - t0)

    # step counts of one ABC run at the paper profile's settings, from the real split sizes
    splits = load_task_datasets(args.data_dir, resolve_tasks(",".join(tasks)), 0, profile="cpu")
    train_samples = eval_samples = fisher_samples = 0.0
    for t in tasks:
        steps = math.ceil(len(splits[t].train) / cfg.batch_size) * cfg.epochs
        evals = steps // cfg.eval_every + 2
        train_samples += steps * cfg.batch_size
        eval_samples += evals * sum(len(getattr(splits[u], s)) for u in tasks for s in ("val", "test"))
        fisher_samples += cfg.fisher_samples
    run_flops = ((train_samples + fisher_samples) * train_per_sample + eval_samples * eval_per_sample)
    runs = 6 * 3 * args.folds

    print(f"paper profile: PreActResNet-{cfg.depth} width {cfg.width}, {count_parameters(model):,} parameters, "
          f"{px}x{px} patches, batch {cfg.batch_size}, {cfg.epochs} epochs per task")
    print(f"FLOPs per sample: training step {train_per_sample / 1e9:.2f} GFLOP, evaluation "
          f"{eval_per_sample / 1e9:.2f} GFLOP")
    print(f"one ABC run: {train_samples:,.0f} training samples, {eval_samples:,.0f} evaluated, "
          f"{fisher_samples:,.0f} Fisher samples -> {run_flops / 1e15:.2f} PFLOP")
    print(f"this CPU, 1 thread: {cpu_samples_s:.1f} training samples/s "
          f"({cpu_samples_s * train_per_sample / 1e9:.1f} GFLOP/s) -> one run ~ "
          f"{run_flops / (cpu_samples_s * train_per_sample) / 3600:.0f} h on one core")
    print(f"\n{'assumed GPU (sustained)':34s} {'one run':>10s} {'6 orders x 3 methods':>22s} "
          f"{f'x {args.folds} folds':>12s}")
    for name, tflops in RATES.items():
        one = run_flops / (tflops * 1e12)
        print(f"{name:34s} {one / 60:8.1f} min {18 * one / 3600:20.1f} h {runs * one / 3600:10.1f} h")
    print("\n(GPU rates are assumptions, not measurements; data loading and augmentation on the CPU "
          "can bound a fast GPU below them.)")


if __name__ == "__main__":
    main()
