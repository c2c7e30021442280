"""Sampled and other Fisher variants against the exact one, on a network after one trained stage.

Trains the profile's first stage of ``--task`` alone (SGD, one thread, the profile's settings),
then on the task's un-augmented training data: the sampled Fisher's relative distance to the
exact one at each ``--samples`` count over ``--seeds`` label seeds (whole network, L2 and L1;
median over parameter tensors), and the per-layer table of all variants at the largest count.
``--json`` prints one object. The sample count is capped by the training set's size.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from lungcl.data.batches import PatchBatches
from lungcl.experiments import sequence
from lungcl.experiments.config import default_config
from lungcl.experiments.evaluation import Evaluator
from lungcl.experiments.trainer import (StageContext, deterministic, stage_seed, torch_threads, train_stage,
                                        unaugmented)
from lungcl.fisher import compare_fishers, fisher_diagonal, fisher_variant_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--task", default="malignancy")
    ap.add_argument("--samples", default="50,200,1000")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cfg = default_config(args.profile, tasks=(args.task,), method="sgd", data_dir=args.data_dir)
    t0 = time.perf_counter()
    with deterministic(True), torch_threads(1):
        splits = sequence.load_splits(cfg)
        model = sequence.build_model(cfg, [args.task])
        ctx = StageContext(cfg, model, sequence.build_method(cfg), splits, Evaluator(splits, torch.device("cpu")),
                           torch.device("cpu"), lambda row: None, False)
        stage = train_stage(ctx, 0, args.task, [args.task], [args.task])
        train = splits[args.task].train
        data = unaugmented(train, int(splits[args.task].provenance["settings"]["patch_px"]))
        loader = list(PatchBatches(data, min(cfg.batch_size, 64), stage_seed(cfg.seed, 10_000)))
        model.eval()
        counts = [min(int(n), len(data)) for n in args.samples.split(",")]
        sampled = {}
        for n in counts:
            exact = fisher_diagonal(model, args.task, loader, n, kind="exact")
            ref = torch.cat([f.flatten() for f in exact.values()]).double()
            runs = []
            for seed in range(args.seeds):
                fisher = fisher_diagonal(model, args.task, loader, n, kind="sampled", seed=seed)
                v = torch.cat([fisher[k].flatten() for k in exact]).double()
                per_tensor = [r["relative_distance"] for r in compare_fishers(exact, {"s": fisher})]
                runs.append([float((v - ref).norm() / ref.norm()), float((v - ref).abs().sum() / ref.abs().sum()),
                             float(np.median(per_tensor))])
            a = np.array(runs)
            sampled[str(n)] = {"rel_l2_mean": a[:, 0].mean(), "rel_l2_sd": a[:, 0].std(ddof=1),
                               "rel_l1_mean": a[:, 1].mean(), "rel_l1_sd": a[:, 1].std(ddof=1),
                               "median_tensor_rel_l2_mean": a[:, 2].mean()}
        table = fisher_variant_table(model, args.task, loader, counts[-1], seed=0)
    medians = table.groupby("variant")[["relative_distance", "relative_l1", "correlation", "scale"]].median()
    out = {"profile": args.profile, "task": args.task, "train_samples": len(data), "stage_steps": stage.steps,
           "seeds": args.seeds, "sampled_vs_exact": sampled, "per_layer_median": medians.to_dict(orient="index"),
           "seconds": time.perf_counter() - t0}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
