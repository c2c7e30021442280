"""Time the per-sample Fisher diagonal: torch.func (vmap) against the one-sample loop, and compare values.

    python benchmarks/fisher.py --depth 18 --width 16 --samples 1000
    python benchmarks/fisher.py --json     # the cpu model (ResNet-10 width 16, 32 px)

``--json`` prints {"exact_vs_analytic_max_rel_err": ..., "exact_over_floor": ..., ...}: the exact
Fisher of logistic regression against the analytic p(1-p) x^2 (target <= 1e-5), and the exact
Fisher's CPU time over the samples divided by one batched forward + backward over the same
samples without per-sample gradients (the floor; target <= 2).

Prints a Markdown table: seconds for each path, the speed-up, the largest absolute and
relative differences between the two Fishers. A third row times one plain batched
forward + backward of the summed log-likelihood over the same samples: it does NOT give
per-sample gradients, but no per-sample method can beat it, so it bounds the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from lungcl.fisher import fisher_diagonal
from lungcl.models.resnet import build_resnet, count_parameters


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--patch", type=int, default=32, help="side of the 2D patch in pixels")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64, help="loader batch size")
    ap.add_argument("--chunk", type=int, default=None, help="vmap chunk (default: memory-bounded auto)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--empirical", action="store_true", help="empirical Fisher (true labels)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="analytic check + exact/floor ratio as one JSON object")
    return ap.parse_args()


def analytic_error(seed: int = 0) -> float:
    """Max relative error of the exact Fisher of logistic regression against mean p(1-p) x^2."""
    torch.manual_seed(seed)

    class Logistic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = torch.nn.ModuleDict({"task": torch.nn.Linear(7, 2)})

        def forward(self, x, task):
            return self.heads[task](x)

    model = Logistic().double()
    x = torch.randn(500, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    fisher = fisher_diagonal(model, "task", [(x, torch.zeros(500, dtype=torch.long))], 500, kind="exact")
    with torch.no_grad():
        p = torch.softmax(model(x, "task"), dim=1)[:, 1]
    analytic = ((p * (1 - p))[:, None] * x ** 2).mean(0).expand(2, -1)
    return float(((fisher["heads.task.weight"] - analytic).abs() / analytic).max())


def _timed(fn):
    """(result, (wall seconds, CPU seconds of this process)); CPU time is the steadier figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def main() -> None:
    args = _parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_resnet(args.depth, ["task"], in_channels=1, spatial_dims=2, width=args.width)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.samples, 1, args.patch, args.patch, generator=g)
    y = torch.randint(0, 2, (args.samples,), generator=g)
    with torch.no_grad():  # a few training-mode passes so BatchNorm's running statistics are not the defaults
        model.train()
        for i in range(0, min(args.samples, 4 * args.batch), args.batch):
            model(x[i:i + args.batch], "task")
    loader = [(x[i:i + args.batch], y[i:i + args.batch]) for i in range(0, args.samples, args.batch)]
    kw = dict(n_samples=args.samples, empirical=args.empirical, seed=args.seed)

    def batched_backward() -> None:  # the bound: one batched backward, no per-sample gradients
        model.eval()
        for xb, yb in loader:
            model.zero_grad(set_to_none=True)
            F.log_softmax(model(xb, "task"), dim=1).gather(1, yb[:, None]).sum().backward()

    fisher_diagonal(model, "task", loader[:1], 4, chunk_size=args.chunk)  # warm-up (torch.func set-up)
    fisher_diagonal(model, "task", loader[:1], 4, kind="exact", chunk_size=args.chunk)
    batched_backward()
    if args.json:
        (_, t_floor) = _timed(batched_backward)
        (_, t_exact) = _timed(lambda: fisher_diagonal(model, "task", loader, args.samples, kind="exact",
                                                      chunk_size=args.chunk))
        (_, t_sampled) = _timed(lambda: fisher_diagonal(model, "task", loader, args.samples, kind="sampled",
                                                        chunk_size=args.chunk, seed=args.seed))
        print(json.dumps({"exact_vs_analytic_max_rel_err": analytic_error(args.seed),
                          "exact_over_floor": t_exact[1] / t_floor[1], "exact_cpu_s": t_exact[1],
                          "sampled_cpu_s": t_sampled[1], "floor_cpu_s": t_floor[1],
                          "model": f"resnet{args.depth} width {args.width}, {args.patch} px",
                          "samples": args.samples, "threads": args.threads}))
        return
    (fast, t_vmap) = _timed(lambda: fisher_diagonal(model, "task", loader, vectorised=True,
                                                    chunk_size=args.chunk, **kw))
    (slow, t_loop) = _timed(lambda: fisher_diagonal(model, "task", loader, vectorised=False, **kw))
    (_, t_exact) = _timed(lambda: fisher_diagonal(model, "task", loader, args.samples, kind="exact",
                                                  chunk_size=args.chunk))
    (_, t_batched) = _timed(batched_backward)

    abs_diff = max(float((fast[n] - slow[n]).abs().max()) for n in fast)
    scale = max(float(slow[n].abs().max()) for n in slow)
    print(f"PreActResNet-{args.depth} width {args.width}, {count_parameters(model):,} parameters, "
          f"{args.patch}x{args.patch} 2D patches, {args.samples} samples, "
          f"{'empirical' if args.empirical else 'true (sampled-label)'} Fisher, "
          f"torch {torch.__version__}, {args.threads} thread(s) of {os.cpu_count()} cores\n")
    print("| path | wall s | CPU s | CPU ms / sample | speed-up vs loop (wall) | (CPU) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (wall, cpu) in (("loop (oracle)", t_loop), ("vmap (torch.func)", t_vmap),
                              ("exact (per-layer rebuild, one fwd + one bwd to layer outputs)", t_exact),
                              ("batched fwd+bwd, no per-sample grads (bound)", t_batched)):
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {1000 * cpu / args.samples:.2f} | "
              f"{t_loop[0] / wall:.1f}x | {t_loop[1] / cpu:.1f}x |")
    print(f"\nmax |F_vmap - F_loop| = {abs_diff:.2e}  (max F = {scale:.2e}, relative {abs_diff / scale:.1e})")


if __name__ == "__main__":
    main()
