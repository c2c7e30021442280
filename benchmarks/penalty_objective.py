"""Does every penalty step land on the argmin of task loss + weight decay + lambda/2 sum_t F_t (theta - theta*_t)^2?

    python benchmarks/penalty_objective.py --json

L2 and EWC (two remembered tasks) on a quadratic problem with a closed-form argmin
(lungcl.experiments.penalty_check), lambda 1e-2..1e4, momentum 0 and 0.9, weight decay 0 and 0.05,
through the trainer's own step; the proximal step everywhere, the gradient step where it is
stable. Prints {"max_distance_to_argmin": ..., "cases": [...]} (target <= 1e-3), or a table.
"""

from __future__ import annotations

import argparse
import json

import torch

from lungcl.experiments.penalty_check import all_cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = all_cases(steps=args.steps)
    worst = max(c["distance_to_argmin"] for c in cases)
    if args.json:
        print(json.dumps({"max_distance_to_argmin": worst, "cases": cases}))
        return
    print("| method | step | lambda | momentum | weight decay | distance to argmin |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        print(f"| {c['method']} | {c['penalty_step']} | {c['strength']:g} | {c['momentum']:g} | "
              f"{c['weight_decay']:g} | {c['distance_to_argmin']:.2e} |")
    print(f"\nmax distance to argmin: {worst:.2e}")


if __name__ == "__main__":
    main()
