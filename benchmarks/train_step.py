"""Training-step cost: EWC with two past tasks vs plain SGD, and the trainer vs a bare PyTorch loop.

    python benchmarks/train_step.py [--profile cpu] [--data-dir data] [--steps 60] [--repeats 3] [--json]

1. Step time on fixed in-memory batches (no data loading), the profile's model:
   SGD (no penalty) vs EWC after consolidating two tasks (penalty over both).
2. Throughput on the profile's real training set (augmented, up-sampled loader):
   the trainer's stage loop (evaluation excluded from its clock) vs a bare loop
   over the same DataLoader, model and optimiser. Also the share of time the
   trainer spends evaluating every task on val and test at the profile's schedule.
One torch thread (the way runs are executed). Prints tables; targets: within 10 %.

With ``--json`` prints one JSON object instead: ``pipeline_over_floor`` (the trainer's
samples/s on the real augmented pipeline / samples/s of the same step on in-memory
tensors; target >= 0.80), and from one ``lungcl run --tasks ABC`` in a fresh process
(the profile's eval_every, patience, epochs): ``abc_run_s`` (process start to exit),
``non_training_share`` (share of that wall time outside the training steps the record
times; target <= 0.25) and ``startup_s`` (process start to the first training step:
imports, store check and loading, the untrained network's evaluation; target <= 3).
``abc_core_s`` is that run's CPU seconds (training and the evaluation thread), ``abc_steps`` its
training steps; ``--set curve_every=1`` (or any setting) measures the run with it (the cpu profile's
default, 8, scores every task's curves every 8th evaluation: same steps, same tables).
``load_average`` is the 1-minute load before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import lungcl
from lungcl.experiments import default_config
from lungcl.experiments.evaluation import Evaluator
from lungcl.experiments.sequence import build_method, build_model, load_splits
from lungcl.experiments.trainer import StageContext, _train_step, train_loader, train_stage


def step_times(config, steps: int, repeats: int, methods=("sgd", "ewc"), patch_px: int = 32
               ) -> dict[str, float]:
    """Median seconds per step of sgd and of ewc with two past tasks, on the same batches."""
    tasks = list(config.tasks)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(config.batch_size, config.in_channels, patch_px, patch_px, generator=g),
                torch.randint(0, 2, (config.batch_size,), generator=g)) for _ in range(8)]
    results = {}
    for name in methods:
        cfg = config.replace(method=name, strength=100.0 if name == "ewc" else 0.0)
        model = build_model(cfg, tasks)
        method = build_method(cfg)
        if name == "ewc":
            for t in tasks[:2]:
                method.consolidate(model, t, batches)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        stream = _FixedStream(batches)
        model.train()
        amp = torch.amp.GradScaler("cuda", enabled=False)
        for _ in range(5):  # warm-up
            _train_step(model, method, optimizer, [stream], [tasks[2]], contextlib.nullcontext(), amp,
                        torch.device("cpu"))
        per_repeat = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(steps):
                _train_step(model, method, optimizer, [stream], [tasks[2]], contextlib.nullcontext(), amp,
                            torch.device("cpu"))
            per_repeat.append((time.perf_counter() - t0) / steps)
        results[name] = statistics.median(per_repeat)
    return results


class _FixedStream:
    def __init__(self, batches):
        self.batches, self.i = batches, 0

    def next(self):
        self.i = (self.i + 1) % len(self.batches)
        return self.batches[self.i]


def bare_loop(config, splits, steps: int) -> float:
    """Samples per second of the simplest loop over the same loader, model and optimiser."""
    task = config.tasks[0]
    torch.manual_seed(0)
    model = build_model(config, list(config.tasks))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    loader = train_loader(splits[task].train, config.batch_size, seed=0)
    splits[task].train.set_epoch(0)
    model.train()
    done, t0 = 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x, task), y)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return steps * config.batch_size / (time.perf_counter() - t0)


def trainer_loop(config, splits, steps: int, eval_every: int) -> tuple[float, float, float]:
    """(train samples/s excluding evaluation, evaluation seconds, training seconds) of one trainer stage."""
    cfg = config.replace(epochs=1, max_steps_per_epoch=steps, eval_every=eval_every, method="sgd")
    model = build_model(cfg, list(cfg.tasks))
    evaluator = Evaluator(splits, torch.device("cpu"))
    ctx = StageContext(cfg, model, build_method(cfg), splits, evaluator, torch.device("cpu"),
                       curve=lambda row: None, progress=False)
    result = train_stage(ctx, 0, cfg.tasks[0], [cfg.tasks[0]], list(cfg.tasks))
    t = result.timings
    return t["samples_per_s"], t["eval_s"], t["train_s"]


# a `lungcl run` that prints the wall clock at its first training step (to time the start-up)
_TIMED_RUN = """
import sys, time
from lungcl.experiments import trainer
_step = trainer._train_step
def _first(*a, **k):
    if not getattr(_first, "done", False):
        _first.done = True
        print(f"FIRST_STEP {time.time():.6f}", file=sys.stderr, flush=True)
    return _step(*a, **k)
trainer._train_step = _first
from lungcl.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def abc_run(profile: str, data_dir: str, settings: list[str] = ()) -> dict:
    """One `lungcl run --tasks ABC` in a fresh process: wall seconds from process start to exit,
    the share of it outside training steps (the record's train_s), the start-up seconds, and the
    process's CPU seconds (training and the evaluation thread: ``core_s``)."""
    import resource

    from lungcl.experiments.records import read_record_json

    with tempfile.TemporaryDirectory() as results:
        cmd = [sys.executable, "-c", _TIMED_RUN, "run", "--tasks", "ABC", "--profile", profile,
               "--data-dir", data_dir, "--results", results, "--quiet", *sum((["--set", s] for s in settings), [])]
        here = str(Path(lungcl.__file__).resolve().parents[1])  # the child runs this very lungcl
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        t0, before = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall, after = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        core_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"the ABC run failed:\n{done.stderr[-2000:]}")
        first = next(float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("FIRST_STEP"))
        record = read_record_json(Path(done.stdout.strip().splitlines()[-1]))
    stages = record["timings"]["stages"]
    # training seconds of the steps kept (steps run ahead of an early stop are discarded)
    train_s = sum(s["train_s"] * s["steps"] / (s["steps"] + s.get("discarded_steps", 0)) for s in stages)
    return {"abc_run_s": wall, "startup_s": first - t0, "train_s": train_s, "core_s": core_s,
            "steps": sum(s["steps"] for s in record["stages"]),
            "eval_s": sum(s["eval_s"] for s in stages), "non_training_share": 1.0 - train_s / wall}


def json_report(config, data_dir: str, profile: str, steps: int, repeats: int, settings: list[str] = ()) -> dict:
    """The three headline numbers of issue #12 as one dict."""
    from lungcl.data.prepare import prepare_store
    from lungcl.profiles import data_settings

    prepare_store(data_dir, profile=profile, progress=False)
    patch_px = data_settings(profile).patch_px
    floor = config.batch_size / step_times(config, steps, repeats, ("sgd",), patch_px)["sgd"]
    splits = load_splits(config)
    pipeline = statistics.median(trainer_loop(config, splits, steps, eval_every=10**9)[0]
                                 for _ in range(repeats))
    load_before = os.getloadavg()[0]
    abc = abc_run(profile, data_dir, settings)
    return {"profile": profile, "floor_samples_per_s": round(floor, 1),
            "pipeline_samples_per_s": round(pipeline, 1),
            "pipeline_over_floor": round(pipeline / floor, 3),
            "non_training_share": round(abc["non_training_share"], 3), "abc_run_s": round(abc["abc_run_s"], 2),
            "startup_s": round(abc["startup_s"], 2), "abc_train_s": round(abc["train_s"], 2),
            "abc_eval_s": round(abc["eval_s"], 2), "abc_core_s": round(abc["core_s"], 2),
            "abc_steps": abc["steps"], "abc_settings": list(settings),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object of the headline numbers")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the ABC run (e.g. curve_every=4), as lungcl run --set")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = default_config(args.profile, tasks="ABC", data_dir=args.data_dir)
    if args.json:
        print(json.dumps(json_report(config, args.data_dir, args.profile, args.steps, args.repeats, args.settings)))
        return
    print(f"profile {args.profile}: ResNet-{config.depth} width {config.width}, batch {config.batch_size}, "
          f"{torch.get_num_threads()} torch thread")

    st = step_times(config, args.steps, args.repeats)
    ratio = st["ewc"] / st["sgd"]
    print("\n1. step time on fixed batches (median of repeats)")
    print(f"{'method':28s} {'ms/step':>8s}")
    print(f"{'sgd':28s} {1000 * st['sgd']:8.2f}")
    print(f"{'ewc, 2 past tasks':28s} {1000 * st['ewc']:8.2f}")
    print(f"ewc / sgd = {ratio:.3f}  (target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")

    from lungcl.data.prepare import prepare_store
    prepare_store(args.data_dir, profile=args.profile, progress=False)
    splits = load_splits(config)
    bare, train = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(config, splits, args.steps))
        train.append(trainer_loop(config, splits, args.steps, eval_every=10**9)[0])
    b, t = statistics.median(bare), statistics.median(train)
    print(f"\n2. throughput on the real {config.tasks[0]} training set (augmented loader), samples/s")
    print(f"{'loop':28s} {'samples/s':>10s}")
    print(f"{'bare PyTorch loop':28s} {b:10.1f}")
    print(f"{'lungcl trainer (no eval)':28s} {t:10.1f}")
    print(f"trainer / bare = {t / b:.3f}  (target >= 0.90: {'met' if t / b >= 0.90 else 'NOT met'})")
    sps, eval_s, train_s = trainer_loop(config, splits, args.steps, eval_every=config.eval_every)
    print(f"\nwith the profile's evaluation every {config.eval_every} steps (all 3 tasks, val + test): "
          f"evaluation {eval_s:.1f} s vs training {train_s:.1f} s over {args.steps} steps "
          f"({100 * eval_s / (eval_s + train_s):.0f} % of the stage)")


if __name__ == "__main__":
    main()
